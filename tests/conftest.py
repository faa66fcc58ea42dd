import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402

from fastem import ConvergenceWarning  # noqa: E402


@pytest.fixture(autouse=True)
def _no_convergence_noise():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Best performing initialization")
        yield
