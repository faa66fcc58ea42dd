"""Hidden Markov models: brute force over all state paths, the umbrella example, hmmlearn."""

import itertools
import warnings

import numpy as np
import pytest

from fastem.hmm import CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM
from fastem.hmm.sequences import check_lengths, sequence_units
from fastem.kernels import hmm as hk

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _umbrella():
    model = CategoricalHMM(2)
    model.startprob_ = np.array([0.5, 0.5])
    model.transmat_ = np.array([[0.7, 0.3], [0.3, 0.7]])
    model.emissionprob_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    return model, np.array([[0], [0], [1], [0], [0]])


def test_umbrella_example():
    model, X = _umbrella()
    assert abs(model.score(X) - (-3.372502044332175)) < 1e-12
    log_joint, path = model.decode(X, algorithm="viterbi")
    np.testing.assert_array_equal(path, [0, 0, 1, 0, 0])
    assert abs(log_joint - (-4.459028291034797)) < 1e-12


def _random_model(rng, kind, k, d=2, n_symbols=3):
    startprob = rng.dirichlet(np.ones(k))
    transmat = rng.dirichlet(np.ones(k), size=k)
    if kind == "categorical":
        model = CategoricalHMM(k)
        model.emissionprob_ = rng.dirichlet(np.ones(n_symbols), size=k)
    elif kind == "poisson":
        model = PoissonHMM(k)
        model.lambdas_ = rng.uniform(0.3, 5.0, size=(k, d))
    elif kind == "multinomial":
        model = MultinomialHMM(k, n_trials=5)
        model.emissionprob_ = rng.dirichlet(np.ones(n_symbols), size=k)
    else:
        model = GaussianHMM(k, covariance_type=kind)
        model.means_ = rng.normal(scale=1.5, size=(k, d))
        a = rng.normal(size=(k, d, d))
        full = a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(d)
        model.covars_ = {"full": full, "tied": full[0], "diag": rng.uniform(0.3, 2, (k, d)),
                         "spherical": rng.uniform(0.3, 2, k)}[kind]
    model.startprob_ = startprob
    model.transmat_ = transmat
    return model


def _emission_log_table(model, X):
    from scipy.stats import multinomial, multivariate_normal, poisson

    if isinstance(model, CategoricalHMM):
        return np.log(model.emissionprob_[:, X[:, 0]]).T
    if isinstance(model, PoissonHMM):
        return np.column_stack([poisson.logpmf(X, lam).sum(axis=1) for lam in model.lambdas_])
    if isinstance(model, MultinomialHMM):
        return np.column_stack([multinomial.logpmf(X, n=X.sum(axis=1), p=p)
                                for p in model.emissionprob_])
    return np.column_stack([multivariate_normal(model.means_[k], model.covars_[k]).logpdf(X)
                            for k in range(model.n_components)]).reshape(len(X), -1)


def _brute_force(model, X, log_b=None):
    """log p(X), posteriors, expected transition counts and the best path, from all K^T paths."""
    log_b = _emission_log_table(model, X) if log_b is None else log_b
    k, t_len = model.n_components, len(X)
    log_a = np.log(model.transmat_)
    paths, logs = [], []
    for path in itertools.product(range(k), repeat=t_len):
        value = np.log(model.startprob_[path[0]]) + log_b[0, path[0]]
        for t in range(1, t_len):
            value += log_a[path[t - 1], path[t]] + log_b[t, path[t]]
        paths.append(path)
        logs.append(value)
    logs = np.array(logs)
    total = np.logaddexp.reduce(logs)
    weights = np.exp(logs - total)
    posteriors = np.zeros((t_len, k))
    transitions = np.zeros((k, k))
    for path, w in zip(paths, weights, strict=True):
        for t in range(t_len):
            posteriors[t, path[t]] += w
            if t:
                transitions[path[t - 1], path[t]] += w
    best = int(np.argmax(logs))
    return total, posteriors, transitions, np.array(paths[best]), logs[best]


def _sample_input(model, rng, t_len):
    if isinstance(model, CategoricalHMM):
        return rng.randint(model.emissionprob_.shape[1], size=(t_len, 1))
    if isinstance(model, PoissonHMM):
        return rng.poisson(2.0, size=(t_len, model.lambdas_.shape[1]))
    if isinstance(model, MultinomialHMM):
        return rng.multinomial(5, np.ones(3) / 3, size=t_len)
    return rng.normal(scale=2.0, size=(t_len, model.means_.shape[1]))


KINDS = ["categorical", "poisson", "multinomial", *COVARIANCE_TYPES]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k,t_len,seed", [(2, 6, 0), (3, 5, 1), (3, 6, 2), (1, 4, 3)])
def test_matches_brute_force_over_all_paths(kind, k, t_len, seed):
    pytest.importorskip("scipy")
    rng = np.random.RandomState(seed)
    model = _random_model(rng, kind, k)
    X = _sample_input(model, rng, t_len)
    total, posteriors, transitions, path, best = _brute_force(model, X)
    assert abs(model.score(X) - total) < 1e-10 * max(1.0, abs(total))
    np.testing.assert_allclose(model.predict_proba(X), posteriors, atol=1e-12)
    log_b = _emission_log_table(model, X)
    bounds = check_lengths(None, t_len)
    out, loglik = np.empty_like(log_b), np.empty(1)
    counts = hk.forward_backward(log_b, bounds, sequence_units(bounds), model.startprob_,
                                 model.transmat_, np.empty(0), out, loglik, np.zeros(k + k * k))
    assert abs(loglik[0] - total) < 1e-10 * max(1.0, abs(total))
    np.testing.assert_allclose(counts[k:].reshape(k, k), transitions, atol=1e-12)
    np.testing.assert_allclose(counts[:k], posteriors[0], atol=1e-12)
    log_joint, states = model.decode(X, algorithm="viterbi")
    np.testing.assert_array_equal(states, path)
    assert abs(log_joint - best) < 1e-10 * max(1.0, abs(best))


def test_sequences_are_independent():
    rng = np.random.RandomState(5)
    model = _random_model(rng, "diag", 3)
    parts = [_sample_input(model, rng, n) for n in (7, 1, 30, 12)]
    X = np.vstack(parts)
    per_sequence = model.score(X, lengths=[7, 1, 30, 12], per_sequence=True)
    np.testing.assert_allclose(per_sequence, [model.score(p) for p in parts], rtol=1e-12)
    np.testing.assert_allclose(model.score(X, [7, 1, 30, 12]), per_sequence.sum(), rtol=1e-12)
    posteriors = model.predict_proba(X, [7, 1, 30, 12])
    np.testing.assert_allclose(posteriors[8:38], model.predict_proba(parts[2]), atol=1e-12)


def _hmmlearn_pair(kind, seed):
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.RandomState(seed)
    source = _random_model(rng, kind, 3, d=3, n_symbols=5)
    if kind == "categorical":
        ours = CategoricalHMM(3, n_iter=3, tol=0.0, init_params="")
        theirs = hmm.CategoricalHMM(3, n_iter=3, tol=0.0, init_params="")
        attributes = ["emissionprob_"]
    elif kind == "poisson":
        ours = PoissonHMM(3, n_iter=3, tol=0.0, init_params="")
        theirs = hmm.PoissonHMM(3, n_iter=3, tol=0.0, init_params="")
        attributes = ["lambdas_"]
    elif kind == "multinomial":
        ours = MultinomialHMM(3, n_trials=5, n_iter=3, tol=0.0, init_params="")
        theirs = hmm.MultinomialHMM(3, n_trials=5, n_iter=3, tol=0.0, init_params="")
        attributes = ["emissionprob_"]
    else:
        ours = GaussianHMM(3, covariance_type=kind, n_iter=3, tol=0.0, init_params="")
        theirs = hmm.GaussianHMM(3, covariance_type=kind, n_iter=3, tol=0.0, init_params="")
        attributes = ["means_", "_covars_"]
    for model in (ours, theirs):
        for name in ["startprob_", "transmat_", *attributes]:
            setattr(model, name, np.array(getattr(source, name)))
    return ours, theirs, attributes


@pytest.mark.parametrize("kind", KINDS)
def test_parity_with_hmmlearn_from_identical_parameters(kind):
    ours, theirs, attributes = _hmmlearn_pair(kind, seed=7)
    rng = np.random.RandomState(8)
    lengths = [150, 40, 210]
    sampled = [ours.sample(n, random_state=rng)[0] for n in lengths]
    X = np.vstack(sampled)
    if kind in ("categorical", "poisson", "multinomial"):
        X = X.astype(int)
    assert abs(ours.score(X, lengths) / theirs.score(X, lengths) - 1.0) < 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, lengths)
        theirs.fit(X, lengths)
    for name in ["startprob_", "transmat_", *attributes]:
        mine, reference = getattr(ours, name), getattr(theirs, name)
        if kind == "spherical" and name == "_covars_":
            reference = reference[:, 0]  # hmmlearn keeps spherical variances as (K, D) after fit
        np.testing.assert_allclose(mine, reference, rtol=1e-7, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ours.monitor_.history[-1], theirs.monitor_.history[-1],
                               rtol=1e-9)


def test_long_sequence_with_outliers_matches_log_space():
    hmm = pytest.importorskip("hmmlearn.hmm")
    rng = np.random.RandomState(0)
    model = _random_model(rng, "diag", 4)
    X = rng.normal(size=(1_000_000, 2))
    X[rng.choice(len(X), 50, replace=False)] = 1e3  # every state gives these ~ -1e6
    reference = hmm.GaussianHMM(4, covariance_type="diag", implementation="log")
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        setattr(reference, name, np.array(getattr(model, name)))
    ours = model.score(X)
    assert np.isfinite(ours)
    assert abs(ours / reference.score(X) - 1.0) < 1e-9


@pytest.mark.parametrize("kind", ["categorical", "poisson", "multinomial", "diag", "full"])
def test_objective_never_decreases(kind):
    rng = np.random.RandomState(3)
    source = _random_model(rng, kind, 3)
    X, _ = source.sample(2000, random_state=4)
    model = {"categorical": CategoricalHMM(3), "poisson": PoissonHMM(3),
             "multinomial": MultinomialHMM(3, n_trials=5)}.get(
        kind, GaussianHMM(3, covariance_type=kind))
    model.set_params(n_iter=40, tol=0.0, random_state=0)
    model.fit(X, [500, 700, 800])
    history = np.asarray(model.monitor_.history)
    assert len(history) == 40
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[:-1]))
    assert not model.monitor_.decreased and not model.monitor_.converged
    assert model.monitor_.reached_max_iter


def test_left_right_zeros_stay_zero_and_thread_count_does_not_matter():
    rng = np.random.RandomState(1)
    X = np.vstack([rng.normal(size=(400, 2)) + shift for shift in (0, 4, 8)])
    fits = []
    for n_threads in (1, 2):
        model = GaussianHMM(3, n_iter=15, tol=0.0, init_params="mc", params="stmc",
                            n_threads=n_threads, random_state=0)
        model.startprob_ = np.array([1.0, 0.0, 0.0])
        model.transmat_ = np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
        fits.append(model.fit(X, [600, 600]))
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    assert fits[0].startprob_[1] == 0.0 and fits[0].startprob_[2] == 0.0
    assert fits[0].transmat_[0, 2] == 0.0 and np.all(np.tril(fits[0].transmat_, -1) == 0.0)
    assert np.all(np.isfinite(fits[0].transmat_))


def test_map_decode_returns_a_log_probability():
    model, X = _umbrella()
    log_prob, states = model.decode(X, algorithm="map")
    posteriors = model.predict_proba(X)
    np.testing.assert_array_equal(states, posteriors.argmax(axis=1))
    np.testing.assert_allclose(log_prob, np.log(posteriors.max(axis=1)).sum(), rtol=1e-12)
    assert log_prob < 0


@pytest.mark.parametrize("lengths,match", [
    ([2, 2], "sum to 4"), ([5, 0], "positive"), ([5, -1, 1], "positive"),
    ([2.5, 2.5], "integers"), ([], "non-empty"),
])
def test_bad_lengths(lengths, match):
    model, X = _umbrella()
    with pytest.raises(ValueError, match=match):
        model.score(X, lengths)


@pytest.mark.parametrize("X,error,match", [
    ([[0], [2]], ValueError, "symbol 2"), ([[0], [-1]], ValueError, "non-negative"),
    ([[0.5], [1]], ValueError, "integer"), ([["a"], ["b"]], TypeError, "integer symbols"),
    ([[0, 1]], ValueError, "shape"),
])
def test_bad_symbols(X, error, match):
    model, _ = _umbrella()
    with pytest.raises(error, match=match):
        model.score(np.array(X))


def test_bad_user_parameters():
    model, X = _umbrella()
    model.transmat_ = np.array([[0.7, 0.2], [0.3, 0.7]])
    with pytest.raises(ValueError, match="transmat_ rows"):
        model.score(X)
    model, X = _umbrella()
    model.startprob_ = np.array([0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="startprob_"):
        model.score(X)
    model, X = _umbrella()
    model.emissionprob_ = np.array([[0.9, 0.2], [0.2, 0.8]])
    with pytest.raises(ValueError, match="emissionprob_"):
        model.score(X)


@pytest.mark.parametrize("model,X,match", [
    (PoissonHMM(2), [[1, 2], [-1, 0]], "non-negative integer counts"),
    (PoissonHMM(2), [[1, 2], [0.5, 0]], "non-negative integer counts"),
    (MultinomialHMM(2, n_trials=3), [[1, 2], [2, 2]], "row 1 of X sums to 4"),
    (MultinomialHMM(2), [[1, 2], [-2, 5]], "non-negative integer counts"),
])
def test_bad_counts(model, X, match):
    with pytest.raises(ValueError, match=match):
        model.fit(np.array(X))


def test_integer_sequence_weights_equal_repeated_sequences():
    rng = np.random.RandomState(11)
    source = _random_model(rng, "diag", 3)
    a, _ = source.sample(120, random_state=1)
    b, _ = source.sample(80, random_state=2)

    def fitted():
        model = GaussianHMM(3, n_iter=5, tol=0.0, init_params="")
        for name in ("startprob_", "transmat_", "means_", "_covars_"):
            setattr(model, name, np.array(getattr(source, name)))
        return model

    weighted = fitted().fit(np.vstack([a, b]), [120, 80], sample_weight=[2, 1])
    repeated = fitted().fit(np.vstack([a, a, b]), [120, 120, 80])
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name),
                                   rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weighted.monitor_.history, repeated.monitor_.history,
                               rtol=1e-11)
    dropped = fitted().fit(np.vstack([a, b]), [120, 80], sample_weight=[1, 0])
    alone = fitted().fit(a)
    np.testing.assert_allclose(dropped.means_, alone.means_, rtol=1e-10)


@pytest.mark.parametrize("kind", ["categorical", "diag", "full"])
def test_missing_rows_have_likelihood_one(kind):
    pytest.importorskip("scipy")
    rng = np.random.RandomState(4)
    model = _random_model(rng, kind, 3)
    model.missing = "marginalize"
    observed = _sample_input(model, rng, 6)
    log_b = _emission_log_table(model, observed)
    X = observed.astype(np.float64)
    X[[1, 4]] = np.nan
    log_b[[1, 4]] = 0.0
    total, posteriors, _, path, best = _brute_force(model, X, log_b)
    assert abs(model.score(X) - total) < 1e-10 * abs(total)
    np.testing.assert_allclose(model.predict_proba(X), posteriors, atol=1e-12)
    log_joint, states = model.decode(X)
    np.testing.assert_array_equal(states, path)
    assert abs(log_joint - best) < 1e-10 * abs(best)


def test_fit_with_missing_rows_and_the_errors_around_them():
    rng = np.random.RandomState(5)
    source = _random_model(rng, "diag", 2)
    X, _ = source.sample(600, random_state=3)
    X[rng.choice(600, 60, replace=False)] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianHMM(2).fit(X)
    model = GaussianHMM(2, missing="marginalize", n_iter=20, tol=0.0, random_state=0).fit(X)
    history = np.asarray(model.monitor_.history)
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model._covars_))
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[:-1]))
    partial = X.copy()
    partial[0, 0] = np.nan
    partial[0, 1] = 1.0
    assert np.isfinite(model.score(partial))  # Gaussian emissions marginalise partial rows
    counts = np.array([[1.0, 2.0], [np.nan, 3.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="whole missing rows only"):
        PoissonHMM(1, missing="marginalize").fit(counts)


def test_stationary_distribution_and_information_criteria_match_hmmlearn():
    ours, theirs, _ = _hmmlearn_pair("diag", seed=9)
    stationary = ours.get_stationary_distribution()
    np.testing.assert_allclose(stationary @ ours.transmat_, stationary, atol=1e-12)
    np.testing.assert_allclose(stationary, theirs.get_stationary_distribution(), rtol=1e-10)
    X, _ = ours.sample(300, random_state=0)
    theirs.n_features = X.shape[1]
    np.testing.assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-10)


def test_restarts_keep_the_best_run():
    rng = np.random.RandomState(12)
    source = _random_model(rng, "diag", 3)
    X, _ = source.sample(800, random_state=5)
    one = GaussianHMM(3, n_iter=15, random_state=0).fit(X)
    three = GaussianHMM(3, n_iter=15, random_state=0, n_init=3).fit(X)
    # The first restart is the single run (same random stream), so the best of three
    # can only be better.
    assert three.monitor_.history[-1] >= one.monitor_.history[-1] - 1e-9


def test_callback_sees_every_iteration_and_can_stop_the_fit():
    rng = np.random.RandomState(13)
    source = _random_model(rng, "diag", 2)
    X, _ = source.sample(500, random_state=1)
    seen = []

    def callback(iteration, objective, model):
        seen.append((iteration, objective, model.means_.copy()))
        return iteration == 3

    model = GaussianHMM(2, n_iter=50, tol=0.0, random_state=0, callback=callback).fit(X)
    assert [s[0] for s in seen] == [1, 2, 3]
    assert model.monitor_.iter == 3 and not model.monitor_.converged
    np.testing.assert_allclose([s[1] for s in seen], model.monitor_.history)
    np.testing.assert_array_equal(seen[-1][2], model.means_)
