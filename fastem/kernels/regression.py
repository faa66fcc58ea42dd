"""Mixtures of experts: the fused E-step and its additive statistics.

No design matrix exists: each work unit reads its rows of X, Y and the trials
directly and transposes them into small per-unit buffers, taking the expert
columns ``ecols`` of X less their centre ``x_mean`` as the design row z (after an
intercept 1 when ``coef`` has one more row than ``ecols`` has columns), the gating
columns ``gcols`` less ``u_mean`` as the gating row u (after an intercept 1 when the
softmax gate has one more coefficient than ``gcols`` has columns), the columns
``ycols`` of Y less ``y_mean`` as y (zeros when Y has no rows: inference without
y) and column ``tcol`` of T as the trials (1 when ``tcol`` is -1). X, Y and T may be
one array (a table ``[X | Y | trials]``). So fit's memory is that of its work
units, not of a copy of the data.

Component k of a row (design row z, gating row u, outputs y, trials n) has the
log joint ``logp[k] = const[k] + log f_k(y | z) + gate_k(u)``:

* experts (``family``): Gaussian, ``mean = z @ coef[k]`` with covariance
  ``L_k L_k^T`` (``const`` holds ``-M/2 log 2 pi - log det L_k``); Poisson with
  log link, ``y eta - exp(eta)``; binomial with logit link, ``y eta - n log(1 +
  e^eta)``, where ``eta = z @ coef[k, :, 0]``. The terms that do not depend on k
  (``-log y!``, ``log C(n, y)``) are added once per row.
* gates (``gating``): constant (``const`` holds ``log pi_k``); softmax, ``u @
  gate_coef[k]`` normalised over k; Gaussian (cluster-weighted), ``-|M_k^{-1} (u -
  mu_k)|^2 / 2`` with ``log pi_k`` and the Gaussian constants in ``const`` (then
  ``logp`` is the *joint* density of (u, y), and ``gate_const`` gives the
  conditional one).

One pass normalises in the log domain and adds per component, weighted by w r:
``mass``; Gaussian experts ``zz = sum z z^T``, ``zy = sum z y^T``, ``yy = sum y y^T``;
GLM experts the curvature ``hess = sum v z z^T`` of their log-likelihood at the
current coefficients and the working response ``work = sum (v eta + y - mu) z``
(IRLS's ``Z^T W z``: the gradient plus ``hess @ coef``); the softmax gate its
curvature ``ghess[k, l] = sum g_k (delta_kl - g_l) u u^T`` and working response
``gwork[k] = sum (r_k - g_k + g_k (eta_k - sum_l g_l eta_l)) u`` (its gradient plus
``sum_l ghess[k, l] @ gate_coef[l]``). In that form the Newton step's quadratic
model is additive even over rows evaluated at different coefficients (online
EM blends batches); one Newton step per EM iteration; the Gaussian gate
``usum = sum (u - mu_k)`` and ``uu = sum (u - mu_k)(u - mu_k)^T`` about its current
means ``gate_mean`` (the statistics' shift). ``fields`` gives each field's offset in
the flat vector (-1: absent), as the model's layout defines them. Work units
of consecutive rows write their own partials, added in unit order: the result
does not depend on the thread count. The caller centres the columns, so these
moments stay well conditioned.

Entry points, one job each: :func:`expert_stats` (the E-step's statistics),
:func:`expert_log_likelihood`, :func:`expert_log_resp` and :func:`expert_log_gate`
(per-row outputs). Their arguments are grouped as the model holds them: ``rows =
(X, Y, T)``, ``columns = (ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol)``,
``experts = (family, coef, chol, const)`` and ``gate = (gating, gate_coef,
gate_mean, gate_chol, gate_const)``. The family and the gate stay run-time
switches inside one compiled body: one signature serves the nine combinations
(a specialisation per combination would compile up to nine times per entry
point on first use).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel, prange
from .fast_math import exp, normalised_log
from .reduction import add_in_order

GAUSSIAN, POISSON, BINOMIAL = 0, 1, 2  # expert families
CONSTANT, SOFTMAX, GATE_GAUSSIAN = 0, 1, 2  # gates

# ``fields`` indices: offsets of the statistics in the flat vector.
MASS, ZZ, ZY, YY, WORK, HESS, GWORK, GHESS, USUM, UU = range(10)
N_FIELDS = 10



@kernel
def _gather(A, columns, centre, first, lo, hi, out):
    """Rows lo:hi of the columns ``columns`` of A less ``centre``, transposed: out[first +
    a, j] = A[lo + j, columns[a]] - centre[a]; out[0, j] = 1 (an intercept) when ``first``
    is 1. A without rows reads as its centre (zeros)."""
    n_rows = hi - lo
    if first == 1:
        for j in range(n_rows):
            out[0, j] = 1.0
    if A.shape[0] == 0:
        for a in range(columns.shape[0]):
            for j in range(n_rows):
                out[first + a, j] = 0.0
        return
    for j in range(n_rows):
        for a in range(columns.shape[0]):
            out[first + a, j] = A[lo + j, columns[a]] - centre[a]


@kernel
def _gate_size(gating, gate_coef, gate_mean):
    """Columns of the gating row u (its intercept included)."""
    if gating == SOFTMAX:
        return gate_coef.shape[1]
    if gating == GATE_GAUSSIAN:
        return gate_mean.shape[1]
    return 0


@kernel
def _log_sum_exp_rows(logp, n_rows, out):
    """log sum_k exp(logp[k, j]) in two parts: ``out[0, j]``, the largest term (-inf when
    every term is), and ``out[1, j]``, the log of the sum of exp(term - largest).

    They stay apart because their sum loses the second part when the first is huge:
    at log-densities of -1e43, log K vanishes, and posteriors taken as exp(term - sum)
    are all 1. A normalised term is (term - out[0]) - out[1]: see :func:`_normalised`.
    """
    n_components = logp.shape[0]
    for j in range(n_rows):
        out[0, j] = logp[0, j]
        out[1, j] = 0.0
    for k in range(1, n_components):
        for j in range(n_rows):
            if logp[k, j] > out[0, j]:
                out[0, j] = logp[k, j]
    for k in range(n_components):
        for j in range(n_rows):  # NaN where every term is -inf: set below, branch-free here
            out[1, j] += exp(logp[k, j] - out[0, j])
    for j in range(n_rows):
        out[1, j] = np.log(out[1, j]) if out[0, j] != -np.inf else 0.0


@kernel
def _normalised(term, log_sum, j):
    """``term`` less the log-sum-exp of row ``j`` held by ``log_sum`` (as its two parts)."""
    return normalised_log(term, log_sum[0, j], log_sum[1, j])


@kernel
def _add_mahalanobis(vt, mean, chol, n_rows, rt, logp_k):
    """logp_k[j] -= |L^{-1} (v_j - mean)|^2 / 2 for the columns of ``vt`` (its first
    ``len(mean)`` rows)."""
    n = mean.shape[0]
    for b in range(n):
        for j in range(n_rows):
            rt[b, j] = vt[b, j] - mean[b]
    for b in range(n):  # forward substitution with the lower factor
        for c in range(b):
            factor = chol[b, c]
            for j in range(n_rows):
                rt[b, j] -= factor * rt[c, j]
        inverse = 1.0 / chol[b, b]
        for j in range(n_rows):
            rt[b, j] *= inverse
            logp_k[j] -= 0.5 * rt[b, j] * rt[b, j]


@kernel
def _unit_log_probs(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, lo, hi,
                    family, gating, coef, chol, gate_coef, gate_mean, gate_chol, const,
                    gate_const, zt, yt, ut, tt, logp, eta, gate, row_const, log_total,
                    gate_norm):
    """For rows lo:hi, read into ``zt`` (P x rows), ``yt`` (M x rows), ``ut`` (Q x rows)
    and ``tt`` (trials): ``logp[k, j]`` (without the row constants, which go
    to ``row_const``; given u for the gated models), ``log_total`` = log-sum-exp over k
    of ``logp``, the linear
    predictors ``eta`` (GLM experts), the gate's log terms ``gate`` (normalised for the
    softmax) and ``gate_norm`` (the Gaussian gate's log density of u). ``log_total``
    and ``gate_norm`` are (2, rows): a log-sum-exp in the parts of
    :func:`_log_sum_exp_rows`.

    Rows are innermost in every loop, so LLVM vectorises them (the exp included).
    """
    n_components, n_design, n_outputs = coef.shape
    n_rows = hi - lo
    _gather(X, ecols, x_mean, n_design - ecols.shape[0], lo, hi, zt)
    _gather(Y, ycols, y_mean, 0, lo, hi, yt)
    _gather(X, gcols, u_mean, ut.shape[0] - gcols.shape[0], lo, hi, ut)
    for j in range(n_rows):
        row_const[j] = 0.0
    if family == BINOMIAL:
        for j in range(n_rows):
            tt[j] = T[lo + j, tcol] if tcol >= 0 else 1.0
            row_const[j] = (math.lgamma(tt[j] + 1.0) - math.lgamma(yt[0, j] + 1.0)
                            - math.lgamma(tt[j] - yt[0, j] + 1.0))
    elif family == POISSON:
        for j in range(n_rows):
            row_const[j] = -math.lgamma(yt[0, j] + 1.0)
    rt = np.empty((max(n_outputs, ut.shape[0]), n_rows))
    for k in range(n_components):
        for j in range(n_rows):
            logp[k, j] = const[k]
        if family == GAUSSIAN:
            for b in range(n_outputs):
                for j in range(n_rows):
                    rt[b, j] = yt[b, j]
                for a in range(n_design):
                    c = coef[k, a, b]
                    for j in range(n_rows):
                        rt[b, j] -= zt[a, j] * c
            # Inline (not _add_mahalanobis): LLVM then sees that rt and logp do not alias
            # and vectorises the substitution; through the call, this path ran 2.6x slower.
            for b in range(n_outputs):  # forward substitution with the lower factor
                for c in range(b):
                    factor = chol[k, b, c]
                    for j in range(n_rows):
                        rt[b, j] -= factor * rt[c, j]
                inverse = 1.0 / chol[k, b, b]
                for j in range(n_rows):
                    rt[b, j] *= inverse
                    logp[k, j] -= 0.5 * rt[b, j] * rt[b, j]
        else:
            for j in range(n_rows):
                eta[k, j] = 0.0
            for a in range(n_design):
                c = coef[k, a, 0]
                for j in range(n_rows):
                    eta[k, j] += zt[a, j] * c
            if family == POISSON:
                for j in range(n_rows):
                    logp[k, j] += yt[0, j] * eta[k, j] - exp(eta[k, j])
            else:
                for j in range(n_rows):
                    e = eta[k, j]
                    softplus = max(e, 0.0) + math.log1p(exp(-abs(e)))
                    logp[k, j] += yt[0, j] * e - tt[j] * softplus
        if gating == SOFTMAX:
            for j in range(n_rows):
                gate[k, j] = 0.0
            for a in range(ut.shape[0]):
                c = gate_coef[k, a]
                for j in range(n_rows):
                    gate[k, j] += ut[a, j] * c
        elif gating == GATE_GAUSSIAN:
            for j in range(n_rows):
                gate[k, j] = 0.0
            _add_mahalanobis(ut, gate_mean[k], gate_chol[k], n_rows, rt, gate[k])
    if gating != CONSTANT:
        # Both gates are normalised before they join the experts: p(k | u), then
        # log p(y, k | u). (A Gaussian gate's joint log p(u, y) less log p(u) cancels
        # once the gate's densities are far below one: -1e43 - -1e43 left 0.)
        if gating == GATE_GAUSSIAN:
            for k in range(n_components):
                for j in range(n_rows):
                    gate[k, j] += gate_const[k]
        _log_sum_exp_rows(gate, n_rows, gate_norm)
        for k in range(n_components):
            for j in range(n_rows):
                gate[k, j] = _normalised(gate[k, j], gate_norm, j)
                logp[k, j] += gate[k, j]
    _log_sum_exp_rows(logp, n_rows, log_total)


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
def _add_weighted_cross(weights, vt, wt, n_rows, scaled, out, base):
    """out[base + a * m + b] += sum_j weights[j] vt[a, j] wt[b, j] (an n x m matrix)."""
    m = wt.shape[0]
    for a in range(vt.shape[0]):
        for j in range(n_rows):
            scaled[j] = weights[j] * vt[a, j]
        for b in range(m):
            total = 0.0
            for j in range(n_rows):
                total += scaled[j] * wt[b, j]
            out[base + a * m + b] += total


@kernel
def _unit_stats(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, weights, lo, hi,
                family, gating, coef, chol, gate_coef, gate_mean, gate_chol, const, gate_const,
                fields, out):
    n_components, n_design, n_outputs = coef.shape
    p, m, q, K = n_design, n_outputs, _gate_size(gating, gate_coef, gate_mean), n_components
    n_rows = hi - lo
    weighted = weights.shape[0] > 0
    # The unit transposed (features x rows) and its weighted responsibilities (K x rows):
    # the moment loops below then run over contiguous rows, which LLVM vectorises.
    zt = np.empty((p, n_rows))
    yt = np.empty((m, n_rows))
    ut = np.empty((q, n_rows))
    tt = np.empty(n_rows)
    resp = np.empty((K, n_rows))  # log-probabilities first, then responsibilities
    eta = np.empty((K if family != GAUSSIAN else 0, n_rows))
    gate = np.empty((K if gating != CONSTANT else 0, n_rows))
    row_const = np.empty(n_rows)
    log_total = np.empty((2, n_rows))
    gate_norm = np.empty((2, n_rows))
    _unit_log_probs(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, lo, hi,
                    family, gating, coef, chol, gate_coef, gate_mean, gate_chol, const,
                    gate_const, zt, yt, ut, tt, resp, eta, gate, row_const, log_total,
                    gate_norm)
    row_weight = np.empty(n_rows)
    for j in range(n_rows):
        w = weights[lo + j] if weighted else 1.0
        row_weight[j] = w
        if w == 0.0:
            continue
        out[1] += w
        # The objective of a Gaussian gate is the joint log p(u, y) = log p(y | u) + log p(u).
        u_term = gate_norm[0, j] + gate_norm[1, j] if gating == GATE_GAUSSIAN else 0.0
        if log_total[0, j] == -np.inf or u_term == -np.inf:
            row_weight[j] = 0.0  # no responsibility; its -inf joins the log-likelihood
            out[0] = -np.inf
            continue
        out[0] += w * ((log_total[0, j] + log_total[1, j]) + row_const[j] + u_term)
    for k in range(K):
        for j in range(n_rows):
            resp[k, j] = row_weight[j] * exp(_normalised(resp[k, j], log_total, j)) \
                if row_weight[j] != 0.0 else 0.0
    scaled = np.empty(n_rows)
    curvature = np.empty(n_rows)
    centred = np.empty((q if gating == GATE_GAUSSIAN else 0, n_rows))
    for k in range(K):
        mass = 0.0
        for j in range(n_rows):
            mass += resp[k, j]
        if mass == 0.0:
            continue
        out[fields[MASS] + k] += mass
        if family == GAUSSIAN:
            _add_weighted_gram(resp[k], zt, n_rows, scaled, out, fields[ZZ] + k * p * p)
            _add_weighted_gram(resp[k], yt, n_rows, scaled, out, fields[YY] + k * m * m)
            _add_weighted_cross(resp[k], zt, yt, n_rows, scaled, out, fields[ZY] + k * p * m)
        else:
            for j in range(n_rows):
                r = resp[k, j]
                if family == POISSON:
                    mean = exp(eta[k, j])
                    variance = mean
                else:
                    prob = 1.0 / (1.0 + exp(-eta[k, j]))
                    mean = tt[j] * prob
                    variance = mean * (1.0 - prob)
                # A row without responsibility adds nothing (its mean may be inf).
                scaled[j] = r * (variance * eta[k, j] + yt[0, j] - mean) if r != 0.0 else 0.0
                curvature[j] = r * variance if r != 0.0 else 0.0
            base = fields[WORK] + k * p
            for a in range(p):
                total = 0.0
                for j in range(n_rows):
                    total += scaled[j] * zt[a, j]
                out[base + a] += total
            _add_weighted_gram(curvature, zt, n_rows, scaled, out, fields[HESS] + k * p * p)
        if gating == GATE_GAUSSIAN:
            # Moments about the component's current mean: a tight component far from the
            # centre keeps its digits (raw moments would cancel them away).
            for a in range(q):
                for j in range(n_rows):
                    centred[a, j] = ut[a, j] - gate_mean[k, a]
            base = fields[USUM] + k * q
            for a in range(q):
                total = 0.0
                for j in range(n_rows):
                    total += resp[k, j] * centred[a, j]
                out[base + a] += total
            _add_weighted_gram(resp[k], centred, n_rows, scaled, out, fields[UU] + k * q * q)
    if gating == SOFTMAX:
        _softmax_gate_stats(resp, gate, row_weight, ut, n_rows, fields, out)


@kernel
def _softmax_gate_stats(resp, log_gate, row_weight, ut, n_rows, fields, out):
    """Working response and curvature of sum r log g(u) at the current gate
    (``log_gate``, normalised: eta_k - sum_l g_l eta_l is log g_k - sum_l g_l log g_l)."""
    K, q = resp.shape[0], ut.shape[0]
    gw = np.empty((K, n_rows))  # w g_k
    for k in range(K):
        for j in range(n_rows):
            gw[k, j] = row_weight[j] * exp(log_gate[k, j]) if row_weight[j] != 0.0 else 0.0
    centre = np.zeros(n_rows)  # sum_l g_l log g_l
    for k in range(K):
        for j in range(n_rows):
            if gw[k, j] != 0.0:
                centre[j] += gw[k, j] / row_weight[j] * log_gate[k, j]
    difference = np.empty(n_rows)
    scaled = np.empty(n_rows)
    for k in range(K):
        for j in range(n_rows):
            difference[j] = resp[k, j] - gw[k, j]
            if gw[k, j] != 0.0:
                difference[j] += gw[k, j] * (log_gate[k, j] - centre[j])
        base = fields[GWORK] + k * q
        for a in range(q):
            total = 0.0
            for j in range(n_rows):
                total += difference[j] * ut[a, j]
            out[base + a] += total
        for other in range(k, K):
            # w g_k (delta_kl - g_l) is symmetric in (k, l): the (l, k) block is its transpose.
            for j in range(n_rows):
                g_other = exp(log_gate[other, j]) if row_weight[j] != 0.0 else 0.0
                difference[j] = gw[k, j] * ((1.0 if k == other else 0.0) - g_other)
            before = np.zeros(q * q)
            _add_weighted_gram(difference, ut, n_rows, scaled, before, 0)
            kl = fields[GHESS] + (k * K + other) * q * q
            lk = fields[GHESS] + (other * K + k) * q * q
            for a in range(q * q):
                out[kl + a] += before[a]
                if other != k:
                    out[lk + a] += before[a]


@kernel
def _check_columns(A, columns, centre, what):
    if centre.shape[0] != columns.shape[0]:
        raise ValueError("regression kernel: a centre does not match its columns")
    for a in range(columns.shape[0]):
        if columns[a] < 0 or (A.shape[0] > 0 and columns[a] >= A.shape[1]):
            raise ValueError(what)


@kernel
def _check(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, family, gating, coef,
           chol, gate_coef, gate_mean, gate_chol, const, gate_const):
    n_components, n_design, n_outputs = coef.shape
    n = X.shape[0]
    if Y.shape[0] != n and Y.shape[0] != 0:
        raise ValueError("regression kernel: X and Y have different numbers of rows")
    if ycols.shape[0] != n_outputs:
        raise ValueError("regression kernel: ycols and coef do not match")
    first = n_design - ecols.shape[0]
    if first != 0 and first != 1:
        raise ValueError("regression kernel: ecols and coef do not match")
    _check_columns(X, ecols, x_mean, "regression kernel: ecols out of range")
    _check_columns(X, gcols, u_mean, "regression kernel: gcols out of range")
    _check_columns(Y, ycols, y_mean, "regression kernel: ycols out of range")
    if const.shape[0] != n_components or gate_const.shape[0] != n_components:
        raise ValueError("regression kernel: const or gate_const do not match coef")
    if family == GAUSSIAN:
        if chol.shape[0] != n_components or chol.shape[1] != n_outputs \
                or chol.shape[2] != n_outputs:
            raise ValueError("regression kernel: chol does not match coef")
    elif family == POISSON or family == BINOMIAL:
        if n_outputs != 1:
            raise ValueError("regression kernel: GLM experts have one output")
        if family == BINOMIAL and tcol >= 0 and (T.shape[0] != n or tcol >= T.shape[1]):
            raise ValueError("regression kernel: one number of trials per row")
    else:
        raise ValueError("regression kernel: unknown family")
    q = _gate_size(gating, gate_coef, gate_mean)
    gate_first = q - gcols.shape[0]
    if gating == SOFTMAX:
        if gate_coef.shape[0] != n_components or (gate_first != 0 and gate_first != 1):
            raise ValueError("regression kernel: gate_coef does not match gcols")
    elif gating == GATE_GAUSSIAN:
        if gate_mean.shape[0] != n_components or gate_first != 0 \
                or gate_chol.shape[0] != n_components or gate_chol.shape[1] != q \
                or gate_chol.shape[2] != q:
            raise ValueError("regression kernel: the Gaussian gate does not match gcols")
    elif gating == CONSTANT:
        if gcols.shape[0] != 0:
            raise ValueError("regression kernel: the constant gate reads no columns")
    else:
        raise ValueError("regression kernel: unknown gate")


@kernel
def _check_model(rows, columns, experts, gate):
    """Validate the grouped arguments of the entry points (see the module docstring)."""
    X, Y, T = rows
    ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol = columns
    family, coef, chol, const = experts
    gating, gate_coef, gate_mean, gate_chol, gate_const = gate
    _check(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, family, gating, coef,
           chol, gate_coef, gate_mean, gate_chol, const, gate_const)


@kernel(parallel=True)
def expert_stats(rows, columns, weights, experts, gate, fields, unit_rows, batch_units, total):
    """Add the statistics of all rows under the parameters to ``total``; returns it.

    ``rows`` is ``(X, Y, T)``, ``columns`` how they are read, ``(ecols, x_mean, gcols,
    u_mean, ycols, y_mean, tcol)``; ``experts`` is ``(family, coef, chol, const)`` and
    ``gate`` ``(gating, gate_coef, gate_mean, gate_chol, gate_const)`` (the module
    docstring says what each holds); ``weights`` one per row or none.
    """
    _check_model(rows, columns, experts, gate)
    X, Y, T = rows
    ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol = columns
    family, coef, chol, const = experts
    gating, gate_coef, gate_mean, gate_chol, gate_const = gate
    n = X.shape[0]
    if weights.shape[0] != 0 and weights.shape[0] != n:
        raise ValueError("regression kernel: one weight per row")
    if fields.shape[0] != N_FIELDS:
        raise ValueError("regression kernel: fields have the wrong length")
    size = total.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            lo = (first + j) * unit_rows
            hi = min(lo + unit_rows, n)
            _unit_stats(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, weights,
                        lo, hi, family, gating, coef, chol, gate_coef, gate_mean, gate_chol,
                        const, gate_const, fields, partial[j])
        add_in_order(partial, n_batch, total)
    return total


@kernel
def _unit_evaluate(rows, columns, experts, gate, lo, hi):
    """The log joint of rows lo:hi, ``(logp (K, rows), gate terms (K, rows) or none,
    row constants, log-sum-exp of logp in two parts)``: what the per-row entry points
    read (see :func:`_unit_log_probs`)."""
    X, Y, T = rows
    ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol = columns
    family, coef, chol, const = experts
    gating, gate_coef, gate_mean, gate_chol, gate_const = gate
    n_components, n_design, n_outputs = coef.shape
    q = _gate_size(gating, gate_coef, gate_mean)
    n_rows = hi - lo
    zt = np.empty((n_design, n_rows))
    yt = np.empty((n_outputs, n_rows))
    ut = np.empty((q, n_rows))
    tt = np.empty(n_rows)
    logp = np.empty((n_components, n_rows))
    eta = np.empty((n_components if family != GAUSSIAN else 0, n_rows))
    gate_terms = np.empty((n_components if gating != CONSTANT else 0, n_rows))
    row_const = np.empty(n_rows)
    log_total = np.empty((2, n_rows))
    gate_norm = np.empty((2, n_rows))
    _unit_log_probs(X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol, lo, hi,
                    family, gating, coef, chol, gate_coef, gate_mean, gate_chol, const,
                    gate_const, zt, yt, ut, tt, logp, eta, gate_terms, row_const, log_total,
                    gate_norm)
    return logp, gate_terms, row_const, log_total


@kernel
def _check_rows_out(rows, experts, out):
    n, n_components = rows[0].shape[0], experts[1].shape[0]
    if out.shape[0] != n or out.shape[1] != n_components:
        raise ValueError("regression kernel: the output has the wrong shape")


@kernel(parallel=True)
def expert_log_likelihood(rows, columns, experts, gate, unit_rows, out):
    """``out[i]`` = log p(y_i | x_i) of every row (arguments as :func:`expert_stats`)."""
    _check_model(rows, columns, experts, gate)
    n = rows[0].shape[0]
    if out.shape[0] != n:
        raise ValueError("regression kernel: the output has the wrong shape")
    n_units = (n + unit_rows - 1) // unit_rows
    for unit in prange(n_units):
        lo = unit * unit_rows
        hi = min(lo + unit_rows, n)
        _, _, row_const, log_total = _unit_evaluate(rows, columns, experts, gate, lo, hi)
        for j in range(hi - lo):
            out[lo + j] = (log_total[0, j] + log_total[1, j]) + row_const[j]


@kernel(parallel=True)
def expert_log_resp(rows, columns, experts, gate, unit_rows, out):
    """``out[i, k]`` = the log posterior of component k for row i."""
    _check_model(rows, columns, experts, gate)
    _check_rows_out(rows, experts, out)
    n, n_components = out.shape
    n_units = (n + unit_rows - 1) // unit_rows
    for unit in prange(n_units):
        lo = unit * unit_rows
        hi = min(lo + unit_rows, n)
        logp, _, _, log_total = _unit_evaluate(rows, columns, experts, gate, lo, hi)
        for j in range(hi - lo):
            for k in range(n_components):
                out[lo + j, k] = _normalised(logp[k, j], log_total, j)


@kernel(parallel=True)
def expert_log_gate(rows, columns, experts, gate, unit_rows, out):
    """``out[i, k]`` = log g_k(x_i), the gate's log probabilities (y is not read)."""
    _check_model(rows, columns, experts, gate)
    _check_rows_out(rows, experts, out)
    n, n_components = out.shape
    gating, gate_const = gate[0], gate[4]
    n_units = (n + unit_rows - 1) // unit_rows
    for unit in prange(n_units):
        lo = unit * unit_rows
        hi = min(lo + unit_rows, n)
        _, gate_terms, _, _ = _unit_evaluate(rows, columns, experts, gate, lo, hi)
        for j in range(hi - lo):
            for k in range(n_components):
                out[lo + j, k] = gate_const[k] if gating == CONSTANT else gate_terms[k, j]
