"""A mixture of Gaussian regressions (constant gate) as an engine model.

Blocks hold ``[Z | Y]``: the design matrix (an intercept column first when fitted,
the other columns centred by the estimator) and the centred outputs. The
statistics are those of :mod:`fastem.kernels.regression`; the M-step is weighted
least squares per component (a ridge on the non-intercept coefficients when
``alpha > 0``) and the residual covariance with ``reg_covar`` added to its
diagonal, so it stays positive definite when a component fits its rows exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..engine import UNIT_ROWS, ModelBase, StatsLayout, batch_units
from ..engine.packing import finite_values
from ..kernels import regression as rk
from ..mixture import kmeans

_LOG_2PI = math.log(2.0 * math.pi)
_MASS_EPS = 10.0 * np.finfo(np.float64).eps
_EMPTY = np.empty(0)


@dataclass
class RegressionMixtureParams:
    """Gate weights (K,), coefficients (K, P, M), residual covariances (K, M, M) and
    their lower Cholesky factors."""

    weights: np.ndarray
    coef: np.ndarray
    covariances: np.ndarray
    chol: np.ndarray


def regression_layout(n_components, n_design, n_outputs):
    k, p, m = n_components, n_design, n_outputs
    return StatsLayout({"mass": (k,), "zz": (k, p, p), "zy": (k, p, m), "yy": (k, m, m)})


class RegressionMixtureModel(ModelBase):
    """K Gaussian linear regressions of M outputs on P design columns, constant gate."""

    def __init__(self, n_components, n_design, n_outputs, *, alpha=0.0, reg_covar=1e-6,
                 intercept=True, init_params="kmeans"):
        self.n_components = n_components
        self.n_design = n_design
        self.n_outputs = n_outputs
        self.alpha = float(alpha)
        self.reg_covar = float(reg_covar)
        self.intercept = bool(intercept)
        self.init_params = init_params
        self.layout = regression_layout(n_components, n_design, n_outputs)
        self._batch = batch_units(self.layout.size)

    # -- the pass ----------------------------------------------------------------
    def split(self, block):
        return block.X[:, :self.n_design], block.X[:, self.n_design:]

    def prepare(self, params):
        log_det = np.log(np.diagonal(params.chol, axis1=1, axis2=2)).sum(axis=1)
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        const = log_weights - 0.5 * self.n_outputs * _LOG_2PI - log_det
        return (np.ascontiguousarray(params.coef), np.ascontiguousarray(params.chol),
                np.ascontiguousarray(const))

    def block_stats(self, prepared, block, out):
        Z, Y = self.split(block)
        coef, chol, const = prepared
        weights = _EMPTY if block.weights is None else block.weights
        rk.expert_stats(Z, Y, weights, coef, chol, const, UNIT_ROWS, self._batch, out.flat)

    # -- M-step ------------------------------------------------------------------
    def m_step(self, stats, params=None):
        mass = stats["mass"] + _MASS_EPS
        zz, zy, yy = stats["zz"], stats["zy"], stats["yy"]
        k, p, m = self.n_components, self.n_design, self.n_outputs
        ridge = np.full(p, self.alpha)
        if self.intercept:
            ridge[0] = 0.0
        coef = np.empty((k, p, m))
        covariances = np.empty((k, m, m))
        for c in range(k):
            gram = zz[c] + np.diag(ridge)
            try:
                coef[c] = np.linalg.solve(gram, zy[c])
            except np.linalg.LinAlgError:
                # Fewer independent rows than coefficients: the minimum-norm solution.
                coef[c] = np.linalg.lstsq(gram, zy[c], rcond=None)[0]
            cross = zy[c].T @ coef[c]
            residual = (yy[c] - cross - cross.T + coef[c].T @ zz[c] @ coef[c]) / mass[c]
            residual = 0.5 * (residual + residual.T)
            covariances[c] = residual + self.reg_covar * np.eye(m)
        chol = _cholesky_factors(covariances)
        return RegressionMixtureParams(mass / mass.sum(), coef, covariances, chol)

    # -- initialisation ----------------------------------------------------------------
    def initialize(self, block, random_state):
        Z, Y = self.split(block)
        n = block.n_rows
        k = self.n_components
        if self.init_params == "random":
            resp = random_state.uniform(size=(n, k))
            resp /= resp.sum(axis=1, keepdims=True)
        else:  # k-means on the standardised joint (x, y): rows that look alike together
            joint = np.hstack([Z[:, int(self.intercept):], Y])
            scale = joint.std(axis=0)
            joint = joint / np.where(scale > 0, scale, 1.0)
            seeds = kmeans.kmeans_plusplus(joint, k, block.weights, random_state)
            _, labels = kmeans.lloyd(joint, block.weights, joint[seeds])
            resp = np.zeros((n, k))
            resp[np.arange(n), labels] = 1.0
        return self.m_step(self.stats_from_resp(block, resp))

    def stats_from_resp(self, block, resp):
        """The statistics of given responsibilities (NumPy; initialisation only)."""
        Z, Y = self.split(block)
        w = resp if block.weights is None else resp * block.weights[:, None]
        stats = self.layout.zeros()
        stats["mass"][...] = w.sum(axis=0)
        stats["zz"][...] = np.einsum("nk,na,nb->kab", w, Z, Z)
        stats["zy"][...] = np.einsum("nk,na,nb->kab", w, Z, Y)
        stats["yy"][...] = np.einsum("nk,na,nb->kab", w, Y, Y)
        stats.flat[self.layout.slices["weight"]] = (
            block.n_rows if block.weights is None else block.weights.sum())
        return stats

    # -- SQUAREM --------------------------------------------------------------------
    def pack(self, params):
        log_diag = np.log(np.diagonal(params.chol, axis1=1, axis2=2))
        lower = params.chol.copy()
        idx = np.arange(self.n_outputs)
        lower[:, idx, idx] = log_diag
        tril = np.tril_indices(self.n_outputs)
        return np.concatenate([np.log(params.weights), params.coef.ravel(),
                               lower[:, tril[0], tril[1]].ravel()])

    def unpack(self, vector, like):
        vector = finite_values(vector, vector.shape, "parameters")
        k, p, m = self.n_components, self.n_design, self.n_outputs
        log_weights = vector[:k] - np.logaddexp.reduce(vector[:k])
        coef = vector[k:k + k * p * m].reshape(k, p, m)
        tril = np.tril_indices(m)
        chol = np.zeros((k, m, m))
        chol[:, tril[0], tril[1]] = vector[k + k * p * m:].reshape(k, -1)
        idx = np.arange(m)
        chol[:, idx, idx] = np.exp(chol[:, idx, idx])
        covariances = chol @ np.transpose(chol, (0, 2, 1))
        return RegressionMixtureParams(np.exp(log_weights), coef, covariances, chol)


def _cholesky_factors(covariances):
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        for c, cov in enumerate(covariances):
            try:
                np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ValueError(
                    f"the residual covariance of component {c} is not positive definite: "
                    "it fits its rows exactly. Increase reg_covar, or use fewer components"
                    ) from None
        raise
