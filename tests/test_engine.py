"""The EM driver's contract, on scripted toy models and on GaussianMixture."""

import numpy as np
import pytest
from helpers import blobs

import fastem
from fastem.engine import ModelBase, run_em


class Scripted(ModelBase):
    """A model whose objective follows a script; params count E-steps."""

    def __init__(self, scripts):
        self.scripts = scripts  # one list of objectives per restart
        self.restart = -1

    def initialize(self, block, random_state):
        self.restart += 1
        return (self.restart, 0)

    def objective(self, stats, params):
        restart, step = params
        return self.scripts[restart][step]

    def m_step(self, stats, params):
        return (params[0], params[1] + 1)


class NoData:
    """A backend without data: the statistics are the parameters themselves."""

    def initialization_block(self):
        return None

    def stats(self, model, params):
        return params


def _run(model, **kwargs):
    options = dict(n_init=len(model.scripts), max_iter=10, tol=1e-3,
                   random_state=np.random.RandomState(0))
    options.update(kwargs)
    return run_em(model, NoData(), **options)


def test_stops_when_change_below_tol_and_keeps_best_restart():
    scripts = [[-5.0, -4.0, -3.9995, -3.0], [-2.0, -1.0, -0.9, -0.8999, -0.5]]
    run = _run(Scripted(scripts))
    assert run.converged and run.n_iter == 4
    assert run.objective == -0.8999 and run.history == [-2.0, -1.0, -0.9, -0.8999]
    assert run.params == (1, 4)


def test_max_iter_and_not_converged():
    run = _run(Scripted([[float(i) for i in range(20)]]), max_iter=5)
    assert not run.converged and run.n_iter == 5 and run.history == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_max_iter_zero_returns_the_initialisation():
    run = _run(Scripted([[0.0], [1.0]]), max_iter=0)
    assert run.params == (1, 0) and run.objective == -np.inf and run.n_iter == 0


def test_callback_can_stop_a_run():
    seen = []

    def callback(iteration, objective, params):
        seen.append((iteration, objective))
        return iteration == 3

    run = _run(Scripted([[float(i) for i in range(20)]]), callback=callback)
    assert run.stopped_by_callback and run.n_iter == 3 and seen[-1] == (3, 2.0)


def test_monotone_model_reports_a_decrease():
    model = Scripted([[-3.0, -2.0, -2.5, -2.5]])
    model.monotone = True
    with pytest.warns(RuntimeWarning, match="decreased"):
        _run(model)


def test_verbose_output(capsys):
    _run(Scripted([[0.0, 1.0, 1.0]]), verbose=1, verbose_interval=1)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 2" in out and "converged" in out


def test_warm_start_continues_where_it_left_off():
    X = blobs(n=900, seed=4)
    one = fastem.GaussianMixture(3, random_state=0, max_iter=10, tol=0.0).fit(X)
    warm = fastem.GaussianMixture(3, random_state=0, max_iter=4, tol=0.0, warm_start=True)
    warm.fit(X)
    warm.set_params(max_iter=6).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(warm, name), getattr(one, name))
    assert warm.lower_bounds_ == one.lower_bounds_[4:]


def test_restarts_keep_the_best_objective():
    X = blobs(n=600, n_components=4, seed=1)
    singles = []
    rng = np.random.RandomState(3)
    for _ in range(4):
        singles.append(fastem.GaussianMixture(4, init_params="random", random_state=rng).fit(X))
    best = fastem.GaussianMixture(4, init_params="random", n_init=4, random_state=3).fit(X)
    assert best.lower_bound_ == max(s.lower_bound_ for s in singles)


def test_estimator_callback_sees_current_parameters_and_can_stop():
    X = blobs(n=600, seed=2)
    seen = []

    def callback(iteration, objective, model):
        seen.append((iteration, objective, model.means_.copy()))
        return iteration >= 3

    model = fastem.GaussianMixture(3, random_state=0, tol=0.0, callback=callback).fit(X)
    assert model.n_iter_ == 3 and len(seen) == 3
    assert [s[1] for s in seen] == model.lower_bounds_
    np.testing.assert_array_equal(seen[-1][2], model.means_)


def test_fit_predict_equals_fit_then_predict():
    X = blobs(n=500, seed=5)
    labels = fastem.GaussianMixture(3, random_state=0, max_iter=2).fit_predict(X)
    model = fastem.GaussianMixture(3, random_state=0, max_iter=2).fit(X)
    np.testing.assert_array_equal(labels, model.predict(X))


def test_max_iter_zero_with_given_parameters():
    X = blobs(n=300, n_features=2, seed=6)
    precisions = np.array([np.eye(2) * 2.0, np.eye(2) * 0.5])
    model = fastem.GaussianMixture(2, max_iter=0, weights_init=[0.3, 0.7],
                                   means_init=[[0.0, 0.0], [1.0, 1.0]],
                                   precisions_init=precisions).fit(X)
    assert model.n_iter_ == 0 and not model.converged_ and model.lower_bound_ == -np.inf
    np.testing.assert_allclose(model.covariances_, np.linalg.inv(precisions))
    np.testing.assert_allclose(model.precisions_, precisions)
    np.testing.assert_allclose(model.weights_, [0.3, 0.7])


def test_convergence_warning_when_not_converged():
    X = blobs(n=300, seed=7)
    with pytest.warns(fastem.ConvergenceWarning, match="did not converge"):
        fastem.GaussianMixture(3, max_iter=1, tol=0.0, random_state=0).fit(X)


def test_warm_start_after_changing_the_covariance_type_reinitialises():
    X = blobs(n=400, seed=8)
    model = fastem.GaussianMixture(3, warm_start=True, random_state=0).fit(X)
    model.set_params(covariance_type="diag").fit(X)
    fresh = fastem.GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    assert model.precisions_cholesky_.shape == (3, 3)
    np.testing.assert_array_equal(model.means_, fresh.means_)
