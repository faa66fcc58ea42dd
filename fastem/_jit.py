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

import functools
import types
import warnings

import numba

from . import _runtime
from .exceptions import interruption

SAFE_FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

prange = numba.prange


def _compile(fn, *, parallel, cache, exact=False):
    return numba.njit(cache=cache, nogil=True, parallel=parallel, error_model="numpy",
                      fastmath=False if exact else set(SAFE_FASTMATH))(fn)


def _renamed_copy(fn, suffix):
    """The same Python function under another qualified name (a separate cache entry)."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return copy


class _ParallelKernel:
    """A parallel entry point that falls back to a serial build where threads cannot run.

    In a process forked after GNU OpenMP ran, entering a parallel region
    terminates the process; there the same function is compiled without
    ``parallel`` (``prange`` becomes ``range``; work units and reduction order
    are unchanged) and used instead, with one warning. The serial build is cached
    on disk under its own name (numba keys its cache by the function's qualified
    name, so the parallel and serial builds must not share one): only the first
    such child anywhere compiles it.
    """

    _warned = False

    def __init__(self, fn, compiled):
        functools.update_wrapper(self, fn)
        self.parallel = compiled
        self._fn = fn
        self._serial = None

    def __call__(self, *args):
        try:
            return self._run(*args)
        except SystemError as error:
            # Ctrl-C inside compiled code comes back as numba's SystemError chained to the
            # KeyboardInterrupt: raise the interrupt itself, as Python code would.
            interrupt = interruption(error)
            if interrupt is None:
                raise
            raise interrupt from None

    def _run(self, *args):
        if not _runtime.serial_only():
            return self.parallel(*args)
        if self._serial is None:
            if not _ParallelKernel._warned:
                _ParallelKernel._warned = True
                warnings.warn("fastem runs serially in this process: it was forked after the "
                              "OpenMP threading layer ran, which cannot be used again after "
                              "fork. Install tbb (pip install 'fastem[tbb]') or start worker "
                              "processes with the 'spawn' or 'forkserver' method.",
                              RuntimeWarning, stacklevel=2)
            self._serial = _compile(_renamed_copy(self._fn, "_serial"), parallel=False,
                                    cache=True)
        return self._serial(*args)


def kernel(function=None, *, parallel: bool = False, exact: bool = False):
    """Compile ``function`` with fastem's numba settings.

    Use as ``@kernel`` for serial helpers (inlined into callers by LLVM) and
    ``@kernel(parallel=True)`` for the entry points that ``prange`` over work
    units. ``@kernel(exact=True)`` compiles a small helper without fastmath flags,
    for arithmetic whose order is the result: its instructions keep IEEE semantics
    even once inlined into a fastmath caller (``reassoc`` would turn
    ``(a - b) - c`` into ``a - (b + c)``, which loses ``c`` when ``b`` is huge).
    """

    def decorate(fn):
        compiled = _compile(fn, parallel=parallel, cache=True, exact=exact)
        return _ParallelKernel(fn, compiled) if parallel else compiled

    if function is not None:
        return decorate(function)
    return decorate
