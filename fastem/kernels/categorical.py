"""Categorical emissions (CategoricalHMM): the lattice and the posterior counts."""

from __future__ import annotations

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
    """out[t, k] = log_emission[k, symbols[t]] (symbols (n,) int64)."""
    _check_symbols(symbols, log_emission.shape[1], out.shape[0])
    if out.shape[1] != log_emission.shape[0]:
        raise ValueError("categorical kernel: the output needs one column per state")
    for t in prange(symbols.shape[0]):
        for k in range(log_emission.shape[0]):
            out[t, k] = log_emission[k, symbols[t]]


@kernel
def symbol_counts(symbols, posteriors, n_symbols):
    """(K, n_symbols) sum over t of posteriors[t, k] at symbol symbols[t], in row order."""
    _check_symbols(symbols, n_symbols, posteriors.shape[0])
    counts = np.zeros((posteriors.shape[1], n_symbols))
    for t in range(symbols.shape[0]):
        s = symbols[t]
        for k in range(posteriors.shape[1]):
            counts[k, s] += posteriors[t, k]
    return counts
