"""fastem.engine.sources: one function turns arrays, memmaps, callables and dask input into
a backend, by an estimator's rules (rows or whole sequences, its own validation)."""

import numpy as np
import pytest

from fastem.engine import Block, LocalBackend, StreamBackend
from fastem.engine.backends import STREAM_CHUNK_ROWS
from fastem.engine.sequences import sequence_chunks
from fastem.engine.sources import SourceRules, open_source

_SEEN = []


def _check(X, lengths, weights, whole, n_features):
    """A validation callback that records what it was given."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError("X must be 2-d")
    _SEEN.append((X.shape[0], whole, n_features))
    bounds = None if lengths is None else np.concatenate([[0], np.cumsum(lengths)])
    return Block(X, None if weights is None else np.asarray(weights, dtype=np.float64),
                 bounds)


ROWS = SourceRules(_check)
SEQUENCES = SourceRules(_check, sequences=True)


@pytest.fixture(autouse=True)
def _fresh():
    _SEEN.clear()


def _memmap(tmp_path, X):
    path = tmp_path / "X.dat"
    mapped = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    mapped[:] = X
    mapped.flush()
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)


def test_an_array_is_one_checked_block_in_memory():
    X = np.arange(12.0).reshape(6, 2)
    source = open_source(X, ROWS, sample_weight=np.ones(6))
    assert source.kind == "memory" and isinstance(source.backend, LocalBackend)
    assert source.n_features == 2 and source.n_rows == 6 and source.rows is None
    np.testing.assert_array_equal(source.sample.X, X)
    assert _SEEN == [(6, True, None)]


def test_a_memmap_of_rows_streams_unit_aligned_chunks_with_their_weights(tmp_path):
    n = 2 * STREAM_CHUNK_ROWS + 7
    X = np.random.RandomState(0).normal(size=(n, 3))
    weights = np.random.RandomState(1).uniform(size=n)
    source = open_source(_memmap(tmp_path, X), ROWS, sample_weight=weights)
    assert source.kind == "stream" and isinstance(source.backend, StreamBackend)
    blocks = list(source.backend.blocks())
    assert [b.n_rows for b in blocks] == [STREAM_CHUNK_ROWS, STREAM_CHUNK_ROWS, 7]
    np.testing.assert_array_equal(np.concatenate([b.X for b in blocks]), X)
    np.testing.assert_array_equal(np.concatenate([b.weights for b in blocks]), weights)
    # Later blocks are checked against the first one's feature count.
    assert [seen[1:] for seen in _SEEN[-3:]] == [(False, None), (False, 3), (False, 3)]


def test_a_memmap_of_sequences_streams_whole_sequences(tmp_path):
    rng = np.random.RandomState(2)
    lengths = rng.randint(1, STREAM_CHUNK_ROWS // 3, size=40)
    lengths[5] = STREAM_CHUNK_ROWS + 3  # longer than a chunk: a chunk of its own
    X = rng.normal(size=(lengths.sum(), 2))
    weights = rng.uniform(size=len(lengths))
    source = open_source(_memmap(tmp_path, X), SEQUENCES, lengths=lengths,
                         sample_weight=weights)
    blocks = list(source.backend.blocks())
    np.testing.assert_array_equal(np.concatenate([np.diff(b.bounds) for b in blocks]), lengths)
    np.testing.assert_array_equal(np.concatenate([b.weights for b in blocks]), weights)
    np.testing.assert_array_equal(np.concatenate([b.X for b in blocks]), X)
    assert all(b.n_rows <= STREAM_CHUNK_ROWS or len(b.bounds) == 2 for b in blocks)
    assert len(blocks) > 2


@pytest.mark.parametrize("limit", [1, 3, 5, 8, 100])
def test_sequence_chunks_match_a_greedy_reference(limit):
    lengths = np.array([2, 3, 1, 6, 1, 1, 2, 4])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    starts, rows = [0], 0
    for s, length in enumerate(lengths):  # the reference: add while it fits, else cut
        if s and rows + length > limit:
            starts.append(s)
            rows = 0
        rows += length
    assert sequence_chunks(bounds, limit) == starts + [len(lengths)]


def test_a_callable_of_row_blocks_is_read_at_every_pass():
    parts = [np.ones((4, 2)), np.zeros((3, 2))]
    source = open_source(lambda: iter(parts), ROWS)
    # The first blocks are read for the feature count and not held (initialisation reads
    # them again).
    assert source.kind == "stream" and source.sample is None and source.sample_rows == 7
    for _ in range(2):
        assert [b.n_rows for b in source.backend.blocks()] == [4, 3]


def test_a_callable_of_sequence_pairs():
    parts = [(np.ones((4, 2)), [1, 3]), (np.zeros((3, 2)), [3])]
    source = open_source(lambda: iter(parts), SEQUENCES)
    blocks = list(source.backend.blocks())
    assert [b.bounds.tolist() for b in blocks] == [[0, 1, 4], [0, 3]]


def test_callable_sources_refuse_what_they_cannot_carry():
    with pytest.raises(ValueError, match="sample_weight cannot be given"):
        open_source(lambda: iter([]), ROWS, sample_weight=[1.0])
    with pytest.raises(ValueError, match="lengths come with each block"):
        open_source(lambda: iter([]), SEQUENCES, lengths=[3])
    with pytest.raises(TypeError, match="iterator of row blocks, got int"):
        open_source(lambda: 3, ROWS)
    with pytest.raises(TypeError, match="pair"):
        open_source(lambda: iter([np.ones((3, 2))]), SEQUENCES)
    with pytest.raises(ValueError, match="a block has 3 features, the first had 2"):
        source = open_source(lambda: iter([np.ones((3, 2)), np.ones((3, 3))]), ROWS)
        list(source.backend.blocks())
    with pytest.raises(ValueError, match="no blocks"):
        open_source(lambda: iter([]), ROWS)


def test_without_streams_a_memmap_is_an_array(tmp_path):
    X = np.arange(10.0).reshape(5, 2)
    source = open_source(_memmap(tmp_path, X), SourceRules(_check, streams=False))
    assert source.kind == "memory"
    np.testing.assert_array_equal(source.sample.X, X)


def test_dask_input_needs_a_dask_rule():
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="does not take dask input"):
        open_source(da.ones((4, 2), chunks=2), ROWS)
    with pytest.raises(TypeError, match="does not take dask input"):
        open_source(np.ones((4, 2)), ROWS, others=(da.ones(4, chunks=2),))


def test_dask_rows_come_with_checked_weights_and_sequence_bounds():
    da = pytest.importorskip("dask.array")
    got = {}

    def dask(rows, weights, bounds):
        got.update(rows=rows, weights=weights, bounds=bounds)
        return "backend", rows.X.shape[1]

    X = da.ones((6, 2), chunks=(3, 2))
    source = open_source(X, SourceRules(_check, sequences=True, dask=dask),
                         lengths=[1, 2, 3], sample_weight=[1.0, 2.0, 0.0])
    assert (source.kind, source.backend, source.n_features) == ("dask", "backend", 2)
    assert [b.tolist() for b in got["bounds"]] == [[0, 1, 3], [0, 3]]
    np.testing.assert_array_equal(got["weights"], [1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="non-negative"):
        open_source(X, SourceRules(_check, dask=dask), sample_weight=-np.ones(6))
