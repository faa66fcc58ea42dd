"""HMM with Gaussian emissions (hmmlearn's GaussianHMM).

Emission log-likelihoods and posterior-weighted moments come from the same
Gaussian kernels as :class:`fastem.GaussianMixture` (the covariance structures of
:mod:`fastem.components.structures`, one implementation for both models).
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._special import digamma, gammaln
from .._typing import Acceleration, Callback, CovarianceType, MissingPolicy, Prior, RandomStateLike
from ..components.structures import STRUCTURES, per_matrix, scatter_about_new_means
from ..components.structures import check_name as check_structure
from ..engine import UNIT_ROWS, batch_units
from ..engine.packing import finite_values, positive_values
from ..kernels import gaussian as gk
from ..mixture import kmeans
from ..mixture import missing as missing_data
from ..mixture.component import gaussian_fields, recentre_gaussian, second_moments
from ..mixture.model import MixtureParams, kernel_model, row_outputs
from ..mixture.variational import checked_prior
from .base import BaseHMM
from .variational import VariationalHMM

_NO_LABELS = np.empty(0, dtype=np.int64)
_EMPTY = np.empty(0)


SINGULAR_JITTER = 1e-7
"""Added to the diagonal of a singular covariance before its density is evaluated (what
hmmlearn does for full covariances), so that a state holding too few points does not stop
the fit."""


def regularised_cholesky(spec, covars):
    """(covariances, precision factors) for the emission densities: ``covars`` itself, or,
    when a matrix is singular, ``covars`` plus SINGULAR_JITTER on the diagonal."""
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


def full_covariances(covars, covariance_type, n_components, n_features):
    """(K, D, D) matrices from the covariance type's own shape (hmmlearn's ``covars_``)."""
    return np.array(STRUCTURES[covariance_type].to_full(covars, n_components, n_features),
                    dtype=np.float64)


class GaussianHMM(BaseHMM, kind="hmm-gaussian"):
    """Hidden Markov model with Gaussian emissions.

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus hmmlearn's:

    Parameters
    ----------
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance that initialises ``covars_``.
    means_prior, means_weight : float or array
        Normal prior on the means (weight 0: none).
    covars_prior, covars_weight : float or array
        Inverse-gamma / Wishart-style prior on the covariances, as hmmlearn.

    Attributes
    ----------
    startprob_, transmat_, means_ : ndarray
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Full covariance matrices (hmmlearn's convention); set it with the
        covariance type's own shape.
    monitor_ : ConvergenceMonitor
    """

    def __init__(self, n_components: int = 1, covariance_type: CovarianceType = "diag",
                 min_covar: float = 1e-3, startprob_prior: Prior = 1.0, transmat_prior: Prior = 1.0,
                 means_prior: Prior = 0, means_weight: Prior = 0, covars_prior: Prior | None = 1e-2,
                 covars_weight: Prior | None = 1, algorithm: str | None = "viterbi",
                 random_state: RandomStateLike = None, n_iter: int = 10, tol: float = 1e-2,
                 verbose: int = False, params: str = "stmc", init_params: str = "stmc",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 missing: MissingPolicy = "raise", callback: Callback | None = None,
                 acceleration: Acceleration = "none", learning_decay: float = 0.7,
                 learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
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

    # -- covariances in hmmlearn's two shapes --------------------------------
    @property
    def covars_(self):
        """Covariances as full (n_components, n_features, n_features) matrices."""
        return full_covariances(self._covars_, self.covariance_type, self.n_components,
                                np.shape(self.means_)[-1])

    @covars_.setter
    def covars_(self, covars):
        covars = np.array(covars, dtype=np.float64, copy=True)
        structure = STRUCTURES.get(getattr(self, "covariance_type", None))
        if (structure is not None and structure.precisions_shape(2, 3) == (2,)
                and covars.ndim > 1 and covars.size == covars.shape[0]):
            # one variance per state: hmmlearn accepts (K, 1), (K, 1, 1)
            covars = covars.reshape(covars.shape[0])
        self._covars_ = covars

    #: Whether the estimator needs the structure's variational (Normal-Wishart) posterior.
    _variational = False

    @property
    def _spec(self):
        return STRUCTURES[check_structure(self.covariance_type, type(self).__name__,
                                          self._variational)]

    _partial_missing = True
    _emission_letters = "mc"
    _emission_attributes = ("means_", "_covars_")

    def _features_of(self, params):
        return params["means"].shape[1]

    def _check_emission_hyperparameters(self):
        check_structure(self.covariance_type, type(self).__name__, self._variational)
        v.check_real(self.min_covar, "min_covar", 0.0)

    def _check_emission_priors(self, n_features):
        k, d = self.n_components, n_features
        v.check_prior(self.means_prior, "means_prior", (k, d))
        v.check_prior(self.means_weight, "means_weight", (k, d), low=0.0)
        (prior_shape, low), weight_shape = self._spec.hmm_prior_shapes(k, d)
        v.check_prior(self.covars_prior, "covars_prior", prior_shape, low=low)
        v.check_prior(self.covars_weight, "covars_weight", weight_shape)

    def _validate_X(self, X, fitting, allow_nan=False):
        X = v.check_array(X, min_samples=1, estimator=type(self).__name__, allow_nan=allow_nan)
        if allow_nan and np.isinf(X).any():
            raise ValueError("Input X contains infinity (missing='marginalize' only accepts NaN "
                             "as a missing entry).")
        if not fitting and hasattr(self, "means_"):
            n_features = np.shape(self.means_)[-1]
            if X.shape[1] != n_features:
                raise ValueError(f"X has {X.shape[1]} features, but the model has "
                                 f"{n_features}")
        if fitting and X.shape[0] < self.n_components:
            raise ValueError(f"X has {X.shape[0]} samples, fewer than n_components="
                             f"{self.n_components}")
        return X

    def _initial_emissions(self, X, random_state):
        spec = self._spec
        k, d = self.n_components, X.shape[1]
        if self._needs_init("m", "means_"):
            means, _ = kmeans.best_of_restarts(kmeans.sample_rows(X, random_state), k,
                                               random_state)
        else:
            means = v.check_parameter_array(self.means_, "means_", (k, d)).copy()
        if self._needs_init("c", "_covars_"):
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            covars = spec.from_full(cov, k)
        else:
            covars = self._checked_covars(spec, k, d)
        return {"means": np.ascontiguousarray(means, dtype=np.float64), "covars": covars}

    def _checked_covars(self, spec, k, d):
        shape = spec.precisions_shape(k, d)
        covars = self._covars_
        if spec.precisions_shape(2, 3) == (2,) and np.size(covars) == k:
            covars = np.reshape(covars, k)  # hmmlearn accepts (K,), (K, 1), (K, 1, 1), ...
        covars = v.check_parameter_array(covars, "covars_", shape).copy()
        if not np.isfinite(covars).all() or (spec.diagonal and np.any(covars <= 0.0)):
            raise ValueError(f"covars_ must hold positive definite {self.covariance_type!r} "
                             "covariances (positive variances)")
        try:  # as in fitting: a singular matrix is evaluated with a tiny diagonal jitter
            regularised_cholesky(spec, covars)
        except (ValueError, np.linalg.LinAlgError):
            raise ValueError(f"covars_ must hold positive definite {self.covariance_type!r} "
                             "covariances (positive variances)") from None
        return covars

    def _user_emissions(self):
        means = v.check_parameter_array(self.means_, "means_", (self.n_components, None))
        return {"means": np.ascontiguousarray(means, dtype=np.float64),
                "covars": self._checked_covars(self._spec, self.n_components, means.shape[1])}

    def _mixture_params(self, params):
        covars, chol = regularised_cholesky(self._spec, params["covars"])
        return MixtureParams(np.ones(self.n_components), params["means"], covars, chol)

    def _missing_layout(self, X, cache=None):
        """The missing-data layout of X when it has NaN entries, else None (kept in
        ``cache`` during a fit, or for the last X of one call)."""
        if cache is not None and "layout" in cache:
            return cache["layout"]
        cached = getattr(self, "_layout_cache", None)
        if cache is None and cached is not None and cached[0] is X:
            return cached[1]
        layout = None
        if np.isnan(X).any():
            layout = missing_data.MissingLayout(X, self.n_components)
        if cache is not None:
            cache["layout"] = layout
        else:
            self._layout_cache = (X, layout)
        return layout

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        if self._missing_layout(X, cache) is not None:
            table = missing_data.row_outputs(self._spec, self._mixture_params(params), X,
                                             "weighted")
            if out is None:
                return table
            out[:] = table
            return out
        means, factor, const = self._emission_kernel_model(params)
        if out is None:
            out = np.empty((X.shape[0], self.n_components))
        gk.gaussian_rows(X, means, factor, const, gk.ROW_WEIGHTED, UNIT_ROWS, _EMPTY, out,
                         _NO_LABELS)
        return out

    def _emission_kernel_model(self, params):
        """(means, precision factors, per-state constants) as the Gaussian kernels read
        them."""
        means, factor, const = kernel_model(self._spec, self._mixture_params(params))
        if "emission_constants" in params:  # a variational model's per-state terms
            const = np.ascontiguousarray(const + params["emission_constants"])
        return means, factor, const

    def _limiting_emissions(self, rows, params):
        """The far rows' log-posteriors under equal state weights (a GaussianMixture's
        limiting posterior, ``far_rows_log_resp``): the exact log-ratios of the states'
        densities, computed without the squared distances that overflow."""
        if np.isnan(rows).any():  # partially missing rows: over their observed entries
            return missing_data.row_outputs(self._spec, self._mixture_params(params), rows,
                                            "log_resp")
        return row_outputs(self._spec, None, np.ascontiguousarray(rows), gk.ROW_LOG_RESP,
                           prepared=self._emission_kernel_model(params))

    def _impossible_rows_error(self, rows):
        return far_rows_error(rows, "every state's mean")

    def _emission_fields(self, n_features):
        return gaussian_fields(self.n_components, n_features, self._spec.diagonal)

    _emission_recentre = staticmethod(recentre_gaussian)

    def _emission_shift(self, params):
        return np.ascontiguousarray(params["means"], dtype=np.float64)

    def _emission_statistics(self, X, posteriors, params, out, cache=None):
        layout = self._missing_layout(X, cache)
        if layout is not None:
            out.flat += layout.statistics(self._spec, self._mixture_params(params),
                                          responsibilities=np.ascontiguousarray(posteriors))
            return
        spec = self._spec
        means, factor, const = kernel_model(spec, self._mixture_params(params))
        gk.gaussian_stats(X, _EMPTY, means, factor, const, out.shift, _NO_LABELS,
                          posteriors, 0, gk.GIVEN, spec.diagonal, 0, X.shape[0],
                          UNIT_ROWS, batch_units(out.flat.shape[0]), out.flat)

    def _pack_emissions(self, params):
        return np.concatenate([np.ravel(params["means"]), np.ravel(params["covars"])])

    def _unpack_emissions(self, vector, like):
        k, d = like["means"].shape
        covars, _ = self._spec.checked_covariances(vector[k * d:], k, d)
        return {"means": finite_values(vector[:k * d], (k, d), "means"), "covars": covars}

    def _emission_m_step(self, stats, params):
        shift = stats.shift
        post, first, second = stats["mass"], stats["first"], second_moments(stats)
        d = shift.shape[1]
        new = {}
        empty = post <= 0  # states without posterior mass keep their parameters
        means_weight = np.asarray(self.means_weight, dtype=np.float64)
        means_prior = np.asarray(self.means_prior, dtype=np.float64)
        denom = post[:, None]
        means = shift
        if "m" in self.params:
            # hmmlearn: (w0 mu0 + sum_t g x_t) / (w0 + sum_t g), from moments about the shift.
            with np.errstate(invalid="ignore", divide="ignore"):
                means = ((means_weight * means_prior + first + denom * shift)
                         / (means_weight + denom))
            means = np.where(empty[:, None] & ~np.isfinite(means), shift, means)
            new["means"] = means
        if "c" in self.params:
            scatter = scatter_about_new_means(post, first, second, means - shift)
            covars = self._spec.hmm_map(scatter, means - means_prior, means_weight, post,
                                        np.asarray(self.covars_prior, dtype=np.float64),
                                        np.asarray(self.covars_weight, dtype=np.float64), d)
            if not self._spec.shared and np.any(empty):
                covars = np.where(empty.reshape((-1,) + (1,) * (covars.ndim - 1)),
                                  params["covars"], covars)
            new["covars"] = covars
        return new

    def _checked_emission_parameters(self, params):
        """Finite means and covariances, and covariances the E-step can factor (its own
        test, :func:`regularised_cholesky`); a singular covariance (a state on one point,
        hmmlearn's scalar prior on a full matrix) is kept with the jitter the densities are
        evaluated with, so that ``covars_`` is the positive definite matrix they used."""
        spec = self._spec
        d = params["means"].shape[1]
        per_state = spec.precisions_shape(1, d) != spec.precisions_shape(2, d)  # (not tied)
        check_finite_emissions(params, [("means", "means_", True),
                                        ("covars", "covars_", per_state)], self.n_components)
        covars, _ = regularised_cholesky(spec, params["covars"])
        return params if covars is params["covars"] else {**params, "covars": covars}

    def _n_emission_parameters(self):
        k, d = self.n_components, np.asarray(self.means_).shape[1]
        count = k * d if "m" in self.params else 0
        if "c" in self.params:
            count += int(self._spec.n_covariance_parameters(k, d))
        return count

    def _set_emissions(self, params):
        self.means_ = params["means"]
        self._covars_ = params["covars"]
        self.n_features = self.means_.shape[1]
        self.n_features_in_ = self.n_features

    def _emission_sample(self, state, params, random_state):
        cov = self._spec.one_full(params["covars"], state, params["means"].shape[1])
        return random_state.multivariate_normal(params["means"][state], cov)


def _wishart_log_normaliser(dof, scale):
    """log Z of a Wishart with inverse scale B (density prop. to |G|^((a-D-1)/2)
    exp(-tr(B G) / 2)), as in Ji, Krishnapuram & Carin (2006)."""
    d = scale.shape[0]
    _, log_det = np.linalg.slogdet(scale / 2.0)
    return (d * (d - 1) / 4.0 * np.log(np.pi) - dof / 2.0 * log_det
            + float(gammaln((dof - np.arange(d)) / 2.0).sum()))


def wishart_kl(dof_q, scale_q, dof_p, scale_p):
    """KL(Wishart(dof_q, B_q) || Wishart(dof_p, B_p)) for inverse scales B."""
    d = scale_q.shape[0]
    _, log_det = np.linalg.slogdet(scale_q / 2.0)
    expected_log_det = -log_det + float(digamma((dof_q - np.arange(d)) / 2.0).sum())
    return ((dof_q - dof_p) / 2.0 * expected_log_det - d * dof_q / 2.0
            + dof_q / 2.0 * np.trace(scale_p @ np.linalg.inv(scale_q))
            + _wishart_log_normaliser(dof_p, scale_p) - _wishart_log_normaliser(dof_q, scale_q))


class VariationalGaussianHMM(VariationalHMM, GaussianHMM, kind="vhmm-gaussian",
                             command=False):
    """Gaussian HMM trained by variational inference (hmmlearn 0.3's
    ``VariationalGaussianHMM``): Dirichlet posteriors over the start probabilities and
    transition rows, and a Normal-Wishart posterior over each state's mean and
    precision (one shared Wishart for ``tied``; for ``diag`` and ``spherical`` the
    Wishart of the diagonal matrices, as hmmlearn).

    The emission table of the pass is the Gaussian kernel's with the posterior means,
    the covariances ``scale / dof`` and per-state constants (the expected
    log-determinant and the ``D / beta`` term); ``means_`` and ``covars_`` are those
    point values. ``monitor_.history`` holds hmmlearn's lower bound. fastem adds
    ``n_init``, ``n_threads``, ``callback``, ``acceleration`` and ``sample_weight`` in
    :meth:`fit`.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    startprob_prior, transmat_prior : float, array or None
        Dirichlet concentrations (None: 1 / n_components).
    means_prior, beta_prior : array or None
        Mean and precision scale of the Normal prior of the means (None: the data's
        mean, and 1).
    dof_prior, scale_prior : array or None
        Degrees of freedom and inverse scale of the Wishart prior (None: n_features
        and 1e-3 times the identity).
    algorithm, random_state, n_iter, tol, verbose, params, init_params, implementation
        As in hmmlearn (``n_iter=100``, ``tol=1e-6``).
    n_init, n_threads, callback
        As in :class:`GaussianHMM`.
    acceleration : {"none", "squarem"}, default="none"
        "squarem": SQUAREM extrapolation of the Dirichlet and Normal-Wishart posteriors
        between passes; a trial is kept only if it is a valid posterior and its lower
        bound is at least the plain step's (the bound never decreases).
        ``monitor_.iter`` counts passes over the data.

    Attributes
    ----------
    startprob_prior_, startprob_posterior_, transmat_prior_, transmat_posterior_,
    means_prior_, means_posterior_, beta_prior_, beta_posterior_, dof_prior_,
    dof_posterior_, scale_prior_, scale_posterior_, startprob_, transmat_, means_,
    covars_, monitor_
    """

    _emission_attributes = ("means_", "_covars_", "means_prior_", "means_posterior_",
                            "beta_prior_", "beta_posterior_", "dof_prior_", "dof_posterior_",
                            "scale_prior_", "scale_posterior_")

    def __init__(self, n_components: int = 1, covariance_type: CovarianceType = "full",
                 startprob_prior: Prior | None = None, transmat_prior: Prior | None = None,
                 means_prior: Prior | None = None, beta_prior: Prior | None = None,
                 dof_prior: Prior | None = None, scale_prior: Prior | None = None,
                 algorithm: str | None = "viterbi", random_state: RandomStateLike = None,
                 n_iter: int = 100, tol: float = 1e-6, verbose: int = False,
                 params: str = "stmc", init_params: str = "stmc",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 callback: Callback | None = None, acceleration: Acceleration = "none") -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.beta_prior = beta_prior
        self.dof_prior = dof_prior
        self.scale_prior = scale_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.n_threads = n_threads
        self.callback = callback
        self.acceleration = acceleration

    min_covar = 1e-3  # hmmlearn adds it to the data covariance of the initial covars_

    _variational = True  # the structures with a conjugate posterior (not EEI's)

    def _check_emission_hyperparameters(self):
        check_structure(self.covariance_type, type(self).__name__, self._variational)

    def _emission_rules(self, n_features):
        """The checks of each emission prior and posterior (shape and domain), shared with
        BayesianGaussianMixture's Normal-Wishart priors (see ``checked_prior``)."""
        k, d, spec = self.n_components, n_features, self._spec
        return {"means": dict(shape=(k, d)), "beta": dict(shape=(k,), positive=True),
                "dof": dict(shape=spec.matrices_shape(k), above=d - 1.0),
                "scale": dict(shape=spec.precisions_shape(k, d), scale_of=spec)}

    def _check_emission_priors(self, n_features):
        """The constructor's priors that are set, by the rules fit applies."""
        for stem, rules in self._emission_rules(n_features).items():
            value = getattr(self, stem + "_prior")
            if value is not None:
                checked_prior(value, stem + "_prior", broadcast=True, **rules)

    def _emission_prior(self, stem, n_features, default):
        """A constructor prior (or its default), checked, in its full shape."""
        value = getattr(self, stem + "_prior")
        return checked_prior(default if value is None else value, stem + "_prior",
                             broadcast=True, **self._emission_rules(n_features)[stem])

    def _emission_attributes_checked(self, n_features, stems=("means", "beta", "dof", "scale")):
        """The emission prior and posterior attributes (set by the user, or read from a
        file) of ``stems``, each checked as fit needs it."""
        out = {}
        rules_of = self._emission_rules(n_features)
        for stem in stems:
            rules = rules_of[stem]
            for kind in ("_prior", "_posterior"):
                out[stem + kind] = checked_prior(getattr(self, stem + kind + "_"),
                                                 stem + kind + "_", **rules)
        return out

    _point_emission_attributes = ("means_", "_covars_")

    def _checked_emission_posteriors(self, n_features):
        return self._emission_attributes_checked(n_features)

    # -- initialisation -----------------------------------------------------------------
    def _initial_emissions(self, X, random_state):
        k, d = self.n_components, X.shape[1]
        spec = self._spec
        params = {}
        need_means = self._needs_init("m", "means_posterior_")
        need_covars = self._needs_init("c", "scale_posterior_")
        if need_means or need_covars:
            means, labels = kmeans.best_of_restarts(kmeans.sample_rows(X, random_state), k,
                                                    random_state)
            if labels.shape[0] != X.shape[0]:
                labels, _ = kmeans.nearest_center(X, means)
            counts = np.bincount(labels, minlength=k).astype(np.float64)
        if need_means:
            params["means_prior"] = self._emission_prior("means", d, np.mean(X, axis=0))
            params["means_posterior"] = np.ascontiguousarray(means, dtype=np.float64)
            params["beta_prior"] = self._emission_prior("beta", d, 1.0)
            # hmmlearn's counts, raised to the prior as the posterior of any data is (a
            # k-means cluster may be empty).
            params["beta_posterior"] = np.maximum(counts, params["beta_prior"])
        else:
            params.update(self._emission_attributes_checked(d, ("means", "beta")))
        if need_covars:
            params["dof_prior"] = self._emission_prior("dof", d, float(d))
            # hmmlearn's counts, raised to the prior: a cluster of fewer than D points (an
            # outlier's) gave dof <= D - 1, outside the Wishart's domain.
            params["dof_posterior"] = np.maximum(spec.pooled(counts), params["dof_prior"])
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            covars = spec.from_full(cov, k)
            scale = covars * per_matrix(params["dof_posterior"], covars)
            params["scale_prior"] = self._emission_prior("scale", d,
                                                         spec.scaled_identity(1e-3, k, d))
            params["scale_posterior"] = np.array(scale, dtype=np.float64)
        else:
            params.update(self._emission_attributes_checked(d, ("dof", "scale")))
        return params

    # -- the pass -----------------------------------------------------------------------
    def _subnormalised_emissions(self, params):
        """Posterior means, covariances scale / dof (as the kernel reads them) and the
        per-state constants that turn log N(x; m, scale / dof) into E[log N(x; mu, L^-1)]
        without the -D/2 log 2 pi term (hmmlearn's sub-normalised table)."""
        k = self.n_components
        d = params["means_posterior"].shape[1]
        spec = self._spec
        covars, chol = regularised_cholesky(spec, self._point_covariances(params))
        nu = np.broadcast_to(np.asarray(params["dof_posterior"], dtype=np.float64), (k,))
        # 1/2 (sum psi((nu - i)/2) + D log 2 + log det W) - D / (2 beta), W = scale^-1, and
        # minus the Gaussian normaliser of N(m, scale / nu) that the kernel adds.
        log_det_covars = -spec.log_det(chol, k, d) * 2.0  # log det(scale / nu)
        log_det_w = -(log_det_covars + d * np.log(nu))
        expected = 0.5 * (digamma(0.5 * (nu[:, None] - np.arange(d))).sum(axis=1)
                          + d * np.log(2.0) + log_det_w)
        constants = (expected - 0.5 * d / params["beta_posterior"]
                     + 0.5 * d * gk.LOG_2PI + 0.5 * log_det_covars)
        return {"means": np.ascontiguousarray(params["means_posterior"]), "covars": covars,
                "emission_constants": constants}

    def _emission_m_step(self, stats, params):
        new = {}
        shift = stats.shift
        post, first, second = stats["mass"], stats["first"], second_moments(stats)
        beta, means = params["beta_posterior"], params["means_posterior"]
        if "m" in self.params:
            beta = params["beta_prior"] + post
            observed = first + post[:, None] * shift
            means = (params["beta_prior"][:, None] * params["means_prior"] + observed) \
                / beta[:, None]
            new.update(beta_posterior=beta, means_posterior=means)
        if "c" in self.params:
            spec = self._spec
            dof = params["dof_prior"] + spec.pooled(post)
            # Scatter about the data means plus the shrinkage to the prior mean: hmmlearn's
            # raw-moment formula rearranged, without its cancellation.
            nk = np.where(post > 0, post, 1.0)
            centre = shift + first / nk[:, None]
            scatter = scatter_about_new_means(post, first, second, centre - shift)
            if "m" in self.params:
                pull = params["beta_prior"] * post / beta
                offset = centre - params["means_prior"]
                if second.ndim == 2:  # diagonal statistics
                    spread = scatter + pull[:, None] * offset ** 2
                else:
                    spread = scatter + pull[:, None, None] * np.einsum("ka,kb->kab", offset,
                                                                       offset)
            else:  # the means stay: hmmlearn's formula as it is
                raw = _raw_second_moments(post, first, second, shift)
                prior_outer = _outer(params["beta_prior"], params["means_prior"], second.ndim)
                spread = raw + prior_outer - _outer(beta, means, second.ndim)
            scale = params["scale_prior"] + spec.collect(spread)
            new.update(dof_posterior=dof, scale_posterior=np.asarray(scale, dtype=np.float64))
        return new

    def _pack_emission_posteriors(self, params):
        return np.concatenate([np.ravel(params[name]) for name in (
            "means_posterior", "beta_posterior", "dof_posterior", "scale_posterior")])

    def _unpack_emission_posteriors(self, vector, like):
        k, d = like["means_posterior"].shape
        n_dof = np.size(like["dof_posterior"])
        means, beta = vector[:k * d], vector[k * d:k * d + k]
        dof, scale = vector[k * d + k:k * d + k + n_dof], vector[k * d + k + n_dof:]
        dof = finite_values(dof, np.shape(like["dof_posterior"]), "degrees of freedom")
        if not np.all(dof > d - 1.0):
            raise ValueError("degrees of freedom are not above n_features - 1")
        scale, _ = self._spec.checked_covariances(scale, k, d)  # positive definite, or raises
        return {"means_posterior": finite_values(means, (k, d), "means"),
                "beta_posterior": positive_values(beta, (k,), "mean precisions"),
                "dof_posterior": dof, "scale_posterior": scale}

    def _emission_kl(self, params):
        """hmmlearn's emission terms: the KL of each state's Normal given the posterior's
        expected precision, and of its Wishart (once for tied)."""
        k = self.n_components
        d = params["means_posterior"].shape[1]
        scale_q = full_covariances(params["scale_posterior"], self.covariance_type, k, d)
        scale_p = full_covariances(params["scale_prior"], self.covariance_type, k, d)
        dof_q = np.broadcast_to(np.asarray(params["dof_posterior"], dtype=np.float64), (k,))
        dof_p = np.broadcast_to(np.asarray(params["dof_prior"], dtype=np.float64), (k,))
        beta_q, beta_p = params["beta_posterior"], params["beta_prior"]
        kl = 0.0
        for state in range(k):
            try:
                precision = np.linalg.inv(scale_q[state]) * dof_q[state]
                diff = params["means_posterior"][state] - params["means_prior"][state]
                ratio = beta_q[state] / beta_p[state]
                kl += 0.5 * (d * np.log(ratio) + d / ratio
                             + beta_p[state] * diff @ precision @ diff - d)
                if not self._spec.shared or state == 0:  # (one Wishart when shared)
                    kl += wishart_kl(dof_q[state], scale_q[state], dof_p[state],
                                     scale_p[state])
            except np.linalg.LinAlgError:
                raise ValueError(
                    f"The posterior scale of state {state} is singular: its moments "
                    "overflowed (values beyond float64's range). Scale the data (e.g. "
                    "standardise each column).") from None
        return float(kl)

    def _set_emissions(self, params):
        for name in ("means_prior", "means_posterior", "beta_prior", "beta_posterior",
                     "dof_prior", "dof_posterior", "scale_prior", "scale_posterior"):
            setattr(self, name + "_", params[name])
        super()._set_emissions({"means": params["means_posterior"],
                                "covars": self._point_covariances(params)})

    def _point_covariances(self, params):
        """scale / dof in the covariance type's shape (hmmlearn's ``_covars_``)."""
        dof = np.asarray(params["dof_posterior"], dtype=np.float64)
        scale = params["scale_posterior"]
        return scale / per_matrix(dof, scale)


def _raw_second_moments(post, first, second, shift):
    """sum g x x^T (or its diagonal) from moments about ``shift``."""
    if second.ndim == 2:
        return second + 2.0 * first * shift + post[:, None] * shift ** 2
    cross = np.einsum("ka,kb->kab", first, shift)
    return (second + cross + np.swapaxes(cross, 1, 2)
            + post[:, None, None] * np.einsum("ka,kb->kab", shift, shift))


def _outer(weights, vectors, ndim):
    if ndim == 2:
        return weights[:, None] * vectors ** 2
    return weights[:, None, None] * np.einsum("ka,kb->kab", vectors, vectors)
