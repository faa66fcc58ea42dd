"""The variational Bayesian Gaussian mixture as an engine model: the mixture composite's
variational option (a Dirichlet weight prior, :mod:`fastem.composites.mixture`) over the
Gaussian-Wishart component (:mod:`fastem.components.gaussian_posterior`), and the
prior checks the variational estimators share.

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

from dataclasses import dataclass

import numpy as np

from ..components.gaussian_posterior import (
    GaussianWishart,
    GaussianWishartPosterior,
    GaussianWishartPrior,
)
from ..composites.mixture import DirichletWeights
from .model import GaussianMixtureModel

WEIGHT_PRIORS = DirichletWeights.TYPES


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
    return DirichletWeights(weight_type, None).expected_log(concentration)


def point_weights(weight_type, concentration):
    """The weights' posterior means, normalised (scikit-learn's ``weights_``)."""
    return DirichletWeights(weight_type, None).point_weights(concentration)


class VariationalGaussianMixtureModel(GaussianMixtureModel):
    """The variational Gaussian mixture: the mixture composite with a Dirichlet weight
    prior over the variational Gaussian component (constants, posterior M-step and the
    lower bound's terms live there), in scikit-learn's attribute shapes
    (:class:`VariationalParams`)."""

    def __init__(self, spec, n_components, n_features, reg_covar, init_params, prior):
        component = GaussianWishart(
            spec, n_components, reg_covar,
            GaussianWishartPrior(prior.mean_precision, prior.mean, prior.degrees_of_freedom,
                                 prior.covariance))
        super().__init__(spec, n_components, n_features, reg_covar, init_params,
                         component=component,
                         weight_prior=DirichletWeights(prior.weight_type,
                                                       prior.weight_concentration))
        self.prior = prior

    def split(self, params):
        return params.weight_concentration, GaussianWishartPosterior(
            params.mean_precision, params.means, params.degrees_of_freedom,
            params.covariances, params.precisions_cholesky)

    def join(self, concentration, components):
        return VariationalParams(
            weight_concentration=concentration, mean_precision=components.mean_precision,
            means=components.means, degrees_of_freedom=components.degrees_of_freedom,
            covariances=components.covariances,
            precisions_cholesky=components.precisions_cholesky)

    def component_constants(self, params):
        """c_k: log rho_ik = c_k - |U_k^T (x_i - m_k)|^2 / 2 (U_k the kernel's factor)."""
        concentration, components = self.split(params)
        return self.component.expected_constants(
            components, self.weight_prior.expected_log(concentration))
