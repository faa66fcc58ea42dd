"""Sequences in the engine: boundaries from ``lengths``, work units over whole sequences,
and chunks of whole sequences for streamed data."""

from __future__ import annotations

import numpy as np

_MIN_UNIT_ROWS = 1024
_UNITS_TARGET = 256


def check_lengths(lengths, n_samples):
    """Cumulative bounds (S + 1,) int64 from hmmlearn's ``lengths`` (None: one sequence).

    Every length is range-checked (1 <= length <= n_samples) before any sum, so that
    no combination of huge lengths can wrap around and match n_samples.
    """
    if lengths is None:
        return np.array([0, n_samples], dtype=np.int64)
    array = np.asarray(lengths)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-d array of sequence lengths, got shape "
                         f"{array.shape}")
    if array.dtype.kind not in "iuf":
        raise TypeError(f"lengths must hold integers, got dtype {array.dtype}")
    if array.size > n_samples:
        raise ValueError(f"lengths has {array.size} sequences, but X has only {n_samples} "
                         "samples")
    if array.dtype.kind == "f" and not (np.isfinite(array).all()
                                        and np.array_equal(array, np.floor(array))):
        raise ValueError(f"lengths must hold integers, got dtype {array.dtype} with "
                         "fractional or non-finite values")
    if array.min() <= 0:
        raise ValueError(f"lengths must be positive, got {array[array <= 0][:5].tolist()}")
    if array.max() > n_samples:
        raise ValueError(f"lengths holds {array.max().item():.6g}, more than the {n_samples} "
                         "samples of X")
    array = array.astype(np.int64)  # each in [1, n_samples]: the sum cannot overflow
    if array.sum() != n_samples:
        raise ValueError(f"lengths sum to {int(array.sum())}, but X has {n_samples} samples")
    return np.concatenate([[0], np.cumsum(array)]).astype(np.int64)


def sequence_units(bounds):
    """Sequence indices starting each work unit: consecutive sequences of at least
    ``max(1024, n / 256)`` rows together. Depends on the lengths only."""
    n = int(bounds[-1])
    target = max(_MIN_UNIT_ROWS, -(-n // _UNITS_TARGET))
    starts = [0]
    rows = 0
    for s in range(len(bounds) - 1):
        rows += int(bounds[s + 1] - bounds[s])
        if rows >= target and s + 1 < len(bounds) - 1:
            starts.append(s + 1)
            rows = 0
    starts.append(len(bounds) - 1)
    return np.asarray(starts, dtype=np.int64)


def sequence_chunks(bounds, limit):
    """Sequence indices starting each chunk of whole sequences of at most ``limit`` rows
    (a longer sequence is a chunk of its own), ending with the number of sequences.
    Depends on the lengths only."""
    starts = [0]
    first_row = 0
    for s in range(1, len(bounds) - 1):
        if bounds[s + 1] - first_row > limit:
            starts.append(s)
            first_row = bounds[s]
    starts.append(len(bounds) - 1)
    return starts
