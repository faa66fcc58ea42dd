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


@kernel
def _check_lloyd(X, weights, centers, origin, labels, bounds, unit_rows, batch_units):
    _check_rows(X, weights, labels, unit_rows)
    if (centers.shape[1] != X.shape[1] or origin.shape[0] != X.shape[1]
            or bounds.shape[0] != X.shape[0] or bounds.shape[1] != 2 or batch_units < 1):
        raise ValueError("Lloyd kernel: centres or bounds do not match X")


@kernel
def _add_move(X, i, w, k, old, origin, n_clusters, out):
    """Row i (weight w) joins cluster k, leaving ``old`` (-1: none), in the pass's
    changes ``out`` (layout of :func:`lloyd_update`)."""
    n_features = X.shape[1]
    sums_at = 2 + 2 * n_clusters
    out[0] += 1.0
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


@kernel(parallel=True)
def lloyd_assign(X, weights, centers, origin, labels, bounds, unit_rows, batch_units):
    """Lloyd's first pass: every row to its nearest centre (first minimum on ties), with
    its Hamerly bounds ``bounds[i] = (distance to its centre, distance to the next)``.

    Returns the totals in the layout of :func:`lloyd_update` (rows assigned, 0, member
    counts (K), weights (K), sums of w * (x - origin) (K*D)). ``weights`` may be empty
    (unit weights).
    """
    n = X.shape[0]
    n_clusters, n_features = centers.shape
    _check_lloyd(X, weights, centers, origin, labels, bounds, unit_rows, batch_units)
    weighted = weights.shape[0] > 0
    size = 2 + 2 * n_clusters + n_clusters * n_features
    total = np.zeros(size)
    n_units = (n + unit_rows - 1) // unit_rows
    for start_unit in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - start_unit)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            lo = (start_unit + j) * unit_rows
            for i in range(lo, min(lo + unit_rows, n)):
                k, bounds[i, 0], bounds[i, 1] = _nearest_two(X, i, centers)
                labels[i] = k
                _add_move(X, i, weights[i] if weighted else 1.0, k, -1, origin, n_clusters,
                          partial[j])
        add_in_order(partial, n_batch, total)
    return total


@kernel(parallel=True)
def lloyd_update(X, weights, centers, origin, labels, bounds, drift, half_gap, unit_rows,
                 batch_units):
    """A later Lloyd pass: reassign the rows whose Hamerly bounds do not prove their label
    unchanged; return the change of the per-cluster sums.

    State kept per row between passes: ``labels`` and ``bounds`` (n, 2): at least the
    distance to its centre, at most the distance to any other centre. ``drift[k]`` is how
    far centre k moved since the previous pass and ``half_gap[k]`` half the distance from
    centre k to its nearest other centre. A row whose shifted upper bound is below
    ``max(half_gap[label], lower bound)`` keeps its label without computing a distance
    (Hamerly 2010); otherwise the distance to its centre is recomputed and, if the test
    still fails, the distances to all centres. The labels are those of plain Lloyd
    (distances from differences, first minimum on ties).

    Returns ``[rows that changed label, 0, member-count changes (K), weight changes (K),
    changes of the sums of w * (x - origin) (K*D)]``. ``weights`` may be empty (unit
    weights).
    """
    n = X.shape[0]
    n_clusters, n_features = centers.shape
    _check_lloyd(X, weights, centers, origin, labels, bounds, unit_rows, batch_units)
    if drift.shape[0] != n_clusters or half_gap.shape[0] != n_clusters:
        raise ValueError("lloyd_update: drifts or gaps do not match the centres")
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
    for start_unit in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - start_unit)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            lo = (start_unit + j) * unit_rows
            for i in range(lo, min(lo + unit_rows, n)):
                old = labels[i]
                u = bounds[i, 0] + drift[old]
                low = bounds[i, 1] - (runner_up if old == top_index else top)
                bound = max(half_gap[old], low)
                if u * (1.0 + _BOUND_SLACK) > bound:
                    u = np.sqrt(_squared_distance(X, i, centers[old]))
                    if u * (1.0 + _BOUND_SLACK) > bound:
                        k, u, low = _nearest_two(X, i, centers)
                        labels[i] = k
                bounds[i, 0] = u
                bounds[i, 1] = low
                k = labels[i]
                if k != old:
                    _add_move(X, i, weights[i] if weighted else 1.0, k, old, origin,
                              n_clusters, partial[j])
        add_in_order(partial, n_batch, total)
    return total
