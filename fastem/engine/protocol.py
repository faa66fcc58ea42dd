"""What a model provides to the engine, and what a block of data is.

A model is data-free: hyperparameters and shapes. The data live in a backend
(:mod:`fastem.engine.backends`), which hands the model one :class:`Block` at a
time. One EM pass is::

    prepared = model.prepare(params)              # once per pass (factorisations, logs)
    stats = model.layout.zeros(model.shift(params))
    for block in backend's blocks, in a fixed order:
        model.block_stats(prepared, block, stats)  # adds the block, in unit order
    objective = model.objective(stats, params)
    params = model.m_step(stats, params)

``block_stats`` *adds* into ``stats`` (it never starts a fresh sum): the
per-unit partials of every block join one running total in one fixed order, so
the same rows cut into blocks that align with the work units give bitwise the
same statistics as one block, whatever the number of threads.

``pack``/``unpack`` map parameters to a flat float64 vector in an
unconstrained space (log weights and probabilities, Cholesky factors with log
diagonals, log rates): what SQUAREM extrapolates. ``unpack`` raises
``ValueError`` for a vector that maps to no valid parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .stats import Stats, StatsLayout


@dataclass
class Block:
    """Rows of data handed to a model's ``block_stats``.

    Attributes
    ----------
    X : ndarray of shape (n_rows, ...)
        The rows (a view where possible: an in-memory array or a memmap).
    weights : ndarray or None
        Per-row weights (mixtures) or per-sequence weights (HMMs).
    bounds : ndarray of int64 or None
        Cumulative sequence lengths within the block (HMMs): whole sequences only.
    missing : ndarray of bool or None
        Rows with nothing observed (HMMs: a missing observation, likelihood 1).
    cache : dict
        Per-block values that depend on the data only (e.g. missing-value
        patterns), filled by the model on first use and kept as long as the
        block is (for the in-memory backend: the whole fit).
    """

    X: np.ndarray
    weights: np.ndarray | None = None
    bounds: np.ndarray | None = None
    missing: np.ndarray | None = None
    cache: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])


class BlockModel(Protocol):
    """The model protocol of :func:`fastem.engine.run_em` (see the module docstring)."""

    #: Field names and shapes of the statistics (fixed for the model's shapes).
    layout: StatsLayout
    #: True when an EM step provably cannot lower the objective (exact M-step,
    #: no regularisation): a decrease beyond round-off is then warned about.
    monotone: bool

    def initialize(self, block: Block, random_state: np.random.RandomState) -> Any:
        """Initial parameters of one restart, from a block of data (all of it, or a sample)."""

    def prepare(self, params: Any) -> Any:
        """What ``block_stats`` reads, computed once per pass (the identity by default)."""

    def shift(self, params: Any):
        """The point the statistics are taken about (or None)."""

    def block_stats(self, prepared: Any, block: Block, out: Stats) -> None:
        """Add the block's statistics (and log-likelihood) under the parameters to ``out``."""

    def m_step(self, stats: Stats, params: Any) -> Any:
        """Parameters maximising the expected complete-data objective."""

    def objective(self, stats: Stats, params: Any) -> float:
        """The objective EM increases (log-likelihood plus log prior), from the statistics
        computed at ``params``."""

    def pack(self, params: Any) -> np.ndarray:
        """Parameters as an unconstrained flat float64 vector."""

    def unpack(self, vector: np.ndarray, like: Any) -> Any:
        """Inverse of ``pack``; ``like`` supplies what the vector does not hold."""


class ModelBase:
    """Defaults for the optional parts of :class:`BlockModel`."""

    monotone = False

    def prepare(self, params):
        return params

    def shift(self, params):
        return None

    def objective(self, stats, params):
        """Mean log-likelihood per unit of weight (scikit-learn's ``lower_bound_``)."""
        return stats.loglik / stats.weight
