"""Gaussian mixtures, and imputation of missing values from them."""

from .gaussian_mixture import GaussianMixture
from .imputer import EMImputer

__all__ = ["EMImputer", "GaussianMixture"]
