"""Peak memory of one fit, measured in a fresh interpreter: the "fit(X) memory" table.

Every model, from every data source it takes: an in-memory array, an ``np.memmap``
(read in chunks at every pass), a callable returning a fresh iterator of blocks
(exact EM streamed over data that need not fit in memory) and, for the mixtures, a
dask array (in this process, Dask's synchronous scheduler: the persisted partitions
are then this process's memory, what the workers would hold on a cluster).

Each measurement runs in a child interpreter: in the benchmarking process memory
freed by earlier workloads is reused without growing the resident size, which
hides allocations. The parent writes the data once to ``.npy`` files; the child
loads them as the source asks (``np.load`` into one array, or memory-mapped),
fits a few thousand rows first (kernels compiled or loaded, modules imported),
then samples its anonymous resident memory (RssAnon: the pages of a memory-mapped
file are the page cache's, not the process's) every millisecond while
``fit`` runs ``max_iter`` EM iterations from the model's own initialisation.
The result is the peak above the level just before ``fit``, next to the bytes of
the arrays the fit is given (X, and y and trials for mixtures of experts).

Usage (internal)::

    python -m fastem.bench.peak SPEC_JSON

prints one JSON object (``peak_mb``, ``data_mb``). :func:`measure_in_child` is the
older entry point of the per-iteration comparison (a GaussianMixture of fastem or
scikit-learn on Gaussian blobs, optionally from fastem's start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

SOURCES = ("array", "memmap", "stream", "dask")
SEQUENCE_LENGTH = 1000
"""HMMs fit sequences of this many rows."""
STREAM_ROWS = 131_072
"""Rows per block of a callable source (whole sequences for HMMs: 131 of them)."""
OUT_OF_CORE_ROWS = 4
"""Memmaps and callables are given this many times the rows of the in-memory rows: their
initialisation holds the first million rows or so in memory (the documented start of a
streamed fit), and only data well beyond that show what a pass over them costs."""
WARMUP_ROWS = 4_000

MIXTURE_MODELS = ("GaussianMixture", "BayesianGaussianMixture")
HMM_MODELS = ("GaussianHMM", "GMMHMM", "VariationalGaussianHMM", "CategoricalHMM",
              "PoissonHMM", "MultinomialHMM")
EXPERTS = ("gaussian", "poisson", "binomial")
GATES = ("constant", "softmax", "gaussian")


def memory_specs(scale=1):
    """The table's rows: every model from every source it takes (rows divided by
    ``scale``; memmaps and callables :data:`OUT_OF_CORE_ROWS` times as many). Each is a
    dict read by the child (see :func:`_main`)."""
    n = 1_000_000 // scale
    specs = []

    def add(model, sources, n, **spec):
        for source in sources:
            rows = n * OUT_OF_CORE_ROWS if source in ("memmap", "stream") else n
            specs.append(dict(model=model, source=source, n=rows, **spec))

    for covariance_type, sources in (("full", ("array", "memmap", "stream", "dask")),
                                     ("diag", ("array", "memmap", "stream")),
                                     ("tied", ("array",)), ("spherical", ("array",))):
        add("GaussianMixture", sources, n=n, d=8, k=8, covariance_type=covariance_type)
    add("GaussianMixture", ("array", "memmap", "stream"), n=n, d=8, k=8,
        covariance_type="full", missing=0.1)
    add("EMImputer", ("array",), n=n, d=8, k=8, covariance_type="full", missing=0.1)
    add("BayesianGaussianMixture", ("array", "memmap", "stream"), n=n, d=8, k=8,
        covariance_type="full")
    add("GaussianHMM", ("array", "memmap", "stream"), n=n, d=8, k=8, covariance_type="full")
    add("GaussianHMM", ("array",), n=n, d=8, k=8, covariance_type="diag")
    add("GMMHMM", ("array", "memmap", "stream"), n=n, d=8, k=4, covariance_type="diag")
    add("VariationalGaussianHMM", ("array", "memmap", "stream"), n=n, d=8, k=8,
        covariance_type="full")
    add("CategoricalHMM", ("array", "memmap", "stream"), n=2 * n, d=16, k=8)
    add("PoissonHMM", ("array", "memmap", "stream"), n=n, d=8, k=8)
    add("MultinomialHMM", ("array", "memmap", "stream"), n=n, d=8, k=8)
    for expert in EXPERTS:
        for gating in GATES:
            add("MixtureOfExperts", ("array",), n=n, d=5, k=4, expert=expert, gating=gating)
    add("MixtureOfExperts", ("dask",), n=n, d=5, k=4, expert="gaussian", gating="constant")
    return specs


def describe(spec):
    """The row's label, e.g. ``GaussianMixture full, N=1,000,000 D=8 K=8``."""
    details = []
    if spec.get("expert"):
        details.append(f"{spec['expert']} experts, {spec['gating']} gate")
    elif spec.get("covariance_type"):
        details.append(spec["covariance_type"])
    if spec.get("missing"):
        details.append(f"{spec['missing']:.0%} missing")
    symbols = " symbols" if spec["model"] == "CategoricalHMM" else ""
    name = spec["model"] + (" " + ", ".join(details) if details else "")
    return f"{name}, N={spec['n']:,} D={spec['d']}{symbols} K={spec['k']}"


# -- data files (parent side) -------------------------------------------------------
def _data_key(spec):
    if spec["model"] == "MixtureOfExperts":
        return ("regression", spec["expert"], spec["n"], spec["d"], spec["k"])
    if spec["model"] == "CategoricalHMM":
        return ("symbols", spec["n"], spec["d"])
    if spec["model"] in ("PoissonHMM", "MultinomialHMM"):
        return (spec["model"], spec["n"], spec["d"])
    return ("blobs", spec["n"], spec["d"], spec["k"], spec.get("missing") or 0.0)


def write_data(spec, folder, cache=None):
    """The spec's arrays as ``.npy`` files in ``folder`` (written once per kind of
    data): returns ``{"X": path, ...}``."""
    key = _data_key(spec)
    if cache is not None and key in cache:
        return cache[key]
    arrays = _make_data(key)
    name = "-".join(str(part) for part in key)
    paths = {}
    for part, array in arrays.items():
        paths[part] = os.path.join(folder, f"{name}-{part}.npy")
        np.save(paths[part], array)
    if cache is not None:
        cache[key] = paths
    return paths


def _make_data(key):
    kind, rest = key[0], key[1:]
    rng = np.random.RandomState(0)
    if kind == "regression":
        from .moe import _data

        expert, n, d, k = rest
        X, y, trials = _data(n, d, k, expert=expert)
        return {"X": X, "y": y} | ({} if trials is None else {"trials": trials})
    if kind == "symbols":
        n, d = rest
        return {"X": rng.randint(d, size=(n, 1))}
    if kind == "PoissonHMM":
        n, d = rest
        return {"X": rng.poisson(rng.uniform(0.5, 8.0, size=d), size=(n, d))}
    if kind == "MultinomialHMM":
        n, d = rest
        return {"X": rng.multinomial(20, rng.dirichlet(np.ones(d)), size=n)}
    from .mixture import blobs

    n, d, k, missing = rest
    X = blobs(n, d, k)
    if missing:
        X[rng.rand(*X.shape) < missing] = np.nan
    return {"X": X}


def run_in_child(spec, paths=None):
    """Measure one spec in a child interpreter: its JSON record (``peak_mb``,
    ``data_mb``), or None when the child failed."""
    spec = dict(spec, paths=paths)
    command = [sys.executable, "-m", "fastem.bench.peak", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_rows(specs, log=print, reference=False):
    """One record per spec: workload, source, data MB, fastem's peak MB above the start
    and its ratio to the data; with ``reference``, scikit-learn's too for the in-memory
    GaussianMixture rows without missing values."""
    records = []
    with tempfile.TemporaryDirectory(prefix="fastem-memory-") as folder:
        cache = {}
        for spec in specs:
            paths = write_data(spec, folder, cache)
            record = {"workload": describe(spec), "source": spec["source"]}
            for library in ("fastem", "sklearn"):
                if library == "sklearn" and not (
                        reference and spec["model"] == "GaussianMixture"
                        and spec["source"] == "array" and not spec.get("missing")):
                    continue
                measured = run_in_child(dict(spec, library=library), paths)
                if measured is None:
                    continue
                record["data_mb"] = measured["data_mb"]
                record[f"{library}_peak_mb"] = measured["peak_mb"]
                record[f"{library}_peak_over_data"] = measured["peak_mb"] / measured["data_mb"]
            records.append(record)
            if log is not None:
                log(_progress(record))
    return records


def _progress(record):
    if "fastem_peak_mb" not in record:
        return f"  {record['workload']} ({record['source']}): failed"
    return (f"  {record['workload']} ({record['source']}): {record['fastem_peak_mb']:.1f} MB "
            f"above the start, {record['fastem_peak_over_data']:.2f}x the data")


def measure_in_child(library, n, d, k, covariance_type, max_iter, start):
    """A GaussianMixture fit of fastem or scikit-learn (``library``) on Gaussian blobs in
    a child, from fastem's initial parameters (``start="same"``) or each library's own
    (``"own"``): its JSON record, or None on failure."""
    spec = dict(model="GaussianMixture", source="array", n=n, d=d, k=k,
                covariance_type=covariance_type, max_iter=max_iter, library=library,
                start=start)
    return run_in_child(spec)


# -- the child ------------------------------------------------------------------------
def _load(spec):
    """The fit's arrays (X, and y, trials): loaded whole, or memory-mapped."""
    paths = spec.get("paths")
    if paths is None:  # measure_in_child: generated here
        return _make_data(_data_key(spec))
    mode = None if spec["source"] == "array" else "r"
    return {part: np.load(path, mmap_mode=mode) for part, path in paths.items()}


def _estimator(spec):
    import fastem

    model, k, cov = spec["model"], spec["k"], spec.get("covariance_type")
    if spec.get("library") == "sklearn":
        from sklearn.mixture import GaussianMixture
        return GaussianMixture(k, covariance_type=cov, tol=0.0, random_state=0)
    if model == "GaussianMixture":
        return fastem.GaussianMixture(k, covariance_type=cov, tol=0.0, random_state=0,
                                      missing="marginalize" if spec.get("missing") else "raise")
    if model == "EMImputer":
        return fastem.EMImputer(k, covariance_type=cov, tol=0.0, random_state=0)
    if model == "BayesianGaussianMixture":
        return fastem.BayesianGaussianMixture(n_components=k, covariance_type=cov, tol=0.0,
                                              random_state=0)
    if model == "MixtureOfExperts":
        return fastem.MixtureOfExperts(k, expert=spec["expert"], gating=spec["gating"],
                                       tol=0.0, random_state=0)
    hmm = dict(tol=0.0, random_state=0)
    if model in ("GaussianHMM", "VariationalGaussianHMM"):
        return getattr(fastem, model)(k, covariance_type=cov, **hmm)
    if model == "GMMHMM":
        return fastem.GMMHMM(k, n_mix=2, covariance_type=cov, **hmm)
    if model == "CategoricalHMM":
        return fastem.CategoricalHMM(k, n_features=spec["d"], **hmm)
    if model == "PoissonHMM":
        return fastem.PoissonHMM(k, **hmm)
    if model == "MultinomialHMM":
        return fastem.MultinomialHMM(k, n_trials=20, **hmm)
    raise ValueError(f"unknown model {model!r}")


def _set_iterations(estimator, iterations):
    key = "n_iter" if "n_iter" in estimator.get_params() else "max_iter"
    estimator.set_params(**{key: iterations})
    return estimator


def _source(spec, arrays, rows=None):
    """``fit``'s arguments (a tuple, and keyword arguments) for the spec's source, on the
    first ``rows`` rows (all when None)."""
    X = arrays["X"] if rows is None else arrays["X"][:rows]
    n = X.shape[0]
    source = spec["source"]
    sequences = spec["model"] in HMM_MODELS
    lengths = [SEQUENCE_LENGTH] * (n // SEQUENCE_LENGTH) if sequences else None
    if spec["model"] == "MixtureOfExperts":
        y = arrays["y"][:n]
        trials = arrays["trials"][:n] if "trials" in arrays else None
        if source == "dask":
            import dask.array as da

            chunks = _dask_chunks(n)
            X, y = da.from_array(np.asarray(X), chunks=(chunks, -1)), da.from_array(
                np.asarray(y), chunks=chunks)
            if trials is not None:
                trials = da.from_array(np.asarray(trials), chunks=chunks)
        return (X, y), {"trials": trials}
    if source == "array":
        X = np.array(X) if rows is not None else X
        return ((X, lengths) if sequences else (X,)), {}
    if source == "memmap":
        return ((X, lengths) if sequences else (X,)), {}
    if source == "dask":
        import dask.array as da

        return (da.from_array(X, chunks=(_dask_chunks(n), -1)),), {}
    # A callable: a fresh iterator of blocks (of whole sequences, with their lengths).
    step = STREAM_ROWS - STREAM_ROWS % SEQUENCE_LENGTH if sequences else STREAM_ROWS

    def blocks():
        for lo in range(0, n, step):
            block = np.asarray(X[lo:lo + step])
            if sequences:
                yield block, [SEQUENCE_LENGTH] * (len(block) // SEQUENCE_LENGTH)
            else:
                yield block
    return (blocks,), {}


def _dask_chunks(n):
    from ..engine.units import SEGMENT_ROWS

    return max(SEGMENT_ROWS, -(-n // 4 // SEGMENT_ROWS) * SEGMENT_ROWS)


def _fastem_start(spec, X):
    """fastem's initial parameters as scikit-learn's ``*_init`` arguments."""
    import fastem

    start = fastem.GaussianMixture(spec["k"], covariance_type=spec["covariance_type"],
                                   max_iter=0, random_state=0).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)


def _main(argv):
    from .stream import PeakAnonymous, _anonymous_bytes

    spec = json.loads(argv[0])
    warnings.simplefilter("ignore")
    arrays = _load(spec)
    data_bytes = sum(a.nbytes for a in arrays.values())
    max_iter = spec.get("max_iter", 3)
    start = {}
    if spec.get("start") == "same":
        start = _fastem_start(spec, arrays["X"])
    args, kwargs = _source(spec, arrays, WARMUP_ROWS)
    _set_iterations(_estimator(spec).set_params(**start), 1).fit(*args, **kwargs)
    estimator = _set_iterations(_estimator(spec).set_params(**start), max_iter)
    args, kwargs = _source(spec, arrays)
    before = _anonymous_bytes()
    with PeakAnonymous() as memory:
        estimator.fit(*args, **kwargs)
    print(json.dumps({"peak_mb": (memory.peak - before) / 1e6, "data_mb": data_bytes / 1e6}))


if __name__ == "__main__":
    _main(sys.argv[1:])
