"""k-means++ seeding and Lloyd's k-means.

The seeding and the Lloyd passes run on :mod:`fastem.kernels.distance`
(k-means++ potentials; one pass per Lloyd iteration with Hamerly's bounds).
The rarely needed distance of every row to its nearest centre (empty-cluster
relocation) and the column moments reuse the Gaussian kernels with unit
precision factors.

Sampling uses inverse-CDF draws on cumulative weights, so a row with weight w
is drawn exactly as w repeated rows would be: weighted and repeated data seed
the same centres.
"""

from __future__ import annotations

import numpy as np

from ..engine import UNIT_ROWS, batch_units
from ..kernels import distance
from ..kernels import gaussian as gk

_EMPTY = np.empty(0)  # no sample weights: unit weights


def _unit_factor(n_features):
    return np.ones((1, 1, n_features))


def nearest_center(X, centers):
    """Labels (int64) and squared distance of every row to its nearest centre."""
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n)
    gk.gaussian_best(X, np.ascontiguousarray(centers, dtype=np.float64),
                     _unit_factor(X.shape[1]), np.zeros(centers.shape[0]), UNIT_ROWS, best,
                     labels)
    best *= -2.0
    return labels, best


def weighted_moments(X, weights):
    """Weighted mean and variance of each column, computed about the first row."""
    n_features = X.shape[1]
    shift = np.ascontiguousarray(X[:1], dtype=np.float64)
    size = gk.stat_size(1, n_features, True)
    stats = gk.gaussian_posterior_stats(
        X, _EMPTY if weights is None else weights, shift, _unit_factor(n_features),
        np.zeros(1), shift, True, UNIT_ROWS, batch_units(size), np.zeros(size))
    total = stats[2]
    first = stats[3:3 + n_features] / total
    second = stats[3 + n_features:3 + 2 * n_features] / total
    return shift[0] + first, np.maximum(second - first * first, 0.0)


def data_covariance(X):
    """The (D, D) sample covariance of X's rows (as ``np.cov(X.T)``: ddof 1), from moments
    about the first row in one kernel pass: no centred copy of X."""
    n, n_features = X.shape
    shift = np.ascontiguousarray(X[:1], dtype=np.float64)
    size = gk.stat_size(1, n_features, False)
    stats = gk.gaussian_posterior_stats(
        X, _EMPTY, shift, _unit_factor(n_features), np.zeros(1), shift, False, UNIT_ROWS,
        batch_units(size), np.zeros(size))
    first = stats[3:3 + n_features]
    upper = np.triu(stats[3 + n_features:].reshape(n_features, n_features))
    second = upper + np.triu(upper, 1).T
    return (second - np.outer(first, first) / n) / max(n - 1, 1)


def _draw(cumulative, u):
    return np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1)


def kmeans_plusplus(X, n_clusters, weights, random_state, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with local trials).

    Returns the row indices of the chosen centres. Draws are proportional to
    ``weight * closest squared distance``, located by cumulative sums per work
    unit and then within the unit (no N-length cumulative array).
    """
    n = X.shape[0]
    w_arg = _EMPTY if weights is None else weights
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.int64)
    w = np.ones(n) if weights is None else weights
    indices[0] = _draw(np.cumsum(w), random_state.uniform() * w.sum())
    closest = np.full(n, np.inf)
    unit_sums = distance.lower_closest(X, w_arg, _center(X, indices[0]), closest, UNIT_ROWS)
    for c in range(1, n_clusters):
        unit_cumulative = np.cumsum(unit_sums)
        targets = random_state.uniform(size=n_local_trials) * unit_cumulative[-1]
        candidates = np.array([_draw_row(w, closest, unit_cumulative, t) for t in targets])
        potentials = distance.candidate_potentials(
            X, w_arg, np.ascontiguousarray(X[candidates], dtype=np.float64), closest, UNIT_ROWS)
        indices[c] = candidates[int(np.argmin(potentials))]
        unit_sums = distance.lower_closest(X, w_arg, _center(X, indices[c]), closest, UNIT_ROWS)
    return indices


def _draw_row(w, closest, unit_cumulative, target):
    """The row where the cumulative sum of ``w * closest`` first exceeds ``target``."""
    unit = int(_draw(unit_cumulative, target))
    lo = unit * UNIT_ROWS
    hi = min(lo + UNIT_ROWS, len(closest))
    before = unit_cumulative[unit - 1] if unit > 0 else 0.0
    inside = before + np.cumsum(w[lo:hi] * closest[lo:hi])
    return lo + int(_draw(inside, target))


def _center(X, index):
    return np.ascontiguousarray(X[index], dtype=np.float64)


def lloyd(X, weights, centers, max_iter=300, tol=1e-4):
    """Lloyd's algorithm from ``centers``; returns (centers, labels).

    Stops when labels no longer change or the total squared centre shift is
    at most ``tol`` times the mean feature variance (scikit-learn's rule). An
    empty cluster is moved to the row farthest from its centre. Each iteration
    is one pass that assigns rows with Hamerly's bounds and updates the
    per-cluster sums by the rows that changed cluster.
    """
    origin, variance = weighted_moments(X, weights)
    threshold = tol * float(np.mean(variance))
    centers = np.array(centers, dtype=np.float64)
    n_clusters, n_features = centers.shape
    n = X.shape[0]
    w_arg = _EMPTY if weights is None else weights
    batch = batch_units(2 + n_clusters * (2 + n_features))
    labels = np.empty(n, dtype=np.int64)
    bounds = np.empty((n, 2))  # Hamerly's bounds per row (upper, lower)
    members = np.zeros(n_clusters)
    mass = np.zeros(n_clusters)
    sums = np.zeros((n_clusters, n_features))
    drift = np.zeros(n_clusters)
    for iteration in range(max_iter):
        changed = _pass(X, w_arg, centers, origin, labels, bounds, drift, iteration == 0,
                        batch, members, mass, sums)
        if iteration > 0 and changed == 0:
            return centers, labels  # the centres are already the means of these labels
        new_centers = centers.copy()
        filled = mass > 0  # clusters whose rows all have weight zero count as empty
        new_centers[filled] = origin + sums[filled] / mass[filled, None]
        if not filled.all():
            _, distance_to_center = nearest_center(X, centers)
            if weights is not None:
                distance_to_center = np.where(weights > 0, distance_to_center, -1.0)
            far = np.argsort(-distance_to_center, kind="stable")[: int((~filled).sum())]
            new_centers[~filled] = X[far]
        shift = float(((new_centers - centers) ** 2).sum())
        drift = np.sqrt(((new_centers - centers) ** 2).sum(axis=1))
        centers = new_centers
        if shift <= threshold:
            break
    _pass(X, w_arg, centers, origin, labels, bounds, drift, False, batch, members, mass,
          sums)
    return centers, labels


def _pass(X, w_arg, centers, origin, labels, bounds, drift, first, batch, members, mass,
          sums):
    """One Lloyd assignment; updates the cluster totals in place, returns rows that moved."""
    n_clusters, n_features = centers.shape
    if first:
        flat = distance.lloyd_assign(X, w_arg, centers, origin, labels, bounds, UNIT_ROWS,
                                     batch)
    else:
        gaps = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
        np.fill_diagonal(gaps, np.inf)
        flat = distance.lloyd_update(X, w_arg, centers, origin, labels, bounds, drift,
                                     0.5 * gaps.min(axis=1), UNIT_ROWS, batch)
    k = n_clusters
    members += flat[2:2 + k]
    mass += flat[2 + k:2 + 2 * k]
    sums += flat[2 + 2 * k:].reshape(k, n_features)
    # A cluster left without members holds exactly nothing (no round-off residue).
    empty = members <= 0
    mass[empty] = 0.0
    sums[empty] = 0.0
    return int(flat[0])


SAMPLE_ROWS = 1 << 17
"""Rows k-means runs on when it only seeds another model (HMM means)."""


def sample_rows(X, random_state, max_rows=SAMPLE_ROWS):
    """X itself when it has at most ``max_rows`` rows, else that many distinct rows drawn
    at random (in their original order): bounded memory and time for an initialisation."""
    if X.shape[0] <= max_rows:
        return X
    rows = np.sort(random_state.choice(X.shape[0], size=max_rows, replace=False))
    return np.ascontiguousarray(X[rows])


def best_of_restarts(X, n_clusters, random_state, n_init=10, weights=None):
    """k-means from ``n_init`` k-means++ seedings; the run with the lowest inertia wins
    (hmmlearn initialises HMM means with scikit-learn's KMeans(n_init=10))."""
    best = None
    for _ in range(n_init):
        seeds = kmeans_plusplus(X, n_clusters, weights, random_state)
        centers, labels = lloyd(X, weights, X[seeds])
        distances = nearest_center(X, centers)[1]
        inertia = float(distances.sum() if weights is None else distances @ weights)
        if best is None or inertia < best[0]:
            best = (inertia, centers, labels)
    return best[1], best[2]
