"""The Gaussian mixture as an EM model: parameters, initialisation, E-step, M-step.

This module holds no estimator logic; :mod:`fastem.mixture.gaussian_mixture`
wraps it in the scikit-learn API and hands it to :func:`fastem.engine.run_em`
with a backend holding the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..components.structures import MASS_EPS
from ..engine import UNIT_ROWS, Block, ModelBase, batch_units
from ..engine.packing import finite_values, probability_rows
from ..engine.row_random import draw_seed, row_uniforms
from ..kernels import gaussian as gk
from . import kmeans, kmeans_parallel
from .component import gaussian_layout, second_moments

_EMPTY = np.empty(0)
_NO_LABELS = np.empty(0, dtype=np.int64)
_NO_RESP = np.empty((0, 0))
_RANDOM_INIT_ROWS = 1 << 15  # rows of random responsibilities drawn at once


@dataclass
class MixtureParams:
    """Parameters in scikit-learn's public shapes (float64)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray


def kernel_model(spec, params):
    """(means, factor, const) as the Gaussian kernels read them."""
    n_components, n_features = params.means.shape
    with np.errstate(divide="ignore"):  # a zero weight is a valid -inf log-weight
        log_weights = np.log(params.weights)
    const = (log_weights + spec.log_det(params.precisions_cholesky, n_components, n_features)
             - 0.5 * n_features * gk.LOG_2PI)
    return (np.ascontiguousarray(params.means, dtype=np.float64),
            spec.kernel_factor(params.precisions_cholesky, n_components, n_features),
            np.ascontiguousarray(const, dtype=np.float64))


def params_from_stats(spec, stats, reg_covar, total_weight=None):
    """Closed-form M-step from Gaussian statistics (about ``stats.shift``).

    Weights are normalised by the mass unless ``total_weight`` is given
    (scikit-learn divides initial masses by the number of samples instead).
    """
    n_mass, first = stats["mass"], stats["first"]
    nk = n_mass + MASS_EPS
    delta = first / nk[:, None]
    covariances = spec.covariances(n_mass, nk, first, second_moments(stats), stats.shift,
                                   delta, reg_covar)
    weights = nk / (nk.sum() if total_weight is None else total_weight)
    return MixtureParams(weights=weights, means=stats.shift + delta, covariances=covariances,
                         precisions_cholesky=spec.precisions_cholesky(covariances, reg_covar))


def pack_mixture(params):
    """Weights, means and covariances as one vector (what SQUAREM extrapolates)."""
    return np.concatenate([params.weights, np.ravel(params.means),
                           np.ravel(params.covariances)])


def unpack_mixture(spec, vector, n_components, n_features):
    """Inverse of :func:`pack_mixture`; ValueError when the vector is no mixture."""
    k, d = n_components, n_features
    covariances, prec_chol = spec.checked_covariances(vector[k + k * d:], k, d)
    return MixtureParams(weights=probability_rows(vector[:k], (k,), "weights"),
                         means=finite_values(vector[k:k + k * d], (k, d), "means"),
                         covariances=covariances, precisions_cholesky=prec_chol)


def row_outputs(spec, params, X, mode, prepared=None):
    """Per-row log-density, log-posteriors or labels of X under ``params`` (or under
    ``prepared``: the kernel's (means, factor, const), e.g. a variational model's).

    Rows so far from every component that their log-densities no longer resolve
    differences of order one (beyond :data:`~fastem.kernels.gaussian.RESOLVED_LOG_DENSITY`
    in magnitude, or -inf: squared distances beyond float64) get the limiting posterior
    from :func:`far_rows_log_resp` instead of NaN, a rounded tie or an arbitrary label.
    """
    means, factor, const = kernel_model(spec, params) if prepared is None else prepared
    n = X.shape[0]
    # Labels come with their best log-probability, which tells the far rows apart.
    kernel_mode = gk.ROW_MAX if mode == gk.ROW_ARGMAX else mode
    values = np.empty(n) if kernel_mode in (gk.ROW_LOGSUMEXP, gk.ROW_MAX) else _EMPTY
    matrix = (np.empty((n, len(const))) if kernel_mode in (gk.ROW_LOG_RESP, gk.ROW_WEIGHTED)
              else _NO_RESP)
    labels = (np.empty(n, dtype=np.int64) if kernel_mode in (gk.ROW_ARGMAX, gk.ROW_MAX)
              else _NO_LABELS)
    gk.gaussian_rows(X, means, factor, const, kernel_mode, UNIT_ROWS, values, matrix, labels)
    if mode == gk.ROW_LOGSUMEXP:
        return values  # -inf is the correctly rounded log-density of a far row
    if mode == gk.ROW_ARGMAX:
        far = np.flatnonzero(~(np.abs(values) <= gk.RESOLVED_LOG_DENSITY))
        if far.size:
            labels[far] = far_rows_log_resp(X[far], means, factor, const).argmax(axis=1)
        return labels
    if mode == gk.ROW_LOG_RESP:
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


class GaussianMixtureModel(ModelBase):
    """A Gaussian mixture as an engine model (:class:`fastem.engine.BlockModel`).

    Parameters
    ----------
    spec : covariance spec from :data:`fastem.components.structures.STRUCTURES`.
    n_components, n_features : shapes.
    reg_covar, init_params : as in the estimator.
    weights_init, means_init, precisions_cholesky_init : validated user
        overrides (float64) or None.
    """

    def __init__(self, spec, n_components, n_features, reg_covar, init_params,
                 weights_init=None, means_init=None, precisions_cholesky_init=None):
        self.spec = spec
        self.n_components = n_components
        self.n_features = n_features
        self.reg_covar = reg_covar
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_cholesky_init = precisions_cholesky_init
        self.monotone = reg_covar == 0.0
        self.layout = gaussian_layout(n_components, n_features, spec.diagonal)
        self._batch = batch_units(self.layout.size)

    # -- the engine protocol --------------------------------------------------
    def prepare(self, params):
        return kernel_model(self.spec, params)

    def shift(self, params):
        return np.ascontiguousarray(params.means, dtype=np.float64)

    def block_stats(self, prepared, block, out):
        means, factor, const = prepared
        self._add_stats(block, out, means, factor, const, means, gk.POSTERIOR)

    def m_step(self, stats, params):
        return params_from_stats(self.spec, stats, self.reg_covar)

    def pack(self, params):
        return pack_mixture(params)

    def unpack(self, vector, like):
        return unpack_mixture(self.spec, vector, self.n_components, self.n_features)

    # -- statistics -----------------------------------------------------------
    def _add_stats(self, block, out, means, factor, const, shift, source, labels=_NO_LABELS,
                   resp=_NO_RESP, lo=0, hi=None):
        X = block.X
        hi = X.shape[0] if hi is None else hi
        weights = _EMPTY if block.weights is None else block.weights
        gk.gaussian_stats(X, weights, means, factor, const, shift, labels, resp, lo, source,
                          self.spec.diagonal, lo, hi, UNIT_ROWS, self._batch, out.flat)

    def _unused_model(self):
        k, d = self.n_components, self.n_features
        return np.zeros((k, d)), np.ones((1, 1, d)), np.zeros(k)

    # -- initialisation ----------------------------------------------------
    def _sample_rows(self, block, n_rows, random_state):
        n = block.n_rows
        if block.weights is None:
            return random_state.choice(n, size=n_rows, replace=False)
        p = block.weights / block.weights.sum()
        return random_state.choice(n, size=n_rows, replace=False, p=p)

    def _stats_from_labels(self, block, labels, shift):
        stats = self.layout.zeros(shift)
        self._add_stats(block, stats, *self._unused_model(), shift, gk.LABELS, labels=labels)
        return stats

    def _stats_from_random_resp(self, block, random_state):
        mean, _ = kmeans.weighted_moments(block.X, block.weights)
        shift = np.ascontiguousarray(np.tile(mean, (self.n_components, 1)))
        stats = self.layout.zeros(shift)
        model = self._unused_model()
        n = block.n_rows
        for lo in range(0, n, _RANDOM_INIT_ROWS):
            hi = min(lo + _RANDOM_INIT_ROWS, n)
            resp = random_state.uniform(size=(hi - lo, self.n_components))
            resp /= resp.sum(axis=1)[:, None]
            self._add_stats(block, stats, *model, shift, gk.GIVEN, resp=resp, lo=lo, hi=hi)
        return stats

    def _initial_stats(self, block, random_state):
        X, weights = block.X, block.weights
        n = block.n_rows
        k = self.n_components
        if self.init_params in ("kmeans", "k-means++"):
            seeds = kmeans.kmeans_plusplus(X, k, weights, random_state)
        else:
            seeds = None
        if self.init_params == "kmeans":
            centers, labels = kmeans.lloyd(X, weights, X[seeds])
            return self._stats_from_labels(block, labels, np.ascontiguousarray(centers))
        if self.init_params == "random":
            return self._stats_from_random_resp(block, random_state)
        if seeds is None:  # random_from_data
            seeds = self._sample_rows(block, k, random_state)
        labels = np.full(n, -1, dtype=np.int64)
        labels[seeds] = np.arange(k)
        shift = np.ascontiguousarray(X[seeds], dtype=np.float64)
        return self._stats_from_labels(block, labels, shift)

    def _initial_stats_at_scale(self, backend, random_state):
        k = self.n_components
        if self.init_params == "random":
            centre = np.zeros((1, self.n_features))
            moments = kmeans_parallel.centre_stats(backend, centre)
            shift = np.tile(moments["first"][0] / moments["mass"][0], (k, 1))
            seed = draw_seed(random_state)
            flats = backend.map_blocks(_random_resp_stats, (self, seed, shift))
            return self.layout.wrap(np.sum(flats, axis=0), shift)
        if self.init_params == "random_from_data":
            rows, total_weight = kmeans_parallel.random_rows(backend, k, random_state)
        else:
            candidates = kmeans_parallel.kmeans_parallel(backend, k, random_state)
            total_weight = candidates.total_weight
            if self.init_params == "kmeans":
                centres = kmeans_parallel.lloyd_passes(
                    backend, candidates.centres(k, random_state), candidates.variance)
                return backend.stats(_NearestLabels(self), np.ascontiguousarray(centres))
            rows = candidates.seeds(k, random_state)
        # One row per component, as in memory; every other row counts in the total only.
        rows = np.ascontiguousarray(rows)
        stats = self._stats_from_labels(Block(rows), np.arange(k, dtype=np.int64), rows)
        stats.flat[self.layout.slices["weight"]] = total_weight
        return stats

    def initialize(self, block, random_state):
        return self._initial_params(lambda: self._initial_stats(block, random_state))

    def initialize_at_scale(self, backend, random_state):
        """:meth:`initialize` where the rows stay in the backend (a cluster): k-means||,
        Lloyd and the initial statistics are passes over its blocks
        (:mod:`fastem.mixture.kmeans_parallel`); ``random`` responsibilities are drawn
        per global row, so the start does not depend on the partitioning."""
        return self._initial_params(lambda: self._initial_stats_at_scale(backend, random_state))

    def _initial_params(self, initial_stats):
        spec = self.spec
        overrides = (self.weights_init, self.means_init, self.precisions_cholesky_init)
        if any(v is None for v in overrides):
            stats = initial_stats()
            params = params_from_stats(spec, stats, self.reg_covar, total_weight=stats.weight)
        else:
            params = MixtureParams(None, None, None, None)
        if self.weights_init is not None:
            params.weights = self.weights_init.copy()
        if self.means_init is not None:
            params.means = self.means_init.copy()
        if self.precisions_cholesky_init is not None:
            params.precisions_cholesky = self.precisions_cholesky_init.copy()
            params.covariances = spec.covariances_from_cholesky(self.precisions_cholesky_init)
        return params


class _NearestLabels(ModelBase):
    """A mixture's statistics with every row labelled by its nearest centre (the
    parameters): the k-means initialisation as one pass over a backend."""

    def __init__(self, mixture):
        self.mixture = mixture
        self.layout = mixture.layout

    def shift(self, centres):
        return centres

    def block_stats(self, centres, block, out):
        labels, _ = kmeans.nearest_center(block.X, centres)
        mixture = self.mixture
        mixture._add_stats(block, out, *mixture._unused_model(), centres, gk.LABELS,
                           labels=labels)


def _random_resp_stats(payload, block, offset):
    """Worker side: a block's statistics under uniform random responsibilities drawn per
    global row (the ``random`` initialisation over a backend)."""
    mixture, seed, shift = payload
    stats = mixture.layout.zeros(shift)
    unused = mixture._unused_model()
    for lo in range(0, block.n_rows, _RANDOM_INIT_ROWS):
        hi = min(lo + _RANDOM_INIT_ROWS, block.n_rows)
        resp = row_uniforms(seed, offset + lo, hi - lo, mixture.n_components)
        resp /= resp.sum(axis=1)[:, None]
        mixture._add_stats(block, stats, *unused, shift, gk.GIVEN, resp=resp, lo=lo, hi=hi)
    return stats.flat
