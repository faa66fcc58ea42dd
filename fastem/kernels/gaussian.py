"""Gaussian log-densities and fused E-step / sufficient-statistic kernels.

One representation serves the four covariance types of a mixture:

* ``means``: (K, D) component means.
* ``factor``: the Cholesky factor of each precision matrix, either
  (Kc, D, D) upper triangular (``full`` with Kc = K, ``tied`` with Kc = 1), or
  (Kc, 1, D) holding a diagonal (``diag``; ``spherical`` repeats its scalar).
  For a row x, the Mahalanobis term is ``||(x - mu_k) @ factor_k||^2``.
* ``const``: (K,) per-component constants, ``log w_k + log det(factor_k) -
  D/2 log(2 pi)``, so that the weighted log-probability is
  ``const_k - 0.5 * Mahalanobis``.

The statistics are one flat float64 vector so that every kernel reduces
partials the same way::

    [0]                 sum_i w_i log p(x_i)     (gaussian_posterior_stats only)
    [1]                 sum_i w_i
    [2 : 2+K]           N_k  = sum_i r_ik
    next K*D            S_k  = sum_i r_ik (x_i - c_k)
    next K*D*D or K*D   Q_k  = sum_i r_ik (x_i - c_k)(x_i - c_k)^T (upper triangle),
                               or its diagonal for diagonal factors

where ``c`` is a shift (the current means): second moments about a nearby
point keep their precision, raw moments about zero would not.

How a work unit is computed (the cost is about D^2/2 multiply-adds per row
and component for the Mahalanobis term and as many for the scatter, so both
are written as register-tiled small matrix products):

* The unit's rows are transposed once into a (D, rows) buffer, so that the
  per-component centring, the diagonal Mahalanobis terms and the moments are
  loops over contiguous rows that LLVM turns into SIMD code.
* Full covariances with D >= ``TILED_MIN_FEATURES``: the Mahalanobis term is
  ``||(x - mu) U||^2``, computed in blocks of 4 features x 4 outputs along the
  rows (blocks below the diagonal of U are skipped: about D(D+1)/2 products,
  not D^2). Smaller D uses one row-vector update per factor entry.
* Scatter: ``Q = sum_i r_i c_i c_i^T`` as 4 x 4 tiles of dot products over the
  unit's rows, upper triangle only.
* Responsibilities: per-row maximum, one vectorised exponential per row and
  component (:func:`fastem.kernels.fast_math.exp`), one logarithm per row.
* float32 data is centred in float64 and stored as float32; the products and
  the per-unit sums are float32 (twice the SIMD width), the sums across units
  float64.

Rows are processed in work units of ``unit_rows`` rows. Units are fixed by the
number of rows alone; each unit writes its own partial vector and partials are
added in unit order, so a result is bitwise the same for any thread count.
"""

from __future__ import annotations

import numpy as np

from .._jit import kernel, prange
from .fast_math import exp, normalised_log
from .reduction import add_in_order

LOG_2PI = np.log(2.0 * np.pi)

TILE = 4  # edge of the register tiles (rows x outputs, and rows of the scatter)
TILED_MIN_FEATURES = 4  # full covariances from this dimension use the tiled products
# Terms of a row's softmax below exp(threshold) are set to exactly zero. Relative to the
# row's largest term they are far below rounding, but values near the subnormal range make
# every product in the scatter take a microcode assist (measured 25x slower at D=64 in
# float64, 40x in float32). float32 scatters need the larger threshold (e^-60 ~ 1e-26,
# still 19 orders of magnitude below float32 resolution) to keep r * (x - mu) normal.
NEGLIGIBLE_LOG_RATIO_64 = -600.0
NEGLIGIBLE_LOG_RATIO_32 = -60.0

RESOLVED_LOG_DENSITY = 2.0**53
"""Largest log-density magnitude at which differences of order one are still resolved;
beyond it rows take the exact far-row posterior instead (mixture.model.row_outputs)."""


@kernel
def stat_size(n_components, n_features, diagonal):
    """Length of the flat statistics vector."""
    second = n_features if diagonal else n_features * n_features
    return 2 + n_components * (1 + n_features + second)


@kernel
def _round_up(n, multiple):
    return (n + multiple - 1) // multiple * multiple


@kernel
def _uses_tiles(factor, n_features):
    return factor.shape[1] != 1 and n_features >= TILED_MIN_FEATURES


@kernel
def _kernel_factor(X, factor):
    """The precision factors in X's dtype, in the layout the unit kernels read.

    Tiled: (Kc, D4, D4) upper triangular, zero padded to D4 = round_up(D, TILE)
    so that the tile loops never need a remainder. Otherwise a cast copy.
    """
    n_factors, rows, n_features = factor.shape
    if not _uses_tiles(factor, n_features):
        out = np.empty((n_factors, rows, n_features), X.dtype)
        out[:] = factor
        return out
    padded = _round_up(n_features, TILE)
    out = np.zeros((n_factors, padded, padded), X.dtype)
    for f in range(n_factors):
        for a in range(n_features):
            for b in range(a, n_features):
                out[f, a, b] = factor[f, a, b]
    return out


@kernel
def _transpose_rows(X, lo, n_rows, out):
    """out[a, i] = X[lo + i, a] for the unit's rows."""
    for i in range(n_rows):
        for a in range(X.shape[1]):
            out[a, i] = X[lo + i, a]


@kernel
def _tiled_mahalanobis(centred_t, upper, n_rows, y, out):
    """out[i] = ||centred_t[:, i] @ U||^2 for an upper-triangular U zero padded to D4.

    Blocks of 4 inputs x 4 outputs: each pass over the rows reads 4 centred
    features and updates 4 outputs with 16 multiply-adds, so the loads and
    stores of ``y`` are shared by 4 features; block (a0, j0) is skipped when
    a0 > j0 (the lower triangle of U is zero). The row loop is contiguous and
    is vectorised.
    """
    padded = upper.shape[0]
    zero = upper[0, 0] - upper[0, 0]
    for i in range(n_rows):
        out[i] = zero
    for j0 in range(0, padded, TILE):
        for i in range(n_rows):
            y[0, i] = zero
            y[1, i] = zero
            y[2, i] = zero
            y[3, i] = zero
        for a0 in range(0, j0 + TILE, TILE):
            u00 = upper[a0, j0]
            u01 = upper[a0, j0 + 1]
            u02 = upper[a0, j0 + 2]
            u03 = upper[a0, j0 + 3]
            u10 = upper[a0 + 1, j0]
            u11 = upper[a0 + 1, j0 + 1]
            u12 = upper[a0 + 1, j0 + 2]
            u13 = upper[a0 + 1, j0 + 3]
            u20 = upper[a0 + 2, j0]
            u21 = upper[a0 + 2, j0 + 1]
            u22 = upper[a0 + 2, j0 + 2]
            u23 = upper[a0 + 2, j0 + 3]
            u30 = upper[a0 + 3, j0]
            u31 = upper[a0 + 3, j0 + 1]
            u32 = upper[a0 + 3, j0 + 2]
            u33 = upper[a0 + 3, j0 + 3]
            for i in range(n_rows):
                c0 = centred_t[a0, i]
                c1 = centred_t[a0 + 1, i]
                c2 = centred_t[a0 + 2, i]
                c3 = centred_t[a0 + 3, i]
                y[0, i] += u00 * c0 + u10 * c1 + u20 * c2 + u30 * c3
                y[1, i] += u01 * c0 + u11 * c1 + u21 * c2 + u31 * c3
                y[2, i] += u02 * c0 + u12 * c1 + u22 * c2 + u32 * c3
                y[3, i] += u03 * c0 + u13 * c1 + u23 * c2 + u33 * c3
        for i in range(n_rows):
            out[i] += y[0, i] * y[0, i] + y[1, i] * y[1, i] + y[2, i] * y[2, i] + y[3, i] * y[3, i]


@kernel
def _diagonal_mahalanobis(xt, mu, scale, n_rows, out):
    """out[i] = sum_a ((xt[a, i] - mu[a]) * scale[a])^2, four features per pass."""
    n_features = mu.shape[0]
    for i in range(n_rows):
        out[i] = 0.0
    a = 0
    while a + TILE <= n_features:
        m0, m1, m2, m3 = mu[a], mu[a + 1], mu[a + 2], mu[a + 3]
        u0, u1, u2, u3 = scale[a], scale[a + 1], scale[a + 2], scale[a + 3]
        for i in range(n_rows):
            t0 = (np.float64(xt[a, i]) - m0) * u0
            t1 = (np.float64(xt[a + 1, i]) - m1) * u1
            t2 = (np.float64(xt[a + 2, i]) - m2) * u2
            t3 = (np.float64(xt[a + 3, i]) - m3) * u3
            out[i] += t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3
        a += TILE
    for b in range(a, n_features):
        m, u = mu[b], scale[b]
        for i in range(n_rows):
            t = (np.float64(xt[b, i]) - m) * u
            out[i] += t * t


@kernel
def _columnwise_mahalanobis(centred_t, factor, n_rows, y, out):
    """out[i] = ||centred_t[:, i] @ U||^2 for a small full factor U (D < TILED_MIN_FEATURES)."""
    n_features = factor.shape[1]  # centred_t may have padding rows
    zero = factor[0, 0] - factor[0, 0]
    for i in range(n_rows):
        out[i] = zero
    for j in range(n_features):
        for i in range(n_rows):
            y[0, i] = zero
        for a in range(j + 1):
            u = factor[a, j]
            for i in range(n_rows):
                y[0, i] += u * centred_t[a, i]
        for i in range(n_rows):
            out[i] += y[0, i] * y[0, i]


@kernel
def _weighted_log_prob_unit(xt, n_rows, means, factor, const, tiled, centred_t, y, maha,
                            diag_maha, logp):
    """logp[k, i] = weighted log-probability of the unit's row i under component k.

    ``xt`` holds the unit's rows transposed. ``maha`` (X's dtype) and
    ``diag_maha`` (float64) are scratch of length rows.
    """
    n_components, n_features = means.shape
    shared = factor.shape[0] == 1
    diagonal = factor.shape[1] == 1
    for k in range(n_components):
        f = 0 if shared else k
        c = const[k]
        if diagonal:
            _diagonal_mahalanobis(xt, means[k], factor[f, 0], n_rows, diag_maha)
            for i in range(n_rows):
                logp[k, i] = c - 0.5 * diag_maha[i]
            continue
        for a in range(n_features):
            mu = means[k, a]
            for i in range(n_rows):
                centred_t[a, i] = np.float64(xt[a, i]) - mu
        if tiled:
            _tiled_mahalanobis(centred_t, factor[f], n_rows, y, maha)
        else:
            _columnwise_mahalanobis(centred_t, factor[f], n_rows, y, maha)
        for i in range(n_rows):
            logp[k, i] = c - 0.5 * np.float64(maha[i])


@kernel
def _normaliser(logp, n_rows, peak, total, keep_exponentials, negligible):
    """Per row: ``peak`` = max_k logp, ``total`` = sum_k exp(logp - peak).

    log p(x_i) is ``peak[i] + log(total[i])``. With ``keep_exponentials``,
    logp is overwritten with exp(logp - peak). A row whose every component
    has log-probability -inf gets total 0 (log p = -inf), not NaN. Terms below
    exp(``negligible``) are exactly zero.
    """
    n_components = logp.shape[0]
    for i in range(n_rows):
        peak[i] = logp[0, i]
        total[i] = 0.0
    for k in range(1, n_components):
        for i in range(n_rows):
            peak[i] = max(peak[i], logp[k, i])
    for i in range(n_rows):
        if peak[i] == -np.inf:
            peak[i] = 0.0
    for k in range(n_components):
        for i in range(n_rows):
            d = logp[k, i] - peak[i]
            e = exp(d) if d > negligible else 0.0
            total[i] += e
            if keep_exponentials:
                logp[k, i] = e


@kernel
def _argmax_columns(logp, n_rows, best_value, best_index):
    """Per row (column of logp): the largest value and its first index."""
    for i in range(n_rows):
        best_value[i] = logp[0, i]
        best_index[i] = 0
    for k in range(1, logp.shape[0]):
        for i in range(n_rows):
            if logp[k, i] > best_value[i]:
                best_value[i] = logp[k, i]
                best_index[i] = k


@kernel
def _accumulate_row(X, i, k, r, shift, out, diagonal, diff):
    """Add row i with responsibility r to component k's statistics in ``out``."""
    n_components, n_features = shift.shape
    s_off = 2 + n_components
    q_off = s_off + n_components * n_features
    out[2 + k] += r
    for a in range(n_features):
        diff[a] = X[i, a] - shift[k, a]
        out[s_off + k * n_features + a] += r * diff[a]
    if diagonal:
        base = q_off + k * n_features
        for a in range(n_features):
            out[base + a] += r * diff[a] * diff[a]
    else:
        base = q_off + k * n_features * n_features
        for a in range(n_features):
            ra = r * diff[a]
            row = base + a * n_features
            for b in range(a, n_features):
                out[row + b] += ra * diff[b]


@kernel
def _scatter_tiles(scaled, centred_t, n_rows, n_features, out, base):
    """out[base + a*D + b] += sum_i scaled[a, i] * centred_t[b, i] for b >= a.

    4 x 4 tiles of dot products along the rows; the buffers have
    round_up(D, TILE) rows, zero beyond D.
    """
    padded = _round_up(n_features, TILE)
    zero = scaled[0, 0] - scaled[0, 0]
    for a0 in range(0, padded, TILE):
        for b0 in range(a0, padded, TILE):
            t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = zero
            t20 = t21 = t22 = t23 = t30 = t31 = t32 = t33 = zero
            for i in range(n_rows):
                s0 = scaled[a0, i]
                s1 = scaled[a0 + 1, i]
                s2 = scaled[a0 + 2, i]
                s3 = scaled[a0 + 3, i]
                c0 = centred_t[b0, i]
                c1 = centred_t[b0 + 1, i]
                c2 = centred_t[b0 + 2, i]
                c3 = centred_t[b0 + 3, i]
                t00 += s0 * c0
                t01 += s0 * c1
                t02 += s0 * c2
                t03 += s0 * c3
                t10 += s1 * c0
                t11 += s1 * c1
                t12 += s1 * c2
                t13 += s1 * c3
                t20 += s2 * c0
                t21 += s2 * c1
                t22 += s2 * c2
                t23 += s2 * c3
                t30 += s3 * c0
                t31 += s3 * c1
                t32 += s3 * c2
                t33 += s3 * c3
            tile = (t00, t01, t02, t03, t10, t11, t12, t13,
                    t20, t21, t22, t23, t30, t31, t32, t33)
            for p in range(TILE):
                a = a0 + p
                if a >= n_features:
                    break
                for q in range(TILE):
                    b = b0 + q
                    if b >= a and b < n_features:
                        out[base + a * n_features + b] += tile[p * TILE + q]


@kernel
def _accumulate_dense(xt, n_rows, resp, shift, diagonal, centred_t, scaled, out):
    """Add the unit's rows with responsibilities ``resp`` (K, rows) to ``out``."""
    n_components, n_features = shift.shape
    s_off = 2 + n_components
    q_off = s_off + n_components * n_features
    zero = scaled[0, 0] - scaled[0, 0]
    for k in range(n_components):
        mass = 0.0
        for i in range(n_rows):
            mass += resp[k, i]
        if mass == 0.0:
            continue  # exactly nothing to add (far components underflow to 0 often)
        out[2 + k] += mass
        if diagonal:
            # One pass per feature; nothing stored.
            for a in range(n_features):
                c = shift[k, a]
                first = zero
                second = zero
                for i in range(n_rows):
                    d = np.float64(xt[a, i]) - c
                    s = resp[k, i] * d
                    first += s
                    second += s * d
                out[s_off + k * n_features + a] += first
                out[q_off + k * n_features + a] += second
            continue
        for a in range(n_features):
            c = shift[k, a]
            first = 0.0
            for i in range(n_rows):
                d = np.float64(xt[a, i]) - c
                s = resp[k, i] * d
                centred_t[a, i] = d
                scaled[a, i] = s
                first += s
            out[s_off + k * n_features + a] += first
        _scatter_tiles(scaled, centred_t, n_rows, n_features, out,
                       q_off + k * n_features * n_features)



# -- checks -------------------------------------------------------------------------------
@kernel
def _check_model(X, means, factor, const):
    """The shapes every kernel that evaluates the model relies on (O(1)); a ValueError."""
    n_components, n_features = means.shape
    if n_features != X.shape[1]:
        raise ValueError("Gaussian kernel: means must have shape (n_components, n_features "
                         "of X)")
    if const.shape[0] != n_components:
        raise ValueError("Gaussian kernel: const must have one entry per component")
    if (factor.shape[0] != 1 and factor.shape[0] != n_components) or (
            factor.shape[1] != 1 and factor.shape[1] != n_features) or (
            factor.shape[2] != n_features):
        raise ValueError("Gaussian kernel: precision factors do not match the means")


@kernel
def _check_stats(X, weights, shift, diagonal, unit_rows, batch_units, total):
    """The shapes the statistics kernels rely on; a ValueError."""
    n_components, n_features = shift.shape
    if X.shape[1] != n_features:
        raise ValueError("Gaussian statistics: X and the shift (or means) have different "
                         "numbers of features")
    if unit_rows < 1 or batch_units < 1:
        raise ValueError("Gaussian statistics: unit sizes must be positive")
    if weights.shape[0] != 0 and weights.shape[0] != X.shape[0]:
        raise ValueError("Gaussian statistics: weights must have one entry per row of X "
                         "(or none)")
    if total.shape[0] != stat_size(n_components, n_features, diagonal):
        raise ValueError("Gaussian statistics: total has the wrong length for the model")


@kernel
def _check_rows(X, const, unit_rows, out_rows, out_columns):
    """Shapes of a per-row output (out_columns < 0: one value per row); a ValueError."""
    if unit_rows < 1:
        raise ValueError("Gaussian rows: unit_rows must be positive")
    if out_rows < X.shape[0]:
        raise ValueError("Gaussian rows: the output is shorter than X")
    if out_columns >= 0 and out_columns < const.shape[0]:
        raise ValueError("Gaussian rows: the output needs one column per component")


# -- the work of one unit ---------------------------------------------------------------
@kernel
def _unit_buffers(X, n_components, n_features, unit_rows):
    """Scratch space of one work unit, zero-initialised where padding is read."""
    features4 = _round_up(n_features, TILE)
    xt = np.empty((n_features, unit_rows), X.dtype)
    centred_t = np.zeros((features4, unit_rows), X.dtype)
    scaled = np.zeros((features4, unit_rows), X.dtype)
    y = np.empty((TILE, unit_rows), X.dtype)
    maha = np.empty(unit_rows, X.dtype)
    diag_maha = np.empty(unit_rows)
    logp = np.empty((n_components, unit_rows))
    return xt, centred_t, scaled, y, maha, diag_maha, logp


@kernel
def _unit_log_prob(X, lo, hi, means, factor, const, tiled):
    """(K, hi - lo) weighted log-probabilities of rows lo:hi (``factor`` in kernel layout)."""
    n_components, n_features = means.shape
    n_rows = hi - lo
    features4 = _round_up(n_features, TILE)
    xt = np.empty((n_features, n_rows), X.dtype)
    centred_t = np.zeros((features4, n_rows), X.dtype)
    y = np.empty((TILE, n_rows), X.dtype)
    maha = np.empty(n_rows, X.dtype)
    diag_maha = np.empty(n_rows)
    logp = np.empty((n_components, n_rows))
    _transpose_rows(X, lo, n_rows, xt)
    _weighted_log_prob_unit(xt, n_rows, means, factor, const, tiled, centred_t, y, maha,
                            diag_maha, logp)
    return logp


@kernel
def _posterior_unit(X, weights, lo, hi, means, factor, const, tiled, shift, diagonal, out):
    """The fused E-step of rows lo:hi: posterior, log-likelihood and moments in one pass."""
    n_components, n_features = means.shape
    n_rows = hi - lo
    weighted = weights.shape[0] > 0
    xt, centred_t, scaled, y, maha, diag_maha, logp = _unit_buffers(
        X, n_components, n_features, n_rows)
    _transpose_rows(X, lo, n_rows, xt)
    _weighted_log_prob_unit(xt, n_rows, means, factor, const, tiled, centred_t, y, maha,
                            diag_maha, logp)
    peak = np.empty(n_rows)
    total = np.empty(n_rows)
    single = X.itemsize == 4
    _normaliser(logp, n_rows, peak, total, True,
                NEGLIGIBLE_LOG_RATIO_32 if single else NEGLIGIBLE_LOG_RATIO_64)
    for i in range(n_rows):
        w = weights[lo + i] if weighted else 1.0
        if w == 0.0 or total[i] == 0.0:
            # A zero weight drops the row; a row of zero density carries no
            # responsibility (its -inf joins the log-likelihood).
            total[i] = 0.0
            if w != 0.0:
                out[1] += w
                out[0] = -np.inf
            continue
        out[1] += w
        out[0] += w * (peak[i] + np.log(total[i]))
        total[i] = w / total[i]
    for k in range(n_components):
        for i in range(n_rows):
            logp[k, i] *= total[i]
    _accumulate_dense(xt, n_rows, logp, shift, diagonal, centred_t, scaled, out)


@kernel
def _given_unit(X, weights, resp, lo, hi, shift, diagonal, out):
    """Moments of rows lo:hi under the caller's responsibilities resp[lo:hi]."""
    n_components, n_features = shift.shape
    n_rows = hi - lo
    weighted = weights.shape[0] > 0
    xt, centred_t, scaled, _, _, _, logp = _unit_buffers(X, n_components, n_features, n_rows)
    _transpose_rows(X, lo, n_rows, xt)
    for i in range(n_rows):
        w = weights[lo + i] if weighted else 1.0
        if w != 0.0:
            out[1] += w
        for k in range(n_components):
            logp[k, i] = w * resp[lo + i, k]
    _accumulate_dense(xt, n_rows, logp, shift, diagonal, centred_t, scaled, out)


@kernel
def _label_unit(X, weights, labels, lo, hi, shift, diagonal, out):
    """Moments of rows lo:hi under hard labels (-1: the row joins no component).

    One component per row: added row by row.
    """
    n_components, n_features = shift.shape
    weighted = weights.shape[0] > 0
    diff = np.empty(n_features)
    for i in range(lo, hi):
        k = labels[i]
        w = weights[i] if weighted else 1.0
        if w == 0.0:
            continue
        out[1] += w
        if 0 <= k < n_components:
            _accumulate_row(X, i, k, w, shift, out, diagonal, diff)


# -- statistics entry points ------------------------------------------------------------
# Each adds the statistics of all rows of X to ``total`` (the flat vector of the module
# doc) and returns it. Rows form units of ``unit_rows`` (fixed by the caller from the data
# size only); each unit writes its own partial and the partials are added in unit order
# (``batch_units`` of them held at once: memory only, no effect on the result), so the
# result is bitwise the same for any thread count, and consecutive calls over unit-aligned
# slices of X give bitwise the sums of one call over all of them.
#
# Common parameters: X (n, D) float32 or float64, C-contiguous; weights (n,) float64
# sample weights, or an empty array for unit weights; diagonal: accumulate only the
# diagonal of the second moments; total (stat_size,) float64, added to in place.


@kernel(parallel=True)
def gaussian_posterior_stats(X, weights, means, factor, const, shift, diagonal, unit_rows,
                             batch_units, total):
    """The E-step: statistics under the model's own posterior, moments about ``shift``
    (K, D) float64 (usually the means), and the weighted log-likelihood in ``total[0]``.

    ``means``, ``factor``, ``const``: the model as described in the module doc.
    """
    n_components, n_features = means.shape
    _check_model(X, means, factor, const)
    _check_stats(X, weights, shift, diagonal, unit_rows, batch_units, total)
    if shift.shape[0] != n_components:
        raise ValueError("gaussian_posterior_stats: shift must have one row per component")
    size = total.shape[0]
    tiled = _uses_tiles(factor, n_features)
    kernel_factor = _kernel_factor(X, factor)
    n = X.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            start = (first + j) * unit_rows
            stop = min(start + unit_rows, n)
            _posterior_unit(X, weights, start, stop, means, kernel_factor, const, tiled,
                            shift, diagonal, partial[j])
        add_in_order(partial, n_batch, total)
    return total


@kernel(parallel=True)
def gaussian_resp_stats(X, weights, resp, shift, diagonal, unit_rows, batch_units, total):
    """Statistics under given responsibilities ``resp`` (n, >= K) float64 (random
    initialisation, HMM posteriors), moments about ``shift`` (K, D) float64."""
    n_components = shift.shape[0]
    _check_stats(X, weights, shift, diagonal, unit_rows, batch_units, total)
    if resp.shape[0] != X.shape[0] or resp.shape[1] < n_components:
        raise ValueError("gaussian_resp_stats: responsibilities must have one row per row "
                         "of X and one column per component")
    size = total.shape[0]
    n = X.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            start = (first + j) * unit_rows
            stop = min(start + unit_rows, n)
            _given_unit(X, weights, resp, start, stop, shift, diagonal, partial[j])
        add_in_order(partial, n_batch, total)
    return total


@kernel(parallel=True)
def gaussian_label_stats(X, weights, labels, shift, diagonal, unit_rows, batch_units, total):
    """Statistics under hard labels ``labels`` (n,) int64, -1 for "no component" (k-means
    and one-hot initialisation; such rows count in the weight only), moments about
    ``shift`` (K, D) float64."""
    _check_stats(X, weights, shift, diagonal, unit_rows, batch_units, total)
    if labels.shape[0] != X.shape[0]:
        raise ValueError("gaussian_label_stats: labels must have one entry per row of X")
    size = total.shape[0]
    n = X.shape[0]
    n_units = (n + unit_rows - 1) // unit_rows
    for first in range(0, n_units, batch_units):
        n_batch = min(batch_units, n_units - first)
        partial = np.zeros((n_batch, size))
        for j in prange(n_batch):
            start = (first + j) * unit_rows
            stop = min(start + unit_rows, n)
            _label_unit(X, weights, labels, start, stop, shift, diagonal, partial[j])
        add_in_order(partial, n_batch, total)
    return total


# -- per-row entry points ---------------------------------------------------------------
# Each writes one output per row of X under the model (means, factor, const), in units
# of ``unit_rows`` rows (no reduction: any unit size gives the same values).


@kernel(parallel=True)
def gaussian_weighted_log_prob(X, means, factor, const, unit_rows, out):
    """out[i, k] = log w_k + log N(x_i | mu_k, Sigma_k): the (n, K) lattice."""
    n, n_features = X.shape
    _check_model(X, means, factor, const)
    _check_rows(X, const, unit_rows, out.shape[0], out.shape[1])
    tiled = _uses_tiles(factor, n_features)
    kernel_factor = _kernel_factor(X, factor)
    for u in prange((n + unit_rows - 1) // unit_rows):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        logp = _unit_log_prob(X, lo, hi, means, kernel_factor, const, tiled)
        for i in range(hi - lo):
            for k in range(logp.shape[0]):
                out[lo + i, k] = logp[k, i]


@kernel(parallel=True)
def gaussian_log_density(X, means, factor, const, unit_rows, out):
    """out[i] = log p(x_i) = log sum_k w_k N(x_i | mu_k, Sigma_k)."""
    n, n_features = X.shape
    _check_model(X, means, factor, const)
    _check_rows(X, const, unit_rows, out.shape[0], -1)
    tiled = _uses_tiles(factor, n_features)
    kernel_factor = _kernel_factor(X, factor)
    for u in prange((n + unit_rows - 1) // unit_rows):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        n_rows = hi - lo
        logp = _unit_log_prob(X, lo, hi, means, kernel_factor, const, tiled)
        peak = np.empty(n_rows)
        total = np.empty(n_rows)
        _normaliser(logp, n_rows, peak, total, False, -np.inf)
        for i in range(n_rows):
            out[lo + i] = peak[i] + np.log(total[i])


@kernel(parallel=True)
def gaussian_log_resp(X, means, factor, const, unit_rows, out):
    """out[i, k] = log p(k | x_i); NaN across rows whose log-densities exceed
    RESOLVED_LOG_DENSITY in magnitude (or are -inf), for the caller's exact far-row
    posterior (mixture.model.row_outputs)."""
    n, n_features = X.shape
    n_components = means.shape[0]
    _check_model(X, means, factor, const)
    _check_rows(X, const, unit_rows, out.shape[0], out.shape[1])
    tiled = _uses_tiles(factor, n_features)
    kernel_factor = _kernel_factor(X, factor)
    for u in prange((n + unit_rows - 1) // unit_rows):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        n_rows = hi - lo
        logp = _unit_log_prob(X, lo, hi, means, kernel_factor, const, tiled)
        peak = np.empty(n_rows)
        total = np.empty(n_rows)
        _normaliser(logp, n_rows, peak, total, False, -np.inf)
        for i in range(n_rows):
            log_total = np.log(total[i])
            # Beyond 2**53 the log-densities no longer resolve differences of order one
            # (a tied covariance's linear term is lost): NaN marks the row.
            unresolved = not abs(peak[i]) <= RESOLVED_LOG_DENSITY
            for k in range(n_components):
                out[lo + i, k] = np.nan if unresolved else normalised_log(
                    logp[k, i], peak[i], log_total)


@kernel(parallel=True)
def gaussian_best(X, means, factor, const, unit_rows, best_value, best_index):
    """Per row the most probable component (first on ties) into ``best_index`` (n,) int64
    and its weighted log-probability into ``best_value`` (n,) float64 (labels; nearest
    centres under a unit factor)."""
    n, n_features = X.shape
    _check_model(X, means, factor, const)
    _check_rows(X, const, unit_rows, min(best_value.shape[0], best_index.shape[0]), -1)
    tiled = _uses_tiles(factor, n_features)
    kernel_factor = _kernel_factor(X, factor)
    for u in prange((n + unit_rows - 1) // unit_rows):
        lo = u * unit_rows
        hi = min(lo + unit_rows, n)
        logp = _unit_log_prob(X, lo, hi, means, kernel_factor, const, tiled)
        _argmax_columns(logp, hi - lo, best_value[lo:hi], best_index[lo:hi])
