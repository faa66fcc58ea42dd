"""Properties of the EM iteration: monotone objective, thread invariance, additive statistics."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, blobs

import fastem
from fastem.engine import UNIT_ROWS, Block, batch_units, pass_stats
from fastem.kernels import gaussian as gk
from fastem.mixture.covariance import SPECS
from fastem.mixture.model import GaussianMixtureModel, kernel_model


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["random", "kmeans"])
def test_objective_never_decreases_without_regularisation(covariance_type, init_params):
    X = blobs(n=1500, n_features=3, n_components=4, seed=11)
    model = fastem.GaussianMixture(4, covariance_type=covariance_type, reg_covar=0.0, tol=0.0,
                                   max_iter=60, init_params=init_params, random_state=2).fit(X)
    history = np.asarray(model.lower_bounds_)
    assert len(history) == 60
    steps = np.diff(history)
    assert np.all(steps >= -1e-12 * np.abs(history[:-1])), steps.min()
    assert history[-1] > history[0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bitwise_identical_for_one_and_two_threads(covariance_type):
    X = blobs(n=20_000, n_features=5, n_components=4, seed=5)
    fits = [fastem.GaussianMixture(4, covariance_type=covariance_type, random_state=0,
                                   n_threads=n, tol=0.0, max_iter=15).fit(X) for n in (1, 2)]
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    with fastem.threads(1):
        one = fits[0].score_samples(X)
    np.testing.assert_array_equal(one, fits[1].score_samples(X))


def _stats(X, model_params, spec, lo=0, hi=None):
    means, factor, const = kernel_model(spec, model_params)
    hi = len(X) if hi is None else hi
    size = gk.stat_size(len(means), X.shape[1], spec.diagonal)
    return gk.gaussian_posterior_stats(X[lo:hi], np.empty(0), means, factor, const, means,
                                       spec.diagonal, UNIT_ROWS, batch_units(size),
                                       np.zeros(size))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("split", [1, 255, 256, 4097])
def test_statistics_are_additive(covariance_type, split):
    X = blobs(n=6000, n_features=3, n_components=3, seed=8)
    fitted = fastem.GaussianMixture(3, covariance_type=covariance_type, max_iter=2,
                                    random_state=0).fit(X)
    spec = SPECS[covariance_type]
    params = fitted._get_parameters()
    whole = _stats(X, params, spec)
    parts = _stats(X[:split], params, spec) + _stats(X[split:], params, spec)
    np.testing.assert_allclose(parts, whole, rtol=1e-11, atol=1e-9)
    ranged = _stats(X, params, spec, 0, split) + _stats(X, params, spec, split)
    np.testing.assert_allclose(ranged, whole, rtol=1e-11, atol=1e-9)


def test_e_step_statistics_match_numpy():
    """The fused kernel equals responsibilities computed densely with NumPy."""
    X = blobs(n=700, n_features=3, n_components=3, seed=9)
    fitted = fastem.GaussianMixture(3, max_iter=3, random_state=0).fit(X)
    spec = SPECS["full"]
    model = GaussianMixtureModel(spec, 3, X.shape[1], 1e-6, "kmeans")
    params = fitted._get_parameters()
    stats = pass_stats(model, params, [Block(X)])
    objective, flat = model.objective(stats, params), stats.flat
    weighted = np.log(fitted.predict_proba(X)) + fitted.score_samples(X)[:, None]
    resp = np.exp(weighted - fitted.score_samples(X)[:, None])
    np.testing.assert_allclose(objective, fitted.score(X), rtol=1e-12)
    n_mass = resp.sum(axis=0)
    np.testing.assert_allclose(flat[2:5], n_mass, rtol=1e-12)
    diff = X[:, None, :] - fitted.means_[None]
    first = np.einsum("nk,nkd->kd", resp, diff)
    np.testing.assert_allclose(flat[5:14].reshape(3, 3), first, rtol=1e-9, atol=1e-9)
    second = np.einsum("nk,nka,nkb->kab", resp, diff, diff)
    upper = flat[14:].reshape(3, 3, 3)
    np.testing.assert_allclose(np.triu(upper), np.triu(second), rtol=1e-10, atol=1e-9)


def test_threads_context_restores_the_count():
    import numba

    before = numba.get_num_threads()
    with fastem.threads(1) as used:
        assert used == 1 and numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), fastem.threads(1):
        raise RuntimeError("boom")
    assert numba.get_num_threads() == before


_FIT_SCRIPT = """
import numpy as np, fastem
rng = np.random.RandomState(0)
X = np.vstack([rng.normal(c, 1.0, size=(4000, 3)) for c in (-4.0, 0.0, 4.0)])
m = fastem.GaussianMixture(3, random_state=0, tol=0.0, max_iter=10).fit(X)
print(repr(m.means_.tobytes().hex()), repr(m.covariances_.tobytes().hex()), m.lower_bound_.hex())
h = fastem.GaussianHMM(3, random_state=0, n_iter=5, tol=0.0).fit(X, [4000, 8000])
print(h.means_.tobytes().hex(), h.transmat_.tobytes().hex())
"""


def test_bitwise_identical_across_processes_with_different_thread_pools():
    import os
    import subprocess
    import sys

    outputs = []
    for n in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=n)
        outputs.append(subprocess.run([sys.executable, "-c", _FIT_SCRIPT], env=env, check=True,
                                      capture_output=True, text=True, timeout=300).stdout)
    assert outputs[0] == outputs[1] and outputs[0].strip()
