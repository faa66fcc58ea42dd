"""What happened during a fit: the engine's record of one EM run, kept as ``monitor_``.

The driver (:func:`fastem.engine.run_em`) returns an :class:`~fastem.engine.EMRun`;
every estimator keeps its account as a :class:`ConvergenceMonitor` (hmmlearn's
``monitor_``, with flags that say what stopped the run), and model files save it
field by field (:mod:`fastem.io`).
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v

#: The fields a model file saves (besides ``history``), in this order.
SAVED_FIELDS = ("tol", "n_iter", "verbose", "iter", "converged", "reached_max_iter",
                "decreased")


class ConvergenceMonitor:
    """What happened during ``fit`` (hmmlearn's ``monitor_``, with honest flags).

    Attributes
    ----------
    history : list of float
        The objective EM increases (log-likelihood, plus the log prior under
        Dirichlet priors) at every iteration, before that iteration's M-step.
    iter : int
        Number of EM iterations run.
    converged : bool
        True only when the change of the objective fell below ``tol``
        (hmmlearn also says True when ``n_iter`` was reached).
    reached_max_iter : bool
        The run stopped because ``n_iter`` iterations were done.
    decreased : bool
        The objective decreased by more than round-off at some iteration.
    """

    def __init__(self, tol, n_iter, verbose):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = []
        self.iter = 0
        self.converged = False
        self.reached_max_iter = False
        self.decreased = False

    def __repr__(self):
        return (f"ConvergenceMonitor(tol={self.tol!r}, n_iter={self.n_iter!r}, iter={self.iter}, "
                f"converged={self.converged}, decreased={self.decreased})")

    @classmethod
    def _from_saved(cls, info):
        """A monitor from its saved fields (e.g. a model file), type-checked."""
        monitor = cls(info["tol"], info["n_iter"], info["verbose"])
        for name in ("iter", "converged", "reached_max_iter", "decreased", "history"):
            setattr(monitor, name, info[name])
        v.check_fitted_scalars(monitor, integers=("n_iter", "iter"),
                               flags=("converged", "reached_max_iter", "decreased"),
                               reals=("tol",), real_lists=("history",))
        return monitor

    def _saved(self):
        """The fields a model file holds (:meth:`_from_saved` reads them back)."""
        # (Plain Python scalars: a constructor argument may be a NumPy scalar, which JSON
        # does not take.)
        return ({name: _plain(getattr(self, name)) for name in SAVED_FIELDS}
                | {"history": [float(h) for h in self.history]})

    @classmethod
    def of_run(cls, run, tol, n_iter, verbose):
        """The monitor of a finished :class:`~fastem.engine.EMRun` (``n_iter``: the
        iteration limit the run had)."""
        monitor = cls(tol, n_iter, verbose)
        monitor._record(run)
        return monitor

    def _record(self, run):
        self.history = list(run.history)
        self.iter = run.n_iter
        self.converged = bool(run.converged)
        self.reached_max_iter = (not run.converged and not run.stopped_by_callback
                                 and run.n_iter == self.n_iter)
        steps = np.diff(self.history)
        scale = np.maximum(1.0, np.abs(np.asarray(self.history[:-1])))
        self.decreased = bool(np.any(steps < -1e-9 * scale))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
