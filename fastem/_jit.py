"""The one place where numba decorators are configured.

Every compiled function in fastem is declared with :func:`kernel`, so that
caching, the floating-point model and the error model are the same everywhere.

Why these settings:

* ``cache=True``: compile cost is a user-facing latency; compiled kernels are
  written next to the sources (numba falls back to a user cache directory when
  that is read-only).
* ``fastmath`` with a flag set that keeps NaN/inf semantics. numba's blanket
  fastmath switch would add ``nnan``/``ninf`` and break ``-inf`` log-probabilities.
* ``error_model="numpy"``: division by zero gives inf/NaN instead of raising,
  which lets the kernels stay branch-free; the Python layer checks results.
* ``nogil=True``: kernels release the GIL so that many Python threads can fit
  at once.
"""

from __future__ import annotations

import numba

SAFE_FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

prange = numba.prange


def kernel(function=None, *, parallel: bool = False):
    """Compile ``function`` with fastem's numba settings.

    Use as ``@kernel`` for serial helpers (inlined into callers by LLVM) and
    ``@kernel(parallel=True)`` for the entry points that ``prange`` over work
    units.
    """

    def decorate(fn):
        return numba.njit(
            cache=True,
            nogil=True,
            parallel=parallel,
            error_model="numpy",
            fastmath=set(SAFE_FASTMATH),
        )(fn)

    if function is not None:
        return decorate(function)
    return decorate
