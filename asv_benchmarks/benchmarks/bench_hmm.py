"""Per-commit timings of the HMMs (asv): Baum-Welch iterations from a fixed start,
scoring and Viterbi decoding. Compilation happens in ``setup``."""

import numpy as np

import fastem
from fastem.bench.hmm import problem


def _model(cls, params, n_iter, **kwargs):
    model = cls(n_iter=n_iter, tol=0.0, init_params="", **kwargs)
    for name, value in params.items():
        setattr(model, name, np.array(value))
    return model


class BaumWelch:
    """Five EM iterations per fit."""

    params = (["gaussian 200x1000 K8 D4", "categorical 100x500 K16 S32",
               "gaussian 1x1000000 K4 D2"],)
    param_names = ["workload"]
    timeout = 300

    def setup(self, workload):
        kind, shape = workload.split()[:2]
        n_sequences, length = (int(v) for v in shape.split("x"))
        k, d = {"gaussian 200x1000": (8, 4), "categorical 100x500": (16, 32),
                "gaussian 1x1000000": (4, 2)}[f"{kind} {shape}"]
        self.X, self.lengths, self.start = problem(kind, n_sequences, length, k, d)
        self.cls = fastem.CategoricalHMM if kind == "categorical" else fastem.GaussianHMM
        self.k = k
        _model(self.cls, self.start, 1, n_components=k).fit(self.X[:2000], [2000])

    def time_fit_5_iterations(self, workload):
        _model(self.cls, self.start, 5, n_components=self.k).fit(self.X, self.lengths)

    def time_score(self, workload):
        _model(self.cls, self.start, 0, n_components=self.k).score(self.X, self.lengths)

    def time_viterbi(self, workload):
        _model(self.cls, self.start, 0, n_components=self.k).decode(self.X, self.lengths)
