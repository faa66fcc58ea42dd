"""Log-gamma and digamma over a flat array (the loops of :mod:`fastem._special`).

Evaluated per parameter, never per row, but a categorical emission table can hold
millions of parameters: compiled loops over the flattened array, no temporaries.
"""

from __future__ import annotations

import math

from .._jit import kernel


@kernel
def lgamma_into(values, out):
    """out[i] = log |Gamma(values[i])| for 1-d float64 arrays."""
    for i in range(values.size):
        out[i] = math.lgamma(values[i])


@kernel
def digamma_into(values, out):
    """out[i] = psi(values[i]) for 1-d float64 arrays of positive numbers."""
    # psi(x) = psi(x + 1) - 1/x lifts x above 10, where seven terms of the asymptotic
    # series in 1/x^2 (Bernoulli numbers B_2k / 2k) are accurate to round-off.
    for i in range(values.size):
        x = values[i]
        shift = 0.0
        while x < 10.0:
            shift -= 1.0 / x
            x += 1.0
        inverse_square = 1.0 / (x * x)
        series = 0.0
        for coefficient in (1.0 / 12, -691.0 / 32760, 1.0 / 132, -1.0 / 240, 1.0 / 252,
                            -1.0 / 120, 1.0 / 12):
            series = (series + coefficient) * inverse_square
        out[i] = shift + math.log(x) - 0.5 / x - series
