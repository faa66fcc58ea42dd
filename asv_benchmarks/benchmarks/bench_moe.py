"""Per-commit timings of MixtureOfExperts (asv).

The fused regression kernel loses its vectorisation silently when a helper it calls
takes arrays LLVM cannot prove distinct (0.022 s per iteration became 0.071 s once):
these timings catch that. Every fit does ten iterations from the same start
(``tol=0``, a fixed seed), compiled in ``setup``. The peak memory of the same fits
catches a fit that copies the data again (a design matrix, N x K responsibilities).
"""

import warnings

from fastem import MixtureOfExperts
from fastem.bench.moe import _data

ROWS, FEATURES, COMPONENTS = 200_000, 5, 4


class FitPerExpertAndGate:
    """Ten EM iterations per family of experts and kind of gate."""

    params = (["gaussian", "poisson", "binomial"], ["constant", "softmax", "gaussian"])
    param_names = ["expert", "gating"]
    timeout = 300

    def setup(self, expert, gating):
        self.X, self.y, self.trials = _data(ROWS, FEATURES, COMPONENTS, expert=expert)
        self.options = dict(expert=expert, gating=gating, max_iter=10, tol=0.0,
                            random_state=0)
        self._fit(slice(0, 1000))

    def _fit(self, rows):
        trials = None if self.trials is None else self.trials[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MixtureOfExperts(COMPONENTS, **self.options).fit(self.X[rows], self.y[rows],
                                                             trials=trials)

    def time_fit_10_iterations(self, expert, gating):
        self._fit(slice(None))

    def peakmem_fit_10_iterations(self, expert, gating):
        """Peak resident memory of the fit (asv counts the process's, data included: 9.6
        MB here, 10.4 MB of design matrix and 6.4 MB of starting responsibilities once
        came on top of it; the kernels now read X in place)."""
        self._fit(slice(None))
