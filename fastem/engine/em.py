"""The one EM loop of fastem.

A model plugs in through :class:`EMModel`: it creates initial parameters, runs
a fused E-step that returns the mean per-sample objective of the current
parameters together with additive sufficient statistics, and maps statistics to
new parameters in closed form. :func:`run_em` owns everything else: restarts,
warm starts, the convergence test, the history, verbose output and callbacks.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class EMModel(Protocol):
    """What a model provides to :func:`run_em`."""

    #: True when each EM iteration provably cannot decrease the objective
    #: (exact M-step); a decrease beyond round-off is then reported.
    monotone: bool

    def initialize(self, random_state: np.random.RandomState) -> Any:
        """Initial parameters for one restart."""

    def e_step(self, params: Any) -> tuple[float, Any]:
        """Mean per-sample objective of ``params`` and the sufficient statistics."""

    def m_step(self, stats: Any, params: Any) -> Any:
        """Parameters maximising the expected complete-data objective."""


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


def run_em(
    model: EMModel,
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state: np.random.RandomState,
    warm_params: Any = None,
    warm_objective: float = -np.inf,
    verbose: int = 0,
    verbose_interval: int = 10,
    callback: Callable[[int, float, Any], bool] | None = None,
) -> EMRun:
    """Run EM with restarts and return the best run.

    Convergence follows scikit-learn: iteration n computes the objective of the
    parameters from iteration n-1 in the same pass as the statistics, and the
    run stops once the absolute change of that mean per-sample objective is
    below ``tol``. With ``max_iter == 0`` the initial parameters are returned.
    ``warm_params`` replaces initialisation (and forces a single run).
    ``callback(iteration, objective, params)`` returning True stops the run.
    """
    if warm_params is not None:
        n_init = 1
    best = None
    for init in range(n_init):
        _say(verbose, f"Initialization {init}")
        started = time.perf_counter()
        last_time = started
        params = warm_params if warm_params is not None else model.initialize(random_state)
        objective = warm_objective if warm_params is not None else -np.inf
        if max_iter == 0:
            best = EMRun(params=params, objective=-np.inf)
            continue
        history = []
        converged = stopped = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            previous = objective
            objective, stats = model.e_step(params)
            params = model.m_step(stats, params)
            history.append(objective)
            change = objective - previous
            if model.monotone and change < -1e-12 * max(1.0, abs(previous)):
                warnings.warn(
                    f"EM objective decreased by {-change:.3g} at iteration {n_iter} "
                    f"(from {previous:.12g} to {objective:.12g}); this indicates "
                    "numerical trouble, e.g. a nearly singular component.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            if verbose and n_iter % verbose_interval == 0:
                if verbose >= 2:
                    now = time.perf_counter()
                    _say(verbose, f"  Iteration {n_iter}\t time lapse {now - last_time:.5f}s\t "
                                  f"ll change {change:.5f}")
                    last_time = now
                else:
                    _say(verbose, f"  Iteration {n_iter}")
            if callback is not None and callback(n_iter, objective, params):
                stopped = True
                break
            if abs(change) < tol:
                converged = True
                break
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
