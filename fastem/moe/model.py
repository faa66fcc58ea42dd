"""A mixture of experts as an engine model.

The rows are read as :class:`~fastem.moe.design.ExpertDesign` says: the
experts' design row z (an intercept 1 first when fitted, then the expert
columns of X less their centre), the gate's row u (softmax: an intercept 1 and
the centred gating columns; Gaussian gate: the centred gating columns; constant
gate: none), the outputs y (Gaussian experts centred) and, for binomial
experts, the number of trials. No design matrix is built: the kernels read X
directly, and the initialisation reads bounded chunks of rows. A model given no
design reads blocks that are the design ``[Z | U | Y | n]`` itself.

The statistics are those of :mod:`fastem.kernels.regression`. The M-step is
closed form where it exists: weighted least squares and the residual
covariance (``reg_covar`` added to its diagonal) for Gaussian experts, the
weights, means and covariances of a Gaussian gate, the weights of a constant
gate. Poisson and binomial experts and the softmax gate take one Newton step
from the current coefficients (a ridge ``alpha`` on the non-intercept
coefficients): a generalised EM, whose steps the engine halves when they would
lower the objective (:class:`fastem.engine.PlainEM`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..components.structures import degenerate_error, lower_cholesky
from ..engine import UNIT_ROWS, ModelBase, StatsLayout, batch_units
from ..engine.packing import finite_values
from ..kernels import regression as rk
from ..mixture import kmeans
from ..mixture.component import moment_recentre
from .design import ExpertDesign

_LOG_2PI = math.log(2.0 * math.pi)
_MASS_EPS = 10.0 * np.finfo(np.float64).eps
_EMPTY = np.empty(0)
FAMILIES = {"gaussian": rk.GAUSSIAN, "poisson": rk.POISSON, "binomial": rk.BINOMIAL}
GATES = {"constant": rk.CONSTANT, "softmax": rk.SOFTMAX, "gaussian": rk.GATE_GAUSSIAN}
#: The per-row entry points of :meth:`ExpertMixtureModel.rows`, by what they give.
_ROW_KERNELS = {"log_likelihood": rk.expert_log_likelihood, "log_resp": rk.expert_log_resp,
                "log_gate": rk.expert_log_gate}
_NEWTON_INIT_STEPS = 25  # at most, Newton steps on the initial responsibilities
_NEWTON_INIT_TOL = 1e-7  # ... until no coefficient moves more than this


@dataclass
class ExpertMixtureParams:
    """Parameters of a mixture of experts (arrays of size zero where a part is absent).

    weights : (K,) the constant or Gaussian gate's prior weights
    coef : (K, P, M) expert coefficients on the design columns
    covariances, chol : (K, M, M) Gaussian experts' residual covariances, lower factors
    gate_coef : (K, Q) softmax gate coefficients (row 0 is the reference, all zero)
    gate_means : (K, Q), gate_covariances, gate_chol : (K, Q, Q) the Gaussian gate
    """

    weights: np.ndarray
    coef: np.ndarray
    covariances: np.ndarray
    chol: np.ndarray
    gate_coef: np.ndarray
    gate_means: np.ndarray
    gate_covariances: np.ndarray
    gate_chol: np.ndarray


def expert_layout(family, gating, n_components, n_design, n_gate, n_outputs):
    k, p, q, m = n_components, n_design, n_gate, n_outputs
    fields = {"mass": (k,)}
    if family == "gaussian":
        fields |= {"zz": (k, p, p), "zy": (k, p, m), "yy": (k, m, m)}
    else:
        fields |= {"work": (k, p), "hess": (k, p, p)}
    if gating == "softmax":
        fields |= {"gwork": (k, q), "ghess": (k, k, q, q)}
    elif gating == "gaussian":  # moments about the gate's current means (the shift)
        fields |= {"usum": (k, q), "uu": (k, q, q)}
        return StatsLayout(fields, recentre=moment_recentre("usum", "uu", triangular=False))
    return StatsLayout(fields)


def _field_offsets(layout):
    names = ("mass", "zz", "zy", "yy", "work", "hess", "gwork", "ghess", "usum", "uu")
    return np.array([layout.slices[name].start if name in layout.slices else -1
                     for name in names], dtype=np.int64)


# What overflowed, by statistics field and by parameter, for the error messages.
_STATISTICS = {  # in the order they are checked
    "mass": "the responsibilities of the E-step",
    "usum": "", "uu": "",  # the Gaussian gate: GaussianMixture's error (see m_step)
    "zz": "the Gaussian experts' moments of the expert columns",
    "zy": "the Gaussian experts' moments of the expert columns and y",
    "yy": "the Gaussian experts' moments of y",
    "work": "the {family} experts' Newton statistics (exp of a linear predictor)",
    "hess": "the {family} experts' Newton statistics (exp of a linear predictor)",
    "gwork": "the softmax gate's Newton statistics",
    "ghess": "the softmax gate's Newton statistics",
    # Last: a row of probability zero under every component is an overflow too (exp of a
    # linear predictor, or a squared residual, beyond float64's range).
    "loglik": ("the log-likelihood of some rows (probability zero under every component: "
               "an expert's or the gate's exponential or squared residual)")}
_PARAMETERS = {
    "weights": "the component weights", "coef": "the {family} experts' coefficients",
    "covariances": "the experts' residual covariances", "gate_coef": "the softmax gate",
    "gate_means": "the Gaussian gate's means",
    "gate_covariances": "the Gaussian gate's covariances"}


def overflow_error(what):
    """The ValueError of a fit that met values beyond float64's range in ``what``."""
    return ValueError(
        f"Fitting the mixture of experts failed: {what} overflowed (values beyond "
        "float64's range). The data are too large for the model at its current "
        "parameters: scale X and y (e.g. standardise the columns of X), or raise alpha "
        "(a ridge on the coefficients keeps Newton steps bounded).")


class ExpertMixtureModel(ModelBase):
    """K experts (GLMs on P design columns, M outputs) under a constant, softmax or
    Gaussian gate on Q gating columns."""

    def __init__(self, n_components, n_design, n_outputs, *, family="gaussian",
                 gating="constant", n_gate=0, alpha=0.0, reg_covar=1e-6, intercept=True,
                 init_params="random", design=None):
        self.n_components = n_components
        self.n_design = n_design
        self.n_gate = n_gate
        self.n_outputs = n_outputs
        self.family = family
        self.gating = gating
        self.alpha = float(alpha)
        self.reg_covar = float(reg_covar)
        self.intercept = bool(intercept)
        self.init_params = init_params
        #: How blocks are read (columns of X and their centres); the estimator sets it
        #: once the centring is known. None: blocks are the design ``[Z | U | Y | n]``.
        self.design = design
        self.layout = expert_layout(family, gating, n_components, n_design, n_gate, n_outputs)
        self._fields = _field_offsets(self.layout)
        self._batch = batch_units(self.layout.size)
        #: Newton steps (GLM experts, softmax gate): the engine halves those that overshoot.
        self.generalized = family != "gaussian" or gating == "softmax"

    # -- the pass ----------------------------------------------------------------
    def _design(self):
        if self.design is not None:
            return self.design
        return ExpertDesign.of_table(self.n_design, self.n_gate, self.n_outputs,
                                     self.family == "binomial")

    def read(self, block):
        """The kernels' data arguments for a block: ``(rows, columns)``, the arrays
        ``(X, Y, T)`` and how they are read, ``(ecols, x_mean, gcols, u_mean, ycols,
        y_mean, tcol)`` (see :meth:`ExpertDesign.read`)."""
        arguments = self._design().read(block.X)
        return arguments[:3], arguments[3:]

    def chunks(self, block):
        """Consecutive chunks of a block's rows as NumPy arrays ``(lo, hi, Z, U, Y,
        trials, weights)`` (see :meth:`ExpertDesign.chunks`)."""
        return self._design().chunks(block, self.n_design, self.n_gate,
                                     self.family == "binomial")

    def prepare(self, params):
        k = self.n_components
        const = np.zeros(k)
        gate_const = np.zeros(k)
        if self.family == "gaussian":
            log_det = np.log(np.diagonal(params.chol, axis1=1, axis2=2)).sum(axis=1)
            const -= 0.5 * self.n_outputs * _LOG_2PI + log_det
        if self.gating != "softmax":
            with np.errstate(divide="ignore"):
                gate_const = np.log(params.weights)
        if self.gating == "gaussian":
            log_det = np.log(np.diagonal(params.gate_chol, axis1=1, axis2=2)).sum(axis=1)
            gate_const = gate_const - 0.5 * self.n_gate * _LOG_2PI - log_det
        if self.gating == "constant":  # the gated kernels normalise their gate first
            const += gate_const
        c = np.ascontiguousarray
        experts = (FAMILIES[self.family], c(params.coef), c(params.chol), c(const))
        gate = (GATES[self.gating], c(params.gate_coef), c(params.gate_means),
                c(params.gate_chol), c(gate_const))
        return experts, gate

    def shift(self, params):
        return params.gate_means.copy() if self.gating == "gaussian" else None

    def block_stats(self, prepared, block, out):
        weights = _EMPTY if block.weights is None else block.weights
        rk.expert_stats(*self.read(block), weights, *prepared, self._fields, UNIT_ROWS,
                        self._batch, out.flat)

    def rows(self, params, block, what, out):
        """Per-row outputs into ``out``: ``what`` is ``"log_likelihood"`` (log p(y | x),
        (n,)), ``"log_resp"`` (the components' log posteriors, (n, K)) or ``"log_gate"``
        (the gate's log probabilities, (n, K)); see :mod:`fastem.kernels.regression`."""
        _ROW_KERNELS[what](*self.read(block), *self.prepare(params), UNIT_ROWS, out)

    # -- M-step ------------------------------------------------------------------
    def _ridge(self, size, intercept):
        ridge = np.full(size, self.alpha)
        if intercept and size:
            ridge[0] = 0.0
        return ridge

    def m_step(self, stats, params):
        # Every fit, restart, SQUAREM trial and partial_fit step comes through here: the
        # one place where overflow is turned into a named error (for a trial point, into
        # a rejection: the engine catches the ValueError).
        self._check_statistics(stats)
        new = self._m_step(stats, params)
        self._check_parameters(new)
        return new

    def _check_statistics(self, stats):
        """ValueError naming the part whose statistics are not finite (an E-step that
        overflowed), before a solver meets them (numpy's eigh fails on them with
        "Eigenvalues did not converge")."""
        for name, what in _STATISTICS.items():
            if name in self.layout.slices and not np.isfinite(stats[name]).all():
                if name in ("usum", "uu"):
                    values = stats[name].reshape(self.n_components, -1)
                    component = int(np.argmin(np.isfinite(values).all(axis=1)))
                    raise degenerate_error(component, self.reg_covar,
                                           " in the Gaussian gate (non-finite entries)")
                raise overflow_error(what.format(family=self.family))

    def _check_parameters(self, params):
        """ValueError when an M-step gave parameters that are not finite (a Newton step
        or a closed-form solve that overflowed)."""
        for name, what in _PARAMETERS.items():
            if not np.isfinite(getattr(params, name)).all():
                raise overflow_error(what.format(family=self.family))

    def _m_step(self, stats, params):
        mass = stats["mass"] + _MASS_EPS
        new = replace(params)
        if self.gating != "softmax":
            new.weights = mass / mass.sum()
        if self.family == "gaussian":
            new.coef, new.covariances = self._gaussian_experts(stats, mass, params)
            new.chol = _cholesky_factors(new.covariances, " of its residuals",
                                         self.reg_covar)
        else:
            ridge = self._ridge(self.n_design, self.intercept)
            coef = params.coef.copy()
            for c in range(self.n_components):
                if self._holds_data(stats, c):
                    hess, beta = stats["hess"][c], coef[c, :, 0]
                    gradient = stats["work"][c] - hess @ beta - ridge * beta
                    coef[c, :, 0] += _newton_step(hess, gradient, ridge)
            new.coef = coef
        if self.gating == "softmax":
            new.gate_coef = self._softmax_gate(stats, params.gate_coef)
        elif self.gating == "gaussian":
            stats = stats.recentred(params.gate_means)
            offsets = stats["usum"] / mass[:, None]
            means = params.gate_means + offsets
            covariances = stats["uu"] / mass[:, None, None] - np.einsum("ka,kb->kab", offsets,
                                                                        offsets)
            covariances = 0.5 * (covariances + np.transpose(covariances, (0, 2, 1)))
            covariances += self.reg_covar * np.eye(self.n_gate)
            new.gate_means, new.gate_covariances = means, covariances
            new.gate_chol = _cholesky_factors(covariances, " in the Gaussian gate",
                                              self.reg_covar)
        return new

    @staticmethod
    def _holds_data(stats, c):
        """Whether expert ``c`` holds more than round-off of the mass. One that does not
        keeps its parameters (its statistics, of 1e-315, solved to inf; keeping them
        never lowers the objective, which its rows do not weigh on)."""
        return stats["mass"][c] > np.finfo(np.float64).eps * stats["mass"].sum()

    def _gaussian_experts(self, stats, mass, params):
        zz, zy, yy = stats["zz"], stats["zy"], stats["yy"]
        k, p, m = self.n_components, self.n_design, self.n_outputs
        ridge = np.diag(self._ridge(p, self.intercept))
        coef = np.empty((k, p, m))
        covariances = np.empty((k, m, m))
        for c in range(k):
            if not self._holds_data(stats, c):
                coef[c], covariances[c] = params.coef[c], params.covariances[c]
                continue
            coef[c] = solve_psd(zz[c] + ridge, zy[c])
            cross = zy[c].T @ coef[c]
            residual = (yy[c] - cross - cross.T + coef[c].T @ zz[c] @ coef[c]) / mass[c]
            residual = 0.5 * (residual + residual.T)
            covariances[c] = residual + self.reg_covar * np.eye(m)
        return coef, covariances

    def _softmax_gate(self, stats, gate_coef):
        """One Newton step for the gate's log-likelihood sum w r log g (component 0 the
        reference)."""
        k, q = self.n_components, self.n_gate
        if k == 1:
            return gate_coef
        ridge = np.tile(self._ridge(q, True), k - 1)
        free = gate_coef[1:].ravel()
        curvature = np.transpose(stats["ghess"][1:, 1:], (0, 2, 1, 3)).reshape(
            (k - 1) * q, (k - 1) * q)
        gradient = stats["gwork"][1:].ravel() - curvature @ free - ridge * free
        new = gate_coef.copy()
        new[1:] = (free + _newton_step(curvature, gradient, ridge)).reshape(k - 1, q)
        return new

    def halve(self, anchor, point):
        """``point`` with its Newton-step parts moved halfway back towards ``anchor`` (the
        closed-form parts stay: they maximise the same expected objective)."""
        new = replace(point)
        if self.family != "gaussian":
            new.coef = 0.5 * (anchor.coef + point.coef)
        if self.gating == "softmax":
            new.gate_coef = 0.5 * (anchor.gate_coef + point.gate_coef)
        return new

    # -- initialisation ----------------------------------------------------------------
    # The initial responsibilities are never an N x K matrix: they are described (hard
    # labels, a few chosen rows, one value) and made chunk by chunk with the rows.
    def initialize(self, block, random_state):
        k = self.n_components
        if self.init_params == "random":  # a random hard partition, as flexmix starts
            resp = _HardLabels(random_state.randint(k, size=block.n_rows), k)
        elif self.init_params == "random_from_data":
            return self._from_random_rows(block, random_state)
        else:  # k-means on the standardised joint (x, u, y): rows that look alike together
            joint = self._kmeans_joint(block)
            scale = _column_std(joint)
            joint /= np.where(scale > 0, scale, 1.0)
            seeds = kmeans.kmeans_plusplus(joint, k, block.weights, random_state)
            _, labels = kmeans.lloyd(joint, block.weights, joint[seeds])
            del joint
            resp = _HardLabels(labels, k)
        return self.fit_responsibilities(block, resp)

    def _kmeans_joint(self, block):
        """The rows' (x, u, y) without intercepts (log1p(y) for Poisson, y / trials for
        binomial experts), filled chunk by chunk."""
        skip_z, skip_u = int(self.intercept), int(self.gating == "softmax")
        widths = (self.n_design - skip_z, self.n_gate - skip_u, self.n_outputs)
        joint = np.empty((block.n_rows, sum(widths)))
        a, b = widths[0], widths[0] + widths[1]
        for lo, hi, Z, U, Y, trials, _ in self.chunks(block):
            if self.family == "poisson":
                Y = np.log1p(Y)
            elif self.family == "binomial":
                Y = Y / np.where(trials > 0, trials, 1.0)[:, None]
            joint[lo:hi, :a] = Z[:, skip_z:]
            joint[lo:hi, a:b] = U[:, skip_u:]
            joint[lo:hi, b:] = Y
        return joint

    def _from_random_rows(self, block, random_state):
        """Each expert fitted to a few random rows (as many as it has coefficients, plus
        one), under the equal-weight gate. Gaussian experts take the residual covariance
        of one regression over all rows, shrunk by a random factor between 1 and 1/100
        per component: starts with unequal spreads are what lead EM to a tight
        component among loose ones (mixtools draws its starting sigmas at random too)."""
        n, k = block.n_rows, self.n_components
        size = min(n, self.n_design + 1)
        # Without weights every row may be drawn: choice(n) draws what choice(arange(n))
        # would, without the array.
        positive = n if block.weights is None else np.flatnonzero(block.weights > 0)
        count = n if block.weights is None else len(positive)
        # Copies: choice(n, replace=False) returns a slice of a permutation of all n rows,
        # which would keep n integers alive per component.
        chosen = [random_state.choice(positive, size=min(size, count), replace=False).copy()
                  for _ in range(k)]
        params = self.fit_responsibilities(block, _ChosenRows(chosen))
        params.weights = np.full(k, 1.0 / k)
        if self.gating == "softmax":
            params.gate_coef = np.zeros_like(params.gate_coef)
        if self.family == "gaussian":
            overall = self.fit_responsibilities(block, _Uniform(1.0 / k), n_components=1)
            shrink = 10.0 ** (-2.0 * random_state.uniform(size=k))
            params.covariances = overall.covariances * shrink[:, None, None]
            params.chol = overall.chol * np.sqrt(shrink)[:, None, None]
        if self.gating == "gaussian":
            everything = self.fit_responsibilities(block, _Uniform(1.0), n_components=1)
            params.gate_means = np.repeat(everything.gate_means, k, axis=0)
            params.gate_covariances = np.repeat(everything.gate_covariances, k, axis=0)
            params.gate_chol = np.repeat(everything.gate_chol, k, axis=0)
        return params

    def fit_responsibilities(self, block, resp, n_components=None):
        """Parameters maximising the expected objective for given responsibilities (an
        (n, K) array, or a description made chunk by chunk) (Newton steps iterated for
        the parts without a closed form); with ``n_components``, those of a model with
        that many components."""
        model = self if n_components is None else self._with_components(n_components)
        resp = _as_responsibilities(resp)
        params = model.neutral_params(block, resp)
        steps = _NEWTON_INIT_STEPS if model.generalized else 1
        for _ in range(steps):
            # Overflow here is reported by name by the M-step's check, not as a warning.
            with np.errstate(over="ignore", invalid="ignore"):
                stats = model.stats_from_resp(block, resp, params)
            new = model.m_step(stats, params)
            moved = max(np.max(np.abs(new.coef - params.coef), initial=0.0),
                        np.max(np.abs(new.gate_coef - params.gate_coef), initial=0.0))
            params = new
            if moved < _NEWTON_INIT_TOL:  # Newton has converged: a start needs no more
                break
        return params

    def _with_components(self, n_components):
        return ExpertMixtureModel(n_components, self.n_design, self.n_outputs,
                                  family=self.family, gating=self.gating, n_gate=self.n_gate,
                                  alpha=self.alpha, reg_covar=self.reg_covar,
                                  intercept=self.intercept, init_params=self.init_params,
                                  design=self.design)

    def _weighted_chunks(self, block, resp):
        """The rows' chunks with their weighted responsibilities ``w r`` and row weights."""
        for lo, hi, Z, U, Y, trials, weights in self.chunks(block):
            r = resp.chunk(lo, hi)
            w = r if weights is None else r * weights[:, None]
            row_w = np.ones(hi - lo) if weights is None else weights
            yield Z, U, Y, trials, w, row_w
            del Z, U, Y, trials, r, w, row_w  # one chunk alive at a time

    def neutral_params(self, block, resp):
        """A start for Newton steps: intercept-only experts and gate."""
        k, p, q, m = self.n_components, self.n_design, self.n_gate, self.n_outputs
        resp = _as_responsibilities(resp)
        mass, y_sum, trials_sum = np.zeros(k), np.zeros(k), np.zeros(k)
        glm = self.family != "gaussian" and self.intercept
        for _, _, Y, trials, w, _ in self._weighted_chunks(block, resp):
            mass += w.sum(axis=0)
            if glm:
                y_sum += w.T @ Y[:, 0]
                if self.family == "binomial":
                    trials_sum += w.T @ trials
            del Y, trials, w
        mass += _MASS_EPS
        coef = np.zeros((k, p, m))
        if glm:
            mean = y_sum / mass
            if self.family == "poisson":
                coef[:, 0, 0] = np.log(np.maximum(mean, 1e-8))
            else:
                rate = mean / np.maximum(trials_sum / mass, 1e-300)
                rate = np.clip(rate, 1e-8, 1 - 1e-8)
                coef[:, 0, 0] = np.log(rate / (1 - rate))
        gate_coef = np.zeros((k, q if self.gating == "softmax" else 0))
        if self.gating == "softmax":
            gate_coef[:, 0] = np.log(mass / mass[0])
        gm = self.family == "gaussian"
        gg = self.gating == "gaussian"
        eye_m, eye_q = np.eye(m), np.eye(q)
        return ExpertMixtureParams(
            weights=mass / mass.sum(), coef=coef,
            covariances=np.tile(eye_m, (k, 1, 1)) if gm else np.zeros((k, 0, 0)),
            chol=np.tile(eye_m, (k, 1, 1)) if gm else np.zeros((k, 0, 0)),
            gate_coef=gate_coef,
            gate_means=np.zeros((k, q)) if gg else np.zeros((k, 0)),
            gate_covariances=np.tile(eye_q, (k, 1, 1)) if gg else np.zeros((k, 0, 0)),
            gate_chol=np.tile(eye_q, (k, 1, 1)) if gg else np.zeros((k, 0, 0)))

    def stats_from_resp(self, block, resp, params):
        """The statistics of given responsibilities, Newton parts at ``params`` (NumPy,
        chunk by chunk; initialisation only)."""
        resp = _as_responsibilities(resp)
        stats = self.layout.zeros()
        if self.gating == "gaussian":  # about the gate's means, as the kernel
            stats.shift = self.shift(params)
        total_weight = 0.0
        for chunk in self._weighted_chunks(block, resp):
            self._add_chunk_stats(stats, params, *chunk)
            total_weight += chunk[-1].sum()
            del chunk
        stats.flat[self.layout.slices["weight"]] = total_weight
        return stats

    def _add_chunk_stats(self, stats, params, Z, U, Y, trials, w, row_w):
        stats["mass"][...] += w.sum(axis=0)
        if self.family == "gaussian":
            stats["zz"][...] += _weighted_cross(w, Z, Z)
            stats["zy"][...] += _weighted_cross(w, Z, Y)
            stats["yy"][...] += _weighted_cross(w, Y, Y)
        else:
            eta = Z @ params.coef[:, :, 0].T
            with np.errstate(over="ignore"):
                if self.family == "poisson":
                    mean = np.exp(eta)
                    variance = mean
                else:
                    prob = 1.0 / (1.0 + np.exp(-eta))
                    mean = trials[:, None] * prob
                    variance = mean * (1.0 - prob)
            residual = np.where(w > 0, w * (variance * eta + Y[:, :1] - mean), 0.0)
            stats["work"][...] += residual.T @ Z
            stats["hess"][...] += _weighted_cross(np.where(w > 0, w * variance, 0.0), Z, Z)
        if self.gating == "softmax":
            logits = U @ params.gate_coef.T
            gate = np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
            gw = gate * row_w[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                spread = np.where(gate > 0, logits - (gate * logits).sum(axis=1,
                                                                         keepdims=True), 0.0)
            stats["gwork"][...] += (w - gw + gw * spread).T @ U
            # w g_k (delta_kl - g_l) u u^T, one (k, l) at a time (no rows x K x K array).
            for k in range(self.n_components):
                for other in range(self.n_components):
                    cross = gw[:, k] * ((1.0 if k == other else 0.0) - gate[:, other])
                    stats["ghess"][k, other] += (U * cross[:, None]).T @ U
        elif self.gating == "gaussian":
            for c in range(self.n_components):
                centred = U - params.gate_means[c]
                stats["usum"][c] += w[:, c] @ centred
                stats["uu"][c] += (centred * w[:, c, None]).T @ centred

    # -- SQUAREM --------------------------------------------------------------------
    def pack(self, params):
        parts = [params.coef.ravel()]
        if self.gating != "softmax":
            parts.insert(0, np.log(params.weights))
        if self.family == "gaussian":
            parts.append(_pack_cholesky(params.chol))
        if self.gating == "softmax":
            parts.append(params.gate_coef[1:].ravel())
        elif self.gating == "gaussian":
            parts += [params.gate_means.ravel(), _pack_cholesky(params.gate_chol)]
        return np.concatenate(parts)

    def unpack(self, vector, like):
        vector = finite_values(vector, vector.shape, "parameters")
        k, p, q, m = self.n_components, self.n_design, self.n_gate, self.n_outputs
        new = replace(like)
        at = 0

        def take(size):
            nonlocal at
            at += size
            return vector[at - size:at]

        if self.gating != "softmax":
            log_weights = take(k)
            new.weights = np.exp(log_weights - np.logaddexp.reduce(log_weights))
        new.coef = take(k * p * m).reshape(k, p, m).copy()
        if self.family == "gaussian":
            new.chol = _unpack_cholesky(take(k * m * (m + 1) // 2), k, m)
            new.covariances = new.chol @ np.transpose(new.chol, (0, 2, 1))
        if self.gating == "softmax":
            new.gate_coef = np.vstack([np.zeros((1, q)), take((k - 1) * q).reshape(k - 1, q)])
        elif self.gating == "gaussian":
            new.gate_means = take(k * q).reshape(k, q).copy()
            new.gate_chol = _unpack_cholesky(take(k * q * (q + 1) // 2), k, q)
            new.gate_covariances = new.gate_chol @ np.transpose(new.gate_chol, (0, 2, 1))
        return new

    def n_free_parameters(self):
        """Free parameters, for BIC and AIC."""
        k, p, q, m = self.n_components, self.n_design, self.n_gate, self.n_outputs
        count = k * p * m
        if self.family == "gaussian":
            count += k * m * (m + 1) // 2
        if self.gating == "constant":
            count += k - 1
        elif self.gating == "softmax":
            count += (k - 1) * q
        else:
            count += k - 1 + k * q + k * q * (q + 1) // 2
        return count


class _HardLabels:
    """Responsibilities one at ``labels[n]`` for row n, zero elsewhere."""

    def __init__(self, labels, n_components):
        # Kept in the smallest integer type (one byte a row for up to 256 components).
        self.labels = np.asarray(labels, dtype=np.min_scalar_type(max(n_components - 1, 0)))
        self.n_components = n_components

    def chunk(self, lo, hi):
        resp = np.zeros((hi - lo, self.n_components))
        resp[np.arange(hi - lo), self.labels[lo:hi]] = 1.0
        return resp


class _ChosenRows:
    """Responsibility one for the rows ``rows[k]`` of each component k (a row may be
    chosen by several), zero elsewhere."""

    def __init__(self, rows):
        self.rows = [np.asarray(r, dtype=np.int64) for r in rows]

    def chunk(self, lo, hi):
        resp = np.zeros((hi - lo, len(self.rows)))
        for k, rows in enumerate(self.rows):
            resp[rows[(rows >= lo) & (rows < hi)] - lo, k] = 1.0
        return resp


class _Uniform:
    """One component, responsibility ``value`` for every row."""

    def __init__(self, value):
        self.value = value

    def chunk(self, lo, hi):
        return np.full((hi - lo, 1), self.value)


class _Given:
    """Responsibilities given as an (n, K) array."""

    def __init__(self, resp):
        self.resp = resp

    def chunk(self, lo, hi):
        return self.resp[lo:hi]


def _as_responsibilities(resp):
    return _Given(resp) if isinstance(resp, np.ndarray) else resp


def _column_std(A, chunk_rows=1 << 16):
    """``A.std(axis=0)`` without an A-sized temporary (two passes over row chunks)."""
    n = len(A)
    mean = sum(A[lo:lo + chunk_rows].sum(axis=0) for lo in range(0, n, chunk_rows)) / n
    squares = sum(((A[lo:lo + chunk_rows] - mean) ** 2).sum(axis=0)
                  for lo in range(0, n, chunk_rows))
    return np.sqrt(squares / n)


def _weighted_cross(weights, A, B):
    """``sum_n weights[n, k] A[n, a] B[n, b]`` for every column k of ``weights``, as
    matrix products (BLAS; an einsum over three operands is a slow Python-level loop)."""
    return np.stack([(A * weights[:, k, None]).T @ B for k in range(weights.shape[1])])


def _newton_step(curvature, gradient, ridge):
    """The step solving (curvature + diag(ridge)) step = gradient (minimum-norm when that
    matrix is singular: a direction without data stays put)."""
    return solve_psd(curvature + np.diag(ridge), gradient)


def solve_psd(matrix, rhs):
    """The minimum-norm solution of ``matrix @ x = rhs`` for a symmetric positive
    semi-definite ``matrix``: eigenvalues below ``n * eps`` times the largest count as
    zero. With fewer independent rows than coefficients a plain solve returns round-off
    noise scaled by 1e16 rather than failing; this returns the same solution for
    weighted rows as for the rows repeated."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    top = values[-1] if len(values) else 0.0
    keep = values > len(values) * np.finfo(np.float64).eps * top
    if not top > 0.0:
        return np.zeros_like(rhs)
    inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    projected = vectors.T @ rhs
    scaled = inverse.reshape((-1,) + (1,) * (projected.ndim - 1)) * projected
    return vectors @ scaled


def _pack_cholesky(chol):
    """Lower factors as their lower triangles with log diagonals."""
    n = chol.shape[-1]
    lower = chol.copy()
    idx = np.arange(n)
    lower[:, idx, idx] = np.log(np.diagonal(chol, axis1=1, axis2=2))
    tril = np.tril_indices(n)
    return lower[:, tril[0], tril[1]].ravel()


def _unpack_cholesky(values, k, n):
    tril = np.tril_indices(n)
    chol = np.zeros((k, n, n))
    chol[:, tril[0], tril[1]] = values.reshape(k, -1)
    idx = np.arange(n)
    chol[:, idx, idx] = np.exp(chol[:, idx, idx])
    return chol


def _cholesky_factors(covariances, where, reg_covar):
    """Lower Cholesky factors, or GaussianMixture's ValueError naming the component whose
    covariance is not finite or not positive definite (``where`` says which of its
    covariances: " of its residuals", " in the Gaussian gate")."""
    return lower_cholesky(covariances, reg_covar, where=where)
