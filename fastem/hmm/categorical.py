"""HMM with categorical emissions (hmmlearn's CategoricalHMM)."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._typing import Acceleration, Callback, MissingPolicy, Prior, RandomStateLike
from ..engine.packing import positive_values
from ..kernels.categorical import symbol_counts, symbol_log_likelihood
from ..mixture.variational import checked_prior
from .base import BaseHMM, ProbabilityEmissions, _dirichlet_log_prior, _log, _normalise
from .variational import (
    VariationalHMM,
    dirichlet_kl,
    log_subnormalised,
    positive_draw,
    posterior_mean,
)

MAX_TABLE = 1 << 24
"""Largest n_components x n_features emission table (128 MiB of float64), whether the
alphabet is declared with ``n_features`` or inferred from the data: a fit holds several
tables of that size (parameters, logs, statistics, a posterior), so a larger one would
take gigabytes for any number of rows."""


class CategoricalHMM(ProbabilityEmissions, BaseHMM, kind="hmm-categorical"):
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

    def _features_of(self, params):
        return params["emissionprob"].shape[1]

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
        array = np.asarray(X)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"X must hold integer symbols, got dtype {array.dtype}")
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1) of symbols, got {array.shape}")
        if array.shape[0] == 0:
            raise ValueError("X is empty: 0 samples")
        # A fit that initialises the emissions learns the alphabet from the data.
        learn = fitting and self.n_features is None and self._needs_init("e", "emissionprob_")
        n_symbols = None if learn else self._n_symbols()
        # Range-checked in X's own dtype before the cast to int64 indices.
        largest = v.check_nonnegative_integers(array, "X", below=n_symbols,
                                               below_name="n_features", noun="symbol")
        if n_symbols is None:
            n_symbols = largest + 1
            if n_symbols * self.n_components > MAX_TABLE:
                raise ValueError(
                    f"X holds symbol {largest}: inferring n_features={n_symbols} would need "
                    f"{self.n_components} x {n_symbols} emission tables, above the limit of "
                    f"{MAX_TABLE} entries ({MAX_TABLE >> 17} MiB of float64); symbols must "
                    "be 0 .. n_features - 1, so recode them to a smaller alphabet")
        symbols = np.ascontiguousarray(array[:, 0], dtype=np.int64)
        self._fit_n_symbols = n_symbols
        return symbols

    def _initial_emissions(self, X, random_state):
        k, n_symbols = self.n_components, self._fit_n_symbols
        if self._needs_init("e", "emissionprob_"):
            return {"emissionprob": _normalise(random_state.rand(k, n_symbols))}
        return self._user_emissions()

    def _user_emissions(self):
        n_symbols = self._n_symbols()
        emission = v.check_parameter_array(self.emissionprob_, "emissionprob_",
                                           (self.n_components, n_symbols))
        sums = emission.sum(axis=1)
        if np.any(emission < 0) or not np.allclose(sums, 1.0):
            raise ValueError(f"emissionprob_ rows must be non-negative and sum to 1, got row "
                             f"sums {np.round(sums, 6).tolist()}")
        return {"emissionprob": emission.copy()}

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        if out is None:
            out = np.empty((X.shape[0], self.n_components))
        symbol_log_likelihood(X, np.ascontiguousarray(_log(params["emissionprob"])), out)
        return out

    def _emission_fields(self, n_features):
        return {"counts": (self.n_components, n_features)}

    def _emission_statistics(self, X, posteriors, params, out, cache=None):
        out["counts"][...] += symbol_counts(X, posteriors, params["emissionprob"].shape[1])

    def _emission_m_step(self, stats, params):
        if "e" not in self.params:
            return {}
        value = np.maximum(np.asarray(self.emissionprob_prior) - 1.0 + stats["counts"], 0.0)
        return {"emissionprob": _normalise(value, params["emissionprob"])}

    def _emission_log_prior(self, params):
        if "e" not in self.params:
            return 0.0
        return _dirichlet_log_prior(self.emissionprob_prior, params["emissionprob"])

    def _n_emission_parameters(self):
        n_symbols = self._n_symbols() or self._fit_n_symbols
        return self.n_components * (n_symbols - 1) if "e" in self.params else 0

    def _set_emissions(self, params):
        self.emissionprob_ = params["emissionprob"]
        # As hmmlearn: the alphabet learnt from the data becomes n_features.
        self.n_features = self.emissionprob_.shape[1]
        self.n_features_in_ = 1

    def _emission_sample(self, state, params, random_state):
        cdf = np.cumsum(params["emissionprob"][state])
        return [int((cdf > random_state.rand()).argmax())]


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

    def _checked_emission_posteriors(self, n_features):
        shape = (self.n_components, n_features)
        return {"emissionprob_prior": self._checked_concentration("emissionprob_prior_",
                                                                  shape),
                "emissionprob_posterior": self._checked_concentration(
                    "emissionprob_posterior_", shape)}

    def _initial_emissions(self, X, random_state):
        k, n_symbols = self.n_components, self._fit_n_symbols
        if not self._needs_init("e", "emissionprob_posterior_"):
            return self._checked_emission_posteriors(n_symbols)
        prior = self._prior_array(self.emissionprob_prior, (k, n_symbols), 1.0 / n_symbols,
                                  "emissionprob_prior")
        if np.all(prior == prior[0]):
            draw = random_state.dirichlet(prior[0], size=k)  # hmmlearn's draw
        else:  # a prior per state: each row drawn from its own
            draw = np.array([random_state.dirichlet(row) for row in prior])
        posterior = positive_draw(draw * X.shape[0] / k, prior)
        return {"emissionprob_prior": prior, "emissionprob_posterior": posterior}

    def _subnormalised_emissions(self, params):
        # The kernel reads the logs: kept as computed, since exp(psi(a) - psi(sum a))
        # underflows to 0 for a symbol whose posterior is near a small prior (psi(1e-3) is
        # about -1000), which would make an observed symbol impossible in every state.
        log_emission = log_subnormalised(params["emissionprob_posterior"])
        return {"emissionprob": np.exp(log_emission), "log_emissionprob": log_emission}

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        if "log_emissionprob" not in params:  # the posterior means (score, predict)
            return super()._emission_log_likelihood(X, params, out, cache)
        if out is None:
            out = np.empty((X.shape[0], self.n_components))
        symbol_log_likelihood(X, np.ascontiguousarray(params["log_emissionprob"]), out)
        return out

    def _emission_m_step(self, stats, params):
        if "e" not in self.params:
            return {}
        return {"emissionprob_posterior": params["emissionprob_prior"] + stats["counts"]}

    def _pack_emission_posteriors(self, params):
        return np.ravel(params["emissionprob_posterior"])

    def _unpack_emission_posteriors(self, vector, like):
        return {"emissionprob_posterior": positive_values(
            vector, like["emissionprob_posterior"].shape, "emission posteriors")}

    def _emission_kl(self, params):
        return float(np.sum(dirichlet_kl(params["emissionprob_posterior"],
                                         params["emissionprob_prior"])))

    def _set_emissions(self, params):
        self.emissionprob_prior_ = params["emissionprob_prior"]
        self.emissionprob_posterior_ = params["emissionprob_posterior"]
        super()._set_emissions({"emissionprob": posterior_mean(
            params["emissionprob_posterior"])})
