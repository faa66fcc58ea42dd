"""BayesianGaussianMixture: a drop-in for ``sklearn.mixture.BayesianGaussianMixture``."""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._base import EstimatorBase
from .._runtime import threads
from .._typing import (
    Acceleration,
    ArrayLike,
    Callback,
    CovarianceType,
    RandomStateLike,
    Self,
)
from ..components.structures import FULL
from .gaussian_mixture import GaussianMixture
from .model import GaussianMixtureModel, MixtureParams, row_outputs
from .variational import (
    WEIGHT_PRIORS,
    VariationalGaussianMixtureModel,
    VariationalParams,
    VariationalPrior,
    checked_prior,
    one_component_shape,
    point_weights,
)


class BayesianGaussianMixture(GaussianMixture, kind="bgm"):
    """Variational Bayesian Gaussian mixture on fastem's compiled, multi-core kernels.

    The constructor, attributes and methods are those of scikit-learn 1.9's
    ``BayesianGaussianMixture``; see its documentation for the model (a Dirichlet
    process or Dirichlet distribution prior on the weights, a Gaussian-Wishart prior
    on each component). Components the data do not support get weights near zero,
    so ``n_components`` is an upper bound on the number of clusters.

    The E-step is the Gaussian mixture's kernel (with the expected log-weights, the
    expected log-determinants and the D/beta terms in its per-component constants)
    and the statistics are the same additive ones: the fit is as fast as
    :class:`GaussianMixture`'s, multi-threaded, independent of the thread count,
    and runs on memmaps, block streams and Dask collections as ``GaussianMixture``
    does. ``lower_bound_`` is scikit-learn's lower bound on the evidence (a total,
    not a mean per row, as in scikit-learn), computed from the statistics; it is
    the monitored objective.

    fastem adds ``sample_weight`` to :meth:`fit` (a weight counts the row that many
    times, also in the data-dependent priors), ``n_threads``, ``callback``,
    ``acceleration`` and ``random_state`` on :meth:`sample`.

    Parameters
    ----------
    n_components : int, default=1
        Upper bound on the number of components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default=1e-6
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"},
            default="dirichlet_process"
    weight_concentration_prior : float or None, default=None
        gamma_0 (None: 1 / n_components).
    mean_precision_prior : float or None, default=None
        beta_0 (None: 1).
    mean_prior : array-like of shape (n_features,) or None, default=None
        m_0 (None: the mean of X).
    degrees_of_freedom_prior : float or None, default=None
        nu_0 (None: n_features); must exceed n_features - 1.
    covariance_prior : float or array-like or None, default=None
        Psi_0 (None: the covariance of X, or its diagonal or mean variance).
    random_state, warm_start, verbose, verbose_interval
        As in scikit-learn.
    n_threads : int or None, default=None
    callback : callable or None, default=None
        ``callback(iteration, lower_bound, model)``; returning True stops the run.
    acceleration : {"none", "squarem"}, default="none"
        "squarem": SQUAREM extrapolation of the posterior's parameters between
        coordinate-ascent steps; a trial point is kept only if it is a valid posterior
        and its lower bound is at least the plain step's, so the bound never decreases
        and the fit reaches the plain fit's optimum in fewer passes on slowly
        converging problems. ``n_iter_`` counts passes over the data.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
    weight_concentration_prior_, weight_concentration_
    mean_precision_prior_, mean_precision_, mean_prior_
    degrees_of_freedom_prior_, degrees_of_freedom_, covariance_prior_
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_
    """

    # GaussianMixture's options that this model does not take.
    weights_init = means_init = precisions_init = None
    missing = "raise"
    learning_decay, learning_offset = 0.7, 10.0

    _required_fitted = GaussianMixture._required_fitted + (
        "weight_concentration_prior_", "weight_concentration_", "mean_precision_prior_",
        "mean_precision_", "mean_prior_", "degrees_of_freedom_prior_", "degrees_of_freedom_",
        "covariance_prior_")

    def __init__(self, *, n_components: int = 1, covariance_type: CovarianceType = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans",
                 weight_concentration_prior_type: str = "dirichlet_process",
                 weight_concentration_prior: float | None = None,
                 mean_precision_prior: float | None = None,
                 mean_prior: ArrayLike | None = None,
                 degrees_of_freedom_prior: float | None = None,
                 covariance_prior: ArrayLike | float | None = None,
                 random_state: RandomStateLike = None, warm_start: bool = False,
                 verbose: int = 0, verbose_interval: int = 10, n_threads: int | None = None,
                 callback: Callback | None = None, acceleration: Acceleration = "none") -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.acceleration = acceleration

    @property
    def partial_fit(self):
        # Online variational inference would need the data's size for its priors;
        # scikit-learn's class has no partial_fit either.
        raise AttributeError("BayesianGaussianMixture has no partial_fit")

    @property
    def bic(self):
        # The variational fit is judged by its lower bound; scikit-learn's class has no
        # information criteria either.
        raise AttributeError("BayesianGaussianMixture has no bic; compare lower_bound_")

    @property
    def aic(self):
        raise AttributeError("BayesianGaussianMixture has no aic; compare lower_bound_")

    # -- validation ---------------------------------------------------------------
    _variational = True  # the structures with a conjugate posterior (not EEI's)

    def _check_hyperparameters(self):
        super()._check_hyperparameters()
        v.check_option(self.weight_concentration_prior_type,
                       "weight_concentration_prior_type", WEIGHT_PRIORS)
        # Their types here (a TypeError before any data are read); their domains and
        # shapes, which need n_features, in _user_priors.
        for name in ("weight_concentration_prior", "mean_precision_prior",
                     "degrees_of_freedom_prior"):
            if getattr(self, name) is not None:
                v.check_real(getattr(self, name), name, -np.inf)

    def _user_priors(self, n_features):
        """The constructor's priors checked as fit uses them (at fit and at load), in the
        prior's shapes: (gamma_0, beta_0, m_0, nu_0, Psi_0), None where the default
        follows from the data."""
        d, spec = n_features, self._spec

        def given(name, shape, **rules):
            value = getattr(self, name)
            return None if value is None else checked_prior(value, name, shape, **rules)

        gamma = given("weight_concentration_prior", (), positive=True)
        beta = given("mean_precision_prior", (), positive=True)
        # scikit-learn's names in its messages: 'means', 'full covariance_prior', ...
        mean = None if self.mean_prior is None else checked_prior(self.mean_prior, "means",
                                                                  (d,))
        nu = given("degrees_of_freedom_prior", (), above=d - 1.0)
        covariance = None if self.covariance_prior is None else checked_prior(
            self.covariance_prior, f"{spec.name} covariance_prior",
            one_component_shape(spec, d), scale_of=spec)
        return gamma, beta, mean, nu, covariance

    def _priors(self, backend, n_features):
        """The priors' hyperparameters: the user's, else scikit-learn's defaults from the
        data (its mean and covariance, over two passes of the backend)."""
        k, d = self.n_components, n_features
        spec = self._spec
        gamma, beta, mean, nu, covariance = self._user_priors(d)
        gamma = 1.0 / k if gamma is None else float(gamma)
        beta = 1.0 if beta is None else float(beta)
        nu = float(d) if nu is None else float(nu)
        if mean is None or covariance is None:
            data_mean, scatter, total = _data_moments(backend, d)
            mean = data_mean if mean is None else mean
        if covariance is None:
            # Frequency weights: as np.cov of the rows repeated (ddof=1).
            if not total > 1.0:
                raise ValueError("the default covariance_prior needs more than one sample")
            full = scatter / (total - 1.0)
            covariance = spec.single_from_full(full)
        elif covariance.ndim == 0:
            covariance = float(covariance)
        return VariationalPrior(self.weight_concentration_prior_type, gamma, beta,
                                np.asarray(mean, dtype=np.float64), nu, covariance)

    def _checked_fitted_priors(self, d):
        """The fitted ``*_prior_`` attributes (e.g. from a file), checked by the rules the
        constructor's priors follow, and equal to those the constructor gives."""
        spec = self._spec
        fitted = (
            checked_prior(self.weight_concentration_prior_, "weight_concentration_prior_", (),
                          positive=True),
            checked_prior(self.mean_precision_prior_, "mean_precision_prior_", (),
                          positive=True),
            checked_prior(self.mean_prior_, "mean_prior_", (d,)),
            checked_prior(self.degrees_of_freedom_prior_, "degrees_of_freedom_prior_", (),
                          above=d - 1.0),
            checked_prior(self.covariance_prior_, "covariance_prior_",
                          one_component_shape(spec, d), scale_of=spec))
        names = ("weight_concentration_prior", "mean_precision_prior", "mean_prior",
                 "degrees_of_freedom_prior", "covariance_prior")
        for name, user, value in zip(names, self._user_priors(d), fitted, strict=True):
            if user is not None:
                v.check_consistent(value, user, f"{name}_", name)
        gamma, beta, mean, nu, covariance = fitted
        self.weight_concentration_prior_ = float(gamma)
        self.mean_precision_prior_ = float(beta)
        self.mean_prior_ = mean
        self.degrees_of_freedom_prior_ = float(nu)
        self.covariance_prior_ = float(covariance) if covariance.ndim == 0 else covariance

    def _set_priors(self, prior):
        self.weight_concentration_prior_ = prior.weight_concentration
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_prior_ = prior.mean
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom
        self.covariance_prior_ = prior.covariance

    def _prior(self):
        return VariationalPrior(self.weight_concentration_prior_type,
                                self.weight_concentration_prior_, self.mean_precision_prior_,
                                np.asarray(self.mean_prior_, dtype=np.float64),
                                self.degrees_of_freedom_prior_, self.covariance_prior_)

    # -- the engine model -------------------------------------------------------------
    def _engine_model(self, n_features, has_missing=False):
        return VariationalGaussianMixtureModel(self._spec, self.n_components, n_features,
                                               float(self.reg_covar), self.init_params,
                                               self._prior())

    def _run(self, backend, n_features, has_missing=False):
        self._set_priors(self._priors(backend, n_features))
        super()._run(backend, n_features, has_missing)

    def _get_parameters(self):
        return VariationalParams(self.weight_concentration_, self.mean_precision_, self.means_,
                                 self.degrees_of_freedom_, self.covariances_,
                                 self.precisions_cholesky_)

    def _set_parameters(self, params):
        self.weight_concentration_ = params.weight_concentration
        self.mean_precision_ = params.mean_precision
        self.means_ = params.means
        self.degrees_of_freedom_ = params.degrees_of_freedom
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.weights_ = point_weights(self.weight_concentration_prior_type,
                                      params.weight_concentration)
        self.precisions_ = self._spec.precisions(params.precisions_cholesky)

    def _rows(self, X, what, validated=False):
        if not validated:
            X = self._validate_X(X)
        model = self._engine_model(X.shape[1])
        with threads(self.n_threads, self._work(*X.shape)):
            return row_outputs(self._spec, None, X, what,
                               prepared=model.prepare(self._get_parameters()))

    def _validate_loaded(self):
        """Re-check a posterior read from a file, every array against the others and in
        its domain, and the priors (the constructor's and the fitted ones) by the checks
        fit applies (GaussianMixture's checks of weights_ do not apply: weights_ and
        precisions_ are recomputed from the posterior)."""
        EstimatorBase._validate_loaded(self)
        self._check_hyperparameters()
        k = self.n_components
        d = v.check_int(self.n_features_in_, "n_features_in_", 1)
        spec = self._spec
        self._checked_fitted_priors(d)
        self.means_ = checked_prior(self.means_, "means_", (k, d))
        shape = spec.precisions_shape(k, d)
        covariances = checked_prior(self.covariances_, "covariances_", shape, scale_of=spec)
        chol = checked_prior(self.precisions_cholesky_, "precisions_cholesky_", shape)
        expected = spec.precisions_cholesky(covariances, 0.0)
        v.check_consistent(chol, expected, "precisions_cholesky_", "covariances_")
        self.covariances_, self.precisions_cholesky_ = covariances, chol
        self.mean_precision_ = checked_prior(self.mean_precision_, "mean_precision_", (k,),
                                             positive=True)
        # As the posterior the M-step gives: nu_k = nu_0 + N_k (one for tied), beyond D - 1.
        nu = checked_prior(self.degrees_of_freedom_, "degrees_of_freedom_",
                           spec.matrices_shape(k), above=d - 1.0)
        self.degrees_of_freedom_ = np.float64(nu) if nu.ndim == 0 else nu
        if self.weight_concentration_prior_type == "dirichlet_process":
            pair = self.weight_concentration_
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValueError("weight_concentration_ must be a pair of arrays for the "
                                 "dirichlet_process prior")
            self.weight_concentration_ = tuple(
                checked_prior(part, "weight_concentration_", (k,), positive=True)
                for part in pair)
        else:
            self.weight_concentration_ = checked_prior(
                self.weight_concentration_, "weight_concentration_", (k,), positive=True)
        self._set_parameters(self._get_parameters())
        v.check_fitted_scalars(self, integers=("n_iter_",), flags=("converged_",),
                               reals=("lower_bound_",), real_lists=("lower_bounds_",))

    def fit(self, X, y=None, sample_weight=None) -> Self:
        """Fit the variational posterior by coordinate ascent on the lower bound.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), a memmap, a callable
            returning row blocks, or a dask array or dataframe (as for
            :meth:`GaussianMixture.fit`)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : BayesianGaussianMixture
        """
        return super().fit(X, y, sample_weight)


def _data_moments(backend, n_features):
    """(mean, scatter about the mean, total weight) of the backend's rows, from two
    passes of a one-component Gaussian model (statistics about 0, then about the
    mean, which keeps the scatter's digits)."""
    model = GaussianMixtureModel(FULL, 1, n_features, 0.0, "kmeans")
    eye = np.eye(n_features)[None]

    def moments(centre):
        params = MixtureParams(np.ones(1), centre[None].copy(), eye, eye)
        return backend.stats(model, params)

    first = moments(np.zeros(n_features))
    total = float(first["mass"][0])
    mean = first["first"][0] / total
    second = moments(mean)
    mean = mean + second["first"][0] / total
    scatter = _symmetric(second["second"][0]) - np.outer(second["first"][0],
                                                         second["first"][0]) / total
    return mean, scatter, total


def _symmetric(upper):
    upper = np.triu(upper)
    return upper + np.triu(upper, 1).T

