"""Saving and loading fitted estimators in a format that executes nothing on load.

A model file is a NumPy ``.npz`` archive read with ``allow_pickle=False``:

* one entry per numeric array (fitted attributes, and array-valued constructor
  arguments), stored with its dtype and shape;
* ``__metadata__``: UTF-8 JSON with the format name, schema version, fastem
  version, the estimator class, its constructor arguments, its scalar fitted
  attributes, and the shape, dtype and SHA-256 of every array;
* ``__digest__``: SHA-256 of the metadata, so that a file changed after saving
  (truncated, corrupted or edited) is refused with a clear ``ValueError``.

The digest detects damage and accidental edits, not a deliberate forgery
(anyone can recompute it); what makes loading safe is that nothing in the
file is ever executed or unpickled. Loading re-validates every parameter
through the estimator's own checks. Callables (``callback``) are not saved.
"""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np

FORMAT = "fastem-model"
SCHEMA = 1
_SCALARS = (bool, int, float, str, type(None))


def _registry():
    from . import (
        GMMHMM,
        CategoricalHMM,
        EMImputer,
        GaussianHMM,
        GaussianMixture,
        MultinomialHMM,
        PoissonHMM,
    )
    from .hmm.base import ConvergenceMonitor

    classes = (GaussianMixture, EMImputer, GaussianHMM, GMMHMM, CategoricalHMM, PoissonHMM,
               MultinomialHMM)
    return {cls.__name__: cls for cls in classes}, ConvergenceMonitor


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _plain(value):
    """A JSON-ready copy of a scalar or list of scalars, or None if it is not one."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _SCALARS):
        return {"value": value}
    if isinstance(value, (list, tuple)) and all(
            isinstance(item, (*_SCALARS, np.generic)) for item in value):
        return {"value": [item.item() if isinstance(item, np.generic) else item
                          for item in value], "list": True}
    return None


def _describe(estimator, prefix, arrays, monitor_class):
    """Metadata of one estimator; its arrays go into ``arrays`` under ``prefix``."""
    registry, _ = _registry()
    name = type(estimator).__name__
    if name not in registry:
        raise TypeError(f"cannot save a {name}: only fastem estimators can be saved")
    params = {}
    for key, value in estimator.get_params().items():
        if callable(value):
            params[key] = {"value": None, "dropped": "callable"}
        elif isinstance(value, np.ndarray) or (
                isinstance(value, (list, tuple)) and _plain(value) is None):
            arrays[f"{prefix}param/{key}"] = np.asarray(value, dtype=np.float64)
            params[key] = {"array": f"{prefix}param/{key}"}
        else:
            plain = _plain(value)
            if plain is None:
                params[key] = {"value": None, "dropped": type(value).__name__}
            else:
                params[key] = plain
    attributes = {}
    for key, value in vars(estimator).items():
        fitted = key.endswith("_") and not key.startswith("__")
        if key in params or not (fitted or key == "n_features"):
            continue
        if isinstance(value, np.ndarray) and value.dtype != object:
            arrays[f"{prefix}attr/{key}"] = value
            attributes[key] = {"array": f"{prefix}attr/{key}"}
        elif isinstance(value, np.ndarray):
            attributes[key] = {"strings": [str(item) for item in value]}
        elif isinstance(value, monitor_class):
            attributes[key] = {"monitor": {name: getattr(value, name) for name in (
                "tol", "n_iter", "verbose", "iter", "converged", "reached_max_iter",
                "decreased")} | {"history": [float(h) for h in value.history]}}
        elif registry.get(type(value).__name__) is type(value):
            attributes[key] = {"estimator": _describe(value, f"{prefix}{key}/", arrays,
                                                      monitor_class)}
        else:
            plain = _plain(value)
            if plain is not None:
                attributes[key] = plain
    return {"class": name, "params": params, "attributes": attributes}


def save(estimator, path):
    """Write a fitted (or unfitted) fastem estimator to ``path`` (an ``.npz`` file).

    Parameters
    ----------
    estimator : a fastem estimator
    path : str or path-like
        Written as given (NumPy adds no suffix when the name ends in ``.npz``).
    """
    from . import __version__

    _, monitor_class = _registry()
    arrays = {}
    model = _describe(estimator, "", arrays, monitor_class)
    metadata = {"format": FORMAT, "schema": SCHEMA, "fastem_version": __version__,
                "model": model,
                "arrays": {key: {"shape": list(value.shape), "dtype": value.dtype.str,
                                 "sha256": _digest(value)} for key, value in arrays.items()}}
    text = json.dumps(metadata, sort_keys=True).encode("utf-8")
    entries = dict(arrays)
    entries["__metadata__"] = np.frombuffer(text, dtype=np.uint8)
    entries["__digest__"] = np.frombuffer(hashlib.sha256(text).hexdigest().encode("ascii"),
                                          dtype=np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, **entries)


def _refuse(path, why):
    return ValueError(f"{path!s} is not a readable fastem model file: {why}")


def load(path):
    """Read an estimator written by :func:`save` (or ``estimator.save``).

    Nothing in the file is executed or unpickled. A truncated, corrupted or
    edited file, a file from a newer schema, or parameters that fail the
    estimator's checks raise ``ValueError``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise _refuse(path, f"damaged or not an .npz archive ({error})") from None
    for key in ("__metadata__", "__digest__"):
        if key not in contents:
            raise _refuse(path, f"the {key} entry is missing")
    text = contents.pop("__metadata__").tobytes()
    digest = contents.pop("__digest__").tobytes().decode("ascii", "replace")
    if hashlib.sha256(text).hexdigest() != digest:
        raise _refuse(path, "its metadata does not match its checksum (edited or corrupted)")
    try:
        metadata = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(path, f"its metadata is not valid JSON ({error})") from None
    if metadata.get("format") != FORMAT:
        raise _refuse(path, f"unknown format {metadata.get('format')!r}")
    if metadata.get("schema") != SCHEMA:
        raise _refuse(path, f"it was written with schema {metadata.get('schema')!r} by fastem "
                            f"{metadata.get('fastem_version')}; this fastem reads schema "
                            f"{SCHEMA}")
    expected = metadata.get("arrays", {})
    if set(expected) != set(contents):
        raise _refuse(path, "its arrays do not match its metadata")
    for key, info in expected.items():
        array = contents[key]
        if (list(array.shape) != info["shape"] or array.dtype.str != info["dtype"]
                or _digest(array) != info["sha256"]):
            raise _refuse(path, f"array {key!r} does not match its recorded shape, dtype or "
                                "checksum (edited or corrupted)")
    try:
        return _build(metadata["model"], contents)
    except (TypeError, KeyError) as error:
        raise _refuse(path, f"its model description is invalid ({error})") from None


def _build(model, arrays):
    registry, monitor_class = _registry()
    cls = registry.get(model["class"])
    if cls is None:
        raise ValueError(f"unknown estimator class {model['class']!r}")

    def value_of(entry):
        if "array" in entry:
            return arrays[entry["array"]].copy()
        if "strings" in entry:
            return np.asarray(entry["strings"], dtype=object)
        if "estimator" in entry:
            return _build(entry["estimator"], arrays)
        if "monitor" in entry:
            info = entry["monitor"]
            monitor = monitor_class(info["tol"], info["n_iter"], info["verbose"])
            for name in ("iter", "converged", "reached_max_iter", "decreased", "history"):
                setattr(monitor, name, info[name])
            return monitor
        return entry["value"]

    estimator = cls(**{key: value_of(entry) for key, entry in model["params"].items()})
    for key, entry in model["attributes"].items():
        setattr(estimator, key, value_of(entry))
    validate = getattr(estimator, "_validate_loaded", None)
    if validate is not None and estimator.__sklearn_is_fitted__():
        validate()
    return estimator
