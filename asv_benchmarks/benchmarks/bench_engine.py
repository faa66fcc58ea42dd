"""Per-commit tracking of the engine's schedules (asv): SQUAREM against plain EM on slowly
converging problems (time and passes), and online EM (one partial_fit batch; memory of a
stream of batches). Compilation happens in ``setup``."""

import warnings

import numpy as np

import fastem
from fastem.bench.acceleration import _overlapping_mixture, _slow_hmm
from fastem.bench.stream import Source


class Acceleration:
    """A 3-component mixture (seed 1) and a 3-state HMM (seed 1) that plain EM fits slowly."""

    params = (["mixture", "hmm"], ["none", "squarem"])
    param_names = ["problem", "acceleration"]
    timeout = 300

    def setup(self, problem, acceleration):
        warnings.simplefilter("ignore")
        if problem == "mixture":
            X = _overlapping_mixture(1)
            self.fit = lambda: fastem.GaussianMixture(
                3, tol=1e-8, max_iter=20_000, random_state=1, reg_covar=0.0,
                acceleration=acceleration).fit(X)
            self.passes = lambda model: model.n_iter_
        else:
            X, lengths = _slow_hmm(1)
            self.fit = lambda: fastem.GaussianHMM(
                3, "diag", tol=1e-8 * len(X), n_iter=20_000, random_state=1,
                acceleration=acceleration).fit(X, lengths)
            self.passes = lambda model: model.monitor_.iter
        self.fit()

    def time_fit_to_1e8_per_sample(self, problem, acceleration):
        self.fit()

    def track_passes(self, problem, acceleration):
        return self.passes(self.fit())


class Online:
    """partial_fit batches of 50,000 rows, D=16, K=16, full covariances."""

    timeout = 300

    def setup(self):
        warnings.simplefilter("ignore")
        rng = np.random.RandomState(0)
        source = Source(0)
        self.batches = [source.draw(50_000, rng) for _ in range(4)]
        self.model = fastem.GaussianMixture(16, random_state=0).partial_fit(self.batches[0])

    def time_partial_fit_one_batch(self):
        self.model.partial_fit(self.batches[1])

    def peakmem_four_batches(self):
        model = fastem.GaussianMixture(16, random_state=0)
        for batch in self.batches:
            model.partial_fit(batch)
