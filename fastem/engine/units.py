"""How rows are cut into work units.

Unit boundaries depend on the number of rows only (never on the thread
count), which is what makes every reduction bitwise reproducible. The batch
size only bounds how many per-unit partial vectors exist at once; partials are
still added in unit order, so it does not change any result.
"""

from __future__ import annotations

UNIT_ROWS = 256
"""Rows per work unit: small enough to balance 2..64 threads, large enough to
amortise the per-unit overhead."""

_PARTIAL_BYTES = 8 << 20
_MAX_BATCH = 256


def batch_units(stat_size: int) -> int:
    """Number of units whose partial statistics (``stat_size`` doubles each) are held at once."""
    return max(1, min(_MAX_BATCH, _PARTIAL_BYTES // (8 * max(1, stat_size))))
