"""The one EM loop of fastem.

A model plugs in through :class:`fastem.engine.BlockModel`, its data through
a backend (:mod:`fastem.engine.backends`), and the choice of the next point
through a schedule (:mod:`fastem.engine.schedules`). :func:`run_em` owns
everything else: restarts, warm starts, the convergence test, the check for a
decrease, the history, verbose output and callbacks.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import DataChangedError
from .schedules import PlainEM, objective_error

# A trial point (SQUAREM) whose pass raises one of these is rejected, not fatal.
_TRIAL_FAILURES = (ValueError, FloatingPointError, np.linalg.LinAlgError)


@dataclass
class EMRun:
    """Outcome of :func:`run_em` for the best restart."""

    params: Any
    objective: float
    history: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    stopped_by_callback: bool = False


def _say(verbose, message):
    if verbose:
        print(message, flush=True)


def _warn_decrease(previous, objective, n_iter):
    warnings.warn(
        f"EM objective decreased by {previous - objective:.3g} at iteration {n_iter} "
        f"(from {previous:.12g} to {objective:.12g}); this indicates "
        "numerical trouble, e.g. a nearly singular component.",
        RuntimeWarning,
        stacklevel=4,
    )


def _initial_params(model, backend, random_state):
    """A restart's start: the backend's ``initialize`` when it has one (a cluster
    initialises where the data are), else the model's, from the backend's initialisation
    block (all rows, or a bounded part of them)."""
    if hasattr(backend, "initialize"):
        return backend.initialize(model, random_state)
    return model.initialize(backend.initialization_block(), random_state)


def run_em(
    model,
    backend,
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state: np.random.RandomState,
    schedule=None,
    warm_params: Any = None,
    warm_objective: float = -np.inf,
    verbose: int = 0,
    verbose_interval: int = 10,
    callback: Callable[[int, float, Any], bool] | None = None,
) -> EMRun:
    """Run EM with restarts and return the best run.

    Convergence follows scikit-learn: each pass computes the objective of the
    point it evaluates in the same pass as the statistics, and the run stops
    once the absolute change between consecutive accepted objectives is below
    ``tol``. ``n_iter`` counts E-step passes (rejected SQUAREM trials
    included); the history holds every accepted objective. With
    ``max_iter == 0`` the initial parameters are returned. ``warm_params``
    replaces initialisation (and forces a single run).
    ``callback(iteration, objective, params)`` returning True stops the run.
    """
    schedule = PlainEM() if schedule is None else schedule
    if warm_params is not None:
        n_init = 1
    best = None
    for init in range(n_init):
        _say(verbose, f"Initialization {init}")
        started = time.perf_counter()
        last_time = started
        if warm_params is not None:
            params = warm_params
        else:
            params = _initial_params(model, backend, random_state)
        objective = warm_objective if warm_params is not None else -np.inf
        if max_iter == 0:
            best = EMRun(params=params, objective=-np.inf)
            continue
        history = []
        converged = stopped = False
        n_iter = 0
        schedule.start(model, params)
        for n_iter in range(1, max_iter + 1):
            point = schedule.next_point()
            trial = schedule.trial
            try:
                # A trial point may be poor enough to empty a component: its warnings are
                # noise, since a failed trial is only rejected.
                with np.errstate(all="ignore") if trial else contextlib.nullcontext():
                    stats = backend.stats(model, point)
                    value = model.objective(stats, point)
                    new_params = model.m_step(stats, point)
            except _TRIAL_FAILURES as error:
                if not trial or isinstance(error, DataChangedError):
                    raise
                schedule.reject()
                continue
            if not np.isfinite(value):
                if trial:
                    schedule.reject()
                    continue
                raise objective_error(value, f"at iteration {n_iter}")
            if not schedule.acceptable(value, new_params):
                schedule.reject()
                continue
            schedule.accept(value, new_params)
            previous, objective = objective, value
            history.append(objective)
            change = objective - previous
            if model.monotone and change < -1e-12 * max(1.0, abs(previous)):
                _warn_decrease(previous, objective, n_iter)
            if verbose and n_iter % verbose_interval == 0:
                if verbose >= 2:
                    now = time.perf_counter()
                    _say(verbose, f"  Iteration {n_iter}\t time lapse {now - last_time:.5f}s\t "
                                  f"ll change {change:.5f}")
                    last_time = now
                else:
                    _say(verbose, f"  Iteration {n_iter}")
            if callback is not None and callback(n_iter, objective, schedule.current):
                stopped = True
                break
            if abs(change) < tol:
                converged = True
                break
        params = schedule.current
        message = "converged" if converged else "did not converge"
        if verbose >= 2:
            _say(verbose, f"Initialization {message}. time lapse "
                          f"{time.perf_counter() - started:.5f}s\t lower bound {objective:.5f}.")
        else:
            _say(verbose, f"Initialization {message}.")
        if best is None or objective > best.objective or best.objective == -np.inf:
            best = EMRun(params=params, objective=objective, history=history, n_iter=n_iter,
                         converged=converged, stopped_by_callback=stopped)
    return best
