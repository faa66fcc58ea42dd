"""Squared Euclidean distances for k-means++ seeding.

Work units and in-order reduction as in :mod:`fastem.kernels.gaussian`, so the
seeding is the same for any thread count. Distances are computed from the
difference ``x - c`` (not ``|x|^2 - 2 x.c + |c|^2``, which cancels badly for
points far from the origin). Lloyd's pass keeps Hamerly's distance bounds per
row, so that after the first iterations most rows need no distance at all.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .reduction import add_in_order


@kernel
def _squared_distance(X, i, center):
    total = 0.0
    for a in range(X.shape[1]):
        d = np.float64(X[i, a]) - center[a]
        total += d * d
    return total


@kernel
def _check_rows(X, weights, per_row, unit_rows):
    """O(1) shape checks shared by the distance kernels."""
    n = X.shape[0]
    if per_row.shape[0] != n or (weights.shape[0] != 0 and weights.shape[0] != n):
        raise ValueError("distance kernel: per-row arrays must have one entry per row of X")
    if unit_rows < 1:
        raise ValueError("distance kernel: unit_rows must be positive")


@kernel(parallel=True)
def lower_closest(X, weights, center, closest, unit_rows):
    """closest[i] = min(closest[i], ||X[i] - center||^2) in place.

    Returns the per-unit sums of ``weights * closest`` after the update
    (``weights`` may be empty: unit weights), from which k-means++ draws.
    Row by row: for one or a few centres, dot products along the (contiguous)
    features beat transposing the unit.
    """
    n = X.shape[0]
    _check_rows(X, weights, closest, unit_rows)
    if center.shape[0] != X.shape[1]:
        raise ValueError("lower_closest: the centre must have the features of X")
    weighted = weights.shape[0] > 0
    n_units = (n + unit_rows - 1) // unit_rows
    unit_sums = np.zeros(n_units)
    for u in prange(n_units):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        total = 0.0
        for i in range(lo, hi):
            value = min(closest[i], _squared_distance(X, i, center))
            closest[i] = value
            total += (weights[i] if weighted else 1.0) * value
        unit_sums[u] = total
    return unit_sums


@kernel(parallel=True)
def candidate_potentials(X, weights, candidates, closest, unit_rows):
    """For each candidate c: sum_i w_i min(closest[i], ||X[i] - c||^2).

    ``weights`` may be empty (unit weights).
    """
    n = X.shape[0]
    _check_rows(X, weights, closest, unit_rows)
    if candidates.shape[1] != X.shape[1]:
        raise ValueError("candidate_potentials: candidates must have the features of X")
    n_candidates = candidates.shape[0]
    weighted = weights.shape[0] > 0
    n_units = (n + unit_rows - 1) // unit_rows
    partial = np.zeros((n_units, n_candidates))
    for u in prange(n_units):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        for i in range(lo, hi):
            w = weights[i] if weighted else 1.0
            for t in range(n_candidates):
                partial[u, t] += w * min(closest[i], _squared_distance(X, i, candidates[t]))
    potentials = np.zeros(n_candidates)
    add_in_order(partial, n_units, potentials)
    return potentials


@kernel
def _nearest_two(X, i, centers):
    """(index, distance) of the nearest centre to row i, and the second-nearest distance."""
    best = 0
    first = np.inf
    second = np.inf
    for k in range(centers.shape[0]):
        d = np.sqrt(_squared_distance(X, i, centers[k]))
        if d < first:
            second = first
            first = d
            best = k
        elif d < second:
            second = d
    return best, first, second


# Bounds are compared with this relative slack, so that rounding in the distances and
# in the bound updates can only cause an unnecessary recomputation, never a wrong label.
_BOUND_SLACK = 1e-10


@kernel(parallel=True)
def lloyd_pass(X, weights, centers, origin, labels, upper, lower, drift, half_gap, first,
               unit_rows, batch_units):
    """Assign every row to its nearest centre (Lloyd), skipping rows that Hamerly's bounds
    prove unchanged; return the change of the per-cluster sums.

    State kept per row between passes: ``labels``, ``upper`` (at least the distance to
    its centre) and ``lower`` (at most the distance to any other centre). ``drift[k]``
    is how far centre k moved since the previous pass and ``half_gap[k]`` half the
    distance from centre k to its nearest other centre. A row whose shifted upper bound
    is below ``max(half_gap[label], lower bound)`` keeps its label without computing a
    distance (Hamerly 2010); otherwise the distance to its centre is recomputed and, if
    the test still fails, the distances to all centres. The labels are those of plain
    Lloyd (distances from differences, first minimum on ties). With ``first`` the state
    is ignored and every row is assigned.

    Returns ``[rows that changed label, 0, member-count changes (K), weight changes (K),
    changes of the sums of w * (x - origin) (K*D)]``; with ``first``, the totals.
    ``weights`` may be empty (unit weights).
    """
    n, n_features = X.shape
    n_clusters = centers.shape[0]
    _check_rows(X, weights, labels, unit_rows)
    if (centers.shape[1] != n_features or origin.shape[0] != n_features
            or upper.shape[0] != n or lower.shape[0] != n or drift.shape[0] != n_clusters
            or half_gap.shape[0] != n_clusters or batch_units < 1):
        raise ValueError("lloyd_pass: centres, bounds or drifts do not match X")
    weighted = weights.shape[0] > 0
    # Largest drift of any other centre: the largest, or the runner-up for its owner.
    top, runner_up, top_index = 0.0, 0.0, -1
    for k in range(n_clusters):
        if drift[k] > top:
            runner_up = top
            top = drift[k]
            top_index = k
        elif drift[k] > runner_up:
            runner_up = drift[k]
    size = 2 + 2 * n_clusters + n_clusters * n_features
    total = np.zeros(size)
    n_units = (n + unit_rows - 1) // unit_rows
    sums_at = 2 + 2 * n_clusters
    for start_unit in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - start_unit)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            lo = (start_unit + j) * unit_rows
            hi = min(lo + unit_rows, n)
            out = partial[j]
            for i in range(lo, hi):
                if first:
                    k, upper[i], lower[i] = _nearest_two(X, i, centers)
                    labels[i] = k
                    old = -1
                else:
                    old = labels[i]
                    u = upper[i] + drift[old]
                    low = lower[i] - (runner_up if old == top_index else top)
                    bound = max(half_gap[old], low)
                    if u * (1.0 + _BOUND_SLACK) > bound:
                        u = np.sqrt(_squared_distance(X, i, centers[old]))
                        if u * (1.0 + _BOUND_SLACK) > bound:
                            k, u, low = _nearest_two(X, i, centers)
                            labels[i] = k
                    upper[i] = u
                    lower[i] = low
                    k = labels[i]
                    if k == old:
                        continue
                out[0] += 1.0
                w = weights[i] if weighted else 1.0
                out[2 + k] += 1.0
                out[2 + n_clusters + k] += w
                base = sums_at + k * n_features
                for a in range(n_features):
                    out[base + a] += w * (np.float64(X[i, a]) - origin[a])
                if old >= 0:
                    out[2 + old] -= 1.0
                    out[2 + n_clusters + old] -= w
                    base = sums_at + old * n_features
                    for a in range(n_features):
                        out[base + a] -= w * (np.float64(X[i, a]) - origin[a])
        add_in_order(partial, n_batch, total)
    return total
