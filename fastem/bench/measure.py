"""Timing and peak-memory helpers for the comparison (no fastem imports)."""

from __future__ import annotations

import os
import platform
import threading
import time

import numpy as np


def median_time(function, repeats):
    """Median wall time of ``repeats`` calls of ``function()``, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def per_iteration(fit, repeats):
    """Per-iteration time of an EM fit: (time of 4 iterations - time of 1) / 3.

    ``fit(max_iter)`` runs one fit from fixed starting parameters;
    initialisation and validation cancel in the difference.
    """
    one = median_time(lambda: fit(1), repeats)
    four = median_time(lambda: fit(4), repeats)
    return max(four - one, 0.0) / 3


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every millisecond.

    Works for compiled code that releases the GIL (fastem's kernels, NumPy and
    BLAS calls). Linux only; elsewhere ``peak`` stays None.
    """

    def __init__(self):
        self.peak = None
        self._stop = threading.Event()

    def __enter__(self):
        if not os.path.exists("/proc/self/statm"):
            return self
        self._start = _resident_bytes()
        self.peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _resident_bytes() - self._start)
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.peak is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _resident_bytes() - self._start)
        return False


def dgemm_rate(size=2000, repeats=5):
    """GFLOP/s of NumPy's matrix product of two size x size float64 arrays."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size))
    b = rng.random((size, size))
    a @ b
    return 2.0 * size**3 / median_time(lambda: a @ b, repeats) / 1e9


def machine_description():
    """CPU model, core count and library versions, for the report header."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}
