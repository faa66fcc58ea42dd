"""Sequence boundaries (``lengths``) and the work units over sequences."""

from __future__ import annotations

import numpy as np

_MIN_UNIT_ROWS = 1024
_UNITS_TARGET = 256


def check_lengths(lengths, n_samples):
    """Cumulative bounds (S + 1,) int64 from hmmlearn's ``lengths`` (None: one sequence)."""
    if lengths is None:
        return np.array([0, n_samples], dtype=np.int64)
    array = np.asarray(lengths)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-d array of sequence lengths, got shape "
                         f"{array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))):
            raise ValueError(f"lengths must hold integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if np.any(array <= 0):
        raise ValueError(f"lengths must be positive, got {array[array <= 0][:5].tolist()}")
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
