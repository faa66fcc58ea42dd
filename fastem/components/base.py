"""The component protocol: what one latent state emits, for K states at once.

A component knows no mixture and no HMM. A composite (:mod:`fastem.composites`)
combines K states of one component, a mixture by weights, an HMM by a Markov
chain, and is one engine model (:class:`fastem.engine.BlockModel`) for every
component. A new family written against this protocol works at once in every
composite: see CONTRIBUTING's "Writing a model".

Everything here is data-free: hyperparameters (priors, the covariance structure,
numbers of categories) and shapes. Parameters are the component's own typed
object (a dataclass of arrays), never a string-keyed dict; composites hold it
whole and never look inside.

One pass of a composite reads a component in this order::

    prepared = component.prepare(params)                    # once per pass
    table = component.log_likelihood(prepared, X, out=...)  # (n, K) lattice
    ... the composite turns the table into posteriors (n, K), weighted ...
    component.accumulate(prepared, X, posteriors, stats)    # adds into stats
    params = component.m_step(stats, params)                # ML, or MAP under the prior

Every component's statistics hold the field ``mass`` (K,), the posterior weight
of each state (sum of its weighted posteriors): the mixture's weights come from it.
:meth:`accumulate` adds into the component's own fields only; the composite keeps
the common ``loglik`` and ``weight`` scalars. A start has no parameters yet:
:meth:`accumulate` and :meth:`accumulate_labels` are then called with ``prepared``
None (statistics from the posteriors or labels alone), about the shift that
:meth:`initial_shift` gives, and the M-step's ``params`` is None.

Optional capabilities are declared as class attributes with defaults; a composite
reads the flag and never probes a method with ``hasattr``:

``fused_mixture_estep``
    :meth:`mixture_block_stats` computes a mixture's posteriors and statistics in
    one pass over the rows (no (n, K) table written and read twice), from what
    :meth:`mixture_prepare` made of the parameters and the mixture's weights
    once per pass; :meth:`mixture_rows` gives the per-row outputs of inference
    (log-density, log-posteriors, labels) from the same.
``missing_values``
    NaN entries are marginalised by :meth:`log_likelihood` and :meth:`accumulate`
    (and, with ``fused_mixture_estep``, by :meth:`mixture_block_stats` and
    :meth:`mixture_rows`); a mixture then starts from mean-imputed rows. A flag may
    be set per instance (e.g. ``Gaussian(..., missing=True)``): a component that
    marginalises NaN pays for looking for it, so it does so only when asked.
``variational``
    The parameters are a posterior q(theta) (variational Bayes): :meth:`prepare` and
    :meth:`log_likelihood` give the sub-normalised E_q[log p(x | theta_k)]
    (:meth:`expected_log_likelihood`), :meth:`m_step` is the conjugate update. For an
    HMM, :meth:`log_prior` is -KL(q || p) (:meth:`kl_divergence`), so that the composite
    runs it as any other component and its objective is the lower bound (the HMM
    composite's ``variational`` option adds the Dirichlet posteriors of the start and
    transitions). The mixture composite's ``weight_prior`` option reads the terms of
    scikit-learn's bound instead (``expected_term``, ``log_normalisers``: see
    :mod:`fastem.components.gaussian_posterior`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_LABEL_ROWS = 1 << 14  # rows of one-hot posteriors built at once (a start from labels)


class Component:
    """Base class of components (see the module docstring).

    Subclasses set :attr:`n_components` and implement the methods that raise
    ``NotImplementedError`` here; the rest have defaults that suit most families.
    """

    #: Declared capabilities (see the module docstring).
    fused_mixture_estep: bool = False
    missing_values: bool = False
    variational: bool = False
    #: True when the M-step exactly maximises the expected complete-data objective
    #: (then an EM step provably cannot lower it).
    exact_m_step: bool = True
    #: How the statistics move to another shift (a StatsLayout ``recentre`` rule, e.g.
    #: Gaussian moments), or None when they are not taken about a shift.
    recentre: Any = None

    n_components: int

    # -- data -----------------------------------------------------------------
    def check_data(self, X: np.ndarray, fitting: bool) -> np.ndarray:
        """X validated for this family (dtype, domain, shape): a ValueError naming ``X``,
        the offending row/column and the remedy otherwise. Never modifies ``X``."""
        raise NotImplementedError

    def n_features_of(self, X: np.ndarray) -> int:
        """The parameters' feature count for validated data ``X``."""
        return int(X.shape[1])

    # -- statistics -----------------------------------------------------------
    def fields(self, n_features: int) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the statistics (a :class:`~fastem.engine.StatsLayout`'s
        fields), in the kernels' order."""
        raise NotImplementedError

    def shift(self, params: Any) -> np.ndarray | None:
        """The point the statistics are taken about (e.g. the current means), or None."""
        return None

    def initial_shift(self, centres: np.ndarray) -> np.ndarray | None:
        """The shift of a start's statistics, given one point per state in data space
        (k-means centres, seed rows or the data's mean), or None (no shift)."""
        return None

    # -- one pass -------------------------------------------------------------
    def prepare(self, params: Any) -> Any:
        """What :meth:`log_likelihood` and :meth:`accumulate` read, computed once per pass
        (factorisations, logarithms). The identity by default."""
        return params

    def log_likelihood(self, prepared: Any, X: np.ndarray, out: np.ndarray | None = None,
                       cache: dict | None = None) -> np.ndarray:
        """(n, K) log-likelihood of every row under every state, written into ``out``
        when given. ``cache`` is a dict kept with these rows for the whole fit (or None)."""
        raise NotImplementedError

    def accumulate(self, prepared: Any, X: np.ndarray, posteriors: np.ndarray, out: Any,
                   cache: dict | None = None) -> None:
        """Add the statistics of rows ``X`` with (weighted) ``posteriors`` (n, K) into
        ``out`` (a :class:`~fastem.engine.Stats` of :meth:`fields`)."""
        raise NotImplementedError

    def accumulate_labels(self, X: np.ndarray, weights: np.ndarray | None, labels: np.ndarray,
                          out: Any) -> None:
        """Add the statistics of rows ``X`` with hard ``labels`` (int64, -1: no state) and
        row ``weights`` (or None) into ``out``: a start from k-means or seed rows. By
        default one-hot posteriors in bounded chunks, through :meth:`accumulate`."""
        k = self.n_components
        for lo in range(0, len(X), _LABEL_ROWS):
            hi = min(lo + _LABEL_ROWS, len(X))
            chunk = labels[lo:hi]
            posteriors = np.zeros((hi - lo, k))
            rows = np.flatnonzero((chunk >= 0) & (chunk < k))
            posteriors[rows, chunk[rows]] = 1.0 if weights is None else weights[lo:hi][rows]
            self.accumulate(None, X[lo:hi], posteriors, out)

    def m_step(self, stats: Any, params: Any) -> Any:
        """New parameters from the statistics: maximum likelihood, or the MAP estimate
        when the component was built with a prior. ``params`` (the current ones, or None
        at a start) lets a state without mass keep its parameters."""
        raise NotImplementedError

    def log_prior(self, params: Any) -> float:
        """The log prior density of ``params`` (0 without a prior), which the monitored
        objective includes under MAP."""
        return 0.0

    def checked(self, params: Any) -> Any:
        """``params`` as the E-step uses them, or a ValueError naming the attribute, the
        cause and the remedy (called on every M-step's result and on loaded models)."""
        return params

    # -- start ----------------------------------------------------------------
    def initialize(self, X: np.ndarray, posteriors: np.ndarray | None,
                   random_state: np.random.RandomState) -> Any:
        """Initial parameters from rows ``X`` and their initial posteriors (n, K): one-hot
        rows for hard labels (k-means), or soft responsibilities; with ``posteriors``
        None, the family's own start. By default the M-step of the statistics of those
        posteriors (about their weighted means when the statistics carry a shift), and
        for None the hard labels of k-means on ``X`` (k-means++ seeds, then Lloyd)."""
        from ..engine import StatsLayout

        layout = StatsLayout(self.fields(self.n_features_of(X)), recentre=self.recentre)
        if posteriors is None:
            from ..mixture import kmeans

            rows = np.ascontiguousarray(X, dtype=np.float64)
            seeds = kmeans.kmeans_plusplus(rows, self.n_components, None, random_state)
            centres, labels = kmeans.lloyd(rows, None, rows[seeds])
            stats = layout.zeros(self.initial_shift(centres))
            self.accumulate_labels(X, None, labels, stats)
            return self.m_step(stats, None)
        posteriors = np.asarray(posteriors, dtype=np.float64)
        shift = None
        if self.recentre is not None:
            mass = posteriors.sum(axis=0)
            centres = posteriors.T @ np.asarray(X, dtype=np.float64)
            centres /= np.where(mass > 0, mass, 1.0)[:, None]
            shift = self.initial_shift(centres)
        stats = layout.zeros(shift)
        self.accumulate(None, X, posteriors, stats)
        return self.m_step(stats, None)

    # -- parameters -----------------------------------------------------------
    def pack(self, params: Any) -> np.ndarray:
        """The parameters as a flat float64 vector in an unconstrained space (what SQUAREM
        extrapolates)."""
        raise NotImplementedError

    def unpack(self, vector: np.ndarray, like: Any) -> Any:
        """Inverse of :meth:`pack`; ValueError for a vector that maps to no valid
        parameters."""
        raise NotImplementedError

    def n_parameters(self, n_features: int) -> int:
        """Free parameters of the K states (for BIC/AIC)."""
        raise NotImplementedError

    def sample(self, params: Any, state: int, n_samples: int,
               random_state: np.random.RandomState) -> np.ndarray:
        """``n_samples`` rows drawn from state ``state``."""
        raise NotImplementedError

    # -- rows every state finds impossible -------------------------------------
    def limiting_log_likelihood(self, params: Any, X: np.ndarray) -> np.ndarray | None:
        """For rows whose log-likelihoods are -inf in every state: relative
        log-likelihoods (n, K) that stay finite (their limit), or None to leave them
        impossible. Zeros by default: the row is read as missing, the limit of smoothing
        every state's zero probabilities alike."""
        return np.zeros((len(X), self.n_components))

    def impossible_rows_error(self, X: np.ndarray) -> Exception | None:
        """The ValueError a fit raises for rows ``X`` that every state finds impossible
        (why, and what to do), or None to leave their sequences out of the statistics."""
        return None

    # -- optional capabilities (only when the flag says so) ---------------------
    def mixture_prepare(self, params: Any, weights: np.ndarray | None,
                        log_weights: np.ndarray) -> Any:
        """With ``fused_mixture_estep``: what :meth:`mixture_block_stats` and
        :meth:`mixture_rows` read for a mixture of these states with ``weights`` (K,) and
        ``log_weights`` (their logarithms, or E[log pi] under variational Bayes, where
        ``weights`` is None), computed once per pass."""
        raise NotImplementedError(f"{type(self).__name__} has no fused mixture E-step")

    def mixture_block_stats(self, prepared: Any, block: Any, out: Any) -> None:
        """With ``fused_mixture_estep``: add a mixture's statistics of ``block`` (the
        log-likelihood, the weight and this component's fields) into ``out`` in one pass,
        work units in order."""
        raise NotImplementedError(f"{type(self).__name__} has no fused mixture E-step")

    def mixture_rows(self, prepared: Any, X: np.ndarray, what: str) -> np.ndarray:
        """With ``fused_mixture_estep``: per-row outputs of the mixture: ``"logsumexp"``
        (n,) log-densities, ``"log_resp"`` (n, K) log-posteriors, ``"argmax"`` (n,) labels."""
        raise NotImplementedError(f"{type(self).__name__} has no fused mixture E-step")

    def expected_log_likelihood(self, posterior: Any, X: np.ndarray,
                                out: np.ndarray | None = None) -> np.ndarray:
        """With ``variational``: (n, K) E_q[log p(x | theta_k)] under the posterior. A
        variational component's parameters are the posterior and its lattice is this
        expectation, so the default is that lattice."""
        if not self.variational:
            raise NotImplementedError(f"{type(self).__name__} has no variational form")
        return self.log_likelihood(self.prepare(posterior), X, out)

    def kl_divergence(self, posterior: Any) -> float:
        """With ``variational``: KL(q(theta) || p(theta)) of the parameters' posterior."""
        raise NotImplementedError(f"{type(self).__name__} has no variational form")
