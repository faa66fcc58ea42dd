"""Count components: independent Poisson counts per feature, and multinomial counts of
n_features outcomes.

Both log-likelihoods are ``X @ log(rates).T`` plus terms that depend on the row
only (log-factorials, computed by a small kernel) or on the state only; the
statistics are the posterior mass and the posterior-weighted counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from ..engine.packing import nonnegative_values, probability_rows
from ..kernels.discrete import row_log_factorials
from .base import Component
from .dirichlet import normalised_rows

_TINY = np.finfo(np.float64).tiny  # floor of a rate inside log(): 0 * log(0) counts as 0


def check_counts(X, owner, n_features=None):
    """Non-negative integer counts as float64 rows; TypeError/ValueError naming ``X``
    (and ``owner``, whose parameters have ``n_features``) otherwise."""
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"X must hold non-negative integer counts, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"X must be 2-d (n_samples, n_features), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"X is empty: shape {array.shape}")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError("X contains NaN (with missing='marginalize', a row of NaN is a "
                         "missing observation)")
    v.check_nonnegative_integers(array, "X", noun="count")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"X has {array.shape[1]} features, but {owner} has {n_features}")
    return np.ascontiguousarray(array, dtype=np.float64)


class _Counts(Component):
    """Statistics and accumulation shared by the count families."""

    def __init__(self, n_components):
        self.n_components = int(n_components)

    def check_data(self, X, fitting):
        return check_counts(X, type(self).__name__)

    def fields(self, n_features):
        return {"mass": (self.n_components,), "obs": (self.n_components, n_features)}

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        out["mass"][...] += posteriors.sum(axis=0)
        out["obs"][...] += posteriors.T @ X


@dataclass
class PoissonParams:
    """Rates, one row per state: ``lambdas[k, d]``."""

    lambdas: np.ndarray


class Poisson(_Counts):
    """K states of independent Poisson counts per feature.

    Parameters
    ----------
    n_components : int
    prior, weight : float or array of shape (n_components, n_features), default=0.0
        Gamma prior (shape ``prior``, rate ``weight``) of the rates; 0, 0: none. The
        M-step is ``(prior + sum_t g x_t) / (weight + sum_t g)`` per state.
    """

    def __init__(self, n_components, prior=0.0, weight=0.0):
        super().__init__(n_components)
        self.prior = prior
        self.weight = weight

    def log_likelihood(self, prepared, X, out=None, cache=None):
        rates = prepared.lambdas
        factorials = np.empty(X.shape[0])
        row_log_factorials(X, factorials)
        table = X @ np.log(np.maximum(rates, _TINY)).T
        table -= rates.sum(axis=1)[None, :]
        table -= factorials[:, None]
        if out is None:
            return table
        out[:] = table
        return out

    def m_step(self, stats, params):
        prior = np.asarray(self.prior, dtype=np.float64)
        weight = np.asarray(self.weight, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = (prior + stats["obs"]) / (weight + stats["mass"][:, None])
        if params is None:  # (a start: a state without mass has no rate yet)
            return PoissonParams(rates)
        return PoissonParams(np.where(np.isfinite(rates), rates, params.lambdas))

    def log_prior(self, params):
        prior = np.asarray(self.prior, dtype=np.float64)
        weight = np.asarray(self.weight, dtype=np.float64)
        rates = params.lambdas
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(prior == 0, 0.0, prior * np.log(rates)) - weight * rates
        return float(np.sum(terms))

    def initialize(self, X, posteriors, random_state):
        # hmmlearn's start: rates drawn about the method-of-moments Gamma of all counts.
        mean, var = X.mean(), X.var()
        if var <= 0 or mean <= 0:
            raise ValueError("X has no variation in its counts: cannot initialise lambdas_ "
                             "by the method of moments; set lambdas_ and init_params")
        rates = random_state.gamma(shape=mean**2 / var, scale=var / mean,
                                   size=(self.n_components, X.shape[1]))
        return PoissonParams(rates)

    def pack(self, params):
        return np.ravel(params.lambdas)

    def unpack(self, vector, like):
        return PoissonParams(nonnegative_values(vector, like.lambdas.shape, "rates"))

    def n_parameters(self, n_features):
        return self.n_components * n_features

    def sample(self, params, state, n_samples, random_state):
        return np.array([random_state.poisson(params.lambdas[state])
                         for _ in range(n_samples)])


@dataclass
class MultinomialParams:
    """Outcome probabilities, one row per state: ``emissionprob[k, d]``."""

    emissionprob: np.ndarray


class Multinomial(_Counts):
    """K states of multinomial counts of n_features outcomes (each row's own number of
    trials: its sum).

    Parameters
    ----------
    n_components : int
    n_trials : int or None
        Trials of every sampled row (sampling only; None: no sampling).
    """

    def __init__(self, n_components, n_trials=None):
        super().__init__(n_components)
        self.n_trials = n_trials

    def log_likelihood(self, prepared, X, out=None, cache=None):
        factorials = np.empty(X.shape[0])
        row_log_factorials(X, factorials)
        totals = np.empty(X.shape[0])
        row_log_factorials(X.sum(axis=1)[:, None], totals)
        table = X @ np.log(np.maximum(prepared.emissionprob, _TINY)).T
        table += (totals - factorials)[:, None]
        if out is None:
            return table
        out[:] = table
        return out

    def m_step(self, stats, params):
        return MultinomialParams(normalised_rows(stats["obs"], None if params is None
                                                 else params.emissionprob))

    def initialize(self, X, posteriors, random_state):
        return MultinomialParams(normalised_rows(random_state.rand(self.n_components,
                                                                   X.shape[1])))

    def pack(self, params):
        return np.ravel(params.emissionprob)

    def unpack(self, vector, like):
        return MultinomialParams(probability_rows(vector, like.emissionprob.shape,
                                                  "emission probabilities"))

    def n_parameters(self, n_features):
        return self.n_components * (n_features - 1)

    def sample(self, params, state, n_samples, random_state):
        if self.n_trials is None:
            raise ValueError("sampling needs n_trials (the trials of every sampled row)")
        return np.array([random_state.multinomial(int(self.n_trials),
                                                  params.emissionprob[state])
                         for _ in range(n_samples)])
