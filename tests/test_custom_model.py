"""examples/custom_model.py: a user's own model on the engine, against NumPy."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from fastem.engine import Block, OnlineFitter, fit_model

# Imported by its own name from its directory (as running the script does), so that the
# numba cache it writes is valid for both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
custom = importlib.import_module("custom_model")
sys.path.pop(0)


def _data(seed=0):
    rng = np.random.RandomState(seed)
    return np.concatenate([rng.exponential(1.0, 3000), rng.exponential(6.0, 2000)])


def _numpy_em(x, weights, rates, n_iter):
    """Dense EM for a mixture of exponentials: the independent reference."""
    history = []
    for _ in range(n_iter):
        log_p = np.log(weights) + np.log(rates) - np.outer(x, rates)
        peak = log_p.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(log_p - peak).sum(axis=1))
        history.append(log_norm.mean())
        resp = np.exp(log_p - log_norm[:, None])
        mass = resp.sum(axis=0)
        weights, rates = mass / mass.sum(), mass / (resp * x[:, None]).sum(axis=0)
    return weights, rates, history


def test_custom_model_matches_numpy_em_from_the_same_start():
    x = _data()
    model = custom.ExponentialMixture(2)
    start = model.initialize(Block(x), np.random.RandomState(0))
    run = fit_model(model, x, max_iter=25, tol=0.0, random_state=0)
    weights, rates, history = _numpy_em(x, *start, 25)
    np.testing.assert_allclose(run.params[0], weights, rtol=1e-10)
    np.testing.assert_allclose(run.params[1], rates, rtol=1e-10)
    np.testing.assert_allclose(run.history, history, rtol=1e-12)


def test_custom_model_gets_threads_squarem_restarts_and_online_em():
    x = _data(1)
    runs = [fit_model(custom.ExponentialMixture(2), x, max_iter=30, tol=0.0, random_state=0,
                      n_threads=n) for n in (1, 2)]
    np.testing.assert_array_equal(runs[0].params[1], runs[1].params[1])
    plain = fit_model(custom.ExponentialMixture(2), x, max_iter=5000, tol=1e-13, random_state=0)
    fast = fit_model(custom.ExponentialMixture(2), x, max_iter=5000, tol=1e-13, random_state=0,
                     acceleration="squarem")
    assert fast.n_iter < plain.n_iter
    order = np.argsort(plain.params[1]), np.argsort(fast.params[1])
    # Plain EM creeps (its last steps change the objective by < 1e-13 but the rates by
    # ~1e-8 each), so both stop within 1e-5 of the optimum; SQUAREM is not lower.
    np.testing.assert_allclose(fast.params[1][order[1]], plain.params[1][order[0]], rtol=1e-5)
    assert fast.objective >= plain.objective - 1e-12
    best = fit_model(custom.ExponentialMixture(2), x, n_init=4, max_iter=5000, tol=1e-13,
                     random_state=0)
    assert best.objective >= plain.objective - 1e-6
    online = OnlineFitter(custom.ExponentialMixture(2), random_state=0, learning_decay=0.6)
    rng = np.random.RandomState(2)
    for _ in range(3):
        for batch in np.array_split(rng.permutation(x), 20):
            online.partial_fit(batch)
    means = np.sort(1.0 / online.params[1])
    np.testing.assert_allclose(means, np.sort(1.0 / plain.params[1]), rtol=0.2)
    with pytest.raises(ValueError, match="learning_decay"):
        OnlineFitter(custom.ExponentialMixture(2), learning_decay=2.0)
