"""The Gaussian mixture as an engine model: the mixture composite with the Gaussian
component, in GaussianMixture's parameter shapes.

The model is :class:`fastem.composites.mixture.MixtureModel` over
:class:`fastem.components.gaussian.Gaussian`; this module adds only the mapping
between the composite's (weights, component parameters) and :class:`MixtureParams`
(scikit-learn's flat shapes, which the estimators, their model files and SQUAREM's
packed vectors use), and the user's initial parameters. The names below are what
the rest of fastem imports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..components.gaussian import (
    Gaussian,
    GaussianParams,
    far_rows_log_resp,
    given_stats,
    label_stats,
    mixture_rows,
    posterior_stats,
)
from ..composites.mixture import MixtureModel

POSTERIOR, LABELS, GIVEN = 0, 1, 2  # the sources of GaussianMixtureModel._add_stats

__all__ = ["GaussianMixtureModel", "MixtureParams", "far_rows_log_resp", "kernel_model",
           "params_from_stats", "row_outputs"]


@dataclass
class MixtureParams:
    """Parameters in scikit-learn's public shapes (float64)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray


def _gaussian_params(params):
    return GaussianParams(params.means, params.covariances, params.precisions_cholesky)


def kernel_model(spec, params):
    """(means, factor, const) as the Gaussian kernels read them."""
    component = Gaussian(spec, params.means.shape[0])
    with np.errstate(divide="ignore"):  # a zero weight is a valid -inf log-weight
        log_weights = np.log(params.weights)
    return component.mixture_prepare(_gaussian_params(params), params.weights, log_weights)


def params_from_stats(spec, stats, reg_covar, total_weight=None):
    """Closed-form M-step from Gaussian statistics (about ``stats.shift``).

    Weights are normalised by the mass unless ``total_weight`` is given
    (scikit-learn divides initial masses by the number of samples instead).
    """
    k, d = stats["first"].shape
    model = GaussianMixtureModel(spec, k, d, reg_covar, "kmeans")
    return model.params_from_stats(stats, None, total_weight)


def row_outputs(spec, params, X, what, prepared=None):
    """Per-row log-density (``what="logsumexp"``), log-posteriors (``"log_resp"``) or
    labels (``"argmax"``) of X under ``params``, or under ``prepared``: the kernel's
    (means, factor, const), e.g. a variational model's. See
    :func:`fastem.components.gaussian.mixture_rows`."""
    return mixture_rows(X, kernel_model(spec, params) if prepared is None else prepared, what)


class GaussianMixtureModel(MixtureModel):
    """A Gaussian mixture as an engine model (:class:`fastem.engine.BlockModel`).

    Parameters
    ----------
    spec : covariance spec from :data:`fastem.components.structures.STRUCTURES`.
    n_components, n_features : shapes.
    reg_covar, init_params : as in the estimator.
    weights_init, means_init, precisions_cholesky_init : validated user
        overrides (float64) or None.
    missing : bool, default=False
        NaN marks missing entries (the Gaussian's ``missing`` option).
    component, weight_prior : another Gaussian component (e.g. the variational one) and
        the composite's weight prior (variational Bayes), or None.
    """

    def __init__(self, spec, n_components, n_features, reg_covar, init_params,
                 weights_init=None, means_init=None, precisions_cholesky_init=None,
                 missing=False, component=None, weight_prior=None):
        if component is None:
            component = Gaussian(spec, n_components, reg_covar, missing=missing)
        super().__init__(component, n_features, init_params, weight_prior)
        self.spec = spec
        self.reg_covar = reg_covar
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_cholesky_init = precisions_cholesky_init

    def split(self, params):
        return params.weights, _gaussian_params(params)

    def join(self, weights, components):
        return MixtureParams(weights, components.means, components.covariances,
                             components.precisions_cholesky)

    def shift(self, params):
        # Also of a variational posterior (VariationalGaussianMixtureModel's parameters).
        return np.ascontiguousarray(params.means, dtype=np.float64)

    # -- statistics with given sources (tests and benchmarks read them) -------------------
    def _add_stats(self, block, out, means, factor, const, shift, source, labels=None,
                   resp=None, lo=0, hi=None):
        X, diagonal = block.X, self.spec.diagonal
        if source == POSTERIOR:
            posterior_stats(X, block.weights, (means, factor, const), out, shift, lo, hi)
        elif source == LABELS:
            label_stats(X, block.weights, labels, shift, diagonal, out)
        else:
            given_stats(X, block.weights, resp, shift, diagonal, out, lo, hi)

    # -- the start with the user's initial parameters ------------------------------------
    def _initial_params(self, initial_stats):
        spec = self.spec
        overrides = (self.weights_init, self.means_init, self.precisions_cholesky_init)
        if any(v is None for v in overrides):
            params = super()._initial_params(initial_stats)
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
