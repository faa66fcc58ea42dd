"""The engine on a Dask cluster: one task per partition per pass, reduced on the client.

Each E-step submits, for every partition, a task that runs the model's own
``block_stats`` (the same numba kernels, on the worker's threads) over the
partition's segment pieces and returns the per-segment sums; the client adds
them in partition order with :func:`~fastem.engine.backends.add_segments`, the
rule every backend shares. The M-step runs on the client. The model and the
prepared parameters (small) travel with the tasks; the data are persisted on
the workers once per fit.

For very many rows (more than :data:`SEGMENT_REDUCTION_LIMIT` segments) each task
returns its partition's sum instead, and a fixed-shape tree of tasks adds them in
partition order: the bytes per pass then grow with the partitions, not the rows.

Determinism: results come back in partition order whatever the task timing, the
number of workers or retries after a lost worker, so the fit is a function of the
data and of the partition boundaries only. Partitions cut on segment boundaries
(:data:`~fastem.engine.units.SEGMENT_ROWS`) give bitwise the in-memory statistics;
other cuts add pieces of one segment separately (a round-off difference).

Dask is imported lazily: fastem runs without it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .._runtime import threads
from .backends import _Backend, add_segments, segment_pieces, segment_sums
from .protocol import Block
from .units import SEGMENT_ROWS

DASK_EXTRA = "pip install 'fastem[dask]'"

SEGMENT_REDUCTION_LIMIT = 1024
"""Up to this many segments per pass (134 million rows), the workers return per-segment
sums (bitwise the in-memory statistics); beyond, per-partition sums added by a
fixed-shape tree of tasks (see :class:`DaskBackend`)."""

TREE_FAN_IN = 32
"""Partition sums added per task of the reduction tree."""

INIT_ROWS = 1 << 20
"""Up to this many rows, initialisation gathers them all on the client (exactly the
in-memory start); beyond, it runs over the partitions (k-means|| and Lloyd passes)."""


def import_dask():
    """``(dask, dask.array)``; ImportError naming the extra when dask is missing."""
    try:
        import dask
        import dask.array as da
    except ImportError as error:  # pragma: no cover - exercised without dask installed
        raise ImportError(f"dask input needs dask: {DASK_EXTRA}") from error
    return dask, da


def is_dask_collection(obj) -> bool:
    """True for dask arrays, dataframes and series, without importing dask."""
    module = type(obj).__module__ or ""
    return module.split(".")[0] in ("dask", "dask_expr") and hasattr(obj, "__dask_graph__")


def _worker_threads():
    """Threads for the kernels of a task: the worker's own count on a distributed
    worker (so worker processes on one machine do not oversubscribe it), else None."""
    try:
        from distributed import get_worker
        return get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return None


def _partition_segments(payload, X, weights, bounds, missing, offset):
    """Worker side: ``[(segment index, flat sums)]`` of one partition."""
    model, prepared, shift = payload
    block = Block(np.ascontiguousarray(X), None if weights is None else np.asarray(weights),
                  bounds, missing)
    with threads(_worker_threads()):
        sums = segment_sums(model, prepared, shift, segment_pieces(block, offset))
    return [(index, stats.flat) for index, stats in sums]


def _partition_total(payload, X, weights, bounds, missing, offset):
    """Worker side: one partition's statistics (its segment sums added in order)."""
    model, _, shift = payload
    segments = _partition_segments(payload, X, weights, bounds, missing, offset)
    return add_segments(model, shift, [(index, model.layout.wrap(flat, shift))
                                       for index, flat in segments]).flat


def _add_in_order(*flats):
    total = np.array(flats[0], copy=True)
    for flat in flats[1:]:
        total += flat
    return total


def _map_partition(function, payload, X, weights, missing, offset):
    """Worker side: ``function(payload, block, offset)`` on one partition (rows only)."""
    block = Block(np.ascontiguousarray(X), None if weights is None else np.asarray(weights),
                  None, missing)
    with threads(_worker_threads()):
        return function(payload, block, offset)


def _fetch_rows(part, rows):
    """Worker side: rows ``rows`` (sorted local indices) of one part."""
    return np.asarray(part)[rows]


class DaskBackend(_Backend):
    """Data held as a dask array (row partitions), persisted for the fit.

    Parameters
    ----------
    X : dask array of shape (n_rows, n_features), chunked along rows only
    weights : dask array of shape (n_rows,) chunked like X's rows, or (HMMs) a
        NumPy array of per-sequence weights, or None
    bounds : list of int64 arrays or None
        Per partition, the cumulative lengths of its whole sequences (HMMs).
    missing : dask array of bool or None
        Rows with nothing observed (HMMs).
    reduction : {"segments", "tree"} or None
        ``segments``: each task returns its per-segment sums and the client adds
        them (bitwise the in-memory statistics on aligned partitions; bytes per
        pass grow with the rows). ``tree``: each task returns its partition's sum,
        added in partition order by a fixed-shape tree of tasks of fan-in
        :data:`TREE_FAN_IN` (bytes per pass grow with the partitions only; equal to
        the in-memory statistics to round-off, and still independent of workers and
        timing). None: the dask config value ``fastem.reduction`` if set, else
        ``segments`` up to :data:`SEGMENT_REDUCTION_LIMIT` segments, else ``tree``.
    init_rows : int, default :data:`INIT_ROWS`
        Initialisation uses all rows when there are at most this many; else the
        model's ``initialize_at_scale`` over the partitions when it has one, or a
        sample of this many rows drawn uniformly (reproducibly) over partitions.
    """

    def __init__(self, X, weights=None, bounds=None, missing=None, init_rows=None,
                 reduction=None):
        dask, _ = import_dask()
        self._dask = dask
        if X.ndim == 2 and len(X.chunks[1]) != 1:
            X = X.rechunk({1: -1})
        # Persisted once: every pass reads the workers' memory, never the source again.
        lazy = [a for a in (X, weights, missing) if _is_lazy(a)]
        persisted = iter(dask.persist(*lazy))
        X, weights, missing = (next(persisted) if _is_lazy(a) else a
                               for a in (X, weights, missing))
        # The persisted collections own the workers' copies: keep them for the fit.
        self._persisted = (X, weights, missing)
        self.X = X
        row_chunks = X.chunks[0]
        self.n_rows = int(sum(row_chunks))
        self.offsets = np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64)
        self._parts = list(X.to_delayed().ravel())
        self._weights = _row_parts(weights, len(self._parts)) if _is_lazy(weights) else None
        self._sequence_weights = None if _is_lazy(weights) else weights
        self._bounds = bounds
        # Per partition, what its task gets as weights: its row weights (delayed), or the
        # weights of its whole sequences (NumPy), or None.
        self._part_weights = [None] * len(self._parts)
        if self._weights is not None:
            self._part_weights = self._weights
        elif weights is not None and bounds is not None:
            first = np.concatenate([[0], np.cumsum([len(b) - 1 for b in bounds])])
            self._part_weights = [weights[first[p]:first[p + 1]] for p in range(len(bounds))]
        self._missing = _row_parts(missing, len(self._parts))
        self.init_rows = int(INIT_ROWS if init_rows is None else init_rows)
        if reduction is None:
            reduction = dask.config.get("fastem.reduction", None)
        if reduction is None:
            segments = -(-self.n_rows // SEGMENT_ROWS)
            reduction = "segments" if segments <= SEGMENT_REDUCTION_LIMIT else "tree"
        if reduction not in ("segments", "tree"):
            raise ValueError(f"reduction must be 'segments' or 'tree', got {reduction!r}")
        self.reduction = reduction
        self.n_partitions = len(self._parts)

    # -- one pass ---------------------------------------------------------------
    def stats(self, model, params):
        dask = self._dask
        prepared = model.prepare(params)
        shift = model.shift(params)
        payload = dask.delayed((model, prepared, shift), traverse=False)
        work = _partition_segments if self.reduction == "segments" else _partition_total
        tasks = [dask.delayed(work, pure=True)(
                     payload, part, self._part_weights[p],
                     None if self._bounds is None else self._bounds[p],
                     None if self._missing is None else self._missing[p],
                     int(self.offsets[p]))
                 for p, part in enumerate(self._parts)]
        if self.reduction == "tree":
            while len(tasks) > 1:  # the shape depends on the number of partitions only
                tasks = [dask.delayed(_add_in_order, pure=True)(*tasks[i:i + TREE_FAN_IN])
                         for i in range(0, len(tasks), TREE_FAN_IN)]
            (flat,) = dask.compute(tasks[0], **self._compute_options())
            return model.layout.wrap(np.array(flat, dtype=np.float64), shift)
        results = dask.compute(*tasks, **self._compute_options())
        segments = [(index, model.layout.wrap(np.array(flat, dtype=np.float64), shift))
                    for result in results for index, flat in result]
        return add_segments(model, shift, segments)

    def map_blocks(self, function, payload):
        """One task per partition (rows only, not sequences), results in partition order."""
        if self._bounds is not None:
            raise NotImplementedError("map_blocks over sequences")
        dask = self._dask
        shared = dask.delayed(payload, traverse=False)
        tasks = [dask.delayed(_map_partition, pure=True)(
                     function, shared, part, self._part_weights[p],
                     None if self._missing is None else self._missing[p], int(self.offsets[p]))
                 for p, part in enumerate(self._parts)]
        return list(dask.compute(*tasks, **self._compute_options()))

    def initialize(self, model, random_state):
        """Up to ``init_rows`` rows, the model initialises from all of them on the client
        (as in memory, so aligned partitions fit bitwise like the in-memory fit). Beyond
        that, a model with ``initialize_at_scale`` initialises over the partitions
        (k-means|| and Lloyd passes on the workers); others from a uniform sample."""
        if (self.n_rows > self.init_rows and self._bounds is None
                and hasattr(model, "initialize_at_scale")):
            return model.initialize_at_scale(self, random_state)
        return model.initialize(self.initialization_block(), random_state)

    def _compute_options(self):
        # Without a distributed client, run the tasks one after the other in this
        # process: each already uses every core through the kernels' threads.
        return {} if _active_client() is not None else {"scheduler": "sync"}

    # -- initialisation -----------------------------------------------------------
    def initialization_block(self) -> Block:
        """All rows (at most ``init_rows``), else a uniform sample of whole rows
        (HMMs: whole partitions drawn uniformly, up to ``init_rows`` rows)."""
        dask = self._dask
        if self.n_rows <= self.init_rows or self._bounds is not None:
            parts, take = self._leading_parts()
            arrays = dask.compute(*parts, **self._compute_options())
            return self._block_of(arrays, take)
        rng = np.random.RandomState(self.n_rows % (2**32 - 1))
        chosen = np.sort(rng.choice(self.n_rows, size=self.init_rows, replace=False))
        owner = np.searchsorted(self.offsets, chosen, side="right") - 1
        tasks, per_part = [], []
        for p in np.unique(owner):
            local = chosen[owner == p] - self.offsets[p]
            tasks.append(dask.delayed(_fetch_rows, pure=True)(self._parts[p], local))
            per_part.append((p, local))
        rows = np.concatenate(dask.compute(*tasks, **self._compute_options()))
        weights = None
        if self._weights is not None:
            weight_tasks = [dask.delayed(_fetch_rows, pure=True)(self._weights[p], local)
                            for p, local in per_part]
            weights = np.concatenate(dask.compute(*weight_tasks, **self._compute_options()))
        return Block(rows, weights)

    def _leading_parts(self):
        """All partitions; for sequences beyond ``init_rows`` rows, partitions drawn
        uniformly (reproducibly) until they hold that many rows, in partition order."""
        order = np.arange(self.n_partitions)
        if self.n_rows > self.init_rows and self._bounds is not None:
            order = np.random.RandomState(self.n_rows % (2**32 - 1)).permutation(order)
        taken, rows = [], 0
        for p in order:
            taken.append(int(p))
            rows += int(self.offsets[p + 1] - self.offsets[p])
            if rows >= self.init_rows and self._bounds is not None:
                break
        taken.sort()
        parts = [self._parts[p] for p in taken]
        if self._weights is not None:
            parts += [self._weights[p] for p in taken]
        if self._missing is not None:
            parts += [self._missing[p] for p in taken]
        return parts, taken

    def _block_of(self, arrays, taken):
        n = len(taken)
        X = np.concatenate([np.asarray(a) for a in arrays[:n]])
        rest = list(arrays[n:])
        weights = missing = bounds = None
        if self._weights is not None:
            weights = np.concatenate(rest[:n])
            rest = rest[n:]
        if self._missing is not None:
            missing = np.concatenate(rest[:n])
        if self._bounds is not None:
            pieces, base = [np.zeros(1, dtype=np.int64)], 0
            for p in taken:
                pieces.append(self._bounds[p][1:] + base)
                base += int(self.offsets[p + 1] - self.offsets[p])
            bounds = np.concatenate(pieces).astype(np.int64)
            if self._sequence_weights is not None:
                weights = np.concatenate([self._part_weights[p] for p in taken])
        return Block(X, weights, bounds, missing)

    def blocks(self) -> Iterator[Block]:
        """The partitions one by one, fetched to the client (for small checks only)."""
        for p in range(self.n_partitions):
            arrays = self._dask.compute(self._parts[p], **self._compute_options())
            yield Block(np.asarray(arrays[0]))


def _is_lazy(obj):
    return obj is not None and is_dask_collection(obj)


def _row_parts(array, n_parts):
    if array is None:
        return None
    parts = list(array.to_delayed().ravel())
    if len(parts) != n_parts:
        raise ValueError("weights must be chunked like the rows of X")
    return parts


def _active_client():
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None
