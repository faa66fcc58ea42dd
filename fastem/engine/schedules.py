"""Schedules: which parameters the next E-step pass is evaluated at.

The driver (:func:`fastem.engine.run_em`) runs passes; after each it tells the
schedule the objective of the evaluated point and the M-step output. A
schedule may propose *trial* points (SQUAREM's extrapolations); the driver asks
it whether a trial's objective is acceptable and rejects it otherwise (a
rejected trial costs one pass and leaves no trace in the history).

* :class:`PlainEM`: the next point is the last M-step output.
* :class:`Squarem`: Varadhan & Roland's (2008) SqS3 extrapolation over the
  model's packed parameters, with an adaptive maximum step length, a
  monotonicity safeguard and a fallback to the plain double EM step.
* :class:`OnlineEM`: stepwise EM over batches (Cappé & Moulines 2009); it is
  driven by ``partial_fit``, one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np

from .._typing import Acceleration
from .backends import pass_stats

SCHEDULES = get_args(Acceleration)
"""Values of the estimators' ``acceleration`` argument (the public type's literal)."""


class _NewtonGuard:
    """The monotonicity guard of a *generalised* M-step, shared by the schedules.

    A model whose ``generalized`` is true takes Newton steps for the parts of its
    M-step without a closed form, and has ``halve(anchor, point)``. A point computed
    by an M-step from an evaluated point (its anchor) whose objective is below the
    anchor's is rejected and replaced by ``model.halve(anchor, point)``, up to
    ``max_halvings`` times (then it is taken as it is, and the run converges on the
    negligible change). A Newton direction ascends the expected complete-data
    objective, so halving it enough raises that objective, and with it the
    log-likelihood: the accepted objectives never decrease.
    """

    max_halvings = 30

    def _guard_start(self, model):
        self.generalized = bool(getattr(model, "generalized", False))
        self.anchor = None  # (params, objective) of the last accepted evaluated point
        self.halvings = 0

    @property
    def _guarding(self):
        return (self.generalized and self.anchor is not None
                and self.halvings < self.max_halvings)

    def _guard_passes(self, objective):
        previous = self.anchor[1]
        return bool(objective >= previous - 1e-13 * max(1.0, abs(previous)))

    def _guard_accept(self, point, objective):
        if self.generalized:
            self.anchor = (point, objective)
            self.halvings = 0

    def _guard_halve(self, point):
        self.halvings += 1
        return self.model.halve(self.anchor[0], point)


class PlainEM(_NewtonGuard):
    """Every pass evaluates the previous M-step's output (halved towards the point it
    came from while it lowers the objective, for a generalised M-step: see
    :class:`_NewtonGuard`)."""

    name = "none"

    def start(self, model, params):
        self.model = model
        self.current = params
        self._guard_start(model)

    @property
    def trial(self):
        return self._guarding

    def next_point(self):
        return self.current

    def acceptable(self, objective, new_params):
        return not self._guarding or self._guard_passes(objective)

    def accept(self, objective, new_params):
        self._guard_accept(self.current, objective)
        self.current = new_params

    def reject(self):
        if not self.generalized:  # pragma: no cover - plain EM proposes no trials
            raise AssertionError("plain EM has no trial points to reject")
        self.current = self._guard_halve(self.current)


class Squarem(_NewtonGuard):
    """SQUAREM, scheme SqS3, with the safeguards of Varadhan & Roland (2008).

    A cycle: theta1 = M(theta0), theta2 = M(theta1) (two ordinary passes), then
    with r = theta1 - theta0 and v = theta2 - 2 theta1 + theta0 (in the packed,
    unconstrained parameters), step s = |r| / |v| clipped to [1, step_max], and
    the trial point theta' = theta0 + 2 s r + s^2 v. The trial's pass gives its
    objective and M(theta'), which starts the next cycle. The trial is rejected,
    and the cycle restarts from theta2 (the plain double EM step), when it maps
    to no valid parameters, its pass fails (a singular covariance), or its
    objective is below theta1's (the monotonicity safeguard: accepted
    objectives never decrease beyond what plain EM itself does). ``step_max``
    grows by ``step_factor`` whenever a step is clipped at it and shrinks by
    the same factor after a rejection.

    A trial point outside the parameter space (``unpack`` raises ValueError: a negative
    probability, a covariance that is not positive definite) is retried with the step
    halved towards 1 (no pass is spent on it); at step 1 the cycle falls back to theta2.
    Coordinates that are not finite in any of the three packed points are not
    extrapolated.

    For a generalised M-step, the two plain passes of a cycle (and the pass after a
    trial) are guarded as in plain EM: a point below the point it was computed from
    is halved towards it (:class:`_NewtonGuard`).
    """

    name = "squarem"

    def __init__(self, step_max=1.0, step_factor=4.0):
        self.initial_step_max = float(step_max)
        self.step_factor = float(step_factor)

    def start(self, model, params):
        self.model = model
        self.current = params
        self.phase = 0
        self.step_max = self.initial_step_max
        self.n_trials = 0
        self.n_rejected = 0
        self._guard_start(model)

    @property
    def trial(self):
        return self.phase == 2 or self._guarding

    def next_point(self):
        if self.phase == 2:
            return self.theta_trial
        return self.current  # theta0, or theta1 in phase 1

    def acceptable(self, objective, new_params):
        """A trial must not lower the objective below theta1's, and its M-step must give
        valid parameters (they start the next cycle). A plain pass of a generalised
        M-step must not lower the objective below its anchor's."""
        if self.phase != 2:
            return not self._guarding or self._guard_passes(objective)
        if not (np.isfinite(objective) and objective >= self.objective1):
            return False
        try:
            with np.errstate(all="ignore"):
                return bool(np.all(~np.isnan(self.model.pack(new_params))))
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            return False

    def accept(self, objective, new_params):
        self._guard_accept(self.next_point(), objective)
        if self.phase == 0:
            self.theta0 = self.current
            self.theta1 = new_params
            self.current = new_params
            self.phase = 1
        elif self.phase == 1:
            self.objective1 = objective
            self.theta2 = new_params
            self.current = new_params
            self._extrapolate()
        else:
            self.current = new_params  # M(theta'): the next cycle starts there
            self.phase = 0

    def reject(self):
        if self.phase != 2:  # a plain pass of a generalised M-step overshot
            self.current = self._guard_halve(self.current)
            if self.phase == 1:
                self.theta1 = self.current
            return
        self._fall_back()

    def _fall_back(self):
        """Drop the cycle's trial: the next cycle starts from theta2."""
        self.n_rejected += 1
        self.current = self.theta2
        self.step_max = max(1.0, self.step_max / self.step_factor)
        self.phase = 0

    def _extrapolate(self):
        model = self.model
        self.phase = 0
        try:
            p0 = model.pack(self.theta0)
            p1 = model.pack(self.theta1)
            p2 = model.pack(self.theta2)
        except ValueError:
            return
        with np.errstate(invalid="ignore", over="ignore"):
            r = p1 - p0
            v = p2 - 2.0 * p1 + p0
            usable = np.isfinite(r) & np.isfinite(v)
            r_norm = float(np.sqrt(np.sum(r[usable] ** 2)))
            v_norm = float(np.sqrt(np.sum(v[usable] ** 2)))
        if not (v_norm > 0.0 and np.isfinite(r_norm) and np.isfinite(v_norm)):
            return  # EM has stopped moving (or never moved): nothing to extrapolate
        step = min(max(r_norm / v_norm, 1.0), self.step_max)
        if step == self.step_max:
            self.step_max *= self.step_factor
        if step == 1.0:
            return  # theta0 + 2r + v is theta2 itself
        # An infeasible point (a negative probability, a covariance that is not positive
        # definite) is retried with half the step: unpacking costs no pass over the data.
        while step > 1.0:
            trial = p2.copy()
            trial[usable] = p0[usable] + 2.0 * step * r[usable] + step * step * v[usable]
            try:
                with np.errstate(all="ignore"):
                    self.theta_trial = model.unpack(trial, self.theta2)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                step = 1.0 + (step - 1.0) / 2.0 if step > 1.5 else 1.0
                continue
            self.n_trials += 1
            self.phase = 2
            return
        self._fall_back()


def make_schedule(acceleration):
    """The schedule for an estimator's ``acceleration`` argument."""
    if acceleration == "none" or acceleration is None:
        return PlainEM()
    if acceleration == "squarem":
        return Squarem()
    raise ValueError(f"acceleration must be one of {SCHEDULES}, got {acceleration!r}")


class OnlineEM:
    """Stepwise EM (Cappé & Moulines 2009) for ``partial_fit``.

    Running statistics are kept per unit of weight: after a batch with
    statistics s_b (also per unit of weight) they become
    s <- s + g_t (s_b - s) with g_t = (t + learning_offset)^(-learning_decay),
    and the M-step sees s scaled to the total weight seen so far, so that priors
    and regularisation weigh as in a batch fit of the same data. The first batch
    has g = 1.

    Parameters
    ----------
    learning_decay : float in (0.5, 1]
    learning_offset : float >= 0
    """

    def __init__(self, learning_decay=0.7, learning_offset=10.0):
        decay = float(learning_decay)
        offset = float(learning_offset)
        if not (0.5 < decay <= 1.0):
            raise ValueError(f"learning_decay must be in (0.5, 1], got {learning_decay!r}")
        if not (np.isfinite(offset) and offset >= 0.0):
            raise ValueError(f"learning_offset must be a finite number >= 0, got "
                             f"{learning_offset!r}")
        self.learning_decay = decay
        self.learning_offset = offset

    def step_size(self, n_batches_seen):
        """g_t for the batch after ``n_batches_seen`` earlier ones (1 for the first)."""
        if n_batches_seen == 0:
            return 1.0
        return min(1.0, (n_batches_seen + self.learning_offset) ** (-self.learning_decay))

    def step(self, model, block, params, state, random_state):
        """One ``partial_fit`` step on ``block``.

        With ``state`` None, running statistics start afresh from this batch, at ``params``
        (e.g. a batch fit's) or, when ``params`` is None, at parameters initialised from the
        block. Returns (new parameters, new :class:`OnlineState`, the batch's statistics
        under the parameters it was evaluated at).
        """
        if state is None:
            if params is None:
                params = model.initialize(block, random_state)
            state = OnlineState()
        stats = pass_stats(model, params, [block])
        if not stats.weight > 0:
            raise ValueError("the batch has no rows with positive weight")
        value = model.objective(stats, params)
        if not np.isfinite(value):
            raise objective_error(value, "on this batch")
        running = self.update(stats, state.stats, state.batches)
        total = state.weight + stats.weight
        params = model.m_step(running.scaled(total), params)
        return params, OnlineState(running, state.batches + 1, total), stats

    def update(self, batch_stats, running, n_batches_seen):
        """Running statistics (per unit of weight) after one batch."""
        per_weight = batch_stats.scaled(1.0 / batch_stats.weight)
        if running is None:
            return per_weight
        return running.recentred(per_weight.shift).blend(per_weight,
                                                         self.step_size(n_batches_seen))


class NonFiniteObjectiveError(ValueError):
    """A pass whose objective is not finite: EM cannot climb from it. An estimator may
    catch it to say which of its rows are to blame."""


def objective_error(value, where):
    """The :class:`NonFiniteObjectiveError` of a pass whose objective is ``value``."""
    return NonFiniteObjectiveError(
        f"The EM objective is {value} {where}: some rows have probability zero under "
        "every component at these parameters. Either a density overflowed (values beyond "
        "float64's range: scale the data, e.g. standardise the columns of X, or raise the "
        "regulariser), or the rows hold a value that the parameters give probability zero "
        "(a symbol, count or transition that no component allows).")


@dataclass
class OnlineState:
    """Running statistics of stepwise EM (per unit of weight), the number of batches
    and the total weight seen."""

    stats: object = None
    batches: int = 0
    weight: float = 0.0
