"""fastem against scikit-learn from identical starting points."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, blobs, precisions_of, random_covariances

sklearn_mixture = pytest.importorskip("sklearn.mixture")

import fastem  # noqa: E402


def _initial(covariance_type, X, n_components, seed):
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    means = X[rng.choice(len(X), n_components, replace=False)] + rng.normal(
        scale=0.3, size=(n_components, X.shape[1]))
    covariances = random_covariances(rng, covariance_type, n_components, X.shape[1])
    return dict(weights_init=weights, means_init=means,
                precisions_init=precisions_of(covariances, covariance_type))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_same_fit_from_same_start(covariance_type, seed):
    X = blobs(n=900, n_features=4, n_components=3, seed=seed)
    init = _initial(covariance_type, X, 3, seed)
    common = dict(n_components=3, covariance_type=covariance_type, max_iter=25, tol=0.0, **init)
    ours = fastem.GaussianMixture(**common).fit(X)
    ref = sklearn_mixture.GaussianMixture(**common).fit(X)

    assert ours.n_iter_ == ref.n_iter_ == 25
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-8)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-6)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-6,
                               atol=1e-10)
    np.testing.assert_allclose(ours.precisions_, ref.precisions_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(ours.bic(X), ref.bic(X), rtol=1e-8)
    np.testing.assert_allclose(ours.aic(X), ref.aic(X), rtol=1e-8)
    assert ours._n_parameters() == ref._n_parameters()


@pytest.mark.parametrize("init_params", ["random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_random_initialisation_as_sklearn(init_params, covariance_type):
    """These two schemes draw from the RandomState exactly as scikit-learn does."""
    X = blobs(n=300, n_features=2, n_components=3, seed=3)
    common = dict(n_components=3, covariance_type=covariance_type, init_params=init_params,
                  random_state=7, max_iter=0)
    ours = fastem.GaussianMixture(**common).fit(X)
    ref = sklearn_mixture.GaussianMixture(**common).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)
    if covariance_type == "tied" and init_params == "random_from_data":
        # scikit-learn's tied M-step uses X.T @ X over all rows, which assumes every row's
        # responsibilities sum to one; one-hot seeding breaks that. fastem uses the formula for
        # the given responsibilities: zero scatter plus reg_covar, as sklearn's full/diag do.
        np.testing.assert_allclose(ours.covariances_, 1e-6 * np.eye(2), atol=1e-15)
    else:
        np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_,
                                   rtol=1e-7, atol=1e-9)


def test_default_fit_matches_sklearn_on_old_faithful():
    X, _ = fastem.load_faithful()
    for covariance_type in COVARIANCE_TYPES:
        ours = fastem.GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
        ref = sklearn_mixture.GaussianMixture(2, covariance_type=covariance_type,
                                              random_state=0).fit(X)
        order_ours, order_ref = np.argsort(ours.means_[:, 0]), np.argsort(ref.means_[:, 0])
        np.testing.assert_allclose(ours.means_[order_ours], ref.means_[order_ref], rtol=1e-6)
        np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-8)


def test_sample_follows_the_model():
    X = blobs(n=600, n_features=2, n_components=2, seed=4)
    model = fastem.GaussianMixture(2, random_state=0).fit(X)
    draws, labels = model.sample(200_000, random_state=1)
    assert draws.shape == (200_000, 2) and labels.shape == (200_000,)
    for k in range(2):
        chosen = draws[labels == k]
        np.testing.assert_allclose(len(chosen) / len(draws), model.weights_[k], atol=5e-3)
        np.testing.assert_allclose(chosen.mean(axis=0), model.means_[k], atol=0.03)
        np.testing.assert_allclose(np.cov(chosen.T), model.covariances_[k], atol=0.05)
    again, _ = model.sample(10, random_state=1)
    np.testing.assert_array_equal(again, model.sample(10, random_state=1)[0])
