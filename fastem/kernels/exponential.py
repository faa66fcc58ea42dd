"""Kernels of the exponential component: independent columns, one rate per state and column.

For a row x and state k, log p(x | k) = sum_d (log rate_kd - rate_kd x_d). The
statistics of state k are its mass N_k = sum_i r_ik and the weighted column sums
S_kd = sum_i r_ik x_id; the M-step is rate_kd = N_k / S_kd.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .reduction import add_in_order


@kernel(parallel=True)
def exponential_log_likelihood(X, rates, log_rates, out):
    """out[i, k] = sum_d (log_rates[k, d] - rates[k, d] * X[i, d]) for every row."""
    n_rows, n_features = X.shape
    n_states = rates.shape[0]
    if (rates.shape[1] != n_features or log_rates.shape[0] != n_states
            or log_rates.shape[1] != n_features):
        raise ValueError("exponential_log_likelihood: rates must have shape (n_states, "
                         "n_features of X)")
    if out.shape[0] != n_rows or out.shape[1] != n_states:
        raise ValueError("exponential_log_likelihood: out must have shape (n_rows, n_states)")
    for i in prange(n_rows):
        for k in range(n_states):
            total = 0.0
            for d in range(n_features):
                total += log_rates[k, d] - rates[k, d] * X[i, d]
            out[i, k] = total


@kernel(parallel=True)
def exponential_accumulate(X, posteriors, unit_rows, mass, sums):
    """mass[k] += sum_i posteriors[i, k]; sums[k, d] += sum_i posteriors[i, k] X[i, d].

    Work units of ``unit_rows`` rows are summed in row order and added in unit order:
    calls over unit-aligned row ranges give bitwise the sums of one call.
    """
    n_rows, n_features = X.shape
    n_states = mass.shape[0]
    if posteriors.shape[0] != n_rows or posteriors.shape[1] != n_states:
        raise ValueError("exponential_accumulate: posteriors must have shape (n_rows, "
                         "n_states)")
    if sums.shape[0] != n_states or sums.shape[1] != n_features or unit_rows < 1:
        raise ValueError("exponential_accumulate: sums must have shape (n_states, n_features)")
    n_units = (n_rows + unit_rows - 1) // unit_rows
    size = n_states * (1 + n_features)
    partial = np.zeros((n_units, size))
    for u in prange(n_units):
        for i in range(u * unit_rows, min(n_rows, (u + 1) * unit_rows)):
            for k in range(n_states):
                r = posteriors[i, k]
                if r == 0.0:
                    continue
                partial[u, k] += r
                base = n_states + k * n_features
                for d in range(n_features):
                    partial[u, base + d] += r * X[i, d]
    # In unit order, each output from its own columns of the partials.
    add_in_order(partial[:, :n_states], n_units, mass)
    for k in range(n_states):
        base = n_states + k * n_features
        add_in_order(partial[:, base:base + n_features], n_units, sums[k])
