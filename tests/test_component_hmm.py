"""Components written once, as HMM emissions: the exponential family
(fastem.components.exponential) and the user-written Rayleigh of examples/custom_model.py
in fastem.HMM, against a NumPy Baum-Welch over several sequences written here."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import fastem
from fastem.components.exponential import Exponential

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
custom = importlib.import_module("custom_model")
sys.path.pop(0)


def _numpy_baum_welch(X, lengths, startprob, transmat, params, log_emission, m_step, n_iter):
    """Scaled Baum-Welch (hmmlearn's M-step without priors) for sequences of ``lengths``;
    ``log_emission(X, params)`` (n, K) and ``m_step(X, gamma, params)`` are the family's."""
    history = []
    for _ in range(n_iter):
        log_b = log_emission(X, params)
        start_counts, trans_counts, gammas, total = 0.0, 0.0, [], 0.0
        lo = 0
        for length in lengths:
            lb = log_b[lo:lo + length]
            peak = lb.max(axis=1, keepdims=True)
            b = np.exp(lb - peak)
            n, k = b.shape
            alpha, scale = np.zeros((n, k)), np.zeros(n)
            alpha[0] = startprob * b[0]
            scale[0] = alpha[0].sum()
            alpha[0] /= scale[0]
            for t in range(1, n):
                alpha[t] = (alpha[t - 1] @ transmat) * b[t]
                scale[t] = alpha[t].sum()
                alpha[t] /= scale[t]
            beta = np.ones((n, k))
            for t in range(n - 2, -1, -1):
                beta[t] = transmat @ (b[t + 1] * beta[t + 1]) / scale[t + 1]
            gamma = alpha * beta
            gammas.append(gamma / gamma.sum(axis=1, keepdims=True))
            trans_counts = trans_counts + sum(
                np.outer(alpha[t], b[t + 1] * beta[t + 1]) * transmat / scale[t + 1]
                for t in range(n - 1))
            start_counts = start_counts + gammas[-1][0]
            total += np.log(scale).sum() + peak.sum()
            lo += length
        history.append(total)
        startprob = start_counts / start_counts.sum()
        transmat = trans_counts / trans_counts.sum(axis=1, keepdims=True)
        params = m_step(X, np.concatenate(gammas), params)
    return startprob, transmat, params, history


def _sequences(scales, n_sequences=4, length=150, seed=0):
    rng = np.random.RandomState(seed)
    rows = []
    for _ in range(n_sequences):
        state = 0
        for _ in range(length):
            state = state if rng.rand() < 0.95 else 1 - state
            rows.append(scales[state])
    return np.array(rows), [length] * n_sequences, rng


def _exponential_log_b(X, rates):
    return (np.log(rates)[None] - X[:, None, :] * rates[None]).sum(axis=-1)


def test_exponential_component_in_an_hmm_matches_numpy_baum_welch():
    scales, lengths, rng = _sequences(np.array([[0.5, 2.0], [4.0, 1.0]]))
    X = rng.exponential(scales)
    model = fastem.HMM(Exponential(2), random_state=3, n_iter=6, tol=-np.inf).fit(X, lengths)
    start = fastem.HMM(Exponential(2), random_state=3, n_iter=0).fit(X, lengths)
    startprob, transmat, rates, history = _numpy_baum_welch(
        X, lengths, start.startprob_, start.transmat_, start.emission_.rates,
        _exponential_log_b, lambda X, g, _: g.sum(axis=0)[:, None] / (g.T @ X), 7)
    final, history = history[-1], history[:-1]  # the log-likelihood at the 6th M-step's
    startprob, transmat, rates, _ = _numpy_baum_welch(
        X, lengths, start.startprob_, start.transmat_, start.emission_.rates,
        _exponential_log_b, lambda X, g, _: g.sum(axis=0)[:, None] / (g.T @ X), 6)
    np.testing.assert_allclose(model.monitor_.history, history, rtol=1e-10)
    np.testing.assert_allclose(model.startprob_, startprob, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.transmat_, transmat, rtol=1e-8)
    np.testing.assert_allclose(model.emission_.rates, rates, rtol=1e-8)
    np.testing.assert_allclose(model.score(X, lengths), final, rtol=1e-10)
    sampled, path = model.sample(200, random_state=0)
    assert sampled.shape == (200, 2) and (sampled >= 0).all() and path.shape == (200,)
    assert model.predict(X, lengths).shape == (len(X),)


def test_exponential_hmm_start_is_the_components_kmeans_start():
    scales, lengths, rng = _sequences(np.array([[0.5], [4.0]]), seed=1)
    X = rng.exponential(scales)
    start = fastem.HMM(Exponential(2), random_state=0, n_iter=0).fit(X, lengths)
    assert start.emission_.rates.shape == (2, 1) and (start.emission_.rates > 0).all()


def test_exponential_hmm_refuses_negative_data():
    X = np.abs(np.random.RandomState(2).normal(size=(40, 2)))
    X[3, 0] = -1.0
    with pytest.raises(ValueError, match=r"X has a negative entry.*row 3, column 0"):
        fastem.HMM(Exponential(2)).fit(X)


def test_user_component_in_an_hmm_matches_numpy_baum_welch():
    scales, lengths, rng = _sequences(np.array([[1.0, 1.0], [4.0, 3.0]]), seed=4)
    X = rng.rayleigh(scales)

    def log_b(X, sigma2):
        x = X[:, None, :]
        return (np.log(x) - np.log(sigma2)[None] - x * x / (2.0 * sigma2[None])).sum(axis=-1)

    def m_step(X, gamma, _):
        return (gamma.T @ (X * X)) / (2.0 * gamma.sum(axis=0)[:, None])

    model = fastem.HMM(custom.Rayleigh(2), random_state=0, n_iter=5, tol=-np.inf).fit(
        X, lengths)
    start = fastem.HMM(custom.Rayleigh(2), random_state=0, n_iter=0).fit(X, lengths)
    startprob, transmat, sigma2, history = _numpy_baum_welch(
        X, lengths, start.startprob_, start.transmat_, start.emission_.sigma2, log_b, m_step, 5)
    np.testing.assert_allclose(model.monitor_.history, history, rtol=1e-10)
    np.testing.assert_allclose(model.transmat_, transmat, rtol=1e-8)
    np.testing.assert_allclose(model.emission_.sigma2, sigma2, rtol=1e-8)
