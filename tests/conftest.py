import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402

from fastem import ConvergenceWarning  # noqa: E402


def pytest_sessionstart(session):
    """Compile the kernels into numba's cache in a process of its own, so that this process
    and the Dask workers of the cluster tests all load the same machine code from the
    cache (code numba compiles in the running process can differ at round-off)."""
    import subprocess

    subprocess.run([sys.executable, "-m", "fastem.cli", "warmup"], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture(autouse=True)
def _no_convergence_noise():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Best performing initialization")
        yield
