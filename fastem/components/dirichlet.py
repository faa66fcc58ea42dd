"""Dirichlet-distributed probability rows: the MAP M-step of probability tables (start,
transition, emission and mixture weights), their log prior, and the variational
Dirichlet posterior's expectations and KL divergence."""

from __future__ import annotations

import numpy as np

from .._special import digamma, gammaln


def log_or_minus_inf(values):
    """log, with log 0 = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(values)


def normalised_rows(array, previous=None):
    """Rows scaled to sum to 1. A row with no mass (e.g. a state no posterior reaches)
    keeps ``previous`` (EM has no information to change it), so the result stays a valid
    distribution instead of a row of zeros or NaN."""
    total = array.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, array / np.where(total > 0, total, 1.0), 0.0)
    if previous is not None:
        out = np.where(total > 0, out, previous)
    return out


def dirichlet_log_prior(prior, probabilities):
    """sum (prior - 1) log p, with 0 * log 0 = 0 (constants dropped)."""
    weight = np.asarray(prior, dtype=np.float64) - 1.0
    logs = log_or_minus_inf(probabilities)
    with np.errstate(invalid="ignore"):
        terms = np.where(weight == 0.0, 0.0, weight * logs)
    return float(np.sum(terms))


def dirichlet_kl(posterior, prior):
    """KL(Dir(posterior) || Dir(prior)) of each row (the last axis)."""
    q = np.asarray(posterior, dtype=np.float64)
    p = np.asarray(prior, dtype=np.float64)
    q_sum = q.sum(axis=-1)
    return (gammaln(q_sum) - gammaln(p.sum(axis=-1)) - np.sum(gammaln(q) - gammaln(p), axis=-1)
            + np.sum((q - p) * (digamma(q) - digamma(q_sum)[..., None]), axis=-1))


def log_subnormalised(concentration):
    """E[log p] of each Dirichlet row: psi(a) - psi(sum a)."""
    a = np.asarray(concentration, dtype=np.float64)
    return digamma(a) - digamma(a.sum(axis=-1))[..., None]


def posterior_mean(concentration):
    """The rows of a Dirichlet posterior's mean."""
    a = np.asarray(concentration, dtype=np.float64)
    return a / a.sum(axis=-1, keepdims=True)


_DRAW_FLOOR = np.finfo(np.float64).eps


def positive_draw(draw, prior):
    """A random initial Dirichlet posterior (hmmlearn's draw), raised to eps times the
    prior where it is below that. With concentrations 1 / n below about 0.01, numpy's
    Dirichlet draws hold exact zeros and subnormal numbers (half the entries for n =
    1000), where psi is -inf and the lower bound with it; raised, such an entry is still
    impossible in the first E-step (exp(psi(q)) is 0, as hmmlearn's), and the bound finite.
    Every other entry is hmmlearn's draw."""
    return np.maximum(draw, _DRAW_FLOOR * np.asarray(prior, dtype=np.float64))


def subnormalised(concentration):
    """exp(E[log p]) of each Dirichlet row: exp(psi(a) - psi(sum a))."""
    return np.exp(log_subnormalised(concentration))
