"""GaussianMixture against scikit-learn: the workloads and targets of issue 3.

Every comparison starts both libraries from identical parameters (fastem's
k-means initialisation, passed to both as weights_init / means_init /
precisions_init), so the per-iteration times compare the same arithmetic and
the final log-likelihoods must agree.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import peak
from .measure import dgemm_rate, median_time, per_iteration
from .peak import measure_in_child

# (n_samples, n_features, n_components, covariance_type); --quick divides n by 10.
PER_ITERATION = [
    (200_000, 2, 5, "full"),
    (200_000, 2, 5, "tied"),
    (200_000, 2, 5, "diag"),
    (200_000, 2, 5, "spherical"),
    (300_000, 16, 16, "full"),
    (300_000, 16, 16, "diag"),
    (40_000, 64, 32, "full"),
]
FLOAT32 = (300_000, 16, 16, "full")
KMEANS = (300_000, 16, 16)
FULL_PASS = [(300_000, 16, 16), (40_000, 64, 32)]
# The memory rows (every model from every source) are peak.memory_specs().
MISSING = (1_000_000, 8, 8, "full", 0.2)


def blobs(n, n_features, n_components, seed=0, dtype=np.float64):
    """Gaussian clusters with unit covariance around uniform random centres."""
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-5, 5, size=(n_components, n_features))
    X = np.empty((n, n_features), dtype=dtype)
    for lo in range(0, n, 100_000):
        hi = min(lo + 100_000, n)
        X[lo:hi] = centers[rng.randint(n_components, size=hi - lo)] + rng.normal(
            size=(hi - lo, n_features))
    return X


def _start(X, n_components, covariance_type):
    import fastem

    start = fastem.GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0,
                                   random_state=0).fit(X)
    return dict(n_components=n_components, covariance_type=covariance_type,
                weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)


def _fitter(cls, X, start):
    def fit(max_iter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(max_iter=max_iter, tol=0.0, **start).fit(X)
    return fit


def _name(n, d, k, covariance_type=None):
    return f"N={n:,} D={d} K={k}" + (f" {covariance_type}" if covariance_type else "")


def compare_iterations(n, d, k, covariance_type, repeats, reference):
    """One workload: ms/iteration of both, log-likelihood difference, peak memory."""
    import fastem

    X = blobs(n, d, k)
    start = _start(X, k, covariance_type)
    ours = _fitter(fastem.GaussianMixture, X, start)
    ours(1)  # any compilation happens here, not in the timings
    record = {"workload": _name(n, d, k, covariance_type), "data_mb": X.nbytes / 1e6,
              "fastem_ms": 1e3 * per_iteration(ours, repeats)}
    fitted = ours(4)
    record["fastem_peak_mb"] = _child_peak("fastem", n, d, k, covariance_type, 4, "same")
    if reference is not None:
        theirs = _fitter(reference, X, start)
        record["sklearn_ms"] = 1e3 * per_iteration(theirs, repeats)
        other = theirs(4)
        record["sklearn_peak_mb"] = _child_peak("sklearn", n, d, k, covariance_type, 4, "same")
        record["ratio"] = record["sklearn_ms"] / max(record["fastem_ms"], 1e-9)
        record["loglik_diff"] = abs(fitted.lower_bound_ - other.lower_bound_)
    return record


def _child_peak(library, n, d, k, covariance_type, max_iter, start):
    measured = measure_in_child(library, n, d, k, covariance_type, max_iter, start)
    return None if measured is None else measured["peak_mb"]


def compare_float32(n, d, k, covariance_type, repeats):
    """fastem on float32 against float64 copies of the same values."""
    import fastem

    X32 = blobs(n, d, k, dtype=np.float32)
    X64 = X32.astype(np.float64)
    start = _start(X64, k, covariance_type)
    times = {}
    for name, X in (("float64", X64), ("float32", X32)):
        fit = _fitter(fastem.GaussianMixture, X, start)
        fit(1)
        times[name] = 1e3 * per_iteration(fit, repeats)
    return {"workload": _name(n, d, k, covariance_type), "float64_ms": times["float64"],
            "float32_ms": times["float32"], "ratio": times["float64"] / max(times["float32"], 1e-9)}


def compare_missing(n, d, k, covariance_type, fraction, repeats):
    """fastem per-iteration time with a fraction of entries missing at random, against the
    same data complete (same starting parameters)."""
    import fastem

    X = blobs(n, d, k)
    holes = X.copy()
    holes[np.random.RandomState(1).rand(*X.shape) < fraction] = np.nan
    start = _start(X, k, covariance_type)
    times = {}
    for name, data in (("complete", X), ("missing", holes)):
        fit = _fitter(fastem.GaussianMixture, data, dict(start, missing="marginalize"))
        fit(1)
        times[name] = 1e3 * per_iteration(fit, repeats)
    return {"workload": _name(n, d, k, covariance_type) + f", {fraction:.0%} missing",
            "complete_ms": times["complete"], "missing_ms": times["missing"],
            "ratio": times["missing"] / max(times["complete"], 1e-9)}


def compare_kmeans(n, d, k, repeats, reference):
    """k-means++ seeding plus Lloyd's iterations, against KMeans(n_init=1)."""
    from ..mixture import kmeans

    X = blobs(n, d, k)

    def ours():
        seeds = kmeans.kmeans_plusplus(X, k, None, np.random.RandomState(0))
        return kmeans.lloyd(X, None, X[seeds])

    ours()
    record = {"workload": _name(n, d, k), "fastem_ms": 1e3 * median_time(ours, repeats)}
    if reference is not None:
        def theirs():
            return reference(k, n_init=1, random_state=0).fit(X)

        theirs()
        record["sklearn_ms"] = 1e3 * median_time(theirs, repeats)
        record["ratio"] = record["sklearn_ms"] / record["fastem_ms"]
    return record


def full_pass_rate(n, d, k, repeats, dgemm_gflops):
    """GFLOP/s of one full-covariance E-step with statistics (2 D (D+1) flops per row and
    component: the triangular Mahalanobis product and the symmetric scatter)."""
    import fastem

    from ..components.structures import FULL
    from ..engine import Block, pass_stats
    from ..mixture.model import GaussianMixtureModel

    X = blobs(n, d, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fastem.GaussianMixture(k, max_iter=1, random_state=0).fit(X)
    model = GaussianMixtureModel(FULL, k, d, 1e-6, "kmeans")
    params = fitted._get_parameters()
    blocks = [Block(X)]
    pass_stats(model, params, blocks)
    seconds = median_time(lambda: pass_stats(model, params, blocks), repeats)
    gflops = n * k * 2.0 * d * (d + 1) / seconds / 1e9
    return {"workload": _name(n, d, k, "full"), "ms": 1e3 * seconds, "gflops": gflops,
            "dgemm_gflops": dgemm_gflops, "fraction": gflops / dgemm_gflops}


def run_memory(quick=False, reference=False, log=print):
    """The "fit(X) memory" rows: every model from every source it takes, each fit in a
    fresh process (see :mod:`fastem.bench.peak`); with ``reference``, scikit-learn's
    GaussianMixture on the same in-memory data too."""
    return peak.memory_rows(peak.memory_specs(10 if quick else 1), log=log,
                            reference=reference)


def run_all(quick=False, repeats=3, reference=True, memory_reference=False, log=print,
            only=None):
    """Run every comparison (or ``only`` "mixture" / "hmm" / "engine" / "memory"); returns
    a dict of lists of records (see ``__main__``)."""
    scale = 10 if quick else 1
    results = {"per_iteration": [], "float32": [], "kmeans": [], "full_pass": [], "memory": [],
               "missing": []}
    if only == "memory":
        results["memory"] = run_memory(quick, memory_reference and reference, log)
        return results
    if only == "hmm":
        from . import hmm

        results["hmm"] = hmm.run(quick, repeats, reference, log)
        return results
    if only == "engine":
        from . import engine

        results.update(engine.run(quick, log))
        return results
    sklearn_gmm = sklearn_kmeans = None
    if reference:
        try:
            from sklearn.cluster import KMeans
            from sklearn.mixture import GaussianMixture
        except ImportError:
            log("scikit-learn is not installed: fastem timings only")
        else:
            sklearn_gmm, sklearn_kmeans = GaussianMixture, KMeans
    for n, d, k, covariance_type in PER_ITERATION:
        results["per_iteration"].append(
            compare_iterations(n // scale, d, k, covariance_type, repeats, sklearn_gmm))
        log(_progress(results["per_iteration"][-1]))
    n, d, k, covariance_type = FLOAT32
    results["float32"].append(compare_float32(n // scale, d, k, covariance_type, repeats))
    n, d, k, covariance_type, fraction = MISSING
    results["missing"].append(compare_missing(n // scale, d, k, covariance_type, fraction,
                                              repeats))
    n, d, k = KMEANS
    results["kmeans"].append(compare_kmeans(n // scale, d, k, repeats, sklearn_kmeans))
    dgemm = dgemm_rate()
    for n, d, k in FULL_PASS:
        results["full_pass"].append(full_pass_rate(n // scale, d, k, repeats, dgemm))
    results["memory"] = run_memory(quick, memory_reference and sklearn_gmm is not None, log)
    from . import coldstart

    results["cold_start"] = [coldstart.run(log)]
    if only == "mixture":
        return results
    from . import engine, hmm

    results["hmm"] = hmm.run(quick, repeats, reference, log)
    results.update(engine.run(quick, log))
    return results


def _progress(record):
    text = f"  {record['workload']}: fastem {record['fastem_ms']:.1f} ms/iter"
    if "sklearn_ms" in record:
        text += f", scikit-learn {record['sklearn_ms']:.1f} ms/iter ({record['ratio']:.1f}x)"
    return text
