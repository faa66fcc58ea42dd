"""The variational Bayesian Gaussian mixture as an engine model.

The model is scikit-learn's ``BayesianGaussianMixture`` (Bishop 2006, section
10.2; Blei & Jordan 2006 for the Dirichlet process): a Dirichlet (or
stick-breaking) prior on the weights and a Gaussian-Wishart prior on each
component's mean and precision, fitted by coordinate ascent on the evidence
lower bound (ELBO).

Its E-step is the Gaussian mixture's kernel: the responsibilities are
proportional to exp(E[log pi_k] + E[log N(x | mu_k, Lambda_k)]), which is a
Gaussian density in the posterior means with the Wishart's expected precision
and per-component constants holding the expected log-weights, the expected
log-determinant and the ``D / beta_k`` term. The statistics are the Gaussian
mixture's additive ones, so threads, determinism, streaming and Dask come
unchanged; only the constants, the M-step (prior plus statistics) and the
objective differ.

The objective is scikit-learn's lower bound, computed from the statistics: with
r the responsibilities of the E-step and the posterior q(theta) the M-step gives
for them, L = -sum r log r - log C_W - log C_pi - D/2 sum log beta_k (the terms of
the ELBO that do not cancel at that posterior; up to a constant). The entropy term
comes from the pass: sum r log r = sum_k sum_i r_ik log rho_ik - sum_i log sum_k
rho_ik, where the first sum is N_k c_k - tr(P_k Q_k) / 2 from the moments about the
means the pass was evaluated at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._special import betaln, digamma, gammaln
from ..components.structures import MASS_EPS
from ..engine.packing import finite_values, positive_values
from ..kernels import gaussian as gk
from .component import second_moments
from .model import GaussianMixtureModel

WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")
_LOG_2 = math.log(2.0)


def checked_prior(value, name, shape, *, broadcast=False, positive=False, above=None,
                  scale_of=None):
    """A hyperparameter or posterior array of a variational model, checked as its fit
    needs it (BayesianGaussianMixture, VariationalGaussianHMM and
    VariationalCategoricalHMM share these checks, at fit and at load).

    Parameters
    ----------
    value : real or array-like
    name : str
        The argument or attribute named in the errors.
    shape : tuple of int
        The shape ``value`` must have (or, with ``broadcast``, broadcast to).
    positive : bool
        Every entry must be > 0 (Dirichlet concentrations, precision scales).
    above : float or None
        Every entry must be > ``above`` (Wishart degrees of freedom: > D - 1).
    scale_of : covariance spec or None
        ``value`` is a Wishart scale (or covariance) in the spec's shape: positive
        variances for the diagonal types, symmetric positive-definite matrices (the last
        two axes) for the others.

    Returns
    -------
    ndarray of float64 of ``shape`` (a private copy)
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists
        raise ValueError(f"The parameter '{name}' should be a real number or an array of "
                         "real numbers, not a ragged sequence") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"The parameter '{name}' must be a real number or an array of real "
                        f"numbers, got dtype {array.dtype}")
    shape = tuple(int(s) for s in shape)
    try:
        fits = (np.broadcast_shapes(array.shape, shape) == shape) if broadcast \
            else array.shape == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}"
                         f"{' (or broadcast to it)' if broadcast else ''}, but got "
                         f"{array.shape}")
    array = np.array(np.broadcast_to(array.astype(np.float64), shape))
    if not np.isfinite(array).all():
        raise ValueError(f"The parameter '{name}' should be finite, but holds NaN or "
                         "infinity")
    if positive and not np.all(array > 0.0):
        raise ValueError(f"The parameter '{name}' should be positive, but got "
                         f"{array.min():.6g}")
    if above is not None and not np.all(array > above):
        raise ValueError(f"The parameter '{name}' should be greater than {above:g}, but got "
                         f"{array.min():.3f}.")
    if scale_of is not None:
        if scale_of.diagonal:
            if not np.all(array > 0.0):
                raise ValueError(f"'{name}' should be positive")
        else:
            d = shape[-1]
            for index, matrix in enumerate(array.reshape(-1, d, d)):
                if not (np.allclose(matrix, matrix.T)
                        and np.all(np.linalg.eigvalsh(matrix) > 0.0)):
                    where = f" (its matrix {index} is not)" if array.ndim == 3 else ""
                    raise ValueError(f"'{name}' should be symmetric, positive-definite{where}")
    return array


def one_component_shape(spec, n_features):
    """The shape of one component's covariance in ``spec`` (the shared matrix when the
    spec has one for all components): a Wishart prior's scale."""
    one, two = spec.precisions_shape(1, n_features), spec.precisions_shape(2, n_features)
    return one if one == two else one[1:]


@dataclass
class VariationalPrior:
    """Hyperparameters of the priors (scikit-learn's ``*_prior_`` attributes)."""

    weight_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray | float


@dataclass
class VariationalParams:
    """The variational posterior, in scikit-learn's attribute shapes.

    weight_concentration : (K,) Dirichlet parameters, or a pair of (K,) arrays (the
        Beta parameters of the stick-breaking fractions)
    mean_precision : (K,) beta_k
    means : (K, D) the Gaussian posteriors' means m_k
    degrees_of_freedom : (K,), or a scalar for the tied covariance: nu_k
    covariances : W_k^-1 / nu_k in the spec's shape
    precisions_cholesky : the factor of the inverse of ``covariances``
    """

    weight_concentration: object
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


def expected_log_weights(weight_type, concentration):
    """E[log pi_k] under the weights' posterior."""
    if weight_type == "dirichlet_process":
        a, b = concentration
        total = digamma(a + b)
        stick = digamma(b) - total
        return digamma(a) - total + np.concatenate([[0.0], np.cumsum(stick)[:-1]])
    concentration = np.asarray(concentration)
    return digamma(concentration) - digamma(concentration.sum())


def point_weights(weight_type, concentration):
    """The weights' posterior means, normalised (scikit-learn's ``weights_``)."""
    if weight_type == "dirichlet_process":
        a, b = concentration
        fraction = b / (a + b)
        weights = a / (a + b) * np.concatenate([[1.0], np.cumprod(fraction[:-1])])
    else:
        weights = np.asarray(concentration, dtype=np.float64)
    return weights / weights.sum()


def _log_wishart_norm(degrees_of_freedom, log_det_chol, n_features):
    """log of the Wishart normaliser without its log(pi) term, as scikit-learn."""
    nu = np.asarray(degrees_of_freedom, dtype=np.float64)
    half = 0.5 * (nu[..., None] - np.arange(n_features))
    return -(nu * log_det_chol + nu * n_features * 0.5 * _LOG_2 + gammaln(half).sum(axis=-1))


class VariationalGaussianMixtureModel(GaussianMixtureModel):
    """The Gaussian mixture model with variational constants, M-step and objective."""

    def __init__(self, spec, n_components, n_features, reg_covar, init_params, prior):
        super().__init__(spec, n_components, n_features, reg_covar, init_params)
        self.prior = prior

    # -- the E-step --------------------------------------------------------------
    def component_constants(self, params):
        """c_k: log rho_ik = c_k - |U_k^T (x_i - m_k)|^2 / 2 (U_k the kernel's factor)."""
        k, d = self.n_components, self.n_features
        nu = np.broadcast_to(np.asarray(params.degrees_of_freedom, dtype=np.float64), (k,))
        log_lambda = d * _LOG_2 + digamma(0.5 * (nu[:, None] - np.arange(d))).sum(axis=1)
        return (expected_log_weights(self.prior.weight_type, params.weight_concentration)
                + self.spec.log_det(params.precisions_cholesky, k, d)
                - 0.5 * d * gk.LOG_2PI - 0.5 * d * np.log(nu)
                + 0.5 * (log_lambda - d / params.mean_precision))

    def prepare(self, params):
        k, d = self.n_components, self.n_features
        return (np.ascontiguousarray(params.means, dtype=np.float64),
                self.spec.kernel_factor(params.precisions_cholesky, k, d),
                np.ascontiguousarray(self.component_constants(params), dtype=np.float64))

    def __getstate__(self):
        # The reused posterior is per-pass scratch: never shipped to workers.
        return {key: value for key, value in vars(self).items() if key != "_last_posterior"}

    # -- the M-step ----------------------------------------------------------------
    def m_step(self, stats, params):
        # The engine asks for the objective, then the M-step, of the same statistics: the
        # objective's posterior is reused rather than computed twice.
        cached = getattr(self, "_last_posterior", None)
        if cached is not None and cached[0] is stats:
            self._last_posterior = None
            return cached[1]
        return self.posterior(stats)

    def posterior(self, stats):
        """The variational posterior of the parameters for the responsibilities behind
        ``stats`` (scikit-learn's ``_m_step``, from additive statistics)."""
        prior, spec = self.prior, self.spec
        mass, first = stats["mass"], stats["first"]
        nk = mass + MASS_EPS
        delta = first / nk[:, None]
        xk = stats.shift + delta
        # The prior regularises a collapsed component here: keep its floored scatter.
        sk = spec.covariances(mass, nk, first, second_moments(stats), stats.shift, delta,
                              self.reg_covar, collapse="floor")
        if prior.weight_type == "dirichlet_process":
            tail = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
            concentration = (1.0 + nk, prior.weight_concentration + tail)
        else:
            concentration = prior.weight_concentration + nk
        beta = prior.mean_precision + nk
        means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / beta[:, None]
        diff = xk - prior.mean
        shrink = prior.mean_precision / beta  # beta_0 / beta_k
        nu, covariances = spec.wishart_posterior(prior, nk, sk, diff, shrink, beta)
        return VariationalParams(
            weight_concentration=concentration, mean_precision=beta, means=means,
            degrees_of_freedom=nu, covariances=covariances,
            precisions_cholesky=spec.precisions_cholesky(covariances, self.reg_covar))

    # -- the objective -----------------------------------------------------------------
    def objective(self, stats, params):
        """scikit-learn's lower bound for the pass's responsibilities (``stats``, at
        ``params``) and the posterior the M-step gives for them."""
        new = self.posterior(stats)
        self._last_posterior = (stats, new)
        return self.entropy(stats, params) + self.posterior_normalisers(new)

    def entropy(self, stats, params):
        """-sum_i w_i sum_k r_ik log r_ik of the pass that produced ``stats``."""
        stats = stats.recentred(params.means)
        mass = stats["mass"]
        q = second_moments(stats)
        spec = self.spec
        chol = params.precisions_cholesky
        spread = spec.trace_precision_scatter(chol, q)
        constants = self.component_constants(params)
        used = mass > 0  # an empty component contributes nothing (and may have c_k = -inf)
        expected = float(np.sum(mass[used] * constants[used] - 0.5 * spread[used]))
        return float(stats.loglik) - expected

    def posterior_normalisers(self, params):
        """-log C_W - log C_pi - D/2 sum log beta_k of a posterior."""
        k, d = self.n_components, self.n_features
        log_det = (self.spec.log_det(params.precisions_cholesky, k, d)
                   - 0.5 * d * np.log(params.degrees_of_freedom))
        if self.spec.shared:  # (scikit-learn counts the shared Wishart K times)
            log_wishart = k * float(_log_wishart_norm(params.degrees_of_freedom, log_det[0], d))
        else:
            log_wishart = float(np.sum(_log_wishart_norm(params.degrees_of_freedom, log_det, d)))
        if self.prior.weight_type == "dirichlet_process":
            a, b = params.weight_concentration
            log_norm_weight = -float(np.sum(betaln(a, b)))
        else:
            concentration = np.asarray(params.weight_concentration)
            log_norm_weight = float(gammaln(concentration.sum()) - gammaln(concentration).sum())
        return (-log_wishart - log_norm_weight
                - 0.5 * d * float(np.sum(np.log(params.mean_precision))))

    # -- initialisation --------------------------------------------------------------
    def _initial_params(self, initial_stats):
        """scikit-learn's ``_initialize``: the M-step for the initial responsibilities."""
        return self.posterior(initial_stats())

    # -- SQUAREM ------------------------------------------------------------------------
    # The objective is the lower bound of an actual pair (responsibilities, posterior), for
    # any posterior the E-step runs at, and a pass never lowers it: SQUAREM's safeguard
    # (a trial is kept only if its bound is at least the plain step's) keeps it monotone.
    # The posterior's parameters are extrapolated as they are (concentrations, beta_k, m_k,
    # nu_k and the covariances W_k^-1 / nu_k); a point outside their domain is refused by
    # unpack, and the schedule falls back to the plain step.
    def pack(self, params):
        return np.concatenate([np.ravel(params.weight_concentration),
                               params.mean_precision, np.ravel(params.means),
                               np.ravel(params.degrees_of_freedom),
                               np.ravel(params.covariances)])

    def unpack(self, vector, like):
        k, d = self.n_components, self.n_features
        tied = np.ndim(like.degrees_of_freedom) == 0
        sizes = {"concentration": 2 * k if self.prior.weight_type == "dirichlet_process"
                 else k, "beta": k, "means": k * d, "dof": 1 if tied else k}
        parts, start = {}, 0
        for name, size in sizes.items():
            parts[name] = vector[start:start + size]
            start += size
        concentration = positive_values(parts["concentration"], (sizes["concentration"],),
                                        "weight concentrations")
        if self.prior.weight_type == "dirichlet_process":
            concentration = (concentration[:k], concentration[k:])
        nu = finite_values(parts["dof"], (sizes["dof"],), "degrees of freedom")
        if not np.all(nu > d - 1.0):
            raise ValueError("degrees of freedom are not above n_features - 1")
        covariances, chol = self.spec.checked_covariances(vector[start:], k, d)
        return VariationalParams(
            weight_concentration=concentration,
            mean_precision=positive_values(parts["beta"], (k,), "mean precisions"),
            means=finite_values(parts["means"], (k, d), "means"),
            degrees_of_freedom=nu[0] if tied else nu, covariances=covariances,
            precisions_cholesky=chol)
