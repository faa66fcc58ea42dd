"""Per-iteration fit time of fastem against scikit-learn, from identical starting parameters.

Run: ``python asv_benchmarks/side_by_side.py`` (needs scikit-learn). Per-iteration time is
(time of a 4-iteration fit - time of a 1-iteration fit) / 3, so initialisation and
validation cancel; each is the median of ``--repeats`` fits. Issue 3 turns this into
``python -m fastem.bench``.
"""

import argparse
import time
import warnings

import numpy as np

import fastem

WORKLOADS = [
    (200_000, 2, 5, "full"),
    (200_000, 2, 5, "diag"),
    (300_000, 16, 16, "full"),
    (300_000, 16, 16, "diag"),
    (40_000, 64, 32, "full"),
]


def _data(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-5, 5, size=(k, d))
    return centers[rng.randint(k, size=n)] + rng.normal(size=(n, d))


def _per_iteration(cls, X, kwargs, repeats):
    medians = []
    for max_iter in (1, 4):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            cls(max_iter=max_iter, tol=0.0, **kwargs).fit(X)
            times.append(time.perf_counter() - started)
        medians.append(float(np.median(times)))
    return (medians[1] - medians[0]) / 3


def main():
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(f"{'workload':<32} {'fastem ms/iter':>15} {'sklearn ms/iter':>16} {'ratio':>7}")
    for n, d, k, covariance_type in WORKLOADS:
        X = _data(n, d, k)
        start = fastem.GaussianMixture(k, covariance_type=covariance_type, max_iter=0,
                                       random_state=0).fit(X)
        kwargs = dict(n_components=k, covariance_type=covariance_type,
                      weights_init=start.weights_, means_init=start.means_,
                      precisions_init=start.precisions_)
        fastem.GaussianMixture(max_iter=1, **kwargs).fit(X[:1000])  # compile outside timing
        ours = _per_iteration(fastem.GaussianMixture, X, kwargs, args.repeats)
        theirs = _per_iteration(SklearnGaussianMixture, X, kwargs, args.repeats)
        name = f"N={n} D={d} K={k} {covariance_type}"
        print(f"{name:<32} {ours * 1e3:15.1f} {theirs * 1e3:16.1f} {theirs / ours:6.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
