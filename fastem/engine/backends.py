"""Backends: where the blocks come from, and the reduction of their statistics.

A backend maps a model's ``block_stats`` over its data in a fixed order and
returns one :class:`~fastem.engine.stats.Stats`. Every backend adds each
block into the same running total (never block totals into a grand total), so
blocks that align with the kernels' work units reproduce the single-block sums
bitwise.

* :class:`LocalBackend`: in-memory data; each block is handed to the compiled
  kernels, which run its work units on all threads.
* :class:`StreamBackend`: data that do not fit in memory, read once per pass:
  an ``np.memmap`` (read in unit-aligned chunks, never copied whole) or a
  callable returning an iterator of blocks (e.g. reading a directory of files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .protocol import Block
from .units import UNIT_ROWS


def pass_stats(model, params, blocks: Iterable[Block]):
    """One E-step pass: the statistics of all ``blocks`` under ``params``, in order."""
    prepared = model.prepare(params)
    stats = model.layout.zeros(model.shift(params))
    for block in blocks:
        model.block_stats(prepared, block, stats)
    return stats


class _Backend:
    """What every backend shares: one pass is ``pass_stats`` over its blocks, in order."""

    def blocks(self) -> Iterator[Block]:
        raise NotImplementedError

    def stats(self, model, params):
        return pass_stats(model, params, self.blocks())


class LocalBackend(_Backend):
    """In-memory data, as one or more blocks kept for the whole fit.

    Parameters
    ----------
    blocks : list of Block
        Usually one block holding all rows; models split it further only to
        bound temporary memory.
    """

    def __init__(self, blocks: list[Block]):
        self._blocks = list(blocks)
        self.n_rows = sum(block.n_rows for block in self._blocks)

    def blocks(self) -> Iterator[Block]:
        return iter(self._blocks)

    def initialization_block(self) -> Block:
        """The data initial parameters are computed from: all of it."""
        if len(self._blocks) == 1:
            return self._blocks[0]
        return concatenate_blocks(self._blocks)


STREAM_CHUNK_ROWS = 512 * UNIT_ROWS
"""Rows per chunk read from a memmap: a multiple of the work unit, so that the
streamed statistics equal the in-memory ones bitwise."""


class StreamBackend(_Backend):
    """Data read block by block at every pass.

    Parameters
    ----------
    source : callable
        ``source()`` returns a fresh iterator of :class:`Block` (called once per
        pass, and once for initialisation).
    init_rows : int
        Initialisation uses the first blocks up to this many rows.
    """

    def __init__(self, source: Callable[[], Iterable[Block]], init_rows: int = 1 << 20):
        self._source = source
        self.init_rows = int(init_rows)

    @classmethod
    def from_array(cls, X, weights=None, chunk_rows: int = STREAM_CHUNK_ROWS):
        """Unit-aligned row chunks of an array (a memmap is read chunk by chunk)."""
        n = X.shape[0]

        def chunks():
            for lo in range(0, n, chunk_rows):
                hi = min(lo + chunk_rows, n)
                yield Block(np.ascontiguousarray(X[lo:hi]),
                            None if weights is None else weights[lo:hi])

        return cls(chunks, init_rows=n)

    def blocks(self) -> Iterator[Block]:
        return iter(self._source())

    def initialization_block(self) -> Block:
        taken, rows = [], 0
        for block in self.blocks():
            taken.append(block)
            rows += block.n_rows
            if rows >= self.init_rows:
                break
        if not taken:
            raise ValueError("the data source yielded no blocks")
        return taken[0] if len(taken) == 1 else concatenate_blocks(taken)


def concatenate_blocks(blocks: list[Block]) -> Block:
    """One block holding the rows (and sequences) of several."""
    X = np.concatenate([b.X for b in blocks])
    weights = None
    if any(b.weights is not None for b in blocks):
        weights = np.concatenate([
            b.weights if b.weights is not None
            else np.ones(b.n_rows if b.bounds is None else len(b.bounds) - 1)
            for b in blocks])
    bounds = None
    if blocks[0].bounds is not None:
        offsets = np.cumsum([0] + [b.n_rows for b in blocks[:-1]])
        bounds = np.concatenate([[0]] + [b.bounds[1:] + o for b, o in zip(blocks, offsets,
                                                                           strict=True)])
        bounds = bounds.astype(np.int64)
    missing = None
    if any(b.missing is not None for b in blocks):
        missing = np.concatenate([np.zeros(b.n_rows, dtype=bool) if b.missing is None
                                  else b.missing for b in blocks])
    return Block(X, weights, bounds, missing)
