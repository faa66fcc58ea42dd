"""mclust's EEI (one diagonal covariance shared by every component), added as one entry of
the structures registry, in GaussianMixture, GaussianHMM and GMMHMM: EM against NumPy
references written here, from the same start, and the estimators' other paths."""

import numpy as np
import pytest
from scipy.special import logsumexp

import fastem
from fastem.components.structures import EEI, STRUCTURES

EPS = 10 * np.finfo(np.float64).eps  # scikit-learn's mass guard, which the mixture keeps


def _data(seed=0, n=400):
    rng = np.random.RandomState(seed)
    scale = np.array([1.0, 2.0, 0.5])
    centres = np.array([[0.0, 0.0, 0.0], [4.0, -3.0, 1.0], [-3.0, 4.0, 2.0]])
    labels = rng.randint(3, size=n)
    return centres[labels] + rng.normal(size=(n, 3)) * scale


def _log_normal_diag(X, means, variances):
    """(n, K) log N(x; mu_k, diag(variances)) with one shared variance vector."""
    return (-0.5 * np.log(2 * np.pi * variances).sum()
            - 0.5 * (((X[:, None, :] - means[None]) ** 2) / variances).sum(axis=2))


# -- GaussianMixture --------------------------------------------------------------------
def _mixture_em(X, weights, means, variances, n_iter, reg_covar):
    """EM for a Gaussian mixture with a shared diagonal covariance (scikit-learn's steps:
    E-step, then the M-step with its mass guard and reg_covar)."""
    bounds = []
    for _ in range(n_iter):
        logp = np.log(weights) + _log_normal_diag(X, means, variances)
        norm = logsumexp(logp, axis=1)
        bounds.append(norm.mean())
        resp = np.exp(logp - norm[:, None])
        nk = resp.sum(axis=0) + EPS
        weights = nk / nk.sum()
        means = resp.T @ X / nk[:, None]
        scatter = sum(resp[:, k] @ (X - means[k]) ** 2 for k in range(len(nk)))
        variances = scatter / nk.sum() + reg_covar
    return weights, means, variances, bounds


def _start(X, k=3, seed=1):
    rng = np.random.RandomState(seed)
    means = X[rng.choice(len(X), k, replace=False)]
    return np.full(k, 1.0 / k), means, X.var(axis=0)


def test_gaussian_mixture_em_matches_numpy():
    X = _data()
    weights, means, variances = _start(X)
    model = fastem.GaussianMixture(3, covariance_type="EEI", weights_init=weights,
                                   means_init=means, precisions_init=1.0 / variances,
                                   max_iter=6, tol=0.0, reg_covar=1e-6).fit(X)
    ref_w, ref_m, ref_v, bounds = _mixture_em(X, weights, means, variances, 6, 1e-6)
    assert model.n_iter_ == 6
    assert model.covariances_.shape == (3,) and model.precisions_cholesky_.shape == (3,)
    np.testing.assert_allclose(model.weights_, ref_w, rtol=1e-8)
    np.testing.assert_allclose(model.means_, ref_m, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.covariances_, ref_v, rtol=1e-8)
    np.testing.assert_allclose(model.precisions_cholesky_, 1.0 / np.sqrt(ref_v), rtol=1e-8)
    np.testing.assert_allclose(model.lower_bound_, bounds[-1], rtol=1e-10)
    reference = logsumexp(np.log(ref_w) + _log_normal_diag(X, ref_m, ref_v), axis=1)
    np.testing.assert_allclose(model.score_samples(X), reference, rtol=1e-8)
    logp = np.log(ref_w) + _log_normal_diag(X, ref_m, ref_v)
    np.testing.assert_array_equal(model.predict(X), logp.argmax(axis=1))
    np.testing.assert_allclose(model.predict_proba(X),
                               np.exp(logp - logsumexp(logp, axis=1)[:, None]), atol=1e-8)


def test_gaussian_mixture_bic_counts_one_shared_variance_per_feature():
    X = _data()
    model = fastem.GaussianMixture(3, covariance_type="EEI", random_state=0).fit(X)
    n, d = X.shape
    parameters = (3 - 1) + 3 * d + d
    np.testing.assert_allclose(model.bic(X),
                               -2 * model.score(X) * n + parameters * np.log(n), rtol=1e-12)
    assert EEI.n_covariance_parameters(3, d) == d


def test_one_component_eei_is_the_diagonal_model():
    X = _data()
    eei = fastem.GaussianMixture(1, covariance_type="EEI", random_state=0).fit(X)
    diag = fastem.GaussianMixture(1, covariance_type="diag", random_state=0).fit(X)
    np.testing.assert_allclose(eei.covariances_, diag.covariances_[0], rtol=1e-12)
    np.testing.assert_allclose(eei.score_samples(X), diag.score_samples(X), rtol=1e-12)


def test_squarem_reaches_the_plain_em_optimum():
    X = _data(seed=3)
    kwargs = dict(covariance_type="EEI", random_state=0, tol=1e-12, max_iter=2000)
    plain = fastem.GaussianMixture(3, **kwargs).fit(X)
    fast = fastem.GaussianMixture(3, acceleration="squarem", **kwargs).fit(X)
    assert plain.converged_ and fast.converged_
    np.testing.assert_allclose(fast.score(X), plain.score(X), rtol=1e-9)
    np.testing.assert_allclose(fast.covariances_, plain.covariances_, rtol=1e-5)


def test_sample_draws_the_shared_variances():
    X = _data()
    model = fastem.GaussianMixture(3, covariance_type="EEI", random_state=0).fit(X)
    draws, labels = model.sample(60_000)
    for k in range(3):
        rows = draws[labels == k]
        np.testing.assert_allclose(rows.var(axis=0), model.covariances_, rtol=0.05)
        np.testing.assert_allclose(rows.mean(axis=0), model.means_[k],
                                   atol=4 * np.sqrt(model.covariances_.max() / len(rows)))


def test_partial_fit_approaches_the_batch_optimum():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    scale = np.array([1.0, 0.5])

    def draw(n):
        return centres[rng.randint(3, size=n)] + rng.normal(size=(n, 2)) * scale

    online = fastem.GaussianMixture(3, covariance_type="EEI", random_state=0,
                                    learning_decay=0.6)
    for _ in range(80):
        online.partial_fit(draw(2000))
    batch = fastem.GaussianMixture(3, covariance_type="EEI", random_state=0).fit(draw(50_000))
    assert online.covariances_.shape == (2,)
    np.testing.assert_allclose(online.covariances_, batch.covariances_, rtol=0.05)
    order = [np.argsort(m[:, 0] + 10 * m[:, 1]) for m in (online.means_, batch.means_)]
    np.testing.assert_allclose(online.means_[order[0]], batch.means_[order[1]], atol=0.05)


def test_missing_entries_are_marginalised_under_the_shared_variances():
    X = _data()
    X[::5, 1] = np.nan
    X[::7, 2] = np.nan
    model = fastem.GaussianMixture(3, covariance_type="EEI", random_state=0,
                                   missing="marginalize").fit(X)
    w, m, var = model.weights_, model.means_, model.covariances_
    observed = ~np.isnan(X)
    terms = -0.5 * (np.log(2 * np.pi * var) + (np.nan_to_num(X)[:, None] - m) ** 2 / var)
    logp = np.log(w) + (terms * observed[:, None, :]).sum(axis=2)
    np.testing.assert_allclose(model.score_samples(X), logsumexp(logp, axis=1), rtol=1e-8)


# -- GaussianHMM --------------------------------------------------------------------------
def _forward_backward(logb, startprob, transmat):
    """(posteriors (T, K), summed transition posteriors (K, K), log-likelihood), in logs."""
    T, K = logb.shape
    log_a = np.log(transmat)
    alpha = np.empty((T, K))
    beta = np.zeros((T, K))
    alpha[0] = np.log(startprob) + logb[0]
    for t in range(1, T):
        alpha[t] = logsumexp(alpha[t - 1][:, None] + log_a, axis=0) + logb[t]
    for t in range(T - 2, -1, -1):
        beta[t] = logsumexp(log_a + logb[t + 1] + beta[t + 1], axis=1)
    loglik = logsumexp(alpha[-1])
    xi = np.zeros((K, K))
    for t in range(T - 1):
        xi += np.exp(alpha[t][:, None] + log_a + logb[t + 1] + beta[t + 1] - loglik)
    return np.exp(alpha + beta - loglik), xi, loglik


def _sequences(X, lengths):
    return np.split(X, np.cumsum(lengths)[:-1])


def _hmm_start(d, k=3, seed=2):
    rng = np.random.RandomState(seed)
    transmat = rng.dirichlet(np.full(k, 3.0), size=k)
    return (np.full(k, 1.0 / k), transmat, rng.normal(size=(k, d)) * 3,
            np.ones(d) * 2.0)


def _gaussian_hmm_em(X, lengths, start, n_iter, covars_prior, covars_weight):
    """Baum-Welch for Gaussian emissions with one shared diagonal covariance; the
    covariance step is the structure's MAP rule (hmmlearn's diagonal one, pooled):
    (prior + sum_k sum_t g_tk (x_t - mu_k)^2) / max(max(weight - 1, 0) + sum g, 1e-5)."""
    startprob, transmat, means, var = start
    history = []
    for _ in range(n_iter):
        gammas, start_counts, trans_counts, total = [], 0.0, 0.0, 0.0
        for seq in _sequences(X, lengths):
            gamma, xi, loglik = _forward_backward(_log_normal_diag(seq, means, var),
                                                  startprob, transmat)
            gammas.append(gamma)
            start_counts = start_counts + gamma[0]
            trans_counts = trans_counts + xi
            total += loglik
        history.append(total)
        gamma = np.concatenate(gammas)
        startprob = start_counts / start_counts.sum()
        transmat = trans_counts / trans_counts.sum(axis=1, keepdims=True)
        post = gamma.sum(axis=0)
        means = gamma.T @ X / post[:, None]
        scatter = sum(gamma[:, k] @ (X - means[k]) ** 2 for k in range(len(post)))
        denominator = max(max(covars_weight - 1.0, 0.0) + post.sum(), 1e-5)
        var = (covars_prior + scatter) / denominator
    return startprob, transmat, means, var, history


@pytest.mark.parametrize("covars_prior, covars_weight", [(1e-2, 1.0), (0.5, 4.0)])
def test_gaussian_hmm_baum_welch_matches_numpy(covars_prior, covars_weight):
    X, lengths = _data(seed=4, n=300), [120, 100, 80]
    start = _hmm_start(3)
    model = fastem.GaussianHMM(3, covariance_type="EEI", init_params="", n_iter=5, tol=0.0,
                               covars_prior=covars_prior, covars_weight=covars_weight)
    model.startprob_, model.transmat_, model.means_, model.covars_ = start
    model.fit(X, lengths)
    startprob, transmat, means, var, history = _gaussian_hmm_em(
        X, lengths, start, 5, covars_prior, covars_weight)
    np.testing.assert_allclose(model.startprob_, startprob, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.transmat_, transmat, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.means_, means, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model._covars_, var, rtol=1e-8)
    np.testing.assert_allclose(model.covars_, np.repeat(np.diag(var)[None], 3, axis=0),
                               rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(list(model.monitor_.history), history[-len(model.monitor_.history):],
                               rtol=1e-9)
    posteriors = np.concatenate([_forward_backward(_log_normal_diag(seq, means, var),
                                                   startprob, transmat)[0]
                                 for seq in _sequences(X, lengths)])
    np.testing.assert_allclose(model.predict_proba(X, lengths), posteriors, atol=1e-8)


def test_gaussian_hmm_samples_and_counts_parameters():
    X, lengths = _data(seed=5, n=300), [150, 150]
    model = fastem.GaussianHMM(3, covariance_type="EEI", random_state=0, n_iter=20)
    model.fit(X, lengths)
    n, d = X.shape
    parameters = 2 + 3 * 2 + 3 * d + d  # start, transitions, means, one shared variance
    np.testing.assert_allclose(model.bic(X, lengths),
                               -2 * model.score(X, lengths) + parameters * np.log(n),
                               rtol=1e-12)
    draws, states = model.sample(40_000, random_state=1)
    for k in np.unique(states):
        rows = draws[states == k]
        if len(rows) > 2000:
            np.testing.assert_allclose(rows.var(axis=0), model._covars_, rtol=0.1)


# -- GMMHMM ---------------------------------------------------------------------------
def _gmm_hmm_em(X, lengths, start, n_iter):
    """Baum-Welch for states emitting mixtures whose M components share the state's one
    diagonal covariance (maximum likelihood: GMMHMM's default priors)."""
    startprob, transmat, weights, means, var = start
    k, m, d = means.shape
    history = []
    for _ in range(n_iter):
        gammas, start_counts, trans_counts, total = [], 0.0, 0.0, 0.0
        for seq in _sequences(X, lengths):
            within = np.stack([np.log(weights[s]) + _log_normal_diag(seq, means[s], var[s])
                               for s in range(k)], axis=1)  # (T, K, M)
            gamma, xi, loglik = _forward_backward(logsumexp(within, axis=2), startprob,
                                                  transmat)
            resp = np.exp(within - logsumexp(within, axis=2, keepdims=True))
            gammas.append(gamma[:, :, None] * resp)
            start_counts = start_counts + gamma[0]
            trans_counts = trans_counts + xi
            total += loglik
        history.append(total)
        g = np.concatenate(gammas)  # (T, K, M)
        startprob = start_counts / start_counts.sum()
        transmat = trans_counts / trans_counts.sum(axis=1, keepdims=True)
        post_mix = g.sum(axis=0)
        weights = post_mix / post_mix.sum(axis=1, keepdims=True)
        means = np.einsum("tkm,td->kmd", g, X) / post_mix[:, :, None]
        scatter = np.einsum("tkm,tkmd->kd", g, (X[:, None, None, :] - means[None]) ** 2)
        var = scatter / post_mix.sum(axis=1)[:, None]
    return startprob, transmat, weights, means, var, history


def test_gmm_hmm_baum_welch_matches_numpy():
    X, lengths = _data(seed=6, n=300), [160, 140]
    rng = np.random.RandomState(3)
    start = (np.array([0.6, 0.4]), np.array([[0.8, 0.2], [0.3, 0.7]]),
             np.array([[0.5, 0.5], [0.3, 0.7]]), rng.normal(size=(2, 2, 3)) * 3,
             np.array([[1.0, 2.0, 1.5], [2.0, 1.0, 0.5]]))
    model = fastem.GMMHMM(2, n_mix=2, covariance_type="EEI", init_params="", n_iter=5,
                          tol=0.0)
    (model.startprob_, model.transmat_, model.weights_, model.means_,
     model.covars_) = start
    model.fit(X, lengths)
    startprob, transmat, weights, means, var, history = _gmm_hmm_em(X, lengths, start, 5)
    assert model.covars_.shape == (2, 3)  # one shared diagonal per state
    np.testing.assert_allclose(model.startprob_, startprob, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.transmat_, transmat, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.weights_, weights, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.means_, means, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.covars_, var, rtol=1e-8)
    np.testing.assert_allclose(list(model.monitor_.history), history[-len(model.monitor_.history):],
                               rtol=1e-9)
    n, d = X.shape
    parameters = 1 + 2 + 2 * (2 - 1) + 2 * 2 * d + 2 * d
    np.testing.assert_allclose(model.bic(X, lengths),
                               -2 * model.score(X, lengths) + parameters * np.log(n),
                               rtol=1e-12)


# -- files and refusals -------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: fastem.GaussianMixture(3, covariance_type="EEI", random_state=0),
    lambda: fastem.GaussianHMM(3, covariance_type="EEI", random_state=0, n_iter=5),
    lambda: fastem.GMMHMM(2, n_mix=2, covariance_type="EEI", random_state=0, n_iter=5),
], ids=["GaussianMixture", "GaussianHMM", "GMMHMM"])
def test_save_load_round_trip(make, tmp_path):
    X = _data(seed=7, n=200)
    model = make().fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastem.load(path)
    assert type(loaded) is type(model) and loaded.covariance_type == "EEI"
    assert loaded.score(X) == model.score(X)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    for name in ("covariances_", "precisions_cholesky_", "_covars_", "covars_"):
        if hasattr(model, name):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))


@pytest.mark.parametrize("cls", [fastem.BayesianGaussianMixture, fastem.VariationalGaussianHMM])
def test_variational_models_refuse_eei_naming_covariance_type(cls):
    with pytest.raises(ValueError, match="covariance_type='EEI' is not supported"):
        cls(covariance_type="EEI").fit(_data(n=60))


def test_eei_is_one_registered_entry():
    assert STRUCTURES["EEI"] is EEI and EEI.shared and EEI.diagonal
    from fastem import cli

    assert "EEI" in cli.COVARIANCE_TYPES
