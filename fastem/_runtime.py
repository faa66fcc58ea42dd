"""Threading layer selection, fork safety and scoped thread counts.

numba's default "workqueue" threading layer aborts the process when two Python
threads launch parallel kernels at once, and GNU OpenMP kills a process that
forks after using it. fastem therefore picks, unless the user chose a layer
through ``NUMBA_THREADING_LAYER``:

* TBB when the ``tbb`` package is installed (``pip install fastem[tbb]``):
  safe under threads and fork. pip's wheel puts ``libtbb.so.12`` in
  ``<prefix>/lib``, which the dynamic loader does not search, so it is loaded
  here by path before numba looks for it;
* otherwise OpenMP (thread safe). A process forked after OpenMP ran cannot use
  it again: there, fastem runs its kernels serially (same results) and warns once.

This must run before the first parallel kernel executes, which is why
:mod:`fastem` imports this module first.
"""

from __future__ import annotations

import contextlib
import ctypes
import numbers
import os
import sys
from collections.abc import Iterator

import numba

_TBB_LIBRARIES = ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll")


def _load_pip_tbb() -> bool:
    """Load the TBB runtime shipped by the ``tbb`` wheel, if any; True when numba can use it."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        for folder in ("lib", os.path.join("Library", "bin")):
            for name in _TBB_LIBRARIES:
                path = os.path.join(prefix, folder, name)
                if os.path.exists(path):
                    try:
                        ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))
                    except OSError:
                        continue
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401
        from numba.np.ufunc.parallel import _check_tbb_version_compatible

        _check_tbb_version_compatible()
    except Exception:  # any failure means: not usable here
        return False
    return True


if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "tbb" if _load_pip_tbb() else "threadsafe"

_serial_after_fork = False


def _after_fork_in_child():
    global _serial_after_fork
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran before the fork: nothing inherited
        return
    if layer == "omp":
        _serial_after_fork = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def serial_only() -> bool:
    """True in a process forked after OpenMP ran: parallel kernels would kill it."""
    return _serial_after_fork


def max_threads() -> int:
    """Number of threads numba was started with (``NUMBA_NUM_THREADS``)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def resolve_n_threads(n_threads) -> int:
    """Validate an ``n_threads`` argument; ``None`` means all cores.

    Requests above the number of threads numba started with are clipped to
    it: asking for more threads than exist is not an error for a user.
    """
    if n_threads is None:
        return max_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"n_threads must be None or a positive int, got {n_threads!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be None or a positive int, got {n_threads!r}")
    return min(int(n_threads), max_threads())


SMALL_WORK = 100_000
"""Below this many multiply-adds per pass (rows x components x features, about), the
default thread count is 1: waking threads costs more than such work, and far more when
other processes keep the cores busy. Results do not depend on the thread count."""


@contextlib.contextmanager
def threads(n_threads: int | None = None, work: float | None = None) -> Iterator[None]:
    """Run the enclosed fastem calls on ``n_threads`` threads.

    The previous count is restored on exit, also after an exception. numba's
    thread count is per Python thread, so this never affects other threads.

    Parameters
    ----------
    n_threads : int or None, default=None
        Number of threads; ``None`` uses every thread numba started with, or one
        thread when ``work`` is given and below ``SMALL_WORK``.
    work : float or None
        Estimated multiply-adds of one pass over the data (internal).

    Examples
    --------
    >>> import fastem
    >>> with fastem.threads(1):
    ...     pass
    """
    wanted = resolve_n_threads(n_threads)
    if n_threads is None and work is not None and work < SMALL_WORK:
        wanted = 1
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        numba.set_num_threads(previous)
