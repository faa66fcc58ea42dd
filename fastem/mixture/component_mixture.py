"""Mixture and ExponentialMixture: the mixture composite over any component.

:class:`Mixture` takes a component object (one of fastem's, or a user's written
against :class:`fastem.components.base.Component`) and gives it GaussianMixture's
API: fit, partial_fit, predict, predict_proba, score_samples, score, bic, aic,
sample. Restarts, threads, bitwise determinism, SQUAREM and online EM come from
the engine; the E-step is the composite's (:mod:`fastem.composites.mixture`).
:class:`ExponentialMixture` is the same façade over the exponential component,
with plain constructor arguments, so that its fits save to model files.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _validation as v
from .._base import EstimatorBase, fitting_lock, transactional
from .._runtime import resolve_n_threads, threads
from .._typing import ArrayLike, Callback, RandomStateLike, Self
from ..components.base import Component
from ..components.exponential import Exponential, ExponentialParams
from ..composites.mixture import INIT_PARAMS, MixtureModel, MixtureParams
from ..engine import SCHEDULES, Block
from ..engine.driver import fit_estimator, online_schedule, online_step
from ..engine.sources import SourceRules, open_source


class Mixture(EstimatorBase):
    """A mixture of the K states of ``component``, fitted by EM.

    Parameters
    ----------
    component : Component
        What each state emits, for K states (its ``n_components``): e.g.
        ``fastem.components.exponential.Exponential(3)`` or a user's component.
    tol, max_iter, n_init, init_params, random_state, warm_start, verbose,
    verbose_interval, n_threads, callback, acceleration, learning_decay, learning_offset
        As in :class:`fastem.GaussianMixture`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    components_ : the component's fitted parameters
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_
        As in :class:`fastem.GaussianMixture`.

    Examples
    --------
    >>> import numpy as np
    >>> import fastem
    >>> from fastem.components.exponential import Exponential
    >>> rng = np.random.RandomState(0)
    >>> X = np.concatenate([rng.exponential(1.0, (500, 1)), rng.exponential(20.0, (500, 1))])
    >>> model = fastem.Mixture(Exponential(2), random_state=0).fit(X)
    >>> model.predict(X).shape
    (1000,)
    """

    _estimator_type_tag = "density_estimator"
    _weighted_methods = ("fit", "partial_fit")

    def __init__(self, component: Component | None = None, *, tol: float = 1e-3,
                 max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 random_state: RandomStateLike = None, warm_start: bool = False,
                 verbose: int = 0, verbose_interval: int = 10, n_threads: int | None = None,
                 callback: Callback | None = None, acceleration: str = "none",
                 learning_decay: float = 0.7, learning_offset: float = 10.0) -> None:
        self.component = component
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.acceleration = acceleration
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # -- the component and its parameters (what subclasses change) --------------------------
    def _component(self):
        if not isinstance(self.component, Component):
            raise TypeError("component must be a fastem.components.base.Component, got "
                            f"{type(self.component).__name__}")
        return self.component

    def _get_components(self):
        return self.components_

    def _set_components(self, components):
        self.components_ = components

    # -- validation -------------------------------------------------------------------------
    def _check_hyperparameters(self):
        component = self._component()
        v.check_int(component.n_components, "n_components", 1)
        v.check_real(self.tol, "tol", 0.0)
        v.check_int(self.max_iter, "max_iter", 0)
        v.check_int(self.n_init, "n_init", 1, v.MAX_N_INIT)
        v.check_option(self.init_params, "init_params", set(INIT_PARAMS))
        v.check_option(self.acceleration, "acceleration", SCHEDULES)
        v.check_bool(self.warm_start, "warm_start")
        v.check_int(self.verbose, "verbose", 0)
        v.check_int(self.verbose_interval, "verbose_interval", 1)
        resolve_n_threads(self.n_threads)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable or None, got {self.callback!r}.")
        return component

    def _validate_X(self, X, fitting=False):
        component = self._component()
        if not fitting:
            self._check_is_fitted()
        X = component.check_data(X, fitting)
        if not fitting and component.n_features_of(X) != self.n_features_in_:
            raise ValueError(f"X has {component.n_features_of(X)} features, but "
                             f"{type(self).__name__} is expecting {self.n_features_in_} "
                             "features as input.")
        return X

    def _model(self, n_features):
        return MixtureModel(self._component(), n_features, self.init_params)

    def _params(self):
        return MixtureParams(self.weights_, self._get_components())

    def _set_fitted(self, params, n_features):
        self.weights_ = params.weights
        self._set_components(params.components)
        self.n_features_in_ = n_features

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None) -> Self:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X: ArrayLike, y: Any = None,
                    sample_weight: ArrayLike | None = None) -> np.ndarray:
        """Fit, then return the most probable state of every row of X."""
        with fitting_lock(self):
            X = self._fit(X, sample_weight)
            return self._rows(X, "argmax", validated=True)

    @transactional
    def _fit(self, X, sample_weight):
        component = self._check_hyperparameters()
        source = open_source(X, SourceRules(self._checked_rows, streams=False,
                                            features=lambda block: component.n_features_of(
                                                block.X)),
                             sample_weight=sample_weight)
        X, n_features = source.sample.X, source.n_features
        warm = (self.warm_start and hasattr(self, "converged_")
                and self.n_features_in_ == n_features)
        fit_estimator(self, self._model(n_features), source, max_iter=self.max_iter,
                      work=X.size * component.n_components,
                      warm=(self._params(), self.lower_bound_) if warm else None,
                      verbose=self.verbose, verbose_interval=self.verbose_interval,
                      show=lambda params: self._set_fitted(params, n_features))
        return X

    def _checked_rows(self, X, lengths, weights, whole, n_features):
        """All the rows, validated by the component, with at least n_components rows of
        positive weight."""
        n_states = self._component().n_components
        X = self._validate_X(X, fitting=True)
        weights = v.check_sample_weight(weights, X.shape[0])
        n_rows = X.shape[0] if weights is None else int(np.count_nonzero(weights))
        if n_rows < n_states:
            raise ValueError("Expected n_samples >= n_components but got n_components = "
                             f"{n_states}, n_samples = {n_rows}")
        return Block(X, weights)

    @transactional
    def partial_fit(self, X: ArrayLike, y: Any = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """One step of online (stepwise) EM on a batch of rows (see
        :meth:`fastem.GaussianMixture.partial_fit`)."""
        component = self._check_hyperparameters()
        online_schedule(self)  # (validates learning_decay and learning_offset first)
        fitted = hasattr(self, "converged_")
        X = self._validate_X(X, fitting=not fitted)
        weights = v.check_sample_weight(sample_weight, X.shape[0])
        if not fitted and X.shape[0] < component.n_components:
            raise ValueError("The first batch needs n_samples >= n_components, got "
                             f"n_components = {component.n_components}, "
                             f"n_samples = {X.shape[0]}")
        n_features = component.n_features_of(X)
        online_step(self, self._model(n_features), Block(X, weights),
                    self._params() if fitted else None, work=X.size * component.n_components,
                    show=lambda params: self._set_fitted(params, n_features))
        return self

    # -- inference --------------------------------------------------------------------------
    def _rows(self, X, what, validated=False):
        if not validated:
            X = self._validate_X(X)
        component = self._component()
        with threads(self.n_threads, X.size * component.n_components):
            return self._model(self.n_features_in_).row_outputs(self._params(), X, what)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log-density of every row of X under the fitted mixture, shape (n_samples,)."""
        return self._rows(X, "logsumexp")

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Mean per-sample log-likelihood of X."""
        return float(self.score_samples(X).mean())

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Most probable state of every row of X, shape (n_samples,)."""
        return self._rows(X, "argmax")

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Posterior probability of each state for every row, shape (n_samples, K)."""
        log_resp = self._rows(X, "log_resp")
        np.exp(log_resp, out=log_resp)
        return log_resp

    def sample(self, n_samples: int = 1,
               random_state: RandomStateLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` rows (X, their states) from the fitted mixture."""
        self._check_is_fitted()
        n_samples = v.check_int(n_samples, "n_samples", 1,
                                v.MAX_SAMPLE_VALUES // max(1, self.n_features_in_))
        rng = v.check_random_state(self.random_state if random_state is None else random_state)
        return self._model(self.n_features_in_).sample(self._params(), n_samples, rng)

    def _n_parameters(self):
        return self._model(self.n_features_in_).n_parameters()

    def bic(self, X: ArrayLike) -> float:
        """Bayesian information criterion on X (lower is better)."""
        X = self._validate_X(X)
        log_likelihood = float(self._rows(X, "logsumexp", validated=True).sum())
        return -2 * log_likelihood + self._n_parameters() * math.log(X.shape[0])

    def aic(self, X: ArrayLike) -> float:
        """Akaike information criterion on X (lower is better)."""
        log_likelihood = float(self.score_samples(X).sum())
        return -2 * log_likelihood + 2 * self._n_parameters()


class ExponentialMixture(Mixture, kind="exponential-mixture", command=False):
    """A mixture of exponential distributions with independent columns: state k emits
    x >= 0 with density prod_d rate_kd exp(-rate_kd x_d).

    Parameters
    ----------
    n_components : int, default=1
    tol, max_iter, n_init, init_params, random_state, warm_start, verbose,
    verbose_interval, n_threads, callback, acceleration, learning_decay, learning_offset
        As in :class:`fastem.GaussianMixture`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    rates_ : ndarray of shape (n_components, n_features)
    scales_ : ndarray of shape (n_components, n_features)
        The means 1 / rates_.
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_

    Examples
    --------
    >>> import numpy as np
    >>> import fastem
    >>> rng = np.random.RandomState(0)
    >>> X = np.concatenate([rng.exponential(1.0, (500, 1)), rng.exponential(20.0, (500, 1))])
    >>> model = fastem.ExponentialMixture(2, random_state=0).fit(X)
    >>> np.sort(model.scales_[:, 0]).round(0)
    array([ 1., 21.])
    """

    def __init__(self, n_components: int = 1, *, tol: float = 1e-3, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans",
                 random_state: RandomStateLike = None, warm_start: bool = False,
                 verbose: int = 0, verbose_interval: int = 10, n_threads: int | None = None,
                 callback: Callback | None = None, acceleration: str = "none",
                 learning_decay: float = 0.7, learning_offset: float = 10.0) -> None:
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.acceleration = acceleration
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def _component(self):
        v.check_int(self.n_components, "n_components", 1)
        return Exponential(self.n_components)

    def _get_components(self):
        return ExponentialParams(self.rates_)

    def _set_components(self, components):
        self.rates_ = components.rates
        self.scales_ = 1.0 / components.rates

    _required_fitted = ("weights_", "rates_", "scales_", "n_features_in_", "converged_",
                        "n_iter_", "lower_bound_", "lower_bounds_")

    def _validate_loaded(self):
        """Re-check fitted parameters read from a file, each and against each other."""
        super()._validate_loaded()
        self._check_hyperparameters()
        k = self.n_components
        d = v.check_int(self.n_features_in_, "n_features_in_", 1)
        weights = v.check_parameter_array(self.weights_, "weights_", (k,))
        if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError("weights_ must be non-negative and sum to 1")
        rates = v.check_parameter_array(self.rates_, "rates_", (k, d))
        Exponential(k).checked(ExponentialParams(rates))
        v.check_consistent(v.check_parameter_array(self.scales_, "scales_", (k, d)),
                           1.0 / rates, "scales_", "rates_")
        v.check_fitted_scalars(self, integers=("n_iter_",), flags=("converged_",),
                               reals=("lower_bound_",), real_lists=("lower_bounds_",))
