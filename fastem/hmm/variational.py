"""Variational Bayesian HMMs (hmmlearn's VariationalCategoricalHMM and
VariationalGaussianHMM), on the same forward-backward kernel as Baum-Welch.

Variational EM for an HMM (MacKay 1997; Beal 2003) keeps Dirichlet posteriors
over the start probabilities and each transition row, and a conjugate posterior
over each state's emission parameters. Its E-step is Baum-Welch's forward-backward
pass run with *sub-normalised* parameters: exp(E[log pi]), exp(E[log A]) and the
emission's exp(E[log p(x | theta)]); the pass returns the expected counts and the
log partition function log Z. Its M-step adds the counts to the priors. The
monitored objective is hmmlearn's lower bound, log Z - KL(q(theta) || p(theta)),
evaluated for the posterior the pass ran with.

The start and transition posteriors, the bound's KL terms and the parameter
flow are the HMM composite's (``variational=True``); :class:`VariationalHMM` is
the façade every emission shares, and an emission model adds its variational
component (its priors, posterior, sub-normalised table and KL term).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validation as v
from ..components.dirichlet import posterior_mean
from ..composites.hmm import HMMComposite, HMMPosterior
from ..mixture.variational import checked_prior


class VariationalHMM:
    """The variational façade shared by every emission (mix in before the emission
    model's class): the composite it builds (:class:`~fastem.composites.hmm.HMMComposite`
    with ``variational=True``, whose parameters are an
    :class:`~fastem.composites.hmm.HMMPosterior`) and the mapping of the start and
    transition posteriors to attributes; the emission model gives its variational
    component (``_component``) and the point one inference runs with
    (``_point_component``)."""

    _variational_attributes = ("startprob_prior_", "startprob_posterior_", "transmat_prior_",
                               "transmat_posterior_")

    @classmethod
    def _saved_attributes(cls):
        return {**super()._saved_attributes(), **dict.fromkeys(cls._variational_attributes)}

    @property
    def _required_fitted(self):
        return super()._required_fitted + self._variational_attributes

    @property
    def partial_fit(self):
        # Stochastic variational inference would need the size of the whole data set for
        # its natural-gradient steps; hmmlearn's classes have no partial_fit either.
        raise AttributeError(f"{type(self).__name__} has no partial_fit")

    # No missing rows (hmmlearn's take none either).
    missing = "raise"
    learning_decay, learning_offset = 0.7, 10.0

    #: The point attributes of the emissions that follow from their posterior.
    _point_emission_attributes: tuple = ()

    def _validate_loaded(self):
        """Re-check a posterior read from a file: every prior and posterior array in its
        shape and domain (by the checks fit applies), the sub-normalised tables finite,
        and the posterior means (``startprob_``, ``transmat_``, the emission point values)
        equal to those of the posterior."""
        super()._validate_loaded()
        k = self.n_components
        n_features = self._features_of(self._current_parameters().emission)
        posterior = HMMPosterior(
            self._checked_concentration("startprob_prior_", (k,)),
            self._checked_concentration("startprob_posterior_", (k,)),
            self._checked_concentration("transmat_prior_", (k, k)),
            self._checked_concentration("transmat_posterior_", (k, k)),
            self._checked_emission_posterior(n_features))
        names = ("startprob_", "transmat_") + self._point_emission_attributes
        points = {name: np.asarray(getattr(self, name), dtype=np.float64) for name in names}
        prepared = HMMComposite(self._component(n_features), n_features,
                                variational=True).prepare(posterior)
        emission = prepared.emission
        tables = {"startprob": prepared.startprob, "transmat": prepared.transmat}
        if dataclasses.is_dataclass(emission):
            tables.update((name, value) for name, value in vars(emission).items()
                          if isinstance(value, np.ndarray))
        else:
            tables["emission"] = emission
        for name, table in tables.items():
            if not np.all(np.isfinite(table)):
                raise ValueError(f"the posterior gives a non-finite {name} table")
        self._set_parameters(posterior)
        for name, value in points.items():  # (covars_ is kept as _covars_)
            v.check_consistent(value, np.asarray(getattr(self, name)), name.lstrip("_"),
                               "the posterior")

    def _checked_emission_posterior(self, n_features):
        """The emission prior and posterior attributes, checked, as the variational
        component's posterior."""
        raise NotImplementedError

    def _check_priors(self, n_features):
        k = self.n_components
        for name, shape in (("startprob_prior", (k,)), ("transmat_prior", (k, k))):
            value = getattr(self, name)
            if value is not None:
                checked_prior(value, name, shape, broadcast=True, positive=True)
        self._check_emission_priors(n_features)

    def _prior_array(self, value, shape, default, name):
        """hmmlearn's ``np.full(shape, value or default)``, checked as a Dirichlet prior."""
        return checked_prior(default if value is None else value, name, shape, broadcast=True,
                             positive=True)

    def _checked_concentration(self, name, shape):
        """A Dirichlet prior or posterior attribute (set by the user, or from a file)."""
        return checked_prior(getattr(self, name), name, shape, positive=True)

    def _composite(self, n_features):
        """The variational HMM composite: the start and transition priors (hmmlearn's
        default 1 / n_components), and the posteriors ``init_params`` leaves to the user."""
        k = self.n_components
        parts = {}
        for letter, name, shape in (("s", "startprob", (k,)), ("t", "transmat", (k, k))):
            if self._needs_init(letter, name + "_posterior_"):
                parts[name + "_prior"] = self._prior_array(getattr(self, name + "_prior"),
                                                           shape, 1.0 / k, name + "_prior")
                parts[name] = None
            else:
                parts[name + "_prior"] = self._checked_concentration(name + "_prior_", shape)
                parts[name] = self._checked_concentration(name + "_posterior_", shape)
        component = self._fitting_component(n_features)
        return HMMComposite(component, n_features, update_start="s" in self.params,
                            update_transmat="t" in self.params,
                            update_emission=self._updates_emission(),
                            emission=self._initial_emission(), variational=True, **parts)

    def _set_parameters(self, params):
        self.startprob_prior_ = params.startprob_prior
        self.startprob_posterior_ = params.startprob_posterior
        self.transmat_prior_ = params.transmat_prior
        self.transmat_posterior_ = params.transmat_posterior
        self.startprob_ = posterior_mean(params.startprob_posterior)
        self.transmat_ = posterior_mean(params.transmat_posterior)
        self._set_emissions(params.emission)
