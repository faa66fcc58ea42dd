"""One variational EM iteration of BayesianGaussianMixture against scikit-learn's.

Both start from the same random responsibilities (``init_params="random"`` and
one seed draw the same numbers in both libraries), run with ``tol=0`` and are
timed per iteration as ``(t(4) - t(1)) / 3`` (medians of ``--repeats``), so
that validation, the data-dependent priors and the start cancel. The final
lower bounds of the two are printed too: the same start and the same arithmetic
give the same value. Also reports the peak memory of one fit above the data.
Prints one JSON record.

    python -m fastem.bench.variational [--rows 300000] [--features 16] [--components 16]
                                       [--covariance-type full]
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

from .measure import PeakMemory, per_iteration


def _data(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-5, 5, size=(k // 2 + 1, d))  # fewer clusters than components
    return centres[rng.randint(len(centres), size=n)] + rng.normal(size=(n, d))


def compare(rows, features, components, covariance_type, repeats):
    from sklearn.mixture import BayesianGaussianMixture as Reference

    import fastem

    X = _data(rows, features, components)
    options = dict(n_components=components, covariance_type=covariance_type,
                   init_params="random", random_state=0, tol=0.0)
    fits = {}

    def fitter(cls, name):
        def fit(max_iter):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fits[name] = cls(max_iter=max_iter, **options).fit(X)
        return fit

    fitter(fastem.BayesianGaussianMixture, "fastem")(1)  # compiled kernels loaded
    seconds = {name: per_iteration(fitter(cls, name), repeats) for name, cls in
               (("fastem", fastem.BayesianGaussianMixture), ("sklearn", Reference))}
    bounds = {name: float(np.ravel(fits[name].lower_bound_)[0]) for name in fits}
    peaks = {}
    for name, cls in (("fastem", fastem.BayesianGaussianMixture), ("sklearn", Reference)):
        with PeakMemory() as memory:
            fitter(cls, name)(2)
        peaks[name] = None if memory.peak is None else memory.peak / 1e6
    return {"rows": rows, "features": features, "components": components,
            "covariance_type": covariance_type, "cores": os.cpu_count(),
            "fastem_s_per_iteration": seconds["fastem"],
            "sklearn_s_per_iteration": seconds["sklearn"],
            "speedup": seconds["sklearn"] / seconds["fastem"] if seconds["fastem"] else None,
            "lower_bound_relative_difference": abs(bounds["fastem"] - bounds["sklearn"])
            / abs(bounds["sklearn"]),
            "data_mb": X.nbytes / 1e6, "fastem_peak_mb": peaks["fastem"],
            "sklearn_peak_mb": peaks["sklearn"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--covariance-type", default="full",
                        choices=("full", "tied", "diag", "spherical"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    record = compare(args.rows, args.features, args.components, args.covariance_type,
                     args.repeats)
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
