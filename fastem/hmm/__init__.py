"""Hidden Markov models trained by Baum-Welch, with hmmlearn 0.3's API."""

from .base import BaseHMM, ConvergenceMonitor
from .categorical import CategoricalHMM, VariationalCategoricalHMM
from .counts import MultinomialHMM, PoissonHMM
from .gaussian import GaussianHMM, VariationalGaussianHMM
from .gmm import GMMHMM

__all__ = ["BaseHMM", "CategoricalHMM", "ConvergenceMonitor", "GMMHMM", "GaussianHMM",
           "MultinomialHMM", "PoissonHMM", "VariationalCategoricalHMM",
           "VariationalGaussianHMM"]
