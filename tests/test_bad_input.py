"""Every estimator refuses bad input with a clear error and accepts every good array layout."""

import numpy as np
import pytest

import fastem

rng = np.random.RandomState(0)
CONTINUOUS = rng.normal(size=(60, 3))
SYMBOLS = rng.randint(3, size=(60, 1))
COUNTS = rng.poisson(3, size=(60, 3))

ESTIMATORS = {
    "GaussianMixture": (lambda: fastem.GaussianMixture(2, random_state=0), CONTINUOUS),
    "EMImputer": (lambda: fastem.EMImputer(), CONTINUOUS),
    "GaussianHMM": (lambda: fastem.GaussianHMM(2, random_state=0), CONTINUOUS),
    "GMMHMM": (lambda: fastem.GMMHMM(2, n_mix=2, random_state=0), CONTINUOUS),
    "CategoricalHMM": (lambda: fastem.CategoricalHMM(2, random_state=0), SYMBOLS),
    "PoissonHMM": (lambda: fastem.PoissonHMM(2, random_state=0), COUNTS),
    "MultinomialHMM": (lambda: fastem.MultinomialHMM(2, random_state=0), COUNTS),
}
NAMES = sorted(ESTIMATORS)


def _make(name):
    factory, X = ESTIMATORS[name]
    return factory(), X.copy()


def _infer(model, X):
    if isinstance(model, fastem.EMImputer):
        return model.transform(X)
    return model.score(X)


@pytest.mark.parametrize("name", NAMES)
def test_nan_is_refused_by_default(name):
    model, X = _make(name)
    X = X.astype(np.float64)
    X[3, 0] = np.nan
    if name == "EMImputer":  # NaN is what the imputer is for
        assert not np.isnan(model.fit_transform(X)).any()
        return
    with pytest.raises(ValueError, match="NaN|missing"):
        model.fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_infinity_is_refused(name):
    model, X = _make(name)
    X = X.astype(np.float64)
    X[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity|finite|infinite"):
        model.fit(X)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(0, 3), (0,), (60, 3, 1)])
def test_wrong_dimensionality_or_empty(name, shape):
    model, _ = _make(name)
    with pytest.raises(ValueError):
        model.fit(np.zeros(shape))


@pytest.mark.parametrize("name", NAMES)
def test_strings_are_refused(name):
    model, X = _make(name)
    with pytest.raises(TypeError):
        model.fit(X.astype(str))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "EMImputer"])
def test_fewer_rows_than_components(name):
    model, X = _make(name)
    model.set_params(n_components=5)
    with pytest.raises(ValueError, match="n_components|samples"):
        model.fit(X[:3])


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("CategoricalHMM",)])
def test_mismatched_features_after_fit(name):
    model, X = _make(name)
    model.fit(X)
    with pytest.raises(ValueError, match="features"):
        _infer(model, np.hstack([X, X[:, :1]]))


@pytest.mark.parametrize("name", NAMES)
def test_layouts_are_accepted_and_input_is_not_modified(name):
    model, X = _make(name)
    reference = _infer(model.fit(X), X)
    fortran = np.asfortranarray(X)
    strided = np.repeat(X, 2, axis=0)[::2]
    read_only = X.copy()
    read_only.setflags(write=False)
    for variant in (fortran, strided, read_only):
        before = variant.copy()
        np.testing.assert_allclose(_infer(model, variant), reference, rtol=1e-12)
        np.testing.assert_array_equal(variant, before)
    if np.issubdtype(X.dtype, np.floating):
        as_int = np.round(X).astype(np.int64)
        assert np.all(np.isfinite(_infer(model, as_int)))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "EMImputer"])
def test_bad_hyperparameters_name_the_argument(name):
    model, X = _make(name)
    model.set_params(n_components=0)
    with pytest.raises(ValueError, match="n_components"):
        model.fit(X)
    model, X = _make(name)
    # scikit-learn refuses a negative tol; hmmlearn accepts any (NaN is refused here).
    model.set_params(tol=-1.0 if name == "GaussianMixture" else np.nan)
    with pytest.raises(ValueError, match="tol"):
        model.fit(X)


@pytest.mark.parametrize("covars,covariance_type", [
    (-np.ones((2, 3)), "diag"), (np.array([[[1.0, 2, 0], [2, 1, 0], [0, 0, 1]]] * 2), "full"),
    (np.zeros(2), "spherical"),
])
def test_user_covariances_must_be_positive_definite(covars, covariance_type):
    model = fastem.GaussianHMM(2, covariance_type=covariance_type)
    model.startprob_ = np.array([0.5, 0.5])
    model.transmat_ = np.eye(2)
    model.means_ = np.zeros((2, 3))
    model.covars_ = covars
    with pytest.raises(ValueError, match="covars_ must hold positive definite"):
        model.score(CONTINUOUS)


@pytest.mark.parametrize("weights,match", [
    ([1.0, -1.0], "negative|non-negative"), ([1.0], "shape|length|samples"),
    ([np.nan, 1.0], "NaN|finite"), ([0.0, 0.0], "positive|zero"),
])
def test_bad_sequence_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        fastem.GaussianHMM(2).fit(CONTINUOUS, [30, 30], sample_weight=weights)
