"""A component fastem does not ship, written by a user in NumPy: the Rayleigh distribution.

One class says what a latent state emits (the protocol of
``fastem.components.Component``): statistics fields, a log-likelihood lattice,
accumulation of weighted posteriors, the M-step, packing, a parameter count and
sampling. The same class then works in a mixture (``fastem.Mixture``) and as the
emissions of a hidden Markov model (``fastem.HMM``); restarts, threads, SQUAREM,
online EM, predict/score/bic/sample and HMM decoding come from fastem.
Run: ``python examples/custom_model.py [picture.png]`` (the picture needs matplotlib).
"""

import sys
from dataclasses import dataclass

import numpy as np

import fastem
from fastem.components import Component


@dataclass
class RayleighParams:
    """sigma2[k, d]: the squared scale of column d in state k."""

    sigma2: np.ndarray


class Rayleigh(Component):
    """K states of independent Rayleigh columns: p(x) = x / s2 exp(-x^2 / (2 s2)), x > 0."""

    def __init__(self, n_components):
        self.n_components = n_components

    def check_data(self, X, fitting):
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or not (np.isfinite(X).all() and (X > 0).all()):
            raise ValueError("X must be a 2-D array of positive finite values")
        return X

    def fields(self, n_features):  # "mass" is every component's: the states' weights
        return {"mass": (self.n_components,), "squares": (self.n_components, n_features)}

    def prepare(self, params):  # once per pass
        return np.log(params.sigma2), 0.5 / params.sigma2

    def log_likelihood(self, prepared, X, out=None, cache=None):
        log_sigma2, half_precision = prepared
        table = np.log(X).sum(axis=1)[:, None] - log_sigma2.sum(axis=1) - (X * X) @ half_precision.T
        if out is None:
            return table
        out[...] = table
        return out

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        out["mass"] += posteriors.sum(axis=0)
        out["squares"] += posteriors.T @ (X * X)

    def m_step(self, stats, params):
        mass = stats["mass"][:, None]
        sigma2 = stats["squares"] / (2.0 * np.where(mass > 0, mass, 1.0))
        if params is not None:  # a state without rows keeps its scales
            sigma2 = np.where(mass > 0, sigma2, params.sigma2)
        return RayleighParams(sigma2)

    def pack(self, params):
        return params.sigma2.ravel()

    def unpack(self, vector, like):
        sigma2 = np.reshape(vector, like.sigma2.shape)
        if not (np.isfinite(sigma2).all() and (sigma2 > 0).all()):
            raise ValueError("scales are not positive")  # SQUAREM then takes the plain step
        return RayleighParams(sigma2)

    def n_parameters(self, n_features):
        return self.n_components * n_features

    def sample(self, params, state, n_samples, random_state):
        scale = np.sqrt(params.sigma2[state])
        return random_state.rayleigh(scale, size=(n_samples, scale.size))


def regimes(n_sequences=20, length=500, seed=0):
    """Sequences that switch between a calm (scale 1) and a stormy (scale 4) regime."""
    rng = np.random.RandomState(seed)
    scales = np.array([1.0, 4.0])
    sequences = []
    for _ in range(n_sequences):
        state, rows = 0, []
        for _ in range(length):
            state = state if rng.rand() < 0.97 else 1 - state
            rows.append(rng.rayleigh(scales[state], size=2))
        sequences.append(np.array(rows))
    return np.concatenate(sequences), [length] * n_sequences


def main(output="custom_model.png"):
    X, lengths = regimes()
    mixture = fastem.Mixture(Rayleigh(2), n_init=2, random_state=0, tol=1e-8,
                             max_iter=500, acceleration="squarem").fit(X)
    print(f"mixture  passes={mixture.n_iter_:4d} loglik/row={mixture.lower_bound_:.6f} "
          f"weights={np.round(mixture.weights_, 3)} "
          f"scales={np.round(np.sqrt(mixture.components_.sigma2[:, 0]), 3)}")
    hmm = fastem.HMM(Rayleigh(2), n_iter=200, tol=1e-6, random_state=0).fit(X, lengths)
    print(f"HMM      passes={hmm.monitor_.iter:4d} loglik/row={hmm.score(X, lengths) / len(X):.6f} "
          f"stay={np.round(np.diag(hmm.transmat_), 3)} "
          f"scales={np.round(np.sqrt(hmm.emission_.sigma2[:, 0]), 3)}")
    states = hmm.predict(X[:lengths[0]])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(X[:lengths[0], 0], lw=0.6, label="first column of the first sequence")
    ax.plot(np.sqrt(hmm.emission_.sigma2[states, 0]), label="decoded regime's scale")
    ax.legend(loc="upper right")
    fig.savefig(output, dpi=110)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
