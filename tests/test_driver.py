"""fastem.engine.driver: one fit driver and one online driver for every estimator (the same
callback rule, monitor_, record of the run, warning and online bookkeeping)."""

import json
import warnings

import numpy as np
import pytest
from helpers import blobs

import fastem
from fastem import ConvergenceWarning
from fastem.engine import ConvergenceMonitor


def _data(kind, seed=0):
    X = blobs(n=240, n_features=2, n_components=2, seed=seed)
    if kind == "moe":
        return (X[:, :1], X[:, 1])
    if kind == "hmm":
        return (X, [120, 120])
    if kind == "exp":
        return (np.abs(X),)
    return (X,)


def _estimator(kind, **options):
    make = {"gmm": lambda **o: fastem.GaussianMixture(2, random_state=0, **o),
            "bgm": lambda **o: fastem.BayesianGaussianMixture(n_components=2, random_state=0,
                                                              **o),
            "hmm": lambda **o: fastem.GaussianHMM(2, random_state=0, **o),
            "moe": lambda **o: fastem.MixtureOfExperts(2, random_state=0, **o),
            "exp": lambda **o: fastem.ExponentialMixture(2, random_state=0, **o)}[kind]
    return make(**options)


def _parameters(model):
    for name in ("means_", "coef_", "rates_"):
        if hasattr(model, name):
            return getattr(model, name)
    raise AssertionError(type(model).__name__)


KINDS = ["gmm", "bgm", "hmm", "moe", "exp"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_callback_observes_the_current_parameters_and_leaves_no_trace(kind):
    data = _data(kind)
    seen = []

    def callback(iteration, objective, model):
        seen.append(np.array(_parameters(model)))
        model.scribbled_ = iteration  # what a callback writes does not outlive its call
        return iteration == 3

    limit = {"n_iter": 50} if kind == "hmm" else {"max_iter": 50}
    model = _estimator(kind, callback=callback, tol=0.0, **limit).fit(*data)
    assert len(seen) == 3 and not hasattr(model, "scribbled_")
    np.testing.assert_array_equal(seen[-1], _parameters(model))
    assert model.monitor_.iter == 3 and not model.monitor_.converged
    assert not model.monitor_.reached_max_iter  # the callback stopped it


@pytest.mark.parametrize("kind", KINDS)
def test_every_fit_keeps_a_monitor_that_agrees_with_its_record(kind):
    model = _estimator(kind).fit(*_data(kind))
    monitor = model.monitor_
    assert isinstance(monitor, ConvergenceMonitor)
    assert monitor.tol == model.tol and not monitor.decreased
    if kind == "hmm":
        assert monitor.n_iter == model.n_iter and not hasattr(model, "lower_bounds_")
        return
    assert monitor.history == model.lower_bounds_
    assert (monitor.iter, monitor.converged, monitor.n_iter) == (model.n_iter_,
                                                                 model.converged_,
                                                                 model.max_iter)


@pytest.mark.parametrize("kind", ["gmm", "bgm", "moe", "exp"])
def test_the_convergence_warning_names_the_callers_line(kind):
    with pytest.warns(ConvergenceWarning, match="did not converge") as record:
        _estimator(kind, max_iter=1).fit(*_data(kind))
    assert record[0].filename == __file__


def test_hmms_do_not_warn_when_they_stop_at_n_iter():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _estimator("hmm", n_iter=1, tol=0.0).fit(*_data("hmm"))
    assert model.monitor_.reached_max_iter


@pytest.mark.parametrize("kind", ["gmm", "moe"])
def test_a_model_file_without_a_monitor_still_loads(tmp_path, kind):
    # Files of the previous release: GaussianMixture and MixtureOfExperts had no monitor_.
    model = _estimator(kind).fit(*_data(kind))
    model.save(tmp_path / "with.npz")
    assert fastem.load(tmp_path / "with.npz").monitor_.history == model.monitor_.history
    del model.monitor_
    model.save(tmp_path / "without.npz")
    loaded = fastem.load(tmp_path / "without.npz")
    assert not hasattr(loaded, "monitor_")
    np.testing.assert_array_equal(loaded.weights_, model.weights_)


def test_a_monitor_of_numpy_scalars_is_saved(tmp_path):
    X = _data("gmm")[0]
    model = fastem.GaussianMixture(2, max_iter=np.int64(20), verbose=np.int64(0),
                                   random_state=0).fit(X)
    model.save(tmp_path / "m.npz")
    assert fastem.load(tmp_path / "m.npz").monitor_.n_iter == 20
    json.dumps(model.monitor_._saved())


@pytest.mark.parametrize("kind", ["gmm", "hmm", "moe", "exp"])
def test_partial_fit_continues_a_fit_and_leaves_its_monitor(kind):
    data = _data(kind)
    model = _estimator(kind).fit(*data)
    monitor = model.monitor_
    model.partial_fit(*data)
    model.partial_fit(*data)
    assert model.monitor_ is monitor  # monitor_ describes the last fit
    if kind != "hmm":
        assert model.n_iter_ == 2 and not model.converged_ and len(model.lower_bounds_) == 2
        assert model.lower_bounds_[-1] == model.lower_bound_
    model.fit(*data)  # a fit starts online EM afresh
    assert "_online" not in vars(model)
    model.partial_fit(*data)
    if kind != "hmm":
        assert model.n_iter_ == 1 and len(model.lower_bounds_) == 1


@pytest.mark.parametrize("kind", ["gmm", "hmm", "moe"])
def test_a_callback_that_is_not_callable_is_a_type_error(kind):
    model = _estimator(kind, callback=3)
    with pytest.raises(TypeError, match="callback"):
        model.fit(*_data(kind))
    assert not hasattr(model, "monitor_")
