"""Squared Euclidean distances for k-means++ seeding.

Work units and in-order reduction as in :mod:`fastem.kernels.gaussian`, so the
seeding is the same for any thread count. Distances are computed from the
difference ``x - c`` (not ``|x|^2 - 2 x.c + |c|^2``, which cancels badly for
points far from the origin), with the Gaussian kernels' transposed units and
diagonal Mahalanobis loop (unit scales).
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .gaussian import _diagonal_mahalanobis, _transpose_rows


@kernel(parallel=True)
def lower_closest(X, weights, center, closest, unit_rows):
    """closest[i] = min(closest[i], ||X[i] - center||^2) in place.

    Returns the per-unit sums of ``weights * closest`` after the update
    (``weights`` may be empty: unit weights), from which k-means++ draws.
    """
    n, n_features = X.shape
    weighted = weights.shape[0] > 0
    ones = np.ones(n_features)
    n_units = (n + unit_rows - 1) // unit_rows
    unit_sums = np.zeros(n_units)
    for u in prange(n_units):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        xt = np.empty((n_features, hi - lo), X.dtype)
        dist = np.empty(hi - lo)
        _transpose_rows(X, lo, hi - lo, xt)
        _diagonal_mahalanobis(xt, center, ones, hi - lo, dist)
        total = 0.0
        for i in range(lo, hi):
            value = min(closest[i], dist[i - lo])
            closest[i] = value
            total += (weights[i] if weighted else 1.0) * value
        unit_sums[u] = total
    return unit_sums


@kernel(parallel=True)
def candidate_potentials(X, weights, candidates, closest, unit_rows):
    """For each candidate c: sum_i w_i min(closest[i], ||X[i] - c||^2).

    ``weights`` may be empty (unit weights).
    """
    n, n_features = X.shape
    n_candidates = candidates.shape[0]
    weighted = weights.shape[0] > 0
    ones = np.ones(n_features)
    n_units = (n + unit_rows - 1) // unit_rows
    partial = np.zeros((n_units, n_candidates))
    for u in prange(n_units):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        xt = np.empty((n_features, hi - lo), X.dtype)
        dist = np.empty(hi - lo)
        _transpose_rows(X, lo, hi - lo, xt)
        for t in range(n_candidates):
            _diagonal_mahalanobis(xt, candidates[t], ones, hi - lo, dist)
            total = 0.0
            for i in range(lo, hi):
                total += (weights[i] if weighted else 1.0) * min(closest[i], dist[i - lo])
            partial[u, t] = total
    potentials = np.zeros(n_candidates)
    for u in range(n_units):
        potentials += partial[u]
    return potentials
