"""Backends: where the blocks come from, and the reduction of their statistics.

A backend maps a model's ``block_stats`` over its data in a fixed order and
returns one :class:`~fastem.engine.stats.Stats`. The reduction is defined once,
here: the rows are cut into segments (:data:`~fastem.engine.units.SEGMENT_ROWS`
global rows; a sequence belongs to the segment its first row is in); each
segment's blocks add their work units, in order, into a running segment sum that
starts from zero; segment sums are added to the total in order. So blocks that
align with the work units reproduce the in-memory sums bitwise when read one
after the other (a stream), and partitions cut on segment boundaries reproduce
them bitwise when summed in parallel (a cluster).

* :class:`LocalBackend`: in-memory data; each block is handed to the compiled
  kernels, which run its work units on all threads.
* :class:`StreamBackend`: data that do not fit in memory, read once per pass:
  an ``np.memmap`` (read in unit-aligned chunks, never copied whole) or a
  callable returning an iterator of blocks (e.g. reading a directory of files).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .protocol import Block
from .stats import Stats
from .units import SEGMENT_ROWS, UNIT_ROWS, segment_of_rows


def block_rows(block: Block, lo: int, hi: int, first: int | None = None,
               last: int | None = None) -> Block:
    """Rows ``lo:hi`` of ``block`` as a block of views (sequences ``first:last``
    when the block holds sequences)."""
    if block.bounds is None:
        return Block(block.X[lo:hi], None if block.weights is None else block.weights[lo:hi],
                     None, None if block.missing is None else block.missing[lo:hi])
    bounds = block.bounds[first:last + 1] - block.bounds[first]
    return Block(block.X[lo:hi], None if block.weights is None else block.weights[first:last],
                 bounds, None if block.missing is None else block.missing[lo:hi])


def segment_pieces(block: Block, offset: int) -> list[tuple[int, Block]]:
    """``block`` (its first row at global row ``offset``) cut on segment boundaries:
    ``(segment index, piece)`` in order; the block itself when it lies in one segment."""
    n = block.n_rows
    if block.bounds is None:
        first, last = segment_of_rows(offset), segment_of_rows(offset + max(n, 1) - 1)
        if first == last:
            return [(first, block)]
        cuts = [0] + [s * SEGMENT_ROWS - offset for s in range(first + 1, last + 1)] + [n]
        return [(first + i, block_rows(block, lo, hi))
                for i, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:], strict=True))]
    starts = block.bounds[:-1]
    if len(starts) == 0:
        return [(segment_of_rows(offset), block)]
    segments = segment_of_rows(offset + starts)
    if segments[0] == segments[-1]:
        return [(int(segments[0]), block)]
    change = np.flatnonzero(np.diff(segments)) + 1
    edges = np.concatenate([[0], change, [len(starts)]])
    return [(int(segments[a]), block_rows(block, int(block.bounds[a]), int(block.bounds[b]), a, b))
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def indexed_pieces(blocks: Iterable[Block], offset: int = 0) -> Iterator[tuple[int, Block]]:
    """Segment pieces of consecutive blocks, the first starting at global row ``offset``."""
    for block in blocks:
        yield from segment_pieces(block, offset)
        offset += block.n_rows


def segment_sums(model, prepared, shift, pieces: Iterable[tuple[int, Block]]):
    """``[(segment index, Stats)]``: per-segment sums of consecutive pieces, in order."""
    sums: list = []
    for index, piece in pieces:
        if not sums or sums[-1][0] != index:
            sums.append((index, model.layout.zeros(shift)))
        model.block_stats(prepared, piece, sums[-1][1])
    return sums


def add_segments(model, shift, segments: Iterable[tuple[int, Stats]]):
    """The total of segment sums, added in order (pieces of one segment computed
    apart, e.g. on two workers, are added together first)."""
    total = model.layout.zeros(shift)
    current, pending = None, None
    for index, stats in segments:
        if pending is not None and index == current:
            pending.flat += stats.flat
            continue
        if pending is not None:
            total.flat += pending.flat
        current, pending = index, stats.copy()
    if pending is not None:
        total.flat += pending.flat
    return total


def pass_stats(model, params, blocks: Iterable[Block], offset: int = 0):
    """One E-step pass: the statistics of consecutive ``blocks`` under ``params``."""
    return pieces_stats(model, params, indexed_pieces(blocks, offset))


def pieces_stats(model, params, pieces: Iterable[tuple[int, Block]]):
    """One E-step pass over ``(segment index, block)`` pieces, in order."""
    prepared = model.prepare(params)
    shift = model.shift(params)
    return add_segments(model, shift, segment_sums(model, prepared, shift, pieces))


class _Backend:
    """What every backend shares: one pass is ``pass_stats`` over its blocks, in order."""

    def blocks(self) -> Iterator[Block]:
        raise NotImplementedError

    def stats(self, model, params):
        return pass_stats(model, params, self.blocks())

    def map_blocks(self, function: Callable, payload) -> list:
        """``[function(payload, block, offset)]`` over the blocks in order, ``offset`` being
        the block's first global row: per-block work whose result is not an additive
        statistic (rows sampled for an initialisation, say)."""
        results, offset = [], 0
        for block in self.blocks():
            results.append(function(payload, block, offset))
            offset += block.n_rows
        return results

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
        # Cut once: the pieces (views) keep their per-block caches for the whole fit.
        self._pieces = list(indexed_pieces(self._blocks))

    def blocks(self) -> Iterator[Block]:
        return iter(self._blocks)

    def stats(self, model, params):
        return pieces_stats(model, params, self._pieces)

    def initialization_block(self) -> Block:
        """The data initial parameters are computed from: all of it."""
        if len(self._blocks) == 1:
            return self._blocks[0]
        return concatenate_blocks(self._blocks)


STREAM_CHUNK_ROWS = 512 * UNIT_ROWS
"""Rows per chunk read from a memmap: a multiple of the work unit, so that the
streamed statistics equal the in-memory ones bitwise."""


def array_chunks(X, weights=None, chunk_rows: int = STREAM_CHUNK_ROWS) -> Iterator[Block]:
    """Blocks of ``chunk_rows`` consecutive rows of ``X`` (and ``weights``), each read
    into memory as it is reached: one pass over an array or memmap."""
    for lo in range(0, X.shape[0], chunk_rows):
        hi = min(lo + chunk_rows, X.shape[0])
        yield Block(np.ascontiguousarray(X[lo:hi]), None if weights is None else weights[lo:hi])


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
        self._first_pass = None  # what the first complete pass read: _PassRecord
        self._passes = 0

    @classmethod
    def from_array(cls, X, weights=None, chunk_rows: int = STREAM_CHUNK_ROWS):
        """Unit-aligned row chunks of an array (a memmap is read chunk by chunk)."""
        return cls(lambda: array_chunks(X, weights, chunk_rows), init_rows=X.shape[0])

    def blocks(self) -> Iterator[Block]:
        """One pass over the source; a complete pass must read what the first one read."""
        record = _PassRecord()
        first = self._first_pass
        for block in self._source():
            record.add(block)
            index = record.n_blocks - 1
            if first is not None and (index >= first.n_blocks
                                      or record.fingerprints[index] != first.fingerprints[index]):
                self._differs(f"its block {index} holds other rows than on the first pass")
            yield block
        self._passes += 1
        if first is None:
            self._first_pass = record
        elif (record.n_rows, record.n_sequences) != (first.n_rows, first.n_sequences):
            sequences = ("" if record.n_sequences is None else
                         f" ({record.n_sequences} sequences; first pass {first.n_sequences})")
            self._differs(f"it yielded {record.n_rows} rows where the first pass yielded "
                          f"{first.n_rows}{sequences}")
        elif record.n_blocks != first.n_blocks:
            self._differs(f"it yielded {record.n_blocks} blocks where the first pass yielded "
                          f"{first.n_blocks}")

    def _differs(self, what):
        # Exact streamed EM sums every row at every pass: a source that yields other
        # rows on another call (a file rewritten, a reader that is not restartable)
        # would be fitted silently to a mixture of data sets.
        raise DataChangedError(
            f"the data source changed between passes: on pass {self._passes + 1} {what}. "
            "Exact streamed EM reads the same data at every pass: the callable must "
            "return a fresh iterator over the same blocks at every call.")

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


class DataChangedError(ValueError):
    """A stream's pass read other data than its first pass: fatal even on a SQUAREM
    trial pass, whose other ValueErrors only reject the trial."""


class _PassRecord:
    """What one pass over a stream read: row and sequence counts, and per block a hash
    of its size and of its first and last rows and weights (cheap whatever its size:
    a block replaced, reordered, cut or extended changes it)."""

    SAMPLED_ROWS = 64

    def __init__(self):
        self.n_rows, self.n_sequences, self.n_blocks = 0, None, 0
        self.fingerprints: list[bytes] = []

    def add(self, block: Block):
        digest = hashlib.blake2b(digest_size=16)
        X, n = block.X, block.n_rows
        digest.update(repr((X.dtype.str, X.shape)).encode())
        for part in (X[:self.SAMPLED_ROWS], X[max(0, n - self.SAMPLED_ROWS):]):
            digest.update(np.ascontiguousarray(part).tobytes())
        for extra in (block.weights, block.bounds):
            if extra is not None:
                digest.update(np.ascontiguousarray(extra[:self.SAMPLED_ROWS]).tobytes())
                digest.update(np.ascontiguousarray(extra[-self.SAMPLED_ROWS:]).tobytes())
        self.fingerprints.append(digest.digest())
        self.n_blocks += 1
        self.n_rows += n
        if block.bounds is not None:
            self.n_sequences = (self.n_sequences or 0) + len(block.bounds) - 1


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
