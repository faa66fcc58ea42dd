"""A model fastem does not ship, written against the engine: a mixture of exponentials.

It takes a compiled block kernel, an M-step and a packing; restarts, threads,
bitwise determinism, SQUAREM and online EM come from ``fastem.engine``.
Run: ``python examples/custom_model.py [picture.png]`` (the picture needs matplotlib).
"""

import sys

import numba
import numpy as np
from numba import prange

from fastem.engine import UNIT_ROWS, ModelBase, OnlineFitter, StatsLayout, fit_model


@numba.njit(parallel=True, cache=True)
def exponential_stats(x, weights, log_weights, rates, out):
    """Add loglik, weight, mass_k and sum_k r_ik x_i of the rows x to ``out``."""
    k, n = rates.size, x.size
    n_units = (n + UNIT_ROWS - 1) // UNIT_ROWS  # fixed by n: results never depend on threads
    partial = np.zeros((n_units, out.size))
    for u in prange(n_units):
        logp = np.empty(k)
        for i in range(u * UNIT_ROWS, min(n, (u + 1) * UNIT_ROWS)):
            w = 1.0 if weights.size == 0 else weights[i]
            for j in range(k):
                logp[j] = log_weights[j] + np.log(rates[j]) - rates[j] * x[i]
            peak = logp.max()
            total = np.exp(logp - peak).sum()
            partial[u, 0] += w * (peak + np.log(total))
            partial[u, 1] += w
            for j in range(k):
                r = w * np.exp(logp[j] - peak) / total
                partial[u, 2 + j] += r
                partial[u, 2 + k + j] += r * x[i]
    for u in range(n_units):  # in unit order: bitwise reproducible
        out += partial[u]


class ExponentialMixture(ModelBase):
    """Parameters: a tuple (weights, rates)."""

    monotone = True

    def __init__(self, n_components):
        self.k = n_components
        self.layout = StatsLayout({"mass": (n_components,), "sum_x": (n_components,)})

    def initialize(self, block, random_state):
        scale = np.average(block.X, weights=block.weights)
        return np.full(self.k, 1.0 / self.k), random_state.uniform(0.2, 5.0, self.k) / scale

    def block_stats(self, params, block, out):
        weights = np.empty(0) if block.weights is None else block.weights
        with np.errstate(divide="ignore"):
            log_weights = np.log(params[0])
        exponential_stats(block.X, weights, log_weights, params[1], out.flat)

    def m_step(self, stats, params):
        return stats.mass / stats.mass.sum(), stats.mass / stats.sum_x

    def pack(self, params):
        return np.log(np.concatenate(params))

    def unpack(self, vector, like):
        values = np.exp(vector)
        if not np.isfinite(values).all():
            raise ValueError("not a valid mixture")
        return values[:self.k] / values[:self.k].sum(), values[self.k:]


def main(output="custom_model.png"):
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.exponential(1.0, 60_000), rng.exponential(8.0, 40_000)])
    for acceleration in ("none", "squarem"):
        run = fit_model(ExponentialMixture(2), x, n_init=3, max_iter=5000, tol=1e-12,
                        random_state=0, acceleration=acceleration)
        weights, rates = run.params
        print(f"{acceleration:8s} passes={run.n_iter:5d} loglik/row={run.objective:.8f} "
              f"weights={np.round(weights, 4)} means={np.round(1 / rates, 4)}")
    online = OnlineFitter(ExponentialMixture(2), random_state=0)
    for batch in np.array_split(rng.permutation(x), 100):
        online.partial_fit(batch)
    print(f"online   weights={np.round(online.params[0], 4)} "
          f"means={np.round(1 / online.params[1], 4)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0.0, 30.0, 300)
    density = (weights[:, None] * rates[:, None] * np.exp(-np.outer(rates, grid))).sum(axis=0)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(x, bins=150, range=(0, 30), density=True, alpha=0.5, label="data")
    ax.plot(grid, density, label="fitted mixture of 2 exponentials")
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(output, dpi=110)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
