"""Adversarial inputs for every estimator, run in a separate process so that a crash is a
finding, not the end of the run.

Each case is a plain dict (picklable, printable). Its ``kind`` says what it exercises:

``data``
    An estimator, constructor arguments (now and then an absurd one: the priors of the
    variational models among them), a method and a generated input (any dtype from bool
    to uint64, float16 and complex, NaN/inf/huge/subnormal values, 0-d to 3-d, empty, bad
    ``lengths``).
``moe``
    A :class:`~fastem.MixtureOfExperts` (every expert and gate, expert and gating
    columns) and generated ``X``, ``y``, ``trials`` and ``sample_weight``, each possibly
    damaged (dtype, NaN/inf/huge, negative counts, successes above the trials, the wrong
    shape), through every method.
``sequence``
    Several ``partial_fit`` calls in a row on one estimator: good batches of changing
    sizes and dtypes, and bad ones (NaN, inf, all entries times 1e300, another width,
    bad lengths, y, trials or weights) between them.
``stream``
    ``fit`` on a callable source that raises in the middle of a pass, returns something
    that is not an iterator, or yields other data on a later pass (more or fewer rows,
    other values, another width, other sequence lengths, no blocks, an iterator already
    used up).
``file``
    A model file rewritten by a forger: JSON edits with recomputed checksums, zip header
    edits and truncation, and edits of the model itself (an array cut or extended, one
    NaN, inf, negative or extreme entry, a covariance that is not positive definite, a
    missing array, a changed ``n_features_in_``, ``expert``, ``gating``, columns,
    covariance type or weight prior) for every class and configuration.

:func:`run_case` executes one case and returns what went wrong, if anything. The only
acceptable outcomes of a call are

* a ``ValueError`` or ``TypeError`` raised by fastem (not numpy's ``LinAlgError``, nor a
  numpy broadcast or convergence error that names no argument), which leaves the
  estimator exactly as it was (a deep fingerprint of ``vars(est)``);
* a normal return after which every fitted attribute (each ndarray, float, tuple or
  list attribute whose name ends in ``_``, and ``monitor_.history``) is finite and every
  output is free of NaN: log-likelihoods may be -inf (an impossible row) and information
  criteria +inf, means of a far-away ``x`` may overflow to +-inf, probabilities are
  finite, within [0, 1] and sum to 1 per row, labels are in range. The single fitted
  attribute that may be -inf is ``lower_bound_`` when ``n_iter_ == 0`` (no pass ran,
  scikit-learn's value); fastem has no attribute holding log-probabilities.

In every case the inputs are left unchanged. A streamed fit whose source raised must let
that exception through; one whose passes differ must be refused with a ``ValueError``.
A forged file whose arrays no longer fit together (a cut or extended array, NaN or inf,
a negative or non positive definite covariance, a missing array, an impossible
``n_features_in_``, columns, gate or covariance type) must be refused by ``load``.

:class:`Worker` runs cases in a child process and restarts it after a crash, a hang or
a memory blow-up (resident memory above a cap). Cases are drawn through a small chooser
interface, so the same generator serves hypothesis in the test suite (which shrinks
failures) and a seeded RNG in the long run::

    python -m fastem.bench.fuzz --minutes 30 --seed 0
    python -m fastem.bench.fuzz --replay 1234     # one case, in this process, verbose
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
import zipfile

import numpy as np

from ..components.structures import STRUCTURES
from ..components.structures import names as structure_names

ESTIMATORS = ("GaussianMixture", "EMImputer", "GaussianHMM", "GMMHMM", "CategoricalHMM",
              "PoissonHMM", "MultinomialHMM", "BayesianGaussianMixture",
              "VariationalGaussianHMM", "VariationalCategoricalHMM")
KINDS = ("data", "moe", "sequence", "stream", "file")
METHODS = ("fit", "predict", "predict_proba", "score", "score_samples", "decode", "sample",
           "transform", "partial_fit")
MOE_METHODS = ("fit", "partial_fit", "predict", "predict_proba", "predict_component",
               "gate_proba", "score", "score_samples", "bic", "sample")
EXPERTS = ("gaussian", "poisson", "binomial")
GATES = ("constant", "softmax", "gaussian")
def _diagonal(covariance_type):
    """Whether a covariance type's arrays hold variances (not matrices)."""
    structure = STRUCTURES.get(covariance_type)
    return structure is not None and structure.diagonal


# The structures every Gaussian estimator fits, BayesianGaussianMixture's included.
COVARIANCE_TYPES = structure_names(variational=True)
WEIGHT_PRIORS = ("dirichlet_process", "dirichlet_distribution")
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
_NOT_PD = [[1.0, 2.0], [2.0, 1.0]]
CLASS_ODD_HYPERPARAMETERS = {
    "BayesianGaussianMixture": (
        ("weight_concentration_prior_type", "bogus"), ("weight_concentration_prior", 0.0),
        ("weight_concentration_prior", -1.0), ("weight_concentration_prior", np.nan),
        ("weight_concentration_prior", 1e300), ("weight_concentration_prior", 1e-300),
        ("mean_precision_prior", 0.0), ("mean_precision_prior", -1.0),
        ("mean_precision_prior", np.inf), ("mean_precision_prior", 1e-300),
        ("mean_precision_prior", 1e300), ("mean_prior", np.nan),
        ("mean_prior", [1e300, -1e300]), ("mean_prior", np.ones(7)),
        ("degrees_of_freedom_prior", 0.1), ("degrees_of_freedom_prior", -1.0),
        ("degrees_of_freedom_prior", np.nan), ("degrees_of_freedom_prior", 1e300),
        ("covariance_prior", -1.0), ("covariance_prior", 0.0), ("covariance_prior", np.nan),
        ("covariance_prior", 1e300), ("covariance_prior", 1e-300),
        ("covariance_prior", _NOT_PD), ("covariance_prior", [[-1.0, 0.0], [0.0, -1.0]]),
        ("covariance_prior", [1.0, -1.0]), ("covariance_prior", np.ones(7)),
        ("init_params", "random"), ("init_params", "random_from_data"),
        ("init_params", "k-means++"), ("reg_covar", 0.0), ("acceleration", "squarem"),
        ("max_iter", 0), ("n_init", 2), ("warm_start", True), ("tol", 0.0)),
    "VariationalGaussianHMM": (
        ("startprob_prior", np.ones(7)), ("startprob_prior", -1.0), ("startprob_prior", 0.0),
        ("startprob_prior", np.nan), ("transmat_prior", np.ones((2, 3))),
        ("transmat_prior", -1.0), ("transmat_prior", 1e300), ("transmat_prior", 1e-300),
        ("means_prior", np.nan), ("means_prior", 1e300), ("means_prior", np.ones((7, 7))),
        ("beta_prior", 0.0), ("beta_prior", -1.0), ("beta_prior", np.inf),
        ("beta_prior", 1e-300), ("dof_prior", 0.1), ("dof_prior", -1.0),
        ("dof_prior", np.nan), ("dof_prior", 1e300), ("scale_prior", -1.0),
        ("scale_prior", 0.0), ("scale_prior", np.nan), ("scale_prior", _NOT_PD),
        ("scale_prior", 1e300), ("scale_prior", 1e-300), ("covariance_type", "bogus"),
        ("algorithm", "map"), ("params", "x"), ("init_params", ""), ("n_init", 2),
        ("acceleration", "squarem"), ("n_iter", 0), ("implementation", "scaling"),
        ("tol", np.nan)),
    "VariationalCategoricalHMM": (
        ("emissionprob_prior", -1.0), ("emissionprob_prior", 0.0),
        ("emissionprob_prior", np.nan), ("emissionprob_prior", np.ones((2, 9))),
        ("emissionprob_prior", 1e300), ("n_features", 10**9), ("n_features", 2),
        ("n_features", 1), ("startprob_prior", np.ones(7)), ("transmat_prior", 0.0),
        ("transmat_prior", 1e-300), ("n_iter", 0), ("acceleration", "squarem"),
        ("init_params", ""), ("n_init", 2)),
    "CategoricalHMM": (("n_features", 10**9), ("n_features", 2), ("emissionprob_prior", -1.0)),
}
MOE_ODD_HYPERPARAMETERS = (
    ("alpha", -1.0), ("alpha", np.nan), ("alpha", 1e300), ("alpha", 1e-300),
    ("reg_covar", 0.0), ("reg_covar", -1.0), ("reg_covar", np.inf), ("reg_covar", 1e300),
    ("n_init", 0), ("n_init", 2), ("init_params", "kmeans"),
    ("init_params", "random_from_data"), ("init_params", "bogus"),
    ("acceleration", "squarem"), ("acceleration", "bogus"), ("tol", np.nan), ("tol", 0.0),
    ("max_iter", 0), ("max_iter", -1), ("fit_intercept", False), ("fit_intercept", "yes"),
    ("learning_decay", 0.2), ("learning_decay", np.nan), ("learning_offset", -1.0),
    ("n_components", 0), ("n_components", 2.5), ("n_components", 10**9),
    ("warm_start", True), ("expert", "gamma"), ("gating", "tree"),
    ("random_state", "seed"), ("n_threads", 0), ("callback", "not callable"),
    ("verbose", -1),
)
# Damage to y, trials and sample_weight; "none" (the good array) is drawn most often.
TARGET_DAMAGE = ("none", "none", "none", "none", "dtype", "nan", "inf", "-inf", "huge",
                 "negative", "fraction", "above_trials", "short", "long", "two_columns",
                 "3d", "0d", "empty", "list", "zeros")
ACCEPTED_ERRORS = (ValueError, TypeError)


class SourceError(Exception):
    """Raised by a fuzzed stream source in the middle of a pass (a failing disk, say)."""


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
def _cast(base, dtype):
    """``base`` (float64) as ``dtype``, saturating where the type is narrower."""
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "str":
            return base.astype(str)
        if dtype == "object":
            return np.array(base, dtype=object)
        if dtype.startswith(("timedelta", "datetime")):
            return np.zeros(base.shape, dtype=dtype)
        if dtype == "uint64":
            return np.clip(np.nan_to_num(base), 0, 2.0**63).astype(np.uint64)
        if dtype in ("int8", "uint8"):
            return np.clip(np.nan_to_num(base), 0, 100).astype(dtype)
        if dtype == "int64":
            return np.clip(np.nan_to_num(base), -2.0**62, 2.0**62).astype(np.int64)
        return base.astype(dtype)


def _values(shape, dtype, scale, special, seed):
    rng = np.random.RandomState(seed)
    base = np.asarray(rng.normal(size=shape) * scale)
    if dtype in ("bool", "int8", "uint8", "int64", "uint64"):
        base = np.abs(np.round(rng.poisson(3, size=shape) * max(scale, 1.0) / 3.0))
    array = _cast(base, dtype)
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


def _kwargs(choose, name):
    """Constructor arguments of a data, stream or sequence case (before any odd one)."""
    kwargs = {"n_components": choose.integer(1, 3), "random_state": 0}
    if name.endswith("HMM"):
        kwargs["n_iter"] = 5
    elif name in ("GaussianMixture", "BayesianGaussianMixture"):
        kwargs["max_iter"] = 5
    if name in ("BayesianGaussianMixture", "VariationalGaussianHMM"):
        kwargs["covariance_type"] = choose.choose(COVARIANCE_TYPES)
    if name == "BayesianGaussianMixture":
        kwargs["weight_concentration_prior_type"] = choose.choose(WEIGHT_PRIORS)
    return kwargs


def _odd(choose, name):
    """One absurd constructor argument, the class's own half of the time."""
    own = CLASS_ODD_HYPERPARAMETERS.get(name, ())
    if own and choose.integer(0, 1):
        return choose.choose(own)
    return choose.choose(ODD_HYPERPARAMETERS)


def generate_case(choose, kinds=KINDS):
    """One case (a plain, picklable dict) of one of ``kinds``."""
    weights = {"data": 7, "moe": 6, "sequence": 3, "stream": 3, "file": 3}
    pool = tuple(kind for kind in kinds for _ in range(weights[kind]))
    kind = choose.choose(pool)
    return {"data": _data_case, "moe": _moe_case, "sequence": _sequence_case,
            "stream": _stream_case, "file": _file_case}[kind](choose)


def _data_case(choose):
    name = choose.choose(ESTIMATORS)
    kwargs = _kwargs(choose, name)
    if choose.integer(0, 2) == 0:
        key, value = _odd(choose, name)
        kwargs[key] = value
    layout = choose.choose(("2d", "2d", "2d", "2d", "1d", "0d", "3d", "empty", "no_features"))
    n_rows = choose.integer(1, 40)
    n_features = 1 if "Categorical" in name else choose.integer(1, 4)
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


def _target_spec(choose, allow_damage=True):
    damage = choose.choose(TARGET_DAMAGE) if allow_damage else "none"
    spec = {"damage": damage, "seed": choose.integer(0, 10**6)}
    if damage == "dtype":
        spec["dtype"] = choose.choose(DTYPES)
    return spec


def _columns(choose, n_features):
    return choose.choose((None, None, None, [0], [n_features - 1], [0, 0],
                          list(range(n_features))[::-1], [n_features], [-1], [], [0.5],
                          "a", [[0]]))


def _moe_case(choose):
    expert, gating = choose.choose(EXPERTS), choose.choose(GATES)
    n_features = choose.integer(1, 3)
    kwargs = {"n_components": choose.integer(1, 3), "expert": expert, "gating": gating,
              "random_state": 0, "max_iter": 20}
    if choose.integer(0, 2) == 0:
        kwargs["expert_columns"] = _columns(choose, n_features)
    if choose.integer(0, 2) == 0:
        kwargs["gating_columns"] = _columns(choose, n_features)
    if choose.integer(0, 2) == 0:
        key, value = choose.choose(MOE_ODD_HYPERPARAMETERS)
        kwargs[key] = value
    layout = choose.choose(("2d",) * 8 + ("1d", "0d", "3d", "empty", "no_features"))
    n_rows = choose.integer(1, 40)
    shape = {"2d": (n_rows, n_features), "1d": (n_rows,), "0d": (), "3d": (n_rows, 2, 1),
             "empty": (0, n_features), "no_features": (n_rows, 0)}[layout]
    float_only = choose.integer(0, 2) > 0  # mostly valid X, so that y and the rest matter
    data = {"shape": shape, "dtype": "float64" if float_only else choose.choose(DTYPES),
            "scale": 1.0 if float_only and choose.integer(0, 1) else choose.choose(SCALES),
            "special": choose.choose(SPECIALS) if choose.integer(0, 1) else "none",
            "seed": choose.integer(0, 10**6)}
    method = choose.choose(MOE_METHODS)
    return {"kind": "moe", "estimator": "MixtureOfExperts", "kwargs": kwargs,
            "method": method, "data": data,
            "outputs": 2 if expert == "gaussian" and choose.integer(0, 3) == 0 else 1,
            "y": _target_spec(choose),
            "trials": (_target_spec(choose) if expert == "binomial" and choose.integer(0, 2)
                       else None if choose.integer(0, 9) else _target_spec(choose, False)),
            "weights": _target_spec(choose) if choose.integer(0, 2) == 0 else None,
            "fit_on": choose.choose(("good", "same"))}


SEQUENCE_ESTIMATORS = ("GaussianMixture", "GaussianHMM", "GMMHMM", "CategoricalHMM",
                       "PoissonHMM", "MultinomialHMM", "MixtureOfExperts",
                       "MixtureOfExperts")
BATCHES = ("good", "good", "good", "rows", "refit", "dtype", "features", "nan", "inf",
           "huge_entry", "huge_all", "tiny_all", "empty", "one_d", "str", "lengths", "y",
           "weights", "trials")
# Batches that must be accepted once the estimator has parameters of their width
# ("refit": ``fit`` on a good batch, between the partial_fit calls).
GOOD_BATCHES = ("good", "rows", "refit")
BATCH_DTYPES = ("float32", "int64", "float16", "uint8", "bool", "int8", "float64")


def _sequence_case(choose):
    name = choose.choose(SEQUENCE_ESTIMATORS)
    if name == "MixtureOfExperts":
        kwargs = {"n_components": choose.integer(1, 3), "expert": choose.choose(EXPERTS),
                  "gating": choose.choose(GATES), "random_state": 0, "max_iter": 20}
        if choose.integer(0, 4) == 0:
            kwargs["gating_columns"] = [0]
    else:
        kwargs = _kwargs(choose, name)
    width = 1 if name == "CategoricalHMM" else choose.integer(1, 3)
    batches = []
    for _ in range(choose.integer(2, 5)):
        batch = {"kind": choose.choose(BATCHES), "rows": choose.integer(10, 40),
                 "seed": choose.integer(0, 10**6)}
        if batch["kind"] == "dtype":
            batch["dtype"] = choose.choose(BATCH_DTYPES)
        batches.append(batch)
    batches.append({"kind": "good", "rows": choose.integer(10, 40),
                    "seed": choose.integer(0, 10**6)})
    return {"kind": "sequence", "estimator": name, "kwargs": kwargs, "width": width,
            "outputs": 2 if kwargs.get("expert") == "gaussian" and choose.integer(0, 3) == 0
            else 1, "batches": batches}


STREAM_ESTIMATORS = ("GaussianMixture", "BayesianGaussianMixture", "GaussianHMM", "GMMHMM",
                     "PoissonHMM", "CategoricalHMM", "VariationalGaussianHMM",
                     "VariationalCategoricalHMM")
STREAM_FAULTS = ("none", "raise", "raise_value", "not_iterable", "bad_block", "rows_more",
                 "rows_fewer", "values_first", "values_tail", "values_last", "features",
                 "lengths", "empty", "same_iterator")
# Faults after which the passes no longer see the same data: a ValueError is expected.
STREAM_CHANGES = ("rows_more", "rows_fewer", "values_first", "values_tail", "values_last",
                  "features", "lengths", "empty", "same_iterator")


def _stream_case(choose):
    name = choose.choose(STREAM_ESTIMATORS)
    kwargs = _kwargs(choose, name)
    if "Categorical" in name:
        kwargs["n_features"] = 3  # a streamed CategoricalHMM needs its alphabet
    fault = choose.choose(STREAM_FAULTS)
    if fault == "lengths" and not name.endswith("HMM"):
        fault = "values_first"
    return {"kind": "stream", "estimator": name, "kwargs": kwargs, "fault": fault,
            "at_pass": choose.integer(0, 3), "at_block": choose.integer(0, 2),
            "n_blocks": choose.integer(1, 4), "prefit": bool(choose.integer(0, 1)),
            "bad_block": choose.choose(("nan", "one_d", "str", "not_pair"))}


MOE_FILE_CONFIGS = tuple(
    [{"kwargs": {"expert": e, "gating": g}} for e in EXPERTS for g in GATES]
    + [{"kwargs": {"expert": "gaussian", "gating": "softmax", "gating_columns": [0],
                   "expert_columns": [1]}},
       {"kwargs": {"expert": "gaussian", "gating": "gaussian"}, "outputs": 2},
       {"kwargs": {"expert": "gaussian", "gating": "constant", "fit_intercept": False},
        "outputs": 2},
       {"kwargs": {"expert": "poisson", "gating": "gaussian", "gating_columns": [1]}},
       {"kwargs": {"expert": "binomial", "gating": "softmax", "expert_columns": [0, 1],
                   "gating_columns": [1]}}])
FILE_CONFIGS = {
    "MixtureOfExperts": MOE_FILE_CONFIGS,
    "BayesianGaussianMixture": tuple(
        {"kwargs": {"covariance_type": c, "weight_concentration_prior_type": w}}
        for c in COVARIANCE_TYPES for w in WEIGHT_PRIORS),
    "VariationalGaussianHMM": tuple({"kwargs": {"covariance_type": c}}
                                    for c in COVARIANCE_TYPES),
    "VariationalCategoricalHMM": ({"kwargs": {}},),
}
FILE_ESTIMATORS = ESTIMATORS + ("MixtureOfExperts",) * 3


def _file_case(choose):
    name = choose.choose(FILE_ESTIMATORS)
    configs = FILE_CONFIGS.get(name)
    mutation = choose.choose(MODEL_MUTATIONS if configs and choose.integer(0, 3)
                             else FILE_MUTATIONS + MODEL_MUTATIONS)
    return {"kind": "file", "estimator": name,
            "config": choose.choose(configs) if configs else {},
            "mutation": mutation, "seed": choose.integer(0, 10**6)}


# -- checking ----------------------------------------------------------------------------
def _fingerprint(value):
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ("object", value.shape, repr(value.tolist()))
        return (value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).hexdigest())
    if isinstance(value, (list, tuple)):
        return tuple(_fingerprint(item) for item in value)
    return repr(value)


def _state(value, depth=0):
    """A deep fingerprint of a value (an estimator's ``vars``, its monitor, its online
    state, typed parameters): equal fingerprints mean nothing was changed in place."""
    if depth > 8:
        return type(value).__name__
    if isinstance(value, np.ndarray):
        return _fingerprint(value)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return (type(value).__name__, repr(value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _state(v, depth + 1))
                                     for k, v in value.items())))
    if isinstance(value, (list, tuple, collections.deque)):
        return (type(value).__name__, tuple(_state(item, depth + 1) for item in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, _state(getattr(value, f.name, None),
                                                            depth + 1))
                                            for f in dataclasses.fields(value)))
    if callable(value) or isinstance(value, type):
        return ("callable", repr(value))
    if hasattr(value, "__dict__"):
        return (type(value).__name__, _state(vars(value), depth + 1))
    slots = getattr(type(value), "__slots__", None)
    if slots:
        return (type(value).__name__, tuple((s, _state(getattr(value, s, None), depth + 1))
                                            for s in slots))
    return (type(value).__name__, repr(value))


def estimator_state(model):
    """The deep fingerprint of ``vars(model)``."""
    return _state(vars(model))


def _state_difference(before, after):
    """Names of the top-level attributes whose fingerprints differ."""
    old, new = dict(before[1]), dict(after[1])
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))


def _float_arrays(value):
    """The float arrays inside a fitted attribute's value."""
    if isinstance(value, (bool, np.bool_)):
        return
    if isinstance(value, (float, np.floating)):
        yield np.asarray(value, dtype=np.float64)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            yield value
        elif value.dtype.hasobject:
            for item in value.reshape(-1)[:1000]:
                yield from _float_arrays(item)
    elif isinstance(value, (list, tuple, collections.deque)):
        for item in value:
            yield from _float_arrays(item)
    elif hasattr(value, "history"):  # ConvergenceMonitor
        yield from _float_arrays(list(value.history))


def bad_attributes(model):
    """What is not finite among the fitted attributes of ``model``, or None.

    Every attribute in ``vars(model)`` whose name ends in ``_`` (not ``__``) is
    checked: ndarrays, floats, tuples and lists of them, and a convergence monitor's
    history. The one exception is ``lower_bound_ == -inf`` with ``n_iter_ == 0``
    (no pass ran: scikit-learn's value)."""
    for name, value in vars(model).items():
        if not name.endswith("_") or name.endswith("__"):
            continue
        if (name == "lower_bound_" and getattr(model, "n_iter_", None) == 0
                and value == -np.inf):
            continue
        if hasattr(value, "get_params") and hasattr(value, "__dict__"):
            problem = bad_attributes(value)  # a fitted estimator inside (EMImputer's)
            if problem:
                return f"{name}: {problem}"
            continue
        for array in _float_arrays(value):
            if array.size and not np.isfinite(array).all():
                kinds = [label for label, test in (("NaN", np.isnan), ("+inf", np.isposinf),
                                                   ("-inf", np.isneginf))
                         if np.any(test(array.real if array.dtype.kind == "c" else array))]
                return f"fitted attribute {name} holds {'/'.join(kinds)}"
        problem = _outside_domain(model, name, value)
        if problem:
            return f"fitted attribute {name} {problem}"
    return None


_DISTRIBUTIONS = ("weights_", "startprob_", "transmat_", "emissionprob_")
_COVARIANCES = ("covariances_", "covars_", "_covars_", "gate_covariances_")


def _outside_domain(model, name, value):
    """What is wrong with a fitted probability table or covariance, or None: rows of
    probabilities in [0, 1] summing to 1, covariances positive definite (variances
    positive for diagonal and spherical ones)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or not value.size:
        return None
    if name in _DISTRIBUTIONS:
        if value.min() < -1e-12 or value.max() > 1 + 1e-9:
            return "holds a probability outside [0, 1]"
        if np.abs(value.sum(axis=-1) - 1.0).max() > 1e-6:
            return "holds probabilities that do not sum to 1"
    elif name in _COVARIANCES:
        square = value.ndim >= 2 and value.shape[-1] == value.shape[-2]
        if _diagonal(getattr(model, "covariance_type", None)) or not square:
            if value.min() <= 0:
                return "holds a variance that is not positive"
        else:
            try:
                np.linalg.cholesky(value)
            except np.linalg.LinAlgError:
                return "holds a covariance that is not positive definite"
    return None


def _bad_output(value, what, kind="loglik", n_components=None):
    """A description of what is wrong with an output, or None.

    ``kind``: ``"proba"`` (finite, in [0, 1], rows summing to 1), ``"loglik"`` (no NaN,
    no +inf), ``"criterion"`` (no NaN, no -inf), ``"finite"``, ``"mean"`` (no NaN;
    a far-away x may overflow), ``"labels"`` (integers in [0, n_components)), or a
    tuple of kinds for a tuple output."""
    if isinstance(kind, tuple):
        if not isinstance(value, tuple) or len(value) != len(kind):
            return f"{what} returned {type(value).__name__}, expected a {len(kind)}-tuple"
        for item, item_kind in zip(value, kind, strict=True):
            problem = _bad_output(item, what, item_kind, n_components)
            if problem:
                return problem
        return None
    if isinstance(value, tuple):  # (an HMM's score_samples: log-likelihood, posteriors)
        kinds = ("loglik", "proba") if len(value) == 2 else ("loglik",) * len(value)
        return _bad_output(value, what, kinds, n_components)
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        return f"{what} returned {array.dtype} values"
    if kind == "labels":
        if array.dtype.kind not in "biu":
            return f"{what} returned labels of dtype {array.dtype}"
        if n_components is not None and array.size and (array.min() < 0
                                                        or array.max() >= n_components):
            return f"{what} returned a label outside [0, {n_components})"
        return None
    if array.dtype.kind not in "fc":
        return None
    if np.isnan(array).any():
        return f"{what} returned NaN"
    if kind in ("loglik", "finite") and np.isposinf(array).any():
        return f"{what} returned +inf"
    if kind in ("criterion", "finite", "proba") and np.isneginf(array).any():
        return f"{what} returned -inf"
    if kind == "proba":
        if np.isinf(array).any():
            return f"{what} returned +inf"
        if array.size and (array.min() < -1e-12 or array.max() > 1 + 1e-12):
            return f"{what} returned a probability outside [0, 1]"
        if array.ndim == 2 and array.shape[0] and array.shape[1]:
            if np.abs(array.sum(axis=1) - 1.0).max() > 1e-6:
                return f"{what} returned probabilities whose rows do not sum to 1"
    return None


FOREIGN_MESSAGES = ("could not be broadcast", "could not broadcast", "not aligned",
                    "matmul:", "cannot reshape array", "setting an array element",
                    "inhomogeneous shape", "did not converge", "Matrix is not positive",
                    "zero-size array", "math domain error", "must not contain infs or NaNs",
                    "ingular matrix", "truth value of an array")
_FOREIGN_PATHS = (os.sep + "numpy" + os.sep, os.sep + "scipy" + os.sep,
                  os.sep + "numba" + os.sep)


def foreign_error(error):
    """Why an accepted exception type is still a finding (numpy's LinAlgError, an error
    raised inside numpy or SciPy, a numpy message naming no argument), or None."""
    if isinstance(error, np.linalg.LinAlgError):
        return f"a raw numpy LinAlgError escaped: {error}"
    text = str(error)
    for message in FOREIGN_MESSAGES:
        if message in text:
            return f"a numpy error naming no argument escaped: {type(error).__name__}: {text}"
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is not None:
        filename = frame.tb_frame.f_code.co_filename
        if any(path in filename for path in _FOREIGN_PATHS):
            return (f"{type(error).__name__} raised inside {os.path.basename(filename)} "
                    f"escaped: {text}")
    return None


def _unexpected():
    return "unexpected exception:\n" + traceback.format_exc(limit=-6)


# -- running: data cases -------------------------------------------------------------------
def _good_data(name, n_features=2, n_rows=60, seed=1):
    rng = np.random.RandomState(seed)
    if "Categorical" in name:
        X = rng.randint(3, size=(n_rows, 1))
        X[:3, 0] = [0, 1, 2]  # every symbol of the alphabet appears
        return X
    if name in ("PoissonHMM", "MultinomialHMM"):
        return rng.poisson(3, size=(n_rows, n_features))
    X = rng.normal(size=(n_rows, n_features))
    X[:n_rows // 2] += 4.0
    return X


def _label_count(model):
    if hasattr(model, "n_components") and isinstance(model.n_components, int):
        return model.n_components
    return None


OUTPUT_KINDS = {"predict": "labels", "predict_proba": "proba", "score": "loglik",
                "score_samples": "loglik", "decode": ("loglik", "labels"),
                "sample": ("finite", "labels"), "transform": "finite",
                "fit_predict": "labels"}


def _effective_method(model, method):
    """The method a case's name maps to for this estimator."""
    import fastem

    if isinstance(model, fastem.EMImputer):
        return "fit" if method in ("fit", "partial_fit") else "transform"
    if method == "partial_fit" and not hasattr(model, "partial_fit"):
        return "fit"  # the variational models have no partial_fit (as upstream)
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


def _fit(model, X, lengths=None):
    import fastem

    if isinstance(model, fastem.GaussianMixture | fastem.EMImputer):
        return model.fit(X)
    return model.fit(X, lengths)


def _probe(model, name, where):
    """Score and posteriors of good data after a fit: outputs must be clean."""
    for probe in ("score", "predict_proba", "predict"):
        try:
            good = _good_data(name, getattr(model, "n_features_in_", 2))
            called, result = _call(model, probe, good, None, {})
        except ACCEPTED_ERRORS as error:
            problem = foreign_error(error)
            if problem:
                return f"{probe} {where}: {problem}"
            continue
        problem = _bad_output(result, f"{called} {where}", OUTPUT_KINDS.get(called, "loglik"),
                              _label_count(model))
        if problem:
            return problem
    return None


def run_case(case):
    """Execute one case; return None when the outcome is acceptable, else a description."""
    if case["kind"] == "abort":  # the harness's self-test: a crash
        os.abort()
    runner = {"data": _run_data_case, "moe": _run_moe_case, "sequence": _run_sequence_case,
              "stream": _run_stream_case, "file": _run_file_case}[case["kind"]]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return runner(case)
        except ACCEPTED_ERRORS as error:
            return foreign_error(error)
        except Exception:  # noqa: BLE001 - every other exception is a finding
            return _unexpected()


def _run_data_case(case):
    import fastem

    spec = case["data"]
    X = _values(tuple(spec["shape"]), spec["dtype"], spec["scale"], spec["special"],
                spec["seed"])
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
            problem = bad_attributes(model)
            if problem:
                return f"{method} returned normally, but {problem}"
        problem = _probe(model, case["estimator"], "after fit")
        if problem:
            return problem
    else:
        fit_data = X if case["fit_on"] == "same" else _good_data(case["estimator"])
        try:
            _fit(model, fit_data, lengths if case["fit_on"] == "same" else None)
        except ACCEPTED_ERRORS as error:
            problem = foreign_error(error)
            if problem or case["fit_on"] == "same":
                return problem
            model = _make({**case, "kwargs": {"n_components": 2, "random_state": 0}})
            model.fit(fit_data)
        problem = bad_attributes(model)
        if problem:
            return f"fit returned normally, but {problem}"
        called, result = _call(model, method, X, lengths, case)
        problem = _bad_output(result, called, OUTPUT_KINDS.get(called, "loglik"),
                              _label_count(model))
        if problem:
            return problem
    if (_fingerprint(X), _fingerprint(lengths)) != before:
        return "the input was modified"
    return None


# -- running: mixtures of experts ------------------------------------------------------------
def _moe_good(expert, n_rows, n_features, outputs=1, seed=1):
    """(X, y, trials) that a mixture of two experts fits well."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, n_features))
    regime = np.arange(n_rows) % 2 == 0
    slope = np.where(regime, 1.5, -1.0)
    if expert == "gaussian":
        y = np.where(regime, 2.0, -2.0) + slope * X[:, 0] + 0.3 * rng.normal(size=n_rows)
        if outputs == 2:
            y = np.column_stack([y, -y + 0.1 * rng.normal(size=n_rows)])
        return X, y, None
    if expert == "poisson":
        return X, rng.poisson(np.exp(np.clip(0.5 + 0.5 * slope * X[:, 0], -5, 5))), None
    trials = rng.randint(1, 10, size=n_rows)
    p = 1.0 / (1.0 + np.exp(-slope * X[:, 0]))
    return X, rng.binomial(trials, p), trials


def _damaged(base, spec, trials=None):
    """``base`` (an array of one entry per row, or rows of outputs) as ``spec`` says."""
    if spec is None:
        return None
    damage = spec["damage"]
    rng = np.random.RandomState(spec["seed"])
    array = np.array(base, dtype=np.float64)
    n = array.shape[0]
    where = rng.randint(max(array.size, 1))
    flat = array.reshape(-1)
    if damage == "dtype":
        return _cast(array, spec["dtype"])
    if damage in ("nan", "inf", "-inf", "huge", "negative", "fraction") and array.size:
        flat[where] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e300,
                       "negative": -3.0, "fraction": flat[where] + 0.5}[damage]
    elif damage == "above_trials" and array.size:
        flat[where] = (trials.reshape(-1)[where % n] if trials is not None else 1.0) + 1.0
    elif damage == "short":
        return array[:-1]
    elif damage == "long":
        return np.concatenate([array, array[:1]])
    elif damage == "two_columns":
        columns = array.reshape(n, -1) if array.size else np.zeros((n, 1))
        return np.column_stack([columns, columns])
    elif damage == "3d":
        return array.reshape((n, -1, 1)) if array.size else np.zeros((n, 1, 1))
    elif damage == "0d":
        return np.asarray(flat[0] if array.size else 0.0)
    elif damage == "empty":
        return array[:0]
    elif damage == "list":
        return array.tolist()
    elif damage == "zeros":
        return np.zeros_like(array)
    return array


def _moe_inputs(case, X):
    """(y, trials, sample_weight) for the rows of X, damaged as the case says."""
    n_rows = X.shape[0] if X.ndim else 1
    expert = case["kwargs"].get("expert", "gaussian")
    expert = expert if expert in EXPERTS else "gaussian"
    _, y, trials = _moe_good(expert, n_rows, 1, case["outputs"], case["y"]["seed"])
    trials_spec = case["trials"]
    if trials is not None and trials_spec is None:
        y = (y > trials / 2).astype(np.float64)  # successes out of one trial
    if trials is None and trials_spec is not None:
        trials = np.full(n_rows, 3)
    given_trials = _damaged(trials, trials_spec) if trials_spec is not None else None
    weights = None
    if case["weights"] is not None:
        weights = _damaged(np.random.RandomState(case["weights"]["seed"]).uniform(
            0.5, 2.0, size=n_rows), case["weights"])
    return _damaged(y, case["y"], trials), given_trials, weights


def _moe_call(model, method, X, y, trials, weights):
    if method in ("fit", "partial_fit"):
        return getattr(model, method)(X, y, sample_weight=weights, trials=trials)
    if method in ("predict_proba", "predict_component", "score_samples", "bic"):
        return getattr(model, method)(X, y, trials)
    if method == "score":
        return model.score(X, y, sample_weight=weights, trials=trials)
    if method == "gate_proba":
        return model.gate_proba(X)
    if method == "sample":
        return model.sample(X, trials, random_state=0)
    return model.predict(X, trials)


MOE_OUTPUT_KINDS = {"predict": "mean", "predict_proba": "proba", "gate_proba": "proba",
                    "predict_component": "labels", "score": "loglik",
                    "score_samples": "loglik", "bic": "criterion", "sample": ("mean", "labels")}


def _moe_probe(model, outputs, where):
    """Every inference method on good data of the fitted width: outputs must be clean."""
    X, y, trials = _moe_good(model.expert, 30, model.n_features_in_, model.n_outputs_,
                             seed=7)
    for method in MOE_OUTPUT_KINDS:
        try:
            result = _moe_call(model, method, X, y, trials, None)
        except ACCEPTED_ERRORS as error:
            problem = foreign_error(error)
            if problem:
                return f"{method} {where}: {problem}"
            continue
        problem = _bad_output(result, f"{method} {where}", MOE_OUTPUT_KINDS[method],
                              model.n_components)
        if problem:
            return problem
    return None


def _run_moe_case(case):
    import fastem

    spec = case["data"]
    X = _values(tuple(spec["shape"]), spec["dtype"], spec["scale"], spec["special"],
                spec["seed"])
    y, trials, weights = _moe_inputs(case, X)
    inputs = (X, y, trials, weights)
    before = _fingerprint(inputs)
    model = fastem.MixtureOfExperts(**case["kwargs"])
    method = case["method"]
    if method in ("fit", "partial_fit"):
        for _ in range(1 if method == "fit" else 2):
            _moe_call(model, method, X, y, trials, weights)
            problem = bad_attributes(model)
            if problem:
                return f"{method} returned normally, but {problem}"
        problem = _moe_probe(model, case["outputs"], "after fit")
        if problem:
            return problem
    else:
        expert = model.expert if model.expert in EXPERTS else "gaussian"
        width = X.shape[1] if X.ndim == 2 and X.shape[1] else 2
        good = _moe_good(expert, 60, width, case["outputs"])
        fitted = (X, y, trials, weights) if case["fit_on"] == "same" else good + (None,)
        try:
            _moe_call(model, "fit", *fitted)
        except ACCEPTED_ERRORS as error:
            problem = foreign_error(error)
            if problem or case["fit_on"] == "same":
                return problem and f"fit: {problem}"
            model = fastem.MixtureOfExperts(2, expert=expert,
                                            gating=case["kwargs"]["gating"]
                                            if case["kwargs"]["gating"] in GATES
                                            else "constant", random_state=0, max_iter=20)
            _moe_call(model, "fit", *good, None)
        problem = bad_attributes(model)
        if problem:
            return f"fit returned normally, but {problem}"
        result = _moe_call(model, method, X, y, trials, weights)
        problem = _bad_output(result, method, MOE_OUTPUT_KINDS[method], model.n_components)
        if problem:
            return problem
    if _fingerprint(inputs) != before:
        return "an input was modified"
    return None


# -- running: partial_fit sequences --------------------------------------------------------
def _batch(case, spec):
    """(args, kwargs) of one partial_fit call of a sequence."""
    name, width, kind = case["estimator"], case["width"], spec["kind"]
    rng = np.random.RandomState(spec["seed"])
    rows = spec["rows"] if kind != "rows" else rng.randint(5, 61)
    kwargs = {}
    if name == "MixtureOfExperts":
        expert = case["kwargs"]["expert"]
        X, y, trials = _moe_good(expert, rows, width + (kind == "features"),
                                 case["outputs"], spec["seed"])
        if trials is not None:
            kwargs["trials"] = trials
    else:
        X = _good_data(name, width + (kind == "features" and "Categorical" not in name),
                       rows, spec["seed"])
        y = None
        if kind == "features" and "Categorical" in name:
            X = np.column_stack([X, X])
    X = X.astype(np.float64)
    if kind == "dtype":
        X = _cast(X, spec["dtype"])
    elif kind in ("nan", "inf", "huge_entry"):
        X[rng.randint(rows), rng.randint(X.shape[1])] = {"nan": np.nan, "inf": np.inf,
                                                          "huge_entry": 1e300}[kind]
    elif kind == "huge_all":
        X = X * 1e300
    elif kind == "tiny_all":
        X = X * 1e-300
    elif kind == "empty":
        X = X[:0]
        y = None if y is None else y[:0]
        kwargs = {key: value[:0] for key, value in kwargs.items()}
    elif kind == "one_d":
        X = X[:, 0]
    elif kind == "str":
        X = X.astype(str)
    elif kind == "y" and y is not None:
        y = _damaged(y, {"damage": rng.choice(["nan", "inf", "huge", "negative", "short",
                                               "two_columns", "fraction"]),
                         "seed": spec["seed"]}, kwargs.get("trials"))
    elif kind == "trials" and "trials" in kwargs:
        kwargs["trials"] = _damaged(kwargs["trials"], {
            "damage": rng.choice(["nan", "inf", "huge", "negative", "short", "zeros"]),
            "seed": spec["seed"]})
    elif kind == "weights":
        n_weights = rows if name in ("GaussianMixture", "MixtureOfExperts") else 2
        kwargs["sample_weight"] = _damaged(np.ones(n_weights), {
            "damage": rng.choice(["nan", "inf", "huge", "negative", "short", "zeros"]),
            "seed": spec["seed"]})
    if name == "MixtureOfExperts":
        return (X, y), kwargs
    if name.endswith("HMM"):
        n = X.shape[0] if X.ndim else 1
        lengths = [n // 2, n - n // 2] if n >= 2 else None
        if kind == "lengths":
            lengths = [[n, 1], [0, n], [n + 5], [-1, n + 1], [1.5, n - 1.5]][rng.randint(5)]
        return (X, lengths), kwargs
    return (X,), kwargs


def _must_succeed(model, case, spec, first_accepted):
    """Whether this batch is one the estimator must accept now: a good batch, when the
    estimator is new, or was started by a good batch and still has the good batches'
    width (an odd first batch, of another width, y of two columns, booleans, may fix a
    model that later good batches do not fit; partial_fit after fit may start afresh on
    another width)."""
    if spec["kind"] == "refit":  # (a refit keeps a CategoricalHMM's alphabet, as hmmlearn)
        return first_accepted in (None,) + GOOD_BATCHES or "Categorical" not in case["estimator"]
    return (spec["kind"] in GOOD_BATCHES and first_accepted in (None,) + GOOD_BATCHES
            and getattr(model, "n_features_in_", case["width"]) == case["width"]
            and getattr(model, "n_outputs_", case["outputs"]) == case["outputs"])


def _run_sequence_case(case):
    model = _make(case)
    first_accepted = None
    for index, spec in enumerate(case["batches"]):
        args, kwargs = _batch(case, spec)
        inputs = _fingerprint((args, kwargs))
        before = estimator_state(model)
        must = _must_succeed(model, case, spec, first_accepted)
        method = "fit" if spec["kind"] == "refit" else "partial_fit"
        where = f"{method} batch {index} ({spec['kind']})"
        try:
            getattr(model, method)(*args, **kwargs)
        except ACCEPTED_ERRORS as error:
            problem = foreign_error(error)
            if problem:
                return f"{where}: {problem}"
            after = estimator_state(model)
            if after != before:
                return (f"{where} was refused ({type(error).__name__}: {error}) but changed "
                        f"the estimator: {', '.join(_state_difference(before, after))}")
            if must:
                return (f"{where}, a good batch, was refused after the batches before it: "
                        f"{type(error).__name__}: {error}")
        else:
            first_accepted = "refit" if method == "fit" else first_accepted or spec["kind"]
            problem = bad_attributes(model)
            if problem:
                return f"{where} returned normally, but {problem}"
        if _fingerprint((args, kwargs)) != inputs:
            return f"{where} modified its input"
    if case["estimator"] == "MixtureOfExperts":
        return _moe_probe(model, case["outputs"], "after the partial_fit sequence")
    return _probe(model, case["estimator"], "after the partial_fit sequence")


# -- running: streamed fits ------------------------------------------------------------------
class _Source:
    """A callable block source that misbehaves as a stream case says."""

    def __init__(self, case, blocks):
        self.case, self.blocks = case, blocks
        self.calls, self.fired, self._used = 0, False, None

    def __call__(self):
        case, number = self.case, self.calls
        self.calls += 1
        fault, at = case["fault"], case["at_pass"]
        if fault == "same_iterator":  # a generator made once: later passes see nothing
            if self._used is None:
                self._used = iter(list(self.blocks))
            elif number >= 1:
                self.fired = True
            return self._used
        if number == at and fault == "not_iterable":
            self.fired = True
            return 42
        if number == at and fault == "empty":
            self.fired = True
            return iter(())
        return self._pass(number)

    def _pass(self, number):
        case = self.case
        fault, active = case["fault"], number == case["at_pass"]
        last = len(self.blocks) - 1
        at_block = min(case["at_block"], last)
        for index, block in enumerate(self.blocks):
            if active and index == at_block and fault in ("raise", "raise_value", "bad_block"):
                self.fired = True
                if fault == "raise":
                    raise SourceError(f"the source failed at pass {number}, block {index}")
                if fault == "raise_value":
                    raise ValueError(f"the source refused pass {number}")
                yield self._bad(block)
                continue
            if active and fault == "rows_fewer" and index == last:
                self.fired = True
                if last == 0:
                    yield self._rows(block, slice(0, max(1, self._n(block) // 2)))
                continue
            if active and ((fault == "values_first" and index == 0)
                           or (fault == "values_last" and index == last)):
                self.fired = True
                yield self._other_values(block)
                continue
            if active and fault == "values_tail" and index == 0:
                self.fired = True  # only the last row of the first block differs
                yield self._map(block, lambda X: np.concatenate(
                    [X[:-1], self._other_values(X[-1:])]))
                continue
            if active and fault == "features" and index == at_block:
                self.fired = True
                yield self._map(block, lambda X: np.column_stack([X, X[:, :1]]))
                continue
            if active and fault == "lengths" and index == at_block:
                X, lengths = block
                if len(lengths) > 1:
                    self.fired = True
                    yield X, [int(sum(lengths))]
                    continue
                if len(X) >= 2:
                    self.fired = True
                    yield X, [1, len(X) - 1]
                    continue
            yield block
        if active and fault == "rows_more":
            self.fired = True
            yield self.blocks[0]

    @staticmethod
    def _n(block):
        return len(block[0]) if isinstance(block, tuple) else len(block)

    @staticmethod
    def _map(block, function):
        if isinstance(block, tuple):
            return function(block[0]), block[1]
        return function(block)

    def _rows(self, block, rows):
        if isinstance(block, tuple):
            X, lengths = block
            return X[rows], [len(X[rows])]
        return block[rows]

    def _other_values(self, block):
        name = self.case["estimator"]
        if "Categorical" in name:
            return self._map(block, lambda X: (X + 1) % 3)
        if name == "PoissonHMM":
            return self._map(block, lambda X: X + 1)
        return self._map(block, lambda X: X * 1.5 + 0.25)

    def _bad(self, block):
        kind = self.case["bad_block"]
        if kind == "one_d" and "Categorical" in self.case["estimator"]:
            kind = "nan"  # (1-d symbols are a valid column of symbols)
        if kind == "not_pair":  # an HMM block without its lengths; rows in a pair
            return block[0] if isinstance(block, tuple) else (block, block)
        change = {"nan": lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, np.nan,
                                            X),
                  "one_d": lambda X: X[:, 0], "str": lambda X: X.astype(str)}[kind]
        return self._map(block, change)


def _stream_blocks(case):
    name = case["estimator"]
    X = _good_data(name)
    cuts = np.linspace(0, len(X), case["n_blocks"] + 1).astype(int)
    blocks = [X[lo:hi] for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]
    if name.endswith("HMM"):
        blocks = [(b, [len(b) // 2, len(b) - len(b) // 2] if len(b) >= 2 else [len(b)])
                  for b in blocks]
    return X, blocks


def _run_stream_case(case):
    X, blocks = _stream_blocks(case)
    saved = _fingerprint(blocks)
    model = _make(case)
    if case["prefit"]:
        model.fit(X)
    before = estimator_state(model)
    source = _Source(case, blocks)
    fault = case["fault"]
    where = f"a streamed fit whose source {fault} (pass {case['at_pass']})"
    try:
        model.fit(source)
    except SourceError:
        if not (fault == "raise" and source.fired):
            return f"{where}: a SourceError came from nowhere"
        outcome = "raised"
    except ACCEPTED_ERRORS as error:
        problem = foreign_error(error)
        if problem:
            return f"{where}: {problem}"
        if not source.fired:
            return f"{where}: a good stream was refused: {type(error).__name__}: {error}"
        if fault == "raise":
            return f"{where}: the source's exception became {type(error).__name__}: {error}"
        outcome = "refused"
    else:
        if source.fired and fault in ("raise", "raise_value", "not_iterable", "bad_block"):
            return f"{where}: the fault was swallowed and the fit returned normally"
        if source.fired and fault in STREAM_CHANGES:
            return (f"{where}: the passes saw different data (fault at pass "
                    f"{case['at_pass']} of {source.calls} calls) and the fit returned "
                    "normally")
        problem = bad_attributes(model)
        if problem:
            return f"{where}: fit returned normally, but {problem}"
        return _probe(model, case["estimator"], "after a streamed fit")
    after = estimator_state(model)
    if after != before:
        return (f"{where}: the fit {outcome} but changed the estimator: "
                f"{', '.join(_state_difference(before, after))}")
    if _fingerprint(blocks) != saved:
        return f"{where}: the source's blocks were modified"
    return None


# -- model files ---------------------------------------------------------------------------
FILE_MUTATIONS = ("shape", "attribute", "validate_off", "spec", "params_list", "deep_json",
                  "zero_d", "negate_chol", "class", "compression", "encrypted", "declared_size",
                  "truncate", "flip_bytes", "plain_npy", "n_features", "nan_param", "bomb")
# Edits of the model (not of the file format): forged files that parse.
MODEL_MUTATIONS = ("cut_first", "cut_last", "extend_first", "extend_last", "nan_entry",
                   "inf_entry", "extreme", "extreme_all", "negative_entry", "non_pd", "drop",
                   "n_features_in", "expert", "gating", "gating_columns", "expert_columns",
                   "n_outputs", "fit_intercept", "covariance_type", "weight_prior",
                   "n_components", "dof_prior")
# A forged file of these mutations no longer describes a model: load must refuse it.
MUST_REFUSE = ("cut_first", "cut_last", "extend_first", "extend_last", "nan_entry",
               "inf_entry", "negative_entry", "non_pd", "drop", "n_features_in",
               "gating_columns", "expert_columns", "n_outputs", "covariance_type",
               "weight_prior", "n_components", "dof_prior")
_POSITIVE = re.compile(r"weights|covar|precisions_(?!cholesky)|scale|dof|beta|degrees|"
                       r"mean_precision|concentration|lambdas|prob|transmat")
_MATRICES = re.compile(r"covar|precisions|scale")


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
    return forge_with_change(blob, mutation, seed)[0]


def forge_with_change(blob, mutation, seed):
    """(forged bytes, change): for a model mutation, ``change`` is ``(attribute name,
    forged array)`` when it rewrote an array, True when it edited something else and
    False when it found nothing to edit; None for the other mutations."""
    rng = np.random.RandomState(seed)
    entries = _entries(blob)
    metadata = json.loads(entries["__metadata__"].tobytes())
    model = metadata["model"]
    arrays = [k for k in entries if not k.startswith("__")]
    target = arrays[rng.randint(len(arrays))] if arrays else None
    change = None
    if mutation in MODEL_MUTATIONS:
        change = _forge_model(entries, metadata, mutation, rng)
    elif mutation == "shape" and target:
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
        return _damage(blob, mutation, rng), None
    return _pack(entries, metadata), change


def _array_attributes(model, entries, pattern=None):
    """``[(attribute name, entry key)]`` of the model's float arrays (optionally those
    whose name matches ``pattern``)."""
    found = []
    for name, entry in sorted(model["attributes"].items()):
        key = entry.get("array") if isinstance(entry, dict) else None
        if key in entries and entries[key].dtype.kind == "f" and entries[key].size:
            if pattern is None or pattern.search(name):
                found.append((name, key))
    return found


def _forge_model(entries, metadata, mutation, rng):
    """Edit the model inside a file in place (a forger who knows the format); returns
    the change as :func:`forge_with_change` describes it."""
    model = metadata["model"]
    attributes, params = model["attributes"], model["params"]

    def pick(pattern=None):
        found = _array_attributes(model, entries, pattern)
        return found[rng.randint(len(found))] if found else (None, None)

    def entry(option, owner):
        return owner.get(option, {}).get("value") if isinstance(owner.get(option),
                                                               dict) else None

    name, key = pick()
    if mutation in ("cut_first", "cut_last", "extend_first", "extend_last") and key:
        array = entries[key]
        if array.ndim == 0:
            return False
        axis = 0 if mutation.endswith("first") else array.ndim - 1
        if mutation.startswith("cut"):
            entries[key] = np.take(array, np.arange(max(array.shape[axis] - 1, 0)), axis=axis)
        else:  # a copy of the last slice: values of the right kind, the wrong shape
            entries[key] = np.concatenate([array, np.take(array, [-1], axis=axis)], axis=axis)
    elif mutation in ("nan_entry", "inf_entry", "extreme") and key:
        array = entries[key].copy()
        flat = array.reshape(-1)
        flat[rng.randint(flat.size)] = {"nan_entry": np.nan, "inf_entry": np.inf,
                                        "extreme": rng.choice([1e308, -1e308])}[mutation]
        entries[key] = array
    elif mutation == "extreme_all" and key:
        entries[key] = entries[key] * 1e300
    elif mutation == "negative_entry":
        name, key = pick(_POSITIVE)
        if not key:
            return False
        array = entries[key].copy()
        flat = array.reshape(-1)
        flat[rng.randint(flat.size)] = -1.0 - abs(flat[rng.randint(flat.size)])
        entries[key] = array
    elif mutation == "non_pd":
        name, key = pick(_MATRICES)
        if not key:
            return False
        array = entries[key].copy()
        # Matrices unless the covariance type says the entries are variances (a diag
        # model's (K, D) array is square when K == D).
        if (array.ndim >= 2 and array.shape[-1] == array.shape[-2] and array.shape[-1] > 1
                and not _diagonal(entry("covariance_type", params))):
            matrices = array.reshape((-1,) + array.shape[-2:])
            matrix = matrices[rng.randint(len(matrices))]
            scale = np.sqrt(abs(matrix[0, 0] * matrix[1, 1])) + 1.0
            matrix[0, 1] = matrix[1, 0] = 3.0 * scale  # symmetric, indefinite
        else:
            flat = array.reshape(-1)
            flat[rng.randint(flat.size)] = -abs(flat[rng.randint(flat.size)]) - 1.0
        entries[key] = array
    elif mutation == "drop" and key:
        del entries[key]
        del attributes[name]
        metadata["arrays"].pop(key, None)
        return True
    elif mutation == "n_features_in":
        width = entry("n_features_in_", attributes) or 2
        columns = [c for option in ("expert_columns", "gating_columns")
                   for c in (entry(option, params) or [])]
        # Impossible widths: another width where the arrays fix it, fewer columns than
        # the columns named, none at all.
        options = [0, width + 1, max(width - 1, 0)] if not columns else [0, max(columns)]
        attributes["n_features_in_"] = {"value": int(rng.choice(options))}
        return True
    elif mutation in ("expert", "gating"):
        value = entry(mutation, params)
        if not value:
            return False
        params[mutation] = {"value": str(rng.choice(
            [v for v in (EXPERTS if mutation == "expert" else GATES) if v != value]))}
        return True
    elif mutation in ("gating_columns", "expert_columns"):
        if mutation not in params:
            return False
        width = entry("n_features_in_", attributes) or 2
        current = entry(mutation, params)
        count = len(current) if current else width
        params[mutation] = {"value": [[width + 3] * count, [0] * (count + 1),
                                      [-width - 1] * count][rng.randint(3)]}
        return True
    elif mutation == "n_outputs":
        if "n_outputs_" not in attributes:
            return False
        attributes["n_outputs_"] = {"value": int(entry("n_outputs_", attributes)) + 1}
        return True
    elif mutation == "fit_intercept":
        if "fit_intercept" not in params:
            return False
        params["fit_intercept"] = {"value": not entry("fit_intercept", params)}
        return True
    elif mutation == "covariance_type":
        value = entry("covariance_type", params)
        if not value:
            return False
        params["covariance_type"] = {"value": str(rng.choice(
            [c for c in COVARIANCE_TYPES if c != value]))}
        return True
    elif mutation == "weight_prior":
        value = entry("weight_concentration_prior_type", params)
        if not value:
            return False
        params["weight_concentration_prior_type"] = {
            "value": [w for w in WEIGHT_PRIORS if w != value][0]}
        return True
    elif mutation == "n_components":
        value = entry("n_components", params)
        if not isinstance(value, int):
            return False
        params["n_components"] = {"value": value + int(rng.choice([-1, 1]))}
        return True
    elif mutation == "dof_prior":
        for option in ("degrees_of_freedom_prior_", "dof_prior_"):
            if option in attributes:
                if "value" in attributes[option]:
                    attributes[option] = {"value": 0.1}
                    return True
                key = attributes[option].get("array")
                if key in entries:
                    entries[key] = np.full_like(entries[key], 0.1)
                    return option, entries[key]
        return False
    else:
        return False
    return name, entries[key]


def _must_refuse(mutation, name, config, loaded):
    """Whether a forged file of this (applied) mutation holds no valid model, and so
    must be refused by ``load``."""
    kwargs = config.get("kwargs", {})
    moe = name == "MixtureOfExperts"
    if mutation == "expert":  # to or from Gaussian experts changes the arrays needed
        return moe and "gaussian" in (loaded.expert, kwargs.get("expert"))
    if mutation == "gating":  # the new gate's arrays are not in the file
        return moe and loaded.gating != "constant"
    if mutation not in MUST_REFUSE:
        return False
    if mutation in ("expert_columns", "n_outputs"):
        return moe
    if mutation == "gating_columns":
        return moe and kwargs.get("gating") != "constant"
    if mutation in ("covariance_type", "dof_prior"):
        # (the older classes are saved with K = D = 2, where diag and tied coincide)
        return name in ("BayesianGaussianMixture", "VariationalGaussianHMM")
    if mutation == "weight_prior":
        return name == "BayesianGaussianMixture"
    return True


def _kept(model, change):
    """Whether the loaded model holds the forged array (a loader may instead recompute
    an attribute that is derived from the others, which is harmless)."""
    if not isinstance(change, tuple):
        return True
    name, forged = change
    try:
        current = np.asarray(getattr(model, name), dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        return False
    return current.shape == forged.shape and np.array_equal(current, forged, equal_nan=True)


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


def _fit_data(name, config):
    """The arguments a saved model of ``config`` is fitted on."""
    if name == "MixtureOfExperts":
        X, y, trials = _moe_good(config["kwargs"].get("expert", "gaussian"), 60, 2,
                                 config.get("outputs", 1))
        return (X, y, trials)
    X = _good_data(name).astype(np.float64)
    if name == "EMImputer":
        X[::5, 0] = np.nan
    return (X,)


def _saved_model(case, folder):
    """(bytes of a saved fitted model, what it was fitted on), made once per estimator and
    configuration."""
    import fastem

    name, config = case["estimator"], case.get("config") or {}
    key = (name, repr(sorted(config.items())))
    if key not in _SAVED:
        # The new classes get 3 components, so that K differs from D = 2 and from the
        # outputs: a forged shape cannot pass for another valid one by coincidence.
        k = 3 if name in FILE_CONFIGS else 2
        model = getattr(fastem, name)(**{"n_components": k, "random_state": 0,
                                         **config.get("kwargs", {})})
        data = _fit_data(name, config)
        if name == "MixtureOfExperts":
            model.fit(data[0], data[1], trials=data[2])
        else:
            model.fit(data[0])
        path = os.path.join(folder, "original.npz")
        model.save(path)
        with open(path, "rb") as handle:
            _SAVED[key] = (handle.read(), data)
    return _SAVED[key]


def _run_file_case(case):
    import fastem

    name, config, mutation = case["estimator"], case.get("config") or {}, case["mutation"]
    with tempfile.TemporaryDirectory() as folder:
        blob, data = _saved_model(case, folder)
        forged, change = forge_with_change(blob, mutation, case["seed"])
        if change is False:
            return None  # nothing of that kind in this model: the file is the original
        path = os.path.join(folder, "model.npz")
        with open(path, "wb") as handle:
            handle.write(forged)
        try:
            model = fastem.load(path)
        except ValueError:
            return None  # refused (load words every refusal as an unreadable file)
    where = f"a forged file ({mutation})"
    if not model.__sklearn_is_fitted__():
        return None
    if (mutation in MODEL_MUTATIONS and _must_refuse(mutation, name, config, model)
            and _kept(model, change)):
        what = f" {change[0]} {change[1].shape}" if isinstance(change, tuple) else ""
        return f"{where}{what} was loaded, though its model is inconsistent"
    problem = bad_attributes(model)
    if problem:
        return f"{where} was loaded with {problem.replace('fitted attribute ', '')}"
    if name == "MixtureOfExperts":
        X, y, trials = data
        for method, kind in MOE_OUTPUT_KINDS.items():
            try:
                result = _moe_call(model, method, X, y, trials, None)
            except ACCEPTED_ERRORS as error:
                problem = foreign_error(error)
                if problem:
                    return f"{where} loaded and then {method}: {problem}"
                continue
            problem = _bad_output(result, f"{method} of a loaded model", kind,
                                  model.n_components)
            if problem:
                return f"{where} loaded and then: {problem}"
        return None
    for method in ("score", "predict_proba", "predict", "sample"):
        try:
            called, result = _call(model, method, data[0], None, {"n_samples": 3})
        except ACCEPTED_ERRORS as error:
            problem = foreign_error(error)
            if problem:
                return f"{where} loaded and then {method}: {problem}"
            continue
        problem = _bad_output(result, f"{called} of a loaded model",
                              OUTPUT_KINDS.get(called, "loglik"), _label_count(model))
        if problem:
            return f"{where} loaded and then: {problem}"
    return None


# -- the worker process ------------------------------------------------------------------------
def _serve(connection):
    logging.disable(logging.WARNING)  # hmmlearn-style notices about overwritten parameters
    while True:
        case = connection.recv()
        if case is None:
            return
        connection.send(run_case(case))


def _resident_mb(pid):
    """Resident memory of a process in MiB (0 where /proc is not available)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Worker:
    """Runs cases in a child process; a crash, a hang or resident memory above
    ``memory_mb`` is reported as a finding, and the next case runs in a fresh child."""

    def __init__(self, timeout=120.0, memory_mb=1536.0):
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._context = multiprocessing.get_context("spawn")
        self._start()

    def _start(self):
        self._connection, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()

    def _restart(self):
        self._process.kill()
        self._process.join()
        self._start()

    def run(self, case):
        """None when the case behaved, else a description of the failure."""
        self._connection.send(case)
        deadline = time.monotonic() + self.timeout
        while True:
            if self._connection.poll(0.05):
                try:
                    return self._connection.recv()
                except (EOFError, OSError):  # the child died while answering
                    break
            if not self._process.is_alive():
                break
            resident = _resident_mb(self._process.pid)
            if resident > self.memory_mb:
                self._restart()
                return (f"resident memory passed {self.memory_mb:.0f} MiB ({resident:.0f} "
                        "MiB: exhaustion)")
            if time.monotonic() > deadline:
                self._restart()
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


def case_label(case):
    """What a case exercises, for counts: its kind and method, fault or mutation."""
    detail = {"data": "method", "moe": "method", "sequence": "estimator", "stream": "fault",
              "file": "mutation"}.get(case["kind"])
    return f"{case['kind']}:{case.get(detail, '')}" if detail else case["kind"]


def finding_key(case, problem):
    """A key under which findings of the same cause are counted together: the kind of
    case and the problem with its numbers and quoted text blanked."""
    first = problem.splitlines()[-1] if problem.startswith("unexpected") else problem
    first = re.sub(r"0x[0-9a-f]+|\d+(\.\d+)?(e[-+]?\d+)?", "#", first)
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)[:180]
    return case["kind"], first


def _who(case):
    kwargs = case.get("kwargs") or case.get("config", {}).get("kwargs", {})
    parts = [case.get("estimator", "")] + [str(kwargs[k]) for k in ("expert", "gating")
                                           if k in kwargs]
    return "/".join(parts)


def main(argv=None):
    """Fuzz for a while and report every finding; exit status 1 if there was one."""
    parser = argparse.ArgumentParser(prog="python -m fastem.bench.fuzz",
                                     description=main.__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-cases", type=int, default=None)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated case kinds (default: {','.join(KINDS)})")
    parser.add_argument("--memory-mb", type=float, default=1536.0,
                        help="resident memory of the worker reported as exhaustion")
    parser.add_argument("--replay", type=int, default=None, metavar="SEED",
                        help="run the case of one seed in this process and print it")
    args = parser.parse_args(argv)
    kinds = tuple(kind for kind in args.kinds.split(",") if kind)
    if args.replay is not None:
        case = generate_case(RandomChooser(args.replay), kinds)
        print(f"case: {case!r}")
        problem = run_case(case)
        print(f"outcome: {problem or 'acceptable'}")
        return 1 if problem else 0
    worker = Worker(memory_mb=args.memory_mb)
    deadline = time.monotonic() + 60.0 * args.minutes
    counts = {"cases": 0, "findings": 0}
    labels, distinct = {}, {}
    seed = args.seed
    try:
        while time.monotonic() < deadline and (args.max_cases is None
                                               or counts["cases"] < args.max_cases):
            case = generate_case(RandomChooser(seed), kinds)
            seed += 1
            counts["cases"] += 1
            label = case_label(case)
            labels[case["kind"]] = labels.get(case["kind"], 0) + 1
            problem = worker.run(case)
            if problem:
                counts["findings"] += 1
                key = finding_key(case, problem)
                if key not in distinct:
                    print(f"FINDING (seed {seed - 1}, {label}): {problem}\n  case: {case!r}",
                          flush=True)
                    distinct[key] = ([], set())
                distinct[key][0].append(seed - 1)
                distinct[key][1].add(_who(case))
    finally:
        worker.close()
    print(f"{counts['cases']} cases ({', '.join(f'{k} {v}' for k, v in sorted(labels.items()))}),"
          f" {counts['findings']} findings ({len(distinct)} distinct), seeds "
          f"{args.seed}..{seed - 1}")
    for (kind, problem), (seeds, who) in distinct.items():
        print(f"  {len(seeds):5d} x {kind}: {problem}\n          in {', '.join(sorted(who))}"
              f" (seeds {', '.join(map(str, seeds[:5]))}{', ...' if len(seeds) > 5 else ''})")
    return 1 if counts["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
