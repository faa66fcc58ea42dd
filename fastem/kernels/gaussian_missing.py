"""E-step statistics of a Gaussian mixture on rows with missing entries.

Rows are grouped by missingness pattern and cut into work units that hold
rows of one pattern only, so inside a unit the observed columns are fixed and
the blocked kernels of :mod:`fastem.kernels.gaussian` apply: the unit's
observed columns are transposed once; per component the marginal
Mahalanobis term uses the Cholesky factor of the observed block (zero padded);
the missing entries are completed with their conditional means along the rows;
the scatter of the completed rows is the ordinary 4 x 4 tiled one; and the
conditional covariance, times the unit's responsibility mass, is added to the
missing block of the second moments.

Statistics have the layout of :mod:`fastem.kernels.gaussian` (moments about
``shift`` = the current means), with full second moments.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .gaussian import (
    NEGLIGIBLE_LOG_RATIO_32,
    NEGLIGIBLE_LOG_RATIO_64,
    _normaliser,
    _scatter_tiles,
    _tiled_mahalanobis,
    stat_size,
)
from .reduction import add_in_order


@kernel
def _gather_observed(X, rows, p, observed, n_obs, height):
    """(height, rows) float64: the observed entries of the unit's rows, transposed (zero
    below n_obs: the tiled products read whole tiles)."""
    n_rows = rows.shape[0]
    xt = np.zeros((height, n_rows))
    for i in range(n_rows):
        for a in range(n_obs):
            xt[a, i] = X[rows[i], observed[p, a]]
    return xt


@kernel
def _posterior_unit(X, weights, rows, p, observed, n_observed, missing, n_missing, factors,
                    const, regression, conditional, means, out):
    """The E-step of one unit (rows of pattern p): posterior, log-likelihood, moments."""
    n_rows = rows.shape[0]
    n_components, n_features = means.shape
    n_obs = n_observed[p]
    n_mis = n_missing[p]
    obs4 = factors.shape[2]
    features4 = (n_features + 3) // 4 * 4
    weighted = weights.shape[0] > 0
    xt = _gather_observed(X, rows, p, observed, n_obs, obs4)
    centred = np.zeros((obs4, n_rows))
    completed = np.zeros((features4, n_rows))
    scaled = np.zeros((features4, n_rows))
    y = np.empty((4, n_rows))
    maha = np.empty(n_rows)
    logp = np.empty((n_components, n_rows))
    peak = np.empty(n_rows)
    total = np.empty(n_rows)
    for k in range(n_components):
        for a in range(n_obs):
            mu = means[k, observed[p, a]]
            for i in range(n_rows):
                centred[a, i] = xt[a, i] - mu
        _tiled_mahalanobis(centred, factors[p, k], n_rows, y, maha)
        c = const[p, k]
        for i in range(n_rows):
            logp[k, i] = c - 0.5 * maha[i]
    negligible = NEGLIGIBLE_LOG_RATIO_32 if X.itemsize == 4 else NEGLIGIBLE_LOG_RATIO_64
    _normaliser(logp, n_rows, peak, total, True, negligible)
    for i in range(n_rows):
        w = weights[rows[i]] if weighted else 1.0
        if w == 0.0 or total[i] == 0.0:
            if w != 0.0:
                out[1] += w
                out[0] = -np.inf
            total[i] = 0.0
            continue
        out[1] += w
        out[0] += w * (peak[i] + np.log(total[i]))
        total[i] = w / total[i]
    _complete_and_accumulate(xt, logp, total, p, observed, n_obs, missing, n_mis, regression,
                             conditional, means, completed, scaled, out)


@kernel
def _given_unit(X, weights, rows, p, observed, n_observed, missing, n_missing, regression,
                conditional, means, given, out):
    """Moments of one unit under supplied (already weighted) responsibilities."""
    n_rows = rows.shape[0]
    n_components, n_features = means.shape
    n_obs = n_observed[p]
    n_mis = n_missing[p]
    features4 = (n_features + 3) // 4 * 4
    weighted = weights.shape[0] > 0
    xt = _gather_observed(X, rows, p, observed, n_obs, n_obs)
    completed = np.zeros((features4, n_rows))
    scaled = np.zeros((features4, n_rows))
    logp = np.empty((n_components, n_rows))
    total = np.empty(n_rows)
    for i in range(n_rows):
        total[i] = 1.0
        out[1] += weights[rows[i]] if weighted else 1.0
        for k in range(n_components):
            logp[k, i] = given[rows[i], k]
    _complete_and_accumulate(xt, logp, total, p, observed, n_obs, missing, n_mis, regression,
                             conditional, means, completed, scaled, out)


@kernel
def _complete_and_accumulate(xt, resp, scale, p, observed, n_obs, missing, n_mis, regression,
                             conditional, means, completed, scaled, out):
    """Add the unit's completed rows with responsibilities resp[k, i] * scale[i]."""
    n_components, n_features = means.shape
    n_rows = resp.shape[1]
    s_off = 2 + n_components
    q_off = s_off + n_components * n_features
    for k in range(n_components):
        mass = 0.0
        for i in range(n_rows):
            resp[k, i] *= scale[i]
            mass += resp[k, i]
        if mass == 0.0:
            continue
        out[2 + k] += mass
        # Completed rows about the component mean: observed x - mu, missing B (x_o - mu_o).
        for a in range(n_obs):
            mu = means[k, observed[p, a]]
            row = observed[p, a]
            for i in range(n_rows):
                completed[row, i] = xt[a, i] - mu
        for b in range(n_mis):
            row = missing[p, b]
            for i in range(n_rows):
                completed[row, i] = 0.0
            for a in range(n_obs):
                coefficient = regression[p, k, b, a]
                source = observed[p, a]
                for i in range(n_rows):
                    completed[row, i] += coefficient * completed[source, i]
        for a in range(n_features):
            first = 0.0
            for i in range(n_rows):
                s = resp[k, i] * completed[a, i]
                scaled[a, i] = s
                first += s
            out[s_off + k * n_features + a] += first
        base = q_off + k * n_features * n_features
        _scatter_tiles(scaled, completed, n_rows, n_features, out, base)
        for b1 in range(n_mis):
            for b2 in range(n_mis):
                r1 = missing[p, b1]
                r2 = missing[p, b2]
                if r1 <= r2:
                    out[base + r1 * n_features + r2] += mass * conditional[p, k, b1, b2]


@kernel
def _check_layout(X, weights, sorted_rows, unit_bounds, unit_pattern, observed, n_observed,
                  missing, n_missing, regression, conditional, means):
    """Every index the missing-data kernels follow is in range (O(n + P D)); a violation
    is a ValueError, never a read outside X."""
    n, n_features = X.shape
    n_components = means.shape[0]
    n_patterns = observed.shape[0]
    if means.shape[1] != n_features or (weights.shape[0] != 0 and weights.shape[0] != n):
        raise ValueError("missing_stats: means or weights do not match X")
    for i in range(sorted_rows.shape[0]):
        if sorted_rows[i] < 0 or sorted_rows[i] >= n:
            raise ValueError("missing_stats: a row index is outside X")
    n_units = unit_bounds.shape[0] - 1
    if unit_pattern.shape[0] < n_units or (n_units >= 0 and unit_bounds.shape[0] > 0 and (
            unit_bounds[0] < 0 or unit_bounds[n_units] > sorted_rows.shape[0])):
        raise ValueError("missing_stats: work units do not match the sorted rows")
    for u in range(n_units):
        if unit_bounds[u + 1] < unit_bounds[u]:
            raise ValueError("missing_stats: work units must be in order")
        if unit_pattern[u] < 0 or unit_pattern[u] >= n_patterns:
            raise ValueError("missing_stats: a work unit names an unknown pattern")
    if (missing.shape[0] != n_patterns or n_observed.shape[0] != n_patterns
            or n_missing.shape[0] != n_patterns or observed.shape[1] < n_features
            or missing.shape[1] < n_features):
        raise ValueError("missing_stats: pattern tables disagree")
    for p in range(n_patterns):
        n_obs = n_observed[p]
        n_mis = n_missing[p]
        if n_obs < 0 or n_mis < 0 or n_obs + n_mis != n_features:
            raise ValueError("missing_stats: a pattern does not split the features")
        for a in range(n_obs):
            if observed[p, a] < 0 or observed[p, a] >= n_features:
                raise ValueError("missing_stats: an observed column is out of range")
        for a in range(n_mis):
            if missing[p, a] < 0 or missing[p, a] >= n_features:
                raise ValueError("missing_stats: a missing column is out of range")
    if (regression.shape[0] != n_patterns or regression.shape[1] != n_components
            or regression.shape[2] < n_features or regression.shape[3] < n_features
            or conditional.shape[0] != n_patterns or conditional.shape[1] != n_components
            or conditional.shape[2] < n_features or conditional.shape[3] < n_features):
        raise ValueError("missing_stats: per-pattern tables do not match the model")


# The entry points share the layout of the rows (parameters of missing_posterior_stats).


@kernel(parallel=True)
def missing_posterior_stats(X, weights, layout, factors, const, regression, conditional, means,
                            batch_units):
    """The E-step on rows with missing entries: flat statistics (full second moments about
    ``means``, the log-likelihood in ``[0]``) under the mixture's posterior.

    Parameters
    ----------
    X : (n, D) data; missing entries are never read.
    weights : (n,) sample weights or empty.
    layout : ``(sorted_rows, unit_bounds, unit_pattern, observed, n_observed, missing,
        n_missing)``, how the rows are grouped (below).
    sorted_rows : row indices grouped by pattern; unit u covers
        ``sorted_rows[unit_bounds[u]:unit_bounds[u + 1]]``, all of pattern ``unit_pattern[u]``.
    observed, missing : (P, D) column indices of each pattern (first n_observed[p] /
        n_missing[p] used).
    factors : (P, K, O4, O4) upper Cholesky factors of the observed precision, zero padded.
    const : (P, K) log weight + log det(factor) - n_obs/2 log(2 pi).
    regression : (P, K, D, D) B = S_mo S_oo^-1 (n_missing x n_observed used).
    conditional : (P, K, D, D) S_mm - B S_om (n_missing x n_missing used).
    means : (K, D) component means (also the shift of the moments).
    batch_units : units whose partials are held at once (memory only).
    """
    n_components, n_features = means.shape
    sorted_rows, unit_bounds, unit_pattern, observed, n_observed, missing, n_missing = layout
    _check_layout(X, weights, sorted_rows, unit_bounds, unit_pattern, observed, n_observed,
                  missing, n_missing, regression, conditional, means)
    n_patterns = observed.shape[0]
    if (factors.shape[0] != n_patterns or factors.shape[1] != n_components
            or const.shape[0] != n_patterns or const.shape[1] != n_components):
        raise ValueError("missing_stats: per-pattern tables do not match the model")
    for p in range(n_patterns):
        if factors.shape[2] < n_observed[p] or factors.shape[3] < n_observed[p]:
            raise ValueError("missing_stats: observed factors are too small")
    size = stat_size(n_components, n_features, False)
    n_units = unit_bounds.shape[0] - 1
    total = np.zeros(size)
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            u = first + j
            _posterior_unit(X, weights, sorted_rows[unit_bounds[u]:unit_bounds[u + 1]],
                            unit_pattern[u], observed, n_observed, missing, n_missing,
                            factors, const, regression, conditional, means, partial[j])
        add_in_order(partial, n_batch, total)
    return total


@kernel(parallel=True)
def missing_resp_stats(X, weights, layout, regression, conditional, means, given, batch_units):
    """Flat statistics (full second moments about ``means``; ``[0]`` stays 0) of rows with
    missing entries under supplied responsibilities ``given`` (n, K), weights already
    applied (HMM posteriors). Other parameters as in :func:`missing_posterior_stats`."""
    n_components, n_features = means.shape
    sorted_rows, unit_bounds, unit_pattern, observed, n_observed, missing, n_missing = layout
    _check_layout(X, weights, sorted_rows, unit_bounds, unit_pattern, observed, n_observed,
                  missing, n_missing, regression, conditional, means)
    if given.shape[0] < X.shape[0] or given.shape[1] < n_components:
        raise ValueError("missing_stats: given responsibilities do not cover X")
    size = stat_size(n_components, n_features, False)
    n_units = unit_bounds.shape[0] - 1
    total = np.zeros(size)
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            u = first + j
            _given_unit(X, weights, sorted_rows[unit_bounds[u]:unit_bounds[u + 1]],
                        unit_pattern[u], observed, n_observed, missing, n_missing, regression,
                        conditional, means, given, partial[j])
        add_in_order(partial, n_batch, total)
    return total
