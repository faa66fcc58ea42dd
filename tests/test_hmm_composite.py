"""The HMM composite and the discrete components (issue 26): components against NumPy
references, the composite against brute-force Baum-Welch, and the generic ``fastem.HMM``
façade over a component written here."""

import itertools
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multinomial, poisson

import fastem
from fastem.components import Component
from fastem.components.categorical import Categorical, CategoricalParams
from fastem.components.counts import Multinomial, MultinomialParams, Poisson, PoissonParams
from fastem.composites.hmm import HMMComposite, HMMParams
from fastem.engine import Block, StatsLayout
from fastem.engine.backends import pass_stats


def _stats(component, n_features, X, posteriors):
    layout = StatsLayout(component.fields(n_features))
    stats = layout.zeros()
    component.accumulate(None, X, posteriors, stats)
    return stats


@pytest.fixture
def rng():
    return np.random.RandomState(26)


# -- components against NumPy --------------------------------------------------------
def test_categorical_component_matches_numpy(rng):
    k, s = 3, 5
    X = rng.randint(0, s, 40)
    probs = rng.dirichlet(np.ones(s), size=k)
    component = Categorical(k, s, prior=1.5)
    table = component.log_likelihood(component.prepare(CategoricalParams(probs)), X)
    np.testing.assert_array_equal(table, np.log(probs[:, X]).T)
    posteriors = rng.dirichlet(np.ones(k), size=len(X))
    stats = _stats(component, s, X, posteriors)
    counts = np.stack([[posteriors[X == symbol, state].sum() for symbol in range(s)]
                       for state in range(k)])
    np.testing.assert_allclose(stats["counts"], counts, rtol=1e-12)
    np.testing.assert_allclose(stats["mass"], posteriors.sum(axis=0), rtol=1e-12)
    new = component.m_step(stats, CategoricalParams(probs)).emissionprob
    np.testing.assert_allclose(new, (counts + 0.5) / (counts + 0.5).sum(axis=1, keepdims=True),
                               rtol=1e-12)
    np.testing.assert_allclose(component.log_prior(CategoricalParams(probs)),
                               0.5 * np.log(probs).sum(), rtol=1e-12)
    assert component.n_parameters(s) == k * (s - 1)
    unpacked = component.unpack(component.pack(CategoricalParams(probs)), CategoricalParams(probs))
    np.testing.assert_allclose(unpacked.emissionprob, probs, rtol=1e-15)


def test_categorical_component_refuses_symbols_outside_its_alphabet():
    with pytest.raises(ValueError, match="n_features"):
        Categorical(2, 3).check_data(np.array([[0], [3]]), True)
    with pytest.raises(TypeError, match="X must hold integer symbols"):
        Categorical(2, 3).check_data(np.array([["a"]]), True)


def test_poisson_component_matches_scipy(rng):
    k, d = 3, 4
    X = rng.poisson(2.5, size=(30, d)).astype(np.float64)
    rates = rng.uniform(0.5, 4.0, (k, d))
    component = Poisson(k, prior=2.0, weight=0.5)
    table = component.log_likelihood(component.prepare(PoissonParams(rates)), X)
    expected = np.column_stack([poisson.logpmf(X, rate).sum(axis=1) for rate in rates])
    np.testing.assert_allclose(table, expected, rtol=1e-12)
    posteriors = rng.dirichlet(np.ones(k), size=len(X))
    stats = _stats(component, d, X, posteriors)
    mass = posteriors.sum(axis=0)
    new = component.m_step(stats, PoissonParams(rates)).lambdas
    np.testing.assert_allclose(new, (2.0 + posteriors.T @ X) / (0.5 + mass[:, None]),
                               rtol=1e-12)
    assert component.n_parameters(d) == k * d


def test_multinomial_component_matches_scipy(rng):
    k, d = 2, 3
    X = rng.multinomial(7, [0.2, 0.3, 0.5], size=25).astype(np.float64)
    probs = rng.dirichlet(np.ones(d), size=k)
    component = Multinomial(k, n_trials=7)
    table = component.log_likelihood(component.prepare(MultinomialParams(probs)), X)
    expected = np.column_stack([multinomial.logpmf(X, n=7, p=p) for p in probs])
    np.testing.assert_allclose(table, expected, rtol=1e-12)
    posteriors = rng.dirichlet(np.ones(k), size=len(X))
    new = component.m_step(_stats(component, d, X, posteriors), None).emissionprob
    weighted = posteriors.T @ X
    np.testing.assert_allclose(new, weighted / weighted.sum(axis=1, keepdims=True), rtol=1e-12)
    draws = component.sample(MultinomialParams(probs), 1, 4, np.random.RandomState(0))
    assert draws.shape == (4, d) and np.all(draws.sum(axis=1) == 7)


# -- the composite against brute force -------------------------------------------------
def _brute_force_pass(startprob, transmat, log_b):
    """log p(X), state posteriors and expected start/transition counts of one short
    sequence by summing over every path."""
    n, k = log_b.shape
    paths = np.array(list(itertools.product(range(k), repeat=n)))
    logp = (np.log(startprob)[paths[:, 0]] + log_b[np.arange(n), paths].sum(axis=1)
            + np.log(transmat)[paths[:, :-1], paths[:, 1:]].sum(axis=1))
    total = logsumexp(logp)
    weight = np.exp(logp - total)
    posteriors = np.stack([np.bincount(paths[:, t], weight, minlength=k) for t in range(n)])
    trans = np.zeros((k, k))
    for t in range(n - 1):
        np.add.at(trans, (paths[:, t], paths[:, t + 1]), weight)
    return total, posteriors, posteriors[0], trans


def test_composite_pass_equals_brute_force_over_paths(rng):
    k, s, n = 3, 4, 6
    X = rng.randint(0, s, n)
    params = HMMParams(rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k), size=k),
                       CategoricalParams(rng.dirichlet(np.ones(s), size=k)))
    composite = HMMComposite(Categorical(k, s), s)
    stats = pass_stats(composite, params, [Block(X, None, np.array([0, n]))])
    log_b = np.log(params.emission.emissionprob[:, X]).T
    total, posteriors, start, trans = _brute_force_pass(params.startprob, params.transmat, log_b)
    np.testing.assert_allclose(stats.loglik, total, rtol=1e-12)
    np.testing.assert_allclose(stats["start"], start, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(stats["trans"], trans, rtol=1e-10, atol=1e-14)
    counts = np.stack([[posteriors[X == symbol, state].sum() for symbol in range(s)]
                       for state in range(k)])
    np.testing.assert_allclose(stats["counts"], counts, rtol=1e-10, atol=1e-14)
    loglik, inferred = composite.posteriors(params, X, None, np.array([0, n]))
    np.testing.assert_allclose(loglik, [total], rtol=1e-12)
    np.testing.assert_allclose(inferred, posteriors, rtol=1e-10, atol=1e-14)


def test_composite_holds_no_estimator_and_pickles_small():
    X = np.random.RandomState(0).randint(0, 4, (300, 1))
    estimator = fastem.CategoricalHMM(3, random_state=0, callback=lambda *a: False)
    estimator._check_common()
    symbols, _ = estimator._validate(X, fitting=True)
    composite = estimator._composite(estimator._n_emission_features(symbols))
    shipped = pickle.dumps(composite)
    assert b"CategoricalHMM" not in shipped
    assert len(shipped) < 2000


class _CountingPoisson(Poisson):
    """A Poisson component that counts its ``prepare`` calls."""

    calls = 0

    def prepare(self, params):
        type(self).calls += 1
        return super().prepare(params)


def test_prepare_runs_once_per_pass_whatever_the_groups(monkeypatch):
    import fastem.composites.hmm as composite_module

    X = np.random.RandomState(1).poisson(3.0, size=(600, 2))
    monkeypatch.setattr(composite_module, "_TABLE_BYTES", 16 * 2 * 50)  # many groups
    monkeypatch.setattr(composite_module, "_MIN_GROUP_ROWS", 1)
    lengths = [50] * 12
    _CountingPoisson.calls = 0
    model = fastem.HMM(_CountingPoisson(2), random_state=0, n_iter=5, tol=-np.inf)
    model.fit(X, lengths)
    assert model.monitor_.iter == 5
    assert _CountingPoisson.calls == 5


@pytest.mark.parametrize("options", [{}, {"acceleration": "squarem"},
                                     {"params": "st", "init_params": "st"}])
def test_generic_hmm_over_poisson_is_bitwise_poisson_hmm(options):
    X = np.random.RandomState(2).poisson(4.0, size=(400, 3))
    lengths = [100, 150, 150]
    letters = {key: value.replace("e", "l") for key, value in options.items()
               if key.endswith("params")}
    reference = fastem.PoissonHMM(3, random_state=5, n_iter=8,
                                  **{**options, **letters})
    generic = fastem.HMM(Poisson(3), random_state=5, n_iter=8, **options)
    if "init_params" in options:
        rates = np.random.RandomState(3).uniform(1, 6, (3, 3))
        reference.lambdas_ = rates
        generic.emission_ = PoissonParams(rates)
    reference.fit(X, lengths)
    generic.fit(X, lengths)
    np.testing.assert_array_equal(generic.transmat_, reference.transmat_)
    np.testing.assert_array_equal(generic.emission_.lambdas, reference.lambdas_)
    assert generic.monitor_.history == reference.monitor_.history
    assert generic.bic(X, lengths) == reference.bic(X, lengths)
    np.testing.assert_array_equal(generic.predict_proba(X, lengths),
                                  reference.predict_proba(X, lengths))


# -- a component written here, in an HMM, against NumPy Baum-Welch ----------------------
@dataclass
class _Rates:
    rates: np.ndarray


class _Exponential(Component):
    """Exponential emissions (one column): what a user writes to get an HMM."""

    def __init__(self, n_components):
        self.n_components = n_components

    def check_data(self, X, fitting):
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        if X.shape[1] != 1 or np.any(X < 0):
            raise ValueError("X must be one column of non-negative values")
        return np.ascontiguousarray(X)

    def fields(self, n_features):
        return {"mass": (self.n_components,), "total": (self.n_components,)}

    def log_likelihood(self, prepared, X, out=None, cache=None):
        table = np.log(prepared.rates)[None, :] - X * prepared.rates[None, :]
        if out is None:
            return table
        out[:] = table
        return out

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        out["mass"][...] += posteriors.sum(axis=0)
        out["total"][...] += posteriors.T @ X[:, 0]

    def m_step(self, stats, params):
        return _Rates(stats["mass"] / stats["total"])

    def initialize(self, X, posteriors, random_state):
        return _Rates(random_state.uniform(0.5, 2.0, self.n_components) / X.mean())

    def pack(self, params):
        return np.log(params.rates)

    def unpack(self, vector, like):
        return _Rates(np.exp(vector))

    def n_parameters(self, n_features):
        return self.n_components

    def sample(self, params, state, n_samples, random_state):
        return random_state.exponential(1.0 / params.rates[state], (n_samples, 1))


def _numpy_baum_welch(X, startprob, transmat, rates, n_iter):
    """Scaled Baum-Welch for one sequence of exponential emissions, in NumPy."""
    history = []
    for _ in range(n_iter):
        b = rates[None, :] * np.exp(-X[:, :1] * rates[None, :])
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
        xi = sum(np.outer(alpha[t], b[t + 1] * beta[t + 1]) * transmat / scale[t + 1]
                 for t in range(n - 1))
        history.append(np.log(scale).sum())
        startprob = gamma[0] / gamma[0].sum()
        transmat = xi / xi.sum(axis=1, keepdims=True)
        rates = gamma.sum(axis=0) / (gamma.T @ X[:, 0])
    return startprob, transmat, rates, history


def test_user_component_in_an_hmm_matches_numpy_baum_welch():
    rng = np.random.RandomState(7)
    states = np.repeat([0, 1, 0, 1], 60)
    X = rng.exponential(np.where(states == 0, 0.5, 4.0))[:, None]
    model = fastem.HMM(_Exponential(2), random_state=3, n_iter=6, tol=-np.inf).fit(X)
    start = fastem.HMM(_Exponential(2), random_state=3, n_iter=0).fit(X)
    startprob, transmat, rates, history = _numpy_baum_welch(
        X, start.startprob_, start.transmat_, start.emission_.rates, 6)
    np.testing.assert_allclose(model.monitor_.history, history, rtol=1e-10)
    np.testing.assert_allclose(model.startprob_, startprob, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.transmat_, transmat, rtol=1e-8)
    np.testing.assert_allclose(model.emission_.rates, rates, rtol=1e-8)
    sampled, path = model.sample(50, random_state=0)
    assert sampled.shape == (50, 1) and path.shape == (50,)
    assert model.predict(X).shape == (len(X),)


def test_generic_hmm_refuses_what_is_not_a_component():
    with pytest.raises(TypeError, match="component must be a fastem.components.Component"):
        fastem.HMM(object()).fit(np.zeros((5, 1)))


# -- the Gaussian emissions -------------------------------------------------------------
def test_map_gaussian_m_step_is_hmmlearns_diagonal_rule(rng):
    from fastem.components.gaussian_map import GaussianStates, MAPGaussian
    from fastem.components.structures import STRUCTURES

    k, d = 2, 3
    X = rng.randn(50, d) * 2.0 + 1.0
    posteriors = rng.dirichlet(np.ones(k), size=len(X))
    start = GaussianStates(rng.randn(k, d), np.ones((k, d)))
    component = MAPGaussian(STRUCTURES["diag"], k, means_prior=0.5, means_weight=2.0,
                            covars_prior=0.1, covars_weight=3.0)
    layout = StatsLayout(component.fields(d), recentre=component.recentre)
    stats = layout.zeros(component.shift(start))
    component.accumulate(component.prepare(start), X, posteriors, stats)
    new = component.m_step(stats, start)
    denom = posteriors.sum(axis=0)[:, None]
    obs = posteriors.T @ X
    means = (2.0 * 0.5 + obs) / (2.0 + denom)
    np.testing.assert_allclose(new.means, means, rtol=1e-12)
    # hmmlearn's diagonal covariance update, from raw moments.
    obs_sq = posteriors.T @ X ** 2
    numerator = 2.0 * (means - 0.5) ** 2 + obs_sq - 2 * means * obs + means ** 2 * denom
    covars = (0.1 + numerator) / np.maximum(3.0 - 1.0 + denom, 1e-5)
    np.testing.assert_allclose(new.covars, covars, rtol=1e-9)


def test_gaussian_hmm_factors_its_covariances_once_per_pass(monkeypatch):
    import fastem.components.gaussian_map as gaussian_map
    import fastem.composites.hmm as composite_module

    calls = []
    original = gaussian_map.regularised_cholesky

    def counted(spec, covars):
        calls.append(1)
        return original(spec, covars)

    X = np.random.RandomState(4).randn(600, 2)
    monkeypatch.setattr(composite_module, "_TABLE_BYTES", 16 * 2 * 50)  # 12 groups
    monkeypatch.setattr(composite_module, "_MIN_GROUP_ROWS", 1)
    monkeypatch.setattr(gaussian_map, "regularised_cholesky", counted)
    model = fastem.GaussianHMM(2, "full", random_state=0, n_iter=4, tol=-np.inf)
    model.fit(X, [50] * 12)
    assert model.monitor_.iter == 4
    # One factorisation per pass (prepare) and one per M-step (its check), whatever
    # the number of groups (the hooks factored twice per group per pass).
    assert len(calls) == 2 * 4


def test_gaussian_mixture_states_lattice_and_accumulation_match_scipy(rng):
    from scipy.stats import multivariate_normal

    from fastem.components.gaussian_mixtures import GaussianMixtures, MixtureStates
    from fastem.components.structures import STRUCTURES

    k, m, d = 2, 3, 2
    X = rng.randn(40, d)
    weights = rng.dirichlet(np.ones(m), size=k)
    means = rng.randn(k, m, d)
    covars = rng.uniform(0.5, 2.0, (k, m, d))
    component = GaussianMixtures(STRUCTURES["diag"].within_groups(m), k, m)
    params = MixtureStates(weights, means, covars)
    prepared = component.prepare(params)
    table = component.log_likelihood(prepared, X)
    expected = np.stack([logsumexp([np.log(weights[s, c]) + multivariate_normal(
        means[s, c], np.diag(covars[s, c])).logpdf(X) for c in range(m)], axis=0)
        for s in range(k)], axis=1)
    np.testing.assert_allclose(table, expected, rtol=1e-10)
    posteriors = rng.dirichlet(np.ones(k), size=len(X))
    layout = StatsLayout(component.fields(d), recentre=component.recentre)
    stats = layout.zeros(component.shift(params))
    component.accumulate(prepared, X, posteriors, stats)
    log_within = np.stack([np.stack([np.log(weights[s, c]) + multivariate_normal(
        means[s, c], np.diag(covars[s, c])).logpdf(X) for c in range(m)], axis=1)
        for s in range(k)], axis=1)
    within = np.exp(log_within - logsumexp(log_within, axis=2, keepdims=True))
    resp = (posteriors[:, :, None] * within).reshape(len(X), k * m)
    np.testing.assert_allclose(stats["mass"], resp.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats["first"], resp.T @ X - resp.sum(axis=0)[:, None]
                               * means.reshape(k * m, d), rtol=1e-9, atol=1e-12)
