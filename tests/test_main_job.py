"""The README's main job: python -m fastem on the bundled Old Faithful data."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import fastem

ROOT = Path(__file__).resolve().parents[1]


def test_main_job_prints_the_selected_model():
    result = subprocess.run([sys.executable, "-m", "fastem"], capture_output=True, text=True,
                            timeout=300, check=True)
    out = result.stdout
    bics = {int(k): float(b) for k, b in re.findall(r"K=(\d): BIC\s+([-\d.]+)", out)}
    assert sorted(bics) == [1, 2, 3, 4]
    assert min(bics, key=bics.get) == 2
    assert "components 2, covariance 'full', converged True" in out
    X, _ = fastem.load_faithful()
    model = fastem.GaussianMixture(2, n_init=5, random_state=0).fit(X)
    for mean in np.sort(model.means_[:, 1]):
        assert f"mean {mean:8.3f}" in out
    assert f"BIC {model.bic(X):.2f}" in out


def test_faithful_data():
    X, names = fastem.load_faithful()
    assert X.shape == (272, 2) and names == ["eruptions", "waiting"]
    np.testing.assert_allclose(X[0], [3.6, 79.0])
    np.testing.assert_allclose(X.mean(axis=0), [3.4877831, 70.8970588], rtol=1e-6)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    test_command = commands[1].strip()
    assert "pytest" in test_command
    assert test_command in ci
