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
import os
import zipfile
from typing import Any

import numpy as np

from ._registry import classes
from ._typing import PathLike
from .engine.monitor import ConvergenceMonitor

FORMAT = "fastem-model"
SCHEMA = 1
_SCALARS = (bool, int, float, str, type(None))


def _registry():
    """Class name -> class of every estimator a model file may hold (each registers
    itself: :mod:`fastem._registry`), and the monitor class."""
    return classes(), ConvergenceMonitor


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
        elif (isinstance(value, tuple) and value
              and all(isinstance(item, np.ndarray) for item in value)
              and len({item.shape for item in value}) == 1):
            # A tuple of equal arrays (BayesianGaussianMixture's stick-breaking pair).
            arrays[f"{prefix}attr/{key}"] = np.stack(value)
            attributes[key] = {"array": f"{prefix}attr/{key}", "tuple": True}
        elif isinstance(value, monitor_class):
            attributes[key] = {"monitor": value._saved()}
        elif registry.get(type(value).__name__) is type(value):
            attributes[key] = {"estimator": _describe(value, f"{prefix}{key}/", arrays,
                                                      monitor_class)}
        else:
            plain = _plain(value)
            if plain is not None:
                attributes[key] = plain
    return {"class": name, "params": params, "attributes": attributes}


def save(estimator: Any, path: PathLike) -> None:
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


MAX_METADATA_BYTES = 16 << 20
"""Largest metadata entry read (a model's JSON is a few kB)."""
MAX_MODEL_BYTES = 4 << 30
"""Largest total size of a model's arrays; a bigger declaration is refused before reading."""
_ARRAY_DTYPES = frozenset({"<f8", "<f4", "<i8", "<i4", "|b1", "|u1"})
_NPY_HEADER_MAX = 1 << 16


class _Refused(Exception):
    """Raised while reading an untrusted file; becomes the ValueError of :func:`load`."""


def _require(condition, why):
    if not condition:
        raise _Refused(why)


def _members(archive, file_size):
    """The archive's members by entry name, after checking their zip headers.

    ``save`` writes stored (uncompressed), unencrypted members, so a member's
    size can be checked against the file's own size before anything is read:
    no compression method, encryption flag or declared size in a crafted file
    reaches numpy's reader or allocates memory.
    """
    members = {}
    for info in archive.infolist():
        _require(info.filename.endswith(".npy") and len(info.filename) < 4096,
                 f"unexpected member {info.filename[:80]!r}")
        _require(not info.flag_bits & 0x1, f"member {info.filename!r} is encrypted")
        _require(info.compress_type == zipfile.ZIP_STORED,
                 f"member {info.filename!r} is compressed (fastem writes stored members)")
        _require(info.file_size == info.compress_size and info.file_size <= file_size,
                 f"member {info.filename!r} declares {info.file_size} bytes in a file of "
                 f"{file_size}")
        name = info.filename[:-4]
        _require(name not in members, f"member {name!r} appears twice")
        members[name] = info
    return members


def _read_array(archive, info, shape=None, dtype=None):
    """One .npy member, its header checked against the expected shape and dtype first."""
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        _require(version in ((1, 0), (2, 0)), f"{info.filename!r}: unknown .npy version")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        header = read_header(stream, max_header_size=_NPY_HEADER_MAX)
    found_shape, _, found_dtype = header
    _require(not found_dtype.hasobject, f"{info.filename!r}: only numeric arrays are accepted")
    if shape is not None:
        _require(list(found_shape) == shape and found_dtype.str == dtype,
                 f"array {info.filename[:-4]!r} does not match its recorded shape or dtype "
                 "(edited or corrupted)")
    data_bytes = int(np.prod(found_shape, dtype=np.int64)) * found_dtype.itemsize
    _require(data_bytes <= info.file_size,
             f"{info.filename!r} declares more data than it holds")
    with archive.open(info) as stream:  # reading to the end checks the member's CRC
        return np.lib.format.read_array(stream, allow_pickle=False,
                                        max_header_size=_NPY_HEADER_MAX)


def _checked_metadata(metadata):
    _require(isinstance(metadata, dict), "its metadata is not a JSON object")
    _require(metadata.get("format") == FORMAT, f"unknown format {metadata.get('format')!r}")
    if metadata.get("schema") != SCHEMA:
        raise _Refused(f"it was written with schema {metadata.get('schema')!r} by fastem "
                       f"{metadata.get('fastem_version')}; this fastem reads schema {SCHEMA}")
    arrays = metadata.get("arrays")
    _require(isinstance(arrays, dict), "its metadata lists no arrays")
    total = 0
    for key, info in arrays.items():
        _require(isinstance(info, dict) and isinstance(info.get("shape"), list)
                 and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n
                         for n in info["shape"]) and len(info["shape"]) <= 8
                 and info.get("dtype") in _ARRAY_DTYPES
                 and isinstance(info.get("sha256"), str),
                 f"array {key!r} has an invalid description")
        total += int(np.prod(info["shape"], dtype=object)) * np.dtype(info["dtype"]).itemsize
        _require(total <= MAX_MODEL_BYTES, f"its arrays declare more than {MAX_MODEL_BYTES} "
                                           "bytes")
    _require(isinstance(metadata.get("model"), dict), "its metadata describes no model")
    return metadata


def load(path: PathLike) -> Any:
    """Read an estimator written by :func:`save` (or ``estimator.save``).

    Nothing in the file is executed or unpickled, and the file is treated as
    untrusted: zip headers, the metadata and every declared size are checked
    before anything is decompressed or allocated; only the estimator's own
    constructor arguments and fitted attributes can be set; and the whole model
    is validated (every parameter, and their shapes against each other) by the
    estimator class itself, whatever the file says. Anything wrong raises
    ``ValueError``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator
    """
    try:
        file_size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            return _load_archive(archive, file_size)
    except FileNotFoundError:
        raise
    except _Refused as error:
        raise _refuse(path, str(error)) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise _refuse(path, f"damaged or not an .npz archive ({error})") from None
    except RecursionError:
        raise _refuse(path, "its metadata is nested too deeply") from None
    except Exception as error:  # noqa: BLE001 - anything else in an untrusted file
        raise _refuse(path, f"its contents are invalid ({type(error).__name__}: "
                            f"{str(error)[:300]})") from None


def _load_archive(archive, file_size):
    members = _members(archive, file_size)
    for key in ("__metadata__", "__digest__"):
        _require(key in members, f"the {key} entry is missing")
    _require(members["__metadata__"].file_size <= MAX_METADATA_BYTES + _NPY_HEADER_MAX
             and members["__digest__"].file_size <= _NPY_HEADER_MAX,
             "its metadata entry is too large")
    text_array = _read_array(archive, members.pop("__metadata__"))
    digest_array = _read_array(archive, members.pop("__digest__"))
    _require(text_array.dtype == np.uint8 and text_array.ndim == 1
             and digest_array.dtype == np.uint8 and digest_array.ndim == 1,
             "its metadata entries are not byte strings")
    text = text_array.tobytes()
    digest = digest_array.tobytes().decode("ascii", "replace")
    _require(hashlib.sha256(text).hexdigest() == digest,
             "its metadata does not match its checksum (edited or corrupted)")
    try:
        metadata = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _Refused(f"its metadata is not valid JSON ({error})") from None
    metadata = _checked_metadata(metadata)
    expected = metadata["arrays"]
    _require(set(expected) == set(members), "its arrays do not match its metadata")
    arrays = {}
    for key, info in expected.items():
        array = _read_array(archive, members[key], info["shape"], info["dtype"])
        _require(_digest(array) == info["sha256"],
                 f"array {key!r} does not match its recorded checksum (edited or corrupted)")
        arrays[key] = array
    return _build(metadata["model"], arrays)


def _build(model, arrays, expected_class=None):
    registry, monitor_class = _registry()
    _require(isinstance(model.get("params"), dict) and isinstance(model.get("attributes"), dict),
             "its model description is invalid")
    cls = registry.get(model.get("class"))
    _require(cls is not None, f"unknown estimator class {str(model.get('class'))[:80]!r}")
    _require(expected_class is None or cls is expected_class,
             f"a nested {cls.__name__} where a {getattr(expected_class, '__name__', '')} "
             "belongs")
    nested = cls._saved_attributes()

    def value_of(key, entry):
        _require(isinstance(entry, dict), f"entry {key!r} is invalid")
        if "array" in entry:
            _require(entry["array"] in arrays, f"entry {key!r} names no array")
            value = arrays[entry["array"]].copy()
            if entry.get("tuple"):
                _require(value.ndim >= 1, f"entry {key!r} is invalid")
                return tuple(value)
            return value
        if "strings" in entry:
            _require(isinstance(entry["strings"], list)
                     and all(isinstance(item, str) for item in entry["strings"]),
                     f"entry {key!r} is invalid")
            return np.asarray(entry["strings"], dtype=object)
        if "estimator" in entry:
            kind = nested.get(key)
            _require(isinstance(kind, type) and isinstance(entry["estimator"], dict),
                     f"{key!r} cannot hold an estimator")
            return _build(entry["estimator"], arrays, expected_class=kind)
        if "monitor" in entry:
            _require(nested.get(key) is monitor_class and isinstance(entry["monitor"], dict),
                     f"{key!r} cannot hold a convergence monitor")
            return monitor_class._from_saved(entry["monitor"])
        _require("value" in entry, f"entry {key!r} is invalid")
        value = entry["value"]
        _require(isinstance(value, _SCALARS) or (isinstance(value, list) and all(
            isinstance(item, _SCALARS) for item in value)), f"entry {key!r} is invalid")
        return value

    names = set(cls._parameter_names())
    unknown = sorted(set(model["params"]) - names)
    _require(not unknown, f"{cls.__name__} has no parameter(s) {unknown[:5]}")
    estimator = cls(**{key: value_of(key, entry) for key, entry in model["params"].items()})
    attributes = model["attributes"]
    unknown = sorted(set(attributes) - set(nested))
    _require(not unknown, f"{cls.__name__} has no fitted attribute(s) {unknown[:5]}")
    for key, entry in attributes.items():
        setattr(estimator, key, value_of(key, entry))
    if attributes:
        # The class's own check, never one the file could replace or switch off.
        cls._validate_loaded(estimator)
    return estimator
