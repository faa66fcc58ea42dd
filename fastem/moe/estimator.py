"""``fastem.MixtureOfExperts``: mixtures of linear regressions fitted by EM."""

from __future__ import annotations

import warnings

import numpy as np

from .. import _validation as v
from .._base import EstimatorBase, transactional
from .._runtime import threads
from .._typing import ArrayLike, Callback, FloatArray, IntArray, RandomStateLike, Self
from ..engine import UNIT_ROWS, Block, LocalBackend, make_schedule, run_em
from ..exceptions import ConvergenceWarning, NotFittedError, compatible
from ..kernels import regression as rk
from .model import RegressionMixtureModel, RegressionMixtureParams

EXPERTS = ("gaussian",)
GATINGS = ("constant",)
INIT_PARAMS = ("kmeans", "random")


class MixtureOfExperts(EstimatorBase):
    """A mixture of Gaussian linear regressions: p(y | x) = sum_k pi_k N(y; B_k x, S_k).

    Each component (expert) is a linear regression of the outputs on the expert
    columns of X with its own full residual covariance; the gate is constant (the
    component weights), which is a *mixture of regressions* (flexmix's
    ``FLXMRglm()`` with Gaussian family). The E-step and its additive statistics
    (sum r z z^T, sum r z y^T, sum r y y^T) run in one fused, multi-threaded
    pass; the M-step is weighted least squares per component.

    Parameters
    ----------
    n_components : int, default=1
    expert : {"gaussian"}, default="gaussian"
        The experts' family. Poisson and binomial experts are not implemented yet.
    gating : {"constant"}, default="constant"
        The gate. Softmax and Gaussian gates are not implemented yet.
    expert_columns : array-like of int or None, default=None
        Columns of X the experts regress on (None: all), so that the estimator can
        sit in a scikit-learn Pipeline.
    fit_intercept : bool, default=True
    alpha : float, default=0.0
        Ridge penalty on the non-intercept coefficients (on the centred columns).
    reg_covar : float, default=1e-6
        Added to the diagonal of every residual covariance: a component that fits
        its rows exactly keeps a positive definite covariance.
    n_init : int, default=1
    init_params : {"kmeans", "random"}, default="kmeans"
        ``kmeans``: k-means on the standardised joint (x, y); ``random``: random
        responsibilities.
    max_iter : int, default=100
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per row.
    acceleration : {None, "squarem"}, default=None
    random_state, n_threads, verbose, verbose_interval, warm_start, callback
        As in :class:`fastem.GaussianMixture`.

    Attributes
    ----------
    weights_ : ndarray (K,)
    coef_ : ndarray (K, n_outputs, n_expert_features)
        Slopes of each component (scikit-learn's ``coef_`` layout per component).
    intercept_ : ndarray (K, n_outputs)
    covariances_ : ndarray (K, n_outputs, n_outputs)
        Residual covariances (variances when y has one column: ``covariances_[:, 0, 0]``).
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_
    """

    def __init__(self, n_components: int = 1, *, expert: str = "gaussian",
                 gating: str = "constant", expert_columns: ArrayLike | None = None,
                 fit_intercept: bool = True, alpha: float = 0.0, reg_covar: float = 1e-6,
                 n_init: int = 1, init_params: str = "kmeans", max_iter: int = 100,
                 tol: float = 1e-3, acceleration: str | None = None,
                 random_state: RandomStateLike = None, n_threads: int | None = None,
                 verbose: int = 0, verbose_interval: int = 10, warm_start: bool = False,
                 callback: Callback | None = None) -> None:
        self.n_components = n_components
        self.expert = expert
        self.gating = gating
        self.expert_columns = expert_columns
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.init_params = init_params
        self.max_iter = max_iter
        self.tol = tol
        self.acceleration = acceleration
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.warm_start = warm_start
        self.callback = callback

    # -- validation ---------------------------------------------------------------
    def _check_hyperparameters(self):
        v.check_int(self.n_components, "n_components", 1)
        v.check_option(self.expert, "expert", EXPERTS)
        v.check_option(self.gating, "gating", GATINGS)
        v.check_bool(self.fit_intercept, "fit_intercept")
        v.check_real(self.alpha, "alpha", 0.0)
        v.check_real(self.reg_covar, "reg_covar", 0.0)
        v.check_int(self.n_init, "n_init", 1)
        v.check_option(self.init_params, "init_params", INIT_PARAMS)
        v.check_int(self.max_iter, "max_iter", 0)
        v.check_real(self.tol, "tol", 0.0)
        if self.acceleration not in (None, "squarem"):
            raise ValueError(f"acceleration must be None or 'squarem', got "
                             f"{self.acceleration!r}")

    def _expert_matrix(self, X, fitting):
        X = v.check_array(X, name="X", estimator=type(self).__name__).astype(np.float64)
        if fitting:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but MixtureOfExperts is expecting "
                             f"{self.n_features_in_} features as input.")
        columns = self.expert_columns
        if columns is None:
            return X
        columns = np.asarray(columns)
        if columns.ndim != 1 or columns.dtype.kind not in "iu" or len(columns) == 0:
            raise ValueError("expert_columns must be a non-empty list of column indices")
        if columns.min() < -X.shape[1] or columns.max() >= X.shape[1]:
            raise ValueError(f"expert_columns {columns.tolist()} are out of range for X with "
                             f"{X.shape[1]} columns")
        return X[:, columns]

    def _outputs(self, y, n_rows, fitting):
        y = v.check_array(y, name="y", ensure_2d=False).astype(np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2:
            raise ValueError(f"y must be 1-d or 2-d, got {y.ndim} dimensions")
        if y.shape[0] != n_rows:
            raise ValueError(f"y has {y.shape[0]} rows, but X has {n_rows}")
        if not fitting and y.shape[1] != self._n_outputs:
            raise ValueError(f"y has {y.shape[1]} columns, but the model was fitted on "
                             f"{self._n_outputs}")
        return y

    def _design(self, E, y=None):
        """``[Z | Y]`` as the kernels read them: centred columns, the intercept first."""
        Z = E - self._x_mean
        if self.fit_intercept:
            Z = np.hstack([np.ones((len(E), 1)), Z])
        if y is None:
            return np.ascontiguousarray(Z)
        return np.ascontiguousarray(np.hstack([Z, y - self._y_mean]))

    # -- fitting ------------------------------------------------------------------------
    @transactional
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the mixture by EM (``n_init`` restarts, the best kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        E = self._expert_matrix(X, fitting=True)
        Y = self._outputs(y, E.shape[0], fitting=True)
        self._y_1d = np.ndim(y) == 1
        weights = v.check_sample_weight(sample_weight, E.shape[0])
        n_coefficients = E.shape[1] + int(self.fit_intercept)
        if E.shape[0] < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {E.shape[0]}")
        w = np.ones(E.shape[0]) if weights is None else weights
        if not w.sum() > 0:
            raise ValueError("sample_weight sums to zero")
        warm = (self.warm_start and hasattr(self, "converged_")
                and self._params.coef.shape[1:] == (n_coefficients, Y.shape[1]))
        if not warm:  # the centring stays with warm-started parameters
            self._x_mean = w @ E / w.sum()
            self._y_mean = w @ Y / w.sum()
        self._n_outputs = Y.shape[1]
        model = RegressionMixtureModel(self.n_components, n_coefficients, Y.shape[1],
                                       alpha=self.alpha, reg_covar=self.reg_covar,
                                       intercept=self.fit_intercept,
                                       init_params=self.init_params)
        callback = None
        if self.callback is not None:
            def callback(iteration, objective, params):
                self._set_parameters(params)
                return bool(self.callback(iteration, objective, self))

        backend = LocalBackend([Block(self._design(E, Y), weights)])
        work = E.shape[0] * self.n_components * (n_coefficients + Y.shape[1]) ** 2
        with threads(self.n_threads, work):
            run = run_em(model, backend, schedule=make_schedule(self.acceleration),
                         n_init=self.n_init, max_iter=self.max_iter, tol=float(self.tol),
                         random_state=v.check_random_state(self.random_state),
                         warm_params=self._params if warm else None,
                         warm_objective=self.lower_bound_ if warm else -np.inf,
                         verbose=self.verbose, verbose_interval=self.verbose_interval,
                         callback=callback)
        self._set_parameters(run.params)
        self.converged_ = run.converged
        self.n_iter_ = run.n_iter
        self.lower_bound_ = run.objective
        self.lower_bounds_ = list(run.history)
        if not run.converged and self.max_iter > 0 and not run.stopped_by_callback:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", compatible(ConvergenceWarning), stacklevel=2)
        return self

    def _set_parameters(self, params: RegressionMixtureParams):
        self._params = params
        self.weights_ = params.weights
        slopes = params.coef[:, int(self.fit_intercept):, :]  # (K, p, M) on centred x
        self.coef_ = np.transpose(slopes, (0, 2, 1)).copy()
        base = params.coef[:, 0, :] if self.fit_intercept else np.zeros((len(params.weights),
                                                                         self._n_outputs))
        self.intercept_ = base + self._y_mean - np.einsum("kmp,p->km", self.coef_,
                                                           self._x_mean)
        self.covariances_ = params.covariances

    # -- inference ------------------------------------------------------------------------
    def _check_is_fitted(self):
        if not hasattr(self, "_params"):
            raise NotFittedError("This MixtureOfExperts instance is not fitted yet. Call "
                                 "'fit' with appropriate arguments before using this "
                                 "estimator.")

    def _rows(self, X, y, mode):
        self._check_is_fitted()
        E = self._expert_matrix(X, fitting=False)
        Y = self._outputs(y, E.shape[0], fitting=False)
        Z = self._design(E)
        model = RegressionMixtureModel(self.n_components, Z.shape[1], Y.shape[1])
        coef, chol, const = model.prepare(self._params)
        values = np.empty(E.shape[0])
        matrix = np.empty((E.shape[0], self.n_components)) if mode == rk.LOG_RESP \
            else np.empty((0, 0))
        with threads(self.n_threads, E.shape[0] * self.n_components * Z.shape[1] ** 2):
            rk.expert_rows(Z, np.ascontiguousarray(Y - self._y_mean), coef, chol, const, mode,
                           UNIT_ROWS, values, matrix)
        return values if mode == rk.LOG_SUM else matrix

    def score_samples(self, X: ArrayLike, y: ArrayLike) -> FloatArray:
        """log p(y | x) of every row."""
        return self._rows(X, y, rk.LOG_SUM)

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Mean log-likelihood per row, log p(y | x) (not R^2, unlike scikit-learn's
        regressors' ``score``)."""
        values = self.score_samples(X, y)
        weights = v.check_sample_weight(sample_weight, len(values))
        return float(np.average(values, weights=weights))

    def predict_proba(self, X: ArrayLike, y: ArrayLike) -> FloatArray:
        """Posterior probability of each component given (x, y)."""
        return np.exp(self._rows(X, y, rk.LOG_RESP))

    def predict_component(self, X: ArrayLike, y: ArrayLike) -> IntArray:
        """Most probable component of each row given (x, y)."""
        return np.argmax(self._rows(X, y, rk.LOG_RESP), axis=1)

    def component_means(self, X: ArrayLike) -> FloatArray:
        """Each component's prediction, shape (n_samples, K, n_outputs)."""
        self._check_is_fitted()
        E = self._expert_matrix(X, fitting=False)
        return np.einsum("np,kmp->nkm", E, self.coef_) + self.intercept_[None]

    def predict(self, X: ArrayLike) -> FloatArray:
        """The mixture mean E[y | x] = sum_k pi_k (b_k + B_k x)."""
        self._check_is_fitted()
        means = np.einsum("k,nkm->nm", self.weights_, self.component_means(X))
        return means[:, 0] if self._y_1d else means

    def _n_parameters(self) -> int:
        k, p, m = self._params.coef.shape
        return int(k - 1 + k * p * m + k * m * (m + 1) // 2)

    def bic(self, X: ArrayLike, y: ArrayLike) -> float:
        """Bayesian information criterion: -2 log L + p log n (lower is better)."""
        values = self.score_samples(X, y)
        return float(-2.0 * values.sum() + self._n_parameters() * np.log(len(values)))

    def aic(self, X: ArrayLike, y: ArrayLike) -> float:
        """Akaike information criterion: -2 log L + 2 p (lower is better)."""
        return float(-2.0 * self.score_samples(X, y).sum() + 2 * self._n_parameters())

    def sample(self, X: ArrayLike, random_state: RandomStateLike = None) -> tuple:
        """Draw y given each row of X: returns (y, components)."""
        rng = v.check_random_state(self.random_state if random_state is None
                                   else random_state)
        means = self.component_means(X)
        n = means.shape[0]
        components = rng.choice(self.n_components, size=n, p=self.weights_)
        noise = rng.normal(size=(n, self._n_outputs))
        chol = self._params.chol[components]
        y = means[np.arange(n), components] + np.einsum("nab,nb->na", chol, noise)
        return (y[:, 0] if self._y_1d else y), components
