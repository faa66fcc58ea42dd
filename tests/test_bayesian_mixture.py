"""BayesianGaussianMixture (issue 16): parity with scikit-learn, the ELBO, the priors."""

import warnings

import numpy as np
import pytest

import fastem

sklearn_mixture = pytest.importorskip("sklearn.mixture")

TYPES = ["full", "tied", "diag", "spherical"]
PRIORS = ["dirichlet_process", "dirichlet_distribution"]


def _blobs(n=300, seed=0):
    rng = np.random.RandomState(seed)
    centres = [[0, 0, 0], [5, 5, 0], [0, 6, 3]]
    return np.vstack([rng.normal(size=(n, 3)) * (1 + i / 2) + c
                      for i, c in enumerate(centres)])


def _fit(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at a fixed iteration count
        return estimator.fit(X, **kwargs)


def _assert_same_posterior(ours, theirs, rtol=1e-6):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "mean_precision_", "degrees_of_freedom_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=rtol,
                                   err_msg=name)
    concentration = np.asarray(theirs.weight_concentration_)
    np.testing.assert_allclose(np.asarray(ours.weight_concentration_), concentration,
                               rtol=rtol)
    # scikit-learn's tied lower bound is a one-element array.
    assert ours.lower_bound_ == pytest.approx(float(np.ravel(theirs.lower_bound_)[0]),
                                              rel=1e-8)


@pytest.mark.parametrize("weight_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_equals_scikit_learn_from_the_same_random_responsibilities(covariance_type,
                                                                   weight_type):
    """init_params="random" draws scikit-learn's responsibilities from the same seed."""
    X = _blobs()
    options = dict(n_components=6, covariance_type=covariance_type,
                   weight_concentration_prior_type=weight_type, init_params="random",
                   random_state=1, max_iter=20, tol=0.0)
    theirs = _fit(sklearn_mixture.BayesianGaussianMixture(**options), X)
    ours = _fit(fastem.BayesianGaussianMixture(**options), X)
    _assert_same_posterior(ours, theirs)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    for prior in ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
                  "degrees_of_freedom_prior_", "covariance_prior_"):
        np.testing.assert_allclose(getattr(ours, prior), getattr(theirs, prior), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6,
                               atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_continues_scikit_learns_posterior_as_scikit_learn_does(covariance_type):
    """From a k-means start (scikit-learn's own KMeans): its posterior after 3
    iterations copied into fastem, then 10 more iterations warm-started on both."""
    X = _blobs(seed=2)
    options = dict(n_components=5, covariance_type=covariance_type, random_state=0,
                   max_iter=3, tol=0.0, mean_prior=[1.0, 2.0, 0.5],
                   degrees_of_freedom_prior=4.5, mean_precision_prior=0.3,
                   weight_concentration_prior=0.05)
    theirs = _fit(sklearn_mixture.BayesianGaussianMixture(warm_start=True, **options), X)
    ours = fastem.BayesianGaussianMixture(warm_start=True, **options)
    ours.n_features_in_ = X.shape[1]
    ours.converged_, ours.n_iter_, ours.lower_bounds_ = False, 3, []
    ours.lower_bound_ = float(np.ravel(theirs.lower_bound_)[0])
    for name in ("weight_concentration_", "mean_precision_", "means_", "degrees_of_freedom_",
                 "covariances_", "precisions_cholesky_"):
        setattr(ours, name, getattr(theirs, name))
    theirs.set_params(max_iter=10)
    ours.set_params(max_iter=10)
    _fit(theirs, X)
    _fit(ours, X)
    _assert_same_posterior(ours, theirs)


@pytest.mark.parametrize("weight_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_lower_bound_never_decreases(covariance_type, weight_type):
    X = _blobs(seed=3)
    model = _fit(fastem.BayesianGaussianMixture(
        n_components=8, covariance_type=covariance_type, reg_covar=0.0,
        weight_concentration_prior_type=weight_type, random_state=0, max_iter=60, tol=0.0,
        init_params="random"), X)
    history = np.asarray(model.lower_bounds_)
    assert len(history) == 60
    assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:]))


@pytest.mark.parametrize("weight_type", PRIORS)
def test_components_without_support_get_weights_near_zero(weight_type):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + [8.0, 0.0]])
    options = dict(n_components=8, weight_concentration_prior_type=weight_type,
                   weight_concentration_prior=1e-3, random_state=0, max_iter=500)
    ours = _fit(fastem.BayesianGaussianMixture(**options), X)
    theirs = _fit(sklearn_mixture.BayesianGaussianMixture(**options), X)
    for model in (ours, theirs):
        weights = np.sort(model.weights_)[::-1]
        np.testing.assert_allclose(weights[:2], [0.5, 0.5], atol=0.01)
        assert weights[2:].sum() < 0.01
    assert len(np.unique(ours.predict(X))) == 2


def test_threads_change_nothing_and_weights_count_rows():
    X = _blobs(n=2_000, seed=4)
    options = dict(n_components=5, random_state=0, max_iter=10, tol=0.0, init_params="kmeans")
    with fastem.threads(1):
        one = _fit(fastem.BayesianGaussianMixture(**options), X)
    with fastem.threads(2):
        two = _fit(fastem.BayesianGaussianMixture(**options), X)
    np.testing.assert_array_equal(one.means_, two.means_)
    assert one.lower_bounds_ == two.lower_bounds_
    # Integer weights are repeated rows, in the data-dependent priors too (one pass from a
    # given posterior, so that the starts are the same).
    counts = np.random.RandomState(5).randint(0, 4, size=len(X))
    weighted = _fit(fastem.BayesianGaussianMixture(**options), X, sample_weight=counts)
    repeated = _fit(fastem.BayesianGaussianMixture(**options), np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.mean_prior_, repeated.mean_prior_, rtol=1e-12)
    np.testing.assert_allclose(weighted.covariance_prior_, repeated.covariance_prior_,
                               rtol=1e-10)
    for model in (weighted, repeated):
        model.set_params(warm_start=True, max_iter=1)
        for name in ("weight_concentration_", "mean_precision_", "means_",
                     "degrees_of_freedom_", "covariances_", "precisions_cholesky_"):
            setattr(model, name, getattr(one, name))
    _fit(weighted, X, sample_weight=counts)
    _fit(repeated, np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_save_load_round_trip(tmp_path, covariance_type):
    X = _blobs()
    model = _fit(fastem.BayesianGaussianMixture(n_components=4,
                                                covariance_type=covariance_type,
                                                random_state=0), X)
    path = tmp_path / "bgm.npz"
    model.save(path)
    loaded = fastem.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.weights_, model.weights_)


@pytest.mark.parametrize("options,message", [
    (dict(degrees_of_freedom_prior=1.5), "degrees_of_freedom_prior"),
    (dict(weight_concentration_prior_type="dirichlet"), "weight_concentration_prior_type"),
    (dict(weight_concentration_prior=0.0), "weight_concentration_prior"),
    (dict(mean_prior=[0.0, 1.0]), "means"),
    (dict(covariance_prior=-np.eye(3)), "full covariance_prior|symmetric, positive"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]), "diag"),
    (dict(covariance_type="spherical", covariance_prior=[1.0, 2.0]), "spherical covariance_"),
    (dict(covariance_type="tied", covariance_prior=np.diag([1.0, 0.0, 1.0])), "tied cov"),
    (dict(mean_prior=[0.0, np.nan, 0.0]), "means"),
])
def test_bad_priors_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        fastem.BayesianGaussianMixture(n_components=2, **options).fit(_blobs(n=20))


def test_has_no_partial_fit_and_checks_acceleration():
    model = fastem.BayesianGaussianMixture()
    assert not hasattr(model, "partial_fit")
    assert model.get_params()["acceleration"] == "none"  # SQUAREM: test_variational_robustness
    with pytest.raises(ValueError, match="acceleration"):
        fastem.BayesianGaussianMixture(acceleration="fast").fit(_blobs(n=20))


def test_special_functions_equal_scipys():
    special = pytest.importorskip("scipy.special")
    from fastem._special import betaln, digamma, gammaln

    x = np.concatenate([np.logspace(-3, 7, 500), [0.5, 1.0, 2.0, 9.99, 10.0, 10.01]])
    np.testing.assert_allclose(digamma(x), special.digamma(x), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(gammaln(x), special.gammaln(x), rtol=1e-14, atol=1e-14)
    for a, b in [(x, x[::-1]), (x, np.full_like(x, 1.0)), (np.full_like(x, 3e5), x)]:
        # scipy's betaln loses ~1e-9 relative where one argument is large; the exact
        # log B(1, g) = -log g shows which of the two is right there.
        np.testing.assert_allclose(betaln(a, b), special.betaln(a, b), rtol=1e-8, atol=1e-9)
    big = np.array([879978.8539843401, 1e7])
    np.testing.assert_allclose(betaln(1.0, big), -np.log(big), rtol=1e-15)
    # log B(a, b) = lgamma(b) - (b psi(a) + b^2 psi'(a) / 2 + ...) for a large, b small.
    a, b = 3e5, 0.14599186524739785
    series = b * (np.log(a) - 1 / (2 * a) - 1 / (12 * a * a)) + b * b / 2 * (
        1 / a + 1 / (2 * a * a)) - b ** 3 / (6 * a * a)
    assert betaln(a, b) == pytest.approx(gammaln(b) - series, rel=1e-12)
    with pytest.raises(ValueError):
        digamma([0.0])


def test_float32_input_runs_the_float32_kernels_close_to_float64():
    X = _blobs(n=2_000, seed=6)
    options = dict(n_components=4, random_state=0, max_iter=20, tol=0.0, init_params="random")
    double = _fit(fastem.BayesianGaussianMixture(**options), X)
    single = _fit(fastem.BayesianGaussianMixture(**options), X.astype(np.float32))
    assert single.means_.dtype == np.float64
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-5)


def test_cli_fits_a_bayesian_mixture_like_the_python_api(tmp_path, capsys):
    from fastem.cli import main

    X = _blobs(n=200)
    data = tmp_path / "blobs.csv"
    np.savetxt(data, X, delimiter=",", header="a,b,c", comments="")
    saved = tmp_path / "bgm.npz"
    assert main(["fit", "bgm", str(data), "--n-components", "6", "--covariance-type", "diag",
                 "--weight-prior", "dirichlet_distribution", "--output", str(saved)]) == 0
    out = capsys.readouterr().out
    direct = _fit(fastem.BayesianGaussianMixture(
        n_components=6, covariance_type="diag", random_state=0,
        weight_concentration_prior_type="dirichlet_distribution"), X)
    loaded = fastem.load(saved)
    np.testing.assert_allclose(loaded.means_, direct.means_, rtol=1e-10)
    assert f"lower bound {direct.lower_bound_:.4f}" in out
    assert "3 of 6 components weigh more than 1%" in out
    assert main(["predict", str(saved), str(data)]) == 0
    labels = np.loadtxt(capsys.readouterr().out.splitlines(), dtype=int)
    np.testing.assert_array_equal(labels, direct.predict(X))


def test_callback_sees_the_current_posterior_and_can_stop():
    X = _blobs(n=200)
    seen = []

    def callback(iteration, bound, model):
        seen.append((iteration, bound, model.weights_.copy()))
        return iteration == 4

    model = fastem.BayesianGaussianMixture(n_components=4, random_state=0, max_iter=50,
                                           callback=callback).fit(X)
    assert [s[0] for s in seen] == [1, 2, 3, 4]
    assert [s[1] for s in seen] == model.lower_bounds_
    np.testing.assert_array_equal(seen[-1][2], model.weights_)
    assert model.n_iter_ == 4 and not model.converged_


def test_a_model_file_with_a_damaged_posterior_is_refused(tmp_path):
    model = _fit(fastem.BayesianGaussianMixture(n_components=3, random_state=0), _blobs())
    model.mean_precision_ = -model.mean_precision_
    path = tmp_path / "bad.npz"
    model.save(path)
    with pytest.raises(ValueError, match="mean_precision_"):
        fastem.load(path)
    del model.degrees_of_freedom_
    model.save(path)
    with pytest.raises(ValueError, match="degrees_of_freedom_"):
        fastem.load(path)
