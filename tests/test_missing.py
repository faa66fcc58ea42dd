"""Gaussian mixtures with missing entries: exact EM against SciPy, NumPy and an optimiser."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, blobs

import fastem
from fastem.engine import Block, pass_stats
from fastem.mixture.covariance import SPECS
from fastem.mixture.missing import MissingGaussianMixtureModel, full_covariances
from fastem.mixture.model import GaussianMixtureModel

pytest.importorskip("scipy")
from scipy.optimize import approx_fprime  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from scipy.stats import multivariate_normal  # noqa: E402


def _holes(X, fraction, seed):
    rng = np.random.RandomState(seed)
    Xm = X.copy()
    Xm[rng.rand(*X.shape) < fraction] = np.nan
    return Xm


def _marginal_log_density(Xm, weights, means, covariances):
    out = []
    for row in Xm:
        o = ~np.isnan(row)
        if not o.any():
            out.append(0.0)
            continue
        out.append(logsumexp([np.log(w) + multivariate_normal(m[o], c[np.ix_(o, o)]).logpdf(row[o])
                              for w, m, c in zip(weights, means, covariances, strict=True)]))
    return np.array(out)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_statistics_without_missing_entries_equal_the_ordinary_ones(covariance_type):
    X = blobs(n=900, n_features=4, n_components=3, seed=1)
    fitted = fastem.GaussianMixture(3, covariance_type=covariance_type, max_iter=3,
                                    random_state=0).fit(X)
    params = fitted._get_parameters()
    spec = SPECS[covariance_type]
    ordinary = pass_stats(GaussianMixtureModel(spec, 3, 4, 1e-6, "kmeans"), params, [Block(X)])
    marginal = pass_stats(MissingGaussianMixtureModel(spec, 3, 4, 1e-6, "kmeans"), params,
                          [Block(X)])
    np.testing.assert_allclose(marginal.loglik / marginal.weight,
                               ordinary.loglik / ordinary.weight, rtol=1e-12)
    np.testing.assert_allclose(marginal.flat, ordinary.flat, rtol=1e-10, atol=1e-9)
    plain = fastem.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    same = fastem.GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                                  missing="marginalize").fit(X)
    np.testing.assert_allclose(same.means_, plain.means_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_with_missing_entries_matches_scipy(covariance_type):
    X = blobs(n=400, n_features=4, n_components=2, seed=2)
    Xm = _holes(X, 0.35, seed=3)
    Xm[5] = np.nan  # nothing observed
    model = fastem.GaussianMixture(2, covariance_type=covariance_type, missing="marginalize",
                                   random_state=0).fit(Xm)
    covariances = full_covariances(SPECS[covariance_type], model.covariances_, 2, 4)
    expected = _marginal_log_density(Xm, model.weights_, model.means_, covariances)
    np.testing.assert_allclose(model.score_samples(Xm), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.predict_proba(Xm)[5], model.weights_, rtol=1e-12)
    assert model.score_samples(Xm)[5] == 0.0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_observed_likelihood_never_decreases(covariance_type):
    Xm = _holes(blobs(n=1500, n_features=5, n_components=3, seed=4), 0.25, seed=5)
    model = fastem.GaussianMixture(3, covariance_type=covariance_type, missing="marginalize",
                                   reg_covar=0.0, tol=0.0, max_iter=40, random_state=0).fit(Xm)
    history = np.asarray(model.lower_bounds_)
    assert np.all(np.diff(history) >= -1e-12 * np.abs(history[:-1]))


def _numpy_em_one_gaussian(Xm, iterations):
    """Textbook EM for one Gaussian with missing entries, row by row (independent code)."""
    n, d = Xm.shape
    mean = np.nanmean(Xm, axis=0)
    imputed = np.where(np.isnan(Xm), mean, Xm)  # fastem's start: moments of the mean-imputed data
    cov = np.cov(imputed.T, bias=True)
    for _ in range(iterations):
        total = np.zeros(d)
        outer = np.zeros((d, d))
        for row in Xm:
            o = ~np.isnan(row)
            m = ~o
            x = row.copy()
            extra = np.zeros((d, d))
            if m.any():
                gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
                x[m] = mean[m] + gain @ (row[o] - mean[o])
                extra[np.ix_(m, m)] = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
            total += x
            outer += np.outer(x, x) + extra
        mean = total / n
        cov = outer / n - np.outer(mean, mean)
    return mean, cov


def test_one_gaussian_is_the_maximum_likelihood_estimate():
    rng = np.random.RandomState(6)
    a = rng.normal(size=(3, 3))
    X = rng.multivariate_normal([1.0, -2.0, 0.5], a @ a.T + 0.5 * np.eye(3), size=200)
    Xm = _holes(X, 0.3, seed=7)
    # Same start, same number of iterations: the same estimates as the textbook EM.
    steps = fastem.GaussianMixture(1, missing="marginalize", reg_covar=0.0, tol=0.0,
                                   max_iter=150).fit(Xm)
    mean, cov = _numpy_em_one_gaussian(Xm, 150)
    np.testing.assert_allclose(steps.means_[0], mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(steps.covariances_[0], cov, rtol=1e-9, atol=1e-10)
    model = fastem.GaussianMixture(1, missing="marginalize", reg_covar=0.0, tol=1e-14,
                                   max_iter=5000).fit(Xm)

    # The gradient of the observed-data log-likelihood vanishes at the estimate.
    lower = np.linalg.cholesky(model.covariances_[0])
    rows, cols = np.tril_indices(3)

    def loglik(theta):
        m = theta[:3]
        chol = np.zeros((3, 3))
        chol[rows, cols] = theta[3:]
        return _marginal_log_density(Xm, [1.0], [m], [chol @ chol.T]).sum()

    theta = np.concatenate([model.means_[0], lower[rows, cols]])
    gradient = approx_fprime(theta, loglik, 1e-6)
    assert np.abs(gradient).max() < 1e-3, gradient


def test_rows_with_nothing_observed_are_ignored_in_fit():
    Xm = _holes(blobs(n=600, n_features=3, n_components=2, seed=8), 0.2, seed=9)
    padded = np.vstack([Xm, np.full((40, 3), np.nan)])
    a = fastem.GaussianMixture(2, missing="marginalize", random_state=0, init_params="random",
                               tol=0.0, max_iter=10)
    b = fastem.GaussianMixture(2, missing="marginalize", random_state=0, init_params="random",
                               tol=0.0, max_iter=10)
    start = a.fit(Xm)
    kwargs = dict(weights_init=start.weights_, means_init=start.means_,
                  precisions_init=start.precisions_)
    a.set_params(**kwargs).fit(Xm)
    b.set_params(**kwargs).fit(padded)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-10)


def test_errors():
    X = blobs(n=100, n_features=3, n_components=2, seed=1)
    Xm = X.copy()
    Xm[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastem.GaussianMixture(2).fit(Xm)
    column = X.copy()
    column[:, 2] = np.nan
    with pytest.raises(ValueError, match="Column 2 of X has no observed entry"):
        fastem.GaussianMixture(2, missing="marginalize").fit(column)
    infinite = Xm.copy()
    infinite[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fastem.GaussianMixture(2, missing="marginalize").fit(infinite)
    with pytest.raises(ValueError, match="missing"):
        fastem.GaussianMixture(2, missing="drop").fit(X)


def test_thread_count_does_not_change_the_fit():
    Xm = _holes(blobs(n=5000, n_features=4, n_components=3, seed=3), 0.2, seed=4)
    fits = [fastem.GaussianMixture(3, missing="marginalize", n_threads=n, random_state=0,
                                   max_iter=10, tol=0.0).fit(Xm) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].covariances_, fits[1].covariances_)


def _correlated(n, seed):
    rng = np.random.RandomState(seed)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + 0.2 * np.eye(5)
    return rng.multivariate_normal(np.arange(5.0), cov, size=n)


def test_imputer_beats_mean_imputation_on_correlated_data():
    X = _correlated(3000, seed=10)
    Xm = _holes(X, 0.25, seed=11)
    holes = np.isnan(Xm)
    before = Xm.copy()
    filled = fastem.EMImputer().fit_transform(Xm)
    np.testing.assert_array_equal(np.isnan(Xm), np.isnan(before))  # input untouched
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~holes], X[~holes])
    mean_filled = np.where(holes, np.nanmean(Xm, axis=0), Xm)
    ours = np.sqrt(np.mean((filled[holes] - X[holes]) ** 2))
    baseline = np.sqrt(np.mean((mean_filled[holes] - X[holes]) ** 2))
    assert ours < 0.8 * baseline, (ours, baseline)


def test_imputed_row_is_the_conditional_mean_by_hand():
    Xm = _holes(_correlated(800, seed=12), 0.2, seed=13)
    imputer = fastem.EMImputer().fit(Xm)
    mean, cov = imputer.mixture_.means_[0], imputer.mixture_.covariances_[0]
    row = np.array([[0.3, np.nan, 2.5, np.nan, 4.1]])
    o = ~np.isnan(row[0])
    m = ~o
    expected = mean[m] + cov[np.ix_(m, o)] @ np.linalg.solve(cov[np.ix_(o, o)],
                                                             row[0, o] - mean[o])
    np.testing.assert_allclose(imputer.transform(row)[0, m], expected, rtol=1e-10)
    np.testing.assert_array_equal(imputer.transform(row)[0, o], row[0, o])


def test_posterior_samples_are_reproducible_draws_around_the_conditional_mean():
    Xm = _holes(_correlated(800, seed=14), 0.2, seed=15)
    row = np.repeat([[0.3, np.nan, 2.5, np.nan, 4.1]], 4000, axis=0)
    a = fastem.EMImputer(sample_posterior=True, random_state=3).fit(Xm)
    b = fastem.EMImputer(sample_posterior=True, random_state=3).fit(Xm)
    draws = a.transform(row)
    np.testing.assert_array_equal(draws, b.transform(row))
    mean = fastem.EMImputer().fit(Xm).transform(row[:1])[0]
    assert np.std(draws[:, 1]) > 0.05
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=5 * draws.std(axis=0).max()
                               / np.sqrt(len(row)) + 1e-12)


def test_imputer_in_a_pipeline():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    X = _correlated(600, seed=16)
    y = X @ np.arange(1.0, 6.0)
    Xm = _holes(X, 0.1, seed=17)
    pipeline = make_pipeline(fastem.EMImputer(), LinearRegression()).fit(Xm, y)
    baseline = make_pipeline(SimpleImputer(), LinearRegression()).fit(Xm, y)
    assert pipeline.score(Xm, y) > baseline.score(Xm, y) + 0.02
    names = pipeline[0].get_feature_names_out()
    np.testing.assert_array_equal(names, [f"x{i}" for i in range(5)])
    assert sklearn.base.clone(pipeline[0]).get_params() == pipeline[0].get_params()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_hmm_marginalises_partially_missing_rows(covariance_type):
    rng = np.random.RandomState(20)
    X = np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) + 3])
    Xm = _holes(X, 0.25, seed=21)
    Xm[7] = np.nan
    model = fastem.GaussianHMM(2, covariance_type=covariance_type, missing="marginalize",
                               n_iter=20, tol=0.0, random_state=0).fit(Xm, [100, 200])
    history = np.asarray(model.monitor_.history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[:-1]))
    # Log-space forward recursion over SciPy's marginal densities of the observed entries.
    log_b = np.zeros((len(Xm), 2))
    for t, row in enumerate(Xm):
        o = ~np.isnan(row)
        if o.any():
            log_b[t] = [multivariate_normal(model.means_[k][o],
                                            model.covars_[k][np.ix_(o, o)]).logpdf(row[o])
                        for k in range(2)]
    expected = 0.0
    with np.errstate(divide="ignore"):
        log_a = np.log(model.transmat_)
        for lo, hi in ((0, 100), (100, 300)):
            alpha = np.log(model.startprob_) + log_b[lo]
            for t in range(lo + 1, hi):
                alpha = logsumexp(alpha[:, None] + log_a, axis=0) + log_b[t]
            expected += logsumexp(alpha)
    assert abs(model.score(Xm, [100, 200]) - expected) < 1e-9 * abs(expected)
