"""HMMs for count data: PoissonHMM and MultinomialHMM (hmmlearn's).

Both emission log-likelihoods are ``X @ log(rates).T`` plus terms that depend
on the row only (log-factorials, computed once per call by a small kernel) or
on the state only; the statistics are the posterior mass and the
posterior-weighted counts.
"""

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
from ..engine.packing import nonnegative_values
from ..kernels.counts import row_log_factorials
from .base import BaseHMM, ProbabilityEmissions, _normalise

_TINY = np.finfo(np.float64).tiny  # floor of a rate inside log(): 0 * log(0) counts as 0


def _check_counts(X, estimator, n_features=None):
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"X must hold non-negative integer counts, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"X must be 2-d (n_samples, n_features), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"X is empty: shape {array.shape}")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError("X contains NaN (with missing='marginalize', a row of NaN is a "
                         "missing observation)")
    v.check_nonnegative_integers(array, "X", noun="count")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"X has {array.shape[1]} features, but {estimator} has {n_features}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _count_fields(n_components, n_features):
    return {"post": (n_components,), "obs": (n_components, n_features)}


def _add_posterior_counts(X, posteriors, out):
    out["post"][...] += posteriors.sum(axis=0)
    out["obs"][...] += posteriors.T @ X


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

    def _features_of(self, params):
        return params["lambdas"].shape[1]

    def _check_emission_priors(self, n_features):
        shape = (self.n_components, n_features)
        v.check_prior(self.lambdas_prior, "lambdas_prior", shape, low=0.0)
        v.check_prior(self.lambdas_weight, "lambdas_weight", shape, low=0.0)

    def _validate_X(self, X, fitting):
        known = None if fitting or not hasattr(self, "lambdas_") else np.shape(self.lambdas_)[1]
        return _check_counts(X, type(self).__name__, known)

    def _initial_emissions(self, X, random_state):
        if self._needs_init("l", "lambdas_"):
            mean, var = X.mean(), X.var()
            if var <= 0 or mean <= 0:
                raise ValueError("X has no variation in its counts: cannot initialise lambdas_ "
                                 "by the method of moments; set lambdas_ and init_params")
            rates = random_state.gamma(shape=mean**2 / var, scale=var / mean,
                                       size=(self.n_components, X.shape[1]))
            return {"lambdas": rates}
        return self._user_emissions()

    def _user_emissions(self):
        rates = v.check_parameter_array(self.lambdas_, "lambdas_", (self.n_components, None))
        if np.any(rates < 0):
            raise ValueError("lambdas_ must be non-negative")
        return {"lambdas": rates}

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        rates = params["lambdas"]
        factorials = np.empty(X.shape[0])
        row_log_factorials(X, factorials)
        table = X @ np.log(np.maximum(rates, _TINY)).T
        table -= rates.sum(axis=1)[None, :]
        table -= factorials[:, None]
        if out is None:
            return table
        out[:] = table
        return out

    def _emission_fields(self, n_features):
        return _count_fields(self.n_components, n_features)

    def _emission_statistics(self, X, posteriors, params, out, cache=None):
        _add_posterior_counts(X, posteriors, out)

    def _pack_emissions(self, params):
        return np.ravel(params["lambdas"])

    def _unpack_emissions(self, vector, like):
        return {"lambdas": nonnegative_values(vector, like["lambdas"].shape, "rates")}

    def _emission_m_step(self, stats, params):
        if "l" not in self.params:
            return {}
        prior = np.asarray(self.lambdas_prior, dtype=np.float64)
        weight = np.asarray(self.lambdas_weight, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = (prior + stats["obs"]) / (weight + stats["post"][:, None])
        return {"lambdas": np.where(np.isfinite(rates), rates, params["lambdas"])}

    def _emission_log_prior(self, params):
        if "l" not in self.params:
            return 0.0
        prior = np.asarray(self.lambdas_prior, dtype=np.float64)
        weight = np.asarray(self.lambdas_weight, dtype=np.float64)
        rates = params["lambdas"]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(prior == 0, 0.0, prior * np.log(rates)) - weight * rates
        return float(np.sum(terms))

    def _n_emission_parameters(self):
        return int(np.size(self.lambdas_)) if "l" in self.params else 0

    def _set_emissions(self, params):
        self.lambdas_ = params["lambdas"]
        self.n_features = self.lambdas_.shape[1]
        self.n_features_in_ = self.n_features

    def _emission_sample(self, state, params, random_state):
        return random_state.poisson(params["lambdas"][state])


class MultinomialHMM(ProbabilityEmissions, BaseHMM, kind="hmm-multinomial"):
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

    def _features_of(self, params):
        return params["emissionprob"].shape[1]

    def _validate_X(self, X, fitting):
        known = (None if fitting or not hasattr(self, "emissionprob_")
                 else np.shape(self.emissionprob_)[1])
        X = _check_counts(X, type(self).__name__, known)
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

    def _initial_emissions(self, X, random_state):
        if self._needs_init("e", "emissionprob_"):
            return {"emissionprob": _normalise(random_state.rand(self.n_components,
                                                                 X.shape[1]))}
        return self._user_emissions()

    def _user_emissions(self):
        emission = v.check_parameter_array(self.emissionprob_, "emissionprob_",
                                           (self.n_components, None))
        sums = emission.sum(axis=1)
        if np.any(emission < 0) or not np.allclose(sums, 1.0):
            raise ValueError(f"emissionprob_ rows must be non-negative and sum to 1, got row "
                             f"sums {np.round(sums, 6).tolist()}")
        return {"emissionprob": emission}

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        factorials = np.empty(X.shape[0])
        row_log_factorials(X, factorials)
        totals = np.empty(X.shape[0])
        row_log_factorials(X.sum(axis=1)[:, None], totals)
        table = X @ np.log(np.maximum(params["emissionprob"], _TINY)).T
        table += (totals - factorials)[:, None]
        if out is None:
            return table
        out[:] = table
        return out

    def _emission_fields(self, n_features):
        return _count_fields(self.n_components, n_features)

    def _emission_statistics(self, X, posteriors, params, out, cache=None):
        _add_posterior_counts(X, posteriors, out)

    def _emission_m_step(self, stats, params):
        if "e" not in self.params:
            return {}
        return {"emissionprob": _normalise(stats["obs"], params["emissionprob"])}

    def _n_emission_parameters(self):
        k, n_features = np.shape(self.emissionprob_)
        return k * (n_features - 1) if "e" in self.params else 0

    def _set_emissions(self, params):
        self.emissionprob_ = params["emissionprob"]
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

    def _emission_sample(self, state, params, random_state):
        return random_state.multinomial(int(self.n_trials), params["emissionprob"][state])
