"""The generic mixture E-step: a chunk's log-likelihood lattice into weighted posteriors.

A component without a fused mixture E-step writes its (rows, K) log-likelihoods of
a bounded chunk of rows; :func:`mixture_posteriors` turns them, in place, into the
weighted posteriors its accumulation reads, and adds the chunk's log-likelihood
and weight. Rows are taken in work units of ``unit_rows`` (fixed by the data size
only), each summed in row order and added in unit order, so chunks that start on
unit boundaries give bitwise the sums of one pass over all the rows, whatever the
number of threads.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .reduction import add_in_order


@kernel(parallel=True)
def mixture_posteriors(table, log_weights, weights, unit_rows, common):
    """Rows of ``table`` (log p(x_i | k)) become w_i p(k | x_i) in place; ``common`` (2,):
    ``[0] += sum_i w_i log p(x_i)``, ``[1] += sum_i w_i``.

    ``weights``: (rows,) row weights, or empty for unit weights. A zero weight drops the
    row (posterior 0); a row of density 0 under every state has posterior 0 and makes the
    log-likelihood -inf.
    """
    n_rows, n_components = table.shape
    if log_weights.shape[0] != n_components:
        raise ValueError("mixture_posteriors: log_weights must have one entry per column")
    if weights.shape[0] != 0 and weights.shape[0] != n_rows:
        raise ValueError("mixture_posteriors: weights must have one entry per row")
    if unit_rows < 1 or common.shape[0] != 2:
        raise ValueError("mixture_posteriors: unit_rows must be positive, common of length 2")
    weighted = weights.shape[0] > 0
    n_units = (n_rows + unit_rows - 1) // unit_rows
    partial = np.zeros((n_units, 2))
    for u in prange(n_units):
        for i in range(u * unit_rows, min(n_rows, (u + 1) * unit_rows)):
            w = weights[i] if weighted else 1.0
            peak = -np.inf
            for k in range(n_components):
                table[i, k] += log_weights[k]
                if table[i, k] > peak:
                    peak = table[i, k]
            if w == 0.0 or not peak > -np.inf:
                if w != 0.0:
                    partial[u, 1] += w
                    partial[u, 0] = -np.inf
                for k in range(n_components):
                    table[i, k] = 0.0
                continue
            total = 0.0
            for k in range(n_components):
                table[i, k] = np.exp(table[i, k] - peak)
                total += table[i, k]
            partial[u, 0] += w * (peak + np.log(total))
            partial[u, 1] += w
            scale = w / total
            for k in range(n_components):
                table[i, k] *= scale
    add_in_order(partial, n_units, common)


@kernel(exact=True)  # in this order: no reassociation of the sum
def weight_sum(weights, n_rows, unit_rows):
    """sum of the row weights (``n_rows`` ones when ``weights`` is empty), in work units
    summed in row order and added in unit order: the ``weight`` the Gaussian kernels
    write for the same rows."""
    if weights.shape[0] == 0:
        return float(n_rows)
    total = 0.0
    for lo in range(0, n_rows, unit_rows):
        partial = 0.0
        for i in range(lo, min(n_rows, lo + unit_rows)):
            if weights[i] != 0.0:
                partial += weights[i]
        total += partial
    return total
