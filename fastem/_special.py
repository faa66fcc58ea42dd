"""The special functions variational EM needs: log-gamma, digamma, log-beta.

NumPy has none of them and SciPy is not a runtime dependency. They are evaluated
on a few numbers per component per iteration, never per row, so plain NumPy
with the standard series is fast enough; accuracy is about 1e-15 relative.
"""

from __future__ import annotations

import math

import numpy as np

_LGAMMA = np.vectorize(math.lgamma, otypes=[np.float64])

# Coefficients of the asymptotic series of digamma in 1/x^2 (Bernoulli numbers
# B_2k / 2k): psi(x) ~ log x - 1/(2x) - sum_k B_2k / (2k x^2k).
_DIGAMMA_SERIES = (1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132, -691.0 / 32760,
                   1.0 / 12)
_ASYMPTOTIC_FROM = 10.0


def gammaln(x):
    """log |Gamma(x)| elementwise."""
    return _LGAMMA(np.asarray(x, dtype=np.float64))


def digamma(x):
    """psi(x) = d/dx log Gamma(x) elementwise, for x > 0.

    The recurrence psi(x) = psi(x + 1) - 1/x lifts x above 10, where seven terms
    of the asymptotic series are accurate to round-off.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    if np.any(~(x > 0)):
        raise ValueError("digamma is evaluated at positive numbers only here")
    shift = np.zeros_like(x)
    while np.any(small := x < _ASYMPTOTIC_FROM):
        shift[small] -= 1.0 / x[small]
        x[small] += 1.0
    inverse_square = 1.0 / (x * x)
    series = np.zeros_like(x)
    for coefficient in reversed(_DIGAMMA_SERIES):
        series = (series + coefficient) * inverse_square
    return shift + np.log(x) - 0.5 / x - series


def _stirling_correction(x):
    """log Gamma(x) - [(x - 1/2) log x - x + log(2 pi) / 2] for x >= 10 (its series)."""
    inverse = 1.0 / x
    square = inverse * inverse
    return inverse * (1.0 / 12 - square * (1.0 / 360 - square * (1.0 / 1260
                                                                  - square / 1680)))


def betaln(a, b):
    """log B(a, b) = log Gamma(a) + log Gamma(b) - log Gamma(a + b) elementwise.

    When the larger argument is large, log Gamma(big) - log Gamma(small + big)
    cancels: it is taken from Stirling's series as a difference of logarithms,
    -(big - 1/2) log1p(small / big) - small log(small + big) + small + (the
    corrections), whose terms are of the size of the result.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    small, big = np.minimum(a, b), np.maximum(a, b)
    direct = gammaln(a) + gammaln(b) - gammaln(a + b)
    large = big >= _ASYMPTOTIC_FROM
    if not np.any(large):
        return direct
    s, g = small[large], big[large]
    difference = (-(g - 0.5) * np.log1p(s / g) - s * np.log(s + g) + s
                  + _stirling_correction(g) - _stirling_correction(s + g))
    result = np.array(direct, dtype=np.float64)
    result[large] = gammaln(s) + difference
    return result
