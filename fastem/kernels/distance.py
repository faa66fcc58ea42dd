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
from .gaussian import _add_rows_in_order, _diagonal_mahalanobis, _transpose_rows


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
    _add_rows_in_order(partial, n_units, potentials)
    return potentials


@kernel
def _round_up(n, multiple):
    return (n + multiple - 1) // multiple * multiple


@kernel
def _cross_products(xt, mat, n_rows, out):
    """out[j, i] = sum_a xt[a, i] * mat[a, j] (both zero padded to multiples of 4).

    Blocks of 4 features x 4 outputs per pass over the rows, as in the Gaussian
    Mahalanobis kernel, but over the full matrix.
    """
    padded_features, padded_outputs = mat.shape
    for j0 in range(0, padded_outputs, 4):
        for q in range(4):
            for i in range(n_rows):
                out[j0 + q, i] = 0.0
        for a0 in range(0, padded_features, 4):
            m00, m01, m02, m03 = mat[a0, j0], mat[a0, j0 + 1], mat[a0, j0 + 2], mat[a0, j0 + 3]
            m10, m11, m12, m13 = (mat[a0 + 1, j0], mat[a0 + 1, j0 + 1], mat[a0 + 1, j0 + 2],
                                  mat[a0 + 1, j0 + 3])
            m20, m21, m22, m23 = (mat[a0 + 2, j0], mat[a0 + 2, j0 + 1], mat[a0 + 2, j0 + 2],
                                  mat[a0 + 2, j0 + 3])
            m30, m31, m32, m33 = (mat[a0 + 3, j0], mat[a0 + 3, j0 + 1], mat[a0 + 3, j0 + 2],
                                  mat[a0 + 3, j0 + 3])
            for i in range(n_rows):
                c0 = xt[a0, i]
                c1 = xt[a0 + 1, i]
                c2 = xt[a0 + 2, i]
                c3 = xt[a0 + 3, i]
                out[j0, i] += m00 * c0 + m10 * c1 + m20 * c2 + m30 * c3
                out[j0 + 1, i] += m01 * c0 + m11 * c1 + m21 * c2 + m31 * c3
                out[j0 + 2, i] += m02 * c0 + m12 * c1 + m22 * c2 + m32 * c3
                out[j0 + 3, i] += m03 * c0 + m13 * c1 + m23 * c2 + m33 * c3


@kernel(parallel=True)
def assign_nearest(X, weights, centers, origin, labels, unit_rows, batch_units):
    """One Lloyd pass: nearest centre of every row, written to ``labels``, and per-cluster sums.

    Returns the flat vector ``[inertia, total weight, counts (K), sums (K*D)]``
    with the sums of ``w * (x - origin)``. Distances are
    ``|x - o|^2 - 2 (x - o).(c - o) + |c - o|^2`` with ``o`` the data mean, as
    scikit-learn computes them (on data it centres); the matrix products run
    in 4 x 4 register blocks. ``weights`` may be empty (unit weights).
    """
    n, n_features = X.shape
    n_clusters = centers.shape[0]
    weighted = weights.shape[0] > 0
    padded_features = _round_up(n_features, 4)
    padded_clusters = _round_up(n_clusters, 4)
    mat = np.zeros((padded_features, padded_clusters))
    half_norms = np.full(padded_clusters, np.inf)  # padding clusters are never nearest
    for k in range(n_clusters):
        half_norms[k] = 0.0
        for a in range(n_features):
            v = centers[k, a] - origin[a]
            mat[a, k] = v
            half_norms[k] += 0.5 * v * v
    size = 2 + n_clusters + n_clusters * n_features
    total = np.zeros(size)
    n_units = (n + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            lo = (first + j) * unit_rows
            hi = min(lo + unit_rows, n)
            n_rows = hi - lo
            out = partial[j]
            xt = np.empty((padded_features, n_rows))
            for a in range(n_features, padded_features):
                for i in range(n_rows):
                    xt[a, i] = 0.0
            for i in range(n_rows):
                for a in range(n_features):
                    xt[a, i] = np.float64(X[lo + i, a]) - origin[a]
            squared = np.zeros(n_rows)
            for a in range(n_features):
                for i in range(n_rows):
                    squared[i] += xt[a, i] * xt[a, i]
            products = np.empty((padded_clusters, n_rows))
            _cross_products(xt, mat, n_rows, products)
            # score_k = |c - o|^2 / 2 - (x - o).(c - o): the distance is |x - o|^2 + 2 score.
            # Branch-free arg-min into local arrays: the winner is data dependent, and a
            # mispredicted branch per row and cluster cost more than the products.
            best = np.empty(n_rows)
            nearest = np.zeros(n_rows, dtype=np.int64)
            for i in range(n_rows):
                best[i] = half_norms[0] - products[0, i]
            for k in range(1, n_clusters):
                h = half_norms[k]
                for i in range(n_rows):
                    score = h - products[k, i]
                    closer = score < best[i]
                    best[i] = score if closer else best[i]
                    nearest[i] = k if closer else nearest[i]
            counts = np.zeros(n_clusters)
            sums = np.zeros((n_clusters, n_features))
            inertia = 0.0
            mass = 0.0
            for i in range(n_rows):
                k = nearest[i]
                labels[lo + i] = k
                w = weights[lo + i] if weighted else 1.0
                if w == 0.0:
                    continue
                inertia += w * max(squared[i] + 2.0 * best[i], 0.0)
                mass += w
                counts[k] += w
                for a in range(n_features):
                    sums[k, a] += w * (np.float64(X[lo + i, a]) - origin[a])
            out[0] = inertia
            out[1] = mass
            for k in range(n_clusters):
                out[2 + k] = counts[k]
                for a in range(n_features):
                    out[2 + n_clusters + k * n_features + a] = sums[k, a]
        _add_rows_in_order(partial, n_batch, total)
    return total
