"""Gaussian states under conjugate priors, fitted by their MAP M-step (hmmlearn's
GaussianHMM emissions, as a component that knows no HMM).

The priors are a Normal on each mean (``means_prior``, ``means_weight``) and an
inverse-gamma / Wishart-style prior on the covariances (``covars_prior``,
``covars_weight``); the covariance rule is the structure's
(:meth:`~fastem.components.structures.Structure.hmm_map`), so that no code here
names a covariance type. A singular covariance (a state on one point) is evaluated
with a tiny diagonal jitter instead of stopping the fit; NaN entries of a row are
marginalised (the ``missing_values`` capability). :meth:`prepare` factors the
covariances once per pass, for the lattice and the accumulation alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..components.structures import scatter_about_new_means
from ..engine.packing import finite_values
from ..mixture import kmeans
from ..mixture import missing as missing_data
from ..mixture.component import gaussian_fields, recentre_gaussian, second_moments
from ..mixture.model import MixtureParams, kernel_model, row_outputs
from .base import Component
from .gaussian import given_stats, weighted_log_prob

SINGULAR_JITTER = 1e-7
"""Added to the diagonal of a singular covariance before its density is evaluated (what
hmmlearn does for full covariances), so that a state holding too few points does not stop
the fit."""


def regularised_cholesky(spec, covars):
    """(covariances, precision factors) for the densities: ``covars`` itself, or, when a
    matrix is singular, ``covars`` plus SINGULAR_JITTER on the diagonal."""
    try:
        return covars, spec.precisions_cholesky(covars, 0.0)
    except ValueError:
        pass
    if spec.diagonal:
        jittered = covars + SINGULAR_JITTER
    else:
        jittered = covars + SINGULAR_JITTER * np.eye(covars.shape[-1])
    try:
        return jittered, spec.precisions_cholesky(jittered, 0.0)
    except ValueError:
        raise ValueError(
            "an emission covariance is not positive definite even with "
            f"{SINGULAR_JITTER:g} added to its diagonal (a state holds too few distinct "
            "points, or the data have a constant column). Use fewer states, scale the data, "
            "or set covars_prior/covars_weight (min_covar only regularises the initial "
            "covariances)") from None


def check_finite_emissions(params, names, n_states):
    """ValueError naming the first of ``names`` (parameter key, attribute) that an M-step
    left non-finite, and the state it belongs to when its first axis is the states: the
    posterior-weighted moments of X overflowed float64."""
    for key, attribute, per_state in names:
        value = np.asarray(params[key])
        bad = ~np.isfinite(value)
        if not bad.any():
            continue
        where = ""
        if per_state and value.ndim and value.shape[0] == n_states:
            where = f" of state {int(np.argmax(bad.reshape(n_states, -1).any(axis=1)))}"
        raise ValueError(
            f"the M-step gave non-finite {attribute}{where}: the posterior-weighted moments "
            "of X (sums of x and of x squared) overflow float64, X holding values too large "
            "in magnitude (about 1e154 or more) or too far from the others. Scale the data "
            "(e.g. standardise each column)")


def far_rows_error(rows, what):
    """The ValueError of a fit on ``rows`` whose squared distances to ``what`` overflow
    float64 (their density is 0 in every state)."""
    with np.errstate(invalid="ignore"):
        magnitude = np.nanmax(np.abs(rows[0]))
    return ValueError(
        f"X has {len(rows)} row(s) so far from {what} that their squared distances "
        f"overflow float64 (their density is 0 in every state; the first has an entry of "
        f"magnitude {magnitude:.3g}). Scale the data (e.g. standardise each column)")


@dataclass
class GaussianStates:
    """Means (K, D) and covariances in the structure's own shape."""

    means: np.ndarray
    covars: np.ndarray


@dataclass
class PreparedStates:
    """What one pass reads: the kernels' (means, factor, const), and the flat parameters
    (with the covariances the densities use) that the missing-data paths read."""

    means: np.ndarray
    factor: np.ndarray
    const: np.ndarray
    flat: MixtureParams


def missing_layout(X, n_components, cache):
    """The missing-data layout of rows X when they have NaN entries, else None (kept in
    ``cache``, a dict that lives as long as these rows, when given)."""
    if cache is not None and "layout" in cache:
        return cache["layout"]
    layout = missing_data.MissingLayout(X, n_components) if np.isnan(X).any() else None
    if cache is not None:
        cache["layout"] = layout
    return layout


class MAPGaussian(Component):
    """K Gaussian states under one covariance structure, with conjugate priors.

    Parameters
    ----------
    structure : covariance spec (:data:`fastem.components.structures.STRUCTURES`)
    n_components : int
    means_prior, means_weight : float or array of shape (K, D)
        Normal prior of the means (weight 0: none).
    covars_prior, covars_weight : float or array
        Prior of the covariances, in the shapes of ``structure.hmm_prior_shapes``.
    update_means, update_covars : bool
        Which parts the M-step updates.
    min_covar : float
        Added to the diagonal of the data covariance that starts the covariances.
    initial_means, initial_covars : array or None
        Fixed starting values (None: k-means centres, the data covariance).
    """

    missing_values = True
    recentre = staticmethod(recentre_gaussian)

    def __init__(self, structure, n_components, means_prior=0.0, means_weight=0.0,
                 covars_prior=1e-2, covars_weight=1.0, update_means=True, update_covars=True,
                 min_covar=1e-3, initial_means=None, initial_covars=None):
        self.structure = structure
        self.n_components = int(n_components)
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.update_means = bool(update_means)
        self.update_covars = bool(update_covars)
        self.min_covar = min_covar
        self.initial_means = initial_means
        self.initial_covars = initial_covars

    # -- statistics -------------------------------------------------------------------
    def fields(self, n_features):
        return gaussian_fields(self.n_components, n_features, self.structure.diagonal)

    def shift(self, params):
        return np.ascontiguousarray(params.means, dtype=np.float64)

    # -- one pass ---------------------------------------------------------------------
    def prepare(self, params, constants=None):
        """Factors of the covariances (jittered when singular) and the kernel model, once
        per pass; ``constants`` (K,) are added to the kernel's per-state constants (a
        variational posterior's expectations)."""
        covars, chol = regularised_cholesky(self.structure, params.covars)
        flat = MixtureParams(np.ones(self.n_components), params.means, covars, chol)
        means, factor, const = kernel_model(self.structure, flat)
        if constants is not None:
            const = np.ascontiguousarray(const + constants)
        return PreparedStates(means, factor, const, flat)

    def log_likelihood(self, prepared, X, out=None, cache=None):
        if missing_layout(X, self.n_components, cache) is not None:
            table = missing_data.row_outputs(self.structure, prepared.flat, X, "weighted")
            if out is None:
                return table
            out[:] = table
            return out
        return weighted_log_prob(X, prepared.means, prepared.factor, prepared.const, out)

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        layout = missing_layout(X, self.n_components, cache)
        if layout is not None:
            out.flat += layout.statistics(self.structure, prepared.flat,
                                          responsibilities=np.ascontiguousarray(posteriors))
            return
        given_stats(X, None, posteriors, out.shift, self.structure.diagonal, out)

    def m_step(self, stats, params):
        shift = stats.shift
        post, first, second = stats["mass"], stats["first"], second_moments(stats)
        d = shift.shape[1]
        empty = post <= 0  # states without posterior mass keep their parameters
        means_weight = np.asarray(self.means_weight, dtype=np.float64)
        means_prior = np.asarray(self.means_prior, dtype=np.float64)
        denom = post[:, None]
        means, new_means, covars = shift, params.means, params.covars
        if self.update_means:
            # hmmlearn: (w0 mu0 + sum_t g x_t) / (w0 + sum_t g), from moments about the shift.
            with np.errstate(invalid="ignore", divide="ignore"):
                means = ((means_weight * means_prior + first + denom * shift)
                         / (means_weight + denom))
            means = new_means = np.where(empty[:, None] & ~np.isfinite(means), shift, means)
        if self.update_covars:
            scatter = scatter_about_new_means(post, first, second, means - shift)
            covars = self.structure.hmm_map(
                scatter, means - means_prior, means_weight, post,
                np.asarray(self.covars_prior, dtype=np.float64),
                np.asarray(self.covars_weight, dtype=np.float64), d)
            if not self.structure.shared and np.any(empty):
                covars = np.where(empty.reshape((-1,) + (1,) * (covars.ndim - 1)),
                                  params.covars, covars)
        return GaussianStates(new_means, covars)

    def log_prior(self, params):
        return 0.0  # (hmmlearn's objective is the log-likelihood: the priors regularise)

    def checked(self, params):
        """Finite means and covariances, and covariances the E-step can factor (its own
        test, :func:`regularised_cholesky`); a singular covariance (a state on one point,
        hmmlearn's scalar prior on a full matrix) is kept with the jitter the densities are
        evaluated with, so that the covariances are the positive definite ones they used."""
        spec = self.structure
        d = params.means.shape[1]
        per_state = spec.precisions_shape(1, d) != spec.precisions_shape(2, d)  # (not tied)
        check_finite_emissions({"means": params.means, "covars": params.covars},
                               [("means", "means_", True), ("covars", "covars_", per_state)],
                               self.n_components)
        covars, _ = regularised_cholesky(spec, params.covars)
        return params if covars is params.covars else GaussianStates(params.means, covars)

    # -- start ----------------------------------------------------------------------------
    def initialize(self, X, posteriors, random_state):
        # hmmlearn's start: k-means centres, and the data covariance (plus min_covar).
        k, d = self.n_components, X.shape[1]
        means = self.initial_means
        if means is None:
            means, _ = kmeans.best_of_restarts(kmeans.sample_rows(X, random_state), k,
                                               random_state)
        covars = self.initial_covars
        if covars is None:
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            covars = self.structure.from_full(cov, k)
        return GaussianStates(np.ascontiguousarray(means, dtype=np.float64), covars)

    # -- parameters -----------------------------------------------------------------------
    def pack(self, params):
        return np.concatenate([np.ravel(params.means), np.ravel(params.covars)])

    def unpack(self, vector, like):
        k, d = like.means.shape
        covars, _ = self.structure.checked_covariances(vector[k * d:], k, d)
        return GaussianStates(finite_values(vector[:k * d], (k, d), "means"), covars)

    def n_parameters(self, n_features):
        k = self.n_components
        count = k * n_features if self.update_means else 0
        if self.update_covars:
            count += int(self.structure.n_covariance_parameters(k, n_features))
        return count

    def sample(self, params, state, n_samples, random_state):
        cov = self.structure.one_full(params.covars, state, params.means.shape[1])
        return np.array([random_state.multivariate_normal(params.means[state], cov)
                         for _ in range(n_samples)])

    # -- rows every state finds impossible ----------------------------------------------
    def limiting_log_likelihood(self, params, X):
        """The far rows' log-posteriors under equal state weights (a GaussianMixture's
        limiting posterior): the exact log-ratios of the states' densities, computed
        without the squared distances that overflow."""
        prepared = self.prepare(params)
        if np.isnan(X).any():  # partially missing rows: over their observed entries
            return missing_data.row_outputs(self.structure, prepared.flat, X, "log_resp")
        return row_outputs(self.structure, None, np.ascontiguousarray(X), "log_resp",
                           prepared=(prepared.means, prepared.factor, prepared.const))

    def impossible_rows_error(self, X):
        return far_rows_error(X, "every state's mean")
