"""sample_weight semantics and float32 input."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, blobs

import fastem

ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def _assert_same_fit(a, b, rtol):
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_zero_weight_drops_the_row(covariance_type, init_params):
    X = blobs(n=600, n_features=3, n_components=3, seed=1)
    junk = np.random.RandomState(0).normal(scale=50.0, size=(200, 3))
    rows = np.vstack([X, junk])
    order = np.random.RandomState(1).permutation(len(rows))
    # keep X's rows in their order, interleave the junk rows
    keep = np.sort(order[:600])
    mixed = np.empty_like(rows)
    is_real = np.zeros(len(rows), dtype=bool)
    is_real[keep] = True
    mixed[is_real] = X
    mixed[~is_real] = junk
    weights = is_real.astype(float)
    kwargs = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
                  random_state=3)
    dropped = fastem.GaussianMixture(**kwargs).fit(X)
    weighted = fastem.GaussianMixture(**kwargs).fit(mixed, sample_weight=weights)
    _assert_same_fit(weighted, dropped, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_integer_weight_repeats_the_row(covariance_type, init_params):
    X = blobs(n=300, n_features=2, n_components=3, seed=2)
    counts = np.random.RandomState(4).randint(0, 4, size=len(X))
    kwargs = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
                  random_state=5)
    repeated = fastem.GaussianMixture(**kwargs).fit(np.repeat(X, counts, axis=0))
    weighted = fastem.GaussianMixture(**kwargs).fit(X, sample_weight=counts)
    _assert_same_fit(weighted, repeated, rtol=1e-8)


def test_weights_from_identical_start_any_order():
    """From given starting parameters, weights equal repetition even with shuffled rows."""
    X = blobs(n=300, n_features=2, n_components=2, seed=6)
    counts = np.random.RandomState(7).randint(0, 3, size=len(X))
    start = fastem.GaussianMixture(2, max_iter=0, random_state=0).fit(X)
    kwargs = dict(n_components=2, max_iter=30, tol=0.0, weights_init=start.weights_,
                  means_init=start.means_, precisions_init=start.precisions_)
    shuffle = np.random.RandomState(8).permutation(len(X))
    weighted = fastem.GaussianMixture(**kwargs).fit(X[shuffle], sample_weight=counts[shuffle])
    repeated = fastem.GaussianMixture(**kwargs).fit(np.repeat(X, counts, axis=0))
    _assert_same_fit(weighted, repeated, rtol=1e-9)


def test_unit_weights_equal_no_weights():
    X = blobs(n=500, seed=3)
    a = fastem.GaussianMixture(3, random_state=0).fit(X)
    b = fastem.GaussianMixture(3, random_state=0).fit(X, sample_weight=np.ones(len(X)))
    for name in ATTRIBUTES:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_agrees_with_float64(covariance_type):
    X = blobs(n=3000, n_features=4, n_components=3, seed=10)
    X32 = X.astype(np.float32)
    start = fastem.GaussianMixture(3, covariance_type=covariance_type, max_iter=0,
                                   random_state=0).fit(X32)
    kwargs = dict(n_components=3, covariance_type=covariance_type, max_iter=20, tol=0.0,
                  weights_init=start.weights_, means_init=start.means_,
                  precisions_init=start.precisions_)
    single = fastem.GaussianMixture(**kwargs).fit(X32)
    double = fastem.GaussianMixture(**kwargs).fit(X32.astype(np.float64))
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(single, name), getattr(double, name), rtol=1e-4,
                                   atol=1e-4)
    np.testing.assert_allclose(single.score(X32), double.score(X32), rtol=1e-4)
    assert single.means_.dtype == np.float64
    assert single.score_samples(X32).dtype == np.float64


def test_float32_input_is_not_copied_or_modified():
    X = blobs(n=400, seed=12).astype(np.float32)
    X.setflags(write=False)
    before = X.copy()
    model = fastem.GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(X, before)
    assert np.isfinite(model.score(X))
