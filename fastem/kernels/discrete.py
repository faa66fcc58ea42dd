"""Kernels of the discrete components: categorical symbols and counts
(:mod:`fastem.components.categorical`, :mod:`fastem.components.counts`)."""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel, prange


@kernel
def _check_symbols(symbols, n_symbols, n_rows):
    if n_rows < symbols.shape[0]:
        raise ValueError("categorical kernel: the output is shorter than the symbols")
    for t in range(symbols.shape[0]):
        if symbols[t] < 0 or symbols[t] >= n_symbols:
            raise ValueError("categorical kernel: a symbol is outside 0 .. n_features - 1")


@kernel(parallel=True)
def symbol_log_likelihood(symbols, log_emission, out):
    """out[t, k] = log_emission[k, symbols[t]]."""
    _check_symbols(symbols, log_emission.shape[1], out.shape[0])
    if out.shape[1] != log_emission.shape[0]:
        raise ValueError("categorical kernel: the output needs one column per state")
    for t in prange(symbols.shape[0]):
        for k in range(log_emission.shape[0]):
            out[t, k] = log_emission[k, symbols[t]]


@kernel
def symbol_counts(symbols, posteriors, n_symbols):
    """counts[k, s] = sum of posteriors[t, k] over the rows t holding symbol s."""
    _check_symbols(symbols, n_symbols, posteriors.shape[0])
    counts = np.zeros((posteriors.shape[1], n_symbols))
    for t in range(symbols.shape[0]):
        s = symbols[t]
        for k in range(posteriors.shape[1]):
            counts[k, s] += posteriors[t, k]
    return counts


@kernel(parallel=True)
def row_log_factorials(X, out):
    """out[t] = sum_d log(X[t, d]!)."""
    for t in prange(X.shape[0]):
        total = 0.0
        for d in range(X.shape[1]):
            total += math.lgamma(X[t, d] + 1.0)
        out[t] = total
