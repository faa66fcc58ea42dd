"""An emission model written as estimator hooks, seen as a component (transitional).

The HMM composite (:class:`fastem.composites.hmm.HMMComposite`) takes any
component. Emission models still written as methods of their estimator
(``_emission_log_likelihood``, ``_emission_statistics``, ``_emission_m_step``,
...) reach it through :class:`HookEmissions`, whose parameters are the
estimator's dict of emission arrays. A model converted to a component of its
own (:mod:`fastem.components`) no longer needs this module.
"""

from __future__ import annotations

import numpy as np

from .._base import shippable
from ..components.base import Component


class HookEmissions(Component):
    """The emission hooks of ``estimator`` as a component."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.n_components = estimator.n_components
        self.recentre = estimator._emission_recentre

    def __getstate__(self):
        state = dict(vars(self))
        state["estimator"] = shippable(self.estimator)
        return state

    def fields(self, n_features):
        return self.estimator._emission_fields(n_features)

    def shift(self, params):
        return self.estimator._emission_shift(params)

    def log_likelihood(self, prepared, X, out=None, cache=None):
        return self.estimator._emission_log_likelihood(X, prepared, out=out, cache=cache)

    def accumulate(self, prepared, X, posteriors, out, cache=None):
        self.estimator._emission_statistics(X, posteriors, prepared, out, cache=cache)

    def m_step(self, stats, params):
        new = dict(params)
        new.update(self.estimator._emission_m_step(stats, params))
        return new

    def log_prior(self, params):
        return self.estimator._emission_log_prior(params)

    def checked(self, params):
        return self.estimator._checked_emission_parameters(params)

    def initialize(self, X, posteriors, random_state):
        return self.estimator._initial_emissions(X, random_state)

    def pack(self, params):
        return self.estimator._pack_emissions(params)

    def unpack(self, vector, like):
        new = dict(like)
        new.update(self.estimator._unpack_emissions(vector, like))
        return new

    def n_parameters(self, n_features):
        return self.estimator._n_emission_parameters()

    def sample(self, params, state, n_samples, random_state):
        return np.array([self.estimator._emission_sample(state, params, random_state)
                         for _ in range(n_samples)])

    def limiting_log_likelihood(self, params, X):
        return self.estimator._limiting_emissions(X, params)

    def impossible_rows_error(self, X):
        return self.estimator._impossible_rows_error(X)
