"""MixtureOfExperts (issue 15, first part): mixtures of Gaussian regressions, constant gate.

References: a NumPy EM written from the formulas, SciPy densities, brute force."""

import copy
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
    weighted = fastem.MixtureOfExperts(2, random_state=0, tol=0.0, max_iter=10,
                                      init_params="kmeans")
    repeated = fastem.MixtureOfExperts(2, random_state=0, tol=0.0, max_iter=10,
                                      init_params="kmeans")
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


# -- GLM experts and gates against NumPy/SciPy references ------------------------------
from scipy.stats import binom, norm, poisson  # noqa: E402


def _glm_data(expert, n=2_000, seed=4):
    rng = np.random.RandomState(seed)
    X = np.column_stack([rng.uniform(0, 10, size=n), rng.normal(size=n)])
    component = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X[:, 0] - 5)))).astype(int)
    eta = np.where(component == 0, 0.3 + 0.15 * X[:, 0], 2.0 - 0.1 * X[:, 0]) + 0.2 * X[:, 1]
    trials = None
    if expert == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif expert == "binomial":
        trials = rng.randint(1, 30, size=n).astype(float)
        y = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-(eta - 1.5)))).astype(float)
    else:
        y = 3 * eta + rng.normal(size=n)
    return X, y, trials


def _log_experts(model, X, y, trials):
    """log f_k(y | x) of every row and component, from SciPy's densities."""
    eta = model.intercept_ + X @ model.coef_.T
    if model.expert == "poisson":
        return poisson.logpmf(y[:, None], np.exp(eta))
    if model.expert == "binomial":
        return binom.logpmf(y[:, None], trials[:, None], 1 / (1 + np.exp(-eta)))
    return norm.logpdf(y[:, None], eta, np.sqrt(model.covariances_[:, 0, 0]))


def _log_gate(model, X):
    """log g_k(x) (for the Gaussian gate: log pi_k N(x)), and its log normaliser."""
    if model.gating == "softmax":
        logits = model.gate_intercept_ + X @ model.gate_coef_.T
        return logits - logsumexp(logits, axis=1, keepdims=True), 0.0
    if model.gating == "gaussian":
        joint = np.column_stack([
            np.log(w) + multivariate_normal(m, S).logpdf(X)
            for w, m, S in zip(model.weights_, model.gate_means_, model.gate_covariances_,
                               strict=True)])
        return joint, logsumexp(joint, axis=1)
    return np.log(model.weights_)[None, :].repeat(len(X), axis=0), 0.0


COMBINATIONS = [(e, g) for e in ("gaussian", "poisson", "binomial")
                for g in ("constant", "softmax", "gaussian")]


@pytest.mark.parametrize("expert,gating", COMBINATIONS)
def test_posteriors_gate_and_likelihood_by_brute_force(expert, gating):
    X, y, trials = _glm_data(expert, n=600)
    model = _quietly(fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                             max_iter=20), X, y, trials=trials)
    log_gate, norm_gate = _log_gate(model, X)
    joint = log_gate + _log_experts(model, X, y, trials)
    total = logsumexp(joint, axis=1)
    np.testing.assert_allclose(model.score_samples(X, y, trials=trials), total - norm_gate,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X, y, trials=trials),
                               np.exp(joint - total[:, None]), atol=1e-10)
    np.testing.assert_allclose(model.gate_proba(X), np.exp(log_gate - np.reshape(
        norm_gate, (-1, 1))), atol=1e-10)


def _reference_gem(model, X, y, trials, n_iter):
    """A NumPy generalised EM from a fitted model's parameters: responsibilities from
    SciPy densities, one Newton step for GLM experts and the softmax gate (on the
    uncentred design: Newton steps do not depend on the centring)."""
    Z = np.column_stack([np.ones(len(X)), X])
    coef = np.column_stack([model.intercept_, model.coef_]).copy()
    gate = (np.column_stack([model.gate_intercept_, model.gate_coef_]).copy()
            if model.gating == "softmax" else None)
    weights = model.weights_.copy()
    variances = model.covariances_[:, 0, 0].copy() if model.expert == "gaussian" else None
    for _ in range(n_iter):
        eta = Z @ coef.T
        if model.expert == "poisson":
            log_f = poisson.logpmf(y[:, None], np.exp(eta))
        elif model.expert == "binomial":
            log_f = binom.logpmf(y[:, None], trials[:, None], 1 / (1 + np.exp(-eta)))
        else:
            log_f = norm.logpdf(y[:, None], eta, np.sqrt(variances))
        if gate is not None:
            logits = Z @ gate.T
            log_g = logits - logsumexp(logits, axis=1, keepdims=True)
        else:
            log_g = np.log(weights)
        joint = log_g + log_f
        r = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        for k in range(len(coef)):
            if model.expert == "gaussian":
                coef[k] = np.linalg.solve(Z.T @ (r[:, k, None] * Z), Z.T @ (r[:, k] * y))
                variances[k] = r[:, k] @ (y - Z @ coef[k]) ** 2 / r[:, k].sum() + 1e-6
                continue
            if model.expert == "poisson":
                mean = np.exp(eta[:, k])
                curvature = mean
            else:
                p = 1 / (1 + np.exp(-eta[:, k]))
                mean, curvature = trials * p, trials * p * (1 - p)
            gradient = Z.T @ (r[:, k] * (y - mean))
            coef[k] += np.linalg.solve(Z.T @ ((r[:, k] * curvature)[:, None] * Z), gradient)
        weights = r.mean(axis=0)
        if gate is not None:  # Newton for the multinomial logit, component 0 the reference
            g = np.exp(log_g)
            q, k = Z.shape[1], len(coef)
            gradient = ((r - g)[:, 1:].T @ Z).ravel()
            hessian = np.zeros(((k - 1) * q, (k - 1) * q))
            for a in range(1, k):
                for b in range(1, k):
                    c = g[:, a] * ((a == b) - g[:, b])
                    hessian[(a - 1) * q:a * q, (b - 1) * q:b * q] = Z.T @ (c[:, None] * Z)
            gate[1:] += np.linalg.solve(hessian, gradient).reshape(k - 1, q)
    return coef, gate, weights, variances


@pytest.mark.parametrize("expert,gating", [("poisson", "constant"), ("binomial", "constant"),
                                           ("gaussian", "softmax"), ("poisson", "softmax")])
def test_generalised_em_equals_a_numpy_reference(expert, gating):
    X, y, trials = _glm_data(expert)
    X = X[:, :1]
    options = dict(expert=expert, gating=gating, random_state=0)
    start = _quietly(fastem.MixtureOfExperts(2, max_iter=0, **options), X, y, trials=trials)
    coef, gate, weights, variances = _reference_gem(start, X, y, trials, n_iter=4)
    fitted = _quietly(fastem.MixtureOfExperts(2, max_iter=4, tol=0.0, **options), X, y,
                      trials=trials)
    assert np.all(np.diff(fitted.lower_bounds_) > 0)  # no halving in these steps
    np.testing.assert_allclose(np.column_stack([fitted.intercept_, fitted.coef_]), coef,
                               rtol=1e-8, atol=1e-10)
    if gate is not None:
        np.testing.assert_allclose(np.column_stack([fitted.gate_intercept_, fitted.gate_coef_]),
                                   gate, rtol=1e-8, atol=1e-10)
    else:
        np.testing.assert_allclose(fitted.weights_, weights, rtol=1e-10)
    if variances is not None:
        np.testing.assert_allclose(fitted.covariances_[:, 0, 0], variances, rtol=1e-8)


def test_gaussian_gate_equals_a_numpy_em():
    X, y, _ = _glm_data("gaussian", n=1_500)
    start = _quietly(fastem.MixtureOfExperts(2, gating="gaussian", gating_columns=[0],
                                             expert_columns=[0], random_state=0, max_iter=0),
                     X, y)
    Z = np.column_stack([np.ones(len(X)), X[:, 0]])
    u = X[:, :1]
    coef = np.column_stack([start.intercept_, start.coef_])
    variances = start.covariances_[:, 0, 0].copy()
    weights, means, covs = start.weights_.copy(), start.gate_means_.copy(), \
        start.gate_covariances_.copy()
    for _ in range(5):
        joint = np.column_stack([
            np.log(weights[k]) + multivariate_normal(means[k], covs[k]).logpdf(u)
            + norm.logpdf(y, Z @ coef[k], np.sqrt(variances[k])) for k in range(2)])
        r = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        for k in range(2):
            coef[k] = np.linalg.solve(Z.T @ (r[:, k, None] * Z), Z.T @ (r[:, k] * y))
            variances[k] = r[:, k] @ (y - Z @ coef[k]) ** 2 / r[:, k].sum() + 1e-6
            means[k] = r[:, k] @ u / r[:, k].sum()
            d = u - means[k]
            covs[k] = (r[:, k, None] * d).T @ d / r[:, k].sum() + 1e-6
        weights = r.mean(axis=0)
    fitted = _quietly(fastem.MixtureOfExperts(2, gating="gaussian", gating_columns=[0],
                                              expert_columns=[0], random_state=0, max_iter=5,
                                              tol=0.0), X, y)
    np.testing.assert_allclose(np.column_stack([fitted.intercept_, fitted.coef_]), coef,
                               rtol=1e-8)
    np.testing.assert_allclose(fitted.gate_means_, means, rtol=1e-8)
    np.testing.assert_allclose(fitted.gate_covariances_, covs, rtol=1e-8)
    np.testing.assert_allclose(fitted.weights_, weights, rtol=1e-8)


@pytest.mark.parametrize("expert,gating", COMBINATIONS)
def test_objective_monotone_and_thread_invariant_for_every_combination(expert, gating):
    X, y, trials = _glm_data(expert, n=3_000)
    options = dict(expert=expert, gating=gating, random_state=1, max_iter=30, tol=0.0,
                   init_params="random")
    with fastem.threads(1):
        one = _quietly(fastem.MixtureOfExperts(3, **options), X, y, trials=trials)
    with fastem.threads(2):
        two = _quietly(fastem.MixtureOfExperts(3, **options), X, y, trials=trials)
    assert np.all(np.diff(one.lower_bounds_) >= -1e-12 * np.abs(one.lower_bounds_[1:]))
    assert one.lower_bounds_ == two.lower_bounds_
    np.testing.assert_array_equal(one.coef_, two.coef_)
    fast = _quietly(fastem.MixtureOfExperts(3, acceleration="squarem", **options), X, y,
                    trials=trials)
    assert np.all(np.diff(fast.lower_bounds_) >= -1e-12 * np.abs(fast.lower_bounds_[1:]))


@pytest.mark.parametrize("acceleration", [None, "squarem"])
def test_an_overshooting_newton_step_is_halved(acceleration):
    X, y, _ = _glm_data("poisson")
    model = _quietly(fastem.MixtureOfExperts(2, expert="poisson", random_state=0, max_iter=3),
                     X, y)
    model.intercept_ = model.intercept_ - 6.0  # far below the data: Newton overshoots
    model._validate_loaded()
    _quietly(model.set_params(warm_start=True, max_iter=30, tol=0.0,
                              acceleration=acceleration), X, y)
    history = np.asarray(model.lower_bounds_)
    assert np.all(np.diff(history) >= 0)
    assert model.n_iter_ > len(history)  # rejected (halved) passes happened


def test_glm_statistics_add_over_blocks():
    X, y, trials = _glm_data("binomial", n=3_000)
    model = ExpertMixtureModel(2, 3, 1, family="binomial", gating="softmax", n_gate=2)
    data = np.column_stack([np.ones(len(X)), X - X.mean(axis=0), np.ones(len(X)),
                            X[:, 0] - 5, y, trials])
    params = model.initialize(Block(data), np.random.RandomState(0))
    whole = pass_stats(model, params, [Block(data)])
    parts = pass_stats(model, params, [Block(data[:1_024]), Block(data[1_024:])])
    np.testing.assert_array_equal(whole.flat, parts.flat)


@pytest.mark.parametrize("expert,gating,kwargs,message", [
    ("poisson", "constant", dict(y=-np.ones(30)), "non-negative counts"),
    ("binomial", "constant", dict(y=np.full(30, 3.0), trials=np.full(30, 2.0)),
     "between 0 and trials"),
    ("binomial", "constant", dict(y=np.ones(30), trials=np.ones(29)), "trials"),
    ("gaussian", "constant", dict(trials=np.ones(30)), "only for binomial"),
    ("poisson", "constant", dict(y=np.ones((30, 2))), "one output"),
    ("binomial", "constant", dict(trials=np.r_[np.nan, np.ones(29)]), "trials"),
    ("gaussian", "softmax", dict(gating_columns=[5]), "gating_columns"),
])
def test_glm_bad_input_is_refused_by_name(expert, gating, kwargs, message):
    X = np.random.RandomState(0).normal(size=(30, 2))
    fit = dict(y=np.ones(30)) | {k: v for k, v in kwargs.items() if k in ("y", "trials")}
    options = {k: v for k, v in kwargs.items() if k not in ("y", "trials")}
    with pytest.raises(ValueError, match=message):
        fastem.MixtureOfExperts(2, expert=expert, gating=gating, **options).fit(X, **fit)


@pytest.mark.parametrize("expert,gating", COMBINATIONS)
def test_save_load_round_trip(tmp_path, expert, gating):
    X, y, trials = _glm_data(expert, n=500)
    model = _quietly(fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                             max_iter=10), X, y, trials=trials)
    model.save(tmp_path / "moe.npz")
    loaded = fastem.load(tmp_path / "moe.npz")
    np.testing.assert_allclose(loaded.score_samples(X, y, trials=trials),
                               model.score_samples(X, y, trials=trials), rtol=1e-10)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-10)
    np.testing.assert_allclose(loaded.gate_proba(X), model.gate_proba(X), atol=1e-12)


@pytest.mark.parametrize("expert,gating,count", [
    ("gaussian", "constant", 2 * 3 + 2 + 1), ("poisson", "softmax", 2 * 3 + 3),
    ("binomial", "gaussian", 2 * 3 + 1 + 2 * 2 + 2 * 3)])
def test_parameter_counts_for_bic(expert, gating, count):
    X, y, trials = _glm_data(expert, n=400)
    model = _quietly(fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                             max_iter=5), X, y, trials=trials)
    log_l = model.score_samples(X, y, trials=trials).sum()
    assert model.bic(X, y, trials=trials) == pytest.approx(-2 * log_l + count * np.log(400))
    assert model.aic(X, y, trials=trials) == pytest.approx(-2 * log_l + 2 * count)


@pytest.mark.parametrize("expert", ["poisson", "binomial"])
def test_samples_average_to_predict(expert):
    X, y, trials = _glm_data(expert, n=300)
    model = _quietly(fastem.MixtureOfExperts(2, expert=expert, gating="softmax",
                                             random_state=0, max_iter=10), X, y, trials=trials)
    rows = np.repeat(X[:3], 20_000, axis=0)
    reps = None if trials is None else np.repeat(trials[:3], 20_000)
    draws, _ = model.sample(rows, trials=reps, random_state=0)
    means = draws.reshape(3, 20_000).mean(axis=1)
    np.testing.assert_allclose(means, model.predict(X[:3], trials=None if trials is None
                                                    else trials[:3]), rtol=0.03)


# -- online EM (partial_fit) -------------------------------------------------------------
@pytest.mark.parametrize("expert,gating", COMBINATIONS)
def test_partial_fit_after_fit_is_one_em_iteration(expert, gating):
    X, y, trials = _glm_data(expert, n=1_000)
    fitted = _quietly(fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                              max_iter=5), X, y, trials=trials)
    online = copy.deepcopy(fitted).partial_fit(X, y, trials=trials)
    warm = _quietly(fitted.set_params(warm_start=True, max_iter=1), X, y, trials=trials)
    np.testing.assert_allclose(online.coef_, warm.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(online.intercept_, warm.intercept_, rtol=1e-12, atol=1e-14)
    if gating == "softmax":
        np.testing.assert_allclose(online.gate_coef_, warm.gate_coef_, rtol=1e-12, atol=1e-14)
    assert online.n_iter_ == 1 and online.lower_bounds_ == [warm.lower_bounds_[-1]]


def _newton_poisson(Z, y, beta):
    """Gradient and negative Hessian of a Poisson GLM's log-likelihood at beta."""
    mean = np.exp(Z @ beta)
    return Z.T @ (y - mean), (Z * mean[:, None]).T @ Z


def test_online_newton_adds_the_batches_quadratic_models():
    """Online EM's statistics for a GLM are each batch's quadratic model about the
    coefficients it was evaluated at (IRLS's working response): after fitting on C,
    batch A moves to one Newton step on A, and batch B (step 1/2) to
    beta1 + (H_A(beta_C) + H_B(beta1))^-1 g_B(beta1), one Newton step on A and B
    together. Stale gradients would give a different point."""
    X, y, _ = _glm_data("poisson", n=3_000, seed=7)
    X = X - X.mean(axis=0)  # the model keeps the centring of the fit on C
    parts = np.array_split(np.arange(3_000), 3)
    (c, a, b) = parts
    model = fastem.MixtureOfExperts(1, expert="poisson", max_iter=200, tol=1e-12,
                                    learning_decay=1.0, learning_offset=1.0)
    model.fit(X[c], y[c])
    Z = np.column_stack([np.ones(3_000), X])
    beta_c = np.concatenate([[model.intercept_[0] + model.coef_[0] @ model._x_mean],
                             model.coef_[0]])
    Zc = Z - np.concatenate([[0.0], model._x_mean])  # the kernel's centred design
    beta_c_centred = beta_c.copy()
    beta_c_centred[0] = model._params.coef[0, 0, 0]
    g_a, h_a = _newton_poisson(Zc[a], y[a], beta_c_centred)
    beta1 = beta_c_centred + np.linalg.solve(h_a, g_a)
    g_b, h_b = _newton_poisson(Zc[b], y[b], beta1)
    beta2 = beta1 + np.linalg.solve(h_a + h_b, g_b)
    model.partial_fit(X[a], y[a])
    np.testing.assert_allclose(model._params.coef[0, :, 0], beta1, rtol=1e-10)
    model.partial_fit(X[b], y[b])
    np.testing.assert_allclose(model._params.coef[0, :, 0], beta2, rtol=1e-10)


@pytest.mark.parametrize("expert,gating", [("gaussian", "constant"), ("gaussian", "gaussian"),
                                           ("poisson", "softmax")])
def test_streaming_batches_approach_the_batch_fit(expert, gating):
    """Stepwise EM moves a fraction of an EM step per batch: on data where batch EM
    converges in few iterations, 4 passes of 20 batches come close to its optimum."""
    if expert == "gaussian":
        X, y, _ = _two_lines(n=20_000)
        X = np.column_stack([X, np.random.RandomState(1).normal(size=len(X))])
    else:
        X, y, _ = _glm_data(expert, n=20_000, seed=3)
    batch = _quietly(fastem.MixtureOfExperts(2, expert=expert, gating=gating, n_init=3,
                                             random_state=0, max_iter=500, tol=1e-9), X, y)
    online = fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0)
    rng = np.random.RandomState(0)
    for _ in range(4):
        order = rng.permutation(len(X))
        for rows in np.array_split(order, 20):
            online.partial_fit(X[rows], y[rows])
    assert online.score(X, y) == pytest.approx(batch.score(X, y), abs=0.01)
    assert online.n_iter_ == 80 and len(online.lower_bounds_) == 80


def test_partial_fit_refuses_batches_unlike_the_first():
    X, y, _ = _two_lines(n=300)
    model = fastem.MixtureOfExperts(2, random_state=0).partial_fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features"):
        model.partial_fit(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match="y"):
        model.partial_fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        fastem.MixtureOfExperts(3).partial_fit(X[:2], y[:2])
    before = model.coef_.copy()
    with pytest.raises(ValueError, match="sample_weight"):
        model.partial_fit(X, y, sample_weight=-np.ones(len(y)))
    np.testing.assert_array_equal(model.coef_, before)  # a refused batch changes nothing


def test_row_methods_are_invariant_to_order_and_subsets():
    """What scikit-learn's check_methods_*_invariance would test, with y."""
    X, y, trials = _glm_data("binomial", n=500)
    model = _quietly(fastem.MixtureOfExperts(2, expert="binomial", gating="softmax",
                                             random_state=0, max_iter=20), X, y,
                     trials=trials)
    order = np.random.RandomState(0).permutation(len(y))
    for method in ("score_samples", "predict_proba"):
        whole = getattr(model, method)(X, y, trials=trials)
        shuffled = getattr(model, method)(X[order], y[order], trials=trials[order])
        np.testing.assert_allclose(shuffled, whole[order], rtol=1e-12, err_msg=method)
        part = getattr(model, method)(X[:37], y[:37], trials=trials[:37])
        np.testing.assert_allclose(part, whole[:37], rtol=1e-12, err_msg=method)
    np.testing.assert_allclose(model.predict_proba(X), model.gate_proba(X))


def test_gaussian_gate_keeps_the_digits_of_a_tight_component_far_from_the_centre():
    """The gate's moments are taken about each component's current mean: raw moments
    about the global centre would cancel (1e6)^2 against 1e-4 and lose everything."""
    rng = np.random.RandomState(0)
    n = 4_000
    component = rng.randint(0, 2, size=n)
    u = np.where(component == 0, rng.normal(scale=0.01, size=n),
                 1e6 + rng.normal(scale=1.0, size=n))
    y = np.where(component == 0, 1.0 + 2.0 * u, -3.0) + rng.normal(scale=0.1, size=n)
    X = u[:, None]
    model = _quietly(fastem.MixtureOfExperts(2, gating="gaussian", expert_columns=[0],
                                             gating_columns=[0], init_params="kmeans",
                                             reg_covar=0.0, random_state=0, tol=1e-10),
                     X, y)
    order = np.argsort(model.gate_means_[:, 0])
    for k, rows in enumerate([component == 0, component == 1]):
        spread = np.var(u[rows])  # the responsibilities are 0/1 to round-off here
        assert model.gate_covariances_[order[k], 0, 0] == pytest.approx(spread, rel=1e-6)
        assert model.gate_means_[order[k], 0] == pytest.approx(u[rows].mean(), abs=1e-9 *
                                                               max(1.0, abs(u[rows].mean())))
