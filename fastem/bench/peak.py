"""Peak memory of one fit, measured in a fresh interpreter.

In the benchmarking process itself, memory freed by earlier workloads is
reused without growing the resident size, which hides allocations; a child
process starts clean. Usage (internal)::

    python -m fastem.bench.peak LIBRARY N D K COVARIANCE_TYPE MAX_ITER START

LIBRARY is ``fastem`` or ``sklearn``; START is ``same`` (both libraries from
fastem's initial parameters) or ``own`` (each library initialises itself).
LIBRARY ``fastem-missing`` fits a GaussianMixture with ``missing="marginalize"``
on the data with 10% of the entries missing, ``fastem-hmm`` a GaussianHMM on
sequences of 1,000 rows (START is then ignored).
Prints one JSON object: peak resident megabytes above the level just before
the fit, and the data size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings


def measure_in_child(library, n, d, k, covariance_type, max_iter, start):
    """Run this module in a child interpreter; returns its JSON record (or None on failure)."""
    command = [sys.executable, "-m", "fastem.bench.peak", library, str(n), str(d), str(k),
               covariance_type, str(max_iter), start]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main(argv):
    library, n, d, k, covariance_type, max_iter, start = argv
    n, d, k, max_iter = int(n), int(d), int(k), int(max_iter)
    import fastem

    from .measure import PeakMemory
    from .mixture import _start, blobs

    warnings.simplefilter("ignore")
    X = blobs(n, d, k)
    if library in ("fastem-missing", "fastem-hmm"):
        _fastem_extra(library, X, k, covariance_type, max_iter)
        return
    if library == "sklearn":
        from sklearn.mixture import GaussianMixture
    else:
        GaussianMixture = fastem.GaussianMixture
    kwargs = (_start(X, k, covariance_type) if start == "same"
              else dict(n_components=k, covariance_type=covariance_type, random_state=0))
    GaussianMixture(max_iter=1, **kwargs).fit(X[:2000])  # compile and import outside
    with PeakMemory() as memory:
        GaussianMixture(max_iter=max_iter, tol=0.0, **kwargs).fit(X)
    print(json.dumps({"peak_mb": memory.peak / 1e6, "data_mb": X.nbytes / 1e6}))


def _fastem_extra(library, X, k, covariance_type, max_iter):
    import numpy as np

    import fastem

    from .measure import PeakMemory

    if library == "fastem-missing":
        X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
        estimator = fastem.GaussianMixture(k, covariance_type=covariance_type, tol=0.0,
                                           random_state=0, missing="marginalize")
        fit = estimator.set_params(max_iter=1).fit
        fit(X[:5000])
        with PeakMemory() as memory:
            estimator.set_params(max_iter=max_iter).fit(X)
    else:
        lengths = [1000] * (len(X) // 1000)
        X = X[:sum(lengths)]
        estimator = fastem.GaussianHMM(k, covariance_type, tol=0.0, random_state=0)
        estimator.set_params(n_iter=1).fit(X[:5000], lengths[:5])
        with PeakMemory() as memory:
            estimator.set_params(n_iter=max_iter).fit(X, lengths)
    print(json.dumps({"peak_mb": memory.peak / 1e6, "data_mb": X.nbytes / 1e6}))


if __name__ == "__main__":
    _main(sys.argv[1:])
