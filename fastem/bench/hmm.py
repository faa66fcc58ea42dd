"""HMMs against hmmlearn: the workloads and targets of issue 4.

Both libraries start from identical parameters (``init_params=""``), so the
per-iteration times compare the same Baum-Welch iterations, against both of
hmmlearn's implementations ("log", its default, and "scaling").
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from .measure import per_iteration

# (name, emission kind, n_sequences, length, n_components, n_features or symbols)
WORKLOADS = [
    ("GaussianHMM diag, 200 x 1,000 steps, K=8, D=4", "gaussian", 200, 1000, 8, 4),
    ("CategoricalHMM, 100 x 500 steps, K=16, 32 symbols", "categorical", 100, 500, 16, 32),
    ("GaussianHMM diag, 1 x 1,000,000 steps, K=4, D=2", "gaussian", 1, 1_000_000, 4, 2),
]


def problem(kind, n_sequences, length, n_components, n_features, seed=0):
    """Data and starting parameters (attribute name -> array) for one workload."""
    rng = np.random.RandomState(seed)
    n = n_sequences * length
    params = {"startprob_": rng.dirichlet(np.ones(n_components)),
              "transmat_": rng.dirichlet(np.full(n_components, 5.0), size=n_components)}
    if kind == "categorical":
        X = rng.randint(n_features, size=(n, 1))
        params["emissionprob_"] = rng.dirichlet(np.ones(n_features), size=n_components)
    else:
        means = rng.normal(scale=3.0, size=(n_components, n_features))
        X = means[rng.randint(n_components, size=n)] + rng.normal(size=(n, n_features))
        params["means_"] = means + 0.3
        params["_covars_"] = np.ones((n_components, n_features))
    return X, [length] * n_sequences, params


def _fitter(cls, X, lengths, params, **kwargs):
    def fit(n_iter):
        model = cls(n_iter=n_iter, tol=0.0, init_params="", **kwargs)
        for name, value in params.items():
            setattr(model, name, np.array(value))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X, lengths)
    return fit


def compare(name, kind, n_sequences, length, n_components, n_features, repeats, reference):
    """One workload: ms/iteration of fastem and of hmmlearn's two implementations."""
    import fastem

    X, lengths, params = problem(kind, n_sequences, length, n_components, n_features)
    ours_cls = fastem.CategoricalHMM if kind == "categorical" else fastem.GaussianHMM
    ours = _fitter(ours_cls, X, lengths, params, n_components=n_components)
    ours(1)
    record = {"workload": name, "fastem_ms": 1e3 * per_iteration(ours, repeats)}
    fitted = ours(4)
    if reference is not None:
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
        theirs_cls = getattr(reference, "CategoricalHMM" if kind == "categorical"
                             else "GaussianHMM")
        for implementation in ("log", "scaling"):
            theirs = _fitter(theirs_cls, X, lengths, params, n_components=n_components,
                             implementation=implementation)
            record[f"hmmlearn_{implementation}_ms"] = 1e3 * per_iteration(theirs, repeats)
            record[f"ratio_{implementation}"] = (record[f"hmmlearn_{implementation}_ms"]
                                                 / max(record["fastem_ms"], 1e-9))
            other = theirs(4)
        record["loglik_diff"] = abs(fitted.monitor_.history[-1] - other.monitor_.history[-1])
    return record


def run(quick, repeats, reference, log):
    """Every HMM workload; ``quick`` divides the number of steps by 10."""
    if reference:
        try:
            from hmmlearn import hmm as reference
        except ImportError:
            log("hmmlearn is not installed: fastem HMM timings only")
            reference = None
    else:
        reference = None
    scale = 10 if quick else 1
    records = []
    for name, kind, n_sequences, length, k, d in WORKLOADS:
        if n_sequences == 1:
            length //= scale
        else:
            n_sequences = max(1, n_sequences // scale)
        record = compare(name, kind, n_sequences, length, k, d, repeats, reference)
        if quick:
            record["workload"] += f" (quick: {n_sequences} x {length:,})"
        records.append(record)
        text = f"  {record['workload']}: fastem {record['fastem_ms']:.1f} ms/iter"
        if "ratio_log" in record:
            text += (f", hmmlearn log {record['hmmlearn_log_ms']:.1f} ({record['ratio_log']:.1f}x)"
                     f", scaling {record['hmmlearn_scaling_ms']:.1f} "
                     f"({record['ratio_scaling']:.1f}x)")
        log(text)
    return records
