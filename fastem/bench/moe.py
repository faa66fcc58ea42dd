"""One EM iteration of MixtureOfExperts against NumPy and against R's flexmix.

N rows, D features, K Gaussian experts (one output), constant gate. The time per
iteration is ``(t(1 + m) - t(1)) / m`` (initialisation and data loading excluded),
median of ``--repeats``. The NumPy version is the textbook one, from fastem's start:
an (N, K) log-density matrix, log-sum-exp, and a weighted least-squares solve per
component. flexmix (``FLXMRglm`` Gaussian, ``tolerance = 0``, from a random hard
partition) runs through ``Rscript`` when R and flexmix are installed (Debian:
``apt-get install r-cran-flexmix``), once per iteration count. Prints one JSON record.

    python -m fastem.bench.moe [--rows 1000000] [--features 5] [--components 4]
                               [--expert gaussian|poisson|binomial]
                               [--gating constant|softmax|gaussian] [--no-flexmix]

The NumPy and flexmix comparisons are of the Gaussian experts under the constant
gate; other experts and gates time fastem alone (its iteration then includes the
Newton steps and their halving checks).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np


def _data(n, d, k, seed=0, expert="gaussian"):
    """X, y and (binomial) trials from K experts with random slopes."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    slopes = rng.normal(scale=2.0, size=(k, d))
    component = rng.randint(0, k, size=n)
    eta = np.einsum("nd,nd->n", X, slopes[component]) + 3.0 * component
    if expert == "poisson":  # log-rates of moderate size
        return X, rng.poisson(np.exp(0.2 * eta / (1.0 + np.abs(eta).mean()))) * 1.0, None
    if expert == "binomial":
        trials = rng.randint(1, 20, size=n).astype(float)
        return X, rng.binomial(trials.astype(int), 1.0 / (1.0 + np.exp(-0.3 * eta))) * 1.0, \
            trials
    return X, eta + rng.normal(size=n), None


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


_FLEXMIX_SCRIPT = """
suppressMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
start <- data$start
data$start <- NULL
formula <- as.formula(paste("y ~", paste(setdiff(names(data), "y"), collapse = " + ")))
seconds <- function(iterations) {
  t0 <- proc.time()[["elapsed"]]
  flexmix(formula, data = data, k = as.integer(args[2]), cluster = start,
          control = list(iter.max = iterations, tolerance = 0, minprior = 0))
  proc.time()[["elapsed"]] - t0
}
cat(seconds(1), seconds(1 + as.integer(args[3])), "\n")
"""


def _flexmix_per_iteration(X, y, n_components, iterations):
    """flexmix's seconds per EM iteration, or None without R and flexmix."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("Rscript") is None:
        return None
    start = np.random.RandomState(0).randint(1, n_components + 1, size=len(y))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "data.csv")
        header = ",".join([f"x{i}" for i in range(X.shape[1])] + ["y", "start"])
        np.savetxt(path, np.column_stack([X, y, start]), delimiter=",", header=header,
                   comments="", fmt="%.17g")
        script = os.path.join(folder, "bench.R")
        with open(script, "w") as handle:
            handle.write(_FLEXMIX_SCRIPT)
        done = subprocess.run(["Rscript", script, path, str(n_components), str(iterations)],
                              capture_output=True, text=True)
    if done.returncode != 0:
        return None  # R without flexmix
    few, many = (float(value) for value in done.stdout.split())
    return (many - few) / iterations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--components", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--expert", default="gaussian",
                        choices=("gaussian", "poisson", "binomial"))
    parser.add_argument("--gating", default="constant",
                        choices=("constant", "softmax", "gaussian"))
    parser.add_argument("--no-flexmix", action="store_true", help="skip R's flexmix")
    args = parser.parse_args(argv)

    import fastem

    X, y, trials = _data(args.rows, args.features, args.components, expert=args.expert)
    options = dict(expert=args.expert, gating=args.gating, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = fastem.MixtureOfExperts(args.components, max_iter=0, **options).fit(
            X, y, trials=trials)
    coef0 = np.column_stack([start.intercept_, start.coef_])
    textbook = args.expert == "gaussian" and args.gating == "constant"

    def fastem_time(iterations):
        model = fastem.MixtureOfExperts(args.components, max_iter=iterations, tol=0.0,
                                        **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            model.fit(X, y, trials=trials)
        return time.perf_counter() - started

    def numpy_time(iterations):
        started = time.perf_counter()
        _numpy_em(X, y, start.weights_.copy(), coef0.copy(),
                  start.covariances_[:, 0, 0].copy(), iterations)
        return time.perf_counter() - started

    flexmix = None
    if textbook and not args.no_flexmix:
        flexmix = _flexmix_per_iteration(X, y, args.components, args.iterations)
    fastem_time(1)  # compiled kernels loaded
    few, many = 1, 1 + args.iterations
    timers = [("fastem", fastem_time)] + ([("numpy", numpy_time)] if textbook else [])
    times = {name: ([], []) for name, _ in timers}
    for _ in range(args.repeats):
        for name, timer in timers:
            times[name][0].append(timer(few))
            times[name][1].append(timer(many))
    per = {name: (np.median(b) - np.median(a)) / args.iterations
           for name, (a, b) in times.items()}
    record = {"rows": args.rows, "features": args.features, "components": args.components,
              "expert": args.expert, "gating": args.gating, "cores": os.cpu_count(),
              "fastem_s_per_iteration": float(per["fastem"])}
    if textbook:
        record["numpy_s_per_iteration"] = float(per["numpy"])
        record["speedup_over_numpy"] = float(per["numpy"] / per["fastem"])
    if flexmix is not None:
        record["flexmix_s_per_iteration"] = flexmix
        record["speedup_over_flexmix"] = float(flexmix / per["fastem"])
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
