"""Clustering with a Gaussian mixture: components with covariance ellipses, and the
convergence curve. Run: ``python examples/clustering.py [OUTPUT.png]``."""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastem  # noqa: E402


def main(output="clustering.png"):
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [5.0, 1.0], [2.0, 5.0]])
    shapes = [np.array([[1.0, 0.6], [0.6, 1.0]]), np.array([[0.4, 0.0], [0.0, 1.5]]),
              np.array([[1.2, -0.5], [-0.5, 0.5]])]
    X = np.vstack([rng.multivariate_normal(c, s, 3000) for c, s in zip(centres, shapes,
                                                                          strict=True)])
    model = fastem.GaussianMixture(3, tol=1e-6, max_iter=200, init_params="random",
                                   random_state=1).fit(X)
    labels = model.predict(X)
    print(f"converged {model.converged_} after {model.n_iter_} iterations, "
          f"mean log-likelihood {model.lower_bound_:.4f}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.scatter(X[:, 0], X[:, 1], c=labels, s=3, cmap="tab10", alpha=0.5)
    circle = np.stack([np.cos(np.linspace(0, 2 * np.pi, 200)),
                       np.sin(np.linspace(0, 2 * np.pi, 200))])
    for mean, cov in zip(model.means_, model.covariances_, strict=True):
        root = np.linalg.cholesky(cov)
        for radius in (1, 2):
            ring = mean[:, None] + radius * root @ circle
            left.plot(ring[0], ring[1], color="black", lw=1)
    left.set_title("points by component, 1- and 2-sigma ellipses")
    right.plot(np.arange(1, len(model.lower_bounds_) + 1), model.lower_bounds_, marker=".")
    right.set_xlabel("EM iteration")
    right.set_ylabel("mean log-likelihood")
    right.set_title("convergence (never decreases)")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
