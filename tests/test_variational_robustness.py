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
