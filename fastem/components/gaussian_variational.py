"""Gaussian states under a Normal-Wishart posterior (variational Bayes; hmmlearn's
VariationalGaussianHMM emissions, as a component that knows no HMM).

The parameters are the posterior (:class:`NormalWishart`): per state a Normal over
the mean given the precision (``means``, ``beta``) and a Wishart over the precision
(``dof``, inverse ``scale``; one shared Wishart under a shared structure, the Wishart
of the diagonal matrices for diagonal ones). The lattice is the sub-normalised
E_q[log N(x; mu, L^-1)]: the Gaussian kernel with the posterior means, the
covariances ``scale / dof`` and per-state constants (the expected log-determinant
and the ``D / beta`` term); the M-step adds the statistics to the prior; the log
prior is -KL(q || p), so that a composite's objective is the lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._special import digamma, gammaln
from ..engine.packing import finite_values, positive_values
from ..kernels import gaussian as gk
from ..mixture import kmeans
from ..mixture.component import second_moments
from ..mixture.variational import checked_prior
from .gaussian_map import GaussianStates, MAPGaussian, regularised_cholesky
from .structures import per_matrix, scatter_about_new_means

POSTERIOR_FIELDS = ("means_prior", "means_posterior", "beta_prior", "beta_posterior",
                    "dof_prior", "dof_posterior", "scale_prior", "scale_posterior")


@dataclass
class NormalWishart:
    """Prior and posterior of the K states' Normal-Wishart (``scale`` is the Wishart's
    inverse scale, in the structure's covariance shape)."""

    means_prior: np.ndarray
    means_posterior: np.ndarray
    beta_prior: np.ndarray
    beta_posterior: np.ndarray
    dof_prior: np.ndarray
    dof_posterior: np.ndarray
    scale_prior: np.ndarray
    scale_posterior: np.ndarray

    def point_covariances(self):
        """scale / dof in the structure's covariance shape (the posterior's point value)."""
        dof = np.asarray(self.dof_posterior, dtype=np.float64)
        return self.scale_posterior / per_matrix(dof, self.scale_posterior)


def normal_wishart_rules(structure, n_components, n_features):
    """The checks of each prior and posterior array (shape and domain), shared with
    BayesianGaussianMixture's Normal-Wishart priors (see ``checked_prior``)."""
    k, d = n_components, n_features
    return {"means": dict(shape=(k, d)), "beta": dict(shape=(k,), positive=True),
            "dof": dict(shape=structure.matrices_shape(k), above=d - 1.0),
            "scale": dict(shape=structure.precisions_shape(k, d), scale_of=structure)}


def _wishart_log_normaliser(dof, scale):
    """log Z of a Wishart with inverse scale B (density prop. to |G|^((a-D-1)/2)
    exp(-tr(B G) / 2)), as in Ji, Krishnapuram & Carin (2006)."""
    d = scale.shape[0]
    _, log_det = np.linalg.slogdet(scale / 2.0)
    return (d * (d - 1) / 4.0 * np.log(np.pi) - dof / 2.0 * log_det
            + float(gammaln((dof - np.arange(d)) / 2.0).sum()))


def wishart_kl(dof_q, scale_q, dof_p, scale_p):
    """KL(Wishart(dof_q, B_q) || Wishart(dof_p, B_p)) for inverse scales B."""
    d = scale_q.shape[0]
    _, log_det = np.linalg.slogdet(scale_q / 2.0)
    expected_log_det = -log_det + float(digamma((dof_q - np.arange(d)) / 2.0).sum())
    return ((dof_q - dof_p) / 2.0 * expected_log_det - d * dof_q / 2.0
            + dof_q / 2.0 * np.trace(scale_p @ np.linalg.inv(scale_q))
            + _wishart_log_normaliser(dof_p, scale_p) - _wishart_log_normaliser(dof_q, scale_q))


def _raw_second_moments(post, first, second, shift):
    """sum g x x^T (or its diagonal) from moments about ``shift``."""
    if second.ndim == 2:
        return second + 2.0 * first * shift + post[:, None] * shift ** 2
    cross = np.einsum("ka,kb->kab", first, shift)
    return (second + cross + np.swapaxes(cross, 1, 2)
            + post[:, None, None] * np.einsum("ka,kb->kab", shift, shift))


def _outer(weights, vectors, ndim):
    if ndim == 2:
        return weights[:, None] * vectors ** 2
    return weights[:, None, None] * np.einsum("ka,kb->kab", vectors, vectors)


class VariationalGaussian(MAPGaussian):
    """K Gaussian states under a Normal-Wishart posterior (see the module docstring).

    Parameters
    ----------
    structure : covariance spec with a conjugate posterior
    n_components : int
    priors : dict
        The constructor's ``means``, ``beta``, ``dof`` and ``scale`` priors (a value or
        None: hmmlearn's default, the data's mean, 1, n_features and 1e-3 times the
        identity).
    update_means, update_covars : bool
        Which parts the M-step updates.
    min_covar : float
        Added to the diagonal of the data covariance that starts the scale.
    fixed : dict
        Checked prior and posterior arrays a start keeps (``means_*`` and ``beta_*``, or
        ``dof_*`` and ``scale_*``: those ``init_params`` leaves to the user).
    """

    variational = True
    missing_values = False

    def __init__(self, structure, n_components, priors, update_means=True,
                 update_covars=True, min_covar=1e-3, fixed=None):
        super().__init__(structure, n_components, update_means=update_means,
                         update_covars=update_covars, min_covar=min_covar)
        self.priors = dict(priors)
        self.fixed = dict(fixed or {})

    # -- one pass -----------------------------------------------------------------------
    def shift(self, params):
        return np.ascontiguousarray(params.means_posterior, dtype=np.float64)

    def prepare(self, params, constants=None):
        """Posterior means, covariances scale / dof (as the kernel reads them) and the
        per-state constants that turn log N(x; m, scale / dof) into E[log N(x; mu, L^-1)]
        without the -D/2 log 2 pi term (hmmlearn's sub-normalised table)."""
        k = self.n_components
        d = params.means_posterior.shape[1]
        spec = self.structure
        covars, chol = regularised_cholesky(spec, params.point_covariances())
        nu = np.broadcast_to(np.asarray(params.dof_posterior, dtype=np.float64), (k,))
        # 1/2 (sum psi((nu - i)/2) + D log 2 + log det W) - D / (2 beta), W = scale^-1, and
        # minus the Gaussian normaliser of N(m, scale / nu) that the kernel adds.
        log_det_covars = -spec.log_det(chol, k, d) * 2.0  # log det(scale / nu)
        log_det_w = -(log_det_covars + d * np.log(nu))
        expected = 0.5 * (digamma(0.5 * (nu[:, None] - np.arange(d))).sum(axis=1)
                          + d * np.log(2.0) + log_det_w)
        constants = (expected - 0.5 * d / params.beta_posterior
                     + 0.5 * d * gk.LOG_2PI + 0.5 * log_det_covars)
        point = GaussianStates(np.ascontiguousarray(params.means_posterior), covars)
        return super().prepare(point, constants)

    def m_step(self, stats, params):
        new = dict(vars(params))
        shift = stats.shift
        post, first, second = stats["mass"], stats["first"], second_moments(stats)
        beta, means = params.beta_posterior, params.means_posterior
        if self.update_means:
            beta = params.beta_prior + post
            observed = first + post[:, None] * shift
            means = (params.beta_prior[:, None] * params.means_prior + observed) \
                / beta[:, None]
            new.update(beta_posterior=beta, means_posterior=means)
        if self.update_covars:
            spec = self.structure
            dof = params.dof_prior + spec.pooled(post)
            # Scatter about the data means plus the shrinkage to the prior mean: hmmlearn's
            # raw-moment formula rearranged, without its cancellation.
            nk = np.where(post > 0, post, 1.0)
            centre = shift + first / nk[:, None]
            scatter = scatter_about_new_means(post, first, second, centre - shift)
            if self.update_means:
                pull = params.beta_prior * post / beta
                offset = centre - params.means_prior
                if second.ndim == 2:  # diagonal statistics
                    spread = scatter + pull[:, None] * offset ** 2
                else:
                    spread = scatter + pull[:, None, None] * np.einsum("ka,kb->kab", offset,
                                                                       offset)
            else:  # the means stay: hmmlearn's formula as it is
                raw = _raw_second_moments(post, first, second, shift)
                prior_outer = _outer(params.beta_prior, params.means_prior, second.ndim)
                spread = raw + prior_outer - _outer(beta, means, second.ndim)
            scale = params.scale_prior + spec.collect(spread)
            new.update(dof_posterior=dof, scale_posterior=np.asarray(scale, dtype=np.float64))
        return NormalWishart(**new)

    def checked(self, params):
        # What the next pass reads must exist (a positive definite scale / dof, as it
        # jitters it), and be finite.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            prepared = self.prepare(params)
        super().checked(GaussianStates(prepared.flat.means, prepared.flat.covariances))
        return params

    def log_prior(self, params):
        return -self.kl_divergence(params)

    def kl_divergence(self, posterior):
        """hmmlearn's emission terms: the KL of each state's Normal given the posterior's
        expected precision, and of its Wishart (once when shared)."""
        k = self.n_components
        d = posterior.means_posterior.shape[1]
        spec = self.structure
        scale_q = np.array(spec.to_full(posterior.scale_posterior, k, d), dtype=np.float64)
        scale_p = np.array(spec.to_full(posterior.scale_prior, k, d), dtype=np.float64)
        dof_q = np.broadcast_to(np.asarray(posterior.dof_posterior, dtype=np.float64), (k,))
        dof_p = np.broadcast_to(np.asarray(posterior.dof_prior, dtype=np.float64), (k,))
        beta_q, beta_p = posterior.beta_posterior, posterior.beta_prior
        kl = 0.0
        for state in range(k):
            try:
                precision = np.linalg.inv(scale_q[state]) * dof_q[state]
                diff = posterior.means_posterior[state] - posterior.means_prior[state]
                ratio = beta_q[state] / beta_p[state]
                kl += 0.5 * (d * np.log(ratio) + d / ratio
                             + beta_p[state] * diff @ precision @ diff - d)
                if not spec.shared or state == 0:  # (one Wishart when shared)
                    kl += wishart_kl(dof_q[state], scale_q[state], dof_p[state],
                                     scale_p[state])
            except np.linalg.LinAlgError:
                raise ValueError(
                    f"The posterior scale of state {state} is singular: its moments "
                    "overflowed (values beyond float64's range). Scale the data (e.g. "
                    "standardise each column).") from None
        return float(kl)

    # -- start ----------------------------------------------------------------------------
    def _prior(self, stem, n_features, default):
        """A constructor prior (or its default), checked, in its full shape."""
        value = self.priors.get(stem)
        rules = normal_wishart_rules(self.structure, self.n_components, n_features)[stem]
        return checked_prior(default if value is None else value, stem + "_prior",
                             broadcast=True, **rules)

    def initialize(self, X, posteriors, random_state):
        k, d = self.n_components, X.shape[1]
        spec = self.structure
        params = dict(self.fixed)
        need_means = "means_posterior" not in self.fixed
        need_covars = "scale_posterior" not in self.fixed
        if need_means or need_covars:
            means, labels = kmeans.best_of_restarts(kmeans.sample_rows(X, random_state), k,
                                                    random_state)
            if labels.shape[0] != X.shape[0]:
                labels, _ = kmeans.nearest_center(X, means)
            counts = np.bincount(labels, minlength=k).astype(np.float64)
        if need_means:
            params["means_prior"] = self._prior("means", d, np.mean(X, axis=0))
            params["means_posterior"] = np.ascontiguousarray(means, dtype=np.float64)
            params["beta_prior"] = self._prior("beta", d, 1.0)
            # hmmlearn's counts, raised to the prior as the posterior of any data is (a
            # k-means cluster may be empty).
            params["beta_posterior"] = np.maximum(counts, params["beta_prior"])
        if need_covars:
            params["dof_prior"] = self._prior("dof", d, float(d))
            # hmmlearn's counts, raised to the prior: a cluster of fewer than D points (an
            # outlier's) gave dof <= D - 1, outside the Wishart's domain.
            params["dof_posterior"] = np.maximum(spec.pooled(counts), params["dof_prior"])
            cov = kmeans.data_covariance(X) + self.min_covar * np.eye(d)
            covars = spec.from_full(cov, k)
            scale = covars * per_matrix(params["dof_posterior"], covars)
            params["scale_prior"] = self._prior("scale", d, spec.scaled_identity(1e-3, k, d))
            params["scale_posterior"] = np.array(scale, dtype=np.float64)
        return NormalWishart(**{name: params[name] for name in POSTERIOR_FIELDS})

    # -- parameters -----------------------------------------------------------------------
    # The Normal-Wishart posterior's parameters are extrapolated as they are (SQUAREM); a
    # point outside their domain is refused, and the schedule falls back to the plain step.
    def pack(self, params):
        return np.concatenate([np.ravel(getattr(params, name)) for name in (
            "means_posterior", "beta_posterior", "dof_posterior", "scale_posterior")])

    def unpack(self, vector, like):
        k, d = like.means_posterior.shape
        n_dof = np.size(like.dof_posterior)
        means, beta = vector[:k * d], vector[k * d:k * d + k]
        dof, scale = vector[k * d + k:k * d + k + n_dof], vector[k * d + k + n_dof:]
        dof = finite_values(dof, np.shape(like.dof_posterior), "degrees of freedom")
        if not np.all(dof > d - 1.0):
            raise ValueError("degrees of freedom are not above n_features - 1")
        scale, _ = self.structure.checked_covariances(scale, k, d)  # positive definite
        new = dict(vars(like))
        new.update(means_posterior=finite_values(means, (k, d), "means"),
                   beta_posterior=positive_values(beta, (k,), "mean precisions"),
                   dof_posterior=dof, scale_posterior=scale)
        posterior = NormalWishart(**new)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.prepare(posterior)  # (what the pass would read exists, or ValueError)
        return posterior

    def sample(self, params, state, n_samples, random_state):
        return super().sample(GaussianStates(params.means_posterior, params.point_covariances()),
                              state, n_samples, random_state)

