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
    python -m fastem.bench.variational --hmm   # VariationalGaussianHMM vs hmmlearn
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np

from ..components.structures import names as structure_names
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


def _hmm_sequences(n_sequences, length, n_states, n_features, seed=0):
    rng = np.random.RandomState(seed)
    transmat = rng.dirichlet(np.full(n_states, 0.5), size=n_states) * 0.3 \
        + 0.7 * np.eye(n_states)
    means = rng.uniform(-6, 6, size=(n_states, n_features))
    states = np.empty(n_sequences * length, dtype=np.int64)
    for s in range(n_sequences):
        state = rng.randint(n_states)
        for t in range(length):
            states[s * length + t] = state
            state = rng.choice(n_states, p=transmat[state])
    X = means[states] + rng.normal(size=(len(states), n_features))
    return X, [length] * n_sequences


_HMM_POSTERIORS = ("startprob_prior_", "startprob_posterior_", "transmat_prior_",
                   "transmat_posterior_", "means_prior_", "means_posterior_", "beta_prior_",
                   "beta_posterior_", "dof_prior_", "dof_posterior_", "scale_prior_",
                   "scale_posterior_")


def compare_hmm(n_sequences, length, n_states, n_features, covariance_type, repeats):
    """VariationalGaussianHMM per iteration against hmmlearn's, from hmmlearn's own
    initial posterior (copied into both with ``init_params=""``)."""
    import logging

    from hmmlearn.vhmm import VariationalGaussianHMM as Reference

    import fastem

    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    X, lengths = _hmm_sequences(n_sequences, length, n_states, n_features)
    start = Reference(n_states, covariance_type=covariance_type, random_state=0, n_iter=1,
                      tol=-np.inf).fit(X, lengths)
    fits = {}

    def fitter(cls, name):
        def fit(n_iter):
            model = cls(n_states, covariance_type=covariance_type, n_iter=n_iter,
                        tol=-np.inf, init_params="")
            for attribute in _HMM_POSTERIORS:
                value = np.array(getattr(start, attribute), copy=True)
                setattr(model, attribute, value if value.ndim else float(value))
            model.covars_ = start._covars_.copy()
            fits[name] = model.fit(X, lengths)
        return fit

    fitter(fastem.VariationalGaussianHMM, "fastem")(1)  # compiled kernels loaded
    seconds = {name: per_iteration(fitter(cls, name), repeats) for name, cls in
               (("fastem", fastem.VariationalGaussianHMM), ("hmmlearn", Reference))}
    bounds = {name: float(list(fits[name].monitor_.history)[-1]) for name in fits}
    return {"sequences": n_sequences, "length": length, "states": n_states,
            "features": n_features, "covariance_type": covariance_type,
            "cores": os.cpu_count(), "fastem_s_per_iteration": seconds["fastem"],
            "hmmlearn_s_per_iteration": seconds["hmmlearn"],
            "speedup": seconds["hmmlearn"] / seconds["fastem"] if seconds["fastem"] else None,
            "lower_bound_relative_difference": abs(bounds["fastem"] - bounds["hmmlearn"])
            / abs(bounds["hmmlearn"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--covariance-type", default=None,
                        choices=structure_names(variational=True),
                        help="default: full (diag with --hmm)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hmm", action="store_true",
                        help="VariationalGaussianHMM against hmmlearn's instead (200 "
                        "sequences x 1000 steps, K=8, D=4 diag unless told otherwise)")
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--length", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.hmm:
        states = 8 if args.components == 16 else args.components
        features = 4 if args.features == 16 else args.features
        record = compare_hmm(args.sequences, args.length, states, features,
                             args.covariance_type or "diag", args.repeats)
    else:
        record = compare(args.rows, args.features, args.components,
                         args.covariance_type or "full", args.repeats)
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
