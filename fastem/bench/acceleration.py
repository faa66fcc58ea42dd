"""SQUAREM against plain EM on problems where plain EM converges slowly.

Each problem is fitted twice from the same starting parameters (same
``random_state``), to a change of the objective below 1e-8 per sample:
plain EM and ``acceleration="squarem"``. Reported per problem: E-step passes,
wall time, and the final log-likelihood per sample of both. Problems are drawn
until as many slow ones (plain EM needs more than 500 passes) are found as
asked for; the fast ones are listed but left out of the summary.

    python -m fastem.bench.acceleration [--problems 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

TOL_PER_SAMPLE = 1e-8
MAX_PASSES = 20_000


def _overlapping_mixture(seed, n=20_000):
    """Three components whose means are ~1 standard deviation apart."""
    rng = np.random.RandomState(seed)
    d = 2 + seed % 3
    means = rng.normal(scale=0.8, size=(3, d))
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    scales = rng.uniform(0.7, 1.3, size=(3, d))
    return means[labels] + rng.normal(size=(n, d)) * scales[labels]


def _slow_hmm(seed, n_sequences=20, length=500):
    """Sticky three-state chain with emissions half a standard deviation apart."""
    import fastem

    rng = np.random.RandomState(seed)
    truth = fastem.GaussianHMM(3, "diag")
    truth.startprob_ = np.full(3, 1 / 3)
    stay = 0.9 + 0.08 * rng.rand()
    truth.transmat_ = np.full((3, 3), (1 - stay) / 2) + np.eye(3) * (stay - (1 - stay) / 2)
    truth.means_ = np.array([[0.0], [0.6], [1.2]]) + rng.normal(scale=0.1, size=(3, 1))
    truth.covars_ = np.ones((3, 1))
    parts = [truth.sample(length, random_state=seed * 100 + s)[0] for s in range(n_sequences)]
    return np.concatenate(parts), [length] * n_sequences


def _timed_fit(make, fit):
    estimator = make()
    started = time.perf_counter()
    fit(estimator)
    return estimator, time.perf_counter() - started


def run_problem(index):
    """One problem (even index: Gaussian mixture, odd: Gaussian HMM); returns a record."""
    import fastem

    seed = index // 2
    if index % 2 == 0:
        X = _overlapping_mixture(seed)
        name = f"GaussianMixture full, K=3, D={X.shape[1]}, N={len(X):,} (seed {seed})"

        def make(acceleration):
            return lambda: fastem.GaussianMixture(
                3, covariance_type="full", tol=TOL_PER_SAMPLE, max_iter=MAX_PASSES,
                random_state=seed, acceleration=acceleration, reg_covar=0.0)

        def fit(estimator):
            estimator.fit(X)

        def result(estimator):
            return estimator.n_iter_, estimator.score(X)
    else:
        X, lengths = _slow_hmm(seed)
        name = f"GaussianHMM diag, K=3, {len(lengths)} x {lengths[0]} steps (seed {seed})"

        def make(acceleration):
            return lambda: fastem.GaussianHMM(
                3, "diag", tol=TOL_PER_SAMPLE * len(X), n_iter=MAX_PASSES, random_state=seed,
                acceleration=acceleration)

        def fit(estimator):
            estimator.fit(X, lengths)

        def result(estimator):
            return estimator.monitor_.iter, estimator.score(X, lengths) / len(X)

    record = {"problem": name}
    for label in ("plain", "squarem"):
        estimator, seconds = _timed_fit(make("none" if label == "plain" else "squarem"), fit)
        passes, loglik = result(estimator)
        record.update({f"{label}_passes": int(passes), f"{label}_s": seconds,
                       f"{label}_loglik": float(loglik)})
    record["slow"] = record["plain_passes"] > 500
    record["pass_ratio"] = record["plain_passes"] / record["squarem_passes"]
    record["time_ratio"] = record["plain_s"] / record["squarem_s"]
    record["loglik_gain"] = record["squarem_loglik"] - record["plain_loglik"]
    return record


def summary(records):
    slow = [r for r in records if r["slow"]]
    if not slow:
        return {"slow_problems": 0}
    gains = np.array([r["loglik_gain"] for r in slow])
    return {"slow_problems": len(slow),
            "median_pass_ratio": float(np.median([r["pass_ratio"] for r in slow])),
            "median_time_ratio": float(np.median([r["time_ratio"] for r in slow])),
            "min_pass_ratio": float(min(r["pass_ratio"] for r in slow)),
            "squarem_higher": int(np.sum(gains > 1e-6)),
            "plain_higher": int(np.sum(gains < -1e-6)),
            "same_optimum": int(np.sum(np.abs(gains) <= 1e-6))}


def format_report(records, totals):
    lines = ["| problem | plain passes | SQUAREM passes | pass ratio | plain s | SQUAREM s | "
             "time ratio | Δ loglik/sample (SQUAREM - plain) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['problem']}{'' if r['slow'] else ' (fast: excluded)'} | "
                     f"{r['plain_passes']} | {r['squarem_passes']} | {r['pass_ratio']:.1f}x | "
                     f"{r['plain_s']:.2f} | {r['squarem_s']:.2f} | {r['time_ratio']:.1f}x | "
                     f"{r['loglik_gain']:+.1e} |")
    if totals.get("slow_problems"):
        lines.append("")
        lines.append(f"{totals['slow_problems']} slow problems: median "
                     f"{totals['median_pass_ratio']:.1f}x fewer passes "
                     f"(min {totals['min_pass_ratio']:.1f}x), median "
                     f"{totals['median_time_ratio']:.1f}x less time; same optimum "
                     f"{totals['same_optimum']}, SQUAREM higher {totals['squarem_higher']}, "
                     f"plain EM higher {totals['plain_higher']}.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20,
                        help="slow problems to collect (10 mixtures, 10 HMMs by default)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from .engine import run

    records = run(quick=False, log=lambda text: print(text, file=sys.stderr, flush=True),
                  problems=args.problems, stream=False)["acceleration"]
    totals = summary(records)
    print(format_report(records, totals))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"records": records, "summary": totals}, handle, indent=1)


if __name__ == "__main__":
    main()
