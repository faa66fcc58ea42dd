"""Small fits on a busy machine: default threads against ``n_threads=1``.

Starts one spinning process per core, then times (median of 7) small fits with
the default thread count and with one thread: an iris-sized Gaussian mixture
(150 x 4, diag, n_init=5), a GaussianHMM on 2 sequences of 200 steps (100
iterations) and a CategoricalHMM on 500 symbols (400 iterations). Small inputs
run on one thread by default (``fastem._runtime.SMALL_WORK``), so the ratio
should be about 1.

    python -m fastem.bench.busy
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import warnings

import numpy as np


def _spin(stop):
    while not stop.is_set():
        pass


def _median_ms(fit, repeats=7):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fit()
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def run():
    import fastem

    warnings.simplefilter("ignore")
    rng = np.random.RandomState(0)
    iris_like = np.r_[rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 3,
                      rng.normal(size=(50, 4)) - 3]
    walk = np.cumsum(rng.normal(size=(400, 2)), axis=0)
    symbols = rng.randint(4, size=(500, 1))
    workloads = {
        "GaussianMixture 150 x 4, diag, n_init=5": lambda n: fastem.GaussianMixture(
            3, covariance_type="diag", n_init=5, random_state=0, n_threads=n).fit(iris_like),
        "GaussianHMM 2 x 200 steps, K=3, 100 iterations": lambda n: fastem.GaussianHMM(
            3, n_iter=100, tol=-np.inf, random_state=0, n_threads=n).fit(walk, [200, 200]),
        "CategoricalHMM 500 symbols, K=3, 400 iterations": lambda n: fastem.CategoricalHMM(
            3, n_iter=400, tol=-np.inf, random_state=0, n_threads=n).fit(symbols),
    }
    for fit in workloads.values():  # compile outside the timings
        fit(None)
        fit(1)
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(os.cpu_count() or 1)]
    for process in spinners:
        process.start()
    try:
        records = []
        for name, fit in workloads.items():
            default_ms = _median_ms(lambda fit=fit: fit(None))
            one_ms = _median_ms(lambda fit=fit: fit(1))
            records.append({"workload": name, "default_ms": default_ms, "one_thread_ms": one_ms,
                            "ratio": default_ms / one_ms})
    finally:
        stop.set()
        for process in spinners:
            process.join()
    return records


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
