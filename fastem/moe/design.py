"""How a mixture of experts reads its rows: columns of X, centred, with implicit intercepts.

No design matrix is built. A block's rows are either :class:`ExpertRows` (the
checked X, Y and trials of an in-memory fit or call, as given) or one plain array
(a table ``[X | Y | trials]``: a Dask partition, or a design matrix handed to the
model directly). An :class:`ExpertDesign` says which columns of X the experts
and the gate read and their centres (weighted means: the intercepts absorb
them), and where Y and the trials sit in a table. The kernels then read each
work unit's rows straight from those arrays, and the NumPy parts (the
initialisation) read bounded chunks of rows with :meth:`ExpertDesign.chunks`: a
fit needs no N x P temporary, whatever the columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import UNIT_ROWS

CHUNK_ROWS = 32 * UNIT_ROWS
"""Rows per chunk of the NumPy passes (8,192: about 1 MB per temporary at K = 16, and
as fast as whole arrays, which do not stay in cache)."""


class ExpertRows:
    """The rows of an in-memory block: X (n, f), Y (n, m) or (0, m) when y is not given
    (the outputs then read as their centre), trials (n, 1) or None (binomial experts:
    one trial per row). Sliced by rows as an array is (``Block`` cuts blocks into
    segments)."""

    __slots__ = ("X", "Y", "trials")

    def __init__(self, X, Y, trials=None):
        self.X, self.Y, self.trials = X, Y, trials

    @property
    def shape(self):
        return (self.X.shape[0],)

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, rows):
        if not isinstance(rows, slice):
            raise TypeError("ExpertRows are cut by slices of rows")
        return ExpertRows(self.X[rows], self.Y[rows] if len(self.Y) else self.Y,
                          None if self.trials is None else self.trials[rows])


def _int64(values):
    return np.ascontiguousarray(values, dtype=np.int64)


@dataclass
class ExpertDesign:
    """Which columns the kernels read, and about which centres.

    expert_columns, gating_columns : int arrays of columns of X (a table's first columns)
    x_mean, u_mean, y_mean : their centres (subtracted) and the outputs'
    outputs : int array, the columns of Y in a table
    trials : int, the trials' column in a table (-1: none, one trial per row)

    An intercept is implicit: the experts' design row is ``[1 | x - x_mean]`` when
    their coefficients have one more row than ``expert_columns`` has entries, and
    likewise the softmax gate's.
    """

    expert_columns: np.ndarray
    gating_columns: np.ndarray
    x_mean: np.ndarray
    u_mean: np.ndarray
    y_mean: np.ndarray
    outputs: np.ndarray
    trials: int = -1

    def __post_init__(self):
        self.expert_columns = _int64(self.expert_columns)
        self.gating_columns = _int64(self.gating_columns)
        self.outputs = _int64(self.outputs)
        self.x_mean, self.u_mean, self.y_mean = (
            np.ascontiguousarray(a, dtype=np.float64) for a in (self.x_mean, self.u_mean,
                                                                 self.y_mean))
        self.trials = int(self.trials)

    @classmethod
    def of_table(cls, n_design, n_gate, n_outputs, binomial):
        """A block is the design itself, ``[Z | U | Y | trials]`` (intercept columns
        included, nothing centred): what the model reads when given no design."""
        p, q, m = n_design, n_gate, n_outputs
        return cls(np.arange(p), np.arange(p, p + q), np.zeros(p), np.zeros(q), np.zeros(m),
                   np.arange(p + q, p + q + m), p + q + m if binomial else -1)

    def read(self, rows):
        """The kernels' data arguments for a block's rows: ``(X, Y, T, ecols, x_mean,
        gcols, u_mean, ycols, y_mean, tcol)``."""
        if isinstance(rows, ExpertRows):
            m = self.y_mean.shape[0]
            T, tcol = (rows.X, -1) if rows.trials is None else (rows.trials, 0)
            return (rows.X, rows.Y, T, self.expert_columns, self.x_mean, self.gating_columns,
                    self.u_mean, np.arange(m, dtype=np.int64), self.y_mean, tcol)
        table = rows
        return (table, table, table, self.expert_columns, self.x_mean, self.gating_columns,
                self.u_mean, self.outputs, self.y_mean, self.trials)

    def chunks(self, block, n_design, n_gate, binomial, chunk_rows=None):
        """``(lo, hi, Z, U, Y, trials, weights)`` for consecutive chunks of the block's
        rows, as NumPy arrays: the design ``Z = [1 | x - x_mean]`` (no 1 when the
        experts have no intercept), ``U`` likewise for the gate, ``Y - y_mean``, the
        trials (binomial experts; ones when not given) and the rows' weights (or
        None)."""
        X, Y, T, ecols, x_mean, gcols, u_mean, ycols, y_mean, tcol = self.read(block.X)
        n = block.n_rows
        chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
        for lo in range(0, n, chunk_rows):
            hi = min(lo + chunk_rows, n)
            Z = _centred(X, ecols, x_mean, n_design, lo, hi)
            U = _centred(X, gcols, u_mean, n_gate, lo, hi)
            outputs = (Y[lo:hi, ycols] - y_mean if len(Y)
                       else np.zeros((hi - lo, len(ycols))))
            trials = None
            if binomial:
                trials = T[lo:hi, tcol] if tcol >= 0 else np.ones(hi - lo)
            weights = None if block.weights is None else block.weights[lo:hi]
            yield lo, hi, Z, U, outputs, trials, weights
            del Z, U, outputs, trials  # before the next chunk is made: one chunk at a time


def _centred(X, columns, centre, width, lo, hi):
    """``[1 | X[lo:hi, columns] - centre]`` (the 1 when ``width`` asks for it)."""
    out = np.empty((hi - lo, width))
    first = width - len(columns)
    if first:
        out[:, 0] = 1.0
    np.subtract(X[lo:hi, columns], centre, out=out[:, first:])
    return out
