"""HMM whose states emit Gaussian mixtures (hmmlearn's GMMHMM): a façade over the
component that is itself a mixture (:mod:`fastem.components.gaussian_mixtures`).

A shared structure ("tied", "EEI") is shared by the M components of each state
(hmmlearn's meaning of "tied"): the structure's per-group scope
(:meth:`fastem.components.structures.Structure.within_groups`), whose kernel
factors give each component its state's matrix.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._typing import Acceleration, Callback, CovarianceType, MissingPolicy, Prior, RandomStateLike
from ..components.gaussian_mixtures import GaussianMixtures, MixtureStates
from ..components.structures import STRUCTURES
from ..components.structures import names as structure_names
from .base import BaseHMM
from .gaussian import GaussianHMM


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

    def _features_of(self, emission):
        return emission.means.shape[2]

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

    # -- the component and its parameters' attributes --------------------------------
    def _component(self, n_features):
        prior, weight = self._covariance_priors(n_features)
        return GaussianMixtures(self._structure(), self.n_components, self.n_mix,
                                self.weights_prior, self.means_prior, self.means_weight,
                                prior, weight, update_weights="w" in self.params,
                                update_means="m" in self.params,
                                update_covars="c" in self.params, min_covar=self.min_covar)

    def _fitting_component(self, n_features):
        component = self._component(n_features)
        k, m, d = self.n_components, self.n_mix, n_features
        if not self._needs_init("m", "means_"):
            component.initial_means = v.check_parameter_array(self.means_, "means_",
                                                               (k, m, d)).copy()
        if not self._needs_init("w", "weights_"):
            component.initial_weights = self._checked_weights()
        if not self._needs_init("c", "covars_"):
            component.initial_covars = self._checked_covars(d)
        return component

    def _checked_weights(self):
        weights = v.check_parameter_array(self.weights_, "weights_",
                                          (self.n_components, self.n_mix))
        if np.any(weights < 0) or not np.allclose(weights.sum(axis=1), 1.0):
            raise ValueError("weights_ rows must be non-negative and sum to 1")
        return weights.copy()

    def _checked_covars(self, d):
        covars = v.check_parameter_array(self.covars_, "covars_", self._shapes(d)).copy()
        self._component(d).flat_covariances(covars)  # positive definite, or a clear error
        return covars

    def _emission_params(self):
        means = v.check_parameter_array(self.means_, "means_",
                                        (self.n_components, self.n_mix, None))
        return MixtureStates(self._checked_weights(), means.copy(),
                             self._checked_covars(means.shape[2]))

    def _set_emissions(self, emission):
        self.weights_ = emission.weights
        self.means_ = emission.means
        self.covars_ = emission.covars
        self.n_features = self.means_.shape[2]
        self.n_features_in_ = self.n_features
