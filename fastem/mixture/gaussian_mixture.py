"""GaussianMixture: a drop-in for ``sklearn.mixture.GaussianMixture``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _dask_io as dask_io
from .. import _validation as v
from .._base import _UNCHANGED, EstimatorBase, fitting_lock, transactional
from .._runtime import resolve_n_threads, threads
from .._typing import (
    Acceleration,
    ArrayLike,
    Callback,
    CovarianceType,
    DataSource,
    FloatArray,
    IntArray,
    MissingPolicy,
    RandomStateLike,
    Self,
)
from ..components.structures import STRUCTURES
from ..components.structures import check_name as check_structure
from ..components.structures import names as structure_names
from ..engine import (
    SCHEDULES,
    Block,
)
from ..engine.dask_backend import DaskBackend, is_dask_collection
from ..engine.driver import fit_estimator, online_schedule, online_step
from ..engine.schedules import NonFiniteObjectiveError
from ..engine.sources import SourceRules, open_source
from . import missing as missing_data
from .model import GaussianMixtureModel, MixtureParams, row_outputs

INIT_PARAMS = {"kmeans", "k-means++", "random", "random_from_data"}


class GaussianMixture(EstimatorBase, kind="gmm"):
    """Gaussian mixture fitted by EM on compiled, multi-core kernels.

    The constructor, attributes and methods are those of scikit-learn 1.9's
    ``GaussianMixture``; see its documentation for the model. fastem adds
    ``sample_weight`` to :meth:`fit`, ``n_threads``, a per-iteration
    ``callback`` and ``random_state`` on :meth:`sample`. float32 input is not
    copied to float64 and runs the float32 kernels (about 1.6x faster at D=16:
    products and per-256-row sums in float32, everything across work units in
    float64); fitted parameters are float64.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical", "EEI"}, default="full"
        Form of the component covariances (a structure of
        :mod:`fastem.components.structures`); "EEI" is mclust's diagonal covariance
        shared by all components.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean per-sample log-likelihood.
    reg_covar : float, default=1e-6
        Non-negative value added to the diagonal of every covariance. Before it
        is added, a variance below the round-off level of its computation
        (64 ulps of the second moment it came from, or one ulp of the mean,
        squared) is raised to that level, so that ``reg_covar=0`` with a
        component on a single point stays finite; a component whose points
        are all exactly equal to zero still raises.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation; 0 returns the
        initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the best final objective is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How initial responsibilities are chosen.
    weights_init, means_init, precisions_init : array-like, default=None
        User-provided initial parameters (scikit-learn's shapes).
    random_state : int, RandomState instance or None, default=None
        Seed for the initialisation.
    warm_start : bool, default=False
        Start from the previous fit on consecutive calls to :meth:`fit`.
    verbose : int, default=0
        1 prints each initialisation, 2 also times and changes per iteration.
    verbose_interval : int, default=10
        Iterations between two printed lines.
    n_threads : int or None, default=None
        Threads for the kernels; None uses all cores. Results do not depend on it.
    callback : callable or None, default=None
        ``callback(iteration, objective, model)`` is called after every
        iteration with the model holding the current parameters; returning
        True stops the current initialisation.
    missing : {"raise", "marginalize"}, default="raise"
        "raise": NaN in X is an error (scikit-learn's behaviour). "marginalize":
        NaN marks a missing entry (missing at random); EM runs on the
        observed-data likelihood, with the conditional mean and covariance of
        the missing entries in the statistics. A row with nothing observed is
        left out of the fit and gets the mixture weights as its posterior.
    acceleration : {"none", "squarem"}, default="none"
        "squarem": SQUAREM extrapolation between EM steps (Varadhan & Roland
        2008) with a monotonicity safeguard; usually several times fewer passes
        over the data when EM converges slowly. "none" keeps scikit-learn's
        iterates exactly. ``n_iter_`` counts passes over the data.
    learning_decay : float in (0.5, 1], default=0.7
        Step-size decay of :meth:`partial_fit` (stepwise EM).
    learning_offset : float >= 0, default=10.0
        Step-size offset of :meth:`partial_fit`: batch t has step
        (t + learning_offset) ** -learning_decay.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Shape (K, D, D) for full, (D, D) tied, (K, D) diag, (K,) spherical.
    precisions_ : ndarray
        Inverses of ``covariances_``, same shapes.
    precisions_cholesky_ : ndarray
        Upper-triangular U with precision = U U^T (full, tied), or 1/sigma.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean per-sample log-likelihood of the best initialisation.
    lower_bounds_ : list of float
        Its per-iteration history.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 6)
    array([ 1., 10.])
    """

    _estimator_type_tag = "density_estimator"
    _weighted_methods = ("fit", "partial_fit")

    def set_partial_fit_request(self, *, sample_weight: bool | str | None = _UNCHANGED) -> Self:
        """Request ``sample_weight`` in ``partial_fit`` under scikit-learn's metadata
        routing."""
        return self._request("partial_fit", sample_weight)

    def __init__(self, n_components: int = 1, *, covariance_type: CovarianceType = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1,
                 init_params: str = "kmeans", weights_init: ArrayLike | None = None,
                 means_init: ArrayLike | None = None, precisions_init: ArrayLike | None = None,
                 random_state: RandomStateLike = None, warm_start: bool = False, verbose: int = 0,
                 verbose_interval: int = 10, n_threads: int | None = None,
                 callback: Callback | None = None, missing: MissingPolicy = "raise",
                 acceleration: Acceleration = "none", learning_decay: float = 0.7,
                 learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.missing = missing
        self.acceleration = acceleration
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # -- validation -------------------------------------------------------
    def _check_hyperparameters(self):
        v.check_int(self.n_components, "n_components", 1)
        check_structure(self.covariance_type, type(self).__name__, self._variational)
        v.check_real(self.tol, "tol", 0.0)
        v.check_real(self.reg_covar, "reg_covar", 0.0)
        v.check_int(self.max_iter, "max_iter", 0)
        v.check_int(self.n_init, "n_init", 1, v.MAX_N_INIT)
        v.check_option(self.init_params, "init_params", INIT_PARAMS)
        v.check_option(self.missing, "missing", ("raise", "marginalize"))
        v.check_option(self.acceleration, "acceleration", SCHEDULES)
        v.check_bool(self.warm_start, "warm_start")
        v.check_int(self.verbose, "verbose", 0)
        v.check_int(self.verbose_interval, "verbose_interval", 1)
        resolve_n_threads(self.n_threads)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable or None, got {self.callback!r}.")

    def _check_initial_parameters(self, spec, n_features):
        """Validated float64 copies of the user's initial parameters (never rewritten)."""
        k = self.n_components
        weights = means = chol = None
        if self.weights_init is not None:
            weights = v.check_parameter_array(self.weights_init, "weights", (k,))
            if np.any(weights < 0.0) or np.any(weights > 1.0):
                raise ValueError("The parameter 'weights' should be in the range [0, 1], but "
                                 f"got max value {weights.max():.5f}, min value "
                                 f"{weights.min():.5f}")
            # scikit-learn's tolerance: 1e-6 for float32 weights, 1e-8 otherwise.
            single = getattr(np.asarray(self.weights_init), "dtype", None) == np.float32
            if not np.isclose(weights.sum(), 1.0, rtol=0.0, atol=1e-6 if single else 1e-8):
                raise ValueError("The parameter 'weights' should be normalized, but got "
                                 f"sum(weights) = {weights.sum():.5f}")
        if self.means_init is not None:
            means = v.check_parameter_array(self.means_init, "means", (k, n_features))
        if self.precisions_init is not None:
            precisions = v.check_parameter_array(
                self.precisions_init, f"{spec.name} precision",
                spec.precisions_shape(k, n_features))
            spec.check_precisions(precisions)
            chol = spec.cholesky_from_precisions(precisions)
        return weights, means, chol

    def _validate_X(self, X, *, fitting=False):
        name = type(self).__name__
        marginalize = getattr(self, "missing", "raise") == "marginalize"
        X = v.check_array(X, min_samples=2 if fitting else 1, estimator=name,
                          allow_nan=marginalize)
        if marginalize:
            if np.isinf(X).any():
                raise ValueError("Input X contains infinity (missing='marginalize' only "
                                 "accepts NaN as a missing entry).")
            if fitting and X.shape[0] and np.isnan(X).all(axis=0).any():
                column = int(np.flatnonzero(np.isnan(X).all(axis=0))[0])
                raise ValueError(f"Column {column} of X has no observed entry; it cannot be "
                                 "fitted (drop it).")
        if not fitting:
            self._check_is_fitted()
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                                 f"{self.n_features_in_} features as input.")
        return X

    _required_fitted = ("weights_", "means_", "covariances_", "precisions_cholesky_",
                        "precisions_", "n_features_in_", "converged_", "n_iter_",
                        "lower_bound_", "lower_bounds_")
    _optional_fitted = ("feature_names_in_",)  # set by `fastem fit` (its columns)

    def _validate_loaded(self):
        """Re-check fitted parameters read from a file, each and against each other."""
        super()._validate_loaded()
        self._check_hyperparameters()
        k = self.n_components
        d = v.check_int(self.n_features_in_, "n_features_in_", 1)
        spec = self._spec
        weights = v.check_parameter_array(self.weights_, "weights_", (k,))
        if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError("weights_ must be non-negative and sum to 1")
        v.check_parameter_array(self.means_, "means_", (k, d))
        shape = spec.precisions_shape(k, d)
        covariances = v.check_parameter_array(self.covariances_, "covariances_", shape)
        chol = v.check_parameter_array(self.precisions_cholesky_, "precisions_cholesky_", shape)
        precisions = v.check_parameter_array(self.precisions_, "precisions_", shape)
        if spec.diagonal:
            if not np.all(covariances > 0):
                raise ValueError("covariances_ must be positive")
        elif not np.allclose(covariances, np.swapaxes(covariances, -1, -2)):
            raise ValueError("covariances_ must be symmetric")
        expected = spec.precisions_cholesky(covariances, 0.0)  # positive definite, or raises
        v.check_consistent(chol, expected, "precisions_cholesky_", "covariances_")
        v.check_consistent(precisions, spec.precisions(expected), "precisions_", "covariances_")
        v.check_fitted_scalars(self, integers=("n_iter_",), flags=("converged_",),
                               reals=("lower_bound_",), real_lists=("lower_bounds_",))

    # -- parameters ----------------------------------------------------------
    #: Whether the estimator needs the structure's variational (Normal-Wishart) posterior.
    _variational = False

    @property
    def _spec(self):
        return STRUCTURES[self.covariance_type]

    def _get_parameters(self):
        return MixtureParams(self.weights_, self.means_, self.covariances_,
                             self.precisions_cholesky_)

    def _set_parameters(self, params):
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = self._spec.precisions(params.precisions_cholesky)

    # -- fitting -------------------------------------------------------------
    def fit(self, X: DataSource, y: Any = None, sample_weight: ArrayLike | None = None) -> Self:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a zero weight drops the row and an integer
            weight counts the row that many times.


            X may also be an ``np.memmap`` (read in chunks at every pass, never
            copied whole), a callable returning a fresh iterator of arrays (the
            row blocks, e.g. one per file) at every call: exact EM streamed over
            data that do not fit in memory (initialisation then uses the first
            blocks, up to one million rows), or a dask array or dataframe (its
            numeric columns): each E-step runs one task per partition on the
            active ``distributed.Client`` (else in this process), see
            ``docs/scaling.md``.

        Returns
        -------
        self : GaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X: ArrayLike, y: Any = None,
                    sample_weight: ArrayLike | None = None) -> IntArray:
        """Fit, then return the most probable component of every row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        # One lock around both steps: another thread's fit must not come in between.
        with fitting_lock(self):
            if is_dask_collection(X):
                return self.fit(X, sample_weight=sample_weight).predict(X)
            source = self._fit(X, sample_weight, streams=False)
            # Labels from the final parameters, so fit_predict(X) == fit(X).predict(X).
            return self._rows(source.sample.X, "argmax", validated=True)

    @transactional
    def _fit(self, X, sample_weight, streams=True):
        """Fit on any source (:func:`fastem.engine.sources.open_source`); returns it."""
        self._check_hyperparameters()
        marginalize = self.missing == "marginalize"
        found = {}

        def dask_rows(rows, weights, bounds):
            found["missing"] = dask_io.check_values(rows.X, allow_nan=marginalize)
            self._check_n_samples(rows.X.shape[0])
            return DaskBackend(rows.X, weights), rows.X.shape[1]

        source = open_source(X, SourceRules(self._checked_rows, dask=dask_rows,
                                            streams=streams), sample_weight=sample_weight)
        if source.kind == "stream":
            self._check_n_samples(source.sample_rows)
            has_missing = marginalize
        elif source.kind == "memory":
            has_missing = marginalize and bool(np.isnan(source.sample.X).any())
        else:
            has_missing = found["missing"]
        self._run(source.backend, source.n_features, has_missing)
        if source.rows is not None:
            dask_io.set_feature_names(self, source.rows)
        return source

    def _check_n_samples(self, n_rows):
        if n_rows < self.n_components:
            raise ValueError("Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {n_rows}")

    def _checked_rows(self, X, lengths, weights, whole, n_features):
        """A validated block of rows: all the data (at least n_components rows of positive
        weight), or a block of a stream."""
        if not whole:
            return Block(v.check_array(X, min_samples=1, estimator=type(self).__name__,
                                       allow_nan=self.missing == "marginalize"), weights)
        X = self._validate_X(X, fitting=True)
        weights = v.check_sample_weight(weights, X.shape[0])
        self._check_n_samples(X.shape[0] if weights is None else int(np.count_nonzero(weights)))
        return Block(X, weights)

    def _engine_model(self, n_features, has_missing=False):
        spec = self._spec
        weights_init, means_init, chol_init = self._check_initial_parameters(spec, n_features)
        model_class = (missing_data.MissingGaussianMixtureModel if has_missing
                       else GaussianMixtureModel)
        return model_class(spec, self.n_components, n_features, float(self.reg_covar),
                           self.init_params, weights_init, means_init, chol_init)

    def _run(self, backend, n_features, has_missing=False):
        """EM over the backend's data; sets the fitted attributes."""
        spec = self._spec
        model = self._engine_model(n_features, has_missing)
        # Warm start needs parameters of the same shapes; otherwise initialise afresh.
        warm = (self.warm_start and hasattr(self, "converged_")
                and self.means_.shape == (self.n_components, n_features)
                and self.precisions_cholesky_.shape
                == spec.precisions_shape(self.n_components, n_features))

        def show(params):
            # The model a callback sees is consistent: parameters and feature count of
            # this fit.
            self._set_parameters(params)
            self.n_features_in_ = n_features

        def finish(run):
            if self.covariances_ is None:
                self.covariances_ = spec.covariances_from_cholesky(self.precisions_cholesky_)

        # A stream is large by nature; in memory, the data's size decides (_work).
        rows = getattr(backend, "n_rows", None)
        fit_estimator(self, model, backend, max_iter=self.max_iter,
                      work=None if rows is None else self._work(rows, n_features),
                      warm=(self._get_parameters(), self.lower_bound_) if warm else None,
                      verbose=self.verbose, verbose_interval=self.verbose_interval,
                      show=show, finish=finish)

    @transactional
    def partial_fit(self, X: ArrayLike, y: Any = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """One step of online (stepwise) EM on a batch of rows.

        The first call initialises the model from its batch (``init_params``,
        ``random_state``), or starts from the fitted parameters after :meth:`fit`;
        each call then computes the batch's statistics under the current
        parameters, blends them into running statistics with step
        ``(t + learning_offset) ** -learning_decay`` (Cappé & Moulines 2009) and
        runs the M-step. Memory is that of one batch. ``fit`` starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixture
        """
        self._check_hyperparameters()
        online_schedule(self)  # (validates learning_decay and learning_offset first)
        state = getattr(self, "_online", None)
        X = self._validate_X(X, fitting=state is None)
        if state is not None and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} was "
                             f"partially fitted with {self.n_features_in_} features")
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        has_missing = self.missing == "marginalize" and bool(np.isnan(X).any())
        model = self._engine_model(X.shape[1], has_missing)
        # After fit (or a loaded model), online EM continues from the fitted parameters.
        fitted = (hasattr(self, "converged_") and self.n_features_in_ == X.shape[1]
                  and self.means_.shape == (self.n_components, X.shape[1]))
        if state is None and not fitted:
            n_rows = X.shape[0] if weights is None else int(np.count_nonzero(weights))
            if n_rows < self.n_components:
                raise ValueError("The first batch needs n_samples >= n_components, got "
                                 f"n_components = {self.n_components}, n_samples = {n_rows}")
        params = self._get_parameters() if state is not None or fitted else None
        def show(params):
            self._set_parameters(params)
            self.n_features_in_ = X.shape[1]

        try:
            online_step(self, model, Block(X, weights), params,
                        work=self._work(X.shape[0], X.shape[1]), show=show)
        except NonFiniteObjectiveError:
            raise self._far_rows_error(X, weights, params is not None) from None
        return self

    def _far_rows_error(self, X, weights, evaluated):
        """The ValueError of a batch with rows (of positive weight) whose density is 0 under
        every component: their squared distances overflow float64, and the E-step would
        leave them out with a log-likelihood of -inf (fit refuses such data as well, at its
        initial covariances). ``evaluated``: the batch was evaluated at the fitted
        parameters (then the rows are named)."""
        which = "rows"
        if evaluated:
            far = self._rows(X, "logsumexp", validated=True) == -np.inf
            if weights is not None:
                far &= weights > 0
            rows = np.flatnonzero(far)
            if rows.size:
                with np.errstate(invalid="ignore"):
                    magnitude = np.nanmax(np.abs(X[rows[0]]))
                which = (f"{rows.size} row(s) (the first: row {rows[0]}, with an entry of "
                         f"magnitude {magnitude:.3g})")
        return ValueError(
            f"X has {which} so far from every component that their squared distances "
            "overflow float64: their density is 0, and the batch's log-likelihood -inf. "
            "Scale the data (e.g. standardise each column)")

    # -- inference -----------------------------------------------------------
    def _work(self, n_rows, n_features):
        """Multiply-adds of one pass, about (it picks one thread for small inputs)."""
        per_component = n_features if self._spec.diagonal else n_features * n_features
        return n_rows * self.n_components * per_component

    def _rows(self, X, what, validated=False):
        if not validated:
            X = self._validate_X(X)
        with threads(self.n_threads, self._work(*X.shape)):
            if self.missing == "marginalize" and np.isnan(X).any():
                return missing_data.row_outputs(self._spec, self._get_parameters(), X, what)
            return row_outputs(self._spec, self._get_parameters(), X, what)

    def score_samples(self, X: ArrayLike) -> FloatArray:
        """Log-density of every row of X under the fitted mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        if is_dask_collection(X):
            return dask_io.lazy_rows(self, "score_samples", X)
        return self._rows(X, "logsumexp")

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Mean per-sample log-likelihood of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        log_likelihood : float
        """
        if is_dask_collection(X):
            return float(self.score_samples(X).mean().compute())
        return float(self.score_samples(X).mean())

    def predict(self, X: ArrayLike) -> IntArray:
        """Most probable component of every row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        if is_dask_collection(X):
            return dask_io.lazy_rows(self, "predict", X, dtype=np.int64)
        return self._rows(X, "argmax")

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Posterior probability of each component for every row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        if is_dask_collection(X):
            return dask_io.lazy_rows(self, "predict_proba", X, columns=self.n_components)
        log_resp = self._rows(X, "log_resp")
        np.exp(log_resp, out=log_resp)
        return log_resp

    def sample(self, n_samples: int = 1,
               random_state: RandomStateLike = None) -> tuple[FloatArray, IntArray]:
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seed for this draw; None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        self._check_is_fitted()
        n_samples = v.check_int(n_samples, "n_samples", 1,
                                v.MAX_SAMPLE_VALUES // self.means_.shape[1])
        rng = v.check_random_state(self.random_state if random_state is None else random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        parts = self._spec.sample(rng, self.means_, self.covariances_, counts)
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(parts), labels

    def _n_parameters(self):
        n_features = self.means_.shape[1]
        k = self.n_components
        covariance = self._spec.n_covariance_parameters(k, n_features)
        return int(covariance + n_features * k + k - 1)

    def _log_likelihood_and_size(self, X):
        X = self._validate_X(X)
        return float(self._rows(X, "logsumexp", validated=True).sum()), X.shape[0]

    def bic(self, X: ArrayLike) -> float:
        """Bayesian information criterion of the fitted model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float
        """
        log_likelihood, n = self._log_likelihood_and_size(X)
        return -2 * log_likelihood + self._n_parameters() * math.log(n)

    def aic(self, X: ArrayLike) -> float:
        """Akaike information criterion of the fitted model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        aic : float
        """
        log_likelihood, _ = self._log_likelihood_and_size(X)
        return -2 * log_likelihood + 2 * self._n_parameters()

    @classmethod
    def _warmup(cls, groups, say):
        X = np.random.RandomState(0).normal(size=(64, 3))
        for dtype in (np.float64, np.float32) if "float32" in groups else (np.float64,):
            data = X.astype(dtype)
            for covariance_type in structure_names():
                model = GaussianMixture(2, covariance_type=covariance_type, max_iter=2,
                                        random_state=0).fit(data)
                model.score_samples(data)
                model.predict_proba(data)
                model.predict(data)  # its own kernel (gaussian_best)
            say(f"GaussianMixture {np.dtype(dtype).name}")
        if "missing" in groups:
            holes = X.copy()
            holes[::5, 1] = np.nan
            GaussianMixture(2, max_iter=2, random_state=0, missing="marginalize").fit(holes)
            say("missing data")
