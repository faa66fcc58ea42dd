"""Micro benchmarks of the kernels (pytest-benchmark).

Skipped by the default run (``--benchmark-skip`` in pyproject.toml); run with
``python -m pytest tests/test_benchmarks.py --benchmark-only``. Each benchmark
also checks its result against a NumPy reference, so a fast wrong kernel fails.
"""

import numpy as np
import pytest
from helpers import blobs

pytest.importorskip("pytest_benchmark")

import fastem  # noqa: E402
from fastem.engine import Block, pass_stats  # noqa: E402
from fastem.mixture.covariance import SPECS  # noqa: E402
from fastem.mixture.model import GaussianMixtureModel  # noqa: E402

SHAPES = [(200_000, 2, 5), (100_000, 16, 16)]


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: "N{}-D{}-K{}".format(*s))
def problem(request):
    n, d, k = request.param
    X = blobs(n=n, n_features=d, n_components=k, seed=0)
    return X, k


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_e_step(benchmark, problem, covariance_type):
    X, k = problem
    fitted = fastem.GaussianMixture(k, covariance_type=covariance_type, max_iter=1,
                                    random_state=0).fit(X)
    model = GaussianMixtureModel(SPECS[covariance_type], k, X.shape[1], 1e-6, "kmeans")
    params = fitted._get_parameters()
    stats = benchmark(pass_stats, model, params, [Block(X)])
    np.testing.assert_allclose(model.objective(stats, params), fitted.score(X), rtol=1e-10)
    np.testing.assert_allclose(stats.mass.sum(), len(X), rtol=1e-10)


def test_score_samples(benchmark, problem):
    from helpers import reference_log_prob
    from scipy.special import logsumexp

    X, k = problem
    fitted = fastem.GaussianMixture(k, max_iter=1, random_state=0).fit(X)
    values = benchmark(fitted.score_samples, X)
    head = X[:500]
    expected = logsumexp(reference_log_prob(head, fitted.weights_, fitted.means_,
                                            fitted.covariances_, "full"), axis=1)
    np.testing.assert_allclose(values[:500], expected, rtol=1e-10)


def test_lloyd_pass(benchmark, problem):
    from fastem.engine import UNIT_ROWS
    from fastem.kernels import distance

    X, k = problem
    centers = X[:k].copy()
    n = len(X)
    labels = np.empty(n, dtype=np.int64)
    bounds = np.empty((n, 2))
    flat = benchmark(distance.lloyd_assign, X, np.empty(0), centers, X.mean(axis=0), labels,
                     bounds, UNIT_ROWS, 256)
    head = X[:2000]
    nearest = ((head[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(labels[:2000], nearest)
    np.testing.assert_allclose(flat[2:2 + k], np.bincount(labels, minlength=k), rtol=1e-12)


def test_kmeans_initialisation(benchmark, problem):
    from fastem.mixture import kmeans

    X, k = problem
    centers, labels = benchmark(
        lambda: kmeans.lloyd(X, None, X[kmeans.kmeans_plusplus(X, k, None,
                                                                np.random.RandomState(0))]))
    # Lloyd stopped at (or within its tolerance of) a fixed point: every centre is the mean
    # of its rows, up to the last allowed shift (tol=1e-4 of the mean variance, ~1).
    for j in np.unique(labels):
        np.testing.assert_allclose(centers[j], X[labels == j].mean(axis=0), atol=0.05)


@pytest.mark.parametrize("gating", ["constant", "softmax"])
def test_moe_e_step(benchmark, gating):
    """One pass of the mixture-of-experts kernel over X read in place (Gaussian experts),
    checked against the log-likelihood computed in NumPy."""
    from fastem.bench.moe import _data
    from fastem.moe.design import ExpertRows

    X, y, _ = _data(200_000, 5, 4)
    fitted = fastem.MixtureOfExperts(4, gating=gating, max_iter=2, random_state=0).fit(X, y)
    model, params = fitted._model_for(), fitted._params
    stats = benchmark(pass_stats, model, params, [Block(ExpertRows(X, y[:, None]))])
    means = X @ fitted.coef_.T + fitted.intercept_
    variances = fitted.covariances_[:, 0, 0]
    log_gate = np.log(fitted.predict_proba(X))
    log_joint = log_gate - 0.5 * (np.log(2 * np.pi * variances)
                                  + (y[:, None] - means) ** 2 / variances)
    top = log_joint.max(axis=1)
    expected = (top + np.log(np.exp(log_joint - top[:, None]).sum(axis=1))).sum()
    np.testing.assert_allclose(stats.loglik, expected, rtol=1e-10)
