"""Log-densities and posteriors against scipy.stats.multivariate_normal."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, random_covariances, reference_log_prob, with_parameters
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("scipy")
from scipy.special import logsumexp  # noqa: E402

import fastem  # noqa: E402

_FITTED = {}


def _fitted(covariance_type, n_components, n_features):
    key = (covariance_type, n_components, n_features)
    if key not in _FITTED:
        X = np.random.RandomState(0).normal(size=(max(10, n_components), n_features))
        _FITTED[key] = fastem.GaussianMixture(n_components, covariance_type=covariance_type,
                                              max_iter=1, random_state=0).fit(X)
    return _FITTED[key]


@settings(max_examples=60, deadline=None)
@given(covariance_type=st.sampled_from(COVARIANCE_TYPES), n_components=st.integers(1, 4),
       n_features=st.integers(1, 5), n_rows=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_log_density_matches_scipy(covariance_type, n_components, n_features, n_rows, seed,
                                   scale):
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(scale=3 * scale, size=(n_components, n_features))
    covariances = random_covariances(rng, covariance_type, n_components, n_features)
    covariances = covariances * scale**2
    X = rng.normal(scale=3 * scale, size=(n_rows, n_features))
    model = with_parameters(_fitted(covariance_type, n_components, n_features), weights, means,
                            covariances)

    reference = reference_log_prob(X, weights, means, covariances, covariance_type)
    expected = logsumexp(reference, axis=1)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.score(X), expected.mean(), rtol=1e-10, atol=1e-10)
    posterior = np.exp(reference - expected[:, None])
    np.testing.assert_allclose(model.predict_proba(X), posterior, atol=1e-10)
    np.testing.assert_array_equal(model.predict(X), np.argmax(reference, axis=1))


def test_far_away_points_do_not_underflow():
    """Rows thousands of standard deviations away still get finite log-densities and posteriors."""
    model = with_parameters(_fitted("full", 2, 2), [0.5, 0.5], [[0.0, 0.0], [1.0, 0.0]],
                            np.array([np.eye(2), np.eye(2)]))
    X = np.array([[1e4, 0.0], [-1e4, 3.0]])
    reference = reference_log_prob(X, model.weights_, model.means_, model.covariances_, "full")
    np.testing.assert_allclose(model.score_samples(X), logsumexp(reference, axis=1), rtol=1e-12)
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), [1, 0])
