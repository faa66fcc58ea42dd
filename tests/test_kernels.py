"""The compiled building blocks against NumPy/SciPy: exp, the tiled Gaussian kernels, float32."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, random_covariances, reference_log_prob, with_parameters
from test_em_properties import _stats

import fastem
from fastem._jit import kernel
from fastem.kernels import fast_math
from fastem.mixture.covariance import SPECS

pytest.importorskip("scipy")
from scipy.special import logsumexp, softmax  # noqa: E402


@kernel
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = fast_math.exp(x[i])


def _fast_exp(x):
    out = np.empty_like(x)
    _exp_all(x, out)
    return out


def test_exp_is_accurate_where_the_e_step_uses_it():
    x = np.random.default_rng(0).uniform(-60.0, 0.0, 200_000)
    np.testing.assert_allclose(_fast_exp(x), np.exp(x), rtol=4e-15, atol=0)


def test_exp_over_the_whole_double_range():
    x = np.random.default_rng(1).uniform(-708.0, 709.0, 200_000)
    np.testing.assert_allclose(_fast_exp(x), np.exp(x), rtol=5e-14, atol=0)
    subnormal = np.array([-740.0, -744.0])
    np.testing.assert_allclose(_fast_exp(subnormal), np.exp(subnormal), rtol=1e-3)


def test_exp_special_values():
    x = np.array([-np.inf, -1e308, -746.0, 0.0, -0.0, 1.0, 710.0, 1e308, np.inf])
    expected = np.array([0.0, 0.0, 0.0, 1.0, 1.0, np.e, np.inf, np.inf, np.inf])
    np.testing.assert_array_equal(_fast_exp(x)[[0, 1, 2, 3, 4, 6, 7, 8]],
                                  expected[[0, 1, 2, 3, 4, 6, 7, 8]])
    assert abs(_fast_exp(x)[5] - np.e) <= 2 * np.spacing(np.e)


def _model(covariance_type, n_components, n_features, seed):
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    covariances = random_covariances(rng, covariance_type, n_components, n_features)
    X0 = rng.normal(size=(max(10, n_components), n_features))
    model = fastem.GaussianMixture(n_components, covariance_type=covariance_type, max_iter=1,
                                   random_state=0).fit(X0)
    return with_parameters(model, weights, means, covariances), rng


# Dimensions on both sides of the tiled path (D >= 4), with and without padding to 4,
# and row counts that leave partial work units.
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_features,n_rows", [(3, 300), (4, 257), (7, 600), (9, 513), (17, 1000),
                                               (33, 300)])
def test_log_density_and_posteriors_match_scipy(covariance_type, n_features, n_rows):
    model, rng = _model(covariance_type, 5, n_features, seed=n_features)
    X = rng.normal(scale=2.5, size=(n_rows, n_features))
    reference = reference_log_prob(X, model.weights_, model.means_, model.covariances_,
                                   covariance_type)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(reference, axis=1), rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X), softmax(reference, axis=1), rtol=1e-8,
                               atol=1e-12)


def _reference_stats(X, weights, means, covariances, covariance_type):
    """N, S (about the means) and Q from dense NumPy responsibilities."""
    resp = softmax(reference_log_prob(X, weights, means, covariances, covariance_type), axis=1)
    n_mass = resp.sum(axis=0)
    centred = X[None, :, :] - means[:, None, :]
    first = np.einsum("nk,kna->ka", resp, centred)
    second = np.einsum("nk,kna,knb->kab", resp, centred, centred)
    return resp, n_mass, first, second


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_features", [2, 6, 16])
def test_e_step_statistics_match_numpy(covariance_type, n_features):
    model, rng = _model(covariance_type, 4, n_features, seed=3)
    X = rng.normal(scale=2.0, size=(700, n_features))
    spec = SPECS[covariance_type]
    flat = _stats(X, model._get_parameters(), spec)
    k, d = 4, n_features
    resp, n_mass, first, second = _reference_stats(X, model.weights_, model.means_,
                                                   model.covariances_, covariance_type)
    np.testing.assert_allclose(flat[0], logsumexp(
        reference_log_prob(X, model.weights_, model.means_, model.covariances_,
                           covariance_type), axis=1).sum(), rtol=1e-11)
    assert flat[1] == len(X)
    np.testing.assert_allclose(flat[2:2 + k], n_mass, rtol=1e-10)
    np.testing.assert_allclose(flat[2 + k:2 + k + k * d].reshape(k, d), first, rtol=1e-9,
                               atol=1e-9)
    rest = flat[2 + k + k * d:]
    if spec.diagonal:
        expected = np.einsum("kaa->ka", second)
        np.testing.assert_allclose(rest.reshape(k, d), expected, rtol=1e-9, atol=1e-9)
    else:
        upper = np.triu(np.ones((d, d), dtype=bool))
        got = rest.reshape(k, d, d)
        np.testing.assert_allclose(got[:, upper], second[:, upper], rtol=1e-9, atol=1e-9)


def test_far_components_contribute_exactly_nothing():
    # Components hundreds of standard deviations apart: the posterior of the far component
    # is below e^-600 and is dropped; the statistics equal the hard-assignment sums.
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 60.0])
    model, _ = _model("full", 2, 8, seed=1)
    model = with_parameters(model, [0.5, 0.5], np.array([np.zeros(8), np.full(8, 60.0)]),
                            np.array([np.eye(8), np.eye(8)]))
    flat = _stats(X, model._get_parameters(), SPECS["full"])
    assert flat[2] == 300.0 and flat[3] == 300.0
    np.testing.assert_allclose(flat[4:12], X[:300].sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.repeat([0, 1], 300))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_data_gives_the_float64_fit_to_float32_precision(covariance_type):
    rng = np.random.RandomState(4)
    centers = rng.uniform(-4, 4, size=(3, 16))
    X64 = (centers[rng.randint(3, size=6000)] + rng.normal(size=(6000, 16))).astype(np.float32)
    X64 = X64.astype(np.float64)  # identical values in both precisions
    X32 = X64.astype(np.float32)
    fits = [fastem.GaussianMixture(3, covariance_type=covariance_type, max_iter=5, tol=0.0,
                                   random_state=0).fit(X) for X in (X64, X32)]
    np.testing.assert_allclose(fits[1].means_, fits[0].means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fits[1].covariances_, fits[0].covariances_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fits[1].lower_bound_, fits[0].lower_bound_, rtol=1e-6)
    np.testing.assert_allclose(fits[1].score_samples(X32), fits[0].score_samples(X64),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_features", [1, 5, 16])
def test_distance_kernels_match_numpy(dtype, n_features):
    from fastem.engine import UNIT_ROWS
    from fastem.kernels import distance

    rng = np.random.RandomState(n_features)
    X = (rng.normal(size=(1000, n_features)) + 50.0).astype(dtype)
    Xd = X.astype(np.float64)
    weights = rng.uniform(0.0, 2.0, size=1000)
    centers = Xd[[3, 500, 999, 10, 20]] + 0.1
    squared = ((Xd[:, None, :] - centers[None]) ** 2).sum(axis=2)

    closest = np.full(1000, np.inf)
    unit_sums = distance.lower_closest(X, weights, centers[0], closest, UNIT_ROWS)
    np.testing.assert_allclose(closest, squared[:, 0], rtol=1e-12)
    np.testing.assert_allclose(unit_sums.sum(), (weights * squared[:, 0]).sum(), rtol=1e-12)

    potentials = distance.candidate_potentials(X, weights, centers[1:], closest, UNIT_ROWS)
    expected = (weights[:, None] * np.minimum(squared[:, 1:], closest[:, None])).sum(axis=0)
    np.testing.assert_allclose(potentials, expected, rtol=1e-12)



@pytest.mark.parametrize("n_features", [1, 5, 16])
def test_lloyd_pass_labels_bounds_and_sums(n_features):
    from fastem.engine import UNIT_ROWS
    from fastem.kernels import distance

    rng = np.random.RandomState(n_features)
    X = rng.normal(size=(1500, n_features)) * 2.0 + 50.0
    weights = rng.uniform(0.0, 2.0, size=1500)
    origin = X.mean(axis=0)
    centers = X[rng.choice(1500, 6, replace=False)].copy()
    k = len(centers)
    labels = np.empty(1500, dtype=np.int64)
    bounds = np.empty((1500, 2))
    upper, lower = bounds[:, 0], bounds[:, 1]

    def brute(c):
        d = np.sqrt(((X[:, None, :] - c[None]) ** 2).sum(axis=2))
        return d.argmin(axis=1), np.sort(d, axis=1)

    def run(c, drift, first):
        gaps = np.sqrt(((c[:, None] - c[None]) ** 2).sum(axis=2))
        np.fill_diagonal(gaps, np.inf)
        if first:
            return distance.lloyd_assign(X, weights, c, origin, labels, bounds, UNIT_ROWS, 2)
        return distance.lloyd_update(X, weights, c, origin, labels, bounds, drift,
                                     0.5 * gaps.min(axis=1), UNIT_ROWS, 2)

    totals = run(centers, np.zeros(k), True)
    expected, ordered = brute(centers)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_allclose(upper, ordered[:, 0], rtol=1e-12)
    np.testing.assert_allclose(lower, ordered[:, 1], rtol=1e-12)
    # Move the centres as Lloyd does; the next pass must give plain Lloyd's labels and
    # sums that add up to the totals computed from scratch.
    for _ in range(4):
        previous = labels.copy()
        new = np.array([X[labels == j].mean(axis=0) for j in range(k)])
        drift = np.sqrt(((new - centers) ** 2).sum(axis=1))
        centers = new
        change = run(centers, drift, False)
        totals = totals + change
        expected, ordered = brute(centers)
        np.testing.assert_array_equal(labels, expected)
        assert change[0] == np.sum(labels != previous)
        assert np.all(upper >= ordered[:, 0] * (1 - 1e-12))
        assert np.all(lower <= ordered[:, 1] * (1 + 1e-12))
    np.testing.assert_allclose(totals[2:2 + k], np.bincount(labels, minlength=k))
    np.testing.assert_allclose(totals[2 + k:2 + 2 * k],
                               np.bincount(labels, weights=weights, minlength=k), rtol=1e-10)
    sums = np.array([(weights[labels == j, None] * (X[labels == j] - origin)).sum(axis=0)
                     for j in range(k)])
    np.testing.assert_allclose(totals[2 + 2 * k:].reshape(k, n_features), sums, rtol=1e-8,
                               atol=1e-8)
