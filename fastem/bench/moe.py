"""One EM iteration of MixtureOfExperts against a straightforward NumPy implementation.

N rows, D features, K Gaussian experts (one output), constant gate: both run the same
iterations from the same start; the time per iteration is ``(t(1 + m) - t(1)) / m``
(initialisation excluded), median of ``--repeats``. The NumPy version is the textbook
one: an (N, K) log-density matrix, log-sum-exp, and a weighted least-squares solve
per component. Prints one JSON record.

    python -m fastem.bench.moe [--rows 1000000] [--features 5] [--components 4]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np


def _data(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    slopes = rng.normal(scale=2.0, size=(k, d))
    component = rng.randint(0, k, size=n)
    y = np.einsum("nd,nd->n", X, slopes[component]) + 3.0 * component + rng.normal(size=n)
    return X, y


def _numpy_em(X, y, weights, coef, variances, iterations):
    Z = np.column_stack([np.ones(len(X)), X])
    for _ in range(iterations):
        resid = y[:, None] - Z @ coef.T
        logp = np.log(weights) - 0.5 * np.log(2 * np.pi * variances) \
            - 0.5 * resid ** 2 / variances
        top = logp.max(axis=1, keepdims=True)
        r = np.exp(logp - top)
        r /= r.sum(axis=1, keepdims=True)
        for k in range(len(weights)):
            w = r[:, k]
            coef[k] = np.linalg.solve(Z.T @ (w[:, None] * Z), Z.T @ (w * y))
            variances[k] = w @ (y - Z @ coef[k]) ** 2 / w.sum() + 1e-6
        weights = r.mean(axis=0)
    return coef


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--components", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import fastem

    X, y = _data(args.rows, args.features, args.components)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = fastem.MixtureOfExperts(args.components, max_iter=0, random_state=0).fit(X, y)
    coef0 = np.column_stack([start.intercept_[:, 0], start.coef_[:, 0, :]])

    def fastem_time(iterations):
        model = fastem.MixtureOfExperts(args.components, max_iter=iterations, tol=0.0,
                                        random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            model.fit(X, y)
        return time.perf_counter() - started

    def numpy_time(iterations):
        started = time.perf_counter()
        _numpy_em(X, y, start.weights_.copy(), coef0.copy(),
                  start.covariances_[:, 0, 0].copy(), iterations)
        return time.perf_counter() - started

    fastem_time(1)  # compiled kernels loaded
    few, many = 1, 1 + args.iterations
    times = {"fastem": ([], []), "numpy": ([], [])}
    for _ in range(args.repeats):
        for name, timer in (("fastem", fastem_time), ("numpy", numpy_time)):
            times[name][0].append(timer(few))
            times[name][1].append(timer(many))
    per = {name: (np.median(b) - np.median(a)) / args.iterations
           for name, (a, b) in times.items()}
    record = {"rows": args.rows, "features": args.features, "components": args.components,
              "cores": os.cpu_count(), "fastem_s_per_iteration": float(per["fastem"]),
              "numpy_s_per_iteration": float(per["numpy"]),
              "speedup_over_numpy": float(per["numpy"] / per["fastem"])}
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
