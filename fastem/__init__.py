"""fastem: Numba-compiled, multi-core Expectation-Maximization.

Drop-in replacements for scikit-learn's GaussianMixture and hmmlearn's HMMs
(Gaussian, Gaussian-mixture, categorical, Poisson and multinomial
emissions) that run on compiled kernels over all
cores.
"""

from . import _runtime  # noqa: F401  (selects a thread-safe numba layer first)
from ._runtime import threads
from ._warmup import warmup
from .datasets import load_faithful
from .exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError
from .hmm import (
    GMMHMM,
    HMM,
    CategoricalHMM,
    GaussianHMM,
    MultinomialHMM,
    PoissonHMM,
    VariationalCategoricalHMM,
    VariationalGaussianHMM,
)
from .io import load
from .mixture import (
    BayesianGaussianMixture,
    EMImputer,
    ExponentialMixture,
    GaussianMixture,
    Mixture,
)
from .moe import MixtureOfExperts

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture",
    "CategoricalHMM",
    "EMImputer",
    "ExponentialMixture",
    "ConvergenceWarning",
    "DataConversionWarning",
    "GMMHMM",
    "GaussianHMM",
    "HMM",
    "MultinomialHMM",
    "GaussianMixture",
    "Mixture",
    "MixtureOfExperts",
    "NotFittedError",
    "PoissonHMM",
    "VariationalCategoricalHMM",
    "VariationalGaussianHMM",
    "load",
    "load_faithful",
    "threads",
    "warmup",
    "__version__",
]
