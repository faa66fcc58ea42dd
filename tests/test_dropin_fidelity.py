"""Behaviours users of hmmlearn 0.3 and scikit-learn 1.9 rely on (issue 13, part 1), mirroring
their own tests where they have one."""

import logging
import re
import warnings

import numpy as np
import pytest

import fastem
from fastem.exceptions import ConvergenceWarning


def _gaussian_data(seed=0, n=60):
    return np.random.RandomState(seed).normal(size=(n, 2))


def test_negative_infinite_tol_runs_every_iteration():
    # hmmlearn's way to force n_iter iterations (its tests use tol=-np.inf).
    model = fastem.GaussianHMM(2, n_iter=7, tol=-np.inf, random_state=0).fit(_gaussian_data())
    assert model.monitor_.iter == 7 and not model.monitor_.converged
    with pytest.raises(ValueError, match="tol"):
        fastem.GaussianHMM(2, tol=np.nan).fit(_gaussian_data())


def test_categorical_fit_sets_n_features_from_the_data():
    X = np.array([[0], [1], [2], [3], [1], [0]] * 5)
    model = fastem.CategoricalHMM(2, random_state=0).fit(X)
    assert model.n_features == 4 == model.emissionprob_.shape[1]
    # As in hmmlearn, a symbol beyond the alphabet is then refused.
    with pytest.raises(ValueError, match="n_features"):
        model.score(np.array([[4]]))


@pytest.mark.parametrize("shape", [(2,), (2, 1), (2, 1, 1)])
def test_spherical_covariances_in_the_shapes_hmmlearn_accepts(shape):
    model = fastem.GaussianHMM(2, "spherical", init_params="", n_iter=2)
    model.startprob_ = np.array([0.5, 0.5])
    model.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    model.means_ = np.array([[0.0, 0.0], [3.0, 3.0]])
    model.covars_ = np.full(shape, 1.5)
    X, _ = model.sample(50, random_state=0)
    reference = -0.5 * (((X[:, None, :] - model.means_[None]) ** 2).sum(-1) / 1.5
                        + 2 * np.log(2 * np.pi * 1.5))
    assert np.isfinite(model.score(X))
    np.testing.assert_allclose(model.covars_, np.tile(1.5 * np.eye(2), (2, 1, 1)))
    # The score is a proper log-likelihood: larger than the best single path's joint.
    assert model.score(X) >= model.decode(X)[0]
    assert reference.shape == (50, 2)
    model.fit(X)


def test_full_covariance_states_with_too_few_points_do_not_stop_the_fit():
    X = np.c_[np.full(9, 715.0), 65.0 * np.arange(9, 0, -1),
              np.random.RandomState(0).randn(9, 2) * [4, 10]]
    model = fastem.GaussianHMM(3, "full", random_state=0).fit(X)
    assert np.isfinite(model.score(X))
    failures = 0
    for seed in range(100):
        data = np.random.RandomState(seed).normal(size=(12, 3))
        try:
            fastem.GaussianHMM(3, "full", random_state=seed).fit(data, [3, 4, 5])
        except ValueError:
            failures += 1
    assert failures == 0


def test_multinomial_sampling_needs_one_trial_count():
    model = fastem.MultinomialHMM(2, n_trials=5, random_state=0).fit(
        np.random.RandomState(0).multinomial(5, [0.2, 0.3, 0.5], size=40))
    X, _ = model.sample(10, random_state=0)
    assert np.all(X.sum(axis=1) == 5)
    for trials in (None, [5] * 40):
        model.n_trials = trials
        with pytest.raises(ValueError, match="n_trials"):
            model.sample(10)


def test_empty_emission_probabilities_are_a_value_error():
    model = fastem.CategoricalHMM(2, random_state=0).fit(np.array([[0], [1], [2], [1]] * 5))
    model.emissionprob_ = []
    with pytest.raises(ValueError, match="emissionprob_"):
        model.score(np.array([[0], [1]]))


def test_fit_logs_like_hmmlearn(caplog):
    model = fastem.GaussianHMM(2, random_state=0, n_iter=2)
    model.startprob_ = np.array([0.5, 0.5])
    with caplog.at_level(logging.WARNING, logger="fastem.hmm"):
        model.fit(_gaussian_data(n=3))
    messages = [record.getMessage() for record in caplog.records]
    assert any("'startprob_' attribute is set" in m and "'s'" in m for m in messages)
    assert any("free scalar parameters with only 6 data points" in m for m in messages)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastem.hmm"):
        fastem.GaussianHMM(2, random_state=0, n_iter=2).fit(_gaussian_data(n=200))
    assert not caplog.records


def test_float32_weights_within_float32_precision_are_accepted():
    # scikit-learn's _check_weights: atol 1e-6 for float32, 1e-8 for float64.
    X = np.random.RandomState(0).normal(size=(100, 2))
    weights = np.array([0.1, 0.2, 0.7000005], dtype=np.float32)
    model = fastem.GaussianMixture(3, weights_init=weights, max_iter=2, random_state=0).fit(X)
    assert np.isclose(model.weights_.sum(), 1.0)
    with pytest.raises(ValueError, match="normalized"):
        fastem.GaussianMixture(3, weights_init=weights.astype(np.float64)).fit(X)


def test_sample_weight_routes_through_pipelines_and_searches():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from fastem._base import _UNCHANGED

    X = np.random.RandomState(0).normal(size=(200, 2))
    X[:100] += 4.0
    w = np.random.RandomState(1).randint(0, 3, 200).astype(float)
    direct = fastem.GaussianMixture(2, random_state=0).fit(X, sample_weight=w)
    with sklearn.config_context(enable_metadata_routing=True):
        model = fastem.GaussianMixture(2, random_state=0).set_fit_request(sample_weight=True)
        pipe = Pipeline([("gm", model)]).fit(X, sample_weight=w)
        np.testing.assert_allclose(pipe[-1].means_, direct.means_)
        copy = clone(pipe).fit(X, sample_weight=w)  # the request survives clone
        np.testing.assert_allclose(copy[-1].means_, direct.means_)
        with pytest.raises(Exception, match="sample_weight"):
            Pipeline([("gm", fastem.GaussianMixture(2))]).fit(X, sample_weight=w)
        search = GridSearchCV(fastem.GaussianMixture(random_state=0).set_fit_request(
            sample_weight=True), {"n_components": [1, 2]}, cv=3).fit(X, sample_weight=w)
        assert search.best_params_ == {"n_components": 2}
    assert fastem.GaussianMixture(2).set_fit_request(sample_weight=_UNCHANGED)
    with pytest.raises(TypeError, match="sample_weight"):
        fastem.EMImputer().set_fit_request(sample_weight=True)


@pytest.mark.parametrize("name", ["GaussianMixture", "EMImputer", "GaussianHMM", "GMMHMM",
                                  "CategoricalHMM", "PoissonHMM", "MultinomialHMM"])
def test_every_estimator_documents_every_parameter(name):
    import re

    cls = getattr(fastem, name)
    section = cls.__doc__.split("Parameters\n    ----------\n", 1)[1]
    section = section.split("\n    Attributes\n", 1)[0]
    documented = set()
    for line in section.splitlines():
        match = re.match(r"    ([a-z_][a-z0-9_, ]*?)( :|$)", line)
        if match:
            documented.update(part.strip() for part in match.group(1).split(","))
    missing = sorted(set(cls._parameter_names()) - documented)
    assert not missing, f"{name} does not document {missing}"


# The start of scikit-learn's test_gaussian_mixture_setting_best_params (its issue
# 18216): two components collapse onto single points after one iteration.
_COLLAPSING_MEANS = np.array([
    [0.670637869618158, 0.21038256107384043, 0.12892629765485303],
    [0.09394051075844147, 0.5759464955561779, 0.929296197576212],
    [0.5033230372781258, 0.9569852381759425, 0.08654043447295741],
    [0.18578301420435747, 0.5531158970919143, 0.19388943970532435],
    [0.4548589928173794, 0.35182513658825276, 0.568146063202464],
    [0.609279894978321, 0.7929063819678847, 0.9620097270828052]])
_COLLAPSING_PRECISIONS = np.array([999999.999604483, 999999.9990869573, 553.7603944542167,
                                   204.78596008931834, 15.867423501783637, 85.4595728389735])
_COLLAPSING_WEIGHTS = [0.03333333333333341, 0.03333333333333341, 0.06666666666666674,
                       0.06666666666666674, 0.7000000000000001, 0.10000000000000007]


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_components_on_one_point_with_reg_covar_zero_are_degenerate(covariance_type):
    # Two components collapse onto single points after one iteration: their likelihood
    # is unbounded, so this is the degenerate-component error (scikit-learn's own test
    # survives only because its round-off leaves a variance of 1e-32 above zero).
    rnd = np.random.RandomState(0)
    X = rnd.uniform(size=(30, 3))
    precisions = (_COLLAPSING_PRECISIONS if covariance_type == "spherical"
                  else np.repeat(_COLLAPSING_PRECISIONS[:, None], 3, axis=1))
    model = fastem.GaussianMixture(6, covariance_type=covariance_type, reg_covar=0,
                                   means_init=_COLLAPSING_MEANS, weights_init=_COLLAPSING_WEIGHTS,
                                   precisions_init=precisions, random_state=rnd, max_iter=1)
    with pytest.raises(ValueError, match=r"component [01] .*coincide.*\(currently 0\.0\)"):
        model.fit(X)
    assert not hasattr(model, "means_")
    # Any regularisation keeps every component, and the collapsed ones at reg_covar.
    model.set_params(reg_covar=1e-9, max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    variances = np.reshape(model.covariances_, (6, -1))
    assert np.all(np.isfinite(variances)) and np.all(variances[:2] < 1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data", "random"])
def test_collapsed_data_with_reg_covar_zero_raise_for_every_start(covariance_type, init_params):
    # Three distinct rows, each repeated 50 times: scikit-learn raises from its default
    # start; fastem must too from every start whose components collapse onto the rows,
    # and keep no part of the failed fit. (A tied covariance spans all three rows, so a
    # start that does not separate them can end at a finite optimum.)
    X = np.repeat(np.array([[1.0, 2.0], [3.0, 7.0], [-4.0, 0.5]]), 50, axis=0)
    model = fastem.GaussianMixture(3, covariance_type=covariance_type, reg_covar=0,
                                   init_params=init_params, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(X)
        except ValueError as error:
            assert re.search(r"(component \d|tied).*coincide.*reg_covar", str(error))
            assert not hasattr(model, "n_features_in_")
            return
    assert covariance_type == "tied" and init_params == "random"
    assert np.linalg.eigvalsh(model.covariances_).min() > 1e-3


def test_round_off_floor_leaves_a_meaningful_tiny_variance_alone():
    # A cluster far from the origin with a spread of 1e-5: shifted moments resolve
    # it, so the floor (at a few ulps of 1e8, squared) must not touch it.
    rng = np.random.RandomState(1)
    X = 1e8 + 1e-5 * rng.normal(size=(400, 2))
    model = fastem.GaussianMixture(1, covariance_type="diag", reg_covar=0.0).fit(X)
    np.testing.assert_allclose(model.covariances_[0], X.var(axis=0), rtol=1e-3)


def test_a_constant_column_is_no_collapse_of_a_spherical_component():
    # The collapse rule applies to the one variance a spherical component has: a column
    # that is constant beside two that vary must fit, as in scikit-learn.
    from sklearn.mixture import GaussianMixture as Reference

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(100, 2)) + c for c in ([0, 0], [8, 8], [-8, 8])])
    X = np.c_[X, np.ones(300)]
    ours = fastem.GaussianMixture(3, covariance_type="spherical", reg_covar=0,
                                  random_state=0).fit(X)
    order = np.argsort(ours.means_[:, 0])
    theirs = Reference(3, covariance_type="spherical", reg_covar=0, random_state=0).fit(X)
    np.testing.assert_allclose(ours.covariances_[order],
                               theirs.covariances_[np.argsort(theirs.means_[:, 0])], rtol=1e-6)
    with pytest.raises(ValueError, match="coincide"):  # a diagonal variance of 0 still is
        fastem.GaussianMixture(3, covariance_type="diag", reg_covar=0, random_state=0).fit(X)
