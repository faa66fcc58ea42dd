"""Gaussian mixtures on rows with missing entries (NaN), by exact EM.

Rows are grouped by their pattern of observed entries; per pattern and
component the observed block of the covariance is factorised once per
iteration. For a row x with observed part o and missing part m under
component k:

* the responsibility uses the marginal density N(x_o; mu_o, S_oo) (the Gaussian
  kernels evaluate it on the observed columns);
* the missing entries are replaced by their conditional mean
  mu_m + B (x_o - mu_o), with B = S_mo S_oo^-1;
* the conditional covariance S_mm - B S_om is added to the second moments
  (leaving it out would bias the covariances down).

The statistics have the layout of :mod:`fastem.kernels.gaussian` (moments about
the current means), so the M-step is the ordinary one. The objective is the
observed-data log-likelihood, which EM never decreases. A row with every entry
missing carries no information: it is left out of the fit, its density is 1
and its posterior the mixture weights.
"""

from __future__ import annotations

import numpy as np

from ..components.gaussian import far_rows_log_resp
from ..engine import UNIT_ROWS, batch_units
from ..kernels import gaussian as gk
from ..kernels import gaussian_missing as gmk
from .model import GaussianMixtureModel

_EMPTY = np.empty(0)


def missing_patterns(X):
    """Rows grouped by pattern of missing entries.

    Returns (groups, empty_rows, order): ``groups`` is a list of (observed column indices,
    row indices), the row indices being consecutive slices of ``order`` (all rows sorted by
    pattern; no other copy of the row indices is made); rows with every entry missing sort
    last and form ``empty_rows`` instead of a group. No (n, D) mask is built.
    """
    n, n_features = X.shape
    if n_features <= 62:
        # bit d set: entry d missing (all-missing is the largest key); 4-byte keys when they fit
        key_type = np.int32 if n_features <= 30 else np.int64
        keys = np.zeros(n, dtype=key_type)
        for column in range(n_features):
            keys |= np.isnan(X[:, column]).astype(key_type) << key_type(column)
    else:  # one key per distinct row of the mask (all-missing is the lexicographic last)
        _, keys = np.unique(np.isnan(X), axis=0, return_inverse=True)
        keys = keys.ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    del keys
    boundaries = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    del sorted_keys
    groups = []
    empty_rows = order[:0]
    for rows in np.split(order, boundaries):
        observed = np.flatnonzero(~np.isnan(X[rows[0]]))
        if observed.size == 0:
            empty_rows = rows
        else:
            groups.append((observed, rows))
    return groups, empty_rows, order


def full_covariances(spec, covariances, n_components, n_features):
    """(K, D, D) covariance matrices from the spec's public shape."""
    return spec.to_full(covariances, n_components, n_features)


class _Pattern:
    """One missingness pattern's per-component factorisation under fixed parameters."""

    def __init__(self, observed, n_features, log_weights, means, covariances, diagonal):
        self.observed = observed
        self.missing = np.setdiff1d(np.arange(n_features), observed)
        n_obs = observed.size
        s_oo = covariances[:, observed][:, :, observed]
        lower = np.linalg.cholesky(s_oo)
        inverse_lower = np.linalg.inv(lower)
        upper = np.swapaxes(inverse_lower, 1, 2)  # precision = upper @ upper.T
        log_det = np.log(np.diagonal(upper, axis1=1, axis2=2)).sum(axis=1)
        self.const = np.ascontiguousarray(log_weights + log_det - 0.5 * n_obs * gk.LOG_2PI)
        self.means = np.ascontiguousarray(means[:, observed])
        if diagonal:
            self.factor = np.ascontiguousarray(np.diagonal(upper, axis1=1, axis2=2)[:, None, :])
        else:
            self.factor = np.ascontiguousarray(upper)
        if self.missing.size:
            s_mo = covariances[:, self.missing][:, :, observed]
            precision = np.swapaxes(inverse_lower, 1, 2) @ inverse_lower
            self.regression = s_mo @ precision  # B = S_mo S_oo^-1, (K, m, o)
            s_mm = covariances[:, self.missing][:, :, self.missing]
            self.conditional = s_mm - self.regression @ np.swapaxes(s_mo, 1, 2)

    def weighted_log_prob(self, X_observed):
        out = np.empty((X_observed.shape[0], self.const.shape[0]))
        gk.gaussian_weighted_log_prob(X_observed, self.means, self.factor, self.const,
                                      UNIT_ROWS, out)
        return out


def _patterns(groups, spec, params, n_features):
    k = params.means.shape[0]
    covariances = full_covariances(spec, params.covariances, k, n_features)
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    return [(_Pattern(observed, n_features, log_weights, params.means, covariances,
                      spec.diagonal), rows) for observed, rows in groups]


def _log_normalise(table):
    peak = table.max(axis=1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    exponentials = np.exp(table - peak)
    total = exponentials.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        norm = np.log(total[:, 0]) + peak[:, 0]
    return norm, exponentials / np.where(total > 0, total, 1.0)


def _log_posteriors(table):
    """log softmax of each row, as (table - peak) - log(total): subtracting the peak first
    keeps log(total) even when |peak| is so large that peak + log(total) == peak."""
    peak = table.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = table - peak
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def row_outputs(spec, params, X, what):
    """Per-row log-density ("logsumexp"), log-posteriors ("log_resp"), most probable
    component ("argmax") or weighted component log-densities ("weighted") of X with NaN
    (marginal over missing entries)."""
    n, n_features = X.shape
    k = params.means.shape[0]
    groups, empty_rows, _ = missing_patterns(X)
    with np.errstate(divide="ignore"):
        log_weights = np.log(params.weights)
    values = (np.empty(n) if what == "logsumexp" else np.empty(n, dtype=np.int64)
              if what == "argmax" else np.empty((n, k)))
    for pattern, rows in _patterns(groups, spec, params, n_features):
        table = pattern.weighted_log_prob(np.ascontiguousarray(X[np.ix_(rows,
                                                                        pattern.observed)]))
        if what == "argmax":  # labels without an (n, K) array
            labels = table.argmax(axis=1)
            far = np.flatnonzero(~(np.abs(table.max(axis=1)) <= gk.RESOLVED_LOG_DENSITY))
            if far.size:
                labels[far] = far_rows_log_resp(X[np.ix_(rows[far], pattern.observed)],
                                                pattern.means, pattern.factor,
                                                pattern.const).argmax(axis=1)
            values[rows] = labels
            continue
        if what == "weighted":
            values[rows] = table
            continue
        if what == "logsumexp":
            values[rows] = _log_normalise(table)[0]
            continue
        log_resp = _log_posteriors(table)
        far = np.flatnonzero(np.isnan(log_resp).any(axis=1)
                             | ~(np.abs(table.max(axis=1)) <= gk.RESOLVED_LOG_DENSITY))
        if far.size:  # differences no longer resolved: the limiting posterior
            log_resp[far] = far_rows_log_resp(X[np.ix_(rows[far], pattern.observed)],
                                              pattern.means, pattern.factor, pattern.const)
        values[rows] = log_resp
    # A row with nothing observed: density 1, posterior = the mixture weights.
    values[empty_rows] = (0.0 if what == "logsumexp" else int(np.argmax(log_weights))
                          if what == "argmax" else log_weights)
    return values


_TABLE_BYTES = 32 << 20
"""Per-pattern tables built at once by the missing-data E-step."""


class MissingLayout:
    """What the missing-data kernel needs that depends on the data only: the patterns,
    and the rows cut into work units of one pattern each (fixed by the data, never by
    the thread count)."""

    def __init__(self, X, n_components):
        n_features = X.shape[1]
        self.X = X
        self.groups, self.empty_rows, order = missing_patterns(X)
        n_patterns = len(self.groups)
        self.observed = np.zeros((n_patterns, n_features), dtype=np.int64)
        self.missing = np.zeros((n_patterns, n_features), dtype=np.int64)
        self.n_observed = np.zeros(n_patterns, dtype=np.int64)
        self.n_missing = np.zeros(n_patterns, dtype=np.int64)
        bounds, unit_pattern = [0], []
        for index, (observed, rows) in enumerate(self.groups):
            missing = np.setdiff1d(np.arange(n_features), observed)
            self.observed[index, :observed.size] = observed
            self.missing[index, :missing.size] = missing
            self.n_observed[index] = observed.size
            self.n_missing[index] = missing.size
            for lo in range(0, len(rows), UNIT_ROWS):
                bounds.append(bounds[-1] + min(UNIT_ROWS, len(rows) - lo))
                unit_pattern.append(index)
        # The groups are consecutive slices of ``order``, the all-missing rows last.
        self.sorted_rows = order[:order.shape[0] - self.empty_rows.shape[0]]
        self.unit_bounds = np.asarray(bounds, dtype=np.int64)
        self.unit_pattern = np.asarray(unit_pattern, dtype=np.int64)
        self.obs4 = (int(self.n_observed.max()) + 3) // 4 * 4
        self.batch = batch_units(gk.stat_size(n_components, n_features, False))

    def _factorised(self, patterns, covariances, log_weights, means):
        """Per (pattern, component) of the patterns ``patterns`` (a range): observed
        precision factor, constant, regression and conditional covariance, padded into
        the kernel's arrays."""
        k, d = means.shape
        count = len(patterns)
        factors = np.zeros((count, k, self.obs4, self.obs4))
        const = np.empty((count, k))
        regression = np.zeros((count, k, d, d))
        conditional = np.zeros((count, k, d, d))
        for index, group in enumerate(patterns):
            observed = self.groups[group][0]
            pattern = _Pattern(observed, d, log_weights, means, covariances, False)
            n_obs, n_mis = observed.size, pattern.missing.size
            factors[index, :, :n_obs, :n_obs] = pattern.factor
            const[index] = pattern.const
            if n_mis:
                regression[index, :, :n_mis, :n_obs] = pattern.regression
                conditional[index, :, :n_mis, :n_mis] = pattern.conditional
        return factors, const, regression, conditional

    def _pattern_chunks(self, n_components, n_features):
        """Ranges of patterns whose tables fit in _TABLE_BYTES, with their unit ranges.

        Random missingness makes thousands of patterns; all their tables at once cost
        many times the data. The chunks depend on the data only (never on threads)."""
        per_pattern = 8 * n_components * (self.obs4 ** 2 + 2 * n_features ** 2)
        size = max(1, _TABLE_BYTES // per_pattern)
        n_patterns = len(self.groups)
        starts = np.searchsorted(self.unit_pattern, np.arange(0, n_patterns + size, size))
        for chunk, first in enumerate(range(0, n_patterns, size)):
            yield range(first, min(first + size, n_patterns)), starts[chunk], starts[chunk + 1]

    def statistics(self, spec, params, weights=None, responsibilities=None):
        """Flat statistics (spec's layout) of the rows with something observed.

        With ``responsibilities`` (n, K) given (e.g. HMM posteriors, already
        weighted), they replace the mixture posterior and ``flat[0]`` is 0.
        """
        k, d = params.means.shape
        covariances = full_covariances(spec, params.covariances, k, d)
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        means = np.ascontiguousarray(params.means)
        flat = None
        for patterns, lo, hi in self._pattern_chunks(k, d):
            first = patterns.start
            layout = (self.sorted_rows, self.unit_bounds[lo:hi + 1],
                      self.unit_pattern[lo:hi] - first,
                      self.observed[patterns.start:patterns.stop],
                      self.n_observed[patterns.start:patterns.stop],
                      self.missing[patterns.start:patterns.stop],
                      self.n_missing[patterns.start:patterns.stop])
            rows = (self.X, _EMPTY if weights is None else weights, layout)
            factors, const, regression, conditional = self._factorised(
                patterns, covariances, log_weights, means)
            if responsibilities is None:
                part = gmk.missing_posterior_stats(*rows, factors, const, regression,
                                                   conditional, means, self.batch)
            else:
                part = gmk.missing_resp_stats(*rows, regression, conditional, means,
                                              responsibilities, self.batch)
            flat = part if flat is None else flat + part
        if spec.diagonal:
            head = flat[:2 + k + k * d]
            second = flat[2 + k + k * d:].reshape(k, d, d)
            flat = np.concatenate([head, np.einsum("kdd->kd", second).ravel()])
        return flat


class MissingGaussianMixtureModel(GaussianMixtureModel):
    """A Gaussian mixture on data with NaN entries, as an engine model: the mixture
    composite over the Gaussian component with its ``missing`` option.

    Each block's missing-value patterns are found once and kept in the block's
    cache (a block without NaN takes the complete-data kernel); the start runs the
    complete-data one on a column-mean-imputed copy of the initialisation block (of a
    random sample when it is large), freed as soon as it is done.
    """

    def __init__(self, spec, n_components, n_features, reg_covar, init_params,
                 weights_init=None, means_init=None, precisions_cholesky_init=None):
        super().__init__(spec, n_components, n_features, reg_covar, init_params,
                         weights_init, means_init, precisions_cholesky_init, missing=True)


def mean_imputed(X, sample_weight=None):
    """A copy of X with each NaN replaced by its column's (weighted) observed mean.

    Built in place in one copy (plus a boolean mask), never with full-size temporaries.
    """
    filled = np.array(X, dtype=np.float64, order="C", copy=True)
    missing = np.isnan(filled)
    filled[missing] = 0.0
    weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    sums = weights @ filled
    mass = np.array([weights.sum() - weights[missing[:, d]].sum()
                     for d in range(filled.shape[1])])
    means = sums / np.where(mass > 0, mass, 1.0)
    filled[missing] = np.broadcast_to(means, filled.shape)[missing]
    return filled


def conditional_fill(spec, params, X, random_state=None):
    """X with each NaN replaced by its conditional expectation under the mixture, or, with a
    ``random_state``, by a draw from the conditional distribution (component first)."""
    n, n_features = X.shape
    out = np.array(X, dtype=np.float64, copy=True)
    groups, empty_rows, _ = missing_patterns(out)
    k = params.means.shape[0]
    covariances = full_covariances(spec, params.covariances, k, n_features)
    for pattern, rows in _patterns(groups, spec, params, n_features):
        missing = pattern.missing
        if missing.size == 0:
            continue
        observed = pattern.observed
        X_observed = np.ascontiguousarray(out[np.ix_(rows, observed)])
        _, resp = _log_normalise(pattern.weighted_log_prob(X_observed))
        # conditional means of the missing entries under each component: (n_p, K, m)
        centred = X_observed[:, None, :] - params.means[None, :, observed]
        conditional_means = (params.means[None, :, missing]
                             + np.einsum("kmo,nko->nkm", pattern.regression, centred))
        if random_state is None:
            out[np.ix_(rows, missing)] = np.einsum("nk,nkm->nm", resp, conditional_means)
            continue
        draws = np.empty((len(rows), missing.size))
        cumulative = np.cumsum(resp, axis=1)
        chosen = np.minimum((cumulative < random_state.rand(len(rows))[:, None]).sum(axis=1),
                            k - 1)
        for j in range(k):
            members = np.flatnonzero(chosen == j)
            if members.size:
                noise = random_state.multivariate_normal(
                    np.zeros(missing.size), pattern.conditional[j], size=members.size)
                draws[members] = conditional_means[members, j] + noise
        out[np.ix_(rows, missing)] = draws
    if empty_rows.size:
        if random_state is None:
            out[empty_rows] = params.weights @ params.means
        else:
            chosen = random_state.choice(k, size=empty_rows.size, p=params.weights)
            for j in range(k):
                members = empty_rows[chosen == j]
                if members.size:
                    out[members] = random_state.multivariate_normal(
                        params.means[j], covariances[j], size=members.size)
    return out
