"""Covariance types of a Gaussian mixture, chosen once as a spec object.

Each spec knows, for its type: the public shapes, how the kernels see its
precision factors, how covariances follow from sufficient statistics (the
closed-form M-step), Cholesky factors and log-determinants, parameter counts
and sampling. The rest of the code never branches on the type name.

Public shapes follow scikit-learn: ``precisions_cholesky_`` holds upper
triangular U with precision = U U^T (full: (K, D, D); tied: (D, D)), or
1/sigma (diag: (K, D); spherical: (K,)).
"""

from __future__ import annotations

import numpy as np

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
    (indexed by the leading axis of ``variances``; None for the tied covariance)."""
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
    where = "the shared (tied) covariance" if component is None else f"component {component}"
    return ValueError(
        "Fitting the mixture model failed because "
        f"{where} has an ill-defined covariance{detail} (for instance caused by singleton or "
        "collapsed samples). Try to decrease the number of components, increase reg_covar "
        f"(currently {reg_covar!r}), or scale the input data."
    )


def _flip(a):
    return a[..., ::-1, ::-1]


def _scatter_about_new_means(N, S, Q, delta):
    """Second moments about the new means from moments about the shift.

    With delta = new mean - shift: Q - delta S^T - S delta^T + N delta delta^T.
    """
    if Q.ndim == 2:  # diagonals only
        return Q - 2.0 * delta * S + N[:, None] * delta * delta
    outer_ds = delta[:, :, None] * S[:, None, :]
    return (Q - outer_ds - np.swapaxes(outer_ds, 1, 2)
            + N[:, None, None] * delta[:, :, None] * delta[:, None, :])


class _Spec:
    name = ""
    diagonal = False  # kernels accumulate only the diagonal of the second moments

    def checked_covariances(self, vector, n_components, n_features):
        """(covariances, precision factors) from a packed vector of covariances in this
        type's shape; ValueError when they are not positive definite (SQUAREM's
        extrapolations may leave the cone)."""
        shape = self.precisions_shape(n_components, n_features)
        covariances = np.array(np.reshape(vector, shape), dtype=np.float64)
        if not self.diagonal:
            covariances = 0.5 * (covariances + np.swapaxes(covariances, -1, -2))
        return covariances, self.precisions_cholesky(covariances, 0.0)

    def precisions_shape(self, n_components, n_features):
        raise NotImplementedError

    def kernel_factor(self, prec_chol, n_components, n_features):
        """Precision factors as the kernels read them: (Kc, D, D) or (Kc, 1, D)."""
        raise NotImplementedError

    def log_det(self, prec_chol, n_components, n_features):
        """(K,) log-determinant of each component's precision Cholesky factor."""
        raise NotImplementedError


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


class _TriangularSpec(_Spec):
    def _cholesky_of_covariances(self, covariances, reg_covar, components):
        lower = lower_cholesky(covariances, reg_covar, components)
        eye = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
        return np.swapaxes(np.linalg.solve(lower, eye), -1, -2)

    def _cholesky_of_precisions(self, precisions):
        return _flip(np.linalg.cholesky(_flip(precisions)))

    @staticmethod
    def _covariances_from_cholesky(prec_chol):
        inverse = np.linalg.inv(prec_chol)  # cov = (U U^T)^-1 = U^-T U^-1
        return np.swapaxes(inverse, -1, -2) @ inverse

    @staticmethod
    def _check_spd(matrix, name):
        if not (np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0.0)):
            raise ValueError(f"'{name}' should be symmetric, positive-definite")


class FullSpec(_TriangularSpec):
    name = "full"

    def precisions_shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(prec_chol, dtype=np.float64)

    def log_det(self, prec_chol, n_components, n_features):
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise"):
        scatter = _scatter_about_new_means(N, S, Q, delta)
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
        return self._cholesky_of_precisions(precisions)

    def covariances_from_cholesky(self, prec_chol):
        return self._covariances_from_cholesky(prec_chol)

    def precisions(self, prec_chol):
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)

    def check_precisions(self, precisions):
        for matrix in precisions:
            self._check_spd(matrix, "full precision")

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) / 2.0

    def sample(self, rng, means, covariances, counts):
        return [rng.multivariate_normal(m, c, int(n))
                for m, c, n in zip(means, covariances, counts, strict=True)]


class TiedSpec(_TriangularSpec):
    name = "tied"

    def precisions_shape(self, n_components, n_features):
        return (n_features, n_features)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(prec_chol[None], dtype=np.float64)

    def log_det(self, prec_chol, n_components, n_features):
        return np.full(n_components, np.log(np.diagonal(prec_chol)).sum())

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise"):
        scatter = _scatter_about_new_means(N, S, Q, delta).sum(axis=0)
        cov = scatter / nk.sum()
        cov = 0.5 * (cov + cov.T)
        diagonal = np.einsum("ii->i", cov)
        diagonal[...] = _floor_variances(diagonal, np.einsum("kii->i", Q), nk.sum(),
                                         np.abs(shift + delta).max(axis=0), collapse,
                                         reg_covar, [None])
        cov += reg_covar * np.eye(cov.shape[0])
        return cov

    def precisions_cholesky(self, covariances, reg_covar):
        try:
            return self._cholesky_of_covariances(covariances[None], reg_covar, [None])[0]
        except ValueError:
            raise degenerate_error(None, reg_covar) from None

    def cholesky_from_precisions(self, precisions):
        return self._cholesky_of_precisions(precisions)

    def covariances_from_cholesky(self, prec_chol):
        return self._covariances_from_cholesky(prec_chol)

    def precisions(self, prec_chol):
        return prec_chol @ prec_chol.T

    def check_precisions(self, precisions):
        self._check_spd(precisions, "tied precision")

    def n_covariance_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) / 2.0

    def sample(self, rng, means, covariances, counts):
        return [rng.multivariate_normal(m, covariances, int(n))
                for m, n in zip(means, counts, strict=True)]


class _DiagonalSpec(_Spec):
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

    def check_precisions(self, precisions):
        if np.any(precisions <= 0.0):
            raise ValueError(f"'{self.name} precision' should be positive")

    def sample(self, rng, means, covariances, counts):
        return [m + rng.standard_normal(size=(int(n), means.shape[1])) * np.sqrt(c)
                for m, c, n in zip(means, covariances, counts, strict=True)]


class DiagSpec(_DiagonalSpec):
    name = "diag"

    def precisions_shape(self, n_components, n_features):
        return (n_components, n_features)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(prec_chol[:, None, :], dtype=np.float64)

    def log_det(self, prec_chol, n_components, n_features):
        return np.log(prec_chol).sum(axis=1)

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise"):
        variances = _scatter_about_new_means(N, S, Q, delta) / nk[:, None]
        return _floor_variances(variances, Q, nk[:, None], shift + delta, collapse, reg_covar,
                                range(len(nk))) + reg_covar

    def n_covariance_parameters(self, n_components, n_features):
        return n_components * n_features


class SphericalSpec(_DiagonalSpec):
    name = "spherical"

    def precisions_shape(self, n_components, n_features):
        return (n_components,)

    def kernel_factor(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(
            np.repeat(np.asarray(prec_chol, dtype=np.float64)[:, None, None], n_features, axis=2))

    def log_det(self, prec_chol, n_components, n_features):
        return n_features * np.log(prec_chol)

    def covariances(self, N, nk, S, Q, shift, delta, reg_covar, collapse="raise"):
        # One variance per component: it has collapsed only when the average has (a
        # constant column beside others that vary is no collapse).
        variances = _scatter_about_new_means(N, S, Q, delta) / nk[:, None]
        floor = _variance_floor(Q, nk[:, None], shift + delta)
        averaged = np.maximum(variances, floor).mean(axis=1)
        _check_collapse(averaged, floor.mean(axis=1), collapse, reg_covar, range(len(nk)))
        return averaged + reg_covar

    def n_covariance_parameters(self, n_components, n_features):
        return n_components


DIAG = DiagSpec()
SPECS = {spec.name: spec for spec in (FullSpec(), TiedSpec(), DIAG, SphericalSpec())}
