"""Dask inputs and outputs of the estimators: conversion, validation, per-partition results.

Fitting goes through :class:`fastem.engine.dask_backend.DaskBackend`; this module
turns a dask array or dataframe into row-partitioned float arrays the backend
takes, checks them on the workers, and maps a fitted estimator's NumPy methods
over partitions for ``predict``/``score_samples``/``transform`` (the estimator
travels to the workers; the results stay lazy, as dask-ml users expect).
"""

from __future__ import annotations

import copy

import numpy as np

from ._base import shippable
from .engine.dask_backend import import_dask, is_dask_collection

__all__ = ["DaskRows", "as_dask_rows", "is_dask_collection", "map_rows", "sequence_bounds"]


class DaskRows:
    """A validated dask input: ``X`` (float, rows chunked, columns in one chunk),
    ``feature_names`` (dataframes) and ``ids`` (the sequence-id column, when asked)."""

    def __init__(self, X, feature_names=None, ids=None):
        self.X = X
        self.feature_names = feature_names
        self.ids = ids


def _is_dataframe(obj):
    return hasattr(obj, "columns") and hasattr(obj, "npartitions") and hasattr(obj, "dtypes")


def _numeric(dtype):
    try:
        return np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)
    except TypeError:  # pandas extension dtypes (strings, categories)
        return False


def as_dask_rows(data, name="X", *, feature_names=None, id_column=None, dtype=None):
    """A :class:`DaskRows` from a dask array, dataframe or series.

    Dataframes use the columns named ``feature_names`` when given (those the
    model was fitted on), else every numeric column except ``id_column``.
    """
    _, da = import_dask()
    ids = None
    names = None
    if _is_dataframe(data):
        if id_column is not None:
            if id_column not in data.columns:
                raise ValueError(f"the sequence column {id_column!r} is not a column of {name}")
            ids = data[id_column]
        if feature_names is not None:
            missing = [c for c in feature_names if c not in data.columns]
            if missing:
                raise ValueError(f"{name} lacks the columns the model was fitted on: {missing}")
            names = list(feature_names)
        else:
            names = [c for c, t in data.dtypes.items() if c != id_column and _numeric(t)]
            if not names:
                raise ValueError(f"{name} has no numeric columns")
        X, ids = _frame_arrays(data, names, id_column)
    elif hasattr(data, "to_dask_array"):  # a series: one feature
        X = data.to_dask_array(lengths=True)[:, None]
    elif is_dask_collection(data) and hasattr(data, "chunks"):
        X = data
        if any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
    else:
        raise TypeError(f"{name} must be a dask array or dataframe, got {type(data).__name__}")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array for {name}, got {X.ndim}D")
    if X.shape[1] == 0 or X.shape[0] == 0:
        raise ValueError(f"{name} has shape {X.shape}: no rows or no features")
    kind = np.dtype(X.dtype).kind
    if kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    target = np.float32 if dtype is None and X.dtype == np.float32 else (dtype or np.float64)
    if X.dtype != target:
        X = X.astype(target)
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return DaskRows(X, names, ids)


def _frame_arrays(data, names, id_column):
    """Dask arrays of the ``names`` columns and of the id column, cut like each other.

    Both come from the partitions of one projected frame (``to_delayed``): dask may fuse
    small Parquet partitions differently for different column selections, so separate
    ``to_dask_array`` calls could disagree on the cuts (and ``lengths=True`` fails then).
    """
    dask, da = import_dask()
    frame = data[names + ([id_column] if id_column is not None else [])]
    parts = frame.to_delayed()
    sizes = dask.compute(*[dask.delayed(len)(part) for part in parts])
    single = all(str(t) == "float32" for t in frame.dtypes[names])
    dtype = np.dtype(np.float32 if single else np.float64)
    columns = [da.from_delayed(dask.delayed(_values)(part, names, dtype), shape=(n, len(names)),
                               dtype=dtype) for part, n in zip(parts, sizes, strict=True)]
    X = da.concatenate(columns) if len(columns) > 1 else columns[0]
    ids = None
    if id_column is not None:
        id_type = frame.dtypes[id_column]
        id_dtype = np.dtype(id_type) if _numeric(id_type) else np.dtype(object)
        pieces = [da.from_delayed(dask.delayed(_values)(part, id_column, id_dtype), shape=(n,),
                                  dtype=id_dtype) for part, n in zip(parts, sizes, strict=True)]
        ids = da.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    return X, ids


def _values(frame, columns, dtype):
    if dtype.kind == "f":  # pandas' nullable columns: NA becomes NaN
        return frame[columns].to_numpy(dtype=dtype, na_value=np.nan)
    return frame[columns].to_numpy(dtype=dtype)


def _value_flags(block):
    finite = np.isfinite(block)
    return np.array([[np.isnan(block).any(), (~finite & ~np.isnan(block)).any(),
                      (~finite).all(axis=1).any() if block.size else False]])


def check_values(X, name="X", allow_nan=False):
    """One pass on the workers: ValueError for infinities, NaN (unless allowed) or rows
    with nothing observed; returns whether there is any NaN."""
    dask, _ = import_dask()
    flags = X.map_blocks(_value_flags, dtype=bool, chunks=((1,) * X.numblocks[0], (3,)))
    has_nan, has_inf, empty_row = np.asarray(dask.compute(flags.any(axis=0))[0])
    if has_inf:
        raise ValueError(f"Input {name} contains infinity or a value too large for "
                         f"dtype('{X.dtype}').")
    if has_nan and not allow_nan:
        raise ValueError(f"Input {name} contains NaN. To treat NaN as a missing entry, set "
                         "missing=\"marginalize\" (fastem fit: --missing marginalize).")
    if has_nan and empty_row:
        raise ValueError(f"Input {name} has a row with no observed value")
    return bool(has_nan)


def rows_like(values, X, name="sample_weight"):
    """``values`` (NumPy or dask, one per row) as a dask array chunked like X's rows."""
    _, da = import_dask()
    if is_dask_collection(values):
        values = values.to_dask_array(lengths=True) if hasattr(values, "to_dask_array") \
            else values
        values = values.rechunk((X.chunks[0],))
    else:
        values = da.from_array(np.asarray(values, dtype=np.float64), chunks=(X.chunks[0],))
    if values.ndim != 1 or values.shape[0] != X.shape[0]:
        raise ValueError(f"{name} must have one entry per row of X ({X.shape[0]}), got shape "
                         f"{values.shape}")
    return values.astype(np.float64)


def map_rows(function, X, *, columns=None, dtype=np.float64):
    """``function`` (NumPy rows -> per-row results) over the row partitions of X.

    ``columns`` is the number of result columns (None: one value per row).
    """
    if columns is None:
        return X.map_blocks(function, dtype=dtype, drop_axis=1, chunks=(X.chunks[0],))
    return X.map_blocks(function, dtype=dtype, chunks=(X.chunks[0], (columns,)))


def _run_bounds(ids):
    """Per partition: the ids of its first and last rows, and where runs of equal ids
    start (local row positions)."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return [(None, None, np.zeros(1, dtype=np.int64))]
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    bounds = np.concatenate([[0], change, [ids.size]]).astype(np.int64)
    return [(ids[0], ids[-1], bounds)]


def sequence_bounds(ids):
    """Per partition, the cumulative lengths of its sequences (runs of equal ids).

    ValueError naming the sequence when one spans two partitions.
    """
    dask, _ = import_dask()
    parts = ids.to_delayed().ravel()
    runs = dask.compute(*[dask.delayed(_run_bounds)(p) for p in parts])
    runs = [r[0] for r in runs]
    for p in range(1, len(runs)):
        last, first = runs[p - 1][1], runs[p][0]
        if last is not None and first is not None and last == first:
            raise ValueError(
                f"sequence {last!r} spans partitions {p - 1} and {p}; every partition must "
                "hold whole sequences: repartition on the sequence column, e.g. "
                "df.set_index(column) or df.shuffle(column) followed by sorting within "
                "partitions")
    return [bounds for _, _, bounds in runs]


def check_weights(weights, name="sample_weight"):
    """One pass on the workers: ValueError for negative or non-finite weights, or a zero sum."""
    dask, da = import_dask()
    finite, smallest, total = dask.compute(da.isfinite(weights).all(), weights.min(),
                                           weights.sum())
    if not finite:
        raise ValueError(f"{name} contains NaN or infinity")
    if smallest < 0:
        raise ValueError(f"{name} must be non-negative")
    if total <= 0:
        raise ValueError(f"{name} must not be all zero")


def set_feature_names(estimator, rows):
    """``feature_names_in_`` from a dataframe's columns (dropped for arrays), as
    scikit-learn does for pandas input."""
    if rows.feature_names is not None:
        estimator.feature_names_in_ = np.asarray(rows.feature_names, dtype=object)
    else:
        estimator.__dict__.pop("feature_names_in_", None)


class _Threaded:
    """``estimator.<method>(part, *args)`` run on a NumPy part with the worker's thread
    count (see the backend), on a :func:`~fastem._base.shippable` copy of the estimator."""

    def __init__(self, estimator, method):
        self.estimator = shippable(estimator)
        self.method = method

    def __call__(self, part, *args, **kwargs):
        from ._runtime import threads
        from .engine.dask_backend import _worker_threads

        with threads(_worker_threads()):
            return getattr(self.estimator, self.method)(np.asarray(part), *args, **kwargs)


class _Seeded(_Threaded):
    """As :class:`_Threaded`, with the estimator's ``random_state`` replaced, in each
    partition, by a generator seeded from ``seed`` and the partition's first row: draws
    are independent across partitions and reproducible for a given partitioning."""

    def __init__(self, estimator, method, seed):
        super().__init__(estimator, method)
        self.seed = seed

    def __call__(self, part, block_info=None):
        first_row = block_info[0]["array-location"][0][0] if block_info else 0
        estimator = copy.copy(self.estimator)
        estimator.random_state = np.random.RandomState(
            [self.seed, first_row % 2**32, first_row // 2**32])
        return _Threaded(estimator, self.method)(part)


def lazy_rows(estimator, method, X, *, columns=None, dtype=np.float64, seed=None):
    """``estimator.<method>`` over the partitions of dask X, as a lazy dask array (with
    ``seed``: a per-partition ``random_state``, see :class:`_Seeded`)."""
    names = getattr(estimator, "feature_names_in_", None)
    rows = as_dask_rows(X, feature_names=None if names is None else list(names)
                        if _is_dataframe(X) else None)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None and rows.X.shape[1] != n_features:
        raise ValueError(f"X has {rows.X.shape[1]} features, but {type(estimator).__name__} "
                         f"is expecting {n_features} features as input.")
    function = (_Threaded(estimator, method) if seed is None
                else _Seeded(estimator, method, seed))
    return map_rows(function, rows.X, columns=columns, dtype=dtype)


def partition_bounds(X, lengths, ids=None, name="X"):
    """Per row partition of X, the cumulative lengths of its whole sequences.

    ``ids`` (a sequence-id column) or ``lengths`` (NumPy, summing to the rows)
    give the sequences; with neither, X is one sequence and must be one partition.
    ValueError naming the sequence that spans two partitions.
    """
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    if ids is not None:
        return sequence_bounds(ids)
    if lengths is None:
        if len(offsets) > 2:
            raise ValueError(f"{name} is one sequence (lengths=None) but has {len(offsets) - 1} "
                             "partitions; give lengths, or a sequence-id column of a dataframe")
        return [np.array([0, offsets[-1]], dtype=np.int64)]
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or np.any(lengths < 1):
        raise ValueError("lengths must be positive integers")
    cumulative = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if cumulative[-1] != offsets[-1]:
        raise ValueError(f"lengths sum to {cumulative[-1]}, but {name} has {offsets[-1]} rows")
    inside = np.searchsorted(cumulative, offsets[1:-1])
    for offset, position in zip(offsets[1:-1], inside, strict=True):
        if cumulative[position] != offset:
            raise ValueError(
                f"sequence {position - 1} (rows {cumulative[position - 1]} to "
                f"{cumulative[position] - 1}) spans two partitions at row {offset}; every "
                "partition must hold whole sequences (rechunk X on sequence boundaries)")
    return [cumulative[(cumulative >= lo) & (cumulative <= hi)] - lo
            for lo, hi in zip(offsets[:-1], offsets[1:], strict=True)]


def _validate_partition(estimator, part):
    """Worker side: an HMM's validation of one partition: (X, missing rows, feature count)."""
    X, missing = estimator._validate(np.asarray(part), fitting=True)
    if missing is None:
        missing = np.zeros(X.shape[0], dtype=bool)
    return X, missing, (estimator._n_emission_features(X), X.shape[1:], X.dtype.str)


def validated_sequences(estimator, X):
    """HMM input validated on the workers: (dask X as the kernels read it, dask mask of
    missing rows, per-partition emission feature counts)."""
    dask, da = import_dask()
    parts = X.to_delayed().ravel()
    sent = shippable(estimator)
    checked = dask.persist(*[dask.delayed(_validate_partition)(sent, p) for p in parts])
    # Only the small metadata comes to the client; the validated parts stay on the workers.
    meta = dask.compute(*[dask.delayed(lambda c: c[2])(c) for c in checked])
    features = [m[0] for m in meta]
    tail, dtype = meta[0][1], np.dtype(meta[0][2])
    arrays, masks = [], []
    for c, rows in zip(checked, X.chunks[0], strict=True):
        arrays.append(da.from_delayed(dask.delayed(lambda c: c[0])(c),
                                      shape=(rows,) + tail, dtype=dtype))
        masks.append(da.from_delayed(dask.delayed(lambda c: c[1])(c), shape=(rows,),
                                     dtype=bool))
    return da.concatenate(arrays), da.concatenate(masks), list(features)


def lazy_sequences(estimator, method, X, lengths, *, columns=None, dtype=np.float64):
    """``estimator.<method>(part, part_lengths)`` over the partitions of dask X (whole
    sequences each), concatenated lazily; ``columns`` as in :func:`map_rows`."""
    dask, da = import_dask()
    rows, bounds = _sequence_input(estimator, X, lengths)
    pieces = []
    for part, b, n in zip(rows.X.to_delayed().ravel(), bounds, rows.X.chunks[0], strict=True):
        call = dask.delayed(_Threaded(estimator, method))(part, np.diff(b))
        shape = (n,) if columns is None else (n, columns)
        pieces.append(da.from_delayed(call, shape=shape, dtype=dtype))
    return da.concatenate(pieces)


def sequence_scores(estimator, X, lengths):
    """The sum over partitions of ``estimator.score(part, part_lengths)`` (a float)."""
    dask, _ = import_dask()
    rows, bounds = _sequence_input(estimator, X, lengths)
    calls = [dask.delayed(_Threaded(estimator, "score"))(part, np.diff(b))
             for part, b in zip(rows.X.to_delayed().ravel(), bounds, strict=True)]
    return float(sum(dask.compute(*calls)))


def _sequence_input(estimator, X, lengths):
    names = getattr(estimator, "feature_names_in_", None)
    id_column = lengths if isinstance(lengths, str) else None
    rows = as_dask_rows(X, id_column=id_column,
                        feature_names=list(names) if names is not None and _is_dataframe(X)
                        else None)
    bounds = partition_bounds(rows.X, None if id_column else lengths, rows.ids)
    return rows, bounds
