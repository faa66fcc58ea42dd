"""Covariance structures of a Gaussian: everything that depends on the covariance type.

A structure is chosen once (by its name, through :func:`get`) and then asked: the
public shapes, how the kernels see its precision factors, log-determinants, the
maximum-likelihood covariance from the scatter, the MAP covariance under the priors of
GaussianHMM and GMMHMM (hmmlearn's rules), the Wishart terms of the variational
posteriors, prior shapes, initial values, conversion to full matrices, parameter counts
and sampling. No code outside this module branches on a covariance type name.

A structure is a *form* (full matrices, diagonals, one variance) and a *sharing scope*:

* per component (``full``, ``diag``, ``spherical``): one matrix for each component;
* all components (``tied``, ``EEI``): one matrix shared by every component, the form's
  statistics pooled over the components (:class:`Shared`);
* per group (GMMHMM's states): one matrix for each group of consecutive components
  (:meth:`Structure.within_groups` of a shared structure gives it: the M mixture
  components of each state share their state's matrix).

Adding a structure is one entry of :data:`STRUCTURES` (see :func:`register`): EEI,
mclust's diagonal covariance shared by all components, is ``Shared(DIAG, "EEI")``.

Public shapes follow scikit-learn: ``precisions_cholesky_`` holds upper triangular U
with precision = U U^T (full: (K, D, D); tied: (D, D)), or 1/sigma (diag: (K, D); EEI:
(D,); spherical: (K,)).
"""

from __future__ import annotations

import numpy as np

from .. import _validation as v

# sklearn adds this to every component's mass so that an empty component
# cannot divide by zero; kept identical for parity.
MASS_EPS = 10 * np.finfo(np.float64).eps


# A variance computed as (second moment) - (mean)^2 carries a cancellation error of
# a few ulps of the second moment it came from, and no spread below one ulp of the
# mean can be told from zero in the data. Below those levels the value is round-off
# (a component on one point computes 0 exactly, or +-1e-16 by luck), so it is raised
# to them: no fit whose variances mean anything changes. A maximum-likelihood fit
# with reg_covar=0 whose component reaches that level has collapsed onto coincident
# points (its likelihood grows without bound), which is the degenerate-component
# error whatever the start (scikit-learn raises or survives by the luck of its
# round-off); a posterior (variational) M-step, regularised by its prior, keeps the
# floored value.
_EPS = np.finfo(np.float64).eps
ROUNDOFF_VARIANCE = 64 * _EPS


def _variance_floor(raw_second, mass, means):
    """The round-off level of variances computed from ``raw_second / mass``, the second
    moment about the shift, for components of mean ``means`` (all broadcast together)."""
    return np.maximum(ROUNDOFF_VARIANCE * raw_second / mass, (_EPS * means) ** 2)


def _check_collapse(variances, floor, collapse, reg_covar, components):
    """With ``collapse="raise"`` and no ``reg_covar``, a variance at its round-off level
    is the degenerate-component ValueError of the first such entry of ``components``
    (indexed by the leading axis of ``variances``; None for a shared covariance)."""
    if collapse == "raise" and reg_covar == 0.0:
        collapsed = np.reshape(variances <= floor, (len(components), -1)).any(axis=1)
        if collapsed.any():
            raise degenerate_error(components[int(np.argmax(collapsed))], reg_covar,
                                   " (its variance is zero to round-off: the points it holds "
                                   "coincide)")


def _floor_variances(variances, raw_second, mass, means, collapse, reg_covar, components):
    """``variances`` raised to the round-off level of their computation, after
    :func:`_check_collapse`."""
    floor = _variance_floor(raw_second, mass, means)
    _check_collapse(variances, floor, collapse, reg_covar, components)
    return np.maximum(variances, floor)


def degenerate_error(component, reg_covar, detail=""):
    """The ValueError of a component (None: the shared covariance) whose covariance is
    ill-defined, with the remedies."""
    where = "the shared (tied) covariance" if component is None else f"component {component}"
    return ValueError(
        "Fitting the mixture model failed because "
        f"{where} has an ill-defined covariance{detail} (for instance caused by singleton or "
        "collapsed samples). Try to decrease the number of components, increase reg_covar "
        f"(currently {reg_covar!r}), or scale the input data."
    )


def lower_cholesky(covariances, reg_covar, components=None, where=""):
    """Lower Cholesky factors of a stack of covariances, or the degenerate-component
    ValueError naming the first of ``components`` (default: their positions) whose
    covariance is not finite or not positive definite; ``where`` says which covariance
    of the component it is (e.g. " in the Gaussian gate")."""
    components = range(len(covariances)) if components is None else components
    finite = np.isfinite(covariances).reshape(len(covariances), -1).all(axis=1)
    if not finite.all():
        raise degenerate_error(components[int(np.argmin(finite))], reg_covar,
                               f"{where} (non-finite entries)")
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        for index, matrix in zip(components, covariances, strict=True):
            try:
                np.linalg.cholesky(matrix)
            except np.linalg.LinAlgError:
                raise degenerate_error(index, reg_covar,
                                       f"{where} (it is not positive definite)") from None
        raise


def _flip(a):
    return a[..., ::-1, ::-1]


def scatter_about_new_means(N, S, Q, delta):
    """Second moments about the new means from moments about the shift.

    With delta = new mean - shift: Q - delta S^T - S delta^T + N delta delta^T (only
    the diagonals when ``Q`` holds them).
    """
    if Q.ndim == 2:  # diagonals only
        return Q - 2.0 * delta * S + N[:, None] * delta * delta
    outer_ds = delta[:, :, None] * S[:, None, :]
    return (Q - outer_ds - np.swapaxes(outer_ds, 1, 2)
            + N[:, None, None] * delta[:, :, None] * delta[:, None, :])


_scatter_about_new_means = scatter_about_new_means  # (the name of the previous release)


def per_matrix(values, like):
    """``values`` with one entry per matrix of ``like`` (a scalar for a shared one),
    shaped to broadcast against ``like``'s entries."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(values.shape + (1,) * (np.ndim(like) - values.ndim))


class Structure:
    """A covariance structure (see the module docstring).

    Attributes
    ----------
    name : str
        The ``covariance_type`` that selects it.
    diagonal : bool
        The kernels accumulate only the diagonals of the second moments.
    shared : bool
        One matrix serves several components (all of them, or each group).
    variational : bool
        The conjugate (Normal-Wishart) posterior of the variational models exists.
    """

    name = ""
    diagonal = False
    shared = False
    variational = True

    # -- shapes ---------------------------------------------------------------------
    def precisions_shape(self, n_components, n_features):
        """Shape of ``covariances_`` and ``precisions_cholesky_`` for K components."""
        raise NotImplementedError

    def matrices_shape(self, n_components):
        """Shape of one value per covariance matrix (e.g. Wishart degrees of freedom):
        (K,), or () for one shared matrix."""
        return () if self.shared else (n_components,)

    def pooled(self, per_component):
        """Per-component values (K,) summed per matrix (the total for a shared one)."""
        return per_component.sum() if self.shared else per_component

    def group_shape(self, n_groups, group_size, n_features):
        """GMMHMM's public ``covars_`` shape for ``n_groups`` states of ``group_size``
        mixture components (structure of :meth:`within_groups`)."""
        return (n_groups, group_size) + self.precisions_shape(1, n_features)[1:]

    def within_groups(self, group_size):
        """The structure over groups of ``group_size`` consecutive components (GMMHMM's
        states): a shared structure is shared within each group, the others are
        unchanged."""
        return self

    # -- kernels --------------------------------------------------------------------
    def kernel_factor(self, prec_chol, n_components, n_features):
        """Precision factors as the kernels read them: (Kc, D, D) or (Kc, 1, D), Kc = 1
        for one factor read by every component."""
        raise NotImplementedError

    def log_det(self, prec_chol, n_components, n_features):
        """(K,) log-determinant of each component's precision Cholesky factor."""
        raise NotImplementedError

    # -- factors ----------------------------------------------------------------------
    def checked_covariances(self, vector, n_components, n_features):
        """(covariances, precision factors) from a packed vector of covariances in this
        structure's shape; ValueError when they are not positive definite (SQUAREM's
        extrapolations may leave the cone)."""
        shape = self.precisions_shape(n_components, n_features)
        covariances = np.array(np.reshape(vector, shape), dtype=np.float64)
        if not self.diagonal:
            covariances = 0.5 * (covariances + np.swapaxes(covariances, -1, -2))
        return covariances, self.precisions_cholesky(covariances, 0.0)

    def precisions_cholesky(self, covariances, reg_covar):
        """Precision factors of ``covariances`` (scikit-learn's ``precisions_cholesky_``),
        or the degenerate-component ValueError naming the component."""
        raise NotImplementedError

    def cholesky_from_precisions(self, precisions):
        """Precision factors from precision matrices (or precisions)."""
        raise NotImplementedError

    def covariances_from_cholesky(self, prec_chol):
        """Covariances from precision factors."""
        raise NotImplementedError

    def precisions(self, prec_chol):
        """Precisions (scikit-learn's ``precisions_``) from their factors."""
        raise NotImplementedError

    def check_precisions(self, precisions):
        """ValueError unless user-given precisions (``precisions_init``) are valid."""
        raise NotImplementedError

    # -- maximum likelihood and MAP ---------------------------------------------------
    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise"):
        """Maximum-likelihood covariances plus ``reg_covar`` from the masses ``N`` (and
        guarded ``nk``), the moments ``S``, ``Q`` about ``shift`` (Q: (K, D, D), or the
        (K, D) diagonals of a diagonal structure) and the step ``delta`` to the new
        means. A variance at its round-off level is the degenerate-component error with
        ``collapse="raise"`` and no ``reg_covar``, else floored there."""
        raise NotImplementedError

    def hmm_prior_shapes(self, n_components, n_features):
        """GaussianHMM's ((``covars_prior`` shape, its lower bound or None),
        ``covars_weight`` shape)."""
        raise NotImplementedError

    def hmm_map(self, scatter, meandiff, means_weight, post, prior, weight, n_features):
        """GaussianHMM's MAP covariances (hmmlearn's rule for the form, the statistics
        pooled when shared) from the scatter about the new means (K, ...), the offsets
        of the new means from ``means_prior`` and the states' masses (K,)."""
        raise NotImplementedError

    def gmm_prior_shapes(self, k, m, d):
        """GMMHMM's (``covars_prior`` shape, ``covars_weight`` shape) for K states of M
        components (a structure of :meth:`within_groups`)."""
        raise NotImplementedError

    def gmm_default_priors(self, m, d):
        """GMMHMM's (covars_prior, covars_weight) for None: maximum likelihood."""
        raise NotImplementedError

    def gmm_map(self, lam, centred, scatter, post_mix, post, prior, weight):
        """GMMHMM's MAP covariances (hmmlearn's inverse-Wishart / inverse-gamma rules)."""
        raise NotImplementedError

    # -- variational terms ------------------------------------------------------------
    def wishart_posterior(self, prior, nk, sk, diff, shrink, beta):
        """BayesianGaussianMixture's (degrees of freedom, covariances W^-1 / nu) from the
        masses, the ML covariances ``sk``, the offsets of the data means from the prior
        mean and ``shrink`` = beta_0 / beta (scikit-learn's rules); only with
        :attr:`variational`."""
        raise NotImplementedError

    def trace_precision_scatter(self, prec_chol, second):
        """(K,) tr(P_k Q_k) of the precisions and each component's second moments."""
        raise NotImplementedError

    def sample(self, rng, means, covariances, counts):
        """``counts[k]`` rows drawn from each component (a list of arrays)."""
        raise NotImplementedError

    # -- conversions ------------------------------------------------------------------
    def to_full(self, covariances, n_components, n_features):
        """(K, D, D) covariance matrices from this structure's shape."""
        raise NotImplementedError

    def one_full(self, covariances, component, n_features):
        """The (D, D) covariance matrix of one component."""
        raise NotImplementedError

    def from_full(self, covariance, n_components):
        """Initial covariances in this structure's shape from one (D, D) matrix (e.g. the
        data's covariance, as GaussianHMM and GMMHMM start): the matrix, its diagonal or
        its mean variance, for every matrix."""
        raise NotImplementedError

    def single_from_full(self, covariance):
        """One matrix of this structure (one component's, or the shared one) from a
        (D, D) matrix: BayesianGaussianMixture's default covariance prior."""
        raise NotImplementedError

    def scaled_identity(self, value, n_components, n_features):
        """``value`` times the identity in this structure's shape (a Wishart prior)."""
        raise NotImplementedError

    def collect(self, scatter):
        """Per-component second moments in the kernels' shape ((K, D, D), or (K, D) for
        a diagonal structure) reduced to this structure's shape (pooled over the
        components for a shared matrix, averaged over the features for one variance)."""
        raise NotImplementedError

    def n_covariance_parameters(self, n_components, n_features):
        """Free covariance parameters of K components (for BIC/AIC)."""
        raise NotImplementedError

    def squeezed(self, covariances, n_components=None):
        """``covariances`` in this structure's shape where hmmlearn accepts another one
        (``covars_`` of one variance per state as (K, 1) or (K, 1, 1)); unchanged
        otherwise."""
        return covariances


class _Form(Structure):
    """A form with one matrix per component; its ``pooled`` arguments give the variant of
    a :class:`Shared` structure of this form (statistics pooled over the components)."""

    def within_groups(self, group_size):
        return self

    # Shared variants (pooled=True) a form does not offer raise this: its shared
    # structure is not registered.
    @staticmethod
    def _no_pooled(what):
        raise NotImplementedError(f"no shared variant of {what}")


class _Triangular(_Form):
    def _cholesky_of_covariances(self, covariances, reg_covar, components):
        lower = lower_cholesky(covariances, reg_covar, components)
        eye = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
        return np.swapaxes(np.linalg.solve(lower, eye), -1, -2)

    @staticmethod
    def _check_spd(matrix, name):
        if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0.0)):
            raise ValueError(f"'{name}' should be symmetric, positive-definite")


class Full(_Triangular):
    """One full covariance matrix per component (scikit-learn's ``"full"``)."""

    name = "full"

    def precisions_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(prec_chol, dtype=np.float64)

    def log_det(self, prec_chol, n_components, n_features):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise",
                    pooled=False):
        """Maximum-likelihood covariances (plus ``reg_covar``) from the moments ``S``,
        ``Q`` about ``shift`` and the step ``delta`` to the new means."""
        scatter = scatter_about_new_means(N, S, Q, delta)
        if pooled:
            cov = scatter.sum(axis=0) / nk.sum()
            cov = 0.5 * (cov + cov.T)
            diagonal = np.einsum("ii->i", cov)
            diagonal[...] = _floor_variances(diagonal, np.einsum("kii->i", Q), nk.sum(),
                                             np.abs(shift + delta).max(axis=0), collapse,
                                             reg_covar, [None])
            cov += reg_covar * np.eye(cov.shape[0])
            return cov
        cov = scatter / nk[:, None, None]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        diagonal = np.einsum("kii->ki", cov)
        diagonal[...] = _floor_variances(diagonal, np.einsum("kii->ki", Q), nk[:, None],
                                         shift + delta, collapse, reg_covar, range(len(nk)))
        cov += reg_covar * np.eye(cov.shape[1])
        return cov

    def precisions_cholesky(self, covariances, reg_covar):
        return self._cholesky_of_covariances(covariances, reg_covar, list(range(len(covariances))))

    def cholesky_from_precisions(self, precisions):
        return _flip(np.linalg.cholesky(_flip(precisions)))

    def covariances_from_cholesky(self, prec_chol):
        inverse = np.linalg.inv(prec_chol)  # cov = (U U^T)^-1 = U^-T U^-1
        return np.swapaxes(inverse, -1, -2) @ inverse

    def precisions(self, prec_chol):
        return prec_chol @ np.swapaxes(prec_chol, -1, -2)

    def check_precisions(self, precisions, label="full precision"):
        for matrix in precisions:
            self._check_spd(matrix, label)

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) / 2.0

    def sample(self, rng, means, covariances, counts):
        return [rng.multivariate_normal(m, c, int(n))
                for m, c, n in zip(means, covariances, counts, strict=True)]

    # -- conversions ------------------------------------------------------------------
    def to_full(self, covariances, n_components, n_features):
        return np.asarray(covariances)

    def one_full(self, covariances, component, n_features):
        return np.asarray(covariances)[component]

    def from_full(self, covariance, n_components):
        return np.repeat(covariance[None], n_components, axis=0)

    def single_from_full(self, covariance):
        return covariance

    def scaled_identity(self, value, n_components, n_features):
        return np.broadcast_to(value * np.eye(n_features),
                               (n_components, n_features, n_features))

    def collect(self, scatter, pooled=False):
        return scatter.sum(axis=0) if pooled else scatter

    # -- GaussianHMM's MAP covariances (hmmlearn's covars_prior / covars_weight) ---------
    def hmm_prior_shapes(self, n_components, n_features):
        """((covars_prior shape, its lower bound or None), covars_weight shape)."""
        k, d = n_components, n_features
        return ((k, d, d), None), (k, 1, 1)

    def hmm_map(self, scatter, meandiff, means_weight, post, prior, weight, n_features,
                pooled=False):
        """hmmlearn's MAP covariances from the scatter about the new means, the means'
        offsets from their prior and the per-state masses."""
        c_n = means_weight * meandiff[:, :, None] * meandiff[:, None, :] + scatter
        weight = np.maximum(weight - n_features, 0)
        if pooled:
            return (prior + c_n.sum(axis=0)) / (weight + post.sum())
        return (prior + c_n) / (weight + post[:, None, None])

    # -- GMMHMM's MAP covariances (hmmlearn's inverse-Wishart priors) -------------------
    def gmm_prior_shapes(self, k, m, d, pooled=False):
        """(covars_prior shape, covars_weight shape) of K states of M components."""
        if pooled:
            return (k, d, d), (k,)
        return (k, m, d, d), (k, m)

    def gmm_default_priors(self, m, d, pooled=False):
        """hmmlearn's (covars_prior, covars_weight) for None: the update is then
        maximum likelihood."""
        return (0.0, -(m + d + 1.0)) if pooled else (0.0, -(1.0 + d + 1.0))

    def gmm_map(self, lam, centred, scatter, post_mix, post, prior, weight, pooled=False):
        """hmmlearn's MAP covariances of GMMHMM's components (or states, pooled) from
        the means' weights ``lam`` (K, M), their offsets from the prior ``centred``
        (K, M, D), the scatter about the new means (K*M, ...) and the masses."""
        # hmmlearn's denominators, with the prior terms added first: with its default
        # priors they cancel to 0, and (mass + 1) - 1 lost a mass below 1e-16 (a
        # component nearly without data got 0 / 0, then NaN covariances).
        k, m, d = centred.shape
        if pooled:
            psi = np.broadcast_to(np.asarray(prior, dtype=np.float64), (k, d, d))
            nu = np.broadcast_to(np.asarray(weight, dtype=np.float64), (k,))
            c_n = (np.einsum("ij,ijkl->ikl", lam, centred[..., :, None] * centred[..., None, :])
                   + np.swapaxes(psi, 1, 2) + scatter.reshape(k, m, d, d).sum(axis=1))
            return c_n / (post + (m + nu + d + 1))[:, None, None]
        psi = np.broadcast_to(np.asarray(prior, dtype=np.float64), (k, m, d, d))
        nu = np.broadcast_to(np.asarray(weight, dtype=np.float64), (k, m))
        c_n = (np.swapaxes(psi, 2, 3) + lam[:, :, None, None]
               * centred[..., :, None] * centred[..., None, :]
               + scatter.reshape(k, m, d, d))
        return c_n / (post_mix + (1 + nu + d + 1))[:, :, None, None]

    # -- the variational mixture's Wishart posterior (scikit-learn's) --------------------
    def wishart_posterior(self, prior, nk, sk, diff, shrink, beta, pooled=False):
        """(degrees of freedom, covariances W^-1 / nu) of BayesianGaussianMixture's
        posterior from the masses ``nk``, the ML covariances ``sk``, the offsets
        ``diff`` of the data means from the prior mean and ``shrink`` = beta_0 / beta."""
        if pooled:
            k = len(nk)
            nu = prior.degrees_of_freedom + nk.sum() / k
            covariances = (prior.covariance + sk * nk.sum() / k
                           + prior.mean_precision / k * ((nk / beta) * diff.T) @ diff)
            return nu, covariances / nu
        nu = prior.degrees_of_freedom + nk
        covariances = (prior.covariance + nk[:, None, None] * sk
                       + (nk * shrink)[:, None, None] * np.einsum("ka,kb->kab", diff, diff))
        return nu, covariances / nu[:, None, None]

    def trace_precision_scatter(self, prec_chol, second, pooled=False):
        """(K,) tr(P_k Q_k) of the precisions and each component's second moments."""
        if pooled:
            return np.einsum("ab,kab->k", prec_chol @ prec_chol.T, second)
        return np.einsum("kab,kab->k", prec_chol @ np.swapaxes(prec_chol, 1, 2), second)


class _Diagonal(_Form):
    diagonal = True

    def precisions_cholesky(self, covariances, reg_covar):
        bad = ~(np.isfinite(covariances) & (covariances > 0.0))
        if np.any(bad):
            component = int(np.argmax(bad.reshape(len(covariances), -1).any(axis=1)))
            raise degenerate_error(component, reg_covar, " (a variance is zero or negative)")
        return 1.0 / np.sqrt(covariances)

    def cholesky_from_precisions(self, precisions):
        return np.sqrt(precisions)

    def covariances_from_cholesky(self, prec_chol):
        return 1.0 / prec_chol**2

    def precisions(self, prec_chol):
        return prec_chol**2

    def check_precisions(self, precisions, label=None):
        if np.any(precisions <= 0.0):
            raise ValueError(f"'{label or self.name + ' precision'}' should be positive")

    def sample(self, rng, means, covariances, counts):
        return [m + rng.standard_normal(size=(int(n), means.shape[1])) * np.sqrt(c)
                for m, c, n in zip(means, covariances, counts, strict=True)]


class Diag(_Diagonal):
    """One diagonal covariance per component (scikit-learn's ``"diag"``)."""

    name = "diag"

    def precisions_shape(self, n_components, n_features):
        return (n_components, n_features)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(prec_chol[:, None, :], dtype=np.float64)

    def log_det(self, prec_chol, n_components, n_features):
        return np.log(prec_chol).sum(axis=1)

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise",
                    pooled=False):
        scatter = scatter_about_new_means(N, S, Q, delta)
        if pooled:
            variances = scatter.sum(axis=0) / nk.sum()
            return _floor_variances(variances, Q.sum(axis=0), nk.sum(),
                                    np.abs(shift + delta).max(axis=0), collapse, reg_covar,
                                    [None]) + reg_covar
        variances = scatter / nk[:, None]
        return _floor_variances(variances, Q, nk[:, None], shift + delta, collapse, reg_covar,
                                range(len(nk))) + reg_covar

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features

    # -- conversions ------------------------------------------------------------------
    def to_full(self, covariances, n_components, n_features):
        return np.einsum("kd,de->kde", covariances, np.eye(n_features))

    def one_full(self, covariances, component, n_features):
        return np.diag(covariances[component])

    def from_full(self, covariance, n_components):
        return np.tile(np.diag(covariance), (n_components, 1))

    def single_from_full(self, covariance):
        return np.diag(covariance).copy()

    def scaled_identity(self, value, n_components, n_features):
        return np.full((n_components, n_features), value)

    def collect(self, scatter, pooled=False):
        if pooled:
            self._no_pooled("the diagonal Wishart posterior")
        return scatter

    # -- GaussianHMM's MAP covariances ----------------------------------------------------
    def hmm_prior_shapes(self, n_components, n_features):
        k, d = n_components, n_features
        return ((k, d), 0.0), (k, d)

    def hmm_map(self, scatter, meandiff, means_weight, post, prior, weight, n_features,
                pooled=False):
        c_n = means_weight * meandiff**2 + scatter
        if pooled:
            c_n, denom = c_n.sum(axis=0), post.sum()
        else:
            denom = post[:, None]
        c_d = np.maximum(weight - 1, 0) + denom
        return (prior + c_n) / np.maximum(c_d, 1e-5)

    # -- GMMHMM's MAP covariances (inverse-gamma priors on each variance) --------------
    def gmm_prior_shapes(self, k, m, d, pooled=False):
        shape = (k, d) if pooled else (k, m, d)
        return shape, shape

    def gmm_default_priors(self, m, d, pooled=False):
        # alpha such that the denominator's prior term, group + 2 (alpha + 1), is 0.
        return (-(m + 2.0) / 2.0, 0.0) if pooled else (-1.5, 0.0)

    def gmm_map(self, lam, centred, scatter, post_mix, post, prior, weight, pooled=False):
        k, m, d = centred.shape
        if pooled:  # one variance per feature for the M components of each state
            alpha = np.broadcast_to(np.asarray(prior, dtype=np.float64), (k, d))
            beta = np.broadcast_to(np.asarray(weight, dtype=np.float64), (k, d))
            c_n = ((lam[:, :, None] * centred**2).sum(axis=1) + 2 * beta
                   + scatter.reshape(k, m, d).sum(axis=1))
            return c_n / (post[:, None] + (m + 2 * (alpha + 1)))
        alpha = np.broadcast_to(np.asarray(prior, dtype=np.float64), (k, m, d))
        beta = np.broadcast_to(np.asarray(weight, dtype=np.float64), (k, m, d))
        c_n = lam[:, :, None] * centred**2 + 2 * beta + scatter.reshape(k, m, d)
        return c_n / (post_mix[:, :, None] + (1 + 2 * (alpha + 1)))

    # -- the variational mixture ----------------------------------------------------------
    def wishart_posterior(self, prior, nk, sk, diff, shrink, beta, pooled=False):
        if pooled:
            self._no_pooled("the diagonal Wishart posterior")
        nu = prior.degrees_of_freedom + nk
        covariances = (prior.covariance + nk[:, None] * (sk + shrink[:, None] * diff ** 2))
        return nu, covariances / nu[:, None]

    def trace_precision_scatter(self, prec_chol, second, pooled=False):
        if pooled:
            self._no_pooled("the diagonal Wishart posterior")
        return np.einsum("kd,kd->k", prec_chol ** 2, second)


class Spherical(_Diagonal):
    """One variance per component (scikit-learn's ``"spherical"``)."""

    name = "spherical"

    def precisions_shape(self, n_components, n_features):
        return (n_components,)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(
            np.repeat(np.asarray(prec_chol, dtype=np.float64)[:, None, None], n_features, axis=2))

    def log_det(self, prec_chol, n_components, n_features):
        return n_features * np.log(prec_chol)

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise",
                    pooled=False):
        if pooled:
            self._no_pooled("one variance")
        # One variance per component: it has collapsed only when the average has (a
        # constant column beside others that vary is no collapse).
        variances = scatter_about_new_means(N, S, Q, delta) / nk[:, None]
        floor = _variance_floor(Q, nk[:, None], shift + delta)
        averaged = np.maximum(variances, floor).mean(axis=1)
        _check_collapse(averaged, floor.mean(axis=1), collapse, reg_covar, range(len(nk)))
        return averaged + reg_covar

    def n_covariance_parameters(self, n_components, n_features):
        return n_components

    def squeezed(self, covariances, n_components=None):
        covariances = np.asarray(covariances)
        if n_components is not None and covariances.size == n_components:
            return np.reshape(covariances, n_components)  # (K,), (K, 1), (K, 1, 1), ...
        if n_components is None and covariances.ndim > 1 \
                and covariances.size == covariances.shape[0]:
            return covariances.reshape(covariances.shape[0])
        return covariances

    # -- conversions ------------------------------------------------------------------
    def to_full(self, covariances, n_components, n_features):
        return np.asarray(covariances)[:, None, None] * np.eye(n_features)

    def one_full(self, covariances, component, n_features):
        return covariances[component] * np.eye(n_features)

    def from_full(self, covariance, n_components):
        return np.full(n_components, np.diag(covariance).mean())

    def single_from_full(self, covariance):
        return float(np.diag(covariance).mean())

    def scaled_identity(self, value, n_components, n_features):
        return np.full(n_components, value)

    def collect(self, scatter, pooled=False):
        if pooled:
            self._no_pooled("one variance")
        return scatter.mean(axis=1)

    # -- GaussianHMM's MAP covariances ----------------------------------------------------
    def hmm_prior_shapes(self, n_components, n_features):
        k, d = n_components, n_features
        return ((k, d), 0.0), (k, d)

    def hmm_map(self, scatter, meandiff, means_weight, post, prior, weight, n_features,
                pooled=False):
        if pooled:
            self._no_pooled("one variance")
        return DIAG.hmm_map(scatter, meandiff, means_weight, post, prior, weight,
                            n_features).mean(axis=1)

    # -- GMMHMM's MAP covariances ---------------------------------------------------------
    def gmm_prior_shapes(self, k, m, d, pooled=False):
        if pooled:
            self._no_pooled("one variance")
        return (k, m), (k, m)

    def gmm_default_priors(self, m, d, pooled=False):
        return (-(m + 2.0) / 2.0, 0.0)  # hmmlearn's (with n_mix, as it is there)

    def gmm_map(self, lam, centred, scatter, post_mix, post, prior, weight, pooled=False):
        if pooled:
            self._no_pooled("one variance")
        k, m, d = centred.shape
        alpha = np.broadcast_to(np.asarray(prior, dtype=np.float64), (k, m))
        beta = np.broadcast_to(np.asarray(weight, dtype=np.float64), (k, m))
        c_n = (lam * (centred**2).sum(axis=2) + 2 * beta
               + scatter.reshape(k, m, d).sum(axis=2))
        return c_n / (d * post_mix + (d + 2 * (alpha + 1)))

    # -- the variational mixture ----------------------------------------------------------
    def wishart_posterior(self, prior, nk, sk, diff, shrink, beta, pooled=False):
        if pooled:
            self._no_pooled("one variance")
        nu = prior.degrees_of_freedom + nk
        covariances = prior.covariance + nk * (sk + shrink * np.mean(diff ** 2, axis=1))
        return nu, covariances / nu

    def trace_precision_scatter(self, prec_chol, second, pooled=False):
        if pooled:
            self._no_pooled("one variance")
        return prec_chol ** 2 * second.sum(axis=1)


class Shared(Structure):
    """One matrix of ``form`` shared by all components: the form's statistics pooled
    over the components (``tied`` is the shared full matrix, mclust's EEI the shared
    diagonal)."""

    shared = True

    def __init__(self, form, name, variational=True):
        self.form = form
        self.name = name
        self.diagonal = form.diagonal
        self.variational = variational

    def precisions_shape(self, n_components, n_features):
        return self.form.precisions_shape(1, n_features)[1:]

    def within_groups(self, group_size):
        return Grouped(self, group_size)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return self.form.kernel_factor(prec_chol[None], 1, n_features)

    def log_det(self, prec_chol, n_components, n_features):
        return np.full(n_components, self.form.log_det(prec_chol[None], 1, n_features)[0])

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise"):
        return self.form.covariances(N, nk, S, Q, shift, delta, reg_covar, collapse,
                                     pooled=True)

    def precisions_cholesky(self, covariances, reg_covar):
        try:
            return self.form.precisions_cholesky(covariances[None], reg_covar)[0]
        except ValueError:
            raise degenerate_error(None, reg_covar) from None

    def cholesky_from_precisions(self, precisions):
        return self.form.cholesky_from_precisions(precisions)

    def covariances_from_cholesky(self, prec_chol):
        return self.form.covariances_from_cholesky(prec_chol)

    def precisions(self, prec_chol):
        return self.form.precisions(prec_chol)

    def check_precisions(self, precisions):
        self.form.check_precisions(precisions[None], f"{self.name} precision")

    def n_covariance_parameters(self, n_components, n_features):
        return self.form.n_covariance_parameters(1, n_features)

    def sample(self, rng, means, covariances, counts):
        stack = np.broadcast_to(covariances, (len(means),) + np.shape(covariances))
        return self.form.sample(rng, means, stack, counts)

    def to_full(self, covariances, n_components, n_features):
        one = self.form.to_full(np.asarray(covariances)[None], 1, n_features)
        return np.repeat(one, n_components, axis=0)

    def one_full(self, covariances, component, n_features):
        return self.form.one_full(np.asarray(covariances)[None], 0, n_features)

    def from_full(self, covariance, n_components):
        return self.form.from_full(covariance, 1)[0]

    def single_from_full(self, covariance):
        return self.form.single_from_full(covariance)

    def scaled_identity(self, value, n_components, n_features):
        return self.form.scaled_identity(value, 1, n_features)[0]

    def collect(self, scatter):
        return self.form.collect(scatter, pooled=True)

    def hmm_prior_shapes(self, n_components, n_features):
        (prior, low), _ = self.form.hmm_prior_shapes(n_components, n_features)
        return (prior[1:], low), ()

    def hmm_map(self, scatter, meandiff, means_weight, post, prior, weight, n_features):
        return self.form.hmm_map(scatter, meandiff, means_weight, post, prior, weight,
                                 n_features, pooled=True)

    def wishart_posterior(self, prior, nk, sk, diff, shrink, beta):
        return self.form.wishart_posterior(prior, nk, sk, diff, shrink, beta, pooled=True)

    def trace_precision_scatter(self, prec_chol, second):
        return self.form.trace_precision_scatter(prec_chol, second, pooled=True)


class Grouped(Structure):
    """A :class:`Shared` structure's matrix for each group of ``group_size`` consecutive
    components (GMMHMM: the mixture components of a state share the state's matrix).
    Its arrays hold one matrix per group; the kernels read one factor per component."""

    shared = True

    def __init__(self, structure, group_size):
        self.structure = structure
        self.form = structure.form
        self.name = structure.name
        self.diagonal = structure.diagonal
        self.variational = structure.variational
        self.group_size = int(group_size)

    def _groups(self, n_components):
        return n_components // self.group_size

    def precisions_shape(self, n_components, n_features):
        return self.form.precisions_shape(self._groups(n_components), n_features)

    def matrices_shape(self, n_components):
        return (self._groups(n_components),)

    def group_shape(self, n_groups, group_size, n_features):
        return self.form.precisions_shape(n_groups, n_features)

    def within_groups(self, group_size):
        return self

    def kernel_factor(self, prec_chol, n_components, n_features):
        factor = self.form.kernel_factor(prec_chol, self._groups(n_components), n_features)
        return np.repeat(factor, self.group_size, axis=0)

    def log_det(self, prec_chol, n_components, n_features):
        return np.repeat(self.form.log_det(prec_chol, self._groups(n_components), n_features),
                         self.group_size)

    def precisions_cholesky(self, covariances, reg_covar):
        return self.form.precisions_cholesky(covariances, reg_covar)

    def n_covariance_parameters(self, n_components, n_features):
        return self.form.n_covariance_parameters(self._groups(n_components), n_features)

    def to_full(self, covariances, n_components, n_features):
        full = self.form.to_full(covariances, self._groups(n_components), n_features)
        return np.repeat(full, self.group_size, axis=0)

    def one_full(self, covariances, component, n_features):
        return self.form.one_full(covariances, component // self.group_size, n_features)

    def from_full(self, covariance, n_components):
        return self.form.from_full(covariance, self._groups(n_components))

    def gmm_prior_shapes(self, k, m, d):
        return self.form.gmm_prior_shapes(k, m, d, pooled=True)

    def gmm_default_priors(self, m, d):
        return self.form.gmm_default_priors(m, d, pooled=True)

    def gmm_map(self, lam, centred, scatter, post_mix, post, prior, weight):
        return self.form.gmm_map(lam, centred, scatter, post_mix, post, prior, weight,
                                 pooled=True)


# -- the registry -------------------------------------------------------------------------
STRUCTURES: dict[str, Structure] = {}
"""Every structure by its ``covariance_type`` name, in registration order (the CLI's
choices, the type literal and warm-up follow it)."""


def register(structure):
    """Add ``structure`` to :data:`STRUCTURES` (its name must be new); returns it."""
    if structure.name in STRUCTURES:
        raise ValueError(f"a covariance structure named {structure.name!r} is registered")
    STRUCTURES[structure.name] = structure
    return structure


FULL = register(Full())
TIED = register(Shared(FULL, "tied"))
DIAG = register(Diag())
SPHERICAL = register(Spherical())
# mclust's EEI: one diagonal covariance shared by every component (D parameters). Its
# Normal-Wishart posterior is not the variational models' (not conjugate to a diagonal).
EEI = register(Shared(DIAG, "EEI", variational=False))

SPECS = STRUCTURES  # (the name of the previous release)


def names(variational=False):
    """The registered names (only those with a variational posterior if asked)."""
    return tuple(name for name, structure in STRUCTURES.items()
                 if structure.variational or not variational)


def check_name(value, estimator, variational=False):
    """``value`` if it names a registered structure (one with a variational posterior
    when ``variational``), else the ValueError naming ``covariance_type`` and the valid
    names (and why, for a structure ``estimator`` cannot fit)."""
    valid = names(variational)
    if isinstance(value, str) and value in STRUCTURES and value not in valid:
        raise ValueError(
            f"covariance_type={value!r} is not supported by {estimator}: the variational "
            f"Normal-Wishart posterior has no form for this structure. Use one of "
            f"{sorted(valid)}")
    return v.check_option(value, "covariance_type", valid)
