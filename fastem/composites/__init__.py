"""Composites: how K states of one component combine, each one engine model for every
component (see :mod:`fastem.components.base`)."""

from .hmm import HMMComposite, HMMParams, HMMPosterior

__all__ = ["HMMComposite", "HMMParams", "HMMPosterior"]
