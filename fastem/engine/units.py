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


SEGMENT_ROWS = 512 * UNIT_ROWS
"""Rows per reduction segment (131,072). The statistics of a pass are the sums, in
order, of per-segment sums that each start from zero: segment s holds the work
units (rows, or whole sequences) that start in global rows [s * SEGMENT_ROWS,
(s + 1) * SEGMENT_ROWS). Segments are what parallel backends return, so data cut
into partitions on segment boundaries give bitwise the in-memory statistics."""


def segment_of_rows(start_rows):
    """Segment index of units starting at the given global rows."""
    return start_rows // SEGMENT_ROWS
