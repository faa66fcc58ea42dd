"""Every example runs (headless) in under 30 s here and writes its picture."""

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_example_writes_its_picture(script, tmp_path):
    output = tmp_path / f"{script.stem}.png"
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script), str(output)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in done.stdout
