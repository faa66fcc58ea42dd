"""Sequence boundaries and work units (they live in the engine: :mod:`fastem.engine.sequences`)."""

from ..engine.sequences import check_lengths, sequence_chunks, sequence_units

__all__ = ["check_lengths", "sequence_chunks", "sequence_units"]
