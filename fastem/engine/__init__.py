"""The generic EM machinery shared by every model."""

from .em import EMModel, EMRun, run_em
from .units import UNIT_ROWS, batch_units

__all__ = ["EMModel", "EMRun", "run_em", "UNIT_ROWS", "batch_units"]
