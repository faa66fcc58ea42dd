"""Bad input raises a clear ValueError/TypeError naming the argument, never a numba error."""

import numpy as np
import pytest
from helpers import blobs

import fastem

X_GOOD = blobs(n=60, n_features=2, n_components=2, seed=0)

BAD_X = [
    ("nan", np.where(np.eye(60, 2) > 0, np.nan, X_GOOD), ValueError, "NaN"),
    ("inf", np.where(np.eye(60, 2) > 0, np.inf, X_GOOD), ValueError, "infinity"),
    ("1-D", X_GOOD[:, 0], ValueError, "2D array"),
    ("3-D", X_GOOD[None], ValueError, "2D array"),
    ("empty", np.empty((0, 2)), ValueError, "0 sample"),
    ("no features", np.empty((5, 0)), ValueError, "0 feature"),
    ("strings", np.array([["a", "b"]] * 10), TypeError, "strings"),
    ("objects", np.array([[{"a": 1}, 2.0]] * 10, dtype=object), TypeError, "float"),
    ("complex", X_GOOD + 1j, ValueError, "Complex"),
    ("one row", X_GOOD[:1], ValueError, "1 sample"),
]


@pytest.mark.parametrize("name, X, error, message", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_X_in_fit(name, X, error, message):
    with pytest.raises(error, match=message):
        fastem.GaussianMixture(2).fit(X)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "score_samples", "bic",
                                    "aic"])
@pytest.mark.parametrize("name, X, error, message", BAD_X[:-1], ids=[b[0] for b in BAD_X[:-1]])
def test_bad_X_after_fit(method, name, X, error, message):
    model = fastem.GaussianMixture(2, random_state=0).fit(X_GOOD)
    if name == "empty":
        message = "0 sample"
    with pytest.raises(error, match=message):
        getattr(model, method)(X)


def test_fewer_rows_than_components():
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        fastem.GaussianMixture(5).fit(X_GOOD[:4])
    weights = np.zeros(len(X_GOOD))
    weights[:3] = 1.0
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        fastem.GaussianMixture(5).fit(X_GOOD, sample_weight=weights)


def test_wrong_number_of_features_in_predict():
    model = fastem.GaussianMixture(2, random_state=0).fit(X_GOOD)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        model.predict(np.ones((4, 3)))


@pytest.mark.parametrize("weights, message", [
    (-np.ones(60), "non-negative"),
    (np.full(60, np.nan), "finite"),
    (np.zeros(60), "positive"),
    (np.ones(59), "shape"),
    (np.ones((60, 1)), "shape"),
    (["a"] * 60, "numbers"),
])
def test_bad_sample_weight(weights, message):
    with pytest.raises((ValueError, TypeError), match="sample_weight") as info:
        fastem.GaussianMixture(2).fit(X_GOOD, sample_weight=weights)
    assert message in str(info.value)


@pytest.mark.parametrize("params, error, name", [
    (dict(covariance_type="banana"), ValueError, "covariance_type"),
    (dict(init_params="kmeans--"), ValueError, "init_params"),
    (dict(n_components=0), ValueError, "n_components"),
    (dict(n_components=1.5), TypeError, "n_components"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(reg_covar=-1e-3), ValueError, "reg_covar"),
    (dict(reg_covar=np.nan), ValueError, "reg_covar"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(n_init=0), ValueError, "n_init"),
    (dict(verbose_interval=0), ValueError, "verbose_interval"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(random_state="seed"), TypeError, "random_state"),
    (dict(callback=3), TypeError, "callback"),
    (dict(weights_init=[0.2, 0.2]), ValueError, "weights"),
    (dict(weights_init=[0.5, 0.5, 0.0]), ValueError, "weights"),
    (dict(means_init=np.zeros((3, 2))), ValueError, "means"),
    (dict(precisions_init=-np.ones((2, 2, 2))), ValueError, "precision"),
    (dict(covariance_type="diag", precisions_init=-np.ones((2, 2))), ValueError, "precision"),
])
def test_bad_hyperparameters(params, error, name):
    kwargs = dict(n_components=2)
    kwargs.update(params)
    model = fastem.GaussianMixture(**kwargs)  # no validation in the constructor
    with pytest.raises(error, match=name):
        model.fit(X_GOOD)


def test_unfitted_model_raises_not_fitted():
    with pytest.raises(fastem.NotFittedError, match="not fitted"):
        fastem.GaussianMixture().predict(X_GOOD)
    with pytest.raises(fastem.NotFittedError):
        fastem.GaussianMixture().sample(3)


def test_degenerate_component_names_component_and_reg_covar():
    X = np.vstack([np.zeros((20, 2)), blobs(n=40, n_features=2, n_components=1, seed=1)])
    start = dict(weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [0.5, 0.5]],
                 precisions_init=np.array([np.eye(2), np.eye(2) * 0.1]))
    with pytest.raises(ValueError, match=r"component \d.*reg_covar \(currently 0.0\)"):
        fastem.GaussianMixture(2, reg_covar=0.0, max_iter=50, **start).fit(X)


def test_inputs_are_not_modified():
    X = np.asfortranarray(X_GOOD.copy())
    weights = np.linspace(0.5, 2.0, len(X))
    means_init = X[:2].copy()
    X_before, w_before, m_before = X.copy(), weights.copy(), means_init.copy()
    model = fastem.GaussianMixture(2, means_init=means_init, random_state=0)
    model.fit(X, sample_weight=weights)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(weights, w_before)
    assert model.means_init is means_init
    np.testing.assert_array_equal(means_init, m_before)


def test_integer_lists_and_strided_input_are_accepted():
    X_int = np.round(X_GOOD * 100).astype(np.int64)
    a = fastem.GaussianMixture(2, random_state=0).fit(X_int)
    b = fastem.GaussianMixture(2, random_state=0).fit(X_int.tolist())
    wide = np.repeat(X_int, 2, axis=1).astype(float)[:, ::2]  # non-contiguous view
    c = fastem.GaussianMixture(2, random_state=0).fit(wide)
    np.testing.assert_allclose(a.means_, b.means_)
    np.testing.assert_allclose(a.means_, c.means_)
