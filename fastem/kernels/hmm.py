"""Hidden Markov model inference: scaled forward-backward and Viterbi.

Kernels take the emission log-likelihood table ``log_b`` (n_samples, K), the
sequence boundaries ``bounds`` (n_sequences + 1, cumulative lengths) and the
initial / transition probabilities; they never see an emission model.

Forward-backward (DESIGN.md's rule): each row of ``log_b`` is shifted by its
maximum before exponentiating, so the largest emission factor of a step is 1
and nothing underflows before scaling; the forward variables are then
normalised at every step (scale ``c_t``). ``log p = sum_t (log c_t + max_t)``.
This is as robust as the log-space recursion and needs no logarithm inside
the K x K step, except where transitions or start probabilities have zeros and
emissions of a row are hundreds of nats apart: a step whose reachable states
all underflow against one it cannot reach. Such a sequence's log-likelihood is
returned as NaN (nothing is added for it) and the caller runs it again through
:func:`log_forward_backward`, the same recursion in log space (that rare path
only: ordinary sequences are computed as before). Expected transition counts
are accumulated during the backward sweep, so memory is O(T K) per sequence,
never T K K.

Work units are groups of consecutive sequences fixed by the lengths alone;
each writes its own partial counts, added in unit order, so results do not
depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .fast_math import exp
from .reduction import add_in_order


@kernel
def _check_lattice(log_b, bounds, startprob, transmat, n_outputs):
    """Shapes and sequence boundaries every HMM kernel relies on; O(n_sequences).

    A violation is a ValueError, never a read outside ``log_b``.
    """
    n_states = startprob.shape[0]
    if log_b.shape[1] != n_states:
        raise ValueError("HMM kernel: log_b must have one column per state")
    if transmat.shape[0] != n_states or transmat.shape[1] != n_states:
        raise ValueError("HMM kernel: transmat must be (n_states, n_states)")
    if bounds.shape[0] < 2 or bounds[0] != 0 or bounds[bounds.shape[0] - 1] != log_b.shape[0]:
        raise ValueError("HMM kernel: sequence bounds must run from 0 to n_samples")
    for s in range(bounds.shape[0] - 1):
        if bounds[s + 1] <= bounds[s]:
            raise ValueError("HMM kernel: sequence bounds must be increasing")
    if n_outputs < bounds.shape[0] - 1:
        raise ValueError("HMM kernel: the per-sequence output is too short")


@kernel
def _dead_end(row, prior):
    """What a step of total 0 means: -inf when no state its prior reaches is possible (the
    sequence is impossible), NaN when one is but underflowed against a state the prior
    excludes (the scaled recursion cannot represent the sequence: run it in log space)."""
    for j in range(prior.shape[0]):
        if prior[j] > 0.0 and row[j] > -np.inf:
            return np.nan
    return -np.inf


@kernel
def _sequence_forward_backward(log_b, lo, hi, startprob, transmat, transmat_t, posteriors,
                               scale, tmp, beta, outer, trans_counts, start_counts):
    """One sequence (rows lo:hi). Writes posteriors[lo:hi]; adds the expected counts.

    ``log_b[lo:hi]`` is overwritten with the shifted emission probabilities
    exp(log_b - row max). Returns the sequence's log-likelihood (-inf if it is
    impossible under the model; then nothing is added and its posteriors are 0).
    """
    n_states = startprob.shape[0]
    log_likelihood = 0.0
    # Forward: posteriors[t] holds the scaled forward variables. ``beta`` is free until the
    # backward sweep: it keeps the row's log-likelihoods while they are exponentiated, and
    # ``tmp`` the step's prior, for the test of an underflow below.
    for t in range(lo, hi):
        peak = log_b[t, 0]
        for k in range(1, n_states):
            peak = max(peak, log_b[t, k])
        if peak == -np.inf:
            peak = 0.0  # every state impossible: the scale below is 0
        for j in range(n_states):
            beta[j] = log_b[t, j]
            log_b[t, j] = exp(log_b[t, j] - peak)
        total = 0.0
        for j in range(n_states):
            if t == lo:
                prior = startprob[j]
            else:
                prior = 0.0
                for i in range(n_states):
                    prior += posteriors[t - 1, i] * transmat_t[j, i]
            tmp[j] = prior
            value = prior * log_b[t, j]
            posteriors[t, j] = value
            total += value
        scale[t - lo] = total
        if total == 0.0:
            for tt in range(lo, hi):
                for k in range(n_states):
                    posteriors[tt, k] = 0.0
            return _dead_end(beta, tmp)
        inverse = 1.0 / total
        for j in range(n_states):
            posteriors[t, j] *= inverse
        log_likelihood += np.log(total) + peak
    # Backward: beta holds the scaled backward variables of step t + 1. The expected
    # transition counts are A[i, j] * sum_t alpha_t[i] b_{t+1}[j] beta_{t+1}[j] / c_{t+1};
    # the sum (``outer``) is accumulated here and multiplied by A once per sequence.
    for k in range(n_states):
        beta[k] = 1.0
        for j in range(n_states):
            outer[k, j] = 0.0
    for t in range(hi - 2, lo - 1, -1):
        inverse = 1.0 / scale[t + 1 - lo]
        for j in range(n_states):
            tmp[j] = log_b[t + 1, j] * beta[j] * inverse
        # posteriors[t + 1] still holds alpha; turn it into gamma now that beta is known.
        norm = 0.0
        for j in range(n_states):
            posteriors[t + 1, j] *= beta[j]
            norm += posteriors[t + 1, j]
        norm = 1.0 / norm
        for j in range(n_states):
            posteriors[t + 1, j] *= norm
        for i in range(n_states):
            a_i = posteriors[t, i]
            total = 0.0
            for j in range(n_states):
                outer[i, j] += a_i * tmp[j]
                total += transmat[i, j] * tmp[j]
            beta[i] = total
    for i in range(n_states):
        for j in range(n_states):
            trans_counts[i, j] += transmat[i, j] * outer[i, j]
    norm = 0.0
    for j in range(n_states):
        posteriors[lo, j] *= beta[j]
        norm += posteriors[lo, j]
    for j in range(n_states):
        posteriors[lo, j] /= norm
        start_counts[j] += posteriors[lo, j]
    return log_likelihood


@kernel(parallel=True)
def forward_backward(log_b, bounds, unit_bounds, startprob, transmat, weights, posteriors,
                     sequence_loglik, counts):
    """Posteriors, per-sequence log-likelihoods and expected counts of all sequences.

    Parameters
    ----------
    log_b : (n, K) emission log-likelihoods; overwritten with exp(log_b - row max).
    bounds : (S + 1,) int64 cumulative sequence lengths (bounds[0] = 0).
    unit_bounds : (U + 1,) int64 sequence indices that start each work unit.
    startprob, transmat : (K,), (K, K).
    weights : (S,) per-sequence weights (scale that sequence's counts), or empty.
    posteriors : (n, K) output.
    sequence_loglik : (S,) output.
    counts : (K + K*K,) running weighted expected start counts, then transition counts;
        each unit's partial is added in unit order (returned).
    """
    n_states = startprob.shape[0]
    _check_lattice(log_b, bounds, startprob, transmat, sequence_loglik.shape[0])
    n_sequences = bounds.shape[0] - 1
    if posteriors.shape[0] != log_b.shape[0] or posteriors.shape[1] != n_states:
        raise ValueError("forward_backward: posteriors must have the shape of log_b")
    if weights.shape[0] != 0 and weights.shape[0] != n_sequences:
        raise ValueError("forward_backward: one weight per sequence expected")
    n_units = unit_bounds.shape[0] - 1
    if n_units < 1 or unit_bounds[0] != 0 or unit_bounds[n_units] != n_sequences:
        raise ValueError("forward_backward: work units must cover the sequences")
    for u in range(n_units):
        if unit_bounds[u + 1] < unit_bounds[u]:
            raise ValueError("forward_backward: work units must be in order")
    weighted = weights.shape[0] > 0
    size = n_states + n_states * n_states
    if counts.shape[0] != size:
        raise ValueError("forward_backward: counts must have K + K*K entries")
    partial = np.zeros((n_units, size))
    longest = 0
    for s in range(bounds.shape[0] - 1):
        longest = max(longest, bounds[s + 1] - bounds[s])
    transmat_t = np.ascontiguousarray(transmat.T)
    for u in prange(n_units):
        scale = np.empty(longest)
        beta = np.empty(n_states)
        tmp = np.empty(n_states)
        outer = np.empty((n_states, n_states))
        trans_counts = np.zeros((n_states, n_states))
        start_counts = np.zeros(n_states)
        for s in range(unit_bounds[u], unit_bounds[u + 1]):
            for i in range(n_states):
                start_counts[i] = 0.0
                for j in range(n_states):
                    trans_counts[i, j] = 0.0
            value = _sequence_forward_backward(
                log_b, bounds[s], bounds[s + 1], startprob, transmat, transmat_t, posteriors,
                scale, tmp, beta, outer, trans_counts, start_counts)
            sequence_loglik[s] = value
            if not value > -np.inf:  # impossible (-inf), or to be run in log space (NaN)
                continue
            w = weights[s] if weighted else 1.0
            for k in range(n_states):
                partial[u, k] += w * start_counts[k]
            for i in range(n_states):
                for j in range(n_states):
                    partial[u, n_states + i * n_states + j] += w * trans_counts[i, j]
    add_in_order(partial, n_units, counts)
    return counts


@kernel(parallel=True)
def viterbi(log_b, bounds, log_startprob, log_transmat, states, sequence_logprob):
    """Most probable state path of every sequence (log space) and its log joint probability.

    Ties go to the lowest state index. An impossible sequence gets -inf and
    the path of the first maximum.
    """
    n_states = log_startprob.shape[0]
    _check_lattice(log_b, bounds, log_startprob, log_transmat, sequence_logprob.shape[0])
    if states.shape[0] != log_b.shape[0]:
        raise ValueError("viterbi: one state per sample expected")
    n_sequences = bounds.shape[0] - 1
    for s in prange(n_sequences):
        lo = bounds[s]
        hi = bounds[s + 1]
        back = np.empty((hi - lo, n_states), dtype=np.int64)
        delta = np.empty(n_states)
        previous = np.empty(n_states)
        for k in range(n_states):
            delta[k] = log_startprob[k] + log_b[lo, k]
        for t in range(lo + 1, hi):
            for k in range(n_states):
                previous[k] = delta[k]
            for j in range(n_states):
                best = 0
                best_value = previous[0] + log_transmat[0, j]
                for i in range(1, n_states):
                    value = previous[i] + log_transmat[i, j]
                    if value > best_value:
                        best_value = value
                        best = i
                back[t - lo, j] = best
                delta[j] = best_value + log_b[t, j]
        last = 0
        for k in range(1, n_states):
            if delta[k] > delta[last]:
                last = k
        sequence_logprob[s] = delta[last]
        states[hi - 1] = last
        for t in range(hi - 1, lo, -1):
            last = back[t - lo, last]
            states[t - 1] = last


@kernel(parallel=True)
def forward_loglik(log_b, bounds, startprob, transmat, sequence_loglik):
    """Per-sequence log-likelihoods by the shifted, scaled forward recursion alone.

    O(K) memory per sequence (no (n, K) lattice): what ``score`` needs. NaN for a
    sequence to be run in log space (see the module docstring).
    """
    n_states = startprob.shape[0]
    _check_lattice(log_b, bounds, startprob, transmat, sequence_loglik.shape[0])
    n_sequences = bounds.shape[0] - 1
    transmat_t = np.ascontiguousarray(transmat.T)
    for s in prange(n_sequences):
        alpha = np.empty(n_states)
        previous = np.empty(n_states)
        priors = np.empty(n_states)
        log_likelihood = 0.0
        for t in range(bounds[s], bounds[s + 1]):
            peak = log_b[t, 0]
            for k in range(1, n_states):
                peak = max(peak, log_b[t, k])
            if peak == -np.inf:
                log_likelihood = -np.inf
                break
            total = 0.0
            for j in range(n_states):
                if t == bounds[s]:
                    prior = startprob[j]
                else:
                    prior = 0.0
                    for i in range(n_states):
                        prior += previous[i] * transmat_t[j, i]
                priors[j] = prior
                alpha[j] = prior * exp(log_b[t, j] - peak)
                total += alpha[j]
            if total == 0.0:
                log_likelihood = _dead_end(log_b[t], priors)  # -inf, or NaN: log space
                break
            inverse = 1.0 / total
            for j in range(n_states):
                previous[j] = alpha[j] * inverse
            log_likelihood += np.log(total) + peak
        sequence_loglik[s] = log_likelihood


@kernel
def _log_sum_exp(values):
    peak = values[0]
    for k in range(1, values.shape[0]):
        peak = max(peak, values[k])
    if peak == -np.inf:
        return -np.inf
    total = 0.0
    for k in range(values.shape[0]):
        total += np.exp(values[k] - peak)
    return peak + np.log(total)


@kernel(parallel=True)
def log_forward_backward(log_b, bounds, startprob, transmat, weights, posteriors,
                         sequence_loglik, counts):
    """:func:`forward_backward` in log space (same arguments; ``log_b`` is not written).

    For the sequences the scaled recursion returns as NaN: log alpha and log beta are
    kept whole, so a state whose mass is hundreds of nats below a row's best is not
    lost. O(T K) memory per sequence, K logarithms per step and state: for those
    sequences only. Each sequence adds its counts in sequence order.
    """
    n_states = startprob.shape[0]
    _check_lattice(log_b, bounds, startprob, transmat, sequence_loglik.shape[0])
    n_sequences = bounds.shape[0] - 1
    if posteriors.shape[0] != log_b.shape[0] or posteriors.shape[1] != n_states:
        raise ValueError("log_forward_backward: posteriors must have the shape of log_b")
    if weights.shape[0] != 0 and weights.shape[0] != n_sequences:
        raise ValueError("log_forward_backward: one weight per sequence expected")
    size = n_states + n_states * n_states
    if counts.shape[0] != size:
        raise ValueError("log_forward_backward: counts must have K + K*K entries")
    weighted = weights.shape[0] > 0
    log_start = np.log(startprob)
    log_trans = np.log(transmat)
    partial = np.zeros((n_sequences, size))
    for s in prange(n_sequences):
        lo = bounds[s]
        n = bounds[s + 1] - lo
        alpha = np.empty((n, n_states))
        beta = np.empty((n, n_states))
        work = np.empty(n_states)
        for j in range(n_states):
            alpha[0, j] = log_start[j] + log_b[lo, j]
        for t in range(1, n):
            for j in range(n_states):
                for i in range(n_states):
                    work[i] = alpha[t - 1, i] + log_trans[i, j]
                alpha[t, j] = _log_sum_exp(work) + log_b[lo + t, j]
        log_likelihood = _log_sum_exp(alpha[n - 1])
        sequence_loglik[s] = log_likelihood
        if log_likelihood == -np.inf:
            for t in range(n):
                for j in range(n_states):
                    posteriors[lo + t, j] = 0.0
            continue
        for j in range(n_states):
            beta[n - 1, j] = 0.0
        for t in range(n - 2, -1, -1):
            for i in range(n_states):
                for j in range(n_states):
                    work[j] = log_trans[i, j] + log_b[lo + t + 1, j] + beta[t + 1, j]
                beta[t, i] = _log_sum_exp(work)
        # Each step's posteriors (and pair posteriors) are normalised by their own sum, not
        # by exp(log_likelihood): with log-likelihoods of 1e9, alpha + beta - log p carries
        # absolute errors of 1e-7, and the rows would not sum to 1.
        w = weights[s] if weighted else 1.0
        for t in range(n):
            for j in range(n_states):
                work[j] = alpha[t, j] + beta[t, j]
            shift = _log_sum_exp(work)
            for j in range(n_states):
                posteriors[lo + t, j] = np.exp(work[j] - shift)
        for j in range(n_states):
            partial[s, j] += w * posteriors[lo, j]
        pairs = np.empty((n_states, n_states))
        for t in range(n - 1):
            peak = -np.inf
            for i in range(n_states):
                for j in range(n_states):
                    pairs[i, j] = (alpha[t, i] + log_trans[i, j] + log_b[lo + t + 1, j]
                                   + beta[t + 1, j])
                    peak = max(peak, pairs[i, j])
            total = 0.0
            for i in range(n_states):
                for j in range(n_states):
                    pairs[i, j] = np.exp(pairs[i, j] - peak)
                    total += pairs[i, j]
            for i in range(n_states):
                for j in range(n_states):
                    partial[s, n_states + i * n_states + j] += w * pairs[i, j] / total
    add_in_order(partial, n_sequences, counts)
    return counts
