"""Gaussian mixtures, and imputation of missing values from them."""

from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture
from .imputer import EMImputer

__all__ = ["BayesianGaussianMixture", "EMImputer", "GaussianMixture"]
