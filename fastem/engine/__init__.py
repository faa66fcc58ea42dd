"""The EM engine: one driver, a block-level model protocol, typed additive statistics,
backends that map blocks and reduce in a fixed order, and schedules (plain EM, SQUAREM,
online).

A model (:class:`BlockModel`) is written once and gets restarts, threads, bitwise
determinism, SQUAREM and online updates from here; see ``examples/custom_model.py``.
"""

from .backends import LocalBackend, StreamBackend, concatenate_blocks, pass_stats
from .em import EMRun, run_em
from .fitting import OnlineFitter, fit_model
from .monitor import ConvergenceMonitor
from .protocol import Block, BlockModel, ModelBase
from .schedules import SCHEDULES, OnlineEM, OnlineState, PlainEM, Squarem, make_schedule
from .stats import Stats, StatsLayout
from .units import UNIT_ROWS, batch_units

__all__ = ["Block", "BlockModel", "ConvergenceMonitor", "EMRun", "LocalBackend", "ModelBase",
           "OnlineEM", "OnlineFitter", "OnlineState", "PlainEM", "SCHEDULES", "Squarem", "Stats",
           "StatsLayout", "StreamBackend", "UNIT_ROWS", "batch_units", "concatenate_blocks",
           "fit_model", "make_schedule", "pass_stats", "run_em"]
