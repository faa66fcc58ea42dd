"""Mixture of regressions on mixtools' tonedata (Cohen 1980: the tone a musician
perceives against the stretch ratio of the overtones). Two regimes: perceived tone
equal to the stretch ratio, and a flat one near 2. Draws the fitted lines over the
data, each point coloured by its posterior. Run:
``python examples/regression_mixture.py [OUTPUT.png]``."""

import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastem  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "moe" / "tonedata.csv"


def main(output="regression_mixture.png"):
    table = np.loadtxt(DATA, delimiter=",", skiprows=1)
    x, y = table[:, :1], table[:, 1]
    # Restarts from random rows with unequal spreads find the tight regime (as mixtools).
    # A small variance floor: the tight regime has sd 0.0045 (the default 1e-6 is 5% of it).
    model = fastem.MixtureOfExperts(2, init_params="random_from_data", n_init=30, reg_covar=1e-9,
                                    tol=1e-10, max_iter=5_000, random_state=0).fit(x, y)
    loglik = model.score_samples(x, y).sum()
    print(f"log-likelihood {loglik:.3f} (mixtools' regmixEM optimum: 145.417)")
    for k in range(2):
        print(f"  tuned = {model.intercept_[k]:.4f} + {model.coef_[k, 0]:.4f} * stretchratio"
              f"   sd {np.sqrt(model.covariances_[k, 0, 0]):.4f}   weight {model.weights_[k]:.3f}")
    posterior = model.predict_proba(x, y)[:, 0]
    fig, ax = plt.subplots(figsize=(6, 4))
    points = ax.scatter(x[:, 0], y, c=posterior, cmap="coolwarm", vmin=0, vmax=1, s=18)
    grid = np.linspace(x.min(), x.max(), 50)[:, None]
    means = model.component_means(grid)[:, :, 0]
    for k, colour in zip(range(2), ("tab:red", "tab:blue"), strict=True):
        ax.plot(grid[:, 0], means[:, k], color=colour, lw=2,
                label=f"component {k} (weight {model.weights_[k]:.2f})")
    fig.colorbar(points, label="posterior of component 0")
    ax.set_xlabel("stretch ratio")
    ax.set_ylabel("perceived tone ratio")
    ax.set_title("fastem.MixtureOfExperts on tonedata")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
