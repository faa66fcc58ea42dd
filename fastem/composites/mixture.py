"""The mixture composite: K states of any component combined by weights, one engine model.

One pass of :class:`MixtureModel` over a block takes one of two routes:

* **fused** (the component declares ``fused_mixture_estep``, e.g. the Gaussian): the
  component's own kernel computes posteriors and statistics in one pass over the rows
  (:meth:`~fastem.components.base.Component.mixture_block_stats`);
* **generic** (every other component): for each chunk of at most :data:`CHUNK_ROWS`
  rows, the component writes its log-likelihood lattice into a bounded (chunk, K) table,
  :func:`fastem.kernels.mixture.mixture_posteriors` turns it into weighted posteriors in
  place (log-sum-exp, the chunk's log-likelihood and weight), and the component
  accumulates its statistics from them. No (n, K) table of the whole data is built;
  chunks start on work-unit boundaries, so the common sums are bitwise those of one
  pass, whatever the chunk size and the number of threads.

The statistics are the component's fields (their ``mass`` gives the weights); the
parameters are :class:`MixtureParams` (weights and the component's own parameters).
Starts (``kmeans``, ``k-means++``, ``random``, ``random_from_data``) are written once
here for every component: k-means labels or seed rows through
:meth:`~fastem.components.base.Component.accumulate_labels`, random responsibilities in
bounded chunks through :meth:`~fastem.components.base.Component.accumulate`, then the
M-step with scikit-learn's convention of dividing the initial masses by the total weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._special import betaln, digamma, gammaln
from ..components.structures import MASS_EPS
from ..engine import UNIT_ROWS, Block, ModelBase, StatsLayout
from ..engine.packing import positive_values, probability_rows
from ..engine.row_random import draw_seed, row_uniforms
from ..kernels import mixture as mk
from ..mixture import kmeans, kmeans_parallel

CHUNK_ROWS = 64 * UNIT_ROWS
"""Rows of one generic-route chunk (16,384): its (rows, K) table is the only per-row
table of a pass (a multiple of the work unit, so chunks keep the units' order)."""
_RANDOM_INIT_ROWS = 1 << 15  # rows of random responsibilities drawn at once
_IMPUTED_INIT_ROWS = 1 << 18
"""Rows (drawn at random) that start a fit with missing values on more rows than this."""
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
ROW_OUTPUTS = ("logsumexp", "log_resp", "argmax")


@dataclass
class MixtureParams:
    """Parameters of a mixture: ``weights`` (K,) and the component's ``components``."""

    weights: np.ndarray
    components: Any


@dataclass
class VariationalMixtureParams:
    """A variational mixture's posterior: the weights' concentrations (K,) (a pair of (K,)
    arrays for the stick-breaking prior) and the component's posterior."""

    weight_concentration: Any
    components: Any


class DirichletWeights:
    """The weights' prior of a variational mixture: a Dirichlet distribution
    (``"dirichlet_distribution"``) or a Dirichlet process by stick breaking
    (``"dirichlet_process"``) of concentration ``concentration``."""

    TYPES = ("dirichlet_process", "dirichlet_distribution")

    def __init__(self, weight_type, concentration):
        if weight_type not in self.TYPES:
            raise ValueError(f"weight_type must be one of {self.TYPES}, got {weight_type!r}")
        self.weight_type = weight_type
        self.concentration = concentration

    @property
    def stick_breaking(self):
        return self.weight_type == "dirichlet_process"

    def posterior(self, nk):
        """The concentrations' posterior for the masses ``nk``."""
        if self.stick_breaking:
            tail = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
            return (1.0 + nk, self.concentration + tail)
        return self.concentration + nk

    def expected_log(self, concentration):
        """E[log pi_k] under the posterior ``concentration``."""
        if self.stick_breaking:
            a, b = concentration
            total = digamma(a + b)
            stick = digamma(b) - total
            return digamma(a) - total + np.concatenate([[0.0], np.cumsum(stick)[:-1]])
        concentration = np.asarray(concentration)
        return digamma(concentration) - digamma(concentration.sum())

    def point_weights(self, concentration):
        """The weights' posterior means, normalised (scikit-learn's ``weights_``)."""
        if self.stick_breaking:
            a, b = concentration
            fraction = b / (a + b)
            weights = a / (a + b) * np.concatenate([[1.0], np.cumprod(fraction[:-1])])
        else:
            weights = np.asarray(concentration, dtype=np.float64)
        return weights / weights.sum()

    def log_normaliser(self, concentration):
        """log C_pi of the posterior (its term of the bound enters as -log C_pi)."""
        if self.stick_breaking:
            a, b = concentration
            return -float(np.sum(betaln(a, b)))
        concentration = np.asarray(concentration)
        return float(gammaln(concentration.sum()) - gammaln(concentration).sum())

    def size(self, n_components):
        return 2 * n_components if self.stick_breaking else n_components

    def unpack(self, vector, n_components):
        size = self.size(n_components)
        concentration = positive_values(vector[:size], (size,), "weight concentrations")
        if self.stick_breaking:
            return (concentration[:n_components], concentration[n_components:])
        return concentration


@dataclass
class _Prepared:
    """The generic route's per-pass values: the component's and the log-weights."""

    component: Any
    log_weights: np.ndarray


def log_weights_of(weights):
    with np.errstate(divide="ignore"):  # a zero weight is a valid -inf log-weight
        return np.log(weights)


class MixtureModel(ModelBase):
    """K states of ``component`` mixed by weights, as an engine model
    (:class:`fastem.engine.BlockModel`).

    Parameters
    ----------
    component : :class:`~fastem.components.base.Component` (its ``n_components`` is K)
    n_features : int
        The parameters' feature count (``component.n_features_of`` of the data).
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
    weight_prior : DirichletWeights or None
        Variational Bayes (for a component with the ``variational`` capability): the
        parameters are a :class:`VariationalMixtureParams` posterior, the E-step runs at
        E[log pi] and the component's expected log-likelihood, and the objective is
        scikit-learn's lower bound (the entropy of the pass's posteriors plus the
        posterior's normalisers).
    """

    def __init__(self, component, n_features, init_params="kmeans", weight_prior=None):
        if init_params not in INIT_PARAMS:
            raise ValueError(f"init_params must be one of {INIT_PARAMS}, got {init_params!r}")
        self.component = component
        self.n_components = int(component.n_components)
        self.n_features = int(n_features)
        self.init_params = init_params
        self.fused = bool(component.fused_mixture_estep)
        self.monotone = bool(component.exact_m_step)
        if weight_prior is not None and not component.variational:
            raise TypeError(f"{type(component).__name__} has no variational form (a weight "
                            "prior needs a component with the 'variational' capability)")
        self.weight_prior = weight_prior
        self.layout = StatsLayout(component.fields(self.n_features),
                                  recentre=component.recentre)
        if "mass" not in self.layout.shapes:
            raise TypeError(f"{type(component).__name__}.fields must include 'mass' (the "
                            "posterior weight of each state)")

    # -- parameters <-> (weights, component parameters) -------------------------------
    def split(self, params):
        """(weights, the component's parameters) of ``params`` (under variational Bayes,
        the weights' concentrations and the component's posterior)."""
        if self.weight_prior is not None:
            return params.weight_concentration, params.components
        return params.weights, params.components

    def join(self, weights, components):
        """Parameters from weights (or concentrations) and the component's parameters."""
        if self.weight_prior is not None:
            return VariationalMixtureParams(weights, components)
        return MixtureParams(weights, components)

    def _log_weights(self, weights):
        """log pi, or E[log pi] under variational Bayes (``weights`` the concentrations)."""
        if self.weight_prior is not None:
            return self.weight_prior.expected_log(weights)
        return log_weights_of(weights)

    # -- the engine protocol ----------------------------------------------------------
    def prepare(self, params):
        weights, components = self.split(params)
        log_weights = self._log_weights(weights)
        if self.fused:
            return self.component.mixture_prepare(
                components, None if self.weight_prior is not None else weights, log_weights)
        return _Prepared(self.component.prepare(components),
                         np.ascontiguousarray(log_weights, dtype=np.float64))

    def shift(self, params):
        return self.component.shift(self.split(params)[1])

    def block_stats(self, prepared, block, out):
        if self.fused:
            self.component.mixture_block_stats(prepared, block, out)
            return
        component = self.component
        X, n = block.X, block.n_rows
        weights = (np.empty(0) if block.weights is None
                   else np.ascontiguousarray(block.weights, dtype=np.float64))
        table = np.empty((min(n, CHUNK_ROWS), self.n_components))
        common = out.flat[:2]  # loglik, weight
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            rows = X[lo:hi]
            cache = block.cache.setdefault(("mixture", lo, hi), {})
            chunk = component.log_likelihood(prepared.component, rows, out=table[:hi - lo],
                                             cache=cache)
            mk.mixture_posteriors(chunk, prepared.log_weights,
                                  weights[lo:hi] if weights.size else weights, UNIT_ROWS,
                                  common)
            component.accumulate(prepared.component, rows, chunk, out, cache=cache)

    def m_step(self, stats, params):
        if self.weight_prior is not None:
            # The engine asks for the objective, then the M-step, of the same statistics:
            # the objective's posterior is reused rather than computed twice.
            cached = self.__dict__.pop("_last_posterior", None)
            if cached is not None and cached[0] is stats:
                return cached[1]
            return self.posterior(stats)
        return self.params_from_stats(stats, params)

    def params_from_stats(self, stats, params=None, total_weight=None):
        """The M-step: the component's parameters, and weights from the masses (normalised
        by the mass, or by ``total_weight``: scikit-learn divides initial masses by the
        number of samples)."""
        components = self.component.m_step(
            stats, None if params is None else self.split(params)[1])
        nk = stats["mass"] + MASS_EPS
        weights = nk / (nk.sum() if total_weight is None else total_weight)
        return self.join(weights, components)

    def posterior(self, stats):
        """Variational Bayes: the posterior of the weights and of the component's
        parameters for the responsibilities behind ``stats``."""
        components = self.component.m_step(stats, None)
        return self.join(self.weight_prior.posterior(stats["mass"] + MASS_EPS), components)

    def objective(self, stats, params):
        if self.weight_prior is not None:
            return self._lower_bound(stats, params)
        objective = stats.loglik / stats.weight
        if params is not None:
            log_prior = self.component.log_prior(self.split(params)[1])
            if log_prior:
                objective += log_prior / stats.weight
        return objective

    def _lower_bound(self, stats, params):
        """scikit-learn's lower bound for the pass's responsibilities (``stats``, at
        ``params``) and the posterior the M-step gives for them: the posteriors' entropy
        -sum r log r = sum_i log sum_k rho_ik - sum_k sum_i r_ik log rho_ik, then
        -log C_W - log C_pi - D/2 sum log beta_k of the new posterior."""
        new = self.posterior(stats)
        self._last_posterior = (stats, new)
        concentration, components = self.split(params)
        entropy = float(stats.loglik) - self.component.expected_term(
            stats, components, self.weight_prior.expected_log(concentration))
        new_concentration, new_components = self.split(new)
        log_wishart, log_beta = self.component.log_normalisers(new_components)
        log_norm_weight = self.weight_prior.log_normaliser(new_concentration)
        return entropy + (-log_wishart - log_norm_weight - log_beta)

    def __getstate__(self):
        # The reused posterior is per-pass scratch: never shipped to workers.
        return {key: value for key, value in vars(self).items() if key != "_last_posterior"}

    def pack(self, params):
        weights, components = self.split(params)
        return np.concatenate([np.ravel(weights), self.component.pack(components)])

    def unpack(self, vector, like):
        k = self.n_components
        if self.weight_prior is not None:
            size = self.weight_prior.size(k)
            concentration = self.weight_prior.unpack(vector, k)
            return self.join(concentration,
                             self.component.unpack(vector[size:], self.split(like)[1]))
        weights = probability_rows(vector[:k], (k,), "weights")
        return self.join(weights, self.component.unpack(vector[k:], self.split(like)[1]))

    # -- inference --------------------------------------------------------------------
    def row_outputs(self, params, X, what):
        """Per-row outputs of ``X`` under ``params``: ``"logsumexp"`` (n,) log-densities,
        ``"log_resp"`` (n, K) log-posteriors or ``"argmax"`` (n,) labels."""
        if what not in ROW_OUTPUTS:
            raise ValueError(f"what must be one of {ROW_OUTPUTS}, got {what!r}")
        prepared = self.prepare(params)
        if self.fused:
            return self.component.mixture_rows(prepared, X, what)
        n, k = X.shape[0], self.n_components
        out = (np.empty(n) if what == "logsumexp" else np.empty((n, k)) if what == "log_resp"
               else np.empty(n, dtype=np.int64))
        table = np.empty((min(n, CHUNK_ROWS), k))
        components = self.split(params)[1]
        for lo in range(0, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            chunk = self.component.log_likelihood(prepared.component, X[lo:hi],
                                                  out=table[:hi - lo])
            chunk += prepared.log_weights
            peak = chunk.max(axis=1)
            impossible = ~(peak > -np.inf)
            if impossible.any() and what != "logsumexp":
                limit = self.component.limiting_log_likelihood(components,
                                                               X[lo:hi][impossible])
                if limit is not None:
                    chunk[impossible] = limit + prepared.log_weights
                    peak[impossible] = chunk[impossible].max(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                shifted = chunk - np.where(np.isfinite(peak), peak, 0.0)[:, None]
                log_total = np.log(np.exp(shifted).sum(axis=1))
            if what == "logsumexp":
                out[lo:hi] = np.where(np.isfinite(peak), peak + log_total, peak)
            elif what == "log_resp":
                out[lo:hi] = shifted - log_total[:, None]
            else:
                out[lo:hi] = chunk.argmax(axis=1)
        return out

    def n_parameters(self):
        """Free parameters (for BIC and AIC): the component's and K - 1 weights."""
        return int(self.component.n_parameters(self.n_features)) + self.n_components - 1

    def sample(self, params, n_samples, random_state):
        """(X, labels) of ``n_samples`` draws: states by the weights, then rows per state
        in state order."""
        weights, components = self.split(params)
        counts = random_state.multinomial(n_samples, weights)
        parts = [self.component.sample(components, k, int(counts[k]), random_state)
                 for k in range(self.n_components)]
        return np.concatenate(parts), np.repeat(np.arange(self.n_components), counts)

    # -- the start ----------------------------------------------------------------------
    def _accumulate_labels(self, block, labels, out):
        """A start's statistics of rows with hard labels (-1: counted in the weight only)."""
        self.component.accumulate_labels(block.X, block.weights, labels, out)
        weights = (np.empty(0) if block.weights is None
                   else np.ascontiguousarray(block.weights, dtype=np.float64))
        out.flat[1] += mk.weight_sum(weights, block.n_rows, UNIT_ROWS)

    def _accumulate_resp(self, block, resp, lo, out):
        """A start's statistics of rows ``lo:lo + len(resp)`` with responsibilities ``resp``."""
        hi = lo + resp.shape[0]
        weights = None if block.weights is None else block.weights[lo:hi]
        weighted = resp if weights is None else resp * weights[:, None]
        self.component.accumulate(None, block.X[lo:hi], weighted, out)
        out.flat[1] += mk.weight_sum(np.empty(0) if weights is None
                                     else np.ascontiguousarray(weights, dtype=np.float64),
                                     hi - lo, UNIT_ROWS)

    def _stats_from_labels(self, block, labels, centres):
        stats = self.layout.zeros(self.component.initial_shift(centres))
        self._accumulate_labels(block, labels, stats)
        return stats

    def _sample_rows(self, block, n_rows, random_state):
        n = block.n_rows
        if block.weights is None:
            return random_state.choice(n, size=n_rows, replace=False)
        p = block.weights / block.weights.sum()
        return random_state.choice(n, size=n_rows, replace=False, p=p)

    def _stats_from_random_resp(self, block, random_state):
        mean, _ = kmeans.weighted_moments(block.X, block.weights)
        stats = self.layout.zeros(self.component.initial_shift(
            np.tile(mean, (self.n_components, 1))))
        n = block.n_rows
        for lo in range(0, n, _RANDOM_INIT_ROWS):
            hi = min(lo + _RANDOM_INIT_ROWS, n)
            resp = random_state.uniform(size=(hi - lo, self.n_components))
            resp /= resp.sum(axis=1)[:, None]
            self._accumulate_resp(block, resp, lo, stats)
        return stats

    def _initial_stats(self, block, random_state):
        X, weights = block.X, block.weights
        n = block.n_rows
        k = self.n_components
        if self.init_params in ("kmeans", "k-means++"):
            seeds = kmeans.kmeans_plusplus(X, k, weights, random_state)
        else:
            seeds = None
        if self.init_params == "kmeans":
            centers, labels = kmeans.lloyd(X, weights, X[seeds])
            return self._stats_from_labels(block, labels, centers)
        if self.init_params == "random":
            return self._stats_from_random_resp(block, random_state)
        if seeds is None:  # random_from_data
            seeds = self._sample_rows(block, k, random_state)
        labels = np.full(n, -1, dtype=np.int64)
        labels[seeds] = np.arange(k)
        return self._stats_from_labels(block, labels, X[seeds])

    def _initial_stats_at_scale(self, backend, random_state):
        k = self.n_components
        if self.init_params == "random":
            centre = np.zeros((1, self.n_features))
            moments = kmeans_parallel.centre_stats(backend, centre)
            mean = np.tile(moments["first"][0] / moments["mass"][0], (k, 1))
            seed = draw_seed(random_state)
            shift = self.component.initial_shift(mean)
            flats = backend.map_blocks(_random_resp_stats, (self, seed, shift))
            return self.layout.wrap(np.sum(flats, axis=0), shift)
        if self.init_params == "random_from_data":
            rows, total_weight = kmeans_parallel.random_rows(backend, k, random_state)
        else:
            candidates = kmeans_parallel.kmeans_parallel(backend, k, random_state)
            total_weight = candidates.total_weight
            if self.init_params == "kmeans":
                centres = kmeans_parallel.lloyd_passes(
                    backend, candidates.centres(k, random_state), candidates.variance)
                return backend.stats(_NearestLabels(self), np.ascontiguousarray(centres))
            rows = candidates.seeds(k, random_state)
        # One row per component, as in memory; every other row counts in the total only.
        rows = np.ascontiguousarray(rows)
        stats = self._stats_from_labels(Block(rows), np.arange(k, dtype=np.int64), rows)
        stats.flat[self.layout.slices["weight"]] = total_weight
        return stats

    def initialize(self, block, random_state):
        if self.component.missing_values:
            block = self._imputed_sample(block, random_state)
        return self._initial_params(lambda: self._initial_stats(block, random_state))

    def _imputed_sample(self, block, random_state):
        """With missing values: a column-mean-imputed copy of the block (of a random sample
        of _IMPUTED_INIT_ROWS rows when it is larger), freed once the start is made."""
        from ..mixture.missing import mean_imputed

        X, weights = block.X, block.weights
        if X.shape[0] > _IMPUTED_INIT_ROWS:  # a bounded sample: no full-size imputed copy
            rows = np.sort(random_state.choice(X.shape[0], size=_IMPUTED_INIT_ROWS,
                                               replace=False))
            X = X[rows]
            weights = None if weights is None else weights[rows]
        return Block(mean_imputed(X, weights), weights)

    def initialize_at_scale(self, backend, random_state):
        """:meth:`initialize` where the rows stay in the backend (a cluster): k-means||,
        Lloyd and the initial statistics are passes over its blocks
        (:mod:`fastem.mixture.kmeans_parallel`); ``random`` responsibilities are drawn
        per global row, so the start does not depend on the partitioning. With missing
        values, from a uniform sample of the backend's rows (as in memory)."""
        if self.component.missing_values:
            return self.initialize(backend.initialization_block(), random_state)
        return self._initial_params(lambda: self._initial_stats_at_scale(backend, random_state))

    def _initial_params(self, initial_stats):
        """The parameters of a start from its statistics (a callable giving them): the
        M-step (scikit-learn's ``_initialize``: the posterior, under variational Bayes)."""
        stats = initial_stats()
        if self.weight_prior is not None:
            return self.posterior(stats)
        return self.params_from_stats(stats, None, total_weight=stats.weight)


class _NearestLabels(ModelBase):
    """A mixture's statistics with every row labelled by its nearest centre (the
    parameters): the k-means start as one pass over a backend."""

    def __init__(self, mixture):
        self.mixture = mixture
        self.layout = mixture.layout

    def shift(self, centres):
        return self.mixture.component.initial_shift(centres)

    def block_stats(self, centres, block, out):
        labels, _ = kmeans.nearest_center(block.X, centres)
        self.mixture._accumulate_labels(block, labels, out)


def _random_resp_stats(payload, block, offset):
    """Worker side: a block's statistics under uniform random responsibilities drawn per
    global row (the ``random`` start over a backend)."""
    mixture, seed, shift = payload
    stats = mixture.layout.zeros(shift)
    for lo in range(0, block.n_rows, _RANDOM_INIT_ROWS):
        hi = min(lo + _RANDOM_INIT_ROWS, block.n_rows)
        resp = row_uniforms(seed, offset + lo, hi - lo, mixture.n_components)
        resp /= resp.sum(axis=1)[:, None]
        mixture._accumulate_resp(block, resp, lo, stats)
    return stats.flat
