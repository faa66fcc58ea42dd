"""Mixtures of Gaussian regressions: the fused E-step and its additive statistics.

Component k predicts the outputs of a row by ``mean_k = z @ coef[k]`` (z the row of
the design matrix, intercept included) with a full covariance ``L_k L_k^T``. One pass
computes, for every row, ``log pi_k + log N(y; mean_k, L_k L_k^T)``, normalises in
the log domain, and adds per component (weighted by w * r_ik):

* ``mass``: sum of w r
* ``zz``: sum of w r z z^T (P x P)
* ``zy``: sum of w r z y^T (P x M)
* ``yy``: sum of w r y y^T (M x M)

after the shared ``loglik`` and ``weight`` scalars, field by field (all K masses,
then all K ``zz``, ...). Work units of consecutive rows
write their own partials, added in unit order: the result does not depend on the
thread count. The caller centres z (except the intercept) and y, so these moments
stay well conditioned.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .fast_math import exp
from .gaussian import _add_rows_in_order

LOG_SUM = 0  # log p(y | x) per row into out_values
LOG_RESP = 1  # log posterior of the components into out_matrix


@kernel
def stat_size(n_components, n_design, n_outputs):
    """Length of the flat statistics vector."""
    p, m = n_design, n_outputs
    return 2 + n_components * (1 + p * p + p * m + m * m)


@kernel
def _row_log_probs(Z, Y, i, coef, chol, const, resid, logp):
    """logp[k] = const[k] - |L_k^{-1} (y_i - z_i coef_k)|^2 / 2."""
    n_components, n_design, n_outputs = coef.shape
    for k in range(n_components):
        for b in range(n_outputs):
            mean = 0.0
            for a in range(n_design):
                mean += Z[i, a] * coef[k, a, b]
            resid[b] = Y[i, b] - mean
        maha = 0.0
        for b in range(n_outputs):  # forward substitution with the lower factor
            value = resid[b]
            for c in range(b):
                value -= chol[k, b, c] * resid[c]
            value /= chol[k, b, b]
            resid[b] = value
            maha += value * value
        logp[k] = const[k] - 0.5 * maha


@kernel
def _log_normaliser(logp):
    peak = logp[0]
    for k in range(1, logp.shape[0]):
        if logp[k] > peak:
            peak = logp[k]
    if peak == -np.inf:
        return peak
    total = 0.0
    for k in range(logp.shape[0]):
        total += np.exp(logp[k] - peak)
    return peak + np.log(total)


@kernel
def _unit_stats(Z, Y, weights, lo, hi, coef, chol, const, out):
    n_components, n_design, n_outputs = coef.shape
    p, m, K = n_design, n_outputs, n_components
    n_rows = hi - lo
    # Field-major, as the layout names them: all masses, then all zz, all zy, all yy.
    zz_base = 2 + K
    zy_base = zz_base + K * p * p
    yy_base = zy_base + K * p * m
    weighted = weights.shape[0] > 0
    # The unit transposed (features x rows) and its weighted responsibilities (K x rows):
    # the moment loops below then run over contiguous rows, which LLVM vectorises.
    zt = np.empty((p, n_rows))
    yt = np.empty((m, n_rows))
    resp = np.empty((K, n_rows))  # log-probabilities first, then responsibilities
    for j in range(n_rows):
        i = lo + j
        for a in range(p):
            zt[a, j] = Z[i, a]
        for b in range(m):
            yt[b, j] = Y[i, b]
    # Residuals and their whitened squares, component by component, rows innermost.
    rt = np.empty((m, n_rows))
    for k in range(K):
        for b in range(m):
            for j in range(n_rows):
                rt[b, j] = yt[b, j]
            for a in range(p):
                c = coef[k, a, b]
                for j in range(n_rows):
                    rt[b, j] -= zt[a, j] * c
        for j in range(n_rows):
            resp[k, j] = const[k]
        for b in range(m):  # forward substitution with the lower factor
            for c in range(b):
                factor = chol[k, b, c]
                for j in range(n_rows):
                    rt[b, j] -= factor * rt[c, j]
            inverse = 1.0 / chol[k, b, b]
            for j in range(n_rows):
                rt[b, j] *= inverse
                resp[k, j] -= 0.5 * rt[b, j] * rt[b, j]
    # Log-sum-exp over components, row-wise but with the rows innermost (vectorised exp).
    peak = np.empty(n_rows)
    for j in range(n_rows):
        peak[j] = resp[0, j]
    for k in range(1, K):
        for j in range(n_rows):
            if resp[k, j] > peak[j]:
                peak[j] = resp[k, j]
    total = np.zeros(n_rows)
    for k in range(K):
        for j in range(n_rows):
            total[j] += exp(resp[k, j] - peak[j])
    row_weight = np.empty(n_rows)
    for j in range(n_rows):
        w = weights[lo + j] if weighted else 1.0
        if w == 0.0 or peak[j] == -np.inf:
            row_weight[j] = 0.0  # no responsibility (a zero-density row adds -inf below)
            if w != 0.0:
                out[1] += w
                out[0] = -np.inf
            continue
        log_total = peak[j] + np.log(total[j])
        out[1] += w
        out[0] += w * log_total
        peak[j] = log_total
        row_weight[j] = w
    for k in range(K):
        for j in range(n_rows):
            resp[k, j] = row_weight[j] * exp(resp[k, j] - peak[j]) if row_weight[j] != 0.0 \
                else 0.0
    scaled = np.empty(n_rows)
    for k in range(K):
        mass = 0.0
        for j in range(n_rows):
            mass += resp[k, j]
        if mass == 0.0:
            continue
        out[2 + k] += mass
        _add_weighted_gram(resp[k], zt, n_rows, scaled, out, zz_base + k * p * p)
        _add_weighted_gram(resp[k], yt, n_rows, scaled, out, yy_base + k * m * m)
        zy = zy_base + k * p * m
        for a in range(p):
            for j in range(n_rows):
                scaled[j] = resp[k, j] * zt[a, j]
            for b in range(m):
                total = 0.0
                for j in range(n_rows):
                    total += scaled[j] * yt[b, j]
                out[zy + a * m + b] += total


@kernel
def _add_weighted_gram(weights, vt, n_rows, scaled, out, base):
    """out[base + a * n + c] += sum_j weights[j] vt[a, j] vt[c, j] for the n x n matrix
    of the rows of ``vt`` (the upper triangle computed, both written)."""
    n = vt.shape[0]
    for a in range(n):
        for j in range(n_rows):
            scaled[j] = weights[j] * vt[a, j]
        for c in range(a, n):
            total = 0.0
            for j in range(n_rows):
                total += scaled[j] * vt[c, j]
            out[base + a * n + c] += total
            if c != a:
                out[base + c * n + a] += total

@kernel
def _check(Z, Y, weights, coef, chol, const):
    n_components, n_design, n_outputs = coef.shape
    if Z.shape[1] != n_design or Y.shape[1] != n_outputs or Z.shape[0] != Y.shape[0]:
        raise ValueError("regression kernel: Z, Y and coef do not match")
    if chol.shape[0] != n_components or chol.shape[1] != n_outputs \
            or chol.shape[2] != n_outputs or const.shape[0] != n_components:
        raise ValueError("regression kernel: chol and const do not match coef")
    if weights.shape[0] != 0 and weights.shape[0] != Z.shape[0]:
        raise ValueError("regression kernel: one weight per row")


@kernel(parallel=True)
def expert_stats(Z, Y, weights, coef, chol, const, unit_rows, batch_units, total):
    """Add the statistics of all rows under the parameters to ``total``; returns it."""
    _check(Z, Y, weights, coef, chol, const)
    n_components, n_design, n_outputs = coef.shape
    size = stat_size(n_components, n_design, n_outputs)
    if total.shape[0] != size:
        raise ValueError("regression kernel: total has the wrong length")
    n = Z.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            lo = (first + j) * unit_rows
            hi = min(lo + unit_rows, n)
            _unit_stats(Z, Y, weights, lo, hi, coef, chol, const, partial[j])
        _add_rows_in_order(partial, n_batch, total)
    return total


@kernel(parallel=True)
def expert_rows(Z, Y, coef, chol, const, mode, out_values, out_matrix):
    """Per row: log p(y | x) (``LOG_SUM``) or the log posterior of each component."""
    _check(Z, Y, np.empty(0), coef, chol, const)
    n_components, _, n_outputs = coef.shape
    n = Z.shape[0]
    for i in prange(n):
        resid = np.empty(n_outputs)
        logp = np.empty(n_components)
        _row_log_probs(Z, Y, i, coef, chol, const, resid, logp)
        total = _log_normaliser(logp)
        if mode == LOG_SUM:
            out_values[i] = total
        else:
            for k in range(n_components):
                out_matrix[i, k] = logp[k] - total
