"""Mixtures (Gaussian, exponential, of any component), and imputation of missing values
from Gaussian ones."""

from .bayesian_mixture import BayesianGaussianMixture
from .component_mixture import ExponentialMixture, Mixture
from .gaussian_mixture import GaussianMixture
from .imputer import EMImputer

__all__ = ["BayesianGaussianMixture", "EMImputer", "ExponentialMixture", "GaussianMixture",
           "Mixture"]
