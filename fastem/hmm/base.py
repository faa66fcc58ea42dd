"""The hmmlearn-compatible HMM estimator shared by every emission model.

An HMM is initial probabilities + transitions + a component (what each state
emits). The engine model is the HMM composite (:mod:`fastem.composites.hmm`:
forward-backward, Viterbi, the log-space fallback, impossible and missing rows);
this module is the estimator façade every HMM shares: the API, the checks of the
start and transition attributes, and the composite it builds. An emission model
adds its component and the mapping between the component's parameters and its
attributes.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from .. import _dask_io as dask_io
from .. import _validation as v
from .._base import EstimatorBase, transactional
from .._runtime import threads
from .._typing import (
    ArrayLike,
    FloatArray,
    IntArray,
    Method,
    NDArray,
    RandomStateLike,
    Self,
    SequenceDataSource,
)
from ..components.dirichlet import log_or_minus_inf
from ..composites.hmm import HMMComposite, HMMParams
from ..engine import (
    SCHEDULES,
    Block,
    OnlineEM,
)
from ..engine.dask_backend import DaskBackend, is_dask_collection
from ..engine.driver import fit_estimator, online_schedule, online_step
from ..engine.monitor import ConvergenceMonitor
from ..engine.sources import SourceRules, open_source
from .sequences import check_lengths

MAX_HMM_SAMPLES = 10**7
"""Most steps one ``sample`` call draws."""

_logger = logging.getLogger(__name__)  # hmmlearn reports the same two situations by logging

PARAMETER_ATTRIBUTES = {"s": "startprob_", "t": "transmat_", "m": "means_", "c": "covars_",
                        "w": "weights_", "e": "emissionprob_", "l": "lambdas_"}
"""The attribute each letter of ``params``/``init_params`` names (hmmlearn's letters)."""


def _without_caches(method: Method) -> Method:
    """Run an inference method, then drop the caches it filled (they hold the caller's X)."""

    @functools.wraps(method)
    def call_and_forget(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            self._drop_caches()

    return call_and_forget  # type: ignore[return-value]  (same signature, wrapped)


_log = log_or_minus_inf


_SHARED_MARKER = "Parameters are those of :class:`fastem.hmm.BaseHMM` plus"


def _with_shared_parameters(doc):
    """An emission model's docstring with BaseHMM's parameters written out in it (every
    estimator documents all of its parameters), after the model's own."""
    lines = doc.split("\n")
    marker = next(i for i, line in enumerate(lines) if _SHARED_MARKER in line)
    del lines[marker:marker + 2]  # the sentence and the blank line after it
    doc = "\n".join(lines)
    shared = BaseHMM.__doc__.split("----------\n", 1)[1].rstrip("\n ")
    head, separator, tail = doc.partition("\n    Attributes\n")
    return head.rstrip("\n ") + "\n" + shared + "\n" + separator + tail


BaumWelchModel = HMMComposite
"""The HMM's engine model (the composite, which holds no estimator): its old name."""


class BaseHMM(EstimatorBase):
    """Hidden Markov model trained by Baum-Welch on compiled kernels (hmmlearn 0.3 API).

    Subclasses define the emissions. Parameters shared by all models:

    Parameters
    ----------
    n_components : int
        Number of hidden states.
    startprob_prior, transmat_prior : float or array
        Dirichlet prior parameters of ``startprob_`` and each row of ``transmat_``
        (1.0: no prior).
    algorithm : {"viterbi", "map"}
        Decoder used by :meth:`predict` and :meth:`decode`.
    random_state : int, RandomState or None
    n_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence threshold on the change of the total objective (as hmmlearn).
    verbose : bool
    params, init_params : str
        Letters of the parameters updated by EM / initialised by ``fit``
        ('s' startprob, 't' transmat, plus the emission letters).
    implementation : {"log", "scaling"}
        Accepted for compatibility; fastem always runs its shifted and scaled
        recursion, which never underflows.
    n_init : int
        EM runs from different initialisations; the best objective wins.
    n_threads : int or None
        Threads for the kernels (None: all).
    callback : callable or None
        ``callback(iteration, objective, model)`` after every iteration, with the
        model holding the current parameters; returning True stops the fit.
    missing : {"raise", "marginalize"}
        "raise": NaN in X is an error. "marginalize": a row of NaN is a missing
        observation (emission likelihood 1 in every state; its state is still
        inferred from its neighbours).
    acceleration : {"none", "squarem"}
        "squarem": SQUAREM extrapolation between Baum-Welch steps, with a
        monotonicity safeguard. ``monitor_.iter`` counts passes over the data.
    learning_decay, learning_offset : float
        Step sizes (t + learning_offset) ** -learning_decay of :meth:`partial_fit`.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        doc = cls.__dict__.get("__doc__")
        if doc and _SHARED_MARKER in doc:
            cls.__doc__ = _with_shared_parameters(doc)

    _emission_letters = ""
    _records_run = False  # hmmlearn's record of a fit: monitor_ only, no ConvergenceWarning
    #: True when the emission model marginalises partially missing rows itself.
    _partial_missing = False

    def __getstate__(self):
        # Per-call caches hold the last data set: never pickle them with the model.
        return {key: value for key, value in vars(self).items() if not key.endswith("_cache")}

    def __sklearn_is_fitted__(self):
        # Set by fit, or by a user who writes the parameters (hmmlearn allows scoring then).
        return hasattr(self, "startprob_") and hasattr(self, "transmat_")

    #: The emission model's fitted attributes (besides startprob_ and transmat_).
    _emission_attributes: tuple = ()

    @classmethod
    def _saved_attributes(cls):
        names = ("startprob_", "transmat_") + cls._emission_attributes
        return {**dict.fromkeys(names + ("n_features", "n_features_in_", "feature_names_in_",
                                         "sequence_column_")),
                "monitor_": ConvergenceMonitor}

    @property
    def _required_fitted(self):
        return ("startprob_", "transmat_") + self._emission_attributes

    def _validate_loaded(self):
        """Re-check parameters read from a file: each, and their shapes against each other
        and against ``n_features_in_`` / ``n_features``."""
        super()._validate_loaded()
        self._check_common()
        params = self._current_parameters()
        n_features = self._features_of(params.emission)
        self._check_priors(n_features)
        expected = {"n_features_in_": self._n_features_in(n_features)}
        if "n_features" in self._saved_attributes() and not self._n_features_is_parameter:
            expected["n_features"] = n_features
        for name, value in expected.items():
            if hasattr(self, name) and (isinstance(getattr(self, name), bool) or
                                        getattr(self, name) != value):
                raise ValueError(f"{name} is {getattr(self, name)!r}, but the parameters "
                                 f"have {value} features")

    #: True when ``n_features`` is a constructor argument (CategoricalHMM).
    _n_features_is_parameter = False

    def _features_of(self, emission):
        """Number of features of the emission parameters."""
        raise NotImplementedError

    def _n_features_in(self, n_features):
        return n_features

    def _check_common(self):
        k = v.check_int(self.n_components, "n_components", 1)
        v.check_option(self.algorithm, "algorithm", ("viterbi", "map"))
        v.check_int(self.n_iter, "n_iter", 0)
        # hmmlearn accepts any tol; -inf (or any negative value) forces n_iter iterations.
        v.check_real(self.tol, "tol", -np.inf, allow_infinite=True)
        v.check_option(self.implementation, "implementation", ("log", "scaling"))
        v.check_int(self.n_init, "n_init", 1, v.MAX_N_INIT)
        v.check_option(self.acceleration, "acceleration", SCHEDULES)
        OnlineEM(self.learning_decay, self.learning_offset)  # validates both
        letters = "st" + self._emission_letters
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string of parameter letters, got "
                                f"{type(value).__name__}")
            unknown = sorted(set(value) - set(letters))
            if unknown:
                raise ValueError(f"{name} may only contain the letters {letters!r} of "
                                 f"{type(self).__name__}'s parameters, got {value!r} "
                                 f"(unknown: {''.join(unknown)!r})")
        self._check_emission_hyperparameters()
        return k

    def _check_priors(self, n_features):
        """Dirichlet priors of startprob_ and transmat_ rows, then the emission priors."""
        k = self.n_components
        v.check_prior(self.startprob_prior, "startprob_prior", (k,), low=0.0)
        v.check_prior(self.transmat_prior, "transmat_prior", (k, k), low=0.0)
        self._check_emission_priors(n_features)

    # -- the façade: data checks, the component, and its parameters' attributes ------
    # An emission model says which component its states emit from (``_component``) and
    # maps that component's parameters object to and from its attributes
    # (``_emission_params``, ``_set_emissions``, ``_initial_emission``); the HMM composite
    # (fastem.composites.hmm) does the rest.
    def _check_emission_hyperparameters(self):
        """Validate the emission model's own constructor arguments (not the priors)."""

    def _n_emission_features(self, X):
        """The emission parameters' feature count for validated data X."""
        return X.shape[1]

    def _check_emission_priors(self, n_features):
        """Validate the emission priors against the model's shapes."""

    def _validate_X(self, X, fitting):
        raise NotImplementedError

    def _component(self, n_features):
        """The component the states emit from (its priors, and which of its parts the
        M-step updates: the emission letters of ``params``)."""
        raise NotImplementedError

    def _fitting_component(self, n_features):
        """The component a fit starts from: :meth:`_component`, holding the values
        ``init_params`` leaves to the user when it starts from them in part."""
        return self._component(n_features)

    def _point_component(self, n_features):
        """The component inference runs with, on the fitted (point) parameters."""
        return self._component(n_features)

    def _emission_params(self):
        """The component's parameters from the fitted (or user-set) attributes, checked."""
        raise NotImplementedError

    def _set_emissions(self, emission):
        """The fitted attributes from the component's parameters ``emission``."""
        raise NotImplementedError

    def _initial_emission(self):
        """The emission parameters a fit starts from when ``init_params`` leaves them to
        the user, or None: the component initialises them."""
        return None

    def _inference_model(self, params):
        """The composite that scores, decodes and samples under ``params``."""
        n_features = self._features_of(params.emission)
        return HMMComposite(self._point_component(n_features), n_features)

    def _validate(self, X, fitting):
        """(validated X, boolean mask of missing rows or None)."""
        v.check_option(self.missing, "missing", ("raise", "marginalize"))
        missing = None
        if self.missing == "marginalize":
            array = np.asarray(X)
            if array.dtype.kind == "f" or array.dtype == object:
                try:
                    values = np.array(array, dtype=np.float64)
                except (TypeError, ValueError):
                    values = None
                # (An empty X goes on to _validate_X, which names its shape.)
                if values is not None and values.ndim in (1, 2) and values.size:
                    nan = np.isnan(values.reshape(len(values), -1))
                    rows = nan.all(axis=1)
                    if np.any(nan.any(axis=1) & ~rows):
                        if self._partial_missing:
                            if rows.all():
                                raise ValueError("every row of X is missing")
                            return self._validate_X(values, fitting, allow_nan=True), None
                        raise ValueError(f"X has rows with some (not all) entries missing; "
                                         f"{type(self).__name__} handles whole missing rows "
                                         f"only")
                    if rows.any():
                        if rows.all():
                            raise ValueError("every row of X is missing")
                        values[rows] = 0.0  # placeholder; the row's likelihood is set to 1
                        X = values
                        missing = rows
        return self._validate_X(X, fitting), missing

    # -- parameters ----------------------------------------------------------
    def _needs_init(self, letter, attribute):
        return letter in self.init_params or not hasattr(self, attribute)

    def _composite(self, n_features):
        """The HMM composite a fit runs (the engine model): the component, the Dirichlet
        priors, the letters of ``params`` it updates, and the values of ``init_params``'
        letters left to the user."""
        component = self._fitting_component(n_features)
        return HMMComposite(
            component, n_features, startprob_prior=self.startprob_prior,
            transmat_prior=self.transmat_prior, update_start="s" in self.params,
            update_transmat="t" in self.params,
            update_emission=self._updates_emission(),
            startprob=None if self._needs_init("s", "startprob_") else self._checked_startprob(),
            transmat=None if self._needs_init("t", "transmat_") else self._checked_transmat(),
            emission=self._initial_emission())

    def _updates_emission(self):
        """Whether the M-step updates the emissions: one of their letters is in ``params``
        (a component with parts of its own, e.g. a Gaussian's means and covariances, is
        told which of them to update)."""
        return any(letter in self.params for letter in self._emission_letters)

    def _checked_startprob(self):
        k = self.n_components
        startprob = v.check_parameter_array(self.startprob_, "startprob_", (k,))
        if np.any(startprob < 0) or not np.isclose(startprob.sum(), 1.0):
            raise ValueError(f"startprob_ must be non-negative and sum to 1, got sum "
                             f"{startprob.sum():.6g}")
        return startprob.copy()

    def _checked_transmat(self):
        k = self.n_components
        transmat = v.check_parameter_array(self.transmat_, "transmat_", (k, k))
        sums = transmat.sum(axis=1)
        if np.any(transmat < 0) or not np.allclose(sums, 1.0):
            raise ValueError(f"transmat_ rows must be non-negative and sum to 1, got row sums "
                             f"{np.round(sums, 6).tolist()}")
        return transmat.copy()

    def _current_parameters(self):
        self._check_is_fitted()
        return HMMParams(self._checked_startprob(), self._checked_transmat(),
                         self._emission_params())

    def _set_parameters(self, params):
        self.startprob_ = params.startprob
        self.transmat_ = params.transmat
        self._set_emissions(params.emission)

    # -- fitting -------------------------------------------------------------
    @transactional
    def fit(self, X: SequenceDataSource, lengths: ArrayLike | None = None,
            sample_weight: ArrayLike | None = None) -> Self:
        """Estimate the parameters with Baum-Welch (EM).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All sequences, concatenated. With ``missing="marginalize"``, a row of
            NaN is a missing observation. X may also be an ``np.memmap`` (read in
            groups of whole sequences at every pass, never copied whole) or a
            callable returning a fresh iterator of ``(X_block, lengths_block)``
            pairs of whole sequences at every call (exact EM streamed over data
            that do not fit in memory; initialisation uses the first blocks, up
            to one million rows; a CategoricalHMM then needs ``n_features``).
        lengths : array-like of int, shape (n_sequences,), optional
            Lengths of the sequences in X; they must sum to n_samples.
        sample_weight : array-like of shape (n_sequences,), optional
            Non-negative weight of each sequence (its expected counts and
            log-likelihood are multiplied by it; 0 drops it).

        Returns
        -------
        self
        """
        self._check_common()
        source = open_source(X, self._source_rules(), lengths=lengths,
                             sample_weight=sample_weight)
        backend, n_features = source.backend, source.n_features
        kind, dask_rows, rows = source.kind, source.rows, source.n_rows
        # The initialisation sample of a stream (up to a million rows, a copy) is read
        # again by the driver: the fit does not keep this one alive beside it.
        del source
        self._warn_overwritten_parameters()

        def finish(run):
            self._drop_caches()
            if dask_rows is not None:
                dask_io.set_feature_names(self, dask_rows)
            n_values = (sum(block.X.size for block in backend.blocks())
                        if kind == "memory" else np.inf)  # (a stream is large)
            n_free = self._n_parameters()
            if n_values < n_free:
                _logger.warning("Fitting a model with %d free scalar parameters with only %d "
                                "data points will result in a degenerate solution.", n_free,
                                n_values)

        fit_estimator(self, self._composite(n_features), backend, max_iter=self.n_iter,
                      work=None if rows is None else self._work(rows, n_features),
                      verbose=2 if self.verbose == 2 else int(bool(self.verbose)),
                      verbose_interval=1, finish=finish)
        return self

    def _checked_block(self, X, lengths, sample_weight, n_features=None, fitting=True,
                       seen="the first block of the data"):
        """One validated block of whole sequences: for fit, or a later block of a stream or
        of partial_fit whose emissions must have ``n_features`` (then it may hold fewer
        sequences than states)."""
        X, missing = self._validate(X, fitting=fitting)
        if n_features is None and X.shape[0] < self.n_components:
            raise ValueError(f"X has {X.shape[0]} samples, fewer than n_components="
                             f"{self.n_components}")
        bounds = check_lengths(lengths, X.shape[0])
        found = self._n_emission_features(X)
        if n_features is not None and found != n_features:
            raise ValueError(f"X has {found} features, but {seen} had {n_features} (a "
                             "streamed CategoricalHMM needs n_features)")
        self._check_priors(found)
        weights = None
        if sample_weight is not None:
            weights = v.check_sample_weight(sample_weight, len(bounds) - 1)
            if n_features is None and not np.any(weights > 0):
                raise ValueError("sample_weight must have at least one positive weight")
        return Block(X, weights, bounds, missing)

    def _source_rules(self):
        """How :func:`~fastem.engine.sources.open_source` reads an HMM's data: whole
        sequences, validated by :meth:`_checked_block` (on the workers for dask input)."""
        return SourceRules(
            check=lambda X, lengths, weights, whole, n_features: self._checked_block(
                X, lengths, weights, n_features),
            sequences=True, dask=self._dask_backend,
            features=lambda block: self._n_emission_features(block.X))

    def _dask_backend(self, rows, weights, bounds):
        """A DaskBackend over dask rows (whole sequences in every partition), validated on
        the workers; and the emission feature count."""
        if rows.X.shape[0] < self.n_components:
            raise ValueError(f"X has {rows.X.shape[0]} samples, fewer than n_components="
                             f"{self.n_components}")
        validated, missing, features = dask_io.validated_sequences(self, rows.X)
        n_features = self._adopt_emission_features(features)
        self._check_priors(n_features)
        return (DaskBackend(validated, weights, bounds,
                            missing if self.missing == "marginalize" else None),
                n_features)

    def _adopt_emission_features(self, per_partition):
        """The emission feature count of data validated in parts (the same in every part
        for most emissions)."""
        if len(set(per_partition)) != 1:
            raise ValueError(f"partitions of X have different feature counts: {per_partition}")
        return per_partition[0]

    @transactional
    def partial_fit(self, X: ArrayLike, lengths: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """One step of online (stepwise) Baum-Welch on a batch of sequences.

        The first call initialises the model from its batch (``init_params``,
        ``random_state``), or starts from the fitted parameters after :meth:`fit`;
        each call then computes the batch's expected counts
        under the current parameters, blends them into running statistics with
        step ``(t + learning_offset) ** -learning_decay`` (Cappé & Moulines 2009)
        and runs the M-step. ``fit`` starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int, optional
        sample_weight : array-like of shape (n_sequences,), optional

        Returns
        -------
        self
        """
        self._check_common()
        online_schedule(self)  # (validates learning_decay and learning_offset first)
        state = getattr(self, "_online", None)
        block = self._checked_block(X, lengths, sample_weight, fitting=state is None,
                                    n_features=None if state is None else self._online_features,
                                    seen="the batches partially fitted so far")
        X, n_features = block.X, self._n_emission_features(block.X)
        # After fit (or a loaded model), online EM continues from the fitted parameters.
        params = None
        if state is not None or (hasattr(self, "monitor_") and self.__sklearn_is_fitted__()):
            params = self._current_parameters()
            if state is None and self._features_of(params.emission) != n_features:
                params = None  # fitted on other data: start afresh from this batch
        online_step(self, self._composite(n_features), block, params,
                    work=self._work(X.shape[0], n_features))
        self._drop_caches()
        self._online_features = n_features
        return self

    def _warn_overwritten_parameters(self):
        """hmmlearn's warning when fit re-initialises a parameter the user has set."""
        for letter in "st" + self._emission_letters:
            attribute = PARAMETER_ATTRIBUTES[letter]
            if letter in self.init_params and (attribute in vars(self)
                                               or "_" + attribute in vars(self)):
                _logger.warning("Even though the %r attribute is set, it will be overwritten "
                             "during initialization because 'init_params' contains %r",
                             attribute, letter)

    def _work(self, n_rows, n_features):
        """Multiply-adds of one pass, about (it picks one thread for small inputs)."""
        k = self.n_components
        return n_rows * k * (k + n_features)

    def _drop_caches(self):
        """Forget per-call caches: nothing of the caller's data outlives a call."""
        for key in [key for key in vars(self) if key.endswith("_cache")]:
            delattr(self, key)

    # -- inference -----------------------------------------------------------
    def _prepare(self, X, lengths):
        self._check_common()
        params = self._current_parameters()
        X, missing = self._validate(X, fitting=False)
        return X, missing, check_lengths(lengths, X.shape[0]), params

    def _posteriors(self, X, missing, bounds, params):
        with threads(self.n_threads, self._work(X.shape[0], X.shape[1] if X.ndim == 2 else 1)):
            return self._inference_model(params).posteriors(params, X, missing, bounds)

    @_without_caches
    def score(self, X: ArrayLike, lengths: ArrayLike | None = None,
              per_sequence: bool = False) -> float | FloatArray:
        """Log-likelihood of X under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int, optional
        per_sequence : bool, default=False
            Return one log-likelihood per sequence instead of their sum.

        Returns
        -------
        log_prob : float, or ndarray of shape (n_sequences,)
        """
        if is_dask_collection(X):
            if per_sequence:
                raise ValueError("per_sequence=True is not available for dask input")
            return dask_io.sequence_scores(self, X, lengths)
        X, missing, bounds, params = self._prepare(X, lengths)
        with threads(self.n_threads, self._work(X.shape[0], X.shape[1] if X.ndim == 2 else 1)):
            loglik = self._inference_model(params).sequence_loglik(params, X, missing, bounds)
        return loglik if per_sequence else float(loglik.sum())

    @_without_caches
    def score_samples(self, X: ArrayLike,
                      lengths: ArrayLike | None = None) -> tuple[float, FloatArray]:
        """Log-likelihood of X and the posterior probability of each state at each step.

        Returns
        -------
        log_prob : float
        posteriors : ndarray of shape (n_samples, n_components)

        With dask input, the log-likelihood is computed and the posteriors stay lazy.
        """
        if is_dask_collection(X):
            return (self.score(X, lengths),
                    dask_io.lazy_sequences(self, "predict_proba", X, lengths,
                                           columns=self.n_components))
        X, missing, bounds, params = self._prepare(X, lengths)
        loglik, posteriors = self._posteriors(X, missing, bounds, params)
        return float(loglik.sum()), posteriors

    def predict_proba(self, X: ArrayLike, lengths: ArrayLike | None = None) -> FloatArray:
        """Posterior state probabilities, shape (n_samples, n_components) (lazy for dask
        input)."""
        if is_dask_collection(X):
            return dask_io.lazy_sequences(self, "predict_proba", X, lengths,
                                          columns=self.n_components)
        return self.score_samples(X, lengths)[1]

    @_without_caches
    def decode(self, X: ArrayLike, lengths: ArrayLike | None = None,
               algorithm: str | None = None) -> tuple[float, IntArray]:
        """Most likely state sequence.

        Parameters
        ----------
        algorithm : {"viterbi", "map"}, optional
            "viterbi": the jointly most probable path and its log joint
            probability log p(X, path). "map": the most probable state at each
            step and the sum over steps of the log of that posterior
            probability (hmmlearn returns the sum of the probabilities).

        Returns
        -------
        log_prob : float
        state_sequence : ndarray of shape (n_samples,)
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        v.check_option(algorithm, "algorithm", ("viterbi", "map"))
        X, missing, bounds, params = self._prepare(X, lengths)
        if algorithm == "map":
            _, posteriors = self._posteriors(X, missing, bounds, params)
            states = posteriors.argmax(axis=1)
            best = posteriors[np.arange(len(states)), states]
            return float(_log(best).sum()), states
        with threads(self.n_threads, self._work(X.shape[0], X.shape[1] if X.ndim == 2 else 1)):
            logprob, states = self._inference_model(params).viterbi(params, X, missing, bounds)
        return float(logprob.sum()), states

    def predict(self, X: ArrayLike, lengths: ArrayLike | None = None) -> IntArray:
        """Most likely state at each step (by ``algorithm``; lazy for dask input)."""
        if is_dask_collection(X):
            return dask_io.lazy_sequences(self, "predict", X, lengths, dtype=np.int64)
        return self.decode(X, lengths)[1]

    def sample(self, n_samples: int = 1, random_state: RandomStateLike = None,
               currstate: int | None = None) -> tuple[NDArray[Any], IntArray]:
        """Draw a sequence from the model.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        state_sequence : ndarray of shape (n_samples,)
        """
        params = self._current_parameters()
        # Drawn step by step in hmmlearn's order (a Python loop): bounded so that an
        # absurd request fails at once instead of running for days.
        n_samples = v.check_int(n_samples, "n_samples", 1, MAX_HMM_SAMPLES)
        rng = v.check_random_state(self.random_state if random_state is None else random_state)
        if currstate is not None:
            currstate = v.check_int(currstate, "currstate", 0, self.n_components - 1)
        return self._inference_model(params).sample(params, n_samples, rng, currstate)

    def get_stationary_distribution(self) -> FloatArray:
        """Stationary distribution of the transition matrix."""
        transmat = self._current_parameters().transmat
        values, vectors = np.linalg.eig(transmat.T)
        vector = np.real_if_close(vectors[:, np.argmax(values.real)])
        return np.real(vector / vector.sum())

    def _n_parameters(self):
        n_features = self._features_of(self._emission_params())
        component = self._point_component(n_features)
        return HMMComposite(component, n_features, update_start="s" in self.params,
                            update_transmat="t" in self.params,
                            update_emission=self._updates_emission()).n_parameters()

    def aic(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Akaike information criterion: -2 log L + 2 p."""
        return -2.0 * self.score(X, lengths) + 2.0 * self._n_parameters()

    def bic(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Bayesian information criterion: -2 log L + p log(n_samples)."""
        n = np.asarray(X).shape[0]
        return -2.0 * self.score(X, lengths) + self._n_parameters() * np.log(n)

