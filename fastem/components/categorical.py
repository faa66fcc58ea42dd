"""Categorical components: each state emits one symbol of 0 .. n_symbols - 1.

The data are one column of symbols (validated into int64 indices); the
statistics are the posterior-weighted symbol counts per state; the M-step is
the MAP estimate under a Dirichlet prior per state (1: none). A variational
form keeps a Dirichlet posterior over each state's row instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from ..engine.packing import positive_values, probability_rows
from ..kernels.discrete import symbol_counts, symbol_log_likelihood
from .base import Component
from .dirichlet import (
    dirichlet_kl,
    dirichlet_log_prior,
    log_or_minus_inf,
    log_subnormalised,
    normalised_rows,
    positive_draw,
    posterior_mean,
)

MAX_TABLE = 1 << 24
"""Largest n_components x n_symbols emission table (128 MiB of float64), whether the
alphabet is declared or inferred from the data: a fit holds several tables of that size
(parameters, logs, statistics, a posterior), so a larger one would take gigabytes for any
number of rows."""


def symbol_column(X):
    """X as a 2-d array of one column of symbols (not yet range-checked): TypeError or
    ValueError naming ``X`` otherwise."""
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"X must hold integer symbols, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != 1:
        raise ValueError(f"X must have shape (n_samples, 1) of symbols, got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("X is empty: 0 samples")
    return array


def checked_symbols(array, n_components, n_symbols=None):
    """A column of symbols (:func:`symbol_column`) as int64 indices, and the alphabet's
    size: ``n_symbols`` when given (every symbol below it), else the largest symbol + 1,
    bounded by :data:`MAX_TABLE`. ValueError naming ``X`` otherwise."""
    # Range-checked in X's own dtype before the cast to int64 indices.
    largest = v.check_nonnegative_integers(array, "X", below=n_symbols,
                                           below_name="n_features", noun="symbol")
    if n_symbols is None:
        n_symbols = largest + 1
        if n_symbols * n_components > MAX_TABLE:
            raise ValueError(
                f"X holds symbol {largest}: inferring n_features={n_symbols} would need "
                f"{n_components} x {n_symbols} emission tables, above the limit of "
                f"{MAX_TABLE} entries ({MAX_TABLE >> 17} MiB of float64); symbols must "
                "be 0 .. n_features - 1, so recode them to a smaller alphabet")
    return np.ascontiguousarray(array[:, 0], dtype=np.int64), n_symbols


def check_probability_rows(value, name, shape):
    """A user's table of probability rows (``emissionprob_``), checked and copied."""
    table = v.check_parameter_array(value, name, shape)
    sums = table.sum(axis=1)
    if np.any(table < 0) or not np.allclose(sums, 1.0):
        raise ValueError(f"{name} rows must be non-negative and sum to 1, got row "
                         f"sums {np.round(sums, 6).tolist()}")
    return table


@dataclass
class CategoricalParams:
    """Emission probabilities, one row per state: ``emissionprob[k, s]``."""

    emissionprob: np.ndarray


class Categorical(Component):
    """K categorical states over ``n_symbols`` symbols.

    Parameters
    ----------
    n_components : int
        Number of states.
    n_symbols : int or None
        The alphabet's size (None: the largest symbol of the data + 1).
    prior : float or array of shape (n_components, n_symbols), default=1.0
        Dirichlet prior of each row (1.0: none; the M-step is the MAP estimate).
    """

    def __init__(self, n_components, n_symbols=None, prior=1.0):
        self.n_components = int(n_components)
        self.n_symbols = n_symbols
        self.prior = prior

    def check_data(self, X, fitting):
        return checked_symbols(symbol_column(X), self.n_components, self.n_symbols)[0]

    def n_features_of(self, X):
        return int(self.n_symbols) if self.n_symbols is not None else int(X.max()) + 1

    def fields(self, n_features):
        return {"mass": (self.n_components,), "counts": (self.n_components, n_features)}

    def prepare(self, params):
        return np.ascontiguousarray(log_or_minus_inf(params.emissionprob))

    def log_likelihood(self, prepared, X, out=None, cache=None):
        if out is None:
            out = np.empty((X.shape[0], self.n_components))
        symbol_log_likelihood(X, prepared, out)
        return out

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        counts = symbol_counts(X, posteriors, out["counts"].shape[1])
        out["counts"][...] += counts
        out["mass"][...] += counts.sum(axis=1)  # (the states' mass, from the counts)

    def m_step(self, stats, params):
        value = np.maximum(np.asarray(self.prior) - 1.0 + stats["counts"], 0.0)
        return CategoricalParams(normalised_rows(value, None if params is None
                                                 else params.emissionprob))

    def log_prior(self, params):
        return dirichlet_log_prior(self.prior, params.emissionprob)

    def initialize(self, X, posteriors, random_state):
        # hmmlearn's start (the rows' posteriors do not enter it).
        n_symbols = self.n_features_of(X)
        return CategoricalParams(normalised_rows(random_state.rand(self.n_components,
                                                                   n_symbols)))

    def pack(self, params):
        return np.ravel(params.emissionprob)

    def unpack(self, vector, like):
        return CategoricalParams(probability_rows(vector, like.emissionprob.shape,
                                                  "emission probabilities"))

    def n_parameters(self, n_features):
        return self.n_components * (n_features - 1)

    def sample(self, params, state, n_samples, random_state):
        cdf = np.cumsum(params.emissionprob[state])
        return np.array([[int((cdf > random_state.rand()).argmax())]
                         for _ in range(n_samples)])


@dataclass
class CategoricalPosterior:
    """Dirichlet prior and posterior concentrations of each state's row."""

    prior: np.ndarray
    posterior: np.ndarray


class VariationalCategorical(Categorical):
    """Categorical states under Dirichlet posteriors (variational Bayes).

    The parameters are the posterior (:class:`CategoricalPosterior`); the lattice is the
    sub-normalised E_q[log p(s | k)] = psi(a_ks) - psi(sum_s a_ks), the M-step adds the
    counts to the prior, and :meth:`log_prior` is -KL(q || p), so that the composite's
    objective is the variational lower bound.

    Parameters
    ----------
    n_components, n_symbols
        As in :class:`Categorical`.
    prior : array of shape (n_components, n_symbols)
        The Dirichlet prior concentrations the initial posterior is drawn about.
    """

    variational = True

    def prepare(self, params):
        # The kernel reads the logs as computed: exp(psi(a) - psi(sum a)) underflows to 0
        # for a symbol whose posterior is near a small prior (psi(1e-3) is about -1000),
        # which would make an observed symbol impossible in every state.
        return np.ascontiguousarray(log_subnormalised(params.posterior))

    def m_step(self, stats, params):
        return CategoricalPosterior(params.prior, params.prior + stats["counts"])

    def log_prior(self, params):
        return -self.kl_divergence(params)

    def kl_divergence(self, posterior):
        return float(np.sum(dirichlet_kl(posterior.posterior, posterior.prior)))

    def initialize(self, X, posteriors, random_state):
        prior = np.asarray(self.prior, dtype=np.float64)
        if np.all(prior == prior[0]):
            draw = random_state.dirichlet(prior[0], size=self.n_components)  # hmmlearn's
        else:  # a prior per state: each row drawn from its own
            draw = np.array([random_state.dirichlet(row) for row in prior])
        return CategoricalPosterior(prior, positive_draw(draw * X.shape[0] / self.n_components,
                                                         prior))

    def pack(self, params):
        return np.ravel(params.posterior)

    def unpack(self, vector, like):
        return CategoricalPosterior(like.prior, positive_values(
            vector, like.posterior.shape, "emission posteriors"))

    def sample(self, params, state, n_samples, random_state):
        return super().sample(CategoricalParams(posterior_mean(params.posterior)), state,
                              n_samples, random_state)
