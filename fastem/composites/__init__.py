"""Composites: how the states of a component combine (see :mod:`fastem.components.base`).

Each composite is one engine model (:class:`fastem.engine.BlockModel`) for every
component: :class:`~fastem.composites.mixture.MixtureModel` mixes K states by weights,
:class:`~fastem.composites.hmm.HMMComposite` chains them by a Markov chain.
"""

from .hmm import HMMComposite, HMMParams, HMMPosterior
from .mixture import MixtureModel, MixtureParams

__all__ = ["HMMComposite", "HMMParams", "HMMPosterior", "MixtureModel", "MixtureParams"]
