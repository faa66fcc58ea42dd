"""HMM whose states emit Gaussian mixtures (hmmlearn's GMMHMM).

The K states x M mixture components run as one K*M-component mixture on the
Gaussian kernels: the emission table is a per-state log-sum-exp of the
weighted component log-densities, and the statistics are the component
moments with responsibilities ``posterior(state) * responsibility(component
| state)``. A shared structure ("tied", "EEI") is shared by the M components of
each state (hmmlearn's meaning of "tied"): the structure's per-group scope
(:meth:`fastem.components.structures.Structure.within_groups`), whose kernel
factors give each component its state's matrix.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._typing import Acceleration, Callback, CovarianceType, MissingPolicy, Prior, RandomStateLike
from ..components.structures import STRUCTURES, scatter_about_new_means
from ..components.structures import names as structure_names
from ..engine import UNIT_ROWS, batch_units
from ..engine.packing import finite_values, probability_rows
from ..kernels import gaussian as gk
from ..mixture import kmeans
from ..mixture.component import gaussian_fields, recentre_gaussian, second_moments
from ..mixture.model import MixtureParams, kernel_model, row_outputs
from .base import BaseHMM, _dirichlet_log_prior
from .gaussian import GaussianHMM, check_finite_emissions, far_rows_error

_NO_LABELS = np.empty(0, dtype=np.int64)
_EMPTY = np.empty(0)


class GMMHMM(BaseHMM, kind="hmm-gmm"):
    """Hidden Markov model with Gaussian-mixture emissions (``n_mix`` components per state).

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus hmmlearn's:

    Parameters
    ----------
    n_mix : int, default=1
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance that initialises ``covars_``.
    covariance_type : {"diag", "full", "tied", "spherical", "EEI"}, default="diag"
        "tied": the components of a state share one covariance; "EEI": they share one
        diagonal covariance (``covars_`` of shape (n_components, n_features); the
        inverse-gamma prior of "diag" on the pooled statistics, whose None defaults
        give maximum likelihood).
    weights_prior, means_prior, means_weight, covars_prior, covars_weight
        hmmlearn's priors (``None`` covariance priors take hmmlearn's defaults
        for the covariance type, which amount to maximum likelihood).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    weights_ : ndarray of shape (n_components, n_mix)
    means_ : ndarray of shape (n_components, n_mix, n_features)
    covars_ : ndarray, shape by covariance type as hmmlearn's
    monitor_ : ConvergenceMonitor
    """

    def __init__(self, n_components: int = 1, n_mix: int = 1, min_covar: float = 1e-3,
                 startprob_prior: Prior = 1.0, transmat_prior: Prior = 1.0,
                 weights_prior: Prior = 1.0, means_prior: Prior = 0.0, means_weight: Prior = 0.0,
                 covars_prior: Prior | None = None, covars_weight: Prior | None = None,
                 algorithm: str | None = "viterbi", covariance_type: CovarianceType = "diag",
                 random_state: RandomStateLike = None, n_iter: int = 10, tol: float = 1e-2,
                 verbose: int = False, params: str = "stmcw", init_params: str = "stmcw",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 missing: MissingPolicy = "raise", callback: Callback | None = None,
                 acceleration: Acceleration = "none", learning_decay: float = 0.7,
                 learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.n_threads = n_threads
        self.missing = missing
        self.callback = callback
        self.acceleration = acceleration
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    _validate_X = GaussianHMM._validate_X
    _emission_letters = "mcw"
    _emission_attributes = ("weights_", "means_", "covars_")

    def _features_of(self, params):
        return params["means"].shape[2]

    def _check_emission_hyperparameters(self):
        v.check_int(self.n_mix, "n_mix", 1)
        self._type()
        v.check_real(self.min_covar, "min_covar", 0.0)

    def _check_emission_priors(self, n_features):
        k, m, d = self.n_components, self.n_mix, n_features
        v.check_prior(self.weights_prior, "weights_prior", (k, m), low=0.0)
        v.check_prior(self.means_prior, "means_prior", (k, m, d))
        v.check_prior(self.means_weight, "means_weight", (k, m), low=0.0)
        prior, weight = self._covariance_priors(d)
        prior_shape, weight_shape = self._structure().gmm_prior_shapes(k, m, d)
        v.check_prior(prior, "covars_prior", prior_shape)
        v.check_prior(weight, "covars_weight", weight_shape)

    # -- shapes ----------------------------------------------------------------
    def _shapes(self, d):
        k, m = self.n_components, v.check_int(self.n_mix, "n_mix", 1)
        return self._structure().group_shape(k, m, d)

    def _type(self):
        return v.check_option(self.covariance_type, "covariance_type", structure_names())

    def _structure(self):
        """The covariance structure of the K*M components: the M components of a state
        share its matrix when the structure is shared."""
        return STRUCTURES[self._type()].within_groups(self.n_mix)

    def _covariance_priors(self, d):
        """hmmlearn's defaults for None priors (they make the update maximum likelihood)."""
        m = self.n_mix
        prior, weight = self.covars_prior, self.covars_weight
        defaults = self._structure().gmm_default_priors(m, d)
        return (defaults[0] if prior is None else prior,
                defaults[1] if weight is None else weight)

    # -- parameters ----------------------------------------------------------
    def _initial_emissions(self, X, random_state):
        k, m = self.n_components, self.n_mix
        n, d = X.shape
        params = {}
        if self._needs_init("m", "means_"):
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
            params["means"] = means
        else:
            params["means"] = v.check_parameter_array(self.means_, "means_", (k, m, d)).copy()
        if self._needs_init("w", "weights_"):
            params["weights"] = np.full((k, m), 1.0 / m)
        else:
            params["weights"] = self._checked_weights()
        if self._needs_init("c", "covars_"):
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            params["covars"] = self._structure().from_full(cov, k * m).reshape(
                self._shapes(d))
        else:
            params["covars"] = self._checked_covars(d)
        return params

    def _checked_weights(self):
        weights = v.check_parameter_array(self.weights_, "weights_",
                                          (self.n_components, self.n_mix))
        if np.any(weights < 0) or not np.allclose(weights.sum(axis=1), 1.0):
            raise ValueError("weights_ rows must be non-negative and sum to 1")
        return weights.copy()

    def _checked_covars(self, d):
        covars = v.check_parameter_array(self.covars_, "covars_", self._shapes(d)).copy()
        self._flat_spec_and_covariances(covars)  # positive definite, or a clear error
        return covars

    def _user_emissions(self):
        means = v.check_parameter_array(self.means_, "means_",
                                        (self.n_components, self.n_mix, None))
        return {"means": means.copy(), "weights": self._checked_weights(),
                "covars": self._checked_covars(means.shape[2])}

    def _flat_spec_and_covariances(self, covars):
        """(spec, covariances) of the K*M-component mixture the kernels run; a ValueError
        naming the state (and mixture component) whose covariance is not positive
        definite."""
        k, m = self.n_components, self.n_mix
        spec = self._structure()
        flat = covars.reshape(spec.precisions_shape(k * m, covars.shape[-1]))
        self._check_positive_definite(spec, flat, per_component=not spec.shared)
        return spec, flat

    def _check_positive_definite(self, spec, matrices, per_component):
        """The mixture's factorisation of ``matrices`` (one per state, or per state and
        mixture component), its error worded for covars_ (GMMHMM has no reg_covar)."""
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

    def _checked_emission_parameters(self, params):
        """Finite weights, means and covariances, and covariances the E-step can factor
        (its own test, ``_flat_spec_and_covariances``): fit met a zero or negative
        variance at the next pass, partial_fit stored it."""
        check_finite_emissions(params, [("weights", "weights_", True), ("means", "means_", True),
                                        ("covars", "covars_", True)], self.n_components)
        negative = (params["weights"] < 0).any(axis=1)
        if negative.any():
            raise ValueError(
                f"the M-step gave weights_ of state {int(np.argmax(negative))} a negative "
                f"entry: weights_prior={self.weights_prior!r} below 1 (a Dirichlet mode) "
                "pulls a mixture component with little posterior mass below zero. Use "
                "weights_prior >= 1, or fewer mixture components (n_mix)")
        self._flat_spec_and_covariances(params["covars"])
        return params

    def _flat_model(self, params):
        k, m, d = params["means"].shape
        spec, covariances = self._flat_spec_and_covariances(params["covars"])
        chol = spec.precisions_cholesky(covariances, 0.0)
        mixture = MixtureParams(params["weights"].reshape(k * m), params["means"].reshape(k * m, d),
                                covariances, chol)
        return spec, kernel_model(spec, mixture)

    def _component_table(self, X, params):
        # The E-step asks for the table twice (emissions, then statistics) with the same
        # parameters: keep the last one.
        key = (X, params["weights"], params["means"], params["covars"])
        cached = getattr(self, "_table_cache", None)
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1]
        _, (means, factor, const) = self._flat_model(params)
        table = np.empty((X.shape[0], len(const)))
        gk.gaussian_rows(X, means, factor, const, gk.ROW_WEIGHTED, UNIT_ROWS, _EMPTY, table,
                         _NO_LABELS)
        self._table_cache = (key, table)
        return table

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        k, m = self.n_components, self.n_mix
        table = self._component_table(X, params).reshape(X.shape[0], k, m)
        peak = table.max(axis=2, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        with np.errstate(divide="ignore"):
            result = np.log(np.exp(table - peak).sum(axis=2)) + peak[:, :, 0]
        if out is None:
            return result
        out[:] = result
        return out

    def _limiting_emissions(self, rows, params):
        """The far rows' state log-likelihoods relative to each other: the K*M-component
        mixture's limiting log-posteriors (``far_rows_log_resp``, mixture weights
        included), summed over each state's components."""
        k, m = self.n_components, self.n_mix
        _, prepared = self._flat_model(params)
        log_resp = row_outputs(None, None, np.ascontiguousarray(rows), gk.ROW_LOG_RESP,
                               prepared=prepared).reshape(len(rows), k, m)
        peak = log_resp.max(axis=2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            summed = np.log(np.exp(log_resp - peak).sum(axis=2)) + peak[:, :, 0]
        return np.where(np.isnan(summed), -np.inf, summed)

    def _impossible_rows_error(self, rows):
        return far_rows_error(rows, "every state's mixture components")

    def _emission_fields(self, n_features):
        return gaussian_fields(self.n_components * self.n_mix, n_features,
                               self._structure().diagonal)

    _emission_recentre = staticmethod(recentre_gaussian)

    def _emission_shift(self, params):
        k, m, d = params["means"].shape
        return np.ascontiguousarray(params["means"].reshape(k * m, d), dtype=np.float64)

    def _emission_statistics(self, X, posteriors, params, out, cache=None):
        k, m = self.n_components, self.n_mix
        n = X.shape[0]
        table = self._component_table(X, params).reshape(n, k, m)
        peak = table.max(axis=2, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        within = np.exp(table - peak)
        within /= np.where(within.sum(axis=2, keepdims=True) > 0,
                           within.sum(axis=2, keepdims=True), 1.0)
        resp = np.ascontiguousarray((posteriors[:, :, None] * within).reshape(n, k * m))
        spec, (means, factor, const) = self._flat_model(params)
        gk.gaussian_stats(X, _EMPTY, means, factor, const, out.shift, _NO_LABELS, resp, 0,
                          gk.GIVEN, spec.diagonal, 0, n, UNIT_ROWS,
                          batch_units(out.flat.shape[0]), out.flat)
        self.__dict__.pop("_table_cache", None)  # it served both calls on these rows

    def _pack_emissions(self, params):
        return np.concatenate([np.ravel(params["weights"]), np.ravel(params["means"]),
                               np.ravel(params["covars"])])

    def _unpack_emissions(self, vector, like):
        k, m, d = like["means"].shape
        covars, _ = self._structure().checked_covariances(vector[k * m + k * m * d:], k * m, d)
        return {"weights": probability_rows(vector[:k * m], (k, m), "mixture weights"),
                "means": finite_values(vector[k * m:k * m + k * m * d], (k, m, d), "means"),
                "covars": covars.reshape(like["covars"].shape)}

    def _emission_m_step(self, stats, params):
        k, m, d = params["means"].shape
        shift = stats.shift
        mass, first, second = stats["mass"], stats["first"], second_moments(stats)
        post_mix = mass.reshape(k, m)
        post = post_mix.sum(axis=1)
        new = {}
        weights = params["weights"]
        if "w" in self.params:
            alpha = np.broadcast_to(np.asarray(self.weights_prior, dtype=np.float64), (k, m)) - 1
            with np.errstate(invalid="ignore", divide="ignore"):
                weights = (post_mix + alpha) / (post + alpha.sum(axis=1))[:, None]
            # A state without posterior mass keeps weights that came out 0 / 0.
            weights = _kept_where_empty(weights, params["weights"], post <= 0,
                                        only_non_finite=True)
            new["weights"] = weights
        lam = np.broadcast_to(np.asarray(self.means_weight, dtype=np.float64), (k, m))
        mu0 = np.broadcast_to(np.asarray(self.means_prior, dtype=np.float64), (k, m, d))
        means = params["means"]
        if "m" in self.params:
            numerator = lam[:, :, None] * mu0 + (first + mass[:, None] * shift).reshape(k, m, d)
            denominator = post_mix + lam
            denominator = np.where((weights == 0) & (numerator == 0).all(axis=-1), 1.0,
                                   denominator)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = numerator / denominator[:, :, None]
            means = _kept_where_empty(means, params["means"], post_mix <= 0,
                                      only_non_finite=True)
            new["means"] = means
        if "c" in self.params:
            # Scatter about the new means (hmmlearn uses the previous means here, which is
            # not the EM update and can decrease the likelihood).
            scatter = scatter_about_new_means(mass, first, second,
                                              means.reshape(k * m, d) - shift)
            prior, weight = self._covariance_priors(d)
            centred = means - mu0
            structure = self._structure()
            covars = structure.gmm_map(lam, centred, scatter, post_mix, post, prior, weight)
            # Components (shared: states) without posterior mass keep their covariances,
            # as GaussianHMM's states do: EM has no information to change them (the
            # update was 0 / 0, or zero).
            mass_of = post if structure.shared else post_mix
            covars = _kept_where_empty(covars, params["covars"], mass_of <= 0)
            # A component whose mass is below the round-off of the total (a state nearly
            # unused, with posteriors of 1e-37 on one row) has a covariance of round-off:
            # it keeps its covariance where the update is not positive definite (keeping a
            # component's parameters never lowers EM's objective), instead of failing.
            negligible = mass_of <= np.finfo(np.float64).eps * post.sum()
            if negligible.any():
                covars = self._kept_where_not_positive(covars, params["covars"], negligible)
            new["covars"] = covars
        return new

    def _kept_where_not_positive(self, covars, previous, which):
        """``covars`` with the matrices of ``which`` (a mask over the leading axes) that are
        not positive definite taken from ``previous``."""
        spec = self._structure()
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

    def _emission_log_prior(self, params):
        if "w" not in self.params:
            return 0.0
        return _dirichlet_log_prior(self.weights_prior, params["weights"])

    def _n_emission_parameters(self):
        k, m = self.n_components, self.n_mix
        d = np.shape(self.means_)[2]
        count = k * (m - 1) if "w" in self.params else 0
        if "m" in self.params:
            count += k * m * d
        if "c" in self.params:
            count += int(self._structure().n_covariance_parameters(k * m, d))
        return count

    def _set_emissions(self, params):
        self.weights_ = params["weights"]
        self.means_ = params["means"]
        self.covars_ = params["covars"]
        self.n_features = self.means_.shape[2]
        self.n_features_in_ = self.n_features

    def _emission_sample(self, state, params, random_state):
        component = random_state.choice(self.n_mix, p=params["weights"][state])
        k, m, d = params["means"].shape
        flat = params["covars"].reshape(self._structure().precisions_shape(k * m, d))
        cov = self._structure().one_full(flat, state * m + component, d)
        return random_state.multivariate_normal(params["means"][state, component], cov)


def _kept_where_empty(new, previous, empty, only_non_finite=False):
    """``new`` with the entries of ``empty`` components (a mask over its leading axes)
    taken from ``previous``: all of them, or those whose values are not all finite."""
    if not empty.any():
        return new
    cells = new.reshape(empty.shape + (-1,))
    keep = empty & ~np.isfinite(cells).all(axis=-1) if only_non_finite else empty
    return np.where(keep.reshape(empty.shape + (1,) * (new.ndim - empty.ndim)), previous, new)
