"""Embedding in services: many Python threads at once, and fork after kernels ran."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from helpers import blobs

import fastem


def _fit_both(X, lengths):
    gm = fastem.GaussianMixture(3, random_state=0, max_iter=20, tol=0.0).fit(X)
    hmm = fastem.GaussianHMM(3, random_state=0, n_iter=8, tol=0.0).fit(X, lengths)
    return gm.means_, gm.covariances_, hmm.means_, hmm.transmat_


def test_eight_threads_fitting_at_once_give_the_serial_results():
    X = blobs(n=6000, n_features=3, n_components=3, seed=2)
    lengths = [1000] * 6
    reference = _fit_both(X, lengths)
    results, errors = [], []

    def work():
        try:
            for _ in range(2):
                results.append(_fit_both(X, lengths))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    assert len(results) == 16
    for result in results:
        for got, expected in zip(result, reference, strict=True):
            np.testing.assert_array_equal(got, expected)


_FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing, warnings
    import numpy as np
    import fastem

    X = np.random.RandomState(0).normal(size=(4000, 3))
    X[2000:] += 4

    def fit():
        gm = fastem.GaussianMixture(2, random_state=0, max_iter=10, tol=0.0).fit(X)
        hmm = fastem.GaussianHMM(2, random_state=0, n_iter=5, tol=0.0).fit(X, [2000, 2000])
        return np.concatenate([gm.means_.ravel(), hmm.means_.ravel()])

    def child(queue):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            queue.put((fit(), [str(w.message) for w in caught]))

    if __name__ == "__main__":
        parent = fit()  # the parent runs the parallel kernels before forking
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        values, messages = queue.get(timeout=120)
        process.join(120)
        assert process.exitcode == 0, process.exitcode
        np.testing.assert_allclose(values, parent, rtol=1e-10)
        serial = any("runs serially" in m for m in messages)
        print("OK", __import__("numba").threading_layer(), "serial" if serial else "parallel")
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("layer", [None, "omp"])
def test_a_forked_child_completes_its_fit(tmp_path, layer):
    script = tmp_path / "fork_child.py"
    script.write_text(_FORK_SCRIPT)
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    assert words[0] == "OK"
    if words[1] == "omp":
        assert words[2] == "serial"  # detected, and ran serially instead of dying
    else:
        assert words[2] == "parallel"


def test_warmup_compiles_the_common_signatures():
    from fastem.kernels import gaussian as gk
    from fastem.kernels import hmm as hk

    seconds = fastem.warmup()
    assert seconds >= 0.0
    dtypes = {str(signature[0].dtype) for signature in gk.gaussian_stats.parallel.signatures}
    assert {"float64", "float32"} <= dtypes
    assert gk.gaussian_rows.parallel.signatures
    assert hk.forward_backward.parallel.signatures and hk.viterbi.parallel.signatures


_SERIAL_CACHE_SCRIPT = """
import os, sys, warnings
import numpy as np
import fastem
from fastem.kernels import gaussian, hmm
warnings.simplefilter("ignore")
X = np.random.RandomState(0).normal(size=(500, 3))
fastem.GaussianHMM(2, random_state=0).fit(X)  # the parent runs OpenMP, then forks
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    fastem.GaussianHMM(2, random_state=0).fit(X)
    misses = sum(len(k._serial.stats.cache_misses) for k in
                 (gaussian.gaussian_rows, gaussian.gaussian_stats, hmm.forward_backward)
                 if k._serial is not None)
    hits = sum(len(k._serial.stats.cache_hits) for k in
               (gaussian.gaussian_rows, gaussian.gaussian_stats, hmm.forward_backward)
               if k._serial is not None)
    os.write(writer, f"{misses} {hits}".encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(reader, 100).decode())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_serial_builds_of_forked_children_are_cached(tmp_path):
    # Issue 11, item 12: after fork under OpenMP, children compile the serial kernels once
    # (first child anywhere), then load them from the cache like every other kernel.
    script = tmp_path / "serial_cache.py"
    script.write_text(_SERIAL_CACHE_SCRIPT)
    env = {**os.environ, "NUMBA_THREADING_LAYER": "omp",
           "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    counts = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        counts.append([int(word) for word in done.stdout.split()])
    first, second = counts
    assert first[0] > 0  # compiled in the first child...
    assert second == [0, first[0]]  # ...and only loaded in the second
