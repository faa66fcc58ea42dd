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

:class:`VariationalHMM` is the part every emission shares (start and transition
posteriors, the bound's KL terms, the parameter flow); an emission model adds
its own priors, posterior, sub-normalised table and KL term.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v
from .._special import digamma, gammaln
from ..engine.packing import positive_values
from ..mixture.variational import checked_prior


def dirichlet_kl(posterior, prior):
    """KL(Dir(posterior) || Dir(prior)) of each row (the last axis)."""
    q = np.asarray(posterior, dtype=np.float64)
    p = np.asarray(prior, dtype=np.float64)
    q_sum = q.sum(axis=-1)
    return (gammaln(q_sum) - gammaln(p.sum(axis=-1)) - np.sum(gammaln(q) - gammaln(p), axis=-1)
            + np.sum((q - p) * (digamma(q) - digamma(q_sum)[..., None]), axis=-1))


def log_subnormalised(concentration):
    """E[log p] of each Dirichlet row: psi(a) - psi(sum a)."""
    a = np.asarray(concentration, dtype=np.float64)
    return digamma(a) - digamma(a.sum(axis=-1))[..., None]


def subnormalised(concentration):
    """exp(E[log p]) of each Dirichlet row: exp(psi(a) - psi(sum a))."""
    return np.exp(log_subnormalised(concentration))


def posterior_mean(concentration):
    """The rows of a Dirichlet posterior's mean (what hmmlearn reports as ``startprob_``,
    ``transmat_`` and ``emissionprob_``)."""
    a = np.asarray(concentration, dtype=np.float64)
    return a / a.sum(axis=-1, keepdims=True)


_DRAW_FLOOR = np.finfo(np.float64).eps


def positive_draw(draw, prior):
    """A random initial Dirichlet posterior (hmmlearn's draw), raised to eps times the
    prior where it is below that. With concentrations 1 / n below about 0.01, numpy's
    Dirichlet draws hold exact zeros and subnormal numbers (half the entries for n =
    1000), where psi is -inf and the lower bound with it; raised, such an entry is still
    impossible in the first E-step (exp(psi(q)) is 0, as hmmlearn's), and the bound finite.
    Every other entry is hmmlearn's draw."""
    return np.maximum(draw, _DRAW_FLOOR * np.asarray(prior, dtype=np.float64))


class VariationalHMM:
    """Start and transition posteriors for a variational HMM (mix in before the emission
    model's class). The parameters in a fit are a dict holding, besides the emission
    model's, ``startprob_prior``/``startprob_posterior``, ``transmat_prior``/
    ``transmat_posterior`` and the sub-normalised ``startprob``/``transmat`` the
    forward-backward kernel reads."""

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
        n_features = self._features_of(self._current_parameters())
        params = {name[:-1]: self._checked_concentration(name, shape) for name, shape in (
            ("startprob_prior_", (k,)), ("startprob_posterior_", (k,)),
            ("transmat_prior_", (k, k)), ("transmat_posterior_", (k, k)))}
        params.update(self._checked_emission_posteriors(n_features))
        names = ("startprob_", "transmat_") + self._point_emission_attributes
        points = {name: np.asarray(getattr(self, name), dtype=np.float64) for name in names}
        completed = self._completed_parameters(params)
        for name, table in completed.items():
            if not np.all(np.isfinite(table)):
                raise ValueError(f"the posterior gives a non-finite {name} table")
        self._set_parameters(completed)
        for name, value in points.items():  # (covars_ is kept as _covars_)
            v.check_consistent(value, np.asarray(getattr(self, name)), name.lstrip("_"),
                               "the posterior")

    def _checked_emission_posteriors(self, n_features):
        """The emission prior and posterior attributes, checked (a dict of arrays)."""
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

    def _initial_parameters(self, X, bounds, random_state):
        k = self.n_components
        n_sequences, n_rows = len(bounds) - 1, int(bounds[-1])
        uniform = np.full(k, 1.0 / k)
        params = {}
        # hmmlearn's draws, in hmmlearn's order.
        if self._needs_init("s", "startprob_posterior_"):
            params["startprob_prior"] = self._prior_array(self.startprob_prior, (k,), 1.0 / k,
                                                          "startprob_prior")
            params["startprob_posterior"] = positive_draw(
                random_state.dirichlet(uniform) * n_sequences, params["startprob_prior"])
        else:
            params["startprob_prior"] = self._checked_concentration("startprob_prior_", (k,))
            params["startprob_posterior"] = self._checked_concentration("startprob_posterior_",
                                                                        (k,))
        if self._needs_init("t", "transmat_posterior_"):
            params["transmat_prior"] = self._prior_array(self.transmat_prior, (k, k), 1.0 / k,
                                                         "transmat_prior")
            params["transmat_posterior"] = positive_draw(
                random_state.dirichlet(uniform, size=k) * n_rows / k, params["transmat_prior"])
        else:
            params["transmat_prior"] = self._checked_concentration("transmat_prior_", (k, k))
            params["transmat_posterior"] = self._checked_concentration("transmat_posterior_",
                                                                       (k, k))
        params.update(self._initial_emissions(X, random_state))
        return self._completed_parameters(params)

    def _completed_parameters(self, params):
        params = dict(params)
        params["startprob"] = subnormalised(params["startprob_posterior"])
        params["transmat"] = subnormalised(params["transmat_posterior"])
        params.update(self._subnormalised_emissions(params))
        return params

    # -- SQUAREM ------------------------------------------------------------------------
    # The monitored bound, log Z - KL(q || p), is the lower bound of the posterior the pass
    # ran at (with its optimal state posteriors), for any posterior, and a pass never
    # lowers it: SQUAREM's safeguard keeps it monotone. The Dirichlet and Normal-Wishart
    # posteriors' parameters are extrapolated as they are; a point outside their domain is
    # refused here and the schedule falls back to the plain step.
    def _pack_parameters(self, params):
        return np.concatenate([params["startprob_posterior"],
                               np.ravel(params["transmat_posterior"]),
                               self._pack_emission_posteriors(params)])

    def _unpack_parameters(self, vector, like):
        k = self.n_components
        params = dict(like)
        params["startprob_posterior"] = positive_values(vector[:k], (k,), "start posteriors")
        params["transmat_posterior"] = positive_values(vector[k:k + k * k], (k, k),
                                                       "transition posteriors")
        params.update(self._unpack_emission_posteriors(vector[k + k * k:], like))
        return self._completed_parameters(params)

    def _pack_emission_posteriors(self, params):
        """The emission posterior's parameters as a flat vector."""
        raise NotImplementedError

    def _unpack_emission_posteriors(self, vector, like):
        """Inverse of :meth:`_pack_emission_posteriors`; ValueError outside the domain."""
        raise NotImplementedError

    def _start_transition_m_step(self, stats, params):
        new = {}
        if "s" in self.params:
            new["startprob_posterior"] = params["startprob_prior"] + stats["start"]
        if "t" in self.params:
            new["transmat_posterior"] = params["transmat_prior"] + stats["trans"]
        return new

    def _log_prior(self, params):
        """-KL(q || p) of the start, transition and emission posteriors: with log Z from
        the pass, hmmlearn's lower bound."""
        kl = float(dirichlet_kl(params["startprob_posterior"], params["startprob_prior"]))
        kl += float(np.sum(dirichlet_kl(params["transmat_posterior"],
                                        params["transmat_prior"])))
        return -kl - self._emission_kl(params)

    def _set_parameters(self, params):
        self.startprob_prior_ = params["startprob_prior"]
        self.startprob_posterior_ = params["startprob_posterior"]
        self.transmat_prior_ = params["transmat_prior"]
        self.transmat_posterior_ = params["transmat_posterior"]
        self.startprob_ = posterior_mean(params["startprob_posterior"])
        self.transmat_ = posterior_mean(params["transmat_posterior"])
        self._set_emissions(params)
