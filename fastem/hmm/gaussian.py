"""HMMs with Gaussian emissions (hmmlearn's GaussianHMM and VariationalGaussianHMM):
façades over the Gaussian components with conjugate priors
(:mod:`fastem.components.gaussian_map`) and with a Normal-Wishart posterior
(:mod:`fastem.components.gaussian_variational`), whose covariance rules are the
structures' (:mod:`fastem.components.structures`, shared with GaussianMixture)."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._typing import Acceleration, Callback, CovarianceType, MissingPolicy, Prior, RandomStateLike
from ..components.gaussian_map import (  # noqa: F401  (GMMHMM's names)
    SINGULAR_JITTER,
    GaussianStates,
    MAPGaussian,
    check_finite_emissions,
    far_rows_error,
    regularised_cholesky,
)
from ..components.gaussian_variational import (
    POSTERIOR_FIELDS,
    NormalWishart,
    VariationalGaussian,
    normal_wishart_rules,
)
from ..components.structures import STRUCTURES
from ..components.structures import check_name as check_structure
from ..mixture.variational import checked_prior
from .base import BaseHMM
from .variational import VariationalHMM


def full_covariances(covars, covariance_type, n_components, n_features):
    """(K, D, D) matrices from the covariance type's own shape (hmmlearn's ``covars_``)."""
    return np.array(STRUCTURES[covariance_type].to_full(covars, n_components, n_features),
                    dtype=np.float64)


class GaussianHMM(BaseHMM, kind="hmm-gaussian"):
    """Hidden Markov model with Gaussian emissions.

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus hmmlearn's:

    Parameters
    ----------
    covariance_type : {"diag", "full", "tied", "spherical", "EEI"}, default="diag"
        "EEI": one diagonal covariance shared by all states (its MAP step is the
        diagonal one with the statistics pooled; ``covars_prior`` of shape
        (n_features,), ``covars_weight`` a scalar).
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
        self._covars_ = covars if structure is None else structure.squeezed(covars)

    #: Whether the estimator needs the structure's variational (Normal-Wishart) posterior.
    _variational = False

    @property
    def _spec(self):
        return STRUCTURES[check_structure(self.covariance_type, type(self).__name__,
                                          self._variational)]

    _partial_missing = True
    _emission_letters = "mc"
    _emission_attributes = ("means_", "_covars_")

    def _features_of(self, emission):
        return emission.means.shape[1]

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

    def _checked_covars(self, spec, k, d):
        shape = spec.precisions_shape(k, d)
        covars = self._covars_
        covars = spec.squeezed(covars, k)
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

    # -- the component and its parameters' attributes --------------------------------
    def _component(self, n_features):
        return MAPGaussian(self._spec, self.n_components, self.means_prior, self.means_weight,
                           self.covars_prior, self.covars_weight,
                           update_means="m" in self.params, update_covars="c" in self.params,
                           min_covar=self.min_covar)

    def _fitting_component(self, n_features):
        component = self._component(n_features)
        k = self.n_components
        if not self._needs_init("m", "means_"):
            component.initial_means = v.check_parameter_array(self.means_, "means_",
                                                               (k, n_features)).copy()
        if not self._needs_init("c", "_covars_"):
            component.initial_covars = self._checked_covars(self._spec, k, n_features)
        return component

    def _emission_params(self):
        means = v.check_parameter_array(self.means_, "means_", (self.n_components, None))
        return GaussianStates(np.ascontiguousarray(means, dtype=np.float64),
                              self._checked_covars(self._spec, self.n_components,
                                                   means.shape[1]))

    def _set_emissions(self, emission):
        self.means_ = emission.means
        self._covars_ = emission.covars
        self.n_features = self.means_.shape[1]
        self.n_features_in_ = self.n_features

    @classmethod
    def _warmup(cls, groups, say):
        if "hmm" not in groups:
            return
        X = np.random.RandomState(0).normal(size=(64, 3))
        model = GaussianHMM(2, n_iter=2, random_state=0).fit(X, [32, 32])
        model.score(X)
        model.decode(X)
        say("GaussianHMM")


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

    def _check_emission_priors(self, n_features):
        """The constructor's priors that are set, by the rules fit applies."""
        rules = normal_wishart_rules(self._spec, self.n_components, n_features)
        for stem, rule in rules.items():
            value = getattr(self, stem + "_prior")
            if value is not None:
                checked_prior(value, stem + "_prior", broadcast=True, **rule)

    def _emission_attributes_checked(self, n_features, stems=("means", "beta", "dof", "scale")):
        """The emission prior and posterior attributes (set by the user, or read from a
        file) of ``stems``, each checked as fit needs it."""
        out = {}
        rules_of = normal_wishart_rules(self._spec, self.n_components, n_features)
        for stem in stems:
            for kind in ("_prior", "_posterior"):
                out[stem + kind] = checked_prior(getattr(self, stem + kind + "_"),
                                                 stem + kind + "_", **rules_of[stem])
        return out

    _point_emission_attributes = ("means_", "_covars_")

    def _checked_emission_posterior(self, n_features):
        return NormalWishart(**self._emission_attributes_checked(n_features))

    # -- the components and their parameters' attributes -----------------------------
    def _component(self, n_features):
        priors = {stem: getattr(self, stem + "_prior") for stem in ("means", "beta", "dof",
                                                                     "scale")}
        return VariationalGaussian(self._spec, self.n_components, priors,
                                   update_means="m" in self.params,
                                   update_covars="c" in self.params, min_covar=self.min_covar)

    def _fitting_component(self, n_features):
        component = self._component(n_features)
        if not self._needs_init("m", "means_posterior_"):
            component.fixed.update(self._emission_attributes_checked(n_features,
                                                                     ("means", "beta")))
        if not self._needs_init("c", "scale_posterior_"):
            component.fixed.update(self._emission_attributes_checked(n_features,
                                                                     ("dof", "scale")))
        return component

    def _point_component(self, n_features):
        return MAPGaussian(self._spec, self.n_components, update_means="m" in self.params,
                           update_covars="c" in self.params, min_covar=self.min_covar)

    def _set_emissions(self, emission):
        for name in POSTERIOR_FIELDS:
            setattr(self, name + "_", getattr(emission, name))
        super()._set_emissions(GaussianStates(emission.means_posterior,
                                              emission.point_covariances()))
