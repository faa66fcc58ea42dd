"""The exponential component: independent columns, one rate per state and column.

State k emits rows x >= 0 with density prod_d rate_kd exp(-rate_kd x_d). The
statistics are the state's mass N_k and weighted column sums S_kd; the M-step
(maximum likelihood) is rate_kd = N_k / S_kd. A state without mass keeps its rates;
a state whose rows are all 0 in a column has no finite rate there, which is a
ValueError naming the state and the column.

This module and its kernels (:mod:`fastem.kernels.exponential`) are the whole family:
mixtures (:class:`fastem.ExponentialMixture`, or :class:`fastem.Mixture` over this
component) and HMMs take it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from ..engine import UNIT_ROWS
from ..engine.packing import finite_values
from ..kernels import exponential as ek
from .base import Component

_MIN_MASS = 1e3 * np.finfo(np.float64).tiny
"""A state whose mass is below this holds no more than round-off: it keeps its rates."""


@dataclass
class ExponentialParams:
    """Rates (K, D), positive and finite."""

    rates: np.ndarray


@dataclass
class _Prepared:
    rates: np.ndarray
    log_rates: np.ndarray


class Exponential(Component):
    """K states of independent exponential columns.

    Parameters
    ----------
    n_components : int
        Number of states K.
    """

    def __init__(self, n_components):
        self.n_components = int(n_components)

    def __repr__(self):
        return f"Exponential(n_components={self.n_components})"

    # -- data -------------------------------------------------------------------------
    def check_data(self, X, fitting):
        X = v.check_array(X, min_samples=1, allow_nan=True)
        if X.dtype != np.float64:
            X = X.astype(np.float64)
        if np.isnan(X).any():
            row, column = np.argwhere(np.isnan(X))[0]
            raise ValueError(f"X has a NaN entry (row {row}, column {column}): the exponential "
                             "component has no missing values (drop or impute them)")
        if np.isinf(X).any():
            row, column = np.argwhere(np.isinf(X))[0]
            raise ValueError(f"X has an infinite entry (row {row}, column {column})")
        if not (X >= 0.0).all():
            row, column = np.argwhere(~(X >= 0.0))[0]
            raise ValueError(f"X has a negative entry ({X[row, column]!r} at row {row}, column "
                             f"{column}): exponential data are non-negative")
        return X

    # -- statistics -------------------------------------------------------------------
    def fields(self, n_features):
        return {"mass": (self.n_components,), "sums": (self.n_components, n_features)}

    # -- one pass ---------------------------------------------------------------------
    def prepare(self, params):
        rates = np.ascontiguousarray(params.rates, dtype=np.float64)
        return _Prepared(rates, np.log(rates))

    def log_likelihood(self, prepared, X, out=None, cache=None):
        if out is None:
            out = np.empty((X.shape[0], self.n_components))
        ek.exponential_log_likelihood(X, prepared.rates, prepared.log_rates, out)
        return out

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        ek.exponential_accumulate(X, np.ascontiguousarray(posteriors, dtype=np.float64),
                                  UNIT_ROWS, out["mass"], out["sums"])

    def m_step(self, stats, params):
        mass, sums = stats["mass"], stats["sums"]
        empty = ~(mass > _MIN_MASS)
        with np.errstate(divide="ignore", invalid="ignore"):
            rates = mass[:, None] / sums
        if empty.any():
            if params is None:
                raise ValueError(f"state {int(np.argmax(empty))} has no rows to start from; "
                                 "decrease n_components")
            rates[empty] = params.rates[empty]
        return self.checked(ExponentialParams(rates))

    def checked(self, params):
        bad = ~(np.isfinite(params.rates) & (params.rates > 0.0))
        if bad.any():
            state, column = np.argwhere(bad)[0]
            raise ValueError(f"state {state} has no finite positive rate for column {column} "
                             f"(rate {params.rates[state, column]!r}: its rows are all 0 "
                             "there); decrease n_components or check the data")
        return params

    # -- parameters -------------------------------------------------------------------
    def pack(self, params):
        return np.ravel(params.rates)

    def unpack(self, vector, like):
        rates = finite_values(vector, like.rates.shape, "rates")
        if not (rates > 0.0).all():
            raise ValueError("rates are not positive")
        return ExponentialParams(rates)

    def n_parameters(self, n_features):
        return self.n_components * n_features

    def sample(self, params, state, n_samples, random_state):
        rates = params.rates[state]
        return random_state.exponential(size=(n_samples, rates.size)) / rates
