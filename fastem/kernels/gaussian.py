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
    diagonal = factor.shape[1] == 1
    shared = factor.shape[0] == 1
    diff = np.empty(n_features)
    y = np.empty(n_features)
    for k in range(n_components):
        f = 0 if shared else k
        for i in range(lo, hi):
            for a in range(n_features):
                diff[a] = X[i, a] - means[k, a]
            maha = 0.0
            if diagonal:
                for a in range(n_features):
                    t = diff[a] * factor[f, 0, a]
                    maha += t * t
            else:
                # y = diff @ U with U upper triangular, row by row: row a only touches
                # columns j >= a and is contiguous, so the inner loop vectorises.
                y[:] = 0.0
                for a in range(n_features):
                    da = diff[a]
                    for j in range(a, n_features):
                        y[j] += da * factor[f, a, j]
                for j in range(n_features):
                    maha += y[j] * y[j]
            out[i - lo, k] = const[k] - 0.5 * maha


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
    if source == POSTERIOR:
        logp = np.empty((hi - lo, n_components))
        weighted_log_prob_block(X, lo, hi, means, factor, const, logp)
    for i in range(lo, hi):
        w = weights[i] if weighted else 1.0
        if w == 0.0:
            continue  # a zero weight drops the row, whatever its values
        out[1] += w
        if source == POSTERIOR:
            row = logp[i - lo]
            norm = logsumexp_row(row)
            out[0] += w * norm
            for k in range(n_components):
                r = w * np.exp(row[k] - norm)
                if r != 0.0:  # exact: an underflowed responsibility adds nothing
                    _accumulate_row(X, i, k, r, shift, out, diagonal, diff)
        elif source == LABELS:
            k = labels[i]
            if k >= 0:
                _accumulate_row(X, i, k, w, shift, out, diagonal, diff)
        else:
            for k in range(n_components):
                r = resp[i - resp_offset, k]
                if r != 0.0:
                    _accumulate_row(X, i, k, w * r, shift, out, diagonal, diff)


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
