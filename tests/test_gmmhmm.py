"""GMMHMM: hmmlearn parity where hmmlearn does EM, an independent exact M-step where it does not."""

import warnings

import numpy as np
import pytest

from fastem.hmm import GMMHMM

pytest.importorskip("scipy")
from scipy.special import logsumexp  # noqa: E402
from scipy.stats import multivariate_normal  # noqa: E402

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
K, M, D = 2, 2, 2


def _start(covariance_type, seed=0):
    rng = np.random.RandomState(seed)
    params = {"startprob_": np.array([0.6, 0.4]), "transmat_": np.array([[0.9, 0.1], [0.2, 0.8]]),
              "weights_": np.array([[0.3, 0.7], [0.5, 0.5]]),
              "means_": rng.normal(scale=3.0, size=(K, M, D))}
    a = rng.normal(size=(K, M, D, D)) * 0.4
    full = a @ np.swapaxes(a, 2, 3) + 0.6 * np.eye(D)
    params["covars_"] = {"full": full, "tied": full[:, 0], "diag": rng.uniform(0.5, 2, (K, M, D)),
                         "spherical": rng.uniform(0.5, 2, (K, M))}[covariance_type]
    return params


def _full_covariances(covars, covariance_type):
    if covariance_type == "full":
        return covars
    if covariance_type == "tied":
        return np.repeat(covars[:, None], M, axis=1)
    if covariance_type == "diag":
        return np.einsum("kmd,de->kmde", covars, np.eye(D))
    return covars[:, :, None, None] * np.eye(D)


def _component_log_densities(X, params, covariance_type):
    full = _full_covariances(params["covars_"], covariance_type)
    return np.stack([[np.log(params["weights_"][k, m])
                      + multivariate_normal(params["means_"][k, m], full[k, m]).logpdf(X)
                      for m in range(M)] for k in range(K)]).transpose(2, 0, 1)


def _model(cls, covariance_type, params, **kwargs):
    model = cls(K, n_mix=M, covariance_type=covariance_type, tol=0.0, init_params="", **kwargs)
    for name, value in params.items():
        setattr(model, name, np.array(value))
    return model


def _data(params, covariance_type, n=600):
    hmm = pytest.importorskip("hmmlearn.hmm")
    source = _model(hmm.GMMHMM, covariance_type, params, n_iter=0)
    return source.sample(n, random_state=3)[0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_and_posteriors_match_scipy(covariance_type):
    params = _start(covariance_type)
    X = _data(params, covariance_type, n=6)
    model = _model(GMMHMM, covariance_type, params)
    log_b = logsumexp(_component_log_densities(X, params, covariance_type), axis=2)
    # Forward recursion in log space, written out.
    alpha = np.log(params["startprob_"]) + log_b[0]
    for t in range(1, len(X)):
        alpha = logsumexp(alpha[:, None] + np.log(params["transmat_"]), axis=0) + log_b[t]
    assert abs(model.score(X) - logsumexp(alpha)) < 1e-10 * abs(logsumexp(alpha))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_em_step_is_exact(covariance_type):
    hmm = pytest.importorskip("hmmlearn.hmm")
    params = _start(covariance_type)
    X = _data(params, covariance_type)
    reference = _model(hmm.GMMHMM, covariance_type, params, n_iter=0)
    gamma = reference.predict_proba(X)  # state posteriors from hmmlearn
    log_dens = _component_log_densities(X, params, covariance_type)
    within = np.exp(log_dens - logsumexp(log_dens, axis=2, keepdims=True))
    resp = gamma[:, :, None] * within
    mass = resp.sum(axis=0)
    means = np.einsum("tkm,td->kmd", resp, X) / mass[:, :, None]
    centred = X[:, None, None, :] - means[None]
    scatter = np.einsum("tkm,tkmd,tkme->kmde", resp, centred, centred)
    covars = {
        "full": scatter / mass[:, :, None, None],
        "diag": np.einsum("kmdd->kmd", scatter) / mass[:, :, None],
        # hmmlearn's default spherical prior: c_d = D (N + 1) + 2 (alpha + 1), alpha = -(M+2)/2
        "spherical": np.einsum("kmdd->km", scatter) / (D * (mass + 1) - M),
        "tied": scatter.sum(axis=1) / mass.sum(axis=1)[:, None, None],
    }[covariance_type]
    model = _model(GMMHMM, covariance_type, params, n_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    np.testing.assert_allclose(model.weights_, mass / mass.sum(axis=1, keepdims=True),
                               rtol=1e-9)
    np.testing.assert_allclose(model.means_, means, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(model.covars_, covars, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_parity_with_hmmlearn_where_it_does_em(covariance_type):
    # hmmlearn 0.3's GMMHMM computes the covariance scatter about the previous means (not
    # EM); its score, transitions, weights and means after one iteration are exact.
    hmm = pytest.importorskip("hmmlearn.hmm")
    params = _start(covariance_type)
    X = _data(params, covariance_type)
    ours = _model(GMMHMM, covariance_type, params, n_iter=1)
    theirs = _model(hmm.GMMHMM, covariance_type, params, n_iter=1)
    assert abs(ours.score(X) / theirs.score(X) - 1) < 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X)
        theirs.fit(X)
    for name in ("startprob_", "transmat_", "weights_", "means_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8,
                                   atol=1e-10, err_msg=name)


@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied"])
def test_fit_from_data_is_monotone_and_finite(covariance_type):
    params = _start(covariance_type, seed=2)
    X = _data(params, covariance_type, n=1500)
    model = GMMHMM(K, n_mix=M, covariance_type=covariance_type, n_iter=25, tol=0.0,
                   random_state=0).fit(X, [500, 1000])
    history = np.asarray(model.monitor_.history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[:-1]))
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.covars_))
    np.testing.assert_allclose(model.weights_.sum(axis=1), 1.0)
    sample, states = model.sample(50, random_state=0)
    assert sample.shape == (50, D) and states.shape == (50,)
