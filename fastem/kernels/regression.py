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
def _unit_log_probs(Z, Y, lo, hi, coef, chol, const, zt, yt, logp, log_total):
    """For rows lo:hi, transposed into ``zt`` (P x rows) and ``yt`` (M x rows):
    ``logp[k, j] = const[k] - |L_k^{-1} (y_j - z_j coef_k)|^2 / 2`` and
    ``log_total[j]`` = log-sum-exp over k (-inf for a row of zero density).

    Rows are innermost in every loop, so LLVM vectorises them (the exp included).
    """
    n_components, n_design, n_outputs = coef.shape
    n_rows = hi - lo
    for j in range(n_rows):
        i = lo + j
        for a in range(n_design):
            zt[a, j] = Z[i, a]
        for b in range(n_outputs):
            yt[b, j] = Y[i, b]
    rt = np.empty((n_outputs, n_rows))
    for k in range(n_components):
        for b in range(n_outputs):
            for j in range(n_rows):
                rt[b, j] = yt[b, j]
            for a in range(n_design):
                c = coef[k, a, b]
                for j in range(n_rows):
                    rt[b, j] -= zt[a, j] * c
        for j in range(n_rows):
            logp[k, j] = const[k]
        for b in range(n_outputs):  # forward substitution with the lower factor
            for c in range(b):
                factor = chol[k, b, c]
                for j in range(n_rows):
                    rt[b, j] -= factor * rt[c, j]
            inverse = 1.0 / chol[k, b, b]
            for j in range(n_rows):
                rt[b, j] *= inverse
                logp[k, j] -= 0.5 * rt[b, j] * rt[b, j]
    for j in range(n_rows):
        log_total[j] = logp[0, j]
    for k in range(1, n_components):
        for j in range(n_rows):
            if logp[k, j] > log_total[j]:
                log_total[j] = logp[k, j]
    total = np.zeros(n_rows)
    for k in range(n_components):
        for j in range(n_rows):
            total[j] += exp(logp[k, j] - log_total[j])
    for j in range(n_rows):
        if log_total[j] != -np.inf:
            log_total[j] += np.log(total[j])


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
    log_total = np.empty(n_rows)
    _unit_log_probs(Z, Y, lo, hi, coef, chol, const, zt, yt, resp, log_total)
    row_weight = np.empty(n_rows)
    for j in range(n_rows):
        w = weights[lo + j] if weighted else 1.0
        row_weight[j] = w
        if w == 0.0:
            continue
        out[1] += w
        if log_total[j] == -np.inf:
            row_weight[j] = 0.0  # no responsibility; its -inf joins the log-likelihood
            out[0] = -np.inf
            continue
        out[0] += w * log_total[j]
    for k in range(K):
        for j in range(n_rows):
            resp[k, j] = row_weight[j] * exp(resp[k, j] - log_total[j]) if row_weight[j] != 0.0 \
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
def expert_rows(Z, Y, coef, chol, const, mode, unit_rows, out_values, out_matrix):
    """Per row: log p(y | x) (``LOG_SUM``) or the log posterior of each component."""
    _check(Z, Y, np.empty(0), coef, chol, const)
    n_components, n_design, n_outputs = coef.shape
    n = Z.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for unit in prange(n_units):
        lo = unit * unit_rows
        hi = min(lo + unit_rows, n)
        n_rows = hi - lo
        zt = np.empty((n_design, n_rows))
        yt = np.empty((n_outputs, n_rows))
        logp = np.empty((n_components, n_rows))
        log_total = np.empty(n_rows)
        _unit_log_probs(Z, Y, lo, hi, coef, chol, const, zt, yt, logp, log_total)
        for j in range(n_rows):
            if mode == LOG_SUM:
                out_values[lo + j] = log_total[j]
            else:
                for k in range(n_components):
                    out_matrix[lo + j, k] = logp[k, j] - log_total[j]
