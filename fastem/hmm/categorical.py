"""HMM with categorical emissions (hmmlearn's CategoricalHMM)."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._typing import Acceleration, Callback, MissingPolicy, Prior, RandomStateLike
from ..components.categorical import (
    MAX_TABLE,
    Categorical,
    CategoricalParams,
    CategoricalPosterior,
    VariationalCategorical,
    check_probability_rows,
    checked_symbols,
    symbol_column,
)
from ..components.dirichlet import posterior_mean
from ..mixture.variational import checked_prior
from .base import BaseHMM
from .variational import VariationalHMM

__all__ = ["MAX_TABLE", "CategoricalHMM", "VariationalCategoricalHMM"]


class CategoricalHMM(BaseHMM, kind="hmm-categorical"):
    """Hidden Markov model with categorical emissions (symbols 0 .. n_features - 1).

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus:

    Parameters
    ----------
    emissionprob_prior : float or array of shape (n_components, n_features)
        Dirichlet prior of each row of ``emissionprob_`` (1.0: none).
    n_features : int or None
        Number of symbols; None: inferred (largest symbol + 1, or from ``emissionprob_``).

    Attributes
    ----------
    startprob_, transmat_, emissionprob_ : ndarray
    monitor_ : ConvergenceMonitor
    """

    def __init__(self, n_components: int = 1, startprob_prior: Prior = 1.0,
                 transmat_prior: Prior = 1.0, *, emissionprob_prior: Prior = 1.0,
                 n_features: int | None = None, algorithm: str | None = "viterbi",
                 random_state: RandomStateLike = None, n_iter: int = 10, tol: float = 1e-2,
                 verbose: int = False, params: str = "ste", init_params: str = "ste",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 missing: MissingPolicy = "raise", callback: Callback | None = None,
                 acceleration: Acceleration = "none", learning_decay: float = 0.7,
                 learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
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
    _n_features_is_parameter = True

    def _features_of(self, emission):
        return emission.emissionprob.shape[1]

    def _n_features_in(self, n_features):
        return 1  # one column of symbols

    def _n_emission_features(self, X):
        return self._fit_n_symbols

    def _adopt_emission_features(self, per_partition):
        # Each partition saw its own largest symbol: the alphabet is the largest of all.
        self._fit_n_symbols = max(per_partition)
        return self._fit_n_symbols

    def _check_emission_priors(self, n_features):
        v.check_prior(self.emissionprob_prior, "emissionprob_prior",
                      (self.n_components, n_features), low=0.0)

    def _check_emission_hyperparameters(self):
        # Before any data are read: the table's size follows from the arguments alone.
        self._declared_n_symbols()

    def _declared_n_symbols(self):
        """``n_features`` checked against the bound on the emission table (or None)."""
        if self.n_features is None:
            return None
        k = v.check_int(self.n_components, "n_components", 1)
        n_symbols = v.check_int(self.n_features, "n_features", 1)
        if n_symbols > MAX_TABLE // k:
            raise ValueError(
                f"n_features={n_symbols} with n_components={k} needs {k} x {n_symbols} "
                f"emission tables, above the limit of {MAX_TABLE} entries ({MAX_TABLE >> 17} "
                f"MiB of float64; n_features <= {MAX_TABLE // k} for {k} states): symbols "
                "must be 0 .. n_features - 1, so recode them to a smaller alphabet")
        return n_symbols

    def _n_symbols(self):
        if self.n_features is not None:
            return self._declared_n_symbols()
        if hasattr(self, "emissionprob_"):
            shape = np.shape(self.emissionprob_)
            if len(shape) != 2 or shape[1] < 1:
                raise ValueError(f"emissionprob_ must have shape (n_components, n_features), "
                                 f"got {shape}")
            return shape[1]
        return None

    def _validate_X(self, X, fitting):
        array = symbol_column(X)
        # A fit that initialises the emissions learns the alphabet from the data.
        learn = fitting and self.n_features is None and self._needs_init("e", "emissionprob_")
        symbols, n_symbols = checked_symbols(array, self.n_components,
                                             None if learn else self._n_symbols())
        self._fit_n_symbols = n_symbols
        return symbols

    # -- the component and its parameters' attributes --------------------------------
    def _component(self, n_features):
        return Categorical(self.n_components, n_features, self.emissionprob_prior)

    def _initial_emission(self):
        return None if self._needs_init("e", "emissionprob_") else self._emission_params()

    def _emission_params(self):
        return CategoricalParams(check_probability_rows(
            self.emissionprob_, "emissionprob_", (self.n_components, self._n_symbols())).copy())

    def _set_emissions(self, emission):
        self.emissionprob_ = emission.emissionprob
        # As hmmlearn: the alphabet learnt from the data becomes n_features.
        self.n_features = self.emissionprob_.shape[1]
        self.n_features_in_ = 1

    @classmethod
    def _warmup(cls, groups, say):
        if "hmm" not in groups:
            return
        symbols = np.random.RandomState(0).randint(3, size=(64, 1))
        CategoricalHMM(2, n_iter=2, random_state=0).fit(symbols).decode(symbols)
        say("CategoricalHMM")


class VariationalCategoricalHMM(VariationalHMM, CategoricalHMM, kind="vhmm-categorical",
                                command=False):
    """Categorical HMM trained by variational inference (hmmlearn 0.3's
    ``VariationalCategoricalHMM``): Dirichlet posteriors over the start
    probabilities, each transition row and each emission row.

    ``startprob_``, ``transmat_`` and ``emissionprob_`` are the posterior means;
    ``monitor_.history`` holds the lower bound (log Z - KL(q || p)). fastem adds
    ``n_init``, ``n_threads``, ``callback``, ``acceleration`` and ``sample_weight`` in
    :meth:`fit`.

    Parameters
    ----------
    n_components : int, default=1
    startprob_prior, transmat_prior : float, array or None
        Dirichlet prior concentrations (None: 1 / n_components).
    emissionprob_prior : float, array or None
        Dirichlet prior of each emission row (None: 1 / n_features).
    n_features, algorithm, random_state, n_iter, tol, verbose, params, init_params,
    implementation
        As in hmmlearn (``n_iter=100``, ``tol=1e-6``).
    n_init, n_threads, callback
        As in :class:`CategoricalHMM`.
    acceleration : {"none", "squarem"}, default="none"
        "squarem": SQUAREM extrapolation of the Dirichlet posteriors between passes; a
        trial is kept only if its lower bound is at least the plain step's (the bound
        never decreases). ``monitor_.iter`` counts passes over the data.

    Attributes
    ----------
    startprob_prior_, startprob_posterior_, transmat_prior_, transmat_posterior_,
    emissionprob_prior_, emissionprob_posterior_, startprob_, transmat_, emissionprob_,
    monitor_, n_features
    """

    _emission_attributes = ("emissionprob_", "emissionprob_prior_",
                            "emissionprob_posterior_")

    def __init__(self, n_components: int = 1, startprob_prior: Prior | None = None,
                 transmat_prior: Prior | None = None, emissionprob_prior: Prior | None = None,
                 n_features: int | None = None, algorithm: str | None = "viterbi",
                 random_state: RandomStateLike = None, n_iter: int = 100, tol: float = 1e-6,
                 verbose: int = False, params: str = "ste", init_params: str = "ste",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 callback: Callback | None = None, acceleration: Acceleration = "none") -> None:
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
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

    def _check_emission_priors(self, n_features):
        if self.emissionprob_prior is not None:
            checked_prior(self.emissionprob_prior, "emissionprob_prior",
                          (self.n_components, n_features), broadcast=True, positive=True)

    def _validate_X(self, X, fitting):
        # The alphabet of a warm start is that of the emission posterior.
        if not hasattr(self, "emissionprob_") and hasattr(self, "emissionprob_posterior_"):
            self.emissionprob_ = posterior_mean(self.emissionprob_posterior_)
        return super()._validate_X(X, fitting)

    _point_emission_attributes = ("emissionprob_",)

    def _checked_emission_posterior(self, n_features):
        shape = (self.n_components, n_features)
        return CategoricalPosterior(self._checked_concentration("emissionprob_prior_", shape),
                                    self._checked_concentration("emissionprob_posterior_",
                                                                shape))

    def _component(self, n_features):
        prior = self._prior_array(self.emissionprob_prior, (self.n_components, n_features),
                                  1.0 / n_features, "emissionprob_prior")
        return VariationalCategorical(self.n_components, n_features, prior)

    def _point_component(self, n_features):
        return Categorical(self.n_components, n_features)

    def _initial_emission(self):
        if self._needs_init("e", "emissionprob_posterior_"):
            return None
        return self._checked_emission_posterior(self._fit_n_symbols)

    def _set_emissions(self, emission):
        self.emissionprob_prior_ = emission.prior
        self.emissionprob_posterior_ = emission.posterior
        super()._set_emissions(CategoricalParams(posterior_mean(emission.posterior)))
