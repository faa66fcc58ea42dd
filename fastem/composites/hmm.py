"""The HMM composite: start probabilities, a Markov chain of transitions and a
component (what each state emits), as ONE engine model for every component.

Blocks are groups of whole sequences. One pass runs the component's lattice, the
scaled forward-backward kernel (:func:`fastem.kernels.hmm.forward_backward`),
and the component's accumulation of the (weighted) posteriors; the statistics
are the component's fields, then the expected start and transition counts.
Sequences the scaled recursion cannot represent run again in log space
(:func:`fastem.kernels.hmm.log_forward_backward`); rows that every state finds
impossible take the component's limiting log-likelihoods in inference and its
error (or nothing) in a fit. A missing row (``Block.missing``) has likelihood 1
in every state.

The composite holds hyperparameters and shapes only (no estimator): it pickles
small for cluster workers. Parameters are typed: :class:`HMMParams` (maximum
likelihood or MAP under Dirichlet priors) or, for variational Bayes,
:class:`HMMPosterior` (Dirichlet posteriors over the start and every transition
row, and the component's posterior).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..components.dirichlet import (
    dirichlet_kl,
    dirichlet_log_prior,
    log_or_minus_inf,
    normalised_rows,
    positive_draw,
    subnormalised,
)
from ..engine import ModelBase, Stats, StatsLayout
from ..engine.packing import positive_values, probability_rows
from ..engine.sequences import sequence_chunks, sequence_units
from ..kernels import hmm as hk
from ..mixture.missing import mean_imputed


@dataclass
class HMMParams:
    """Parameters of an HMM: ``startprob`` (K,), ``transmat`` (K, K) and the component's
    own parameters object ``emission``."""

    startprob: np.ndarray
    transmat: np.ndarray
    emission: Any


@dataclass
class HMMPosterior:
    """A variational HMM's posterior: Dirichlet priors and posteriors of the start
    probabilities and of each transition row, and the component's posterior."""

    startprob_prior: np.ndarray
    startprob_posterior: np.ndarray
    transmat_prior: np.ndarray
    transmat_posterior: np.ndarray
    emission: Any


@dataclass
class _Prepared:
    """What one pass reads: the probabilities the recursion runs with (sub-normalised
    under variational Bayes), the component's prepared emission, and the parameters."""

    startprob: np.ndarray
    transmat: np.ndarray
    emission: Any
    params: Any


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
    return sequence_chunks(bounds, limit)


class HMMComposite(ModelBase):
    """An HMM over any component, as an engine model (see the module docstring).

    Parameters
    ----------
    component : Component
        What each of the ``component.n_components`` states emits.
    n_features : int
        The component's feature count (its statistics' shapes).
    startprob_prior, transmat_prior : float or array
        Dirichlet priors of the start probabilities and of each transition row: the MAP
        M-step (1.0: none); under ``variational``, the prior concentrations (arrays).
    update_start, update_transmat, update_emission : bool
        False keeps that part fixed in the M-step (and out of the log prior and the
        parameter count).
    startprob, transmat : array or None
        Fixed initial values (None: hmmlearn's Dirichlet draws); under
        ``variational``, initial posteriors.
    emission : component parameters or None
        Fixed initial emission parameters (None: the component's ``initialize``).
    variational : bool
        Variational Bayes: parameters are an :class:`HMMPosterior`, the pass runs with
        the sub-normalised exp(E[log p]) and the objective is the lower bound
        log Z - KL(q || p) (the component's ``log_prior`` is its -KL).
    """

    monotone = False  # checked by the monitor, which reports a decrease

    def __init__(self, component, n_features, *, startprob_prior=1.0, transmat_prior=1.0,
                 update_start=True, update_transmat=True, update_emission=True,
                 startprob=None, transmat=None,
                 emission=None, variational=False):
        self.component = component
        self.n_components = k = component.n_components
        self.n_features = int(n_features)
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.update_start = bool(update_start)
        self.update_transmat = bool(update_transmat)
        self.update_emission = bool(update_emission)
        self.initial_startprob = startprob
        self.initial_transmat = transmat
        self.initial_emission = emission
        self.variational = bool(variational)
        fields = component.fields(self.n_features)
        self.emission_layout = StatsLayout(fields, recentre=component.recentre)
        self.layout = StatsLayout({**fields, "start": (k,), "trans": (k, k)},
                                  recentre=component.recentre)
        self._counts = slice(self.layout.slices["start"].start, self.layout.size)

    def __getstate__(self):
        # The work tables are scratch space: never shipped (e.g. to cluster workers).
        return {key: value for key, value in vars(self).items() if key != "_work_tables"}

    # -- start ----------------------------------------------------------------------
    def initialize(self, block, random_state):
        observed = block.X if block.missing is None else block.X[~block.missing]
        if np.issubdtype(observed.dtype, np.floating) and np.isnan(observed).any():
            # Partially missing rows: initialise on the mean-imputed rows with anything seen.
            seen = ~np.isnan(observed).all(axis=1)
            observed = mean_imputed(np.ascontiguousarray(observed[seen]))
        k = self.n_components
        uniform = np.full(k, 1.0 / k)
        # hmmlearn's draws, in hmmlearn's order: start, transitions, emissions.
        startprob, transmat = self.initial_startprob, self.initial_transmat
        if self.variational:
            n_sequences, n_rows = len(block.bounds) - 1, int(block.bounds[-1])
            if startprob is None:
                startprob = positive_draw(random_state.dirichlet(uniform) * n_sequences,
                                          self.startprob_prior)
            if transmat is None:
                transmat = positive_draw(random_state.dirichlet(uniform, size=k) * n_rows / k,
                                         self.transmat_prior)
        else:
            if startprob is None:
                startprob = random_state.dirichlet(uniform)
            if transmat is None:
                transmat = random_state.dirichlet(uniform, size=k)
        emission = self.initial_emission
        if emission is None:
            emission = self.component.initialize(observed, None, random_state)
        if self.variational:
            return HMMPosterior(self.startprob_prior, startprob, self.transmat_prior,
                                transmat, emission)
        return HMMParams(startprob, transmat, emission)

    # -- one pass -------------------------------------------------------------------
    def shift(self, params):
        return self.component.shift(params.emission)

    def prepare(self, params):
        if self.variational:
            return _Prepared(subnormalised(params.startprob_posterior),
                             subnormalised(params.transmat_posterior),
                             self.component.prepare(params.emission), params)
        return _Prepared(params.startprob, params.transmat,
                         self.component.prepare(params.emission), params)

    def _groups(self, block):
        groups = block.cache.get("sequence_groups")
        if groups is None:
            starts = sequence_groups(block.bounds, self.n_components)
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
            k = self.n_components
            tables = self._work_tables = (np.empty((rows, k)), np.empty((rows, k)))
        return tables

    def block_stats(self, prepared, block, out):
        groups = self._groups(block)
        log_b_buffer, posterior_buffer = self._tables(groups, block)
        counts = out.flat[self._counts]
        emission = Stats(self.emission_layout, out.flat[:self._counts.start], out.shift)
        for first, last, units, bounds, cache in groups:
            lo, hi = int(block.bounds[first]), int(block.bounds[last])
            X = block.X[lo:hi]
            missing = None if block.missing is None else block.missing[lo:hi]
            log_b = self.emission_table(prepared, X, missing, out=log_b_buffer[:hi - lo],
                                        cache=cache)
            posteriors = posterior_buffer[:hi - lo]
            loglik = np.empty(last - first)
            weights = (np.empty(0) if block.weights is None else
                       np.ascontiguousarray(block.weights[first:last], dtype=np.float64))
            hk.forward_backward(log_b, bounds, units, prepared.startprob, prepared.transmat,
                                weights, posteriors, loglik, counts)
            if not loglik.min() > -np.inf:  # (only then: nothing is added to an ordinary pass)
                self._in_log_space(loglik, bounds, self._raw_rows(prepared, X, missing),
                                   prepared, weights, posteriors, counts)
                self._refuse_impossible_rows(prepared, X, missing, bounds, loglik, weights,
                                             cache)
            # Emission statistics: weighted posteriors, and nothing from missing rows.
            if block.weights is not None:
                row_weight = np.repeat(weights, np.diff(bounds))
                posteriors *= row_weight[:, None]
            if missing is not None:
                posteriors[missing] = 0.0
            weight_before = out.flat[1]
            self.component.accumulate(prepared.emission, X, posteriors, emission, cache=cache)
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

    # -- objective and M-step ---------------------------------------------------------
    def log_prior(self, params):
        """The log prior of the updated parts (MAP), or -KL(q || p) (variational)."""
        if self.variational:
            kl = float(dirichlet_kl(params.startprob_posterior, params.startprob_prior))
            kl += float(np.sum(dirichlet_kl(params.transmat_posterior, params.transmat_prior)))
            # (The bound holds every KL term, whatever the M-step updates.)
            return -kl + self.component.log_prior(params.emission)
        prior = 0.0
        if self.update_start:
            prior += dirichlet_log_prior(self.startprob_prior, params.startprob)
        if self.update_transmat:
            prior += dirichlet_log_prior(self.transmat_prior, params.transmat)
        return prior + self._emission_log_prior(params)

    def _emission_log_prior(self, params):
        return self.component.log_prior(params.emission) if self.update_emission else 0.0

    def objective(self, stats, params):
        return float(stats.loglik) + self.log_prior(params)

    def m_step(self, stats, params):
        if self.variational:
            startprob, transmat = params.startprob_posterior, params.transmat_posterior
            if self.update_start:
                startprob = params.startprob_prior + stats["start"]
            if self.update_transmat:
                transmat = params.transmat_prior + stats["trans"]
        else:
            startprob, transmat = params.startprob, params.transmat
            if self.update_start:
                value = np.maximum(np.asarray(self.startprob_prior) - 1.0 + stats["start"], 0.0)
                startprob = normalised_rows(np.where(startprob == 0, 0.0, value), startprob)
            if self.update_transmat:
                value = np.maximum(np.asarray(self.transmat_prior) - 1.0 + stats["trans"], 0.0)
                transmat = normalised_rows(np.where(transmat == 0, 0.0, value), transmat)
        emission = params.emission
        if self.update_emission:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # (checked below)
                emission = self.component.m_step(stats, emission)
        # The one check of what the M-step made, for fit and partial_fit alike: parameters
        # the next E-step could not use (non-finite after an overflow, a covariance that is
        # not positive definite) are refused here, where they are made, instead of at the
        # next pass, which a partial_fit never runs (it stored them).
        emission = self.component.checked(emission)
        return self._with(params, startprob, transmat, emission)

    def _with(self, params, startprob, transmat, emission):
        if self.variational:
            return HMMPosterior(params.startprob_prior, startprob, params.transmat_prior,
                                transmat, emission)
        return HMMParams(startprob, transmat, emission)

    # -- SQUAREM ----------------------------------------------------------------------
    def pack(self, params):
        if self.variational:
            return np.concatenate([params.startprob_posterior,
                                   np.ravel(params.transmat_posterior),
                                   self.component.pack(params.emission)])
        return np.concatenate([params.startprob, np.ravel(params.transmat),
                               self.component.pack(params.emission)])

    def unpack(self, vector, like):
        k = self.n_components
        emission = self.component.unpack(vector[k + k * k:], like.emission)
        if self.variational:
            # The Dirichlet posteriors are extrapolated as they are; a point outside their
            # domain is refused and the schedule falls back to the plain step.
            return self._with(like, positive_values(vector[:k], (k,), "start posteriors"),
                              positive_values(vector[k:k + k * k], (k, k),
                                              "transition posteriors"), emission)
        return self._with(like, probability_rows(vector[:k], (k,), "start probabilities"),
                          probability_rows(vector[k:k + k * k], (k, k), "transitions"),
                          emission)

    def n_parameters(self):
        """Free parameters (for BIC/AIC): the updated parts only."""
        k = self.n_components
        count = self.component.n_parameters(self.n_features) if self.update_emission else 0
        if self.update_start:
            count += k - 1
        if self.update_transmat:
            count += k * (k - 1)
        return count

    # -- the lattice and its rare paths ------------------------------------------------
    def emission_table(self, prepared, X, missing, out=None, cache=None):
        """Emission log-likelihoods; a missing row (all NaN) has likelihood 1 in every
        state."""
        table = self.component.log_likelihood(prepared.emission, X, out=out, cache=cache)
        if missing is not None:
            table[missing] = 0.0
        return table

    def _raw_rows(self, prepared, X, missing):
        """``rows -> emission log-likelihoods of those rows of X`` (for the rare paths that
        need a table the kernels have overwritten)."""
        def rows_of(rows):
            return self.emission_table(prepared, X[rows],
                                       None if missing is None else missing[rows])
        return rows_of

    def _in_log_space(self, values, bounds, raw_rows, prepared, weights=None,
                      posteriors=None, counts=None):
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
        hk.log_forward_backward(table, sub_bounds, prepared.startprob, prepared.transmat,
                                sub_weights, sub_posteriors, sub_values, sub_counts)
        values[redo] = sub_values
        if posteriors is not None:
            posteriors[rows] = sub_posteriors
        if counts is not None:
            counts += sub_counts

    def _impossible_rows(self, prepared, X, missing, bounds, sequence_values, table=None):
        """Rows of the sequences a kernel found impossible (``sequence_values`` -inf) that
        every state finds impossible, and the emission table (computed again when not
        given; the kernels overwrite theirs)."""
        impossible = sequence_values == -np.inf
        if table is None:
            table = self.emission_table(prepared, X, missing)
        rows = np.flatnonzero(np.repeat(impossible, np.diff(bounds))
                              & (table.max(axis=1) == -np.inf))
        return rows, table

    def _refuse_impossible_rows(self, prepared, X, missing, bounds, loglik, weights, cache):
        """In a fitting pass (fit and partial_fit), rows of sequences with positive weight
        that every state finds impossible raise the component's error (Gaussian: the rows'
        squared distances overflow float64; the data need scaling), instead of leaving
        those sequences out with a log-likelihood of -inf."""
        values = loglik if weights.size == 0 else np.where(weights > 0, loglik, 0.0)
        if values.min() > -np.inf:
            return
        table = self.emission_table(prepared, X, missing, cache=cache)
        rows, _ = self._impossible_rows(prepared, X, missing, bounds, values, table)
        error = self.component.impossible_rows_error(X[rows]) if rows.size else None
        if error is not None:
            raise error

    def _limiting_table(self, prepared, X, missing, bounds, sequence_values, table=None):
        """After a kernel found sequences impossible: the emission table with the rows that
        every state finds impossible replaced by the component's limiting relative
        log-likelihoods (as a GaussianMixture gives rows whose squared distances overflow
        their limiting posterior), and the sequences holding such rows, whose
        log-likelihood stays -inf (the correctly rounded value); None when there is
        nothing to replace."""
        if not sequence_values.size or sequence_values.min() > -np.inf:
            return None
        rows, table = self._impossible_rows(prepared, X, missing, bounds, sequence_values,
                                            table)
        limiting = (self.component.limiting_log_likelihood(prepared.params.emission, X[rows])
                    if rows.size else None)
        if limiting is None:
            return None
        table[rows] = limiting
        return table, np.unique(np.searchsorted(bounds, rows, side="right") - 1)

    # -- inference (under fitted parameters) -------------------------------------------
    def posteriors(self, params, X, missing, bounds):
        """(log-likelihood of each sequence, state posteriors (n, K)); rows every state
        finds impossible take the component's limiting posteriors."""
        prepared = self.prepare(params)
        log_b = self.emission_table(prepared, X, missing)
        posteriors = np.empty_like(log_b)
        loglik = np.empty(len(bounds) - 1)
        k = self.n_components
        units = sequence_units(bounds)
        hk.forward_backward(log_b, bounds, units, prepared.startprob, prepared.transmat,
                            np.empty(0), posteriors, loglik, np.zeros(k + k * k))
        self._in_log_space(loglik, bounds, self._raw_rows(prepared, X, missing), prepared,
                           posteriors=posteriors)
        limit = self._limiting_table(prepared, X, missing, bounds, loglik)
        if limit is not None:  # rows every state finds impossible: limiting posteriors
            log_b, far = limit
            limited = log_b.copy()  # (the kernel overwrites log_b)
            hk.forward_backward(log_b, bounds, units, prepared.startprob, prepared.transmat,
                                np.empty(0), posteriors, loglik, np.zeros(k + k * k))
            self._in_log_space(loglik, bounds, limited.__getitem__, prepared,
                               posteriors=posteriors)
            loglik[far] = -np.inf
        return loglik, posteriors

    def sequence_loglik(self, params, X, missing, bounds):
        """The log-likelihood of each sequence."""
        prepared = self.prepare(params)
        log_b = self.emission_table(prepared, X, missing)
        loglik = np.empty(len(bounds) - 1)
        hk.forward_loglik(log_b, bounds, prepared.startprob, prepared.transmat, loglik)
        self._in_log_space(loglik, bounds, log_b.__getitem__, prepared)
        return loglik

    def viterbi(self, params, X, missing, bounds):
        """(log joint probability of each sequence's best path, the states on it)."""
        prepared = self.prepare(params)
        log_b = self.emission_table(prepared, X, missing)
        states = np.empty(X.shape[0], dtype=np.int64)
        logprob = np.empty(len(bounds) - 1)
        log_startprob = log_or_minus_inf(prepared.startprob)
        log_transmat = log_or_minus_inf(prepared.transmat)
        hk.viterbi(log_b, bounds, log_startprob, log_transmat, states, logprob)
        limit = self._limiting_table(prepared, X, missing, bounds, logprob, table=log_b)
        if limit is not None:  # rows every state finds impossible: the limiting path
            hk.viterbi(limit[0], bounds, log_startprob, log_transmat, states, logprob)
            logprob[limit[1]] = -np.inf
        return logprob, states

    def sample(self, params, n_samples, random_state, currstate=None):
        """``n_samples`` steps drawn in hmmlearn's order: (rows, states)."""
        transmat_cdf = np.cumsum(params.transmat, axis=1)
        if currstate is None:
            currstate = int((np.cumsum(params.startprob) > random_state.rand()).argmax())
        states = [currstate]
        draw = self.component.sample
        rows = [draw(params.emission, currstate, 1, random_state)[0]]
        for _ in range(n_samples - 1):
            currstate = int((transmat_cdf[currstate] > random_state.rand()).argmax())
            states.append(currstate)
            rows.append(draw(params.emission, currstate, 1, random_state)[0])
        return np.atleast_2d(np.array(rows)), np.array(states, dtype=int)
