"""MixtureOfExperts (issue 15, first part): mixtures of Gaussian regressions, constant gate.

References: a NumPy EM written from the formulas, SciPy densities, brute force."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import fastem
from fastem.engine import Block, pass_stats
from fastem.moe.model import ExpertMixtureModel


def _two_lines(n=3_000, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 10, size=n)
    component = rng.randint(0, 2, size=n)
    y = np.where(component == 0, 5 * x + rng.normal(scale=2, size=n),
                 40 - 3 * x + rng.normal(scale=3, size=n))
    return x[:, None], y, component


def _quietly(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


def _reference_em(X, Y, weights, intercepts, slopes, covariances, n_iter, reg_covar=1e-6):
    """Plain NumPy EM for K regressions of M outputs (full residual covariances)."""
    Z = np.column_stack([np.ones(len(X)), X])
    coef = np.concatenate([intercepts[:, None, :], np.transpose(slopes, (0, 2, 1))], axis=1)
    for _ in range(n_iter):
        logp = np.column_stack([
            np.log(w) + multivariate_normal(np.zeros(Y.shape[1]), S).logpdf(Y - Z @ B)
            for w, B, S in zip(weights, coef, covariances, strict=True)])
        r = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
        for k in range(len(weights)):
            W = r[:, k]
            coef[k] = np.linalg.solve(Z.T @ (W[:, None] * Z), Z.T @ (W[:, None] * Y))
            resid = Y - Z @ coef[k]
            covariances[k] = (W[:, None] * resid).T @ resid / W.sum() + reg_covar * np.eye(
                Y.shape[1])
        weights = r.sum(axis=0) / len(Y)
    return weights, coef[:, 0, :], np.transpose(coef[:, 1:, :], (0, 2, 1)), covariances


def test_recovers_two_regression_lines():
    X, y, _ = _two_lines()
    model = fastem.MixtureOfExperts(2, n_init=3, random_state=0).fit(X, y)
    order = np.argsort(model.coef_[:, 0])
    np.testing.assert_allclose(model.coef_[order, 0], [-3, 5], atol=0.1)
    np.testing.assert_allclose(model.intercept_[order], [40, 0], atol=0.5)
    np.testing.assert_allclose(np.sqrt(model.covariances_[order, 0, 0]), [3, 2], atol=0.15)
    np.testing.assert_allclose(model.weights_[order], [0.5, 0.5], atol=0.03)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_equals_a_numpy_em_from_the_same_start(n_outputs):
    rng = np.random.RandomState(3)
    X = rng.normal(size=(1_500, 3))
    B = rng.normal(size=(2, n_outputs, 3))
    component = rng.randint(0, 2, size=len(X))
    Y = np.einsum("kmp,np->nkm", B, X)[np.arange(len(X)), component]
    Y = Y + rng.normal(scale=0.5, size=Y.shape) + 3.0 * component[:, None]
    y = Y[:, 0] if n_outputs == 1 else Y
    start = _quietly(fastem.MixtureOfExperts(2, random_state=1, max_iter=0), X, y)
    expected = _reference_em(X, Y, start.weights_.copy(),
                             start.intercept_.reshape(2, n_outputs).copy(),
                             start.coef_.reshape(2, n_outputs, 3).copy(),
                             start.covariances_.copy(), n_iter=6)
    fitted = _quietly(fastem.MixtureOfExperts(2, random_state=1, max_iter=6, tol=0.0), X, y)
    for got, want in zip((fitted.weights_, fitted.intercept_.reshape(2, n_outputs),
                          fitted.coef_.reshape(2, n_outputs, 3), fitted.covariances_),
                         expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def test_posteriors_and_log_likelihoods_by_brute_force():
    X, y, _ = _two_lines(n=400)
    model = fastem.MixtureOfExperts(2, random_state=0).fit(X, y)
    means = model.intercept_ + X @ model.coef_.T
    sd = np.sqrt(model.covariances_[:, 0, 0])
    joint = np.log(model.weights_) - 0.5 * np.log(2 * np.pi * sd ** 2) \
        - 0.5 * ((y[:, None] - means) / sd) ** 2
    np.testing.assert_allclose(model.score_samples(X, y), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X, y),
                               np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               atol=1e-12)
    assert model.score(X, y) == pytest.approx(logsumexp(joint, axis=1).mean(), rel=1e-12)
    np.testing.assert_allclose(model.predict(X), means @ model.weights_, rtol=1e-12)
    k = 2 * 2 + 2 + 1  # coefficients, variances, one free weight
    assert model.bic(X, y) == pytest.approx(-2 * logsumexp(joint, axis=1).sum()
                                            + k * np.log(len(y)), rel=1e-12)


def test_objective_never_decreases_and_threads_change_nothing():
    X, y, _ = _two_lines(n=20_000, seed=2)
    options = dict(random_state=0, init_params="random", max_iter=40, tol=0.0)
    with fastem.threads(1):
        one = _quietly(fastem.MixtureOfExperts(2, **options), X, y)
    with fastem.threads(2):
        two = _quietly(fastem.MixtureOfExperts(2, **options), X, y)
    assert np.all(np.diff(one.lower_bounds_) >= -1e-12)
    np.testing.assert_array_equal(one.coef_, two.coef_)
    assert one.lower_bounds_ == two.lower_bounds_


def test_statistics_add_over_unit_aligned_blocks():
    rng = np.random.RandomState(0)
    data = np.column_stack([np.ones(3_000), rng.normal(size=(3_000, 2)), rng.normal(size=3_000)])
    model = ExpertMixtureModel(2, 3, 1)
    params = model.initialize(Block(data), np.random.RandomState(0))
    whole = pass_stats(model, params, [Block(data)])
    parts = pass_stats(model, params, [Block(data[:1_024]), Block(data[1_024:])])
    np.testing.assert_array_equal(whole.flat, parts.flat)


def test_sample_weights_equal_repeated_rows():
    X, y, _ = _two_lines(n=500)
    counts = np.random.RandomState(4).randint(1, 4, size=len(y))
    model = ExpertMixtureModel(2, 2, 1)
    design = np.column_stack([np.ones(len(y)), X[:, 0] - 5.0, y - 20.0])
    params = model.initialize(Block(design), np.random.RandomState(0))
    a = pass_stats(model, params, [Block(design, counts.astype(float))])
    b = pass_stats(model, params, [Block(np.repeat(design, counts, axis=0))])
    np.testing.assert_allclose(a.flat, b.flat, rtol=1e-10)
    # Whole fits from the same (given) start agree too.
    weighted = fastem.MixtureOfExperts(2, random_state=0, tol=0.0, max_iter=10)
    repeated = fastem.MixtureOfExperts(2, random_state=0, tol=0.0, max_iter=10)
    _quietly(weighted, X, y, sample_weight=counts)
    _quietly(repeated, np.repeat(X, counts, axis=0), np.repeat(y, counts))
    order = [np.argsort(m.coef_[:, 0]) for m in (weighted, repeated)]
    np.testing.assert_allclose(weighted.coef_[order[0]], repeated.coef_[order[1]], rtol=1e-6)


def test_expert_columns_select_the_regressors():
    X, y, _ = _two_lines(n=800)
    noise = np.random.RandomState(0).normal(size=(len(y), 2))
    wide = np.column_stack([noise[:, 0], X[:, 0], noise[:, 1]])
    picked = fastem.MixtureOfExperts(2, expert_columns=[1], random_state=0).fit(wide, y)
    plain = fastem.MixtureOfExperts(2, random_state=0).fit(X, y)
    np.testing.assert_allclose(picked.coef_, plain.coef_, rtol=1e-10)
    assert picked.predict(wide).shape == (800,)


def test_sample_draws_from_the_fitted_model():
    X, y, _ = _two_lines(n=1_000)
    model = fastem.MixtureOfExperts(2, n_init=2, random_state=0).fit(X, y)
    Xs = np.full((20_000, 1), 4.0)
    draws, components = model.sample(Xs, random_state=1)
    assert draws.shape == (20_000,) and set(np.unique(components)) == {0, 1}
    for k in range(2):
        chosen = draws[components == k]
        mean = model.intercept_[k] + 4.0 * model.coef_[k, 0]
        assert abs(chosen.mean() - mean) < 0.1
        assert abs(chosen.std() - np.sqrt(model.covariances_[k, 0, 0])) < 0.1


def test_an_exactly_fitted_component_is_a_clear_error_or_floored():
    x = np.arange(6.0)[:, None]
    y = np.array([0.0, 1.0, 2.0, 10.0, 20.0, 30.0])  # two exact lines of three points
    with pytest.raises(ValueError, match="component .* not positive definite.*reg_covar"):
        _quietly(fastem.MixtureOfExperts(2, reg_covar=0.0, random_state=0, max_iter=5),
                 np.vstack([x[:3], x[:3] + 10]), y)
    model = _quietly(fastem.MixtureOfExperts(2, random_state=0, max_iter=5),
                     np.vstack([x[:3], x[:3] + 10]), y)
    assert np.isfinite(model.covariances_).all() and np.isfinite(model.coef_).all()


@pytest.mark.parametrize("change, message", [
    (dict(y=np.zeros(7)), "y has 7 rows"),
    (dict(y=np.r_[np.nan, np.zeros(9)]), "y"),
    (dict(X=np.r_[np.inf, np.zeros(9)][:, None]), "X"),
    (dict(expert="student"), "expert"),
    (dict(gating="tree"), "gating"),
    (dict(expert_columns=[3]), "expert_columns"),
    (dict(n_components=0), "n_components"),
    (dict(alpha=-1.0), "alpha"),
])
def test_bad_input_is_refused_by_name(change, message):
    arguments = dict(X=np.arange(10.0)[:, None], y=np.arange(10.0))
    options = {key: value for key, value in change.items() if key not in arguments}
    arguments.update({key: value for key, value in change.items() if key in arguments})
    X_before = arguments["X"].copy()
    with pytest.raises(ValueError, match=message):
        fastem.MixtureOfExperts(**{"n_components": 2, **options}).fit(arguments["X"],
                                                                      arguments["y"])
    np.testing.assert_array_equal(arguments["X"], X_before)


def test_unfitted_and_wrong_shapes_at_prediction():
    model = fastem.MixtureOfExperts(2)
    with pytest.raises(fastem.NotFittedError):
        model.predict(np.zeros((3, 1)))
    X, y, _ = _two_lines(n=300)
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="y has"):
        model.score_samples(X, np.zeros((300, 2)))
