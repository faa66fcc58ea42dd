"""Random numbers keyed by global row index, the same however the rows are partitioned.

A ``np.random.RandomState`` consumed block after block gives different draws to
the same row when the blocks are cut differently, or when partitions run on
different workers. Here a draw is a pure function of ``(seed, global index)``
(a SplitMix64 finaliser of the index mixed with the seed; Steele, Lea & Flood
2014), so a sampling decision about row ``i`` is the same on one machine, in a
stream and on any number of workers. The seed itself comes from the caller's
``RandomState``, one draw per use, so fits stay reproducible from
``random_state``.
"""

from __future__ import annotations

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_UNIT = 2.0 ** -53


def draw_seed(random_state: np.random.RandomState) -> int:
    """A 63-bit seed for :func:`row_uniforms`, drawn from the caller's random state."""
    return int(random_state.randint(0, 2**62, dtype=np.int64)) * 2 + 1


def row_uniforms(seed: int, start: int, n_rows: int, per_row: int = 1) -> np.ndarray:
    """Uniform draws in (0, 1) for rows ``start:start + n_rows``: shape ``(n_rows,)``, or
    ``(n_rows, per_row)`` independent draws per row when ``per_row > 1``."""
    index = np.arange(start * per_row, (start + n_rows) * per_row, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (index + np.uint64(1)) * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z ^= z >> np.uint64(31)
    # 53 random bits, shifted by half a step: never exactly 0 or 1 (logs stay finite).
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * _UNIT
    return u if per_row == 1 else u.reshape(n_rows, per_row)
