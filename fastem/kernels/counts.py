"""Per-row terms of the count emissions (PoissonHMM, MultinomialHMM)."""

from __future__ import annotations

import math

from .._jit import kernel, prange


@kernel(parallel=True)
def row_log_factorials(X, out):
    """out[t] = sum_d log(X[t, d]!) for (n, D) float64 counts."""
    for t in prange(X.shape[0]):
        total = 0.0
        for d in range(X.shape[1]):
            total += math.lgamma(X[t, d] + 1.0)
        out[t] = total
