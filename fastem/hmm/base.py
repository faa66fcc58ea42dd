"""The hmmlearn-compatible HMM estimator shared by every emission model.

An HMM is initial probabilities + transitions + emissions. This module owns
the first two, the forward-backward and Viterbi calls, and the estimator API;
an emission subclass provides the emission log-likelihood table, its
sufficient statistics from the posteriors, and its M-step.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from .. import _dask_io as dask_io
from .. import _validation as v
from .._base import EstimatorBase, shippable, transactional
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
from ..engine import (
    SCHEDULES,
    Block,
    ModelBase,
    OnlineEM,
    Stats,
    StatsLayout,
)
from ..engine.dask_backend import DaskBackend, is_dask_collection
from ..engine.driver import fit_estimator, online_schedule, online_step
from ..engine.monitor import ConvergenceMonitor
from ..engine.packing import probability_rows
from ..engine.sources import SourceRules, open_source
from ..kernels import hmm as hk
from ..mixture.missing import mean_imputed
from .sequences import check_lengths, sequence_units

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


def _log(values):
    with np.errstate(divide="ignore"):
        return np.log(values)


def _dirichlet_log_prior(prior, probabilities):
    """sum (prior - 1) log p, with 0 * log 0 = 0 (constants dropped)."""
    weight = np.asarray(prior, dtype=np.float64) - 1.0
    logs = _log(probabilities)
    with np.errstate(invalid="ignore"):
        terms = np.where(weight == 0.0, 0.0, weight * logs)
    return float(np.sum(terms))


def _normalise(array, previous=None):
    """Rows scaled to sum to 1. A row with no mass (e.g. a state that no expected
    transition leaves) keeps ``previous`` (EM has no information to change it), so the
    result stays a valid distribution instead of a row of zeros or NaN."""
    total = array.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, array / np.where(total > 0, total, 1.0), 0.0)
    if previous is not None:
        out = np.where(total > 0, out, previous)
    return out


_TABLE_BYTES = 16 << 20
"""Bound on the two (rows, K) tables (emission log-likelihoods, posteriors) of one pass:
sequences are processed in groups of whole sequences of at most this size (but at least
_MIN_GROUP_ROWS rows, so that a group keeps every thread busy)."""
_MIN_GROUP_ROWS = 1 << 16


def sequence_groups(bounds, n_states, limit=None):
    """Sequence indices starting each group of whole sequences whose (rows, K) tables fit
    in _TABLE_BYTES together, or of at most ``limit`` rows (a longer sequence is a group
    of its own). Depends on the lengths only, never on the thread count."""
    if limit is None:
        limit = max(_MIN_GROUP_ROWS, _TABLE_BYTES // (16 * n_states))
    starts = [0]
    first_row = 0
    for s in range(1, len(bounds) - 1):
        if bounds[s + 1] - first_row > limit:
            starts.append(s)
            first_row = bounds[s]
    starts.append(len(bounds) - 1)
    return starts


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


class ProbabilityEmissions:
    """pack/unpack of emission probability rows (``emissionprob``), for SQUAREM."""

    def _pack_emissions(self, params):
        return np.ravel(params["emissionprob"])

    def _unpack_emissions(self, vector, like):
        return {"emissionprob": probability_rows(vector, like["emissionprob"].shape,
                                                 "emission probabilities")}


class BaumWelchModel(ModelBase):
    """An HMM as an engine model: blocks are groups of whole sequences.

    The statistics are the emission model's fields, then the expected start and
    transition counts; the log-likelihood is summed over sequences (weighted),
    and ``weight`` counts the observed rows. Parameters are dicts of arrays.
    """

    monotone = False  # checked by the monitor, which reports a decrease

    def __init__(self, estimator, n_features):
        self.estimator = estimator
        k = estimator.n_components
        emission = estimator._emission_fields(n_features)
        self.emission_layout = StatsLayout(emission, recentre=estimator._emission_recentre)
        self.layout = StatsLayout({**emission, "start": (k,), "trans": (k, k)},
                                  recentre=estimator._emission_recentre)
        self._counts = slice(self.layout.slices["start"].start, self.layout.size)

    def initialize(self, block, random_state):
        observed = block.X if block.missing is None else block.X[~block.missing]
        if np.issubdtype(observed.dtype, np.floating) and np.isnan(observed).any():
            # Partially missing rows: initialise on the mean-imputed rows with anything seen.
            seen = ~np.isnan(observed).all(axis=1)
            observed = mean_imputed(np.ascontiguousarray(observed[seen]))
        return self.estimator._initial_parameters(observed, block.bounds, random_state)

    def shift(self, params):
        return self.estimator._emission_shift(params)

    def _groups(self, block):
        groups = block.cache.get("sequence_groups")
        if groups is None:
            k = self.estimator.n_components
            starts = sequence_groups(block.bounds, k)
            groups = []
            for first, last in zip(starts[:-1], starts[1:], strict=True):
                bounds = block.bounds[first:last + 1] - block.bounds[first]
                groups.append((first, last, sequence_units(bounds), bounds, {}))
            block.cache["sequence_groups"] = groups
        return groups

    def _tables(self, groups, block):
        """The two (rows, K) work tables, shared by every block of the fit: reused every
        pass (fresh tables cost a page fault per 4 KiB each time), grown when needed."""
        rows = max(int(block.bounds[last] - block.bounds[first]) for first, last, *_ in groups)
        tables = getattr(self, "_work_tables", None)
        if tables is None or tables[0].shape[0] < rows:
            k = self.estimator.n_components
            tables = self._work_tables = (np.empty((rows, k)), np.empty((rows, k)))
        return tables

    def __getstate__(self):
        # The work tables are scratch space: never shipped (e.g. to cluster workers).
        state = {key: value for key, value in vars(self).items() if key != "_work_tables"}
        state["estimator"] = shippable(self.estimator)
        return state

    def block_stats(self, params, block, out):
        est = self.estimator
        groups = self._groups(block)
        log_b_buffer, posterior_buffer = self._tables(groups, block)
        counts = out.flat[self._counts]
        emission = Stats(self.emission_layout, out.flat[:self._counts.start], out.shift)
        for first, last, units, bounds, cache in groups:
            lo, hi = int(block.bounds[first]), int(block.bounds[last])
            X = block.X[lo:hi]
            missing = None if block.missing is None else block.missing[lo:hi]
            log_b = est._emission_table(X, missing, params, out=log_b_buffer[:hi - lo],
                                        cache=cache)
            posteriors = posterior_buffer[:hi - lo]
            loglik = np.empty(last - first)
            weights = (np.empty(0) if block.weights is None else
                       np.ascontiguousarray(block.weights[first:last], dtype=np.float64))
            hk.forward_backward(log_b, bounds, units, params["startprob"], params["transmat"],
                                weights, posteriors, loglik, counts)
            if not loglik.min() > -np.inf:  # (only then: nothing is added to an ordinary pass)
                est._in_log_space(loglik, bounds, est._raw_rows(X, missing, params), params,
                                  weights, posteriors, counts)
                est._refuse_impossible_rows(X, missing, params, bounds, loglik, weights, cache)
            # Emission statistics: weighted posteriors, and nothing from missing rows.
            if block.weights is not None:
                row_weight = np.repeat(weights, np.diff(bounds))
                posteriors *= row_weight[:, None]
            if missing is not None:
                posteriors[missing] = 0.0
            weight_before = out.flat[1]
            est._emission_statistics(X, posteriors, params, emission, cache=cache)
            observed = (hi - lo) if missing is None else int(np.count_nonzero(~missing))
            if block.weights is not None:
                observed = float(row_weight.sum() if missing is None
                                 else row_weight[~missing].sum())
            out.flat[1] = weight_before + observed
            if block.weights is None:
                out.flat[0] += float(loglik.sum())
            else:
                used = weights > 0
                out.flat[0] += float(np.dot(weights[used], loglik[used]))

    def objective(self, stats, params):
        return float(stats.loglik) + self.estimator._log_prior(params)

    def m_step(self, stats, params):
        est = self.estimator
        new = dict(params)
        new.update(est._start_transition_m_step(stats, params))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # (checked below)
            new.update(est._emission_m_step(stats, params))
            new = est._completed_parameters(new)
        # The one check of what the M-step made, for fit and partial_fit alike: parameters
        # the next E-step could not use (non-finite after an overflow, a covariance that is
        # not positive definite) are refused here, where they are made, instead of at the
        # next pass, which a partial_fit never runs (it stored them).
        return est._checked_emission_parameters(new)

    def pack(self, params):
        return self.estimator._pack_parameters(params)

    def unpack(self, vector, like):
        return self.estimator._unpack_parameters(vector, like)


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
        n_features = self._features_of(params)
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

    def _features_of(self, params):
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

    # -- hooks for the emission models -----------------------------------------
    def _check_emission_hyperparameters(self):
        """Validate the emission model's own constructor arguments (not the priors)."""

    def _n_emission_features(self, X):
        """The emission parameters' feature count for validated data X."""
        return X.shape[1]

    def _check_emission_priors(self, n_features):
        """Validate the emission priors against the model's shapes."""

    def _validate_X(self, X, fitting):
        raise NotImplementedError

    def _initial_emissions(self, X, random_state):
        raise NotImplementedError

    def _user_emissions(self):
        raise NotImplementedError

    def _emission_log_likelihood(self, X, params, out=None, cache=None):
        """(n, K) emission log-likelihoods, written into ``out`` when given. ``cache`` is a
        dict kept with these rows for the whole fit (or None)."""
        raise NotImplementedError

    def _emission_fields(self, n_features):
        """Names and shapes of the emission statistics (a :class:`StatsLayout`'s fields)."""
        raise NotImplementedError

    #: How emission statistics move to another shift (Gaussian moments), or None.
    _emission_recentre = None

    def _emission_shift(self, params):
        """The point the emission statistics are taken about, or None."""
        return None

    def _emission_statistics(self, X, posteriors, params, out, cache=None):
        """Add the emission statistics of rows X with (weighted) ``posteriors`` to ``out``
        (a :class:`Stats` of the emission fields)."""
        raise NotImplementedError

    def _pack_parameters(self, params):
        """The parameters as a flat vector (SQUAREM extrapolates it): start and transition
        probabilities, then the emissions'."""
        return np.concatenate([params["startprob"], np.ravel(params["transmat"]),
                               self._pack_emissions(params)])

    def _unpack_parameters(self, vector, like):
        """Inverse of :meth:`_pack_parameters`; ValueError outside the parameter space."""
        k = self.n_components
        params = dict(like)
        params["startprob"] = probability_rows(vector[:k], (k,), "start probabilities")
        params["transmat"] = probability_rows(vector[k:k + k * k], (k, k), "transitions")
        params.update(self._unpack_emissions(vector[k + k * k:], like))
        return params

    def _pack_emissions(self, params):
        """Emission parameters as a flat vector (SQUAREM extrapolates it)."""
        raise NotImplementedError

    def _unpack_emissions(self, vector, like):
        """Inverse of :meth:`_pack_emissions`: a dict of emission parameters."""
        raise NotImplementedError

    def _emission_m_step(self, stats, params):
        raise NotImplementedError

    def _checked_emission_parameters(self, params):
        """The parameters an M-step made, as the E-step uses them; a ValueError naming the
        attribute, the cause and the remedy when the emissions are not ones it can use."""
        return params

    def _emission_log_prior(self, params):
        return 0.0

    def _n_emission_parameters(self):
        raise NotImplementedError

    def _set_emissions(self, params):
        raise NotImplementedError

    def _emission_sample(self, state, params, random_state):
        raise NotImplementedError

    def _emission_table(self, X, missing, params, out=None, cache=None):
        """Emission log-likelihoods; a missing row (all NaN) has likelihood 1 in every state."""
        table = self._emission_log_likelihood(X, params, out=out, cache=cache)
        if missing is not None:
            table[missing] = 0.0
        return table

    def _raw_rows(self, X, missing, params):
        """``rows -> emission log-likelihoods of those rows of X`` (for the rare paths that
        need a table the kernels have overwritten)."""
        def rows_of(rows):
            return self._emission_table(X[rows], None if missing is None else missing[rows],
                                        params)
        return rows_of

    def _in_log_space(self, values, bounds, raw_rows, params, weights=None, posteriors=None,
                      counts=None):
        """Run again in log space (:func:`fastem.kernels.hmm.log_forward_backward`) the
        sequences a scaled kernel returned as NaN (zeros in the transitions and emissions
        hundreds of nats apart): their log-likelihoods into ``values``, their posteriors
        into ``posteriors`` and their weighted expected counts added to ``counts``, when
        given. ``raw_rows(rows)`` gives the emission log-likelihoods of those rows."""
        redo = np.flatnonzero(np.isnan(values))
        if not redo.size:
            return
        rows = np.concatenate([np.arange(bounds[s], bounds[s + 1]) for s in redo])
        table = np.ascontiguousarray(raw_rows(rows), dtype=np.float64)
        sub_bounds = np.concatenate([[0], np.cumsum(np.diff(bounds)[redo])]).astype(np.int64)
        sub_posteriors, sub_values = np.empty_like(table), np.empty(len(redo))
        k = self.n_components
        sub_counts = np.zeros(k + k * k)
        sub_weights = (np.empty(0) if weights is None or weights.size == 0
                       else np.ascontiguousarray(weights[redo]))
        hk.log_forward_backward(table, sub_bounds, params["startprob"], params["transmat"],
                                sub_weights, sub_posteriors, sub_values, sub_counts)
        values[redo] = sub_values
        if posteriors is not None:
            posteriors[rows] = sub_posteriors
        if counts is not None:
            counts += sub_counts

    def _limiting_emissions(self, rows, params):
        """For rows that every state finds impossible (their emission log-likelihoods all
        round to -inf), relative log-likelihoods that stay finite, e.g. the exact
        log-ratios of Gaussian densities whose squared distances overflow.

        Here, for emissions with probabilities of exactly zero (a symbol, count or
        outcome that no state emits): zeros, the row read as missing. That is the limit
        of smoothing every state's zero probabilities alike, and its state is then
        inferred from its neighbours (posteriors of zeros before). The sequence's
        log-likelihood stays -inf.
        """
        return np.zeros((len(rows), self.n_components))

    def _impossible_rows_error(self, rows):
        """The ValueError a fit raises for ``rows`` that every state finds impossible
        (saying why, and what to do), or None to leave their sequences out of the
        statistics, as before."""
        return None

    def _impossible_rows(self, X, missing, params, bounds, sequence_values, table=None):
        """Rows of the sequences a kernel found impossible (``sequence_values`` -inf) that
        every state finds impossible, and the emission table (computed again when not
        given; the kernels overwrite theirs)."""
        impossible = sequence_values == -np.inf
        if table is None:
            table = self._emission_table(X, missing, params)
        rows = np.flatnonzero(np.repeat(impossible, np.diff(bounds))
                              & (table.max(axis=1) == -np.inf))
        return rows, table

    def _refuse_impossible_rows(self, X, missing, params, bounds, loglik, weights, cache):
        """In a fitting pass (fit and partial_fit), rows of sequences with positive weight
        that every state finds impossible raise the emission model's error (Gaussian
        emissions: the rows' squared distances overflow float64; the data need scaling),
        instead of leaving those sequences out with a log-likelihood of -inf."""
        values = loglik if weights.size == 0 else np.where(weights > 0, loglik, 0.0)
        if values.min() > -np.inf:
            return
        table = self._emission_table(X, missing, params, cache=cache)
        rows, _ = self._impossible_rows(X, missing, params, bounds, values, table)
        error = self._impossible_rows_error(X[rows]) if rows.size else None
        if error is not None:
            raise error

    def _limiting_table(self, X, missing, params, bounds, sequence_values, table=None):
        """After a kernel found sequences impossible: the emission table with the rows that
        every state finds impossible replaced by their limiting relative log-likelihoods
        (as a GaussianMixture gives rows whose squared distances overflow their limiting
        posterior), and the sequences holding such rows, whose log-likelihood stays -inf
        (the correctly rounded value); None when there is nothing to replace."""
        if not sequence_values.size or sequence_values.min() > -np.inf:
            return None
        rows, table = self._impossible_rows(X, missing, params, bounds, sequence_values, table)
        limiting = self._limiting_emissions(X[rows], params) if rows.size else None
        if limiting is None:
            return None
        table[rows] = limiting
        return table, np.unique(np.searchsorted(bounds, rows, side="right") - 1)

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

    def _initial_parameters(self, X, bounds, random_state):
        k = self.n_components
        params = {}
        init = 1.0 / k
        # hmmlearn's draws, in hmmlearn's order.
        if self._needs_init("s", "startprob_"):
            params["startprob"] = random_state.dirichlet(np.full(k, init))
        else:
            params["startprob"] = self._checked_startprob()
        if self._needs_init("t", "transmat_"):
            params["transmat"] = random_state.dirichlet(np.full(k, init), size=k)
        else:
            params["transmat"] = self._checked_transmat()
        params.update(self._initial_emissions(X, random_state))
        return params

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
        params = {"startprob": self._checked_startprob(), "transmat": self._checked_transmat()}
        params.update(self._user_emissions())
        return params

    def _set_parameters(self, params):
        self.startprob_ = params["startprob"]
        self.transmat_ = params["transmat"]
        self._set_emissions(params)

    def _start_transition_m_step(self, stats, params):
        """MAP start and transition probabilities from the expected counts."""
        new = {}
        if "s" in self.params:
            value = np.maximum(np.asarray(self.startprob_prior) - 1.0 + stats["start"], 0.0)
            new["startprob"] = _normalise(np.where(params["startprob"] == 0, 0.0, value),
                                          params["startprob"])
        if "t" in self.params:
            value = np.maximum(np.asarray(self.transmat_prior) - 1.0 + stats["trans"], 0.0)
            new["transmat"] = _normalise(np.where(params["transmat"] == 0, 0.0, value),
                                         params["transmat"])
        return new

    def _completed_parameters(self, params):
        """Parameters after an M-step, with whatever derives from them (variational
        models: the sub-normalised probabilities the E-step reads)."""
        return params

    def _log_prior(self, params):
        prior = 0.0
        if "s" in self.params:
            prior += _dirichlet_log_prior(self.startprob_prior, params["startprob"])
        if "t" in self.params:
            prior += _dirichlet_log_prior(self.transmat_prior, params["transmat"])
        return prior + self._emission_log_prior(params)

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
        self._warn_overwritten_parameters()

        def finish(run):
            self._drop_caches()
            if source.rows is not None:
                dask_io.set_feature_names(self, source.rows)
            n_values = (sum(block.X.size for block in backend.blocks())
                        if source.kind == "memory" else np.inf)  # (a stream is large)
            n_free = self._n_parameters()
            if n_values < n_free:
                _logger.warning("Fitting a model with %d free scalar parameters with only %d "
                                "data points will result in a degenerate solution.", n_free,
                                n_values)

        rows = source.n_rows
        fit_estimator(self, BaumWelchModel(self, n_features), backend, max_iter=self.n_iter,
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
            if state is None and self._features_of(params) != n_features:
                params = None  # fitted on other data: start afresh from this batch
        online_step(self, BaumWelchModel(self, n_features), block, params,
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
        log_b = self._emission_table(X, missing, params)
        posteriors = np.empty_like(log_b)
        loglik = np.empty(len(bounds) - 1)
        with threads(self.n_threads, self._work(X.shape[0], X.shape[1] if X.ndim == 2 else 1)):
            k = self.n_components
            units = sequence_units(bounds)
            hk.forward_backward(log_b, bounds, units, params["startprob"], params["transmat"],
                                np.empty(0), posteriors, loglik, np.zeros(k + k * k))
            self._in_log_space(loglik, bounds, self._raw_rows(X, missing, params), params,
                               posteriors=posteriors)
            limit = self._limiting_table(X, missing, params, bounds, loglik)
            if limit is not None:  # rows every state finds impossible: limiting posteriors
                log_b, far = limit
                limited = log_b.copy()  # (the kernel overwrites log_b)
                hk.forward_backward(log_b, bounds, units, params["startprob"],
                                    params["transmat"], np.empty(0), posteriors, loglik,
                                    np.zeros(k + k * k))
                self._in_log_space(loglik, bounds, limited.__getitem__, params,
                                   posteriors=posteriors)
                loglik[far] = -np.inf
        return loglik, posteriors

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
        log_b = self._emission_table(X, missing, params)
        loglik = np.empty(len(bounds) - 1)
        with threads(self.n_threads, self._work(X.shape[0], X.shape[1] if X.ndim == 2 else 1)):
            hk.forward_loglik(log_b, bounds, params["startprob"], params["transmat"], loglik)
            self._in_log_space(loglik, bounds, log_b.__getitem__, params)
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
        log_b = self._emission_table(X, missing, params)
        states = np.empty(X.shape[0], dtype=np.int64)
        logprob = np.empty(len(bounds) - 1)
        with threads(self.n_threads, self._work(X.shape[0], X.shape[1] if X.ndim == 2 else 1)):
            hk.viterbi(log_b, bounds, _log(params["startprob"]), _log(params["transmat"]),
                       states, logprob)
            limit = self._limiting_table(X, missing, params, bounds, logprob, table=log_b)
            if limit is not None:  # rows every state finds impossible: the limiting path
                hk.viterbi(limit[0], bounds, _log(params["startprob"]),
                           _log(params["transmat"]), states, logprob)
                logprob[limit[1]] = -np.inf
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
        transmat_cdf = np.cumsum(params["transmat"], axis=1)
        if currstate is None:
            currstate = int((np.cumsum(params["startprob"]) > rng.rand()).argmax())
        else:
            currstate = v.check_int(currstate, "currstate", 0, self.n_components - 1)
        states = [currstate]
        rows = [self._emission_sample(currstate, params, rng)]
        for _ in range(n_samples - 1):
            currstate = int((transmat_cdf[currstate] > rng.rand()).argmax())
            states.append(currstate)
            rows.append(self._emission_sample(currstate, params, rng))
        return np.atleast_2d(np.array(rows)), np.array(states, dtype=int)

    def get_stationary_distribution(self) -> FloatArray:
        """Stationary distribution of the transition matrix."""
        transmat = self._current_parameters()["transmat"]
        values, vectors = np.linalg.eig(transmat.T)
        vector = np.real_if_close(vectors[:, np.argmax(values.real)])
        return np.real(vector / vector.sum())

    def _n_parameters(self):
        k = self.n_components
        count = self._n_emission_parameters()
        if "s" in self.params:
            count += k - 1
        if "t" in self.params:
            count += k * (k - 1)
        return count

    def aic(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Akaike information criterion: -2 log L + 2 p."""
        return -2.0 * self.score(X, lengths) + 2.0 * self._n_parameters()

    def bic(self, X: ArrayLike, lengths: ArrayLike | None = None) -> float:
        """Bayesian information criterion: -2 log L + p log(n_samples)."""
        n = np.asarray(X).shape[0]
        return -2.0 * self.score(X, lengths) + self._n_parameters() * np.log(n)

