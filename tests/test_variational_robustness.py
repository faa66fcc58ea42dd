"""Issue 25: the variational models and the categorical HMMs under bad input, forged
files and large alphabets (bounded tables, named prior errors, checked loads,
acceleration)."""

import logging
import tracemalloc
import warnings

import numpy as np
import pytest

import fastem
from fastem.hmm.categorical import MAX_TABLE

CATEGORICAL = [fastem.CategoricalHMM, fastem.VariationalCategoricalHMM]


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # the degenerate-solution notes of tiny fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    logging.disable(logging.NOTSET)


def _symbols(n=90, n_symbols=5, seed=0):
    return np.random.RandomState(seed).randint(0, n_symbols, size=(n, 1))


# -- item 8: the emission table is bounded, declared or inferred --------------------------
@pytest.mark.parametrize("cls", CATEGORICAL)
def test_a_declared_alphabet_beyond_the_table_bound_is_refused_before_allocating(cls):
    X = _symbols()
    # Just above the bound first (without it, this fit runs, holding ~800 MiB), then the
    # issue's 10**9 (without the bound: several GiB).
    for n_features in (MAX_TABLE // 2 + 1, 10**9):
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=rf"n_features={n_features} .*limit of "
                                                 rf"{MAX_TABLE} entries"):
                cls(2, n_features=n_features, n_iter=2, random_state=0).fit(X)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20  # refused from the arguments, before any table exists


@pytest.mark.parametrize("cls", CATEGORICAL)
def test_declared_and_inferred_alphabets_share_one_bound(cls):
    X = _symbols()
    with pytest.raises(ValueError, match=f"limit of {MAX_TABLE} entries"):
        cls(4, random_state=0).fit(np.vstack([X, [[MAX_TABLE // 4]]]))
    with pytest.raises(ValueError, match=f"n_features={MAX_TABLE // 4 + 1} "):
        cls(4, n_features=MAX_TABLE // 4 + 1).fit(X)


def test_variational_categorical_fits_alphabets_and_state_counts_whose_draws_underflow():
    # With concentrations 1 / n numpy's Dirichlet draws hold exact zeros (half of them for
    # n = 1000): the initial posterior must still be a posterior.
    X = _symbols(n=400)
    for options in (dict(n_components=2, n_features=1000), dict(n_components=300)):
        model = fastem.VariationalCategoricalHMM(n_iter=3, random_state=0, **options).fit(X)
        assert np.isfinite(model.monitor_.history).all()
        for name in ("startprob_posterior_", "transmat_posterior_", "emissionprob_posterior_"):
            assert np.all(getattr(model, name) > 0), name


# -- item 5: the variational HMMs' priors are checked by name, as the mixture's are ----------
def _gaussian_rows(n=300, seed=0):
    rng = np.random.RandomState(seed)
    return np.vstack([rng.normal(size=(n // 2, 3)), rng.normal(size=(n - n // 2, 3)) + 6.0])


NOT_DEFINITE = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("options,message", [
    (dict(scale_prior=-1.0), "'scale_prior' should be symmetric, positive-definite"),
    (dict(scale_prior=NOT_DEFINITE), "'scale_prior' should be symmetric, positive-definite"),
    (dict(covariance_type="tied", scale_prior=-np.eye(3)), "'scale_prior' should be"),
    (dict(covariance_type="diag", scale_prior=[1.0, -1.0, 1.0]), "'scale_prior' should be "
                                                                  "positive"),
    (dict(covariance_type="spherical", scale_prior=0.0), "'scale_prior' should be positive"),
    (dict(dof_prior=0.1), r"'dof_prior' should be greater than 2, but got 0.100"),
    (dict(covariance_type="tied", dof_prior=2.0), "'dof_prior' should be greater than 2"),
    (dict(dof_prior=np.nan), "'dof_prior' should be finite"),
    (dict(startprob_prior=np.ones(5)), r"'startprob_prior' should have the shape of \(2,\)"),
    (dict(transmat_prior=np.ones((2, 3))), r"'transmat_prior' should have the shape of "
                                           r"\(2, 2\)"),
    (dict(transmat_prior=[[1.0, -1.0], [1.0, 1.0]]), "'transmat_prior' should be positive"),
    (dict(means_prior=np.ones(4)), r"'means_prior' should have the shape of \(2, 3\)"),
    (dict(beta_prior=[[1.0, 2.0], [3.0]]), "'beta_prior' should be a real number"),
])
def test_variational_gaussian_hmm_priors_are_refused_by_name(options, message):
    model = fastem.VariationalGaussianHMM(2, random_state=0, n_iter=3, **options)
    with pytest.raises(ValueError, match=message):
        model.fit(_gaussian_rows())
    assert not hasattr(model, "monitor_")  # nothing fitted


def test_variational_gaussian_hmm_priors_of_a_good_shape_are_used_as_given():
    X = _gaussian_rows()
    scale = np.array([np.eye(3) * 0.5, np.eye(3) * 2.0])
    model = fastem.VariationalGaussianHMM(2, random_state=0, n_iter=3, scale_prior=scale,
                                          dof_prior=[3.0, 4.0], beta_prior=2.0).fit(X)
    np.testing.assert_array_equal(model.scale_prior_, scale)
    np.testing.assert_array_equal(model.dof_prior_, [3.0, 4.0])
    np.testing.assert_array_equal(model.beta_prior_, [2.0, 2.0])


@pytest.mark.parametrize("options,message", [
    (dict(emissionprob_prior=np.ones((2, 4))), r"'emissionprob_prior' should have the shape "
                                               r"of \(3, 5\)"),
    (dict(emissionprob_prior=0.0), "'emissionprob_prior' should be positive"),
    (dict(startprob_prior=[1.0, 2.0]), "'startprob_prior' should have the shape of"),
    (dict(transmat_prior=np.inf), "'transmat_prior' should be finite"),
])
def test_variational_categorical_hmm_priors_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        fastem.VariationalCategoricalHMM(3, n_features=5, random_state=0, **options).fit(
            _symbols())


def test_variational_categorical_hmm_takes_an_emission_prior_per_state():
    prior = np.arange(1.0, 16.0).reshape(3, 5)  # numpy broadcast error before
    model = fastem.VariationalCategoricalHMM(3, emissionprob_prior=prior, random_state=0,
                                             n_iter=3).fit(_symbols())
    np.testing.assert_array_equal(model.emissionprob_prior_, prior)
    assert np.isfinite(model.monitor_.history).all()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_variational_gaussian_hmm_fits_data_with_an_outlier(covariance_type):
    # The outlier is a k-means cluster of one point: hmmlearn's initial dof (the cluster
    # sizes) was 1 <= D - 1, outside the Wishart's domain ("digamma is evaluated at
    # positive numbers only here").
    X = np.vstack([_gaussian_rows(400), [[1e3, 1e3, 1e3]]])
    model = fastem.VariationalGaussianHMM(3, covariance_type=covariance_type, random_state=0,
                                          n_iter=5).fit(X)
    history = np.array(model.monitor_.history)
    assert np.isfinite(history).all() and np.all(np.diff(history) >= -1e-9 * abs(history[-1]))
    assert np.all(model.dof_posterior_ > 2)
