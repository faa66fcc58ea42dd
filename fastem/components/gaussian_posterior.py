"""Gaussian states under a Gaussian-Wishart posterior in scikit-learn's parameterisation
(BayesianGaussianMixture's, Bishop 2006 section 10.2): the component of the mixture
composite's variational option.

(:mod:`fastem.components.gaussian_variational` is the same posterior in hmmlearn's
parameterisation, with its KL, for VariationalGaussianHMM: their M-steps and bounds
are computed in different orders and give the two libraries' bits.)

Its E-step is the Gaussian's fused kernel: E_q[log N(x | mu_k, Lambda_k)] is a Gaussian
log-density in the posterior means with the Wishart's expected precision, up to
per-state constants (the expected log-determinant and the D / beta_k term), so only
the constants, the M-step (prior plus statistics: the posterior) and the terms of the
lower bound differ from :class:`~fastem.components.gaussian.Gaussian`. The mixture's
weights and their Dirichlet (or stick-breaking) posterior are the composite's
(:class:`fastem.composites.mixture.DirichletWeights`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._special import digamma, gammaln
from ..engine.packing import finite_values, positive_values
from ..kernels import gaussian as gk
from ..mixture.component import second_moments
from .gaussian import FusedModel, Gaussian, GaussianPrepared
from .structures import MASS_EPS

_LOG_2 = math.log(2.0)


@dataclass
class GaussianWishartPrior:
    """beta_0, m_0, nu_0 and the covariance prior (W_0^-1) in the structure's shape."""

    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray | float


@dataclass
class GaussianWishartPosterior:
    """beta_k, m_k, nu_k (a scalar for a shared covariance), W_k^-1 / nu_k in the
    structure's shape, and the factor of its inverse."""

    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


def log_wishart_norm(degrees_of_freedom, log_det_chol, n_features):
    """log of the Wishart normaliser without its log(pi) term, as scikit-learn."""
    nu = np.asarray(degrees_of_freedom, dtype=np.float64)
    half = 0.5 * (nu[..., None] - np.arange(n_features))
    return -(nu * log_det_chol + nu * n_features * 0.5 * _LOG_2 + gammaln(half).sum(axis=-1))


class GaussianWishart(Gaussian):
    """K Gaussian states with a Gaussian-Wishart posterior (the ``variational``
    capability): ``m_step`` gives the posterior, the lattice is the expected
    log-likelihood, and :meth:`expected_term` / :meth:`log_normalisers` are its terms of
    scikit-learn's lower bound.

    Parameters
    ----------
    structure, n_components, reg_covar : as :class:`~fastem.components.gaussian.Gaussian`
    prior : GaussianWishartPrior
    """

    variational = True

    def __init__(self, structure, n_components, reg_covar, prior):
        super().__init__(structure, n_components, reg_covar)
        self.prior = prior

    def expected_constants(self, posterior, log_weights):
        """c_k with log rho_ik = c_k - |U_k^T (x_i - m_k)|^2 / 2 (U_k the kernel's factor):
        ``log_weights`` (E[log pi_k], or 0) plus the state's expected-log-density terms."""
        k, d = posterior.means.shape
        nu = np.broadcast_to(np.asarray(posterior.degrees_of_freedom, dtype=np.float64), (k,))
        log_lambda = d * _LOG_2 + digamma(0.5 * (nu[:, None] - np.arange(d))).sum(axis=1)
        return (log_weights + self.structure.log_det(posterior.precisions_cholesky, k, d)
                - 0.5 * d * gk.LOG_2PI - 0.5 * d * np.log(nu)
                + 0.5 * (log_lambda - d / posterior.mean_precision))

    # -- one pass ---------------------------------------------------------------------
    def log_likelihood(self, prepared, X, out=None, cache=None):
        """E_q[log p(x | theta_k)] of every row (the expected log-likelihood)."""
        const = np.ascontiguousarray(self.expected_constants(prepared.params,
                                                             np.zeros(self.n_components)))
        from .gaussian import weighted_log_prob

        return weighted_log_prob(X, prepared.means, prepared.factor, const, out)

    def mixture_prepare(self, params, weights, log_weights):
        k, d = params.means.shape
        return FusedModel.of(np.ascontiguousarray(params.means, dtype=np.float64),
                             self.structure.kernel_factor(params.precisions_cholesky, k, d),
                             np.ascontiguousarray(self.expected_constants(params, log_weights),
                                                  dtype=np.float64))

    def prepare(self, params):
        k, d = params.means.shape
        spec = self.structure
        return GaussianPrepared(np.ascontiguousarray(params.means, dtype=np.float64),
                                spec.kernel_factor(params.precisions_cholesky, k, d),
                                spec.log_det(params.precisions_cholesky, k, d), params)

    # -- the posterior (the variational M-step) ------------------------------------------
    def m_step(self, stats, params):
        prior, spec = self.prior, self.structure
        mass, first = stats["mass"], stats["first"]
        nk = mass + MASS_EPS
        delta = first / nk[:, None]
        xk = stats.shift + delta
        # The prior regularises a collapsed component here: keep its floored scatter.
        sk = spec.covariances(mass, nk, first, second_moments(stats), stats.shift, delta,
                              self.reg_covar, collapse="floor")
        beta = prior.mean_precision + nk
        means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / beta[:, None]
        diff = xk - prior.mean
        shrink = prior.mean_precision / beta  # beta_0 / beta_k
        nu, covariances = spec.wishart_posterior(prior, nk, sk, diff, shrink, beta)
        return GaussianWishartPosterior(
            mean_precision=beta, means=means, degrees_of_freedom=nu, covariances=covariances,
            precisions_cholesky=spec.precisions_cholesky(covariances, self.reg_covar))

    # -- the lower bound's terms ----------------------------------------------------------
    def expected_term(self, stats, posterior, log_weights):
        """sum_k sum_i r_ik log rho_ik of the pass behind ``stats`` (at ``posterior``, with
        the mixture's expected ``log_weights``): N_k c_k - tr(P_k Q_k) / 2 from the moments
        about the posterior means."""
        stats = stats.recentred(posterior.means)
        mass = stats["mass"]
        spread = self.structure.trace_precision_scatter(posterior.precisions_cholesky,
                                                        second_moments(stats))
        constants = self.expected_constants(posterior, log_weights)
        used = mass > 0  # an empty component contributes nothing (and may have c_k = -inf)
        return float(np.sum(mass[used] * constants[used] - 0.5 * spread[used]))

    def log_normalisers(self, posterior):
        """(log C_W, D/2 sum_k log beta_k) of a posterior: its terms of the bound, which
        enter as -log C_W - D/2 sum log beta_k."""
        k, d = posterior.means.shape
        log_det = (self.structure.log_det(posterior.precisions_cholesky, k, d)
                   - 0.5 * d * np.log(posterior.degrees_of_freedom))
        if self.structure.shared:  # (scikit-learn counts the shared Wishart K times)
            log_wishart = k * float(log_wishart_norm(posterior.degrees_of_freedom, log_det[0],
                                                     d))
        else:
            log_wishart = float(np.sum(log_wishart_norm(posterior.degrees_of_freedom, log_det,
                                                        d)))
        return log_wishart, 0.5 * d * float(np.sum(np.log(posterior.mean_precision)))

    # -- parameters -------------------------------------------------------------------
    def pack(self, params):
        return np.concatenate([params.mean_precision, np.ravel(params.means),
                               np.ravel(params.degrees_of_freedom),
                               np.ravel(params.covariances)])

    def unpack(self, vector, like):
        k, d = like.means.shape
        tied = np.ndim(like.degrees_of_freedom) == 0
        n_dof = 1 if tied else k
        nu = finite_values(vector[k + k * d:k + k * d + n_dof], (n_dof,), "degrees of freedom")
        if not np.all(nu > d - 1.0):
            raise ValueError("degrees of freedom are not above n_features - 1")
        covariances, chol = self.structure.checked_covariances(vector[k + k * d + n_dof:], k,
                                                               d)
        return GaussianWishartPosterior(
            mean_precision=positive_values(vector[:k], (k,), "mean precisions"),
            means=finite_values(vector[k:k + k * d], (k, d), "means"),
            degrees_of_freedom=nu[0] if tied else nu, covariances=covariances,
            precisions_cholesky=chol)
