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
    dtypes = {str(signature[0].dtype)
              for signature in gk.gaussian_posterior_stats.parallel.signatures}
    assert {"float64", "float32"} <= dtypes
    assert gk.gaussian_log_density.parallel.signatures
    assert gk.gaussian_log_resp.parallel.signatures
    assert gk.gaussian_best.parallel.signatures
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
    status = 1  # a failing child must exit (and say why), never leave the parent waiting
    try:
        os.close(reader)
        fastem.GaussianHMM(2, random_state=0).fit(X)
        misses = sum(len(k._serial.stats.cache_misses) for k in
                     (gaussian.gaussian_weighted_log_prob, gaussian.gaussian_resp_stats,
                      hmm.forward_backward)
                     if k._serial is not None)
        hits = sum(len(k._serial.stats.cache_hits) for k in
                   (gaussian.gaussian_weighted_log_prob, gaussian.gaussian_resp_stats,
                    hmm.forward_backward)
                   if k._serial is not None)
        os.write(writer, f"{misses} {hits}".encode())
        status = 0
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        os._exit(status)
os.close(writer)  # so that the read ends when the child does
_, status = os.waitpid(pid, 0)
if status:
    sys.exit(f"the forked child failed (status {status})")
print(os.read(reader, 100).decode())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_serial_builds_of_forked_children_are_cached(tmp_path):
    # Issue 11, item 12: after fork under OpenMP, children compile the serial kernels once
    # (first child anywhere), then load them from the cache like every other kernel.
    script = tmp_path / "serial_cache.py"
    script.write_text(_SERIAL_CACHE_SCRIPT)
    env = {**os.environ, "NUMBA_THREADING_LAYER": "omp",
           "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           # the fastem under test, also when it is not the installed one (a worktree)
           "PYTHONPATH": os.pathsep.join(filter(None, [
               os.path.dirname(os.path.dirname(fastem.__file__)),
               os.environ.get("PYTHONPATH")]))}
    counts = []
    for _ in range(2):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        counts.append([int(word) for word in done.stdout.split()])
    first, second = counts
    assert first[0] > 0  # compiled in the first child...
    assert second == [0, first[0]]  # ...and only loaded in the second


def _shared_partial_fits():
    X = blobs(n=300, n_features=2, n_components=2, seed=4)
    y = X[:, 0] * 2.0 + np.random.RandomState(4).normal(size=len(X))
    return [
        (lambda: fastem.GaussianMixture(2, random_state=0), (X,)),
        (lambda: fastem.GaussianHMM(2, random_state=0), (X, [100, 100, 100])),
        (lambda: fastem.MixtureOfExperts(2, random_state=0, max_iter=20), (X, y)),
    ]


@pytest.mark.parametrize("index", range(3))
def test_concurrent_partial_fit_on_one_estimator_counts_every_call(index):
    # Every batch is the same, so the order of the calls cannot change the result:
    # 8 threads sharing the estimator must give the serial result, every call counted.
    make, batch = _shared_partial_fits()[index]
    calls = 8 * 25 + 1
    serial = make()
    for _ in range(calls):
        serial.partial_fit(*batch)
    shared = make()
    errors = []

    def work(count):
        try:
            for _ in range(count):
                shared.partial_fit(*batch)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work, args=(25 + (i == 0),)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    # (the running statistics count the batches they hold)
    assert shared._online.batches == serial._online.batches == calls
    for key, value in vars(serial).items():
        if isinstance(value, np.ndarray) and key.endswith("_"):
            np.testing.assert_array_equal(getattr(shared, key), value, err_msg=key)


def test_concurrent_fits_of_one_estimator_run_one_at_a_time():
    # Two data sets fitted into one estimator from two threads: each fit is whole, so the
    # estimator ends as one of the two serial fits, never a blend of both.
    X = blobs(n=2000, n_features=2, n_components=3, seed=5)
    others = [X, X[::-1] * 3.0 + 1.0]
    expected = [fastem.GaussianMixture(3, random_state=0).fit(data) for data in others]
    shared = fastem.GaussianMixture(3, random_state=0)
    workers = [threading.Thread(target=lambda d=data: [shared.fit(d) for _ in range(5)])
               for data in others]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    matches = [all(np.array_equal(getattr(shared, key), getattr(fit, key))
                   for key in ("means_", "covariances_", "weights_", "lower_bounds_"))
               for fit in expected]
    assert any(matches)


INTERRUPTED_FIT = textwrap.dedent("""
    import os, signal, sys, threading, time
    import numpy as np
    import fastem

    kind = sys.argv[1]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 6))
    y = X @ np.arange(1.0, 7.0) + rng.normal(size=len(X))
    make = {
        "gmm": lambda: fastem.GaussianMixture(6, max_iter=10**6, tol=0.0,
                                              init_params="random", random_state=0),
        "hmm": lambda: fastem.GaussianHMM(6, n_iter=10**6, tol=0.0, random_state=0),
        "moe": lambda: fastem.MixtureOfExperts(3, max_iter=10**6, tol=0.0, random_state=0),
    }[kind]
    arguments = {"moe": (X, y), "hmm": (X, [1000] * 200)}.get(kind, (X,))
    small = (X[:500], [500]) if kind == "hmm" else tuple(a[:500] for a in arguments)
    make().set_params(**{"n_iter" if kind == "hmm" else "max_iter": 2}).fit(*small)
    model = make()
    started = threading.Event()

    def observe(*args):
        started.set()

    model.callback = observe

    def interrupt():
        started.wait()
        time.sleep(0.3)  # inside a pass: the kernels take almost all of the time
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        model.fit(*arguments)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", hasattr(model, "n_features_in_"))
""")


@pytest.mark.parametrize("kind", ["gmm", "hmm", "moe"])
def test_ctrl_c_during_a_fit_raises_keyboard_interrupt(kind):
    # numba turns a KeyboardInterrupt inside a kernel into a SystemError chained to it;
    # the estimators must raise the KeyboardInterrupt itself and keep no new state.
    result = subprocess.run([sys.executable, "-c", INTERRUPTED_FIT, kind],
                            capture_output=True, text=True, timeout=600)
    assert result.stdout.strip() == "KeyboardInterrupt False", result.stderr[-2000:]
