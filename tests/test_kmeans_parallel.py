"""k-means|| and Lloyd as passes over a backend (issue 14: initialisation at scale).

The data are cut into blocks of a LocalBackend, which reduces like a cluster; the Dask
test runs the same code on a LocalCluster."""

import numpy as np
import pytest

import fastem
from fastem.engine import Block, LocalBackend
from fastem.engine.row_random import draw_seed, row_uniforms
from fastem.mixture import kmeans
from fastem.mixture import kmeans_parallel as kp
from fastem.mixture.covariance import SPECS
from fastem.mixture.model import GaussianMixtureModel


def _blobs(n=60_000, k=5, d=3, seed=0, scale=6.0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=scale, size=(k, d))
    return centres[rng.randint(0, k, size=n)] + rng.normal(size=(n, d)), centres


def _backend(X, cuts, weights=None):
    edges = [0, *cuts, len(X)]
    return LocalBackend([Block(X[a:b], None if weights is None else weights[a:b])
                         for a, b in zip(edges[:-1], edges[1:], strict=True)])


def _sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


def test_row_uniforms_depend_on_the_global_row_only():
    whole = row_uniforms(12345, 0, 10_000)
    pieces = np.concatenate([row_uniforms(12345, lo, hi - lo)
                             for lo, hi in [(0, 3), (3, 4_000), (4_000, 10_000)]])
    np.testing.assert_array_equal(pieces, whole)
    assert 0.0 < whole.min() and whole.max() < 1.0
    assert abs(whole.mean() - 0.5) < 0.01 and abs(whole.var() - 1 / 12) < 0.003
    assert np.mean(whole == row_uniforms(12347, 0, 10_000)) < 1e-3
    matrix = row_uniforms(7, 100, 50, per_row=4)
    np.testing.assert_array_equal(matrix.ravel(), row_uniforms(7, 400, 200))
    assert draw_seed(np.random.RandomState(0)) == draw_seed(np.random.RandomState(0))


def test_first_centre_is_drawn_in_proportion_to_the_weights():
    X = np.arange(4.0)[:, None]
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    counts = np.zeros(4)
    for seed in range(4_000):
        backend = LocalBackend([Block(X[lo:lo + 2], weights[lo:lo + 2]) for lo in (0, 2)])
        rows, _ = kp.random_rows(backend, 1, np.random.RandomState(seed))
        counts[int(rows[0, 0])] += 1
    # Binomial standard deviations are at most 31 draws out of 4,000.
    np.testing.assert_allclose(counts / 4_000, weights / weights.sum(), atol=0.025)


def test_candidates_do_not_depend_on_the_partitioning():
    X, _ = _blobs()
    found = [kp.kmeans_parallel(_backend(X, cuts), 5, np.random.RandomState(3))
             for cuts in ([], [17_000, 17_001, 40_000])]
    np.testing.assert_array_equal(found[0].rows, found[1].rows)
    np.testing.assert_allclose(found[0].weights, found[1].weights, rtol=0, atol=0)
    candidates = found[0]
    assert 5 < len(candidates.rows) <= 1 + kp.ROUNDS * 4 * 5  # about 2K per round
    assert candidates.weights.sum() == len(X) == candidates.total_weight
    np.testing.assert_allclose(candidates.variance, X.var(axis=0), rtol=1e-9)
    # Every candidate is a row of the data, and its weight counts the rows nearest to it.
    assert all((X == row).all(axis=1).any() for row in candidates.rows[:20])
    labels, _ = kmeans.nearest_center(X, candidates.rows)
    np.testing.assert_array_equal(candidates.weights,
                                  np.bincount(labels, minlength=len(candidates.rows)))


def test_weighted_candidates_count_weight_not_rows():
    X, _ = _blobs(n=20_000)
    weights = np.random.RandomState(1).uniform(0.0, 3.0, size=len(X))
    weights[::7] = 0.0
    candidates = kp.kmeans_parallel(_backend(X, [9_000], weights), 4, np.random.RandomState(0))
    assert candidates.total_weight == pytest.approx(weights.sum(), rel=1e-12)
    mean = weights @ X / weights.sum()
    variance = weights @ (X - mean) ** 2 / weights.sum()
    np.testing.assert_allclose(candidates.variance, variance, rtol=1e-9)
    zero_weight_rows = X[weights == 0]
    assert not any((zero_weight_rows == row).all(axis=1).any() for row in candidates.rows)


def test_lloyd_passes_reach_the_in_memory_lloyd_optimum():
    X, _ = _blobs()
    start = X[[0, 1, 2, 3, 4]]
    memory, _ = kmeans.lloyd(X, None, start)
    _, variance = kmeans.weighted_moments(X, None)
    passes = kp.lloyd_passes(_backend(X, [25_000]), start, variance)
    np.testing.assert_allclose(passes, memory, rtol=1e-6)


def test_kmeans_parallel_then_lloyd_finds_separated_clusters():
    X, centres = _blobs(k=6, scale=10.0)
    backend = _backend(X, [30_000])
    candidates = kp.kmeans_parallel(backend, 6, np.random.RandomState(0))
    found = kp.lloyd_passes(backend, candidates.centres(6, np.random.RandomState(0)),
                            candidates.variance)
    # Each true centre has one found centre within the noise of its cluster mean.
    gaps = np.sqrt(((found[:, None] - centres[None]) ** 2).sum(axis=2))
    assert sorted(gaps.argmin(axis=0)) == list(range(6))
    assert gaps.min(axis=0).max() < 0.05


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_initialisation_at_scale_does_not_depend_on_the_partitioning(init_params):
    X, _ = _blobs(n=30_000)
    model = GaussianMixtureModel(SPECS["full"], 5, 3, 1e-6, init_params)
    starts = [model.initialize_at_scale(_backend(X, cuts), np.random.RandomState(0))
              for cuts in ([], [8_000, 19_000])]
    for name in ("weights", "means", "covariances"):
        np.testing.assert_allclose(getattr(starts[0], name), getattr(starts[1], name),
                                   rtol=1e-10, atol=1e-12)
    start = starts[0]
    if init_params in ("k-means++", "random_from_data"):
        # One data row per component, weights as scikit-learn's (1 / n_samples).
        assert all((X == mean).all(axis=1).any() for mean in start.means)
        np.testing.assert_allclose(start.weights, 1.0 / len(X), rtol=1e-6)
    elif init_params == "random":
        np.testing.assert_allclose(start.means, np.tile(X.mean(axis=0), (5, 1)), atol=0.1)
    else:
        assert start.weights.sum() == pytest.approx(1.0)


def test_kmeans_start_at_scale_matches_the_in_memory_start_on_separated_clusters():
    X, _ = _blobs(n=40_000, scale=10.0)
    model = GaussianMixtureModel(SPECS["diag"], 5, 3, 1e-6, "kmeans")
    memory = model.initialize(Block(X), np.random.RandomState(0))
    scaled = model.initialize_at_scale(_backend(X, [10_000, 20_000]), np.random.RandomState(0))
    order_m, order_s = np.argsort(memory.means[:, 0]), np.argsort(scaled.means[:, 0])
    np.testing.assert_allclose(scaled.means[order_s], memory.means[order_m], rtol=1e-8)
    np.testing.assert_allclose(scaled.weights[order_s], memory.weights[order_m], rtol=1e-8)


def test_fewer_distinct_rows_than_components_still_gives_a_start():
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 5_000, axis=0)
    model = GaussianMixtureModel(SPECS["spherical"], 3, 2, 1e-6, "kmeans")
    start = model.initialize_at_scale(_backend(X, [2_500]), np.random.RandomState(0))
    assert np.isfinite(start.means).all() and np.isfinite(start.covariances).all()
    assert {tuple(m) for m in start.means} >= {(0.0, 0.0), (5.0, 5.0)}


def test_estimator_fit_uses_the_engine_initialisation_hook():
    X, _ = _blobs(n=5_000)

    class CountingBackend(LocalBackend):
        calls = 0

        def initialize(self, model, random_state):
            CountingBackend.calls += 1
            return model.initialize_at_scale(self, random_state)

    from fastem.engine import run_em
    model = GaussianMixtureModel(SPECS["full"], 3, 3, 1e-6, "kmeans")
    run = run_em(model, CountingBackend([Block(X)]), n_init=2, max_iter=5, tol=1e-3,
                 random_state=np.random.RandomState(0))
    assert CountingBackend.calls == 2 and np.isfinite(run.objective)
    reference = fastem.GaussianMixture(3, random_state=0, max_iter=50).fit(X)
    assert run.objective == pytest.approx(reference.lower_bound_, abs=0.05)
