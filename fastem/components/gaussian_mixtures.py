"""States that are themselves Gaussian mixtures (hmmlearn's GMMHMM emissions, as a
component that knows no HMM).

Each of the K states is a mixture of M Gaussians; the K*M Gaussians run as one
K*M-component mixture on the Gaussian kernels. A state's log-likelihood is the
log-sum-exp of its M weighted component log-densities; its statistics are the
component moments with responsibilities ``posterior(state) x responsibility(component
| state)``. The structure is the one of the K*M components, given by the caller
(``Structure.within_groups(M)``: a shared structure is shared by the M components of
each state). The M-step is the MAP estimate under hmmlearn's priors (Dirichlet on the
weights, Normal on the means, the structure's ``gmm_map`` for the covariances).
:meth:`prepare` factors the covariances once per pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.packing import finite_values, probability_rows
from ..mixture import kmeans
from ..mixture.component import gaussian_fields, recentre_gaussian, second_moments
from ..mixture.model import MixtureParams, kernel_model, row_outputs
from .base import Component
from .dirichlet import dirichlet_log_prior
from .gaussian import given_stats, weighted_log_prob
from .gaussian_map import check_finite_emissions, far_rows_error
from .structures import scatter_about_new_means


@dataclass
class MixtureStates:
    """Mixture weights (K, M), means (K, M, D) and covariances (the structure's shape
    for K groups of M components)."""

    weights: np.ndarray
    means: np.ndarray
    covars: np.ndarray


@dataclass
class PreparedMixtures:
    """The kernels' (means, factor, const) of the K*M components, once per pass."""

    means: np.ndarray
    factor: np.ndarray
    const: np.ndarray


class GaussianMixtures(Component):
    """K states, each a mixture of ``n_mix`` Gaussians (see the module docstring).

    Parameters
    ----------
    structure : covariance structure of the K*M components (``within_groups(n_mix)``)
    n_components, n_mix : int
    weights_prior : float or array of shape (K, M)
        Dirichlet prior of each state's weights (1: none).
    means_prior, means_weight : float or array
        Normal prior of the means, (K, M, D) and (K, M) (weight 0: none).
    covars_prior, covars_weight : float or array
        Prior of the covariances (``structure.gmm_prior_shapes``).
    update_weights, update_means, update_covars : bool
        Which parts the M-step updates.
    min_covar : float
        Added to the diagonal of the data covariance that starts the covariances.
    initial_weights, initial_means, initial_covars : array or None
        Fixed starting values (None: uniform weights, k-means within k-means clusters,
        the data covariance).
    """

    recentre = staticmethod(recentre_gaussian)

    def __init__(self, structure, n_components, n_mix, weights_prior=1.0, means_prior=0.0,
                 means_weight=0.0, covars_prior=None, covars_weight=None, update_weights=True,
                 update_means=True, update_covars=True, min_covar=1e-3, initial_weights=None,
                 initial_means=None, initial_covars=None):
        self.structure = structure
        self.n_components = int(n_components)
        self.n_mix = int(n_mix)
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.update_weights = bool(update_weights)
        self.update_means = bool(update_means)
        self.update_covars = bool(update_covars)
        self.min_covar = min_covar
        self.initial_weights = initial_weights
        self.initial_means = initial_means
        self.initial_covars = initial_covars

    # -- statistics (of the K*M components) ---------------------------------------------
    def fields(self, n_features):
        return gaussian_fields(self.n_components * self.n_mix, n_features,
                               self.structure.diagonal)

    def shift(self, params):
        k, m, d = params.means.shape
        return np.ascontiguousarray(params.means.reshape(k * m, d), dtype=np.float64)

    # -- one pass -------------------------------------------------------------------------
    def flat_covariances(self, covars):
        """The K*M components' covariances in the structure's shape, checked positive
        definite: a ValueError naming the state (and mixture component) otherwise."""
        k, m = self.n_components, self.n_mix
        spec = self.structure
        flat = covars.reshape(spec.precisions_shape(k * m, covars.shape[-1]))
        self._check_positive_definite(flat, per_component=not spec.shared)
        return flat

    def _check_positive_definite(self, matrices, per_component):
        """The mixture's factorisation of ``matrices`` (one per state, or per state and
        mixture component), its error worded for covars_ (GMMHMM has no reg_covar)."""
        spec = self.structure
        try:
            spec.precisions_cholesky(matrices, 0.0)
            return
        except ValueError:
            pass
        for index in range(len(matrices)):  # (the error path only: find the first)
            try:
                spec.precisions_cholesky(matrices[index:index + 1], 0.0)
            except ValueError:
                break
        where = (f"state {index // self.n_mix}, mixture component {index % self.n_mix}"
                 if per_component else f"state {index}")
        raise ValueError(
            f"covars_ of {where} is not positive definite: "
            "the points it holds are too few or too close together, or the data's spread is "
            "below float64's resolution. Scale the data, use fewer states or mixture "
            "components (n_mix), or set covars_prior/covars_weight (min_covar only "
            "regularises the initial covariances)") from None

    def prepare(self, params):
        k, m, d = params.means.shape
        spec = self.structure
        covariances = self.flat_covariances(params.covars)
        chol = spec.precisions_cholesky(covariances, 0.0)
        mixture = MixtureParams(params.weights.reshape(k * m), params.means.reshape(k * m, d),
                                covariances, chol)
        return PreparedMixtures(*kernel_model(spec, mixture))

    def _component_table(self, prepared, X, cache):
        """(n, K*M) weighted component log-densities. The pass asks for them twice on the
        same rows (lattice, then accumulation): kept in ``cache`` in between."""
        held = None if cache is None else cache.get("component_table")
        if held is not None and held[0] is prepared and held[1] is X:
            return held[2]
        table = weighted_log_prob(X, prepared.means, prepared.factor, prepared.const)
        if cache is not None:
            cache["component_table"] = (prepared, X, table)
        return table

    def log_likelihood(self, prepared, X, out=None, cache=None):
        k, m = self.n_components, self.n_mix
        table = self._component_table(prepared, X, cache).reshape(X.shape[0], k, m)
        peak = table.max(axis=2, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        with np.errstate(divide="ignore"):
            result = np.log(np.exp(table - peak).sum(axis=2)) + peak[:, :, 0]
        if out is None:
            return result
        out[:] = result
        return out

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        k, m = self.n_components, self.n_mix
        n = X.shape[0]
        table = self._component_table(prepared, X, cache).reshape(n, k, m)
        if cache is not None:
            cache.pop("component_table", None)  # it served both calls on these rows
        peak = table.max(axis=2, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        within = np.exp(table - peak)
        within /= np.where(within.sum(axis=2, keepdims=True) > 0,
                           within.sum(axis=2, keepdims=True), 1.0)
        resp = np.ascontiguousarray((posteriors[:, :, None] * within).reshape(n, k * m))
        given_stats(X, None, resp, out.shift, self.structure.diagonal, out)

    def m_step(self, stats, params):
        k, m, d = params.means.shape
        shift = stats.shift
        mass, first, second = stats["mass"], stats["first"], second_moments(stats)
        post_mix = mass.reshape(k, m)
        post = post_mix.sum(axis=1)
        weights, covars = params.weights, params.covars
        if self.update_weights:
            alpha = np.broadcast_to(np.asarray(self.weights_prior, dtype=np.float64), (k, m)) - 1
            with np.errstate(invalid="ignore", divide="ignore"):
                weights = (post_mix + alpha) / (post + alpha.sum(axis=1))[:, None]
            # A state without posterior mass keeps weights that came out 0 / 0.
            weights = _kept_where_empty(weights, params.weights, post <= 0,
                                        only_non_finite=True)
        lam = np.broadcast_to(np.asarray(self.means_weight, dtype=np.float64), (k, m))
        mu0 = np.broadcast_to(np.asarray(self.means_prior, dtype=np.float64), (k, m, d))
        means = params.means
        if self.update_means:
            numerator = lam[:, :, None] * mu0 + (first + mass[:, None] * shift).reshape(k, m, d)
            denominator = post_mix + lam
            denominator = np.where((weights == 0) & (numerator == 0).all(axis=-1), 1.0,
                                   denominator)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = numerator / denominator[:, :, None]
            means = _kept_where_empty(means, params.means, post_mix <= 0,
                                      only_non_finite=True)
        if self.update_covars:
            # Scatter about the new means (hmmlearn uses the previous means here, which is
            # not the EM update and can decrease the likelihood).
            scatter = scatter_about_new_means(mass, first, second,
                                              means.reshape(k * m, d) - shift)
            prior, weight = self.covars_prior, self.covars_weight
            centred = means - mu0
            structure = self.structure
            covars = structure.gmm_map(lam, centred, scatter, post_mix, post, prior, weight)
            # Components (shared: states) without posterior mass keep their covariances,
            # as GaussianHMM's states do: EM has no information to change them (the
            # update was 0 / 0, or zero).
            mass_of = post if structure.shared else post_mix
            covars = _kept_where_empty(covars, params.covars, mass_of <= 0)
            # A component whose mass is below the round-off of the total (a state nearly
            # unused, with posteriors of 1e-37 on one row) has a covariance of round-off:
            # it keeps its covariance where the update is not positive definite (keeping a
            # component's parameters never lowers EM's objective), instead of failing.
            negligible = mass_of <= np.finfo(np.float64).eps * post.sum()
            if negligible.any():
                covars = self._kept_where_not_positive(covars, params.covars, negligible)
        return MixtureStates(weights, means, covars)

    def _kept_where_not_positive(self, covars, previous, which):
        """``covars`` with the matrices of ``which`` (a mask over the leading axes) that are
        not positive definite taken from ``previous``."""
        spec = self.structure
        flat, old = covars.reshape((-1,) + covars.shape[which.ndim:]), None
        for index in np.flatnonzero(which.ravel()):
            try:
                spec.precisions_cholesky(flat[index:index + 1], 0.0)
            except ValueError:
                if old is None:
                    flat = flat.copy()
                    old = previous.reshape(flat.shape)
                flat[index] = old[index]
        return flat.reshape(covars.shape)

    def log_prior(self, params):
        if not self.update_weights:
            return 0.0
        return dirichlet_log_prior(self.weights_prior, params.weights)

    def checked(self, params):
        """Finite weights, means and covariances, and covariances the E-step can factor
        (its own test, :meth:`flat_covariances`): fit met a zero or negative variance at
        the next pass, partial_fit stored it."""
        check_finite_emissions(vars(params), [("weights", "weights_", True),
                                              ("means", "means_", True),
                                              ("covars", "covars_", True)], self.n_components)
        negative = (params.weights < 0).any(axis=1)
        if negative.any():
            raise ValueError(
                f"the M-step gave weights_ of state {int(np.argmax(negative))} a negative "
                f"entry: weights_prior={self.weights_prior!r} below 1 (a Dirichlet mode) "
                "pulls a mixture component with little posterior mass below zero. Use "
                "weights_prior >= 1, or fewer mixture components (n_mix)")
        self.flat_covariances(params.covars)
        return params

    # -- start ----------------------------------------------------------------------------
    def initialize(self, X, posteriors, random_state):
        # hmmlearn's start: k-means clusters for the states, k-means++ and Lloyd within
        # each for its components (draws about the centres' mean for a small cluster).
        k, m = self.n_components, self.n_mix
        n, d = X.shape
        means = self.initial_means
        if means is None:
            rng = random_state
            sample = kmeans.sample_rows(X, rng)
            centers, labels = kmeans.best_of_restarts(sample, k, rng)
            means = np.empty((k, m, d))
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            for state in range(k):
                rows = sample[labels == state]
                if len(rows) >= m:
                    seeds = kmeans.kmeans_plusplus(np.ascontiguousarray(rows), m, None, rng)
                    means[state], _ = kmeans.lloyd(np.ascontiguousarray(rows), None, rows[seeds])
                else:
                    means[state] = rng.multivariate_normal(centers.mean(axis=0), cov, size=m)
        weights = self.initial_weights
        if weights is None:
            weights = np.full((k, m), 1.0 / m)
        covars = self.initial_covars
        if covars is None:
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            covars = self.structure.from_full(cov, k * m).reshape(
                self.structure.group_shape(k, m, d))
        return MixtureStates(weights, means, covars)

    # -- parameters -----------------------------------------------------------------------
    def pack(self, params):
        return np.concatenate([np.ravel(params.weights), np.ravel(params.means),
                               np.ravel(params.covars)])

    def unpack(self, vector, like):
        k, m, d = like.means.shape
        covars, _ = self.structure.checked_covariances(vector[k * m + k * m * d:], k * m, d)
        return MixtureStates(probability_rows(vector[:k * m], (k, m), "mixture weights"),
                             finite_values(vector[k * m:k * m + k * m * d], (k, m, d),
                                           "means"),
                             covars.reshape(like.covars.shape))

    def n_parameters(self, n_features):
        k, m = self.n_components, self.n_mix
        count = k * (m - 1) if self.update_weights else 0
        if self.update_means:
            count += k * m * n_features
        if self.update_covars:
            count += int(self.structure.n_covariance_parameters(k * m, n_features))
        return count

    def sample(self, params, state, n_samples, random_state):
        k, m, d = params.means.shape
        flat = params.covars.reshape(self.structure.precisions_shape(k * m, d))
        rows = []
        for _ in range(n_samples):
            component = random_state.choice(self.n_mix, p=params.weights[state])
            cov = self.structure.one_full(flat, state * m + component, d)
            rows.append(random_state.multivariate_normal(params.means[state, component], cov))
        return np.array(rows)

    # -- rows every state finds impossible ----------------------------------------------
    def limiting_log_likelihood(self, params, X):
        """The far rows' state log-likelihoods relative to each other: the K*M-component
        mixture's limiting log-posteriors (mixture weights included), summed over each
        state's components."""
        k, m = self.n_components, self.n_mix
        prepared = self.prepare(params)
        log_resp = row_outputs(None, None, np.ascontiguousarray(X), "log_resp",
                               prepared=(prepared.means, prepared.factor, prepared.const)
                               ).reshape(len(X), k, m)
        peak = log_resp.max(axis=2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            summed = np.log(np.exp(log_resp - peak).sum(axis=2)) + peak[:, :, 0]
        return np.where(np.isnan(summed), -np.inf, summed)

    def impossible_rows_error(self, X):
        return far_rows_error(X, "every state's mixture components")


def _kept_where_empty(new, previous, empty, only_non_finite=False):
    """``new`` with the entries of ``empty`` components (a mask over its leading axes)
    taken from ``previous``: all of them, or those whose values are not all finite."""
    if not empty.any():
        return new
    cells = new.reshape(empty.shape + (-1,))
    keep = empty & ~np.isfinite(cells).all(axis=-1) if only_non_finite else empty
    return np.where(keep.reshape(empty.shape + (1,) * (new.ndim - empty.ndim)), previous, new)
