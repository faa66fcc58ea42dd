"""Fitting any :class:`~fastem.engine.BlockModel`: the entry points for users' own models.

The shipped estimators use the same pieces (the fit driver's :func:`run_fit`, the
backends and the schedules); a model written against the protocol gets restarts,
threads, bitwise determinism, SQUAREM and online EM from here.
"""

from __future__ import annotations

from typing import Any

from .._runtime import threads
from .._typing import Acceleration, ArrayLike, Callback, RandomStateLike, Self
from .._validation import check_random_state
from .backends import LocalBackend
from .driver import run_fit
from .em import EMRun
from .protocol import Block
from .schedules import OnlineEM


def _backend(data, weights, bounds):
    if hasattr(data, "stats") and hasattr(data, "initialization_block"):
        return data  # already a backend (e.g. a StreamBackend)
    return LocalBackend([Block(data, weights, bounds)])


def fit_model(model: Any, data: Any, *, weights: ArrayLike | None = None,
              bounds: ArrayLike | None = None, n_init: int = 1, max_iter: int = 100,
              tol: float = 1e-3, random_state: RandomStateLike = None,
              acceleration: Acceleration = "none", n_threads: int | None = None,
              callback: Callback | None = None, verbose: int = 0) -> EMRun:
    """Fit ``model`` by EM on ``data``; returns the best restart's :class:`EMRun`.

    Parameters
    ----------
    model : BlockModel
    data : ndarray, or a backend (:class:`StreamBackend` for data read block by block)
    weights, bounds : per-row (or per-sequence) weights and sequence bounds of ``data``
    n_init, max_iter, tol, random_state, callback, verbose : as in the estimators
    acceleration : {"none", "squarem"}
    n_threads : int or None
        Threads of the compiled kernels (None: all); results do not depend on it.
    """
    return run_fit(model, _backend(data, weights, bounds), n_init=n_init, max_iter=max_iter,
                   tol=tol, random_state=random_state, acceleration=acceleration,
                   n_threads=n_threads, verbose=verbose, callback=callback)


class OnlineFitter:
    """Stepwise EM for any model: call :meth:`partial_fit` once per batch.

    Attributes
    ----------
    params : the current parameters (None before the first batch)
    state : :class:`OnlineState` (running statistics, batches, weight seen)
    """

    def __init__(self, model: Any, *, learning_decay: float = 0.7, learning_offset: float = 10.0,
                 random_state: RandomStateLike = None, n_threads: int | None = None) -> None:
        self.model = model
        self.schedule = OnlineEM(learning_decay, learning_offset)
        self.random_state = check_random_state(random_state)
        self.n_threads = n_threads
        self.params = None
        self.state = None

    def partial_fit(self, X: ArrayLike, weights: ArrayLike | None = None,
                    bounds: ArrayLike | None = None) -> Self:
        """Blend one batch into the running statistics and update the parameters."""
        with threads(self.n_threads):
            self.params, self.state, _ = self.schedule.step(
                self.model, Block(X, weights, bounds), self.params, self.state,
                self.random_state)
        return self
