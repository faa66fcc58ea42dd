"""MixtureOfExperts under bad input, overflow, forged files and pickling (issue 25).

A fit that meets values beyond float64's range raises a ValueError that says what
overflowed and what to do, and leaves the estimator as it was; what returns normally
holds no NaN or inf."""

import pickle

import numpy as np
import pytest

import fastem

EXPERTS = ("gaussian", "poisson", "binomial")
GATES = ("constant", "softmax", "gaussian")


def _data(expert, n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    eta = 0.3 * X[:, 0] + 0.5
    trials = None
    if expert == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif expert == "binomial":
        trials = rng.randint(1, 5, size=n).astype(float)
        y = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    else:
        y = eta + rng.normal(scale=0.5, size=n)
    return X, y, trials


def _fitted_arrays(model):
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and isinstance(value, np.ndarray)}


def _assert_same_model(a, b):
    assert sorted(vars(a)) == sorted(vars(b))
    for name, value in _fitted_arrays(a).items():
        np.testing.assert_array_equal(value, getattr(b, name), err_msg=name)
    assert a.n_iter_ == b.n_iter_ and a.lower_bounds_ == b.lower_bounds_


def _assert_not_linalg(info):
    assert not isinstance(info.value, np.linalg.LinAlgError), repr(info.value)


# -- item 1: overflow in partial_fit and fit ---------------------------------------------
def test_partial_fit_on_an_overflowing_batch_is_refused_and_changes_nothing():
    batches = [_data("poisson", seed=s)[:2] for s in range(4)]
    options = dict(expert="poisson", gating="softmax", random_state=0, max_iter=20)
    hit = fastem.MixtureOfExperts(2, **options)
    clean = fastem.MixtureOfExperts(2, **options)
    for X, y in batches[:2]:
        hit.partial_fit(X, y)
        clean.partial_fit(X, y)
    X, y = batches[2]
    with pytest.raises(ValueError, match="overflowed.*scale X") as info:
        hit.partial_fit(X * 1e300, y)
    _assert_not_linalg(info)
    _assert_same_model(hit, clean)
    # The model is as it was: the next good batch gives what it gives without the bad one.
    hit.partial_fit(*batches[3])
    clean.partial_fit(*batches[3])
    _assert_same_model(hit, clean)
    assert all(np.isfinite(value).all() for value in _fitted_arrays(hit).values())


@pytest.mark.parametrize("expert", EXPERTS)
@pytest.mark.parametrize("gating", ["constant", "softmax"])
def test_fit_on_overflowing_data_is_a_named_value_error(expert, gating):
    X, y, trials = _data(expert)
    model = fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                    max_iter=20)
    with pytest.raises(ValueError, match="overflowed.*scale X") as info:
        model.fit(X * 1e300, y, trials=trials)
    _assert_not_linalg(info)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("y, message", [
    (1e300, "beyond 2\\*\\*53"), (2.0**53 + 2, "beyond 2\\*\\*53"), (2.5, "fractional"),
    (-1.0, "non-negative")])
def test_poisson_y_is_range_checked_as_poisson_hmm_counts(y, message):
    X, counts, _ = _data("poisson")
    bad = counts.copy()
    bad[3] = y
    model = fastem.MixtureOfExperts(2, expert="poisson", random_state=0, max_iter=5)
    with pytest.raises(ValueError, match=f"poisson experts.*{message}"):
        model.fit(X, bad)
    # The rule is PoissonHMM's (one helper): it refuses the same value in the same words.
    hmm_counts = np.where(np.isfinite(bad), bad, 0.0)[:, None]
    with pytest.raises(ValueError, match=message):
        fastem.PoissonHMM(2).fit(hmm_counts)
    model.fit(X, counts)
    with pytest.raises(ValueError, match="poisson experts"):
        model.score_samples(X, bad)


@pytest.mark.parametrize("change, message", [
    (dict(trials=1e300), "trials holds count"), (dict(trials=2.5), "trials .*fractional"),
    (dict(trials=-1.0), "trials must hold non-negative"),
    (dict(y=5.0), "between 0 and trials"), (dict(y=-1.0), "between 0 and trials")])
def test_binomial_y_and_trials_are_range_checked(change, message):
    X, y, trials = _data("binomial")
    y, trials = y.copy(), trials.copy()
    y[0], trials[0] = 1.0, 4.0
    if "trials" in change:
        trials[0] = change["trials"]
    else:
        y[0] = change["y"]
    model = fastem.MixtureOfExperts(2, expert="binomial", random_state=0, max_iter=5)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, trials=trials)


# -- item 2: the Gaussian gate, Gaussian experts and SQUAREM on outliers ---------------------
GAUSSIAN_MIXTURE_ERROR = "ill-defined covariance.*non-finite entries.*reg_covar.*scale the input"


@pytest.mark.parametrize("expert", EXPERTS)
@pytest.mark.parametrize("acceleration", [None, "squarem"])
def test_gaussian_gate_on_an_overflowing_entry_gives_gaussian_mixtures_error(expert,
                                                                           acceleration):
    X, y, trials = _data(expert)
    X[5, 0] = 1e300
    with pytest.raises(ValueError, match=GAUSSIAN_MIXTURE_ERROR):
        fastem.GaussianMixture(2, random_state=0).fit(X)
    model = fastem.MixtureOfExperts(2, expert=expert, gating="gaussian", random_state=0,
                                    max_iter=50, acceleration=acceleration)
    with pytest.raises(ValueError, match=GAUSSIAN_MIXTURE_ERROR) as info:
        model.fit(X, y, trials=trials)
    _assert_not_linalg(info)
    # The same error when only the gate reads the column.
    with pytest.raises(ValueError, match=GAUSSIAN_MIXTURE_ERROR):
        model.set_params(expert_columns=[1]).fit(X, y, trials=trials)


@pytest.mark.parametrize("gating", GATES)
@pytest.mark.parametrize("acceleration", [None, "squarem"])
@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("size", [1e160, 1e300])
def test_gaussian_experts_on_outliers_raise_no_linalg_error(gating, acceleration, where,
                                                            size):
    X, y, _ = _data("gaussian", n=150, seed=1)
    if where == "X":
        X[7, 1] = -size
    else:
        y[:3] = size
    model = fastem.MixtureOfExperts(2, gating=gating, random_state=0, max_iter=30,
                                    acceleration=acceleration)
    with pytest.raises(ValueError, match="overflowed|ill-defined covariance") as info:
        model.fit(X, y)
    _assert_not_linalg(info)


@pytest.mark.parametrize("expert", EXPERTS)
@pytest.mark.parametrize("gating", GATES)
def test_outliers_give_a_named_error_or_a_finite_model(expert, gating):
    """Whatever the size of one outlier in X: a ValueError that is not numpy's, or a fit
    whose every fitted array and output is finite."""
    for size in (1e20, 1e80, 1e150, 1e200):
        X, y, trials = _data(expert, n=150, seed=2)
        X[11, 0] = size
        model = fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                        max_iter=30, acceleration="squarem")
        try:
            model.fit(X, y, trials=trials)
        except ValueError as error:
            assert not isinstance(error, np.linalg.LinAlgError), repr(error)
            assert "overflowed" in str(error) or "ill-defined covariance" in str(error)
            continue
        assert all(np.isfinite(value).all() for value in _fitted_arrays(model).values())
        assert np.isfinite(model.predict(X, trials=trials)).all()
        assert np.isfinite(model.predict_proba(X, y, trials=trials)).all()
        assert not np.isnan(model.score_samples(X, y, trials=trials)).any()


# -- item 14: pickling ---------------------------------------------------------------------
@pytest.mark.parametrize("expert", EXPERTS)
@pytest.mark.parametrize("gating", GATES)
def test_fitted_models_pickle_and_predict_the_same(expert, gating):
    X, y, trials = _data(expert)
    model = fastem.MixtureOfExperts(2, expert=expert, gating=gating, random_state=0,
                                    max_iter=10).fit(X, y, trials=trials)
    copy = pickle.loads(pickle.dumps(model))
    _assert_same_model(model, copy)
    np.testing.assert_array_equal(copy.predict(X, trials=trials),
                                  model.predict(X, trials=trials))
    np.testing.assert_array_equal(copy.score_samples(X, y, trials=trials),
                                  model.score_samples(X, y, trials=trials))
    # The copy carries on as the original does (the gate's statistics recentre).
    for fitted in (model, copy):
        fitted.partial_fit(X[:50], y[:50], trials=None if trials is None else trials[:50])
    _assert_same_model(model, copy)
