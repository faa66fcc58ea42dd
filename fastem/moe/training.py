"""Training data of :class:`fastem.MixtureOfExperts`: in memory or on a Dask cluster.

Both kinds give ``fit`` the same five things: the engine model's shapes (the
column counts), the centring of the columns (weighted means), how the kernels
read the rows (:class:`~fastem.moe.design.ExpertDesign`: columns of X, centred,
with implicit intercepts), a backend over the rows and the softmax gate's mean
probabilities. No design matrix is built: in memory the block holds the checked
X, y and trials themselves (:class:`~fastem.moe.design.ExpertRows`, no copy of
float64 data), and every pass over them (centring, initialisation, mean gate)
reads bounded chunks; on Dask the partitions of the table ``[X | Y | trials]``
are read where they are, by the same kernels, through the engine's
:class:`DaskBackend`.
"""

from __future__ import annotations

import numpy as np

from .. import _dask_io as dask_io
from .. import _validation as v
from ..engine import Block, LocalBackend
from ..engine.dask_backend import DaskBackend, import_dask
from .design import CHUNK_ROWS, ExpertDesign, ExpertRows

INPUT_BOUND = 1e75
"""Largest magnitude of a ``partial_fit`` batch's inputs (X, y of Gaussian experts, and
sample_weight).

Online EM keeps each batch's statistics in its running sums, which multiply two inputs
by weights bounded like the parameters: below this bound they stay far from float64's
overflow. A batch beyond it could pass the M-step's checks (rows that a Poisson expert
explains with probability one) and leave statistics of 1e300 in the sums, sending every
later step's coefficients beyond the parameters' bound. (A fit sees its statistics once,
and its M-step's own checks name what overflowed.)"""


def _largest(array):
    # max and min need no temporary the size of the data (np.abs would).
    return max(float(array.max()), -float(array.min())) if array.size else 0.0


class MemoryTraining:
    """Checked NumPy arrays: X, outputs, trials and weights, held as given (no copies of
    float64 data, no column selections)."""

    def __init__(self, estimator, X, y, sample_weight, trials, fitting=True):
        self.X = writable(estimator._features(X, fitting=fitting))
        n_rows, n_features = self.X.shape
        self.expert_columns, self.gating_columns = columns_of(estimator, n_features)
        self.Y, self.y_1d = estimator._outputs(y, n_rows, fitting=fitting)
        self.Y = writable(self.Y)
        # Binomial trials stay None when not given: the kernels read one trial per row.
        self.trials = estimator._trials(trials, self.Y, ones=False)
        if self.trials is not None:
            self.trials = writable(self.trials)
        self.weights = v.check_sample_weight(sample_weight, n_rows)
        self.total_weight = float(n_rows if self.weights is None else self.weights.sum())
        if not self.total_weight > 0:
            raise ValueError("sample_weight sums to zero")
        self.n_rows = n_rows
        self.n_positive = (n_rows if self.weights is None
                           else int(np.count_nonzero(self.weights)))
        self.shapes = (len(self.expert_columns), len(self.gating_columns), self.Y.shape[1])
        self._block = None

    def check_batch_magnitude(self, estimator):
        """Refuse a ``partial_fit`` batch beyond :data:`INPUT_BOUND`."""
        inputs = [("X", self.X)] + ([("y", self.Y)] if estimator.expert == "gaussian" else [])
        if self.weights is not None:  # a weight multiplies every statistic of its row
            inputs.append(("sample_weight", self.weights))
        for name, values in inputs:
            largest = _largest(values)
            if largest > INPUT_BOUND:
                raise ValueError(
                    f"{name} holds values of magnitude {largest:.3g}: the statistics online EM "
                    f"keeps multiply inputs and weights, and would have overflowed (a batch beyond "
                    f"{INPUT_BOUND:g} is refused). Please scale {name} (e.g. standardise its "
                    "columns).")

    def centring(self, estimator):
        x_sum, y_sum = np.zeros(self.X.shape[1]), np.zeros(self.Y.shape[1])
        for lo in range(0, self.n_rows, CHUNK_ROWS):  # no N-sized temporaries
            rows = slice(lo, min(lo + CHUNK_ROWS, self.n_rows))
            if self.weights is None:
                x_sum += self.X[rows].sum(axis=0)
                y_sum += self.Y[rows].sum(axis=0)
            else:
                x_sum += self.weights[rows] @ self.X[rows]
                y_sum += self.weights[rows] @ self.Y[rows]
        return _centres(estimator, x_sum[self.expert_columns], x_sum[self.gating_columns],
                        y_sum, self.total_weight)

    def design(self, estimator):
        return design_of(estimator)

    def block(self, estimator):
        if self._block is None:
            trials = None if self.trials is None else self.trials[:, None]
            self._block = Block(ExpertRows(self.X, self.Y, trials), self.weights)
        return self._block

    def backend(self, estimator):
        return LocalBackend([self.block(estimator)])

    def mean_gate(self, estimator):
        """The gate's probabilities averaged over the rows (weighted), chunk by chunk."""
        rows = self.block(estimator).X
        total = np.zeros(estimator.n_components)
        for lo in range(0, self.n_rows, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, self.n_rows)
            gate = estimator._gate_matrix(Block(rows[lo:hi]))
            total += (gate.sum(axis=0) if self.weights is None
                      else self.weights[lo:hi] @ gate)
        return total / self.total_weight


def columns_of(estimator, n_features):
    """The expert and gating columns of X (none for a constant gate), as positions."""
    expert = positions(estimator.expert_columns, n_features, "expert_columns")
    gating = ([] if estimator.gating == "constant"
              else positions(estimator.gating_columns, n_features, "gating_columns"))
    return expert, gating


def design_of(estimator):
    """How the fitted (or fitting) estimator's kernels read rows: its columns of X less
    their centres; in a table ``[X | Y | trials]`` (Dask partitions), Y and the trials
    follow the ``n_features_in_`` columns of X."""
    f, m = estimator.n_features_in_, estimator.n_outputs_
    expert, gating = columns_of(estimator, f)
    return ExpertDesign(expert, gating, estimator._x_mean, estimator._u_mean,
                        estimator._y_mean, np.arange(f, f + m),
                        f + m if estimator.expert == "binomial" else -1)


def rows_block(estimator, X, Y, trials):
    """A block of checked inference inputs (Y None: the outputs read as their centre;
    trials None: one trial per row)."""
    Y = np.empty((0, estimator.n_outputs_)) if Y is None else writable(Y)
    return Block(ExpertRows(writable(X), Y,
                            None if trials is None else writable(trials)[:, None]))


def writable(array):
    """``array``, or a copy of it when it is read-only: numba compiles the kernels anew
    for read-only arrays (a second signature, minutes of cold start), and the data are
    only copied in that case."""
    return array if array.flags.writeable else array.copy()


class DaskTraining:
    """Dask inputs: X's rows (:class:`fastem._dask_io.DaskRows` of an array or dataframe),
    y, and optional (checked) weights and trials, chunked alike. Checks and column sums
    take one pass on the workers."""

    def __init__(self, estimator, rows, y, weights, trials):
        _, da = import_dask()
        dask_io.check_values(rows.X)
        self.rows = rows
        X = rows.X
        n_features = X.shape[1]
        estimator.n_features_in_ = n_features
        E_columns, G_columns = columns_of(estimator, n_features)
        Y = _rows_of(y, X, "y")
        self.y_1d = Y.ndim == 1
        if self.y_1d:
            Y = Y[:, None]
        if estimator.expert != "gaussian" and Y.shape[1] != 1:
            raise ValueError(f"{estimator.expert} experts take one output column; y has "
                             f"{Y.shape[1]}")
        dask_io.check_values(Y, "y")
        if trials is not None and estimator.expert != "binomial":
            raise ValueError("trials is only for binomial experts")
        T = None
        if estimator.expert == "binomial":
            T = (da.ones((X.shape[0],), chunks=(X.chunks[0],)) if trials is None
                 else _rows_of(trials, X, "trials"))
            if T.ndim != 1:
                raise ValueError(f"trials must have one value per row, got shape {T.shape}")
            dask_io.check_values(T[:, None], "trials")
        self.weights = weights  # (checked by the engine's sources)
        w = da.ones((X.shape[0],), chunks=(X.chunks[0],)) if weights is None else weights
        E, G = X[:, E_columns], X[:, G_columns]
        checks = [w.sum(), (w > 0).sum(), (w[:, None] * E).sum(axis=0),
                  (w[:, None] * G).sum(axis=0), (w[:, None] * Y).sum(axis=0)]
        # The in-memory rules (PoissonHMM's counts, MultinomialHMM's n_trials): integers
        # from 0 to 2**53, checked here as flags computed in the same pass.
        counts = Y[:, 0] if estimator.expert == "poisson" else T
        if counts is not None:
            checks += [(counts < 0).any(), (counts != da.floor(counts)).any(),
                       (counts > v.MAX_EXACT_INTEGER).any()]
        if estimator.expert == "binomial":
            checks.append(((Y[:, 0] < 0) | (Y[:, 0] > T)).any())
        dask, _ = import_dask()
        total, positive, e_sum, g_sum, y_sum, *flags = dask.compute(*checks)
        if counts is not None:
            what = ("y must be non-negative counts for poisson experts"
                    if estimator.expert == "poisson" else "trials must be non-negative counts")
            for flag, detail in zip(flags[:3], ("negative values", "fractional values",
                                                f"values above {v.MAX_EXACT_INTEGER}"),
                                    strict=True):
                if flag:
                    raise ValueError(f"{what}: got {detail}")
        if estimator.expert == "binomial" and flags[3]:
            raise ValueError("y must be successes between 0 and trials for binomial experts")
        self._sums = (e_sum, g_sum, y_sum, total)
        self.n_rows = int(X.shape[0])
        self.n_positive = int(positive)
        self.shapes = (len(E_columns), len(G_columns), Y.shape[1])
        parts = [X, Y] + ([T[:, None]] if T is not None else [])
        # The kernels read the table's partitions as they are (see design_of).
        self.table = da.concatenate(parts, axis=1).rechunk({1: -1})
        self._backend = None

    def centring(self, estimator):
        return _centres(estimator, *self._sums)

    def design(self, estimator):
        return design_of(estimator)

    def backend(self, estimator):
        if self._backend is None:
            self._backend = DaskBackend(self.table, self.weights)
        return self._backend

    def mean_gate(self, estimator):
        sums = self.backend(estimator).map_blocks(_gate_sums, estimator._shipped_for_design())
        total = np.sum([s for s in sums], axis=0)
        return total[:-1] / total[-1]


def _centres(estimator, e_sum, g_sum, y_sum, total):
    """Column means the kernels subtract (the intercepts absorb them)."""
    e_mean = np.asarray(e_sum, dtype=np.float64) / total
    x_mean = e_mean if estimator.fit_intercept else np.zeros_like(e_mean)
    u_mean = np.asarray(g_sum, dtype=np.float64) / total
    gaussian_intercept = estimator.expert == "gaussian" and estimator.fit_intercept
    y_mean = np.asarray(y_sum, dtype=np.float64) / total
    return x_mean, u_mean, y_mean if gaussian_intercept else np.zeros_like(y_mean)


def positions(columns, n_features, name):
    if columns is None:
        return list(range(n_features))
    columns = np.asarray(columns)
    if columns.ndim != 1 or columns.dtype.kind not in "iu" or len(columns) == 0:
        raise ValueError(f"{name} must be a non-empty list of column indices")
    if columns.min() < -n_features or columns.max() >= n_features:
        raise ValueError(f"{name} {columns.tolist()} are out of range for X with "
                         f"{n_features} columns")
    return [int(c) % n_features for c in columns]


def _rows_of(values, X, name):
    """``values`` (NumPy or dask, rows along axis 0) as a float dask array chunked like
    X's rows."""
    _, da = import_dask()
    if dask_io.is_dask_collection(values):
        if hasattr(values, "to_dask_array"):
            values = values.to_dask_array(lengths=True)
    else:
        values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] != X.shape[0]:
        raise ValueError(f"{name} must have one entry per row of X ({X.shape[0]}), got shape "
                         f"{values.shape}")
    if not dask_io.is_dask_collection(values):
        values = da.from_array(values, chunks=(X.chunks[0],) + values.shape[1:])
    chunks = (X.chunks[0],) if values.ndim == 1 else (X.chunks[0], -1)
    return values.astype(np.float64).rechunk(chunks)


def _gate_sums(estimator, block, offset):
    """Worker side: sum of w g(x) over a partition's rows, and the sum of w."""
    w = np.ones(block.n_rows) if block.weights is None else block.weights
    gate = estimator._gate_matrix(block)
    return np.concatenate([w @ gate, [w.sum()]])


class _SplitCall:
    """Worker side: ``estimator.<method>(X, y, trials)`` on one partition of the table
    ``[X | y | trials]`` (y and trials only when given)."""

    def __init__(self, estimator, method, n_features, n_outputs, with_trials):
        self.call = dask_io._Threaded(estimator, method)
        self.n_features, self.n_outputs, self.with_trials = n_features, n_outputs, with_trials

    def __call__(self, table):
        n, m = self.n_features, self.n_outputs
        args = [table[:, :n]] + ([table[:, n:n + m]] if m else [])
        kwargs = {"trials": table[:, n + m]} if self.with_trials else {}
        return self.call(*args, **kwargs)


def lazy_rows(estimator, method, X, y=None, trials=None, *, columns=None, dtype=np.float64):
    """``estimator.<method>(X[, y][, trials])`` over the row partitions of dask inputs, as
    a lazy dask array (any of them may be NumPy; they are cut like X)."""
    _, da = import_dask()
    names = getattr(estimator, "feature_names_in_", None)
    frame = dask_io._is_dataframe(X)
    rows = dask_io.as_dask_rows(X, dtype=np.float64,
                                feature_names=list(names) if frame and names is not None
                                else None)
    if rows.X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {rows.X.shape[1]} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")
    parts = [rows.X]
    n_outputs = 0
    if y is not None:
        Y = _rows_of(y, rows.X, "y")
        Y = Y[:, None] if Y.ndim == 1 else Y
        n_outputs = Y.shape[1]
        parts.append(Y)
    if trials is not None:
        T = _rows_of(trials, rows.X, "trials")
        parts.append(T[:, None] if T.ndim == 1 else T)
    table = da.concatenate(parts, axis=1).rechunk({1: -1}) if len(parts) > 1 else rows.X
    function = _SplitCall(estimator, method, rows.X.shape[1], n_outputs, trials is not None)
    return dask_io.map_rows(function, table, columns=columns, dtype=dtype)
