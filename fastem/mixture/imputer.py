"""EMImputer: fill missing entries from a Gaussian mixture fitted by exact EM."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dask_io as dask_io
from .. import _validation as v
from .._base import EstimatorBase, fitting_lock, transactional
from .._runtime import threads
from .._typing import (
    Acceleration,
    ArrayLike,
    CovarianceType,
    FloatArray,
    NDArray,
    RandomStateLike,
    Self,
)
from ..engine.dask_backend import is_dask_collection
from .gaussian_mixture import GaussianMixture
from .missing import conditional_fill


class EMImputer(EstimatorBase, kind="imputer", command=False):
    """Impute missing values (NaN) with their conditional expectation under a Gaussian mixture.

    ``fit`` runs exact EM on the observed entries (:class:`fastem.GaussianMixture`
    with ``missing="marginalize"``); ``transform`` replaces each missing entry
    by E[x_missing | x_observed] under the fitted mixture, which for one
    component is the classical multivariate-normal EM imputation. With
    ``sample_posterior=True`` the entries are drawn from the conditional
    distribution instead (reproducibly under ``random_state``).

    Parameters
    ----------
    n_components : int, default=1
        Mixture components (1: one multivariate normal; more for multi-modal data).
    covariance_type : {"full", "tied", "diag", "spherical", "EEI"}, default="full"
        "full" (or "tied") is what lets observed columns inform missing ones.
    tol, reg_covar, max_iter, n_init, init_params : as :class:`fastem.GaussianMixture`.
    sample_posterior : bool, default=False
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the draws of ``sample_posterior``.
    n_threads : int or None, default=None
    acceleration : {"none", "squarem"}, default="none"
        As :class:`fastem.GaussianMixture` (SQUAREM between EM steps).

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when ``fit`` saw a data frame with string column names.
    """

    _weighted_methods = ()  # fit(X, y) takes no sample_weight

    def __init__(self, n_components: int = 1, *, covariance_type: CovarianceType = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1,
                 init_params: str = "kmeans", sample_posterior: bool = False,
                 random_state: RandomStateLike = None, n_threads: int | None = None,
                 acceleration: Acceleration = "none") -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.sample_posterior = sample_posterior
        self.random_state = random_state
        self.n_threads = n_threads
        self.acceleration = acceleration

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(),
                    input_tags=InputTags(allow_nan=True, sparse=False))

    def _mixture(self):
        return GaussianMixture(self.n_components, covariance_type=self.covariance_type,
                               tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
                               n_init=self.n_init, init_params=self.init_params,
                               random_state=self.random_state, n_threads=self.n_threads,
                               missing="marginalize", acceleration=self.acceleration)

    @transactional
    def fit(self, X: ArrayLike, y: Any = None) -> Self:
        """Fit the mixture on the observed entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), NaN for missing entries
        y : ignored

        Returns
        -------
        self : EMImputer
        """
        v.check_bool(self.sample_posterior, "sample_posterior")
        names = getattr(X, "columns", None)
        self.mixture_ = self._mixture().fit(X)
        if is_dask_collection(X):  # a dask dataframe's numeric columns were used
            names = getattr(self.mixture_, "feature_names_in_", None)
        self.n_features_in_ = self.mixture_.n_features_in_
        if names is not None and all(isinstance(name, str) for name in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    _required_fitted = ("mixture_", "n_features_in_")
    _optional_fitted = ("feature_names_in_",)

    @classmethod
    def _saved_attributes(cls):
        return {**super()._saved_attributes(), "mixture_": GaussianMixture}

    def _validate_loaded(self):
        """The fitted mixture (already validated by its own class when loaded) must be a
        fitted missing-data mixture of this imputer's width."""
        super()._validate_loaded()
        v.check_bool(self.sample_posterior, "sample_posterior")
        if not (isinstance(self.mixture_, GaussianMixture) and self.mixture_.__sklearn_is_fitted__()
                and self.mixture_.missing == "marginalize"):
            raise ValueError("mixture_ must be a fitted GaussianMixture(missing='marginalize')")
        for name in ("n_components", "covariance_type"):  # what shapes the fitted mixture
            if getattr(self, name) != getattr(self.mixture_, name):
                raise ValueError(f"{name} ({getattr(self, name)!r}) does not match mixture_ "
                                 f"({getattr(self.mixture_, name)!r})")
        width = v.check_int(self.n_features_in_, "n_features_in_", 1)
        if width != self.mixture_.n_features_in_:
            raise ValueError(f"n_features_in_ ({width}) does not match mixture_ "
                             f"({self.mixture_.n_features_in_})")
        names = getattr(self, "feature_names_in_", None)
        if names is not None and np.shape(names) != (width,):
            raise ValueError("feature_names_in_ must hold one name per feature")

    def transform(self, X: ArrayLike) -> FloatArray:
        """X with its missing entries filled in (a new array; X is not modified).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features), float64 (a lazy dask array
            for dask input)
        """
        self._check_is_fitted()
        if is_dask_collection(X):
            # Drawing: each partition gets its own generator (one seed drawn here), so
            # partitions do not repeat each other's draws.
            seed = (int(v.check_random_state(self.random_state).randint(2**31 - 1))
                    if self.sample_posterior else None)
            return dask_io.lazy_rows(self, "transform", X, columns=self.n_features_in_,
                                     seed=seed)
        X = self.mixture_._validate_X(X)
        rng = v.check_random_state(self.random_state) if self.sample_posterior else None
        with threads(self.n_threads, self.mixture_._work(*X.shape)):
            return conditional_fill(self.mixture_._spec, self.mixture_._get_parameters(), X,
                                    rng)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> FloatArray:
        """Fit on X, then fill its missing entries."""
        with fitting_lock(self):  # another thread's fit must not come in between
            return self.fit(X).transform(X)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> NDArray[np.object_]:
        """Names of the output columns: the input's (imputation keeps every column)."""
        self._check_is_fitted()
        if input_features is not None:
            names = np.asarray(input_features, dtype=object)
            if names.shape != (self.n_features_in_,):
                raise ValueError(f"input_features should have length {self.n_features_in_}, "
                                 f"got {names.shape[0] if names.ndim else 0}")
            return names
        if hasattr(self, "feature_names_in_"):
            return self.feature_names_in_.copy()
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
