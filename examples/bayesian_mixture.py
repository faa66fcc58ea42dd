"""A variational Bayesian mixture finds how many clusters the data hold: asked for ten
components on Old Faithful and on four simulated clusters, it leaves the unneeded ones with
weights near zero. Run: ``python examples/bayesian_mixture.py [OUTPUT.png]``."""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastem  # noqa: E402


def _panel(ax, X, names, title):
    model = fastem.BayesianGaussianMixture(
        n_components=10, weight_concentration_prior=1e-3, n_init=3, max_iter=500,
        random_state=0).fit(X)
    used = model.weights_ > 0.01
    ax.scatter(X[:, 0], X[:, 1], c=model.predict(X), s=6, cmap="tab10", vmin=0, vmax=9)
    angle = np.linspace(0, 2 * np.pi, 100)
    for mean, covariance in zip(model.means_[used], model.covariances_[used], strict=True):
        values, vectors = np.linalg.eigh(covariance)
        ring = vectors @ (2 * np.sqrt(values)[:, None] * np.stack([np.cos(angle),
                                                                   np.sin(angle)]))
        ax.plot(mean[0] + ring[0], mean[1] + ring[1], color="black", linewidth=1)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(f"{title}: {used.sum()} of 10 components used")
    return model, used


def main(output="bayesian_mixture.png"):
    faithful, names = fastem.load_faithful()
    rng = np.random.RandomState(1)
    clusters = np.vstack([rng.multivariate_normal(m, np.diag([1.0, 0.4]), 500)
                          for m in ([0, 0], [5, 0], [2, 4], [7, 5])])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    model, used = _panel(axes[0], faithful, names, "Old Faithful")
    _panel(axes[1], clusters, ["x1", "x2"], "four clusters")
    order = np.argsort(model.weights_)[::-1]
    axes[2].bar(range(10), model.weights_[order], color=np.where(used[order], "C0", "C7"))
    axes[2].set_xlabel("component (by weight)")
    axes[2].set_ylabel("posterior mean weight")
    axes[2].set_title("Old Faithful: the weights")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    print(f"Old Faithful: {used.sum()} components carry weight "
          f"({np.round(np.sort(model.weights_[used])[::-1], 3).tolist()}), lower bound "
          f"{model.lower_bound_:.2f}; wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
