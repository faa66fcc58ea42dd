"""Helpers for ``pack``/``unpack``: parameter vectors that SQUAREM extrapolates.

Extrapolation runs in the models' natural parameters (probabilities, means,
covariances, rates): measured on slowly converging mixtures and HMMs, it needs
fewer passes than extrapolating log-probabilities and log-Cholesky factors
(e.g. 154 against 362 Baum-Welch passes; README, "Acceleration"). An
extrapolated vector can leave the parameter space; ``unpack`` then raises
ValueError and the schedule falls back to the plain EM step. These helpers do
the checks.
"""

from __future__ import annotations

import numpy as np


def probability_rows(vector, shape, name):
    """Rows of probabilities from a packed vector: non-negative, each row rescaled to sum
    to 1; ValueError for a negative or non-finite entry or a row without mass."""
    rows = np.array(np.reshape(vector, shape), dtype=np.float64)
    if not (np.isfinite(rows).all() and np.all(rows >= 0.0)):
        raise ValueError(f"{name} left the probability simplex")
    totals = rows.sum(axis=-1, keepdims=True)
    if not np.all(totals > 0.0):
        raise ValueError(f"{name} have a row without mass")
    return rows / totals


def finite_values(vector, shape, name):
    """A finite array of the given shape (e.g. means); ValueError otherwise."""
    values = np.array(np.reshape(vector, shape), dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{name} are not finite")
    return values


def nonnegative_values(vector, shape, name):
    """A finite, non-negative array (e.g. Poisson rates); ValueError otherwise."""
    values = finite_values(vector, shape, name)
    if np.any(values < 0.0):
        raise ValueError(f"{name} are negative")
    return values


def positive_values(vector, shape, name):
    """A finite, positive array (e.g. Dirichlet concentrations); ValueError otherwise."""
    values = finite_values(vector, shape, name)
    if not np.all(values > 0.0):
        raise ValueError(f"{name} are not positive")
    return values
