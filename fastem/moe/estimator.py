"""``fastem.MixtureOfExperts``: mixtures of regressions and mixtures of experts by EM."""

from __future__ import annotations

import warnings

import numpy as np

from .. import _dask_io as dask_io
from .. import _validation as v
from .._base import EstimatorBase, shippable, transactional
from .._runtime import threads
from .._typing import ArrayLike, Callback, FloatArray, IntArray, RandomStateLike, Self
from ..engine import Block, LocalBackend
from ..engine.dask_backend import is_dask_collection
from ..engine.driver import fit_estimator, online_schedule, online_step, run_fit
from ..engine.sources import SourceRules, open_source
from ..exceptions import ConvergenceWarning, DataConversionWarning, compatible
from .model import FAMILIES, GATES, ExpertMixtureModel, ExpertMixtureParams, overflow_error
from .training import DaskTraining, MemoryTraining, design_of, lazy_rows, positions, rows_block

INIT_PARAMS = ("random", "kmeans", "random_from_data")

PARAMETER_BOUND = 1e150
"""Largest magnitude of a coefficient, intercept or gate mean that a fit keeps or a model
file may hold (covariances: its square). Data beyond it overflow the model's second
moments; within it, linear predictors stay finite for data whose squares are finite."""


class MixtureOfExperts(EstimatorBase, kind="moe"):
    """A mixture of experts: p(y | x) = sum_k g_k(x) f_k(y | x), fitted by EM.

    Each expert f_k is a generalised linear model on the expert columns of X:
    a Gaussian linear regression (any number of outputs, a full residual
    covariance each), a Poisson regression (log link) or a binomial regression
    (logit link, ``y`` successes out of ``trials``). The gate g is

    * ``"constant"``: the component weights (a *mixture of regressions*, flexmix's
      ``FLXMRglm()``);
    * ``"softmax"``: a multinomial logit on the gating columns (a *mixture of
      experts*; flexmix's concomitant model ``FLXPmultinom()``);
    * ``"gaussian"``: a Gaussian mixture on the gating columns, g_k(x) proportional to
      pi_k N(x_g; mu_k, Sigma_k) (the cluster-weighted model of Xu, Jordan & Hinton).
      EM then maximises the *joint* likelihood of (x_g, y), which ``lower_bound_``
      reports; ``score_samples`` is always log p(y | x).

    The E-step and its additive statistics run in one fused, multi-threaded pass.
    Gaussian experts, the constant gate and the Gaussian gate have closed-form
    M-steps; Poisson and binomial experts and the softmax gate take one Newton
    (IRLS) step per iteration from the current coefficients, and a step that would
    lower the objective is halved until it does not: the objective never
    decreases (a generalised EM).

    Parameters
    ----------
    n_components : int, default=1
    expert : {"gaussian", "poisson", "binomial"}, default="gaussian"
    gating : {"constant", "softmax", "gaussian"}, default="constant"
    expert_columns : array-like of int or None, default=None
        Columns of X the experts regress on (None: all), so that the estimator can
        sit in a scikit-learn Pipeline.
    gating_columns : array-like of int or None, default=None
        Columns of X the gate reads (None: all); ignored by the constant gate.
    fit_intercept : bool, default=True
        Give every expert an intercept (the softmax gate always has one).
    alpha : float, default=0.0
        Ridge penalty ``alpha/2 |beta|^2`` on the non-intercept coefficients of the
        experts and of the softmax gate (on centred columns).
    reg_covar : float, default=1e-6
        Added to the diagonal of every residual covariance (Gaussian experts) and gate
        covariance: a component that fits its rows exactly keeps a positive definite
        covariance (with 0, that is a ``ValueError`` naming the component).
    n_init : int, default=1
    init_params : {"random", "kmeans", "random_from_data"}, default="random"
        ``random``: a random hard partition of the rows (flexmix's start);
        ``kmeans``: k-means on the standardised joint (x, y) (log1p(y) for Poisson,
        y / trials for binomial experts), which splits crossing regressions badly;
        ``random_from_data``: each expert fitted to a few random rows, with
        Gaussian spreads shrunk at random (mixtools' kind of start: it finds a tight
        component among loose ones). Mixtures of regressions have local optima:
        use ``n_init`` restarts.
    max_iter : int, default=500
    tol : float, default=1e-6
        Convergence threshold on the change of the mean log-likelihood per row.
        EM for regression mixtures crawls along plateaus while the components
        separate, so the default is tighter than the Gaussian mixture's 1e-3
        (flexmix stops at a relative change of 1e-6 too).
    acceleration : {None, "squarem"}, default=None
        SQUAREM. Its plain passes are guarded as plain EM's (a Newton step that would
        lower the objective is halved), so the objective never decreases either way.
    random_state, n_threads, verbose, verbose_interval, warm_start, callback
        As in :class:`fastem.GaussianMixture`.
    learning_decay : float in (0.5, 1], default=0.7
    learning_offset : float >= 0, default=10.0
        Step sizes of :meth:`partial_fit`: batch t has step
        (t + learning_offset) ** -learning_decay.

    Attributes
    ----------
    coef_ : ndarray (K, n_expert_features), or (K, n_outputs, n_expert_features) for 2-d y
        Slopes of each expert (on the linear-predictor scale for GLM experts).
    intercept_ : ndarray (K,), or (K, n_outputs) for 2-d y
    covariances_ : ndarray (K, n_outputs, n_outputs)
        Residual covariances of Gaussian experts (``covariances_[:, 0, 0]`` the variances
        when y has one column).
    weights_ : ndarray (K,)
        The constant or Gaussian gate's prior weights; for the softmax gate, the mean
        gate probabilities over the training rows.
    gate_coef_ : ndarray (K, n_gating_features), gate_intercept_ : ndarray (K,)
        The softmax gate (component 0 is the reference, all zeros).
    gate_means_ : ndarray (K, n_gating_features), gate_covariances_ : ndarray (K, q, q)
        The Gaussian gate.
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, n_outputs_
    """

    _estimator_type_tag = "regressor"
    _required_fitted = ("coef_", "intercept_", "weights_", "n_features_in_", "n_outputs_",
                        "converged_", "n_iter_", "lower_bound_", "lower_bounds_")
    _optional_fitted = ("covariances_", "gate_coef_", "gate_intercept_", "gate_means_",
                        "gate_covariances_", "feature_names_in_", "target_name_",
                        "trials_name_")

    def __init__(self, n_components: int = 1, *, expert: str = "gaussian",
                 gating: str = "constant", expert_columns: ArrayLike | None = None,
                 gating_columns: ArrayLike | None = None, fit_intercept: bool = True,
                 alpha: float = 0.0, reg_covar: float = 1e-6, n_init: int = 1,
                 init_params: str = "random", max_iter: int = 500, tol: float = 1e-6,
                 acceleration: str | None = None, random_state: RandomStateLike = None,
                 n_threads: int | None = None, verbose: int = 0, verbose_interval: int = 10,
                 warm_start: bool = False, callback: Callback | None = None,
                 learning_decay: float = 0.7, learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.expert = expert
        self.gating = gating
        self.expert_columns = expert_columns
        self.gating_columns = gating_columns
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
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def __sklearn_tags__(self):
        # A regressor of y on X whose ``score`` is a log-likelihood, not R^2
        # (``poor_score`` keeps scikit-learn's checks from asking for R^2 > 0.5).
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = self.expert == "gaussian"
        from sklearn.utils import RegressorTags

        tags.regressor_tags = RegressorTags(poor_score=True)
        return tags

    # -- validation ---------------------------------------------------------------
    def _check_hyperparameters(self):
        v.check_int(self.n_components, "n_components", 1)
        v.check_option(self.expert, "expert", tuple(FAMILIES))
        v.check_option(self.gating, "gating", tuple(GATES))
        v.check_bool(self.fit_intercept, "fit_intercept")
        v.check_real(self.alpha, "alpha", 0.0)
        v.check_real(self.reg_covar, "reg_covar", 0.0)
        v.check_int(self.n_init, "n_init", 1)
        v.check_option(self.init_params, "init_params", INIT_PARAMS)
        v.check_int(self.max_iter, "max_iter", 0)
        v.check_real(self.tol, "tol", 0.0)
        if self.acceleration not in (None, "none", "squarem"):
            raise ValueError(f"acceleration must be None or 'squarem', got "
                             f"{self.acceleration!r}")

    def _features(self, X, fitting):
        # No copy of float64 data: the kernels read X as given.
        X = v.check_array(X, name="X", estimator=type(self).__name__).astype(np.float64,
                                                                              copy=False)
        if fitting:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but MixtureOfExperts is expecting "
                             f"{self.n_features_in_} features as input.")
        return X

    @staticmethod
    def _columns(X, columns, name):
        return X if columns is None else X[:, positions(columns, X.shape[1], name)]

    def _inputs(self, X, fitting):
        """The expert matrix E and the gating matrix G (no columns for a constant gate)."""
        X = self._features(X, fitting)
        E = self._columns(X, self.expert_columns, "expert_columns")
        if self.gating == "constant":
            return E, np.empty((len(X), 0))
        return E, self._columns(X, self.gating_columns, "gating_columns")

    def _outputs(self, y, n_rows, fitting):
        """y checked, as (n_rows, n_outputs), and whether it was given 1-d."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        y = v.check_array(y, name="y", ensure_2d=False, min_samples=0).astype(np.float64,
                                                                               copy=False)
        one_d = y.ndim == 1
        if one_d:
            y = y[:, None]
        if y.ndim != 2:
            raise ValueError(f"y must be 1-d or 2-d, got {y.ndim} dimensions")
        if y.shape[0] != n_rows:
            raise ValueError(f"y has {y.shape[0]} rows, but X has {n_rows}")
        if fitting and self.expert != "gaussian" and y.shape[1] != 1:
            raise ValueError(f"{self.expert} experts take one output column; y has "
                             f"{y.shape[1]}")
        if fitting and self.expert != "gaussian" and not one_d:
            warnings.warn("A column-vector y was passed when a 1d array was expected: "
                          f"{self.expert} experts have one output", compatible(
                              DataConversionWarning), stacklevel=4)
            one_d = True
        if not fitting and y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} columns, but the model was fitted on "
                             f"{self.n_outputs_}")
        if self.expert == "poisson":
            # PoissonHMM's rule for counts: non-negative integers up to 2**53 (beyond, a
            # count is not even an exact integer, and y * eta overflows sooner).
            try:
                v.check_nonnegative_integers(y, "y", noun="count")
            except ValueError as error:
                raise ValueError(f"y must be non-negative counts for poisson experts: "
                                 f"{error}") from None
        return y, one_d

    def _trials(self, trials, y, n_rows=None, ones=True):
        """The binomial experts' trials (ones when not given; None with ``ones=False``:
        the kernels then read one trial per row), checked against y."""
        n_rows = len(y) if y is not None else n_rows
        if self.expert != "binomial":
            if trials is not None:
                raise ValueError("trials is only for binomial experts")
            return None
        given = trials is not None
        if not given:
            trials = 1.0
        else:
            trials = v.check_array(trials, name="trials", ensure_2d=False,
                                   min_samples=0).astype(np.float64, copy=False)
            if trials.shape != (n_rows,):
                raise ValueError(f"trials must have one value per row ({n_rows}), got shape "
                                 f"{trials.shape}")
            # MultinomialHMM's rule for n_trials: non-negative integers up to 2**53.
            v.check_nonnegative_integers(trials, "trials", noun="count")
        if y is not None and (np.any(y[:, 0] < 0) or np.any(y[:, 0] > trials)):
            raise ValueError("y must be successes between 0 and trials for binomial experts"
                             + (" (y in [0, 1] when trials is not given)"
                                if np.all(trials == 1) else ""))
        if not given:
            return np.ones(n_rows) if ones else None
        return trials

    def _model(self, n_design, n_gate, n_outputs):
        return ExpertMixtureModel(self.n_components, n_design, n_outputs, family=self.expert,
                                  gating=self.gating, n_gate=n_gate, alpha=self.alpha,
                                  reg_covar=self.reg_covar, intercept=self.fit_intercept,
                                  init_params=self.init_params)

    # -- fitting ------------------------------------------------------------------------
    @transactional
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            trials: ArrayLike | None = None) -> Self:
        """Fit the mixture by EM (``n_init`` restarts, the best kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a dask array or dataframe
            Dask inputs are fitted on the cluster (the same kernels run in one task per
            partition; y, sample_weight and trials may be dask or NumPy, and are cut
            like X). The start is taken from all rows up to a million, else from a
            uniform sample of that many.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Outputs (Gaussian experts), counts (Poisson) or successes (binomial).
        sample_weight : array-like of shape (n_samples,), default=None
        trials : array-like of shape (n_samples,), default=None
            Binomial experts only: the number of trials of each row (default 1: y is 0/1).

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        self.__dict__.pop("_online", None)
        training = self._training(X, y, sample_weight, trials)
        if training.n_rows < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {training.n_rows}")
        model = self._training_model(*training.shapes)
        warm = (self.warm_start and hasattr(self, "converged_") and hasattr(self, "_params")
                and self._layout == model.layout)
        if not warm:  # the centring stays with warm-started parameters
            self._x_mean, self._u_mean, self._y_mean = training.centring(self)
        self.n_outputs_ = training.shapes[2]
        self._y_1d = training.y_1d
        model.design = training.design(self)
        self._layout = model.layout

        def finish(run):
            if self.gating == "softmax":
                self.weights_ = training.mean_gate(self)
            if isinstance(training, DaskTraining):
                dask_io.set_feature_names(self, training.rows)
            self._check_fitted_values()

        fit_estimator(self, model, training.backend(self), max_iter=self.max_iter,
                      work=self._work(training.n_rows, model),
                      warm=(self._params, self.lower_bound_) if warm else None,
                      verbose=self.verbose, verbose_interval=self.verbose_interval,
                      finish=finish)
        return self

    @transactional
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    trials: ArrayLike | None = None) -> Self:
        """One step of online (stepwise) EM on a batch of rows.

        The first call fits its batch by EM (``n_init``, ``init_params``,
        ``max_iter``, ``tol``; the batch also fixes the centring of the columns), or
        continues from the fitted parameters after :meth:`fit`. Each call computes the
        batch's statistics under the current parameters, blends them into running
        statistics with step ``(t + learning_offset) ** -learning_decay`` (Cappé &
        Moulines 2009) and runs the M-step. For GLM experts and the softmax gate the
        statistics are IRLS's (curvature and working response), whose quadratic
        model adds up over batches evaluated at different coefficients: the M-step is
        one Newton step on the running model. Memory is that of one batch; ``fit``
        starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        trials : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        online_schedule(self)  # (validates learning_decay and learning_offset first)
        fitted = hasattr(self, "_params")
        training = MemoryTraining(self, X, y, sample_weight, trials, fitting=not fitted)
        training.check_batch_magnitude(self)
        model = self._training_model(*training.shapes)
        if fitted and (self._layout != model.layout or training.y_1d != self._y_1d):
            raise ValueError("y must have the shape of the y the model was fitted on")
        if not fitted:
            if training.n_positive < self.n_components:
                raise ValueError(f"The first batch needs n_samples >= n_components, got "
                                 f"n_components = {self.n_components}, n_samples = "
                                 f"{training.n_positive}")
            self._x_mean, self._u_mean, self._y_mean = training.centring(self)
            self.n_outputs_ = training.shapes[2]
            self._y_1d = training.y_1d
        model.design = training.design(self)
        block = training.block(self)

        def first_batch(random_state):
            # Stepwise EM moves a fraction of an EM step per batch, too little to recover
            # from a poor start (a regression start is rarely good): the first batch is
            # fitted by EM, with the restarts of ``fit``.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return run_fit(model, LocalBackend([block]), n_init=self.n_init,
                               max_iter=self.max_iter, tol=self.tol, random_state=random_state,
                               n_threads=self.n_threads, work=work).params

        self._layout = model.layout
        work = self._work(block.n_rows, model)
        online_step(self, model, block, self._params if fitted else None, work=work,
                    start=first_batch)
        if self.gating == "softmax":
            self.weights_ = training.mean_gate(self)
        self._check_fitted_values()
        return self

    def _training(self, X, y, sample_weight, trials):
        """The training data of a fit (:mod:`fastem.moe.training`), through the engine's
        :func:`~fastem.engine.sources.open_source`: rows in memory (a memmap too), or dask
        collections (X or y) read on the cluster."""
        made = {}

        def in_memory(X, lengths, weights, whole, n_features):
            made["training"] = MemoryTraining(self, X, y, weights, trials)
            return made["training"].block(self)

        def on_dask(rows, weights, bounds):
            made["training"] = DaskTraining(self, rows, y, weights, trials)
            return made["training"].backend(self), rows.X.shape[1]

        rules = SourceRules(in_memory, dask=on_dask, streams=False, dask_dtype=np.float64,
                            features=lambda block: made["training"].shapes[0])
        open_source(X, rules, sample_weight=sample_weight, others=(y,))
        return made["training"]

    def _training_model(self, n_expert, n_gating, n_outputs):
        return self._model(n_expert + int(self.fit_intercept),
                           n_gating + int(self.gating == "softmax"), n_outputs)

    def _work(self, n_rows, model):
        """Multiply-adds of one pass, about (it picks one thread for small inputs)."""
        return n_rows * self.n_components * (model.n_design + model.n_gate
                                             + model.n_outputs) ** 2

    def _shipped_for_design(self):
        """What the workers need to build designs and gate probabilities."""
        return shippable(self)

    def _set_parameters(self, params: ExpertMixtureParams):
        """Public attributes (original units) from the model's (centred) parameters."""
        self._params = params
        first = int(self.fit_intercept)
        slopes = np.transpose(params.coef[:, first:, :], (0, 2, 1))  # (K, M, p)
        base = params.coef[:, 0, :] if self.fit_intercept else 0.0
        intercept = base + self._y_mean - slopes @ self._x_mean
        self.coef_ = slopes[:, 0, :].copy() if self._y_1d else slopes.copy()
        self.intercept_ = intercept[:, 0].copy() if self._y_1d else intercept
        if self.expert == "gaussian":
            self.covariances_ = params.covariances
        if self.gating != "softmax":
            self.weights_ = params.weights
        if self.gating == "softmax":
            self.gate_coef_ = params.gate_coef[:, 1:].copy()
            self.gate_intercept_ = params.gate_coef[:, 0] - self.gate_coef_ @ self._u_mean
        elif self.gating == "gaussian":
            self.gate_means_ = params.gate_means + self._u_mean
            self.gate_covariances_ = params.gate_covariances

    def _check_fitted_values(self, loaded=False):
        """ValueError (and, the fits being transactional, the previous state kept) when a
        fitted array is not finite or beyond :data:`PARAMETER_BOUND`: the model's M-step
        checks its parameters, but the public attributes are computed from them
        (intercepts in the original units, the softmax gate's mean over the rows), and a
        Newton step can land on finite but absurd coefficients. Model files are held to
        the same bound (``loaded``), so that every fitted model loads."""
        for name in self._required_fitted + self._optional_fitted:
            value = getattr(self, name, None)
            if not (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
                continue
            bound = PARAMETER_BOUND ** 2 if name.endswith("covariances_") else PARAMETER_BOUND
            finite = np.isfinite(value).all()
            if finite and not np.abs(value).max(initial=0.0) > bound:
                continue
            if loaded:
                raise ValueError(f"{name} must be finite and at most {bound:.0e} in "
                                 "magnitude (MixtureOfExperts' bound on parameters), got "
                                 f"{np.abs(value).max():.4g}")
            if not finite:
                raise overflow_error(name)
            raise ValueError(
                f"Fitting the mixture of experts failed: {name} reached "
                f"{np.abs(value).max():.3g}, beyond {bound:.0e} (the bound of its "
                "parameters). The data's scale is extreme for the model: scale X and y "
                "(e.g. standardise the columns of X), or raise alpha.")

    def _validate_loaded(self):
        """Rebuild the model's parameters from the public attributes of a loaded file
        (the centring is then zero), checking every array's shape against the others, the
        constructor's ``expert``, ``gating`` and columns, ``n_features_in_`` and
        ``n_outputs_``, and every value's domain (finite; weights on the simplex;
        covariances symmetric positive definite; the softmax gate's reference component
        zero; no intercept without ``fit_intercept``)."""
        super()._validate_loaded()
        self._check_hyperparameters()
        k = self.n_components
        n_features = v.check_int(self.n_features_in_, "n_features_in_", 1)
        m = v.check_int(self.n_outputs_, "n_outputs_", 1)
        if self.expert != "gaussian" and m != 1:
            raise ValueError(f"n_outputs_ is {m}, but {self.expert} experts have one output")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and len(names) != n_features:
            raise ValueError(f"feature_names_in_ names {len(names)} columns, but "
                             f"n_features_in_ is {n_features}")
        for name in ("target_name_", "trials_name_"):
            if hasattr(self, name) and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a column name")
        if hasattr(self, "trials_name_") and self.expert != "binomial":
            raise ValueError("trials_name_ is only for binomial experts")
        # Attributes of the other experts and gates: a file that holds them was edited.
        belongs = {"covariances_": self.expert == "gaussian",
                   "gate_coef_": self.gating == "softmax",
                   "gate_intercept_": self.gating == "softmax",
                   "gate_means_": self.gating == "gaussian",
                   "gate_covariances_": self.gating == "gaussian"}
        for name, needed in belongs.items():
            if needed != hasattr(self, name):
                raise ValueError(
                    f"{name} is {'missing' if needed else 'present'}, but the model has "
                    f"{self.expert} experts and a {self.gating} gate")
        p = len(positions(self.expert_columns, n_features, "expert_columns"))
        q = (0 if self.gating == "constant"
             else len(positions(self.gating_columns, n_features, "gating_columns")))
        coef = np.asarray(self.coef_)
        self._y_1d = coef.ndim != 3
        if self._y_1d and m != 1:
            raise ValueError(f"coef_ must have shape (n_components, n_outputs_, "
                             f"n_expert_features) = {(k, m, p)}, got {coef.shape}")
        if not self._y_1d and self.expert != "gaussian":
            raise ValueError(f"coef_ must have shape (n_components, n_expert_features) = "
                             f"{(k, p)} for {self.expert} experts, got {coef.shape}")
        coef = v.check_parameter_array(coef, "coef_", (k, p) if self._y_1d else (k, m, p))
        intercept = v.check_parameter_array(self.intercept_, "intercept_",
                                            (k,) if self._y_1d else (k, m))
        if not self.fit_intercept and np.any(intercept != 0.0):
            raise ValueError("intercept_ must be zero when fit_intercept is False")
        slopes = coef.reshape(k, m, p)
        self._x_mean, self._u_mean, self._y_mean = np.zeros(p), np.zeros(q), np.zeros(m)
        model = self._model(p + int(self.fit_intercept), q + int(self.gating == "softmax"), m)
        params = model.neutral_params(Block(np.zeros((1, model.n_design + model.n_gate + m
                                                      + int(self.expert == "binomial")))),
                                      np.ones((1, k)))
        design = np.transpose(slopes, (0, 2, 1))
        if self.fit_intercept:
            design = np.concatenate([intercept.reshape(k, 1, m), design], axis=1)
        params.coef = np.ascontiguousarray(design)
        weights = v.check_parameter_array(self.weights_, "weights_", (k,))
        if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError("weights_ must be non-negative and sum to 1")
        params.weights = weights
        if self.expert == "gaussian":
            params.covariances = v.check_parameter_array(self.covariances_, "covariances_",
                                                         (k, m, m))
            params.chol = _cholesky(params.covariances, "covariances_")
        if self.gating == "softmax":
            gate_coef = v.check_parameter_array(self.gate_coef_, "gate_coef_", (k, q))
            gate_intercept = v.check_parameter_array(self.gate_intercept_,
                                                     "gate_intercept_", (k,))
            if np.any(gate_coef[0] != 0.0) or gate_intercept[0] != 0.0:
                raise ValueError("gate_coef_[0] and gate_intercept_[0] must be zero (component "
                                 "0 is the softmax gate's reference)")
            params.gate_coef = np.column_stack([gate_intercept, gate_coef])
        elif self.gating == "gaussian":
            params.gate_means = v.check_parameter_array(self.gate_means_, "gate_means_", (k, q))
            params.gate_covariances = v.check_parameter_array(
                self.gate_covariances_, "gate_covariances_", (k, q, q))
            params.gate_chol = _cholesky(params.gate_covariances, "gate_covariances_")
        self._check_fitted_values(loaded=True)
        self._params = params
        self._layout = model.layout
        v.check_fitted_scalars(self, integers=("n_iter_",), flags=("converged_",),
                               reals=("lower_bound_",), real_lists=("lower_bounds_",))

    # -- inference ------------------------------------------------------------------------
    def _check_is_fitted(self):
        if not hasattr(self, "_params"):
            super()._check_is_fitted()
            raise compatible(ValueError)("this MixtureOfExperts has no parameters")

    def _block(self, X, y=None, trials=None):
        self._check_is_fitted()
        X = self._features(X, fitting=False)
        Y = None if y is None else self._outputs(y, X.shape[0], fitting=False)[0]
        return rows_block(self, X, Y, self._trials(trials, Y, len(X), ones=False))

    def _model_for(self):
        p = self._params
        model = self._model(p.coef.shape[1], p.gate_coef.shape[1] or p.gate_means.shape[1],
                            self.n_outputs_)
        model.design = design_of(self)
        return model

    def _run_rows(self, block, what):
        model = self._model_for()
        n = block.n_rows
        result = np.empty(n if what == "log_likelihood" else (n, self.n_components))
        with threads(self.n_threads, self._work(n, model)):
            model.rows(self._params, block, what, result)
        _check_evaluated(result, np.isnan)  # -inf is a log-probability of zero
        return result

    def _gate_matrix(self, block):
        return np.exp(self._run_rows(block, "log_gate"))

    def score_samples(self, X: ArrayLike, y: ArrayLike,
                      trials: ArrayLike | None = None) -> FloatArray:
        """log p(y | x) of every row (for a Gaussian gate too: conditional on x). Dask
        inputs give a lazy dask array."""
        if _lazy(X, y, trials):
            return lazy_rows(self, "score_samples", X, y, trials)
        return self._run_rows(self._block(X, y, trials), "log_likelihood")

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
              trials: ArrayLike | None = None) -> float:
        """Mean log-likelihood per row, log p(y | x). This is *not* R^2, unlike the
        ``score`` of scikit-learn's regressors: higher is better, and it is comparable
        between models of the same y only."""
        values = self.score_samples(X, y, trials)
        if is_dask_collection(values):
            values = values.compute()
        weights = v.check_sample_weight(sample_weight, len(values))
        return float(np.average(values, weights=weights))

    def predict_proba(self, X: ArrayLike, y: ArrayLike | None = None,
                      trials: ArrayLike | None = None) -> FloatArray:
        """Probability of each component: the posterior given (x, y), or without ``y``
        the gate's g_k(x) (what is known of the component before seeing y)."""
        if y is None:
            return self.gate_proba(X)
        if _lazy(X, y, trials):
            return lazy_rows(self, "predict_proba", X, y, trials, columns=self.n_components)
        return np.exp(self._run_rows(self._block(X, y, trials), "log_resp"))

    def predict_component(self, X: ArrayLike, y: ArrayLike,
                          trials: ArrayLike | None = None) -> IntArray:
        """Most probable component of each row given (x, y)."""
        if _lazy(X, y, trials):
            return lazy_rows(self, "predict_component", X, y, trials, dtype=np.int64)
        return np.argmax(self._run_rows(self._block(X, y, trials), "log_resp"), axis=1)

    def gate_proba(self, X: ArrayLike) -> FloatArray:
        """The gate's probabilities g_k(x) of each component before seeing y."""
        if _lazy(X):
            return lazy_rows(self, "gate_proba", X, columns=self.n_components)
        return self._gate_matrix(self._block(X))

    def component_means(self, X: ArrayLike, trials: ArrayLike | None = None) -> FloatArray:
        """Each expert's mean E[y | x, k], shape (n_samples, K, n_outputs)."""
        self._check_is_fitted()
        E, _ = self._inputs(X, fitting=False)
        slopes = self.coef_.reshape(self.n_components, self.n_outputs_, -1)
        eta = np.einsum("np,kmp->nkm", E, slopes) + self.intercept_.reshape(
            self.n_components, self.n_outputs_)[None]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.expert == "poisson":
                eta = np.exp(eta)
            elif self.expert == "binomial":
                n_trials = self._trials(trials, None, len(E))
                eta = n_trials[:, None, None] / (1.0 + np.exp(-eta))
        _check_evaluated(eta, lambda means: ~np.isfinite(means))
        return eta

    def predict(self, X: ArrayLike, trials: ArrayLike | None = None) -> FloatArray:
        """The mixture mean E[y | x] = sum_k g_k(x) E[y | x, k] (binomial: expected
        successes out of ``trials``, the probability when not given)."""
        if _lazy(X, trials):
            self._check_is_fitted()
            return lazy_rows(self, "predict", X, trials=trials,
                             columns=None if self._y_1d else self.n_outputs_)
        means = np.einsum("nk,nkm->nm", self.gate_proba(X), self.component_means(X, trials))
        return means[:, 0] if self._y_1d else means

    def _n_parameters(self) -> int:
        return self._model_for().n_free_parameters()

    def bic(self, X: ArrayLike, y: ArrayLike, trials: ArrayLike | None = None) -> float:
        """Bayesian information criterion: -2 log L + p log n (lower is better), with L
        the conditional likelihood of y given x."""
        values = self.score_samples(X, y, trials)
        return float(-2.0 * values.sum() + self._n_parameters() * np.log(len(values)))

    def aic(self, X: ArrayLike, y: ArrayLike, trials: ArrayLike | None = None) -> float:
        """Akaike information criterion: -2 log L + 2 p (lower is better)."""
        return float(-2.0 * self.score_samples(X, y, trials).sum() + 2 * self._n_parameters())

    def sample(self, X: ArrayLike, trials: ArrayLike | None = None,
               random_state: RandomStateLike = None) -> tuple:
        """Draw y given each row of X (and ``trials`` for binomial experts): returns
        (y, components)."""
        rng = v.check_random_state(self.random_state if random_state is None
                                   else random_state)
        gate = self.gate_proba(X)
        means = self.component_means(X, trials)
        n = means.shape[0]
        components = (gate.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
        chosen = means[np.arange(n), components]
        if self.expert == "poisson":
            y = rng.poisson(chosen).astype(np.float64)
        elif self.expert == "binomial":
            n_trials = self._trials(trials, None, n)
            y = rng.binomial(n_trials.astype(np.int64)[:, None],
                             chosen / np.maximum(n_trials, 1)[:, None]).astype(np.float64)
        else:
            noise = rng.normal(size=(n, self.n_outputs_))
            y = chosen + np.einsum("nab,nb->na", self._params.chol[components], noise)
        return (y[:, 0] if self._y_1d else y), components

    @classmethod
    def _warmup(cls, groups, say):
        if "experts" not in groups:
            return
        rng = np.random.RandomState(0)
        X = rng.normal(size=(64, 3))
        y = X[:, 0] + rng.normal(size=len(X))
        # One kernel per job serves every expert family and gate (run-time switches).
        model = MixtureOfExperts(2, max_iter=2, random_state=0).fit(X, y)
        model.score_samples(X, y)
        model.predict_proba(X, y)
        model.gate_proba(X)
        say("mixtures of experts")


def _check_evaluated(values, bad):
    """ValueError naming the first row where ``bad(values)`` holds (NaN, or a mean beyond
    float64's range) instead of returning it."""
    # The extremes first: min and max propagate NaN and hold any infinity, and need no
    # array of flags the size of the output (the common case: nothing to report).
    if not values.size or not bad(np.array([values.min(), values.max()])).any():
        return
    flags = bad(values)
    if flags.any():
        row = int(np.flatnonzero(flags.reshape(len(values), -1).any(axis=1))[0])
        raise ValueError(
            f"Evaluating the mixture of experts overflowed at row {row} of X (a linear "
            "predictor, its exponential or a squared residual beyond float64's range): X "
            "has values far outside the range of the data the model was fitted on. Scale "
            "X as the training data were.")


def _lazy(*inputs):
    return any(is_dask_collection(a) for a in inputs if a is not None)


def _cholesky(covariances, name):
    if not np.allclose(covariances, np.swapaxes(covariances, -1, -2)):
        raise ValueError(f"{name} must be symmetric")
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None
