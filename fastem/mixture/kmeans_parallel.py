"""k-means|| seeding and Lloyd's k-means over a backend's blocks (data not in one array).

For data too large to gather on one machine (a Dask cluster), initialisation
runs where the data are, in passes over the partitions, like EM itself:

* k-means|| (Bahmani, Moseley, Vattani, Kumar & Vassilvitskii 2012): a first
  centre drawn with probability proportional to its weight, then a few rounds
  that each add every row independently with probability
  ``oversampling * K * w * d^2 / cost`` (``d`` its distance to the nearest
  centre so far, ``cost`` the total of ``w * d^2``). The candidates, weighted by
  the rows nearest to them, are reduced to K centres on the client by weighted
  k-means++ and Lloyd (:mod:`fastem.mixture.kmeans`).
* Lloyd's iterations, each one pass whose statistics are, per centre, the mass,
  sum and squared deviations of its rows: an engine model
  (:class:`NearestCentre`), so every backend reduces them with its own
  deterministic rule.

Sampling decisions use random numbers keyed by the global row index
(:mod:`fastem.engine.row_random`): the candidates do not depend on how the rows
are partitioned or on which worker reads them.
"""

from __future__ import annotations

import numpy as np

from ..engine import UNIT_ROWS, ModelBase, batch_units
from ..engine.row_random import draw_seed, row_uniforms
from ..kernels import gaussian as gk
from . import kmeans
from .component import gaussian_layout

_EMPTY = np.empty(0)

ROUNDS = 5
"""Sampling rounds of k-means|| (Bahmani et al. find 5 rounds of 2K enough)."""

OVERSAMPLING = 2.0
"""Rows sampled per round, in multiples of K."""


class NearestCentre(ModelBase):
    """One Lloyd pass as an engine model: every row goes to its nearest centre, and the
    statistics are, per centre, its mass, the sum and the per-feature squared deviations
    of its rows about that centre (``mass``, ``first``, ``second``). The parameters are
    the ``(K, D)`` centres."""

    def __init__(self, n_centres: int, n_features: int):
        self.layout = gaussian_layout(n_centres, n_features, diagonal=True)
        self._batch = batch_units(self.layout.size)

    def shift(self, centres):
        return centres

    def block_stats(self, centres, block, out):
        labels, _ = kmeans.nearest_center(block.X, centres)
        weights = _EMPTY if block.weights is None else block.weights
        gk.gaussian_label_stats(block.X, weights, labels, centres, True, UNIT_ROWS,
                                self._batch, out.flat)


def centre_stats(backend, centres):
    """One pass: :class:`NearestCentre` statistics of ``centres`` over the backend."""
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    return backend.stats(NearestCentre(*centres.shape), centres)


def inertia(stats) -> float:
    """Total weighted squared distance of the rows to their nearest centre."""
    return float(stats["second"].sum())


class Candidates:
    """The outcome of k-means||: candidate centres, the weight of the rows nearest to
    each, the data's per-feature variance and total weight."""

    def __init__(self, rows, weights, variance, total_weight):
        self.rows = rows
        self.weights = weights
        self.variance = variance
        self.total_weight = total_weight

    def seeds(self, n_clusters, random_state):
        """K of the candidates by weighted k-means++ (rows of the data)."""
        rows, weights = self._at_least(n_clusters)
        return rows[kmeans.kmeans_plusplus(rows, n_clusters, weights, random_state)]

    def centres(self, n_clusters, random_state):
        """K centres: weighted k-means++ and Lloyd over the candidates."""
        rows, weights = self._at_least(n_clusters)
        seeds = kmeans.kmeans_plusplus(rows, n_clusters, weights, random_state)
        centres, _ = kmeans.lloyd(rows, weights, rows[seeds])
        return centres

    def _at_least(self, n_clusters):
        # Fewer candidates than clusters only when the data hold fewer distinct rows
        # than that: repeat them (the repeats take no rows and stay where they are).
        rows, weights = self.rows, self.weights
        if len(rows) < n_clusters:
            repeat = np.arange(n_clusters) % len(rows)
            rows, weights = rows[repeat], np.where(np.arange(n_clusters) < len(weights),
                                                   weights[repeat], 0.0)
        if not (weights > 0).any():
            weights = np.ones(len(rows))
        return rows, weights


def kmeans_parallel(backend, n_clusters, random_state, rounds=ROUNDS,
                    oversampling=OVERSAMPLING) -> Candidates:
    """k-means|| over the backend's blocks: ``1 + 2 * rounds`` passes at most."""
    centres, _ = random_rows(backend, 1, random_state)
    stats = centre_stats(backend, centres)
    total_weight = float(stats.weight)
    mean_offset = stats["first"][0] / total_weight
    variance = np.maximum(stats["second"][0] / total_weight - mean_offset ** 2, 0.0)
    for _ in range(rounds):
        cost = inertia(stats)
        if not cost > 0:
            break  # every row sits on a centre already
        payload = (draw_seed(random_state), centres, oversampling * n_clusters / cost)
        sampled = [rows for rows in backend.map_blocks(_oversample, payload) if len(rows)]
        if not sampled:
            continue
        centres = np.concatenate([centres, *sampled])
        stats = centre_stats(backend, centres)
    return Candidates(centres, stats["mass"].copy(), variance, total_weight)


def lloyd_passes(backend, centres, variance, max_iter=300, tol=1e-4):
    """Lloyd's iterations over the backend from ``centres``, one pass each.

    Stops when the total squared centre shift is at most ``tol`` times the mean feature
    variance (scikit-learn's rule, as :func:`fastem.mixture.kmeans.lloyd`). A centre
    left without rows stays where it is (Spark's rule: relocating it would need the
    farthest row, another pass).
    """
    threshold = tol * float(np.mean(variance))
    centres = np.array(centres, dtype=np.float64)
    for _ in range(max_iter):
        stats = centre_stats(backend, centres)
        mass = stats["mass"]
        filled = mass > 0
        moved = centres.copy()
        moved[filled] += stats["first"][filled] / mass[filled, None]
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= threshold:
            break
    return centres


def _row_weights(block):
    return np.ones(block.n_rows) if block.weights is None else block.weights


def _oversample(payload, block, offset):
    """Worker side: the rows k-means|| adds in one round (each kept independently with
    probability ``scale * w * d^2``)."""
    seed, centres, scale = payload
    _, distance = kmeans.nearest_center(block.X, centres)
    keep = row_uniforms(seed, offset, block.n_rows) < scale * _row_weights(block) * distance
    return np.array(block.X[keep], dtype=np.float64)


def random_rows(backend, n_rows, random_state):
    """``n_rows`` distinct rows drawn with probability proportional to their weight (without
    replacement: the smallest exponential-race keys), and the total weight. ValueError
    when fewer rows have a positive weight."""
    seed = draw_seed(random_state)
    found = backend.map_blocks(_lightest_rows, (seed, n_rows))
    keys = np.concatenate([f[0] for f in found])
    rows = np.concatenate([f[1] for f in found])
    order = np.argsort(keys, kind="stable")[:n_rows]
    if len(order) < n_rows:
        raise ValueError(f"fewer than {n_rows} rows have a positive weight")
    return rows[order], float(sum(f[2] for f in found))


def _lightest_rows(payload, block, offset):
    """Worker side: the ``count`` rows with the smallest keys ``-log(u) / w`` (an
    exponential race: the smallest keys over all blocks are a draw without replacement
    in proportion to the weights), their keys, and the block's total weight."""
    seed, count = payload
    weights = _row_weights(block)
    with np.errstate(divide="ignore"):
        keys = -np.log(row_uniforms(seed, offset, block.n_rows)) / weights
    finite = np.flatnonzero(np.isfinite(keys))
    chosen = finite[np.argsort(keys[finite], kind="stable")[:count]]
    return keys[chosen], np.array(block.X[chosen], dtype=np.float64), float(weights.sum())
