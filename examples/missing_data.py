"""Missing data: imputation error of EMImputer against mean imputation as the missing
fraction grows. Run: ``python examples/missing_data.py [OUTPUT.png]``."""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastem  # noqa: E402


def main(output="missing_data.png"):
    rng = np.random.RandomState(4)
    a = rng.normal(size=(6, 6))
    X = rng.multivariate_normal(np.zeros(6), a @ a.T + 0.1 * np.eye(6), size=4000)
    fractions = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
    em, mean = [], []
    for fraction in fractions:
        holes = rng.rand(*X.shape) < fraction
        Xm = np.where(holes, np.nan, X)
        filled = fastem.EMImputer().fit_transform(Xm)
        baseline = np.where(holes, np.nanmean(Xm, axis=0), Xm)
        em.append(np.sqrt(np.mean((filled[holes] - X[holes]) ** 2)))
        mean.append(np.sqrt(np.mean((baseline[holes] - X[holes]) ** 2)))
        print(f"{fraction:.0%} missing: RMSE EMImputer {em[-1]:.3f}, mean imputation "
              f"{mean[-1]:.3f}")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(fractions, mean, marker="o", label="column mean")
    ax.plot(fractions, em, marker="o", label="fastem.EMImputer (exact EM)")
    ax.set_xlabel("fraction of entries missing")
    ax.set_ylabel("RMSE on the hidden entries")
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
