"""examples/custom_model.py: a user's own component (Rayleigh, in NumPy) in a mixture and an
HMM, against NumPy EM and Baum-Welch written here."""

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
custom = importlib.import_module("custom_model")
sys.path.pop(0)


def _log_emissions(X, sigma2):
    """(n, K) Rayleigh log-densities, written out independently of the example."""
    x = X[:, None, :]
    return (np.log(x) - np.log(sigma2)[None] - x * x / (2.0 * sigma2[None])).sum(axis=-1)


def _numpy_mixture_em(X, weights, sigma2, n_iter):
    history = []
    eps = 10 * np.finfo(float).eps
    for _ in range(n_iter):
        log_p = np.log(weights) + _log_emissions(X, sigma2)
        log_norm = np.logaddexp.reduce(log_p, axis=1)
        history.append(log_norm.mean())
        resp = np.exp(log_p - log_norm[:, None])
        mass = resp.sum(axis=0)
        weights = (mass + eps) / (mass + eps).sum()
        sigma2 = (resp.T @ (X * X)) / (2.0 * mass[:, None])
    return weights, sigma2, history


def test_user_component_in_a_mixture_matches_numpy_em_from_the_same_start():
    X, _ = custom.regimes(n_sequences=6, length=400, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = fastem.Mixture(custom.Rayleigh(3), max_iter=0, random_state=0).fit(X)
        fitted = fastem.Mixture(custom.Rayleigh(3), max_iter=10, tol=0.0,
                                random_state=0).fit(X)
    weights, sigma2, history = _numpy_mixture_em(X, start.weights_, start.components_.sigma2,
                                                 10)
    np.testing.assert_allclose(fitted.weights_, weights, rtol=1e-10)
    np.testing.assert_allclose(fitted.components_.sigma2, sigma2, rtol=1e-10)
    np.testing.assert_allclose(fitted.lower_bounds_, history, rtol=1e-12)
    log_norm = np.logaddexp.reduce(np.log(fitted.weights_)
                                   + _log_emissions(X, fitted.components_.sigma2), axis=1)
    np.testing.assert_allclose(fitted.score_samples(X), log_norm, rtol=1e-12)


def test_user_component_gets_squarem_online_em_and_threads():
    X, _ = custom.regimes(n_sequences=6, length=400, seed=2)
    kwargs = dict(random_state=0, tol=1e-12, max_iter=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fastem.Mixture(custom.Rayleigh(2), **kwargs).fit(X)
        fast = fastem.Mixture(custom.Rayleigh(2), acceleration="squarem", **kwargs).fit(X)
    assert fast.n_iter_ < plain.n_iter_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-9
    fits = [fastem.Mixture(custom.Rayleigh(2), random_state=0, max_iter=5, tol=0,
                           n_threads=n).fit(X) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].components_.sigma2, fits[1].components_.sigma2)
    online = fastem.Mixture(custom.Rayleigh(2), random_state=0, learning_decay=0.6)
    rng = np.random.RandomState(3)
    for _ in range(3):
        for batch in np.array_split(rng.permutation(X), 20):
            online.partial_fit(batch)
    np.testing.assert_allclose(np.sort(online.components_.sigma2[:, 0]),
                               np.sort(plain.components_.sigma2[:, 0]), rtol=0.2)
    with pytest.raises(ValueError, match="positive"):
        fastem.Mixture(custom.Rayleigh(2)).fit(-X)
