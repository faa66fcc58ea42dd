"""HMMs for count data: PoissonHMM and MultinomialHMM (hmmlearn's), façades over the
count components of :mod:`fastem.components.counts`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validation as v
from .._typing import (
    Acceleration,
    ArrayLike,
    Callback,
    IntArray,
    MissingPolicy,
    NDArray,
    Prior,
    RandomStateLike,
)
from ..components.categorical import check_probability_rows
from ..components.counts import Multinomial, MultinomialParams, Poisson, PoissonParams, check_counts
from .base import BaseHMM


class PoissonHMM(BaseHMM, kind="hmm-poisson"):
    """Hidden Markov model with independent Poisson emissions per feature.

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus:

    Parameters
    ----------
    lambdas_prior, lambdas_weight : float or array
        Gamma prior (shape ``lambdas_prior``, rate ``lambdas_weight``) of the rates;
        0, 0: none. The update is ``(prior + sum_t g x_t) / (weight + sum_t g)``
        per state (hmmlearn 0.3 divides by the posterior mass of all states).

    Attributes
    ----------
    startprob_, transmat_, lambdas_ : ndarray
    monitor_ : ConvergenceMonitor
    """

    def __init__(self, n_components: int = 1, startprob_prior: Prior = 1.0,
                 transmat_prior: Prior = 1.0, lambdas_prior: Prior = 0.0,
                 lambdas_weight: Prior = 0.0, algorithm: str | None = "viterbi",
                 random_state: RandomStateLike = None, n_iter: int = 10, tol: float = 1e-2,
                 verbose: int = False, params: str = "stl", init_params: str = "stl",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 missing: MissingPolicy = "raise", callback: Callback | None = None,
                 acceleration: Acceleration = "none", learning_decay: float = 0.7,
                 learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
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

    _emission_letters = "l"
    _emission_attributes = ("lambdas_",)

    def _features_of(self, emission):
        return emission.lambdas.shape[1]

    def _check_emission_priors(self, n_features):
        shape = (self.n_components, n_features)
        v.check_prior(self.lambdas_prior, "lambdas_prior", shape, low=0.0)
        v.check_prior(self.lambdas_weight, "lambdas_weight", shape, low=0.0)

    def _validate_X(self, X, fitting):
        known = None if fitting or not hasattr(self, "lambdas_") else np.shape(self.lambdas_)[1]
        return check_counts(X, type(self).__name__, known)

    # -- the component and its parameters' attributes --------------------------------
    def _component(self, n_features):
        return Poisson(self.n_components, self.lambdas_prior, self.lambdas_weight)

    def _initial_emission(self):
        return None if self._needs_init("l", "lambdas_") else self._emission_params()

    def _emission_params(self):
        rates = v.check_parameter_array(self.lambdas_, "lambdas_", (self.n_components, None))
        if np.any(rates < 0):
            raise ValueError("lambdas_ must be non-negative")
        return PoissonParams(rates)

    def _set_emissions(self, emission):
        self.lambdas_ = emission.lambdas
        self.n_features = self.lambdas_.shape[1]
        self.n_features_in_ = self.n_features


class MultinomialHMM(BaseHMM, kind="hmm-multinomial"):
    """Hidden Markov model with multinomial emissions (counts of n_features outcomes).

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus:

    Parameters
    ----------
    n_trials : int, array of int, or None
        Number of trials of each row; None: each row's sum. When given, every
        row must sum to it.

    Attributes
    ----------
    startprob_, transmat_, emissionprob_ : ndarray
    monitor_ : ConvergenceMonitor
    """

    def __init__(self, n_components: int = 1, n_trials: ArrayLike | None = None,
                 startprob_prior: Prior = 1.0, transmat_prior: Prior = 1.0,
                 algorithm: str | None = "viterbi", random_state: RandomStateLike = None,
                 n_iter: int = 10, tol: float = 1e-2, verbose: int = False, params: str = "ste",
                 init_params: str = "ste", implementation: str = "log", n_init: int = 1,
                 n_threads: int | None = None, missing: MissingPolicy = "raise",
                 callback: Callback | None = None, acceleration: Acceleration = "none",
                 learning_decay: float = 0.7, learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.n_trials = n_trials
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
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

    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)

    def _features_of(self, emission):
        return emission.emissionprob.shape[1]

    def _validate_X(self, X, fitting):
        known = (None if fitting or not hasattr(self, "emissionprob_")
                 else np.shape(self.emissionprob_)[1])
        X = check_counts(X, type(self).__name__, known)
        trials = self._checked_trials(X.shape[0])
        if trials is not None:
            sums = X.sum(axis=1)
            if not np.array_equal(sums, trials):
                bad = int(np.flatnonzero(sums != trials)[0])
                raise ValueError(f"row {bad} of X sums to {sums[bad]:g}, but n_trials is "
                                 f"{trials[bad]:g}")
        return X

    def _checked_trials(self, n_samples):
        """``n_trials`` as one count per row (float64), or None."""
        if self.n_trials is None:
            return None
        trials = np.asarray(self.n_trials)
        if trials.ndim > 1 or (trials.ndim == 1 and trials.shape[0] != n_samples):
            raise ValueError(f"n_trials must be an int or a 1-d array with one count per row "
                             f"of X ({n_samples}), got shape {trials.shape}")
        v.check_nonnegative_integers(trials, "n_trials")
        return np.broadcast_to(trials.astype(np.float64), (n_samples,))

    # -- the component and its parameters' attributes --------------------------------
    def _component(self, n_features):
        trials = self.n_trials if np.ndim(self.n_trials) == 0 else None
        return Multinomial(self.n_components, trials)

    def _initial_emission(self):
        return None if self._needs_init("e", "emissionprob_") else self._emission_params()

    def _emission_params(self):
        return MultinomialParams(check_probability_rows(self.emissionprob_, "emissionprob_",
                                                        (self.n_components, None)))

    def _set_emissions(self, emission):
        self.emissionprob_ = emission.emissionprob
        self.n_features = self.emissionprob_.shape[1]
        self.n_features_in_ = self.n_features

    def sample(self, n_samples: int = 1, random_state: RandomStateLike = None,
               currstate: int | None = None) -> tuple[NDArray[Any], IntArray]:
        """Draw a sequence; every row has ``n_trials`` trials, which must be one integer
        (as hmmlearn: a per-row list or None cannot say how many trials new rows have)."""
        trials = self.n_trials
        if trials is None or np.ndim(trials) != 0:
            raise ValueError(f"sampling needs n_trials to be one integer (the trials of every "
                             f"sampled row), got {trials!r}")
        v.check_int(trials, "n_trials", 0)
        return super().sample(n_samples, random_state, currstate)
