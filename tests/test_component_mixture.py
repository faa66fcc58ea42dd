"""The mixture composite over any component: the exponential family (a component module
and its kernels, nothing else) as a mixture, against a NumPy EM; the generic route
(lattice, log-sum-exp, accumulation in bounded chunks) against the fused Gaussian one."""

import warnings

import numpy as np
import pytest

import fastem
from fastem.components.exponential import Exponential
from fastem.components.gaussian import Gaussian
from fastem.composites import mixture as composite
from fastem.composites.mixture import MixtureModel, MixtureParams
from fastem.engine import UNIT_ROWS, Block, pass_stats
from fastem.mixture.covariance import SPECS


def _data(n=(3000, 2000), d=2, seed=0):
    rng = np.random.RandomState(seed)
    scales = rng.uniform(0.5, 2.0, d)
    return np.concatenate([rng.exponential(scales, (n[0], d)),
                           rng.exponential(15.0 * scales, (n[1], d))])


def _numpy_em(X, weights, rates, n_iter, sample_weight=None):
    """Dense EM for a mixture of independent exponential columns: the reference."""
    w_row = np.ones(len(X)) if sample_weight is None else sample_weight
    history = []
    for _ in range(n_iter):
        log_p = np.log(weights) + (np.log(rates)[None] - X[:, None, :] * rates[None]).sum(-1)
        peak = log_p.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(log_p - peak).sum(axis=1))
        history.append(np.dot(w_row, log_norm) / w_row.sum())
        resp = np.exp(log_p - log_norm[:, None]) * w_row[:, None]
        mass = resp.sum(axis=0)
        weights = (mass + 10 * np.finfo(float).eps) / (mass + 10 * np.finfo(float).eps).sum()
        rates = mass[:, None] / (resp.T @ X)
    return weights, rates, history


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
@pytest.mark.parametrize("weighted", [False, True])
def test_exponential_mixture_matches_numpy_em_from_the_same_start(init_params, weighted):
    X = _data()
    sample_weight = np.random.RandomState(1).uniform(0.2, 2.0, len(X)) if weighted else None
    kwargs = dict(init_params=init_params, random_state=0, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = fastem.ExponentialMixture(3, max_iter=0, **kwargs).fit(
            X, sample_weight=sample_weight)
        fitted = fastem.ExponentialMixture(3, max_iter=8, **kwargs).fit(
            X, sample_weight=sample_weight)
    weights, rates, history = _numpy_em(X, start.weights_, start.rates_, 8, sample_weight)
    np.testing.assert_allclose(fitted.weights_, weights, rtol=1e-10)
    np.testing.assert_allclose(fitted.rates_, rates, rtol=1e-10)
    np.testing.assert_allclose(fitted.lower_bounds_, history, rtol=1e-12)
    np.testing.assert_allclose(fitted.scales_, 1.0 / rates, rtol=1e-10)


def test_exponential_mixture_start_is_the_m_step_of_its_kmeans_labels():
    X = _data(seed=2)
    from fastem.mixture import kmeans

    rs = np.random.RandomState(0)
    seeds = kmeans.kmeans_plusplus(X, 2, None, rs)
    _, labels = kmeans.lloyd(X, None, X[seeds])
    start = fastem.ExponentialMixture(2, max_iter=0, random_state=0).fit(X)
    for k in range(2):
        rows = X[labels == k]
        np.testing.assert_allclose(start.rates_[k], 1.0 / rows.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(start.weights_[k], len(rows) / len(X), rtol=1e-12)


def test_exponential_mixture_outputs_match_numpy():
    X = _data(seed=3)
    model = fastem.ExponentialMixture(2, random_state=0).fit(X)
    log_p = (np.log(model.weights_)
             + (np.log(model.rates_)[None] - X[:, None, :] * model.rates_[None]).sum(-1))
    log_norm = np.logaddexp.reduce(log_p, axis=1)
    np.testing.assert_allclose(model.score_samples(X), log_norm, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(log_p - log_norm[:, None]),
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(model.predict(X), log_p.argmax(axis=1))
    n_parameters = 2 * X.shape[1] + 1
    np.testing.assert_allclose(model.bic(X), -2 * log_norm.sum() + n_parameters * np.log(len(X)))
    np.testing.assert_allclose(model.aic(X), -2 * log_norm.sum() + 2 * n_parameters)
    np.testing.assert_allclose(model.score(X), log_norm.mean())


def test_exponential_mixture_samples_follow_the_fitted_rates():
    X = _data(seed=4)
    model = fastem.ExponentialMixture(2, random_state=0).fit(X)
    draws, states = model.sample(40_000, random_state=1)
    assert draws.shape == (40_000, 2) and (draws >= 0).all()
    np.testing.assert_allclose(np.bincount(states) / len(states), model.weights_, atol=0.01)
    for k in range(2):
        np.testing.assert_allclose(draws[states == k].mean(axis=0), model.scales_[k], rtol=0.05)
    again, _ = model.sample(10, random_state=1)
    np.testing.assert_array_equal(again, model.sample(10, random_state=1)[0])


def test_mixture_facade_over_the_exponential_component_is_exponential_mixture():
    X = _data(seed=5)
    named = fastem.ExponentialMixture(3, random_state=0, max_iter=20, tol=0).fit(X)
    generic = fastem.Mixture(Exponential(3), random_state=0, max_iter=20, tol=0).fit(X)
    np.testing.assert_array_equal(generic.components_.rates, named.rates_)
    np.testing.assert_array_equal(generic.weights_, named.weights_)
    np.testing.assert_array_equal(generic.predict_proba(X), named.predict_proba(X))


def test_exponential_mixture_saves_and_loads(tmp_path):
    X = _data(seed=6)
    model = fastem.ExponentialMixture(2, random_state=0).fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastem.load(path)
    assert type(loaded) is fastem.ExponentialMixture
    np.testing.assert_array_equal(loaded.rates_, model.rates_)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_exponential_mixture_does_not_depend_on_threads_chunks_or_blocks(monkeypatch):
    X = _data(n=(9 * UNIT_ROWS + 31, 5 * UNIT_ROWS), seed=7)
    fits = [fastem.ExponentialMixture(3, random_state=0, max_iter=10, tol=0,
                                      n_threads=n).fit(X) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].rates_, fits[1].rates_)
    model = MixtureModel(Exponential(3), 2)
    params = fits[0]._params()
    whole = pass_stats(model, params, [Block(X)])
    monkeypatch.setattr(composite, "CHUNK_ROWS", 2 * UNIT_ROWS)  # many chunks per block
    np.testing.assert_array_equal(pass_stats(model, params, [Block(X)]).flat, whole.flat)
    cut = 5 * UNIT_ROWS
    blocks = pass_stats(model, params, [Block(X[:cut]), Block(X[cut:])])
    np.testing.assert_array_equal(blocks.flat, whole.flat)


def test_exponential_mixture_gets_squarem_and_online_em():
    X = _data(seed=8)
    kwargs = dict(random_state=0, tol=1e-12, max_iter=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fastem.ExponentialMixture(2, **kwargs).fit(X)
        fast = fastem.ExponentialMixture(2, acceleration="squarem", **kwargs).fit(X)
    assert fast.n_iter_ < plain.n_iter_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-9
    online = fastem.ExponentialMixture(2, random_state=0, learning_decay=0.6)
    rng = np.random.RandomState(2)
    for _ in range(3):
        for batch in np.array_split(rng.permutation(X), 20):
            online.partial_fit(batch)
    np.testing.assert_allclose(np.sort(online.scales_[:, 0]), np.sort(plain.scales_[:, 0]),
                               rtol=0.2)


@pytest.mark.parametrize("bad, match", [
    (-1.0, "negative entry"), (np.nan, "NaN entry"), (np.inf, "infinite entry")])
def test_exponential_data_are_checked(bad, match):
    X = _data(seed=9)
    X[7, 1] = bad
    with pytest.raises(ValueError, match=rf"X has an? {match}.*row 7, column 1"):
        fastem.ExponentialMixture(2).fit(X)
    model = fastem.ExponentialMixture(2, random_state=0).fit(_data(seed=9))
    with pytest.raises(ValueError, match="X has"):
        model.predict(X)


def test_exponential_mixture_refuses_bad_arguments():
    X = _data(seed=10)
    with pytest.raises(ValueError, match="n_components"):
        fastem.ExponentialMixture(0).fit(X)
    with pytest.raises(ValueError, match="init_params"):
        fastem.ExponentialMixture(2, init_params="spectral").fit(X)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        fastem.ExponentialMixture(5).fit(X[:3])
    with pytest.raises(TypeError, match="component must be"):
        fastem.Mixture("exponential").fit(X)
    fitted = fastem.ExponentialMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="expecting 2 features"):
        fitted.predict(X[:, :1])
    zeros = np.zeros((50, 1))
    with pytest.raises(ValueError, match="state 0 has no finite positive rate for column 0"):
        fastem.ExponentialMixture(1).fit(zeros)


class _GenericGaussian(Gaussian):
    """The Gaussian component without its fused E-step: the generic route."""

    fused_mixture_estep = False


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_the_generic_route_gives_the_fused_gaussian_e_step(covariance_type, missing,
                                                           monkeypatch):
    rng = np.random.RandomState(11)
    X = np.concatenate([rng.normal(0, 1, (1500, 3)), rng.normal(2.5, 0.8, (1000, 3))])
    if missing:  # the lattice and accumulation over observed entries (what HMMs read)
        X[rng.rand(*X.shape) < 0.15] = np.nan
    weights = rng.uniform(0.2, 2.0, len(X))
    fitted = fastem.GaussianMixture(3, covariance_type=covariance_type, max_iter=3,
                                    random_state=0,
                                    missing="marginalize" if missing else "raise").fit(X)
    spec = SPECS[covariance_type]
    flat = fitted._get_parameters()
    from fastem.components.gaussian import GaussianParams

    params = MixtureParams(flat.weights, GaussianParams(flat.means, flat.covariances,
                                                        flat.precisions_cholesky))
    fused = MixtureModel(Gaussian(spec, 3, missing=missing), 3)
    generic = MixtureModel(_GenericGaussian(spec, 3, missing=missing), 3)
    monkeypatch.setattr(composite, "CHUNK_ROWS", 4 * UNIT_ROWS)
    a = pass_stats(fused, params, [Block(X, weights)])
    b = pass_stats(generic, params, [Block(X, weights)])
    np.testing.assert_allclose(b.flat[[0]], a.flat[[0]], rtol=1e-10)
    np.testing.assert_allclose(b.flat[2:], a.flat[2:], rtol=1e-10, atol=1e-9)
    # Rows with nothing observed count in the generic route's weight only (density 1).
    empty = np.isnan(X).all(axis=1)
    np.testing.assert_allclose(b.weight, a.weight + weights[empty].sum(), rtol=1e-12)
    for what in ("logsumexp", "log_resp"):
        np.testing.assert_allclose(generic.row_outputs(params, X, what),
                                   fused.row_outputs(params, X, what), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(generic.row_outputs(params, X, "argmax"),
                                  fused.row_outputs(params, X, "argmax"))
    np.testing.assert_allclose(generic.m_step(b, params).components.covariances,
                               fused.m_step(a, params).components.covariances, rtol=1e-9)
