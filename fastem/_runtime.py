"""Threading layer selection and scoped thread counts.

numba's default "workqueue" threading layer aborts the process when two Python
threads launch parallel kernels at once. fastem therefore asks numba for a
thread-safe layer (tbb if it loads, else OpenMP) unless the user chose one
through ``NUMBA_THREADING_LAYER``. This must run before the first parallel
kernel executes, which is why :mod:`fastem` imports this module first.
"""

from __future__ import annotations

import contextlib
import numbers
import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "threadsafe"


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


@contextlib.contextmanager
def threads(n_threads=None):
    """Run the enclosed fastem calls on ``n_threads`` threads.

    The previous count is restored on exit, also after an exception. numba's
    thread count is per Python thread, so this never affects other threads.

    Parameters
    ----------
    n_threads : int or None, default=None
        Number of threads; ``None`` uses every thread numba started with.

    Examples
    --------
    >>> import fastem
    >>> with fastem.threads(1):
    ...     pass
    """
    wanted = resolve_n_threads(n_threads)
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        numba.set_num_threads(previous)
