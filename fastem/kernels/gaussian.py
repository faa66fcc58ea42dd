"""Gaussian log-densities and fused E-step / sufficient-statistic kernels.

One representation serves the four covariance types of a mixture:

* ``means``: (K, D) component means.
* ``factor``: the Cholesky factor of each precision matrix, either
  (Kc, D, D) upper triangular (``full`` with Kc = K, ``tied`` with Kc = 1), or
  (Kc, 1, D) holding a diagonal (``diag``; ``spherical`` repeats its scalar).
  For a row x, the Mahalanobis term is ``||(x - mu_k) @ factor_k||^2``.
* ``const``: (K,) per-component constants, ``log w_k + log det(factor_k) -
  D/2 log(2 pi)``, so that the weighted log-probability is
  ``const_k - 0.5 * Mahalanobis``.

The statistics are one flat float64 vector so that every kernel reduces
partials the same way::

    [0]                 sum_i w_i log p(x_i)     (posterior mode only)
    [1]                 sum_i w_i
    [2 : 2+K]           N_k  = sum_i r_ik
    next K*D            S_k  = sum_i r_ik (x_i - c_k)
    next K*D*D or K*D   Q_k  = sum_i r_ik (x_i - c_k)(x_i - c_k)^T (upper triangle),
                               or its diagonal for diagonal factors

where ``c`` is a shift (the current means): second moments about a nearby
point keep their precision, raw moments about zero would not.

Rows are processed in work units of ``unit_rows`` rows. Units are fixed by the
number of rows alone; each unit writes its own partial vector and partials are
added in unit order, so a result is bitwise the same for any thread count.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange

LOG_2PI = np.log(2.0 * np.pi)

# Where the responsibilities of gaussian_stats come from.
POSTERIOR = 0  # the model's own posterior (the E-step)
LABELS = 1  # hard labels, -1 for "no component" (k-means and one-hot initialisation)
GIVEN = 2  # a responsibility matrix supplied by the caller (random initialisation)

# What gaussian_rows writes per row.
ROW_LOGSUMEXP = 0  # log p(x) into out_values
ROW_LOG_RESP = 1  # log posterior into out_matrix
ROW_ARGMAX = 2  # most probable component into out_labels
ROW_MAX = 3  # largest weighted log-probability into out_values, its index into out_labels
ROW_WEIGHTED = 4  # weighted log-probabilities into out_matrix


@kernel
def stat_size(n_components, n_features, diagonal):
    """Length of the flat statistics vector."""
    second = n_features if diagonal else n_features * n_features
    return 2 + n_components * (1 + n_features + second)


@kernel
def weighted_log_prob_block(X, lo, hi, means, factor, const, out):
    """Fill ``out[i - lo, k]`` with the weighted log-probability of row i under k."""
    n_components, n_features = means.shape
    n_rows = hi - lo
    diagonal = factor.shape[1] == 1
    shared = factor.shape[0] == 1
    centred = np.empty((n_features, n_rows))  # transposed: contiguous over rows
    y = np.empty(n_rows)
    maha = np.empty(n_rows)
    for k in range(n_components):
        f = 0 if shared else k
        for i in range(n_rows):
            for a in range(n_features):
                centred[a, i] = X[lo + i, a] - means[k, a]
        maha[:] = 0.0
        if diagonal:
            for a in range(n_features):
                u = factor[f, 0, a]
                for i in range(n_rows):
                    t = centred[a, i] * u
                    maha[i] += t * t
        else:
            # y_j = sum_{a <= j} U[a, j] (x - mu)_a for all rows of the unit at once:
            # long contiguous loops over rows instead of short per-row triangles.
            for j in range(n_features):
                y[:] = 0.0
                for a in range(j + 1):
                    u = factor[f, a, j]
                    for i in range(n_rows):
                        y[i] += u * centred[a, i]
                for i in range(n_rows):
                    maha[i] += y[i] * y[i]
        for i in range(n_rows):
            out[i, k] = const[k] - 0.5 * maha[i]


@kernel
def logsumexp_row(row):
    """log(sum(exp(row))) without overflow; -inf when every entry is -inf."""
    peak = row[0]
    for k in range(1, row.shape[0]):
        if row[k] > peak:
            peak = row[k]
    if peak == -np.inf:
        return -np.inf
    total = 0.0
    for k in range(row.shape[0]):
        total += np.exp(row[k] - peak)
    return peak + np.log(total)


@kernel
def _accumulate_row(X, i, k, r, shift, out, diagonal, diff):
    """Add row i with responsibility r to component k's statistics in ``out``."""
    n_components, n_features = shift.shape
    s_off = 2 + n_components
    q_off = s_off + n_components * n_features
    out[2 + k] += r
    for a in range(n_features):
        diff[a] = X[i, a] - shift[k, a]
        out[s_off + k * n_features + a] += r * diff[a]
    if diagonal:
        base = q_off + k * n_features
        for a in range(n_features):
            out[base + a] += r * diff[a] * diff[a]
    else:
        base = q_off + k * n_features * n_features
        for a in range(n_features):
            ra = r * diff[a]
            row = base + a * n_features
            for b in range(a, n_features):
                out[row + b] += ra * diff[b]


@kernel
def _unit_stats(X, weights, lo, hi, means, factor, const, shift, labels, resp, resp_offset,
                source, diagonal, out):
    n_components, n_features = means.shape
    weighted = weights.shape[0] > 0
    diff = np.empty(n_features)
    # Dense responsibilities (posterior or given) go through the block accumulator; hard
    # labels touch one component per row, so they are added row by row.
    dense = source != LABELS
    block = np.zeros((hi - lo if dense else 0, n_components))
    if source == POSTERIOR:
        weighted_log_prob_block(X, lo, hi, means, factor, const, block)
    for i in range(lo, hi):
        w = weights[i] if weighted else 1.0
        if w == 0.0:
            continue  # a zero weight drops the row, whatever its values
        out[1] += w
        if source == POSTERIOR:
            row = block[i - lo]
            norm = logsumexp_row(row)
            out[0] += w * norm
            for k in range(n_components):
                row[k] = w * np.exp(row[k] - norm)
        elif source == LABELS:
            k = labels[i]
            if k >= 0:
                _accumulate_row(X, i, k, w, shift, out, diagonal, diff)
        else:
            for k in range(n_components):
                block[i - lo, k] = w * resp[i - resp_offset, k]
    if dense:
        _accumulate_block(X, weights, lo, hi, block, shift, diagonal, out)


@kernel
def _accumulate_block(X, weights, lo, hi, resp, shift, diagonal, out):
    """Add rows lo:hi with responsibilities ``resp`` to the statistics.

    The moments of a unit are dot products over its rows, computed on
    transposed copies so that the inner loops are contiguous, and the
    statistics are written once per unit instead of once per row.
    """
    n_components, n_features = shift.shape
    n_rows = hi - lo
    weighted = weights.shape[0] > 0
    s_off = 2 + n_components
    q_off = s_off + n_components * n_features
    centred = np.empty((n_features, n_rows))
    scaled = np.empty((n_features, n_rows))
    for k in range(n_components):
        mass = 0.0
        for i in range(n_rows):
            r = resp[i, k]
            if weighted and weights[lo + i] == 0.0:
                r = 0.0  # a dropped row may hold anything; it must not reach the sums
            mass += r
            for a in range(n_features):
                d = X[lo + i, a] - shift[k, a]
                centred[a, i] = d
                scaled[a, i] = r * d
        out[2 + k] += mass
        for a in range(n_features):
            first = 0.0
            for i in range(n_rows):
                first += scaled[a, i]
            out[s_off + k * n_features + a] += first
        if diagonal:
            for a in range(n_features):
                total = 0.0
                for i in range(n_rows):
                    total += scaled[a, i] * centred[a, i]
                out[q_off + k * n_features + a] += total
            continue
        base = q_off + k * n_features * n_features
        for a in range(n_features):
            # Four columns at a time: each loaded scaled[a, i] feeds four independent sums,
            # which hides the latency of the reductions.
            quad = a
            while quad + 4 <= n_features:
                t0 = t1 = t2 = t3 = 0.0
                for i in range(n_rows):
                    s_ai = scaled[a, i]
                    t0 += s_ai * centred[quad, i]
                    t1 += s_ai * centred[quad + 1, i]
                    t2 += s_ai * centred[quad + 2, i]
                    t3 += s_ai * centred[quad + 3, i]
                row = base + a * n_features + quad
                out[row] += t0
                out[row + 1] += t1
                out[row + 2] += t2
                out[row + 3] += t3
                quad += 4
            for b in range(quad, n_features):
                total = 0.0
                for i in range(n_rows):
                    total += scaled[a, i] * centred[b, i]
                out[base + a * n_features + b] += total


@kernel(parallel=True)
def gaussian_stats(X, weights, means, factor, const, shift, labels, resp, resp_offset,
                   source, diagonal, lo, hi, unit_rows, batch_units):
    """Sufficient statistics of rows ``lo:hi`` of X (flat vector, see module doc).

    Parameters
    ----------
    X : (n, D) float32 or float64, C-contiguous.
    weights : (n,) float64 sample weights, or an empty array for unit weights.
    means, factor, const : the model (only read when ``source == POSTERIOR``).
    shift : (K, D) float64 centre for the moments.
    labels : (n,) int64 hard assignments (``source == LABELS``), else empty.
    resp : (hi - lo, K) float64 responsibilities for rows lo:hi (``source == GIVEN``),
        row 0 being row ``resp_offset`` of X; else empty.
    source : POSTERIOR, LABELS or GIVEN.
    diagonal : accumulate only the diagonal of the second moments.
    lo, hi : the row range.
    unit_rows : rows per work unit (fixed by the caller from the data size only).
    batch_units : units whose partials are held at once (memory only; no effect on results).
    """
    n_components, n_features = shift.shape
    size = stat_size(n_components, n_features, diagonal)
    total = np.zeros(size)
    n_units = (hi - lo + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            start = lo + (first + j) * unit_rows
            stop = min(start + unit_rows, hi)
            _unit_stats(X, weights, start, stop, means, factor, const, shift, labels, resp,
                        resp_offset, source, diagonal, partial[j])
        for j in range(n_batch):
            total += partial[j]
    return total


@kernel(parallel=True)
def gaussian_rows(X, means, factor, const, mode, unit_rows, out_values, out_matrix, out_labels):
    """Per-row outputs (log-density, log-posterior, labels); see the ROW_* modes.

    Outputs not used by ``mode`` may be empty arrays.
    """
    n = X.shape[0]
    n_components = means.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for u in prange(n_units):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        logp = np.empty((hi - lo, n_components))
        weighted_log_prob_block(X, lo, hi, means, factor, const, logp)
        for i in range(lo, hi):
            row = logp[i - lo]
            if mode == ROW_LOGSUMEXP:
                out_values[i] = logsumexp_row(row)
            elif mode == ROW_LOG_RESP:
                norm = logsumexp_row(row)
                for k in range(n_components):
                    out_matrix[i, k] = row[k] - norm
            elif mode == ROW_WEIGHTED:
                for k in range(n_components):
                    out_matrix[i, k] = row[k]
            else:
                best = 0
                for k in range(1, n_components):
                    if row[k] > row[best]:
                        best = k
                out_labels[i] = best
                if mode == ROW_MAX:
                    out_values[i] = row[best]
