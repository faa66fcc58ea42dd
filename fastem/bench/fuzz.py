"""Adversarial inputs for every estimator, run in a separate process so that a crash is a
finding, not the end of the run.

Each case is a plain dict (picklable): an estimator, constructor arguments (now and then
an absurd one), a method and a generated input (any dtype from bool to uint64, float16
and complex, NaN/inf/huge/subnormal values, 0-d to 3-d, empty, bad ``lengths``), or a
model file rewritten by a forger (JSON edits with recomputed checksums, zip header edits,
truncation). :func:`run_case` executes one case and returns what went wrong, if anything:
the only acceptable outcomes are a ``ValueError``/``TypeError`` or results without NaN
(log-likelihoods may be -inf, probabilities must be finite), with the inputs unchanged.

:class:`Worker` runs cases in a child process and restarts it after a crash. Cases are
drawn through a small chooser interface, so the same generator serves hypothesis in the
test suite (which shrinks failures) and a seeded RNG in the long run::

    python -m fastem.bench.fuzz --minutes 30
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
import warnings
import zipfile

import numpy as np

ESTIMATORS = ("GaussianMixture", "EMImputer", "GaussianHMM", "GMMHMM", "CategoricalHMM",
              "PoissonHMM", "MultinomialHMM")
METHODS = ("fit", "predict", "predict_proba", "score", "score_samples", "decode", "sample",
           "transform", "partial_fit")
DTYPES = ("bool", "int8", "uint8", "int64", "uint64", "float16", "float32", "float64",
          "complex64", "object", "str", "timedelta64[s]", "datetime64[s]")
SCALES = (0.0, 1e-300, 1e-30, 1e-5, 1.0, 3.0, 1e6, 1e18, 1e30, 1e150, 1e300)
SPECIALS = ("none", "none", "nan", "inf", "-inf", "huge", "subnormal", "nan_row", "negative",
            "uint64_top")
ODD_HYPERPARAMETERS = (
    ("n_components", 0), ("n_components", 10**20), ("n_components", 2.5), ("tol", np.nan),
    ("tol", -1.0), ("n_init", 10**20), ("n_init", 0), ("random_state", -1),
    ("random_state", "seed"), ("n_threads", 0), ("n_threads", 10**9), ("max_iter", -1),
    ("n_iter", -1), ("reg_covar", np.nan), ("reg_covar", -1.0), ("min_covar", -1.0),
    ("covariance_type", "bogus"), ("params", "abc"), ("init_params", "zz"),
    ("startprob_prior", np.nan), ("startprob_prior", np.ones((2, 2))),
    ("transmat_prior", -5.0), ("transmat_prior", np.inf), ("lambdas_prior", -5.0),
    ("lambdas_weight", -1.0), ("means_prior", np.nan), ("means_weight", -1.0),
    ("covars_prior", np.full((7, 7), np.nan)), ("covars_weight", np.ones(7)),
    ("weights_prior", -1.0), ("n_mix", 0), ("n_features", 10**15), ("n_features", 1),
    ("n_trials", [1, 2, 3]), ("n_trials", -1), ("emissionprob_prior", np.nan),
    ("weights_init", 3.0), ("means_init", 1.0), ("precisions_init", [[1.0]]),
    ("missing", "marginalize"), ("missing", "ignore"), ("warm_start", "yes"),
    ("init_params", "random"), ("init_params", "k-means++"), ("covariance_type", "full"),
    ("covariance_type", "tied"), ("covariance_type", "spherical"), ("algorithm", "map"),
    ("callback", "not callable"), ("verbose", -1), ("acceleration", "squarem"),
    ("acceleration", "squarem"), ("acceleration", "bogus"), ("learning_decay", 0.2),
    ("learning_decay", np.nan), ("learning_offset", -1.0),
)
ACCEPTED_ERRORS = (ValueError, TypeError)


# -- choosing ----------------------------------------------------------------------------
class RandomChooser:
    """Draws from a seeded numpy RandomState."""

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def choose(self, options):
        return options[self.rng.randint(len(options))]

    def integer(self, low, high):
        return int(self.rng.randint(low, high + 1))


class HypothesisChooser:
    """Draws through hypothesis' ``data`` object, so failures shrink."""

    def __init__(self, data):
        from hypothesis import strategies

        self.data = data
        self.st = strategies

    def choose(self, options):
        return self.data.draw(self.st.sampled_from(options))

    def integer(self, low, high):
        return self.data.draw(self.st.integers(low, high))


# -- generating ----------------------------------------------------------------------------
def _values(shape, dtype, scale, special, seed):
    rng = np.random.RandomState(seed)
    base = rng.normal(size=shape) * scale
    if dtype in ("bool", "int8", "uint8", "int64", "uint64"):
        base = np.abs(np.round(rng.poisson(3, size=shape) * max(scale, 1.0) / 3.0))
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "str":
            return base.astype(str)
        if dtype == "object":
            return base.astype(object)
        if dtype.startswith(("timedelta", "datetime")):
            return np.zeros(shape, dtype=dtype)
        if dtype == "uint64":
            array = np.minimum(base, 2.0**63).astype(np.uint64)
        elif dtype in ("int8", "uint8"):
            array = np.clip(base, 0, 100).astype(dtype)
        elif dtype == "int64":
            array = np.minimum(base, 2.0**62).astype(np.int64)
        else:
            array = base.astype(dtype)
    if array.size == 0 or special == "none":
        return array
    flat = array.reshape(-1)
    where = rng.randint(flat.size)
    if special == "uint64_top" and array.dtype == np.uint64:
        flat[where] = np.uint64(2**63 + 10**9)
    elif array.dtype.kind == "f" or array.dtype.kind == "c":
        finfo = np.finfo(array.dtype)
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": finfo.max / 3,
                 "subnormal": finfo.tiny / 4, "negative": -3.0, "nan_row": np.nan,
                 "uint64_top": 2.0**64}[special]
        if special == "nan_row" and array.ndim == 2:
            array[where % array.shape[0]] = np.nan
        else:
            flat[where] = value
    elif special == "negative" and array.dtype.kind == "i":
        flat[where] = -3
    elif special == "huge" and array.dtype.kind in "iu":
        flat[where] = np.iinfo(array.dtype).max
    return array


def _lengths(choose, n_rows):
    kind = choose.choose(("none", "none", "split", "bad_sum", "zero", "negative", "wrap",
                          "float", "two_d", "huge_count"))
    if kind == "none" or n_rows < 2:
        return None
    cut = max(1, n_rows // 2)
    return {"split": [cut, n_rows - cut], "bad_sum": [cut, n_rows], "zero": [0, n_rows],
            "negative": [-1, n_rows + 1], "wrap": [2**62, 2**62, 2**62, 2**62 + n_rows],
            "float": [cut + 0.5, n_rows - cut - 0.5], "two_d": [[cut, n_rows - cut]],
            "huge_count": [1] * (n_rows + 5)}[kind]


def generate_case(choose):
    """One input case (a plain, picklable dict)."""
    name = choose.choose(ESTIMATORS)
    kwargs = {"n_components": choose.integer(1, 3), "random_state": 0}
    if name.endswith("HMM"):
        kwargs["n_iter"] = 5
    elif name == "GaussianMixture":
        kwargs["max_iter"] = 5
    if choose.integer(0, 2) == 0:
        key, value = choose.choose(ODD_HYPERPARAMETERS)
        kwargs[key] = value
    if choose.integer(0, 9) == 0:
        return {"kind": "file", "estimator": name, "kwargs": kwargs,
                "mutation": choose.choose(FILE_MUTATIONS), "seed": choose.integer(0, 10**6)}
    layout = choose.choose(("2d", "2d", "2d", "2d", "1d", "0d", "3d", "empty", "no_features"))
    n_rows = choose.integer(1, 40)
    n_features = 1 if name == "CategoricalHMM" else choose.integer(1, 4)
    shape = {"2d": (n_rows, n_features), "1d": (n_rows,), "0d": (), "3d": (n_rows, 2, 1),
             "empty": (0, n_features), "no_features": (n_rows, 0)}[layout]
    data = {"shape": shape, "dtype": choose.choose(DTYPES), "scale": choose.choose(SCALES),
            "special": choose.choose(SPECIALS), "seed": choose.integer(0, 10**6)}
    method = choose.choose(METHODS)
    case = {"kind": "data", "estimator": name, "kwargs": kwargs, "method": method,
            "data": data, "lengths": _lengths(choose, n_rows) if name.endswith("HMM") else None,
            "fit_on": choose.choose(("good", "same"))}
    if method == "sample":
        case["n_samples"] = choose.choose((1, 5, 0, -1, 2.5, 10**20, "3"))
    return case


# -- running -----------------------------------------------------------------------------
def _good_data(name, n_features=2):
    rng = np.random.RandomState(1)
    if name == "CategoricalHMM":
        return rng.randint(3, size=(60, 1))
    if name in ("PoissonHMM", "MultinomialHMM"):
        return rng.poisson(3, size=(60, n_features))
    X = rng.normal(size=(60, n_features))
    X[:30] += 4.0
    return X


def _fingerprint(value):
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ("object", value.shape, repr(value.tolist()))
        return (value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).hexdigest())
    if isinstance(value, (list, tuple)):
        return tuple(_fingerprint(item) for item in value)
    return repr(value)


def _bad_output(value, what):
    """A description of what is wrong with an output, or None."""
    if isinstance(value, tuple):
        for item in value:
            problem = _bad_output(item, what)
            if problem:
                return problem
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return None
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            return f"{what} returned NaN"
        if np.isposinf(array).any():
            return f"{what} returned +inf"
        if what in ("predict_proba", "transform", "sample") and np.isinf(array).any():
            return f"{what} returned -inf"
    return None


def _effective_method(model, method):
    """The method a case's name maps to for this estimator."""
    import fastem

    if isinstance(model, fastem.EMImputer):
        return "fit" if method in ("fit", "partial_fit") else "transform"
    if isinstance(model, fastem.GaussianMixture):
        return {"decode": "predict", "transform": "score"}.get(method, method)
    return "score" if method == "transform" else method


def _call(model, method, X, lengths, case):
    """(name of the method called, its result)."""
    import fastem

    method = _effective_method(model, method)
    if method == "sample":
        return method, model.sample(case["n_samples"])
    if isinstance(model, fastem.GaussianMixture | fastem.EMImputer):
        return method, getattr(model, method)(X)
    return method, getattr(model, method)(X, lengths)


def _make(case):
    import fastem

    return getattr(fastem, case["estimator"])(**case["kwargs"])


def run_case(case):
    """Execute one case; return None when the outcome is acceptable, else a description."""
    import fastem

    if case["kind"] == "abort":  # the harness's self-test: a crash
        os.abort()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if case["kind"] == "file":
                return _run_file_case(case)
            spec = case["data"]
            X = _values(tuple(spec["shape"]), spec["dtype"], spec["scale"],
                        spec["special"], spec["seed"])
            lengths = case["lengths"]
            before = (_fingerprint(X), _fingerprint(lengths))
            model = _make(case)
            method = _effective_method(model, case["method"])
            if method in ("fit", "partial_fit"):
                for _ in range(1 if method == "fit" else 2):  # partial_fit: start, then step
                    if isinstance(model, fastem.GaussianMixture | fastem.EMImputer):
                        getattr(model, method)(X)
                    else:
                        getattr(model, method)(X, lengths)
                result = None
                for probe in ("score", "predict_proba"):
                    try:
                        good = _good_data(case["estimator"], getattr(model, "n_features_in_", 2))
                        called, result = _call(model, probe, good, None, case)
                    except ACCEPTED_ERRORS:
                        continue
                    problem = _bad_output(result, f"{called} after fit")
                    if problem:
                        return problem
            else:
                fit_data = X if case["fit_on"] == "same" else _good_data(case["estimator"])
                try:
                    if isinstance(model, fastem.GaussianMixture | fastem.EMImputer):
                        model.fit(fit_data)
                    else:
                        model.fit(fit_data, lengths if case["fit_on"] == "same" else None)
                except ACCEPTED_ERRORS:
                    if case["fit_on"] == "same":
                        return None
                    model = _make({**case, "kwargs": {"n_components": 2, "random_state": 0}})
                    model.fit(fit_data)
                called, result = _call(model, method, X, lengths, case)
                problem = _bad_output(result, called)
                if problem:
                    return problem
            if (_fingerprint(X), _fingerprint(lengths)) != before:
                return "the input was modified"
            return None
        except ACCEPTED_ERRORS:
            return None
        except Exception:  # noqa: BLE001 - every other exception is a finding
            return "unexpected exception:\n" + traceback.format_exc(limit=6)


# -- model files ---------------------------------------------------------------------------
FILE_MUTATIONS = ("shape", "attribute", "validate_off", "spec", "params_list", "deep_json",
                  "zero_d", "negate_chol", "class", "compression", "encrypted", "declared_size",
                  "truncate", "flip_bytes", "plain_npy", "n_features", "nan_param", "bomb")


_DEEP = "deeply nested"


def _entries(blob):
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _pack(entries, metadata, recompute=True):
    """An .npz of ``entries`` with ``metadata`` and checksums recomputed (a forgery)."""
    if recompute:
        for key, array in entries.items():
            if key.startswith("__"):
                continue
            metadata.setdefault("arrays", {})[key] = {
                "shape": list(array.shape), "dtype": array.dtype.str,
                "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()}
    text = json.dumps(metadata, sort_keys=True)
    # 50,000 nested lists: deeper than any JSON encoder would write, as a forger can.
    text = text.replace(f'"{_DEEP}"', "[" * 50_000 + "1" + "]" * 50_000).encode()
    entries = {k: v for k, v in entries.items() if not k.startswith("__")}
    entries["__metadata__"] = np.frombuffer(text, dtype=np.uint8)
    entries["__digest__"] = np.frombuffer(hashlib.sha256(text).hexdigest().encode(),
                                          dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, **entries)
    return out.getvalue()


def forge(blob, mutation, seed):
    """A crafted variant of the model file ``blob`` (bytes)."""
    rng = np.random.RandomState(seed)
    entries = _entries(blob)
    metadata = json.loads(entries["__metadata__"].tobytes())
    model = metadata["model"]
    arrays = [k for k in entries if not k.startswith("__")]
    target = arrays[rng.randint(len(arrays))] if arrays else None
    if mutation == "shape" and target:
        shape = list(entries[target].shape)
        shape[-1 if shape else 0:] = [rng.choice([1, 50, 2000])] if shape else []
        entries[target] = rng.normal(size=shape) if shape else np.float64(1.0)
        del metadata["arrays"][target]
    elif mutation == "attribute":
        model["attributes"][rng.choice(["means_", "n_features_in_", "weights_", "_covars_",
                                        "startprob_"])] = {"value": rng.choice([None, -1, 3.5,
                                                                                "x", 10**12])}
    elif mutation == "validate_off":
        model["attributes"]["_validate_loaded"] = {"value": None}
    elif mutation == "spec":
        model["attributes"]["_spec"] = {"value": "full"}
    elif mutation == "params_list":
        model["params"] = []
    elif mutation == "deep_json":
        model["params"]["tol"] = _DEEP  # spliced into the text by _pack
    elif mutation == "zero_d" and target:
        entries[target] = np.float64(rng.normal())
        del metadata["arrays"][target]
    elif mutation == "negate_chol":
        for key in arrays:
            if "precisions_cholesky_" in key:
                entries[key] = -entries[key]
    elif mutation == "class":
        model["class"] = rng.choice(["ConvergenceMonitor", "object", "GaussianHMM", "EMImputer"])
    elif mutation == "n_features":
        model["attributes"]["n_features_in_"] = {"value": int(rng.choice([0, 1, 3, 99]))}
    elif mutation == "nan_param" and target:
        entries[target] = entries[target] * np.nan
    elif mutation in ("compression", "encrypted", "declared_size", "truncate", "flip_bytes",
                      "plain_npy", "bomb"):
        return _damage(blob, mutation, rng)
    return _pack(entries, metadata)


def _damage(blob, mutation, rng):
    data = bytearray(blob)
    if mutation == "truncate":
        return bytes(data[:rng.randint(1, len(data))])
    if mutation == "flip_bytes":
        for _ in range(8):
            data[rng.randint(len(data))] ^= 0xFF
        return bytes(data)
    if mutation == "plain_npy":
        out = io.BytesIO()
        np.save(out, np.ones(3))
        return out.getvalue()
    if mutation == "bomb":  # a small file whose member inflates to 256 MiB
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 25,)})
            with archive.open("attr/means_.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                chunk = bytes(1 << 20)
                for _ in range(256):
                    member.write(chunk)
        return out.getvalue()
    # Edit the central directory entries of the zip: method, flags, declared size.
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        if mutation == "compression":
            data[position + 10:position + 12] = (99).to_bytes(2, "little")
        elif mutation == "encrypted":
            data[position + 8] |= 0x1
        else:
            data[position + 24:position + 28] = (0xFFFFFFF0).to_bytes(4, "little")
        position = data.find(b"PK\x01\x02", position + 4)
    return bytes(data)


_SAVED = {}


def _saved_model(case, folder):
    """(bytes of a saved fitted model, data it fits), made once per estimator."""
    import fastem

    name = case["estimator"]
    if name not in _SAVED:
        model = _make({**case, "kwargs": {"n_components": 2, "random_state": 0}})
        X = _good_data(name).astype(np.float64)
        if isinstance(model, fastem.EMImputer):
            X[::5, 0] = np.nan
        model.fit(X)
        path = os.path.join(folder, "original.npz")
        model.save(path)
        with open(path, "rb") as handle:
            _SAVED[name] = (handle.read(), X)
    return _SAVED[name]


def _run_file_case(case):
    import fastem

    with tempfile.TemporaryDirectory() as folder:
        blob, X = _saved_model(case, folder)
        forged = forge(blob, case["mutation"], case["seed"])
        path = os.path.join(folder, "model.npz")
        with open(path, "wb") as handle:
            handle.write(forged)
        try:
            model = fastem.load(path)
        except ValueError:
            return None
    if not model.__sklearn_is_fitted__():
        return None
    for method in ("score", "predict_proba", "sample"):
        try:
            called, result = _call(model, method, X, None, {"n_samples": 3})
        except ACCEPTED_ERRORS:
            continue
        problem = _bad_output(result, f"{called} of a loaded model")
        if problem:
            return f"forged file ({case['mutation']}) loaded and then: {problem}"
    return None


# -- the worker process ------------------------------------------------------------------------
def _serve(connection):
    while True:
        case = connection.recv()
        if case is None:
            return
        connection.send(run_case(case))


class Worker:
    """Runs cases in a child process; a crash of the child is reported as a finding."""

    def __init__(self, timeout=120.0):
        self.timeout = timeout
        self._context = multiprocessing.get_context("spawn")
        self._start()

    def _start(self):
        self._connection, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()

    def run(self, case):
        """None when the case behaved, else a description of the failure."""
        self._connection.send(case)
        if self._connection.poll(self.timeout):
            try:
                return self._connection.recv()
            except EOFError:
                pass
        else:
            self._process.kill()
            self._process.join()
            self._start()
            return f"no answer within {self.timeout:.0f} s (hang)"
        self._process.join()
        code = self._process.exitcode
        self._start()
        return f"the process died (exit code {code}: a crash)"

    def close(self):
        try:
            self._connection.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()


def main(argv=None):
    """Fuzz for a while and report every finding; exit status 1 if there was one."""
    parser = argparse.ArgumentParser(prog="python -m fastem.bench.fuzz",
                                     description=main.__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-cases", type=int, default=None)
    args = parser.parse_args(argv)
    worker = Worker()
    deadline = time.monotonic() + 60.0 * args.minutes
    counts = {"cases": 0, "findings": 0}
    kinds = {}
    try:
        seed = args.seed
        while time.monotonic() < deadline and (args.max_cases is None
                                               or counts["cases"] < args.max_cases):
            case = generate_case(RandomChooser(seed))
            seed += 1
            counts["cases"] += 1
            key = case["kind"] if case["kind"] == "file" else case["method"]
            kinds[key] = kinds.get(key, 0) + 1
            problem = worker.run(case)
            if problem:
                counts["findings"] += 1
                print(f"FINDING (seed {seed - 1}): {problem}\n  case: {case!r}", flush=True)
    finally:
        worker.close()
    print(f"{counts['cases']} cases ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}),"
          f" {counts['findings']} findings, seeds {args.seed}..{seed - 1}")
    return 1 if counts["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
