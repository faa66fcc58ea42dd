"""k-means++ seeding and Lloyd's k-means against scikit-learn's."""

import numpy as np
import pytest
from helpers import blobs

pytest.importorskip("sklearn")
from sklearn.cluster import KMeans, kmeans_plusplus  # noqa: E402

from fastem.mixture import kmeans  # noqa: E402


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_plusplus_draws_like_sklearn(seed):
    X = blobs(n=2000, n_features=4, n_components=6, seed=seed)
    _, expected = kmeans_plusplus(X, 6, random_state=np.random.RandomState(seed))
    ours = kmeans.kmeans_plusplus(X, 6, None, np.random.RandomState(seed))
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("seed", range(3))
def test_lloyd_matches_sklearn_from_same_centres(seed):
    X = blobs(n=3000, n_features=3, n_components=5, seed=seed, spread=3.0)
    start = X[np.random.RandomState(seed).choice(len(X), 5, replace=False)]
    ref = KMeans(5, init=start, n_init=1, algorithm="lloyd", tol=1e-4).fit(X)
    centers, labels = kmeans.lloyd(X, None, start, tol=1e-4)
    np.testing.assert_allclose(centers, ref.cluster_centers_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(labels, ref.labels_)


def test_weighted_moments_match_numpy():
    X = blobs(n=1000, seed=1) + 1e6  # far from zero: moments about a shift keep precision
    w = np.random.RandomState(0).uniform(0, 3, size=len(X))
    mean, var = kmeans.weighted_moments(X, w)
    np.testing.assert_allclose(mean, np.average(X, axis=0, weights=w), rtol=1e-14)
    np.testing.assert_allclose(var, np.average((X - mean) ** 2, axis=0, weights=w), rtol=1e-9)


def test_empty_cluster_is_relocated():
    X = np.vstack([np.zeros((50, 2)), np.ones((50, 2)) * 10])
    start = np.array([[0.0, 0.0], [10.0, 10.0], [100.0, 100.0]])  # third centre gets no point
    centers, labels = kmeans.lloyd(X, None, start)
    assert np.isfinite(centers).all()
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert not np.any(np.all(centers == [100.0, 100.0], axis=1))


@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_matches_sklearn_on_overlapping_clusters(weighted):
    # Overlapping clusters take many iterations, with many rows changing cluster: the
    # bounds that skip rows must not change a single label.
    X = blobs(n=6000, n_features=6, n_components=8, seed=3, spread=1.0)
    w = np.random.RandomState(1).uniform(0.2, 3.0, size=len(X)) if weighted else None
    start = X[np.random.RandomState(2).choice(len(X), 8, replace=False)]
    ref = KMeans(8, init=start, n_init=1, algorithm="lloyd", tol=1e-6, max_iter=500).fit(
        X, sample_weight=w)
    centers, labels = kmeans.lloyd(X, w, start, tol=1e-6, max_iter=500)
    assert ref.n_iter_ > 10
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(centers, ref.cluster_centers_, rtol=1e-8, atol=1e-8)
