"""Sources: the one function that turns an estimator's data into a backend.

Data come as an in-memory array, an ``np.memmap`` (read in chunks at every pass,
never copied whole), a callable returning a fresh iterator of blocks at every call
(exact EM streamed over data that do not fit in memory), or a dask array or
dataframe (one task per partition). :func:`open_source` tells them apart, cuts
streams into blocks, checks the weights and hands every block to the estimator's
own validation. What differs between estimators is a :class:`SourceRules`:

* ``sequences``: blocks are rows with per-row weights (mixtures, experts), or whole
  sequences with ``lengths`` and per-sequence weights (HMMs);
* ``check``: the estimator's validation of a block of raw data (dtypes, domains,
  feature counts, missing values), returning a :class:`~fastem.engine.Block`;
* ``dask``: how validated dask rows become a backend (None: no dask input);
* ``streams``: whether memmaps and callables are streamed (else they are arrays).

No model is named here: a new estimator states its rules and gets every source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validation as v
from .backends import STREAM_CHUNK_ROWS, LocalBackend, StreamBackend, array_chunks
from .dask_backend import is_dask_collection
from .protocol import Block
from .sequences import check_lengths, sequence_chunks

INIT_ROWS = 1 << 20
"""Rows of a stream that initialisation reads (its first blocks, up to this many)."""


def block_features(block: Block) -> int:
    """The feature count of a validated block: its columns."""
    return int(block.X.shape[1])


@dataclass(frozen=True)
class SourceRules:
    """What :func:`open_source` needs to know of an estimator (see the module docstring).

    Attributes
    ----------
    check : callable
        ``check(X, lengths, weights, whole, n_features) -> Block``: the estimator's
        validation of raw rows. ``whole`` is True when ``X`` is all the data (in
        memory), False for a block of a stream; ``n_features`` is the first block's
        feature count (None for all the data or a stream's first block), which a
        later block must match. ``weights`` are the caller's ``sample_weight`` for all
        the data, and already checked slices of them for a memmap's blocks.
    sequences : bool
        Blocks hold whole sequences (``lengths``, one weight per sequence).
    dask : callable or None
        ``dask(rows, weights, bounds) -> (backend, n_features)``: dask rows
        (:class:`fastem._dask_io.DaskRows`), their checked weights (a dask array per
        row, or a NumPy array per sequence, or None) and, for sequences, the bounds
        of each partition's sequences.
    features : callable
        The feature count of a validated block (a CategoricalHMM's symbols count).
    streams : bool
        Memmaps and callables are streamed block by block (else read as arrays).
    dask_dtype : dtype or None
        The dtype dask rows are converted to (None: kept).
    """

    check: Callable[..., Block]
    sequences: bool = False
    dask: Callable[..., Any] | None = None
    features: Callable[[Block], int] = block_features
    streams: bool = True
    dask_dtype: Any = None


@dataclass
class Source:
    """An estimator's data as the engine reads them.

    Attributes
    ----------
    backend : LocalBackend, StreamBackend or DaskBackend
    kind : {"memory", "stream", "dask"}
    sample : Block or None
        All the rows, in memory; None for a stream (its first blocks are read again by
        initialisation: holding them for the whole fit would cost up to a million rows)
        and for dask input.
    n_features : int
        The feature count of the data (``rules.features`` of the first block).
    sample_rows : int or None
        Rows of what initialisation reads: all of them, or a stream's first blocks.
    rows : DaskRows or None
        Dask input's rows (a dataframe's column names).
    """

    backend: Any
    kind: str
    sample: Block | None
    n_features: int
    rows: Any = None
    sample_rows: int | None = None

    @property
    def n_rows(self) -> int | None:
        """Rows of the data when known without reading them (None for a stream)."""
        return getattr(self.backend, "n_rows", None)


def is_stream(X) -> bool:
    """True for the inputs read block by block: a callable or an ``np.memmap``."""
    return callable(X) or isinstance(X, np.memmap)


def open_source(X, rules: SourceRules, *, lengths=None, sample_weight=None,
                others=()) -> Source:
    """The backend over ``X`` (with ``lengths`` and ``sample_weight``) by ``rules``.

    Parameters
    ----------
    X : ndarray, np.memmap, callable or dask collection
    rules : SourceRules
    lengths : array-like of int, str or None
        Sequence lengths (``rules.sequences``); for a dask dataframe, the name of its
        sequence-id column.
    sample_weight : array-like or None
        One weight per row, or per sequence.
    others : tuple
        Further inputs read with ``X`` (a target, trials): any of them being a dask
        collection makes the input a dask one.
    """
    if is_dask_collection(X) or any(is_dask_collection(o) for o in others if o is not None):
        return _dask_source(X, rules, lengths, sample_weight)
    if rules.streams and is_stream(X):
        backend = StreamBackend(_stream_blocks(X, rules, lengths, sample_weight),
                                init_rows=INIT_ROWS)
        sample = backend.initialization_block()
        return Source(backend, "stream", None, rules.features(sample),
                      sample_rows=sample.n_rows)
    block = rules.check(X, lengths, sample_weight, whole=True, n_features=None)
    return Source(LocalBackend([block]), "memory", block, rules.features(block),
                  sample_rows=block.n_rows)


def _stream_blocks(X, rules, lengths, sample_weight):
    """``source()`` of a StreamBackend: validated blocks, the first one's feature count
    required of the others."""
    items = _callable_items(X, rules, lengths, sample_weight) if callable(X) else \
        _memmap_items(X, rules, lengths, sample_weight)

    def blocks():
        n_features = None
        for rows, block_lengths, weights in items():
            block = rules.check(rows, block_lengths, weights, whole=False,
                                n_features=n_features)
            found = rules.features(block)
            if n_features is not None and found != n_features:
                raise ValueError(f"a block has {found} features, the first had {n_features}")
            n_features = found
            yield block

    return blocks


def _callable_items(source, rules, lengths, sample_weight):
    if rules.sequences and (sample_weight is not None or lengths is not None):
        raise ValueError("with a callable data source, lengths come with each block and "
                         "sample_weight is not supported")
    if sample_weight is not None:
        raise ValueError("sample_weight cannot be given with a callable data source; weight "
                         "rows inside the blocks instead")
    what = "(X, lengths) blocks" if rules.sequences else "row blocks"

    def items():
        iterator = source()
        try:
            iterator = iter(iterator)
        except TypeError:
            raise TypeError(f"a callable data source must return an iterator of {what}, got "
                            f"{type(iterator).__name__}") from None
        for item in iterator:
            if not rules.sequences:
                yield item, None, None
                continue
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError("each block of a callable data source must be a pair "
                                "(X, lengths)")
            yield item[0], item[1], None

    return items


def _memmap_items(X, rules, lengths, sample_weight):
    """Chunks of a memmap, each read as it is reached: unit-aligned rows, or whole
    sequences of at most :data:`STREAM_CHUNK_ROWS` rows (a longer one alone)."""
    if not rules.sequences:
        weights = v.check_sample_weight(sample_weight, X.shape[0])

        def rows():
            for chunk in array_chunks(X, weights):
                yield chunk.X, None, chunk.weights

        return rows
    bounds = check_lengths(lengths, X.shape[0])
    weights = v.check_sample_weight(sample_weight, len(bounds) - 1)
    starts = sequence_chunks(bounds, STREAM_CHUNK_ROWS)

    def sequences():
        for first, last in zip(starts[:-1], starts[1:], strict=True):
            lo, hi = bounds[first], bounds[last]
            yield (np.ascontiguousarray(X[lo:hi]), np.diff(bounds[first:last + 1]),
                   None if weights is None else weights[first:last])

    return sequences


def _dask_source(X, rules, lengths, sample_weight):
    if rules.dask is None:
        raise TypeError("this estimator does not take dask input")
    from .. import _dask_io as dask_io  # (dask is optional: imported when used)

    id_column = lengths if rules.sequences and isinstance(lengths, str) else None
    rows = dask_io.as_dask_rows(X, id_column=id_column, dtype=rules.dask_dtype)
    bounds = weights = None
    if rules.sequences:
        bounds = dask_io.partition_bounds(rows.X, None if id_column else lengths, rows.ids)
        if sample_weight is not None:
            weights = v.check_sample_weight(sample_weight, sum(len(b) - 1 for b in bounds))
    elif sample_weight is not None:
        weights = dask_io.rows_like(sample_weight, rows.X)
        dask_io.check_weights(weights)
    backend, n_features = rules.dask(rows, weights, bounds)
    return Source(backend, "dask", None, n_features, rows)
