"""Cluster the Old Faithful eruptions with a two-component Gaussian mixture.

Prints the components and, when matplotlib is installed, writes
``old_faithful.png``: the eruptions coloured by component with the 1- and
2-sigma ellipses of each component. Run: ``python examples/old_faithful.py``.
"""

import sys

import numpy as np

import fastem


def main(output="old_faithful.png"):
    X, names = fastem.load_faithful()
    model = fastem.GaussianMixture(2, n_init=5, random_state=0).fit(X)
    labels = model.predict(X)
    for k in range(model.n_components):
        print(f"component {k}: weight {model.weights_[k]:.3f}, mean {model.means_[k].round(3)}, "
              f"{np.sum(labels == k)} eruptions")
    print(f"mean log-likelihood {model.score(X):.4f}, BIC {model.bic(X):.2f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no picture written")
        return
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(X[:, 0], X[:, 1], c=labels, s=12, cmap="coolwarm")
    angles = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(angles), np.sin(angles)])
    for mean, cov in zip(model.means_, model.covariances_, strict=True):
        root = np.linalg.cholesky(cov)
        for radius in (1, 2):
            ring = mean[:, None] + radius * root @ circle
            ax.plot(ring[0], ring[1], color="black", lw=1)
    ax.set_xlabel(f"{names[0]} (minutes)")
    ax.set_ylabel(f"{names[1]} (minutes)")
    ax.set_title("Old Faithful: two-component Gaussian mixture")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
