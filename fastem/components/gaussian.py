"""The Gaussian component: K multivariate normal states under one covariance structure.

The structure (a covariance spec: ``full``, ``tied``, ``diag``, ``spherical``) owns
shapes, kernel factors, log-determinants and the covariance M-step; this module
owns what every structure shares: the statistics (:mod:`fastem.mixture.component`:
masses, first and second moments about the current means), the kernel model, the
closed-form M-step, packing, sampling, and the mixture's fused E-step (posteriors
and statistics in one pass, :mod:`fastem.kernels.gaussian`) with its per-row
outputs, including the exact posterior of rows so far from every state that their
log-densities no longer resolve differences of order one.

Every call of a Gaussian kernel is in this module (the kernels' entry points are
named here once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from ..components.structures import MASS_EPS
from ..engine import UNIT_ROWS, batch_units
from ..engine.packing import finite_values
from ..kernels import gaussian as gk
from ..mixture.component import gaussian_fields, recentre_gaussian, second_moments
from .base import Component

_EMPTY = np.empty(0)  # the kernels' sample weights of a block without them: unit weights


def _weights(weights, lo, hi):
    """Sample weights of rows lo:hi as the kernels read them."""
    return _EMPTY if weights is None else weights[lo:hi]


@dataclass
class GaussianParams:
    """Parameters of K Gaussian states in scikit-learn's public shapes (float64)."""

    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray


@dataclass
class GaussianPrepared:
    """What the kernels read of K Gaussian states, computed once per pass."""

    means: np.ndarray
    factor: np.ndarray
    log_det: np.ndarray  # (K,) log-determinant of each precision factor
    params: GaussianParams  # (the missing-data paths factorise per pattern)

    def const(self, log_weights=None):
        """(K,) constants of the kernels: [log w_k] + log det_k - D/2 log(2 pi)."""
        n_features = self.means.shape[1]
        if log_weights is None:
            return np.ascontiguousarray(self.log_det - 0.5 * n_features * gk.LOG_2PI)
        return np.ascontiguousarray(log_weights + self.log_det - 0.5 * n_features * gk.LOG_2PI,
                                    dtype=np.float64)


# -- the kernel calls -------------------------------------------------------------------
def posterior_stats(X, weights, model, out, shift=None, lo=0, hi=None):
    """Add a mixture's statistics of rows ``lo:hi`` (posteriors under ``model``, the
    kernel's (means, factor, const) with the log-weights in const) about ``shift``
    (default: the means) to ``out``."""
    means, factor, const = model
    hi = X.shape[0] if hi is None else hi
    shift = means if shift is None else shift
    gk.gaussian_posterior_stats(X[lo:hi], _weights(weights, lo, hi), means, factor, const,
                                shift, factor.shape[1] == 1, UNIT_ROWS,
                                batch_units(out.flat.shape[0]), out.flat)


def given_stats(X, weights, resp, shift, diagonal, out, lo=0, hi=None):
    """Add the statistics of rows ``lo:hi`` with responsibilities ``resp`` (row 0 being row
    ``lo``) about ``shift`` to ``out`` (``weight`` included)."""
    hi = X.shape[0] if hi is None else hi
    gk.gaussian_resp_stats(X[lo:hi], _weights(weights, lo, hi), resp, shift, diagonal,
                           UNIT_ROWS, batch_units(out.flat.shape[0]), out.flat)


def label_stats(X, weights, labels, shift, diagonal, out):
    """Add the statistics of rows with hard ``labels`` about ``shift`` to ``out``
    (``weight`` included)."""
    gk.gaussian_label_stats(X, _EMPTY if weights is None else weights, labels, shift,
                            diagonal, UNIT_ROWS, batch_units(out.flat.shape[0]), out.flat)


def weighted_log_prob(X, means, factor, const, out=None):
    """(n, K) const_k - Mahalanobis_k / 2 of every row, into ``out`` when given."""
    if out is None:
        out = np.empty((X.shape[0], len(const)))
    gk.gaussian_weighted_log_prob(X, means, factor, const, UNIT_ROWS, out)
    return out


def mixture_rows(X, model, what):
    """Per-row log-density (``what="logsumexp"``), log-posteriors (``"log_resp"``) or
    labels (``"argmax"``) of X under a mixture's kernel ``model`` (means, factor, const).

    Rows so far from every component that their log-densities no longer resolve
    differences of order one (beyond :data:`~fastem.kernels.gaussian.RESOLVED_LOG_DENSITY`
    in magnitude, or -inf: squared distances beyond float64) get the limiting posterior
    from :func:`far_rows_log_resp` instead of NaN, a rounded tie or an arbitrary label.
    """
    means, factor, const = model
    n = X.shape[0]
    if what == "logsumexp":
        values = np.empty(n)
        gk.gaussian_log_density(X, means, factor, const, UNIT_ROWS, values)
        return values  # -inf is the correctly rounded log-density of a far row
    if what == "argmax":
        # Labels come with their best log-probability, which tells the far rows apart.
        values = np.empty(n)
        labels = np.empty(n, dtype=np.int64)
        gk.gaussian_best(X, means, factor, const, UNIT_ROWS, values, labels)
        far = np.flatnonzero(~(np.abs(values) <= gk.RESOLVED_LOG_DENSITY))
        if far.size:
            labels[far] = far_rows_log_resp(X[far], means, factor, const).argmax(axis=1)
        return labels
    if what != "log_resp":
        raise ValueError(f"what must be 'logsumexp', 'log_resp' or 'argmax', got {what!r}")
    matrix = np.empty((n, len(const)))
    gk.gaussian_log_resp(X, means, factor, const, UNIT_ROWS, matrix)
    far = np.flatnonzero(~(np.abs(_row_mass(matrix) - 1.0) <= 1e-6))
    if far.size:
        matrix[far] = far_rows_log_resp(X[far], means, factor, const)
    return matrix


def _row_mass(log_resp, block=1 << 16):
    """sum_k exp(log_resp) of every row (1 up to rounding for a valid row), in blocks.

    It finds the rows the kernel marks NaN: log-densities beyond
    :data:`~fastem.kernels.gaussian.RESOLVED_LOG_DENSITY` in magnitude or all -inf
    (squared distances beyond float64).
    """
    mass = np.empty(log_resp.shape[0])
    for lo in range(0, log_resp.shape[0], block):
        mass[lo:lo + block] = np.exp(log_resp[lo:lo + block]).sum(axis=1)
    return mass


def far_rows_log_resp(rows, means, factor, const):
    """Log-posteriors of rows whose squared Mahalanobis distances overflow float64.

    With a per-row scale c, a_k = U_k^T x / c and b_k = U_k^T mu_k, the distance
    is c^2 |a_k|^2 - 2 c a_k.b_k + |b_k|^2; every term is finite. The log-odds
    against the best component are c (r_k - r_best) with
    r_k = (const_k - |b_k|^2 / 2) / c + a_k.b_k - c (|a_k|^2 - min_j |a_j|^2) / 2,
    which may round to -inf (probability 0) but is never inf - inf. Keeping the
    linear term matters: with a tied covariance it alone decides.
    """
    rows = np.asarray(rows, dtype=np.float64)
    n_components = len(const)
    scale = np.abs(rows).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0)[:, None]
    x = rows / scale
    if factor.shape[1] == 1:  # diagonal factors, (K or 1, 1, D)
        u = np.broadcast_to(factor[:, 0, :], (n_components, rows.shape[1]))
        a = x[:, None, :] * u[None]
        b = means * u
    else:  # triangular factors, (K or 1, D, D): y = (x - mu) U
        u = np.broadcast_to(factor, (n_components,) + factor.shape[1:])
        a = np.einsum("nd,kde->nke", x, u)
        b = np.einsum("kd,kde->ke", means, u)
    quadratic = np.einsum("nke,nke->nk", a, a)
    linear = np.einsum("nke,ke->nk", a, b)
    offset = np.einsum("ke,ke->k", b, b)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        usable = np.isfinite(const)[None, :] & np.isfinite(quadratic) & np.isfinite(linear)
        best_quadratic = np.where(usable, quadratic, np.inf).min(axis=1, keepdims=True)
        r = ((const - 0.5 * offset)[None, :] / scale + linear
             - 0.5 * scale * (quadratic - best_quadratic))
        r = np.where(usable & ~np.isnan(r), r, -np.inf)
        relative = scale * (r - r.max(axis=1, keepdims=True))
    relative = np.where(np.isnan(relative), -np.inf, relative)
    hopeless = ~np.isfinite(relative).any(axis=1)  # nothing usable: the mixture weights
    relative[hopeless] = const
    peak = relative.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return relative - (peak + np.log(np.exp(relative - peak).sum(axis=1, keepdims=True)))


class FusedModel(tuple):
    """The fused E-step's (means, factor, const), with the log-weights in const; with
    missing values, also the ``weights`` and ``params`` the per-pattern kernels read."""

    weights = None
    params = None

    @classmethod
    def of(cls, means, factor, const, weights=None, params=None):
        model = cls((means, factor, const))
        model.weights, model.params = weights, params
        return model


def _flat(weights, params):
    """GaussianMixture's flat parameters (what the missing-data functions read)."""
    from ..mixture.model import MixtureParams

    return MixtureParams(weights, params.means, params.covariances, params.precisions_cholesky)


def _missing_layout(X, n_components, cache):
    """The missing-data layout of rows X when they have NaN entries, else None (kept in
    ``cache`` when given: found once per block of a fit)."""
    from ..mixture import missing as missing_data

    if cache is not None and "missing_layout" in cache:
        return cache["missing_layout"]
    layout = missing_data.MissingLayout(X, n_components) if np.isnan(X).any() else None
    if cache is not None:
        cache["missing_layout"] = layout
    return layout


class Gaussian(Component):
    """K Gaussian states under one covariance structure.

    Parameters
    ----------
    structure : covariance spec (:data:`fastem.components.structures.STRUCTURES`).
    n_components : int
        Number of states K.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance (see GaussianMixture).
    missing : bool, default=False
        NaN marks a missing entry (missing at random): the lattice, the accumulation
        and the fused mixture E-step marginalise it (the ``missing_values`` capability:
        rows are grouped by pattern, and the statistics hold the conditional moments).
    """

    fused_mixture_estep = True
    recentre = recentre_gaussian

    def __init__(self, structure, n_components, reg_covar=1e-6, missing=False):
        self.structure = structure
        self.n_components = int(n_components)
        self.reg_covar = float(reg_covar)
        self.exact_m_step = self.reg_covar == 0.0
        self.missing_values = bool(missing)

    def __repr__(self):
        return (f"Gaussian({self.structure.name!r}, n_components={self.n_components}, "
                f"reg_covar={self.reg_covar!r}, missing={self.missing_values})")

    # -- data -------------------------------------------------------------------------
    def check_data(self, X, fitting):
        return v.check_array(X, min_samples=2 if fitting else 1, estimator="Gaussian",
                             allow_nan=self.missing_values)

    # -- statistics -------------------------------------------------------------------
    def fields(self, n_features):
        return gaussian_fields(self.n_components, n_features, self.structure.diagonal)

    def shift(self, params):
        return np.ascontiguousarray(params.means, dtype=np.float64)

    def initial_shift(self, centres):
        return np.ascontiguousarray(centres, dtype=np.float64)

    # -- one pass ---------------------------------------------------------------------
    def prepare(self, params):
        k, d = params.means.shape
        spec = self.structure
        return GaussianPrepared(np.ascontiguousarray(params.means, dtype=np.float64),
                                spec.kernel_factor(params.precisions_cholesky, k, d),
                                spec.log_det(params.precisions_cholesky, k, d), params)

    def _layout(self, X, cache):
        return _missing_layout(X, self.n_components, cache) if self.missing_values else None

    def log_likelihood(self, prepared, X, out=None, cache=None):
        if self._layout(X, cache) is not None:
            from ..mixture import missing as missing_data

            table = missing_data.row_outputs(
                self.structure, _flat(np.ones(self.n_components), prepared.params), X,
                "weighted")
            if out is None:
                return table
            out[...] = table
            return out
        return weighted_log_prob(X, prepared.means, prepared.factor, prepared.const(), out)

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        weight = out.flat[1]  # the composite keeps the common scalars
        posteriors = np.ascontiguousarray(posteriors, dtype=np.float64)
        layout = self._layout(X, cache)
        if layout is not None:
            params = prepared.params if prepared is not None else None
            if params is None:
                raise ValueError("statistics of rows with missing entries need parameters "
                                 "(start from mean-imputed rows)")
            out.flat[2:] += layout.statistics(self.structure,
                                              _flat(np.ones(self.n_components), params),
                                              responsibilities=posteriors)[2:]
        else:
            given_stats(X, None, posteriors, out.shift, self.structure.diagonal, out)
        out.flat[1] = weight

    def accumulate_labels(self, X, weights, labels, out):
        weight = out.flat[1]
        label_stats(X, weights, labels, out.shift, self.structure.diagonal, out)
        out.flat[1] = weight

    def m_step(self, stats, params):
        spec = self.structure
        n_mass, first = stats["mass"], stats["first"]
        nk = n_mass + MASS_EPS
        delta = first / nk[:, None]
        covariances = spec.covariances(n_mass, nk, first, second_moments(stats), stats.shift,
                                       delta, self.reg_covar)
        return GaussianParams(means=stats.shift + delta, covariances=covariances,
                              precisions_cholesky=spec.precisions_cholesky(covariances,
                                                                           self.reg_covar))

    # -- parameters -------------------------------------------------------------------
    def pack(self, params):
        return np.concatenate([np.ravel(params.means), np.ravel(params.covariances)])

    def unpack(self, vector, like):
        k, d = like.means.shape
        covariances, prec_chol = self.structure.checked_covariances(vector[k * d:], k, d)
        return GaussianParams(means=finite_values(vector[:k * d], (k, d), "means"),
                              covariances=covariances, precisions_cholesky=prec_chol)

    def n_parameters(self, n_features):
        k = self.n_components
        return self.structure.n_covariance_parameters(k, n_features) + n_features * k

    def sample(self, params, state, n_samples, random_state):
        counts = np.zeros(self.n_components, dtype=np.int64)
        counts[state] = n_samples  # the other states draw nothing from the stream
        return self.structure.sample(random_state, params.means, params.covariances,
                                     counts)[state]

    def limiting_log_likelihood(self, params, X):
        if self.missing_values and np.isnan(X).any():  # over their observed entries
            from ..mixture import missing as missing_data

            return missing_data.row_outputs(self.structure,
                                            _flat(np.ones(self.n_components), params), X,
                                            "log_resp")
        prepared = self.prepare(params)
        return far_rows_log_resp(np.ascontiguousarray(X), prepared.means, prepared.factor,
                                 prepared.const())

    # -- the fused mixture E-step -----------------------------------------------------------
    def mixture_prepare(self, params, weights, log_weights):
        prepared = self.prepare(params)
        return FusedModel.of(prepared.means, prepared.factor, prepared.const(log_weights),
                             weights, params)

    def mixture_block_stats(self, prepared, block, out):
        layout = self._layout(block.X, block.cache)
        if layout is None:  # (a block without NaN takes the complete-data kernel)
            posterior_stats(block.X, block.weights, prepared, out)
        else:
            out.flat += layout.statistics(self.structure,
                                          _flat(prepared.weights, prepared.params),
                                          block.weights)

    def mixture_rows(self, prepared, X, what):
        if self.missing_values and np.isnan(X).any():
            from ..mixture import missing as missing_data

            return missing_data.row_outputs(self.structure,
                                            _flat(prepared.weights, prepared.params), X, what)
        return mixture_rows(X, prepared, what)
