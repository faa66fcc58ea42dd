"""Model selection: BIC and AIC against the number of components for each covariance type.
Run: ``python examples/model_selection.py [OUTPUT.png]``."""

import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastem  # noqa: E402


def main(output="model_selection.png"):
    rng = np.random.RandomState(2)
    X = np.vstack([rng.multivariate_normal(m, np.diag([1.0, 0.3]), 700)
                   for m in ([0, 0], [4, 0], [2, 3], [6, 4])])
    ks = range(1, 9)
    fig, (bic_ax, aic_ax) = plt.subplots(1, 2, figsize=(11, 4))
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for covariance_type in ("full", "tied", "diag", "spherical"):
            bics, aics = [], []
            for k in ks:
                model = fastem.GaussianMixture(k, covariance_type=covariance_type, n_init=3,
                                               random_state=0).fit(X)
                bics.append(model.bic(X))
                aics.append(model.aic(X))
                if best is None or bics[-1] < best[0]:
                    best = (bics[-1], k, covariance_type)
            bic_ax.plot(ks, bics, marker="o", label=covariance_type)
            aic_ax.plot(ks, aics, marker="o", label=covariance_type)
    for ax, name in ((bic_ax, "BIC"), (aic_ax, "AIC")):
        ax.set_xlabel("number of components")
        ax.set_ylabel(f"{name} (lower is better)")
        ax.legend()
    fig.suptitle(f"best by BIC: {best[1]} components, {best[2]} covariances")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    print(f"best by BIC: {best[1]} components, {best[2]}; wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
