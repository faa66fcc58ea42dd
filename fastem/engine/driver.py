"""The fit driver and the online driver: what every estimator's ``fit`` and ``partial_fit``
share, written once.

An estimator builds its engine model and its source (:mod:`fastem.engine.sources`) and
hands them here. :func:`fit_estimator` runs EM (restarts, warm start, SQUAREM, threads)
with one rule for callbacks, sets the parameters and the record of the run (``monitor_``
for every estimator; scikit-learn's ``converged_``, ``n_iter_``, ``lower_bound_`` and
``lower_bounds_`` for those that keep them), drops any online state, and warns when the
best restart did not converge (for estimators that follow scikit-learn's convention).
:func:`online_step` is one ``partial_fit`` batch of stepwise EM for any estimator.

What an estimator declares (class attributes):

``_records_run``
    True: it keeps scikit-learn's record of a run (``converged_``, ``n_iter_``,
    ``lower_bound_``, ``lower_bounds_``) and emits ``ConvergenceWarning``; False:
    hmmlearn's, ``monitor_`` only, and no warning.

and the constructor arguments it reads: ``n_init``, ``tol``, ``random_state``,
``acceleration``, ``n_threads``, ``callback``, ``learning_decay``, ``learning_offset``.
The fit is transactional because the estimators' fitting methods are
(:func:`fastem._base.transactional`): a failure anywhere, in a callback too, leaves
the estimator as it was.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._runtime import threads
from .._validation import check_random_state
from ..exceptions import ConvergenceWarning, compatible
from .em import EMRun, run_em
from .monitor import ConvergenceMonitor
from .schedules import OnlineEM, make_schedule

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UNCONVERGED = ("Best performing initialization did not converge. Try different init "
               "parameters, or increase max_iter, tol, or check for degenerate data.")
"""scikit-learn's ConvergenceWarning text."""


def run_fit(model, backend, *, n_init: int, max_iter: int, tol: float, random_state,
            acceleration=None, n_threads: int | None = None, work: float | None = None,
            warm: tuple | None = None, verbose: int = 0, verbose_interval: int = 10,
            callback: Callable | None = None) -> EMRun:
    """EM on ``backend`` with ``n_threads`` threads (one for a ``work`` below the
    threshold of :func:`fastem.threads`); ``warm`` is (parameters, their objective)."""
    with threads(n_threads, work):
        return run_em(model, backend, schedule=make_schedule(acceleration), n_init=n_init,
                      max_iter=max_iter, tol=float(tol),
                      random_state=check_random_state(random_state),
                      warm_params=None if warm is None else warm[0],
                      warm_objective=-np.inf if warm is None else warm[1],
                      verbose=verbose, verbose_interval=verbose_interval, callback=callback)


def observing(estimator, show: Callable[[Any], None]):
    """The engine callback of ``estimator.callback`` (None without one).

    The one rule for every estimator: ``callback(iteration, objective, estimator)`` sees
    the estimator holding the current parameters (``show(params)`` puts them there);
    afterwards the estimator is put back as it was, so that nothing the callback saw
    reaches the next restart's start (HMMs start from parameters a user set) and a
    callback observes only. A true return stops the current restart.
    """
    user = estimator.callback
    if user is None:
        return None
    if not callable(user):
        raise TypeError(f"callback must be callable or None, got {user!r}")
    before = dict(vars(estimator))

    def callback(iteration, objective, params):
        show(params)
        try:
            return bool(user(iteration, objective, estimator))
        finally:
            # Put back without emptying first: a reader in another thread never sees an
            # estimator without its attributes.
            state = vars(estimator)
            for key in [key for key in state if key not in before]:
                del state[key]
            state.update(before)

    return callback


def fit_estimator(estimator, model, source, *, max_iter: int, work: float | None = None,
                  warm: tuple | None = None, verbose: int = 0, verbose_interval: int = 10,
                  show: Callable[[Any], None] | None = None,
                  finish: Callable[[EMRun], None] | None = None) -> EMRun:
    """Fit ``estimator`` by EM: its ``model`` over ``source`` (a Source or a backend).

    Parameters
    ----------
    estimator : a fastem estimator (see the module docstring)
    model : BlockModel
    source : Source or backend
    max_iter : int
        The iteration limit (``max_iter``, hmmlearn's ``n_iter``).
    work : float or None
        Multiply-adds of one pass (None: unknown, a stream).
    warm : (parameters, objective) or None
        Start from these parameters (a single run).
    verbose, verbose_interval : int
    show : callable
        ``show(params)`` makes the estimator hold ``params`` (for the callback, and the
        fit's result); default ``estimator._set_parameters``.
    finish : callable
        ``finish(run)``: the estimator's own completion after the parameters are set
        (derived attributes, checks); it runs before the record and the warning.

    Returns
    -------
    EMRun
    """
    show = estimator._set_parameters if show is None else show
    backend = getattr(source, "backend", source)
    run = run_fit(model, backend, n_init=estimator.n_init, max_iter=max_iter,
                  tol=estimator.tol, random_state=estimator.random_state,
                  acceleration=estimator.acceleration, n_threads=estimator.n_threads,
                  work=work, warm=warm, verbose=verbose, verbose_interval=verbose_interval,
                  callback=observing(estimator, show))
    show(run.params)
    if finish is not None:
        finish(run)
    estimator.__dict__.pop("_online", None)  # a fit starts online EM afresh
    estimator.monitor_ = ConvergenceMonitor.of_run(run, estimator.tol, max_iter,
                                                   estimator.verbose)
    if estimator._records_run:
        estimator.converged_ = run.converged
        estimator.n_iter_ = run.n_iter
        estimator.lower_bound_ = run.objective
        estimator.lower_bounds_ = list(run.history)
        if not run.converged and max_iter > 0 and not run.stopped_by_callback:
            warnings.warn(UNCONVERGED, compatible(ConvergenceWarning),
                          stacklevel=_caller_level())
    return run


def online_schedule(estimator) -> OnlineEM:
    """The stepwise-EM schedule of ``estimator`` (ValueError naming ``learning_decay`` or
    ``learning_offset`` when they are out of range)."""
    return OnlineEM(estimator.learning_decay, estimator.learning_offset)


def online_step(estimator, model, block, params, *, work: float | None = None,
                start: Callable[[np.random.RandomState], Any] | None = None,
                show: Callable[[Any], None] | None = None):
    """One ``partial_fit`` batch of stepwise EM (Cappé & Moulines 2009) for ``estimator``.

    The running statistics live in ``estimator._online`` (None: this batch starts them,
    at ``params``, else at ``start(random_state)`` or at parameters initialised from the
    batch). Sets the parameters (``show(params)``, as for :func:`fit_estimator`) and, for
    estimators that keep scikit-learn's record,
    ``n_iter_`` (batches seen), ``converged_`` (False), ``lower_bound_`` (the batch's
    mean log-likelihood at the parameters it was evaluated at) and ``lower_bounds_``.
    ``monitor_`` keeps describing the last ``fit``. Returns the batch's statistics.
    """
    schedule = online_schedule(estimator)
    state = estimator.__dict__.get("_online")
    random_state = check_random_state(estimator.random_state)
    with threads(estimator.n_threads, work):
        if state is None and params is None and start is not None:
            params = start(random_state)
        params, estimator._online, stats = schedule.step(model, block, params, state,
                                                         random_state)
    (estimator._set_parameters if show is None else show)(params)
    if estimator._records_run:
        estimator.n_iter_ = estimator._online.batches
        estimator.converged_ = False
        estimator.lower_bound_ = float(stats.loglik / stats.weight)
        earlier = [] if state is None else list(estimator.lower_bounds_)
        estimator.lower_bounds_ = earlier + [estimator.lower_bound_]
    return stats


def _caller_level():
    """The ``stacklevel`` of a warning that names the first frame outside fastem (the
    user's call), wherever in fastem it is raised."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
