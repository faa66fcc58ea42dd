"""Cold start: a fresh interpreter's first GaussianMixture and GaussianHMM fit, import
included, with an empty kernel cache and then with the cache it filled."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

_SCRIPT = """
import time
started = time.perf_counter()
import numpy as np
import fastem
X = np.random.RandomState(0).normal(size=(2000, 3))
fastem.GaussianMixture(3, random_state=0).fit(X)
fastem.GaussianHMM(3, random_state=0).fit(X, [1000, 1000])
print(time.perf_counter() - started)
"""


def run(log=print):
    """{"no_cache_s", "warm_cache_s"} measured in child processes (None on failure)."""
    record = {"workload": "import + first GaussianMixture and GaussianHMM fit"}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for key in ("no_cache_s", "warm_cache_s"):
            done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True,
                                  text=True, env=env, check=False)
            record[key] = (float(done.stdout.strip().splitlines()[-1])
                           if done.returncode == 0 else None)
    log(f"  cold start: {record['no_cache_s']} s without cache, {record['warm_cache_s']} s "
        "with a warm cache")
    return record
