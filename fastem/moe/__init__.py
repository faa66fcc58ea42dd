"""Mixtures of experts: mixtures of regressions fitted by EM on the engine."""

from .estimator import MixtureOfExperts

__all__ = ["MixtureOfExperts"]
