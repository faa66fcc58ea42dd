"""Hidden Markov models trained by Baum-Welch, with hmmlearn 0.3's API."""

from .base import BaseHMM, ConvergenceMonitor
from .categorical import CategoricalHMM, VariationalCategoricalHMM
from .counts import MultinomialHMM, PoissonHMM
from .gaussian import GaussianHMM, VariationalGaussianHMM
from .generic import HMM
from .gmm import GMMHMM

__all__ = ["BaseHMM", "CategoricalHMM", "ConvergenceMonitor", "GMMHMM", "GaussianHMM", "HMM",
           "MultinomialHMM", "PoissonHMM", "VariationalCategoricalHMM",
           "VariationalGaussianHMM"]
