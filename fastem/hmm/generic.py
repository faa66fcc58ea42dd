"""An HMM over any component: the estimator façade for a user-written emission family.

A component (:class:`fastem.components.Component`) says what one state emits;
:class:`HMM` gives it start probabilities, transitions and the whole HMM API
(fit, partial_fit, streaming and Dask sources, score, decode, predict_proba,
sample, aic/bic), through the HMM composite
(:class:`fastem.composites.hmm.HMMComposite`). The same component works in a
mixture: see CONTRIBUTING's "Writing a model".
"""

from __future__ import annotations

from .._typing import Acceleration, Callback, MissingPolicy, Prior, RandomStateLike
from ..components.base import Component
from .base import BaseHMM


class HMM(BaseHMM):
    """Hidden Markov model whose states emit from ``component``.

    Parameters are those of :class:`fastem.hmm.BaseHMM` plus:

    Parameters
    ----------
    component : Component
        What each state emits, for ``component.n_components`` states at once (its
        priors, if any, are its own); ``n_components`` is the component's.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    emission_ : the component's parameters object
        Letter ``"e"`` of ``params`` and ``init_params``.
    n_features_in_ : int
        The component's feature count for the data fitted.
    monitor_ : ConvergenceMonitor

    Notes
    -----
    Model files (:meth:`save`) hold arrays of the built-in estimators only: pickle an
    HMM over a component of your own.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import HMM
    >>> from fastem.components.counts import Poisson
    >>> X = np.random.RandomState(0).poisson(3.0, size=(200, 2))
    >>> model = HMM(Poisson(2), random_state=0).fit(X)
    >>> model.emission_.lambdas.shape
    (2, 2)
    """

    def __init__(self, component: Component, startprob_prior: Prior = 1.0,
                 transmat_prior: Prior = 1.0, *, algorithm: str | None = "viterbi",
                 random_state: RandomStateLike = None, n_iter: int = 10, tol: float = 1e-2,
                 verbose: int = False, params: str = "ste", init_params: str = "ste",
                 implementation: str = "log", n_init: int = 1, n_threads: int | None = None,
                 missing: MissingPolicy = "raise", callback: Callback | None = None,
                 acceleration: Acceleration = "none", learning_decay: float = 0.7,
                 learning_offset: float = 10.0) -> None:
        self.component = component
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.n_threads = n_threads
        self.missing = missing
        self.callback = callback
        self.acceleration = acceleration
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    _emission_letters = "e"
    _emission_attributes = ("emission_",)

    @property
    def n_components(self) -> int:
        """Number of hidden states: the component's."""
        if not isinstance(self.component, Component):
            raise TypeError(f"component must be a fastem.components.Component, got "
                            f"{type(self.component).__name__}")
        return self.component.n_components

    def _validate_X(self, X, fitting):
        return self.component.check_data(X, fitting)

    def _n_emission_features(self, X):
        return self.component.n_features_of(X)

    def _features_of(self, emission):
        # The component's parameters object need not say its feature count: the fitted one.
        return self.n_features_in_

    def _n_features_in(self, n_features):
        return n_features

    # -- the component and its parameters' attributes --------------------------------
    def _component(self, n_features):
        return self.component

    def _composite(self, n_features):
        self._fit_n_features = n_features  # (what _set_emissions records as n_features_in_)
        return super()._composite(n_features)

    def _initial_emission(self):
        return None if self._needs_init("e", "emission_") else self._emission_params()

    def _emission_params(self):
        return self.component.checked(self.emission_)

    def _set_emissions(self, emission):
        self.emission_ = emission
        self.n_features_in_ = self._fit_n_features
