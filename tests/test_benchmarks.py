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
from fastem.mixture.covariance import SPECS  # noqa: E402
from fastem.mixture.model import GaussianMixtureEM  # noqa: E402

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
    model = GaussianMixtureEM(X, None, SPECS[covariance_type], k, 1e-6, "kmeans")
    params = fitted._get_parameters()
    objective, stats = benchmark(model.e_step, params)
    np.testing.assert_allclose(objective, fitted.score(X), rtol=1e-10)
    np.testing.assert_allclose(stats[2:2 + k].sum(), len(X), rtol=1e-10)


def test_score_samples(benchmark, problem):
    X, k = problem
    fitted = fastem.GaussianMixture(k, max_iter=1, random_state=0).fit(X)
    values = benchmark(fitted.score_samples, X)
    np.testing.assert_allclose(values.mean(), fitted.score(X), rtol=1e-12)


def test_kmeans_initialisation(benchmark, problem):
    X, k = problem
    model = benchmark(lambda: fastem.GaussianMixture(k, max_iter=0, random_state=0).fit(X))
    assert np.all(np.isfinite(model.means_))
