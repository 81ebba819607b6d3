"""Every example runs against a real emulator, so none can rot."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize("script", ["xgboost_endpoint.py", "pytorch_endpoint.py"])
def test_example_runs(emulator, script):
    env = {**os.environ, "SMEMU_URL": emulator.url, "EXAMPLE_NAME": f"example-{script.split('_')[0]}"}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script)], env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "endpoint predictions:" in result.stdout and result.stdout.rstrip().endswith("done")


def test_readme_examples_run(emulator, tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = [part.split("```", 1)[0] for part in readme.split("```python\n")[1:]]
    assert len(blocks) == 2 and len(blocks[0].strip().splitlines()) <= 15
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join(blocks).replace("http://127.0.0.1:7070", emulator.url))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    predictions = [float(line.strip("b'").split("\\n")[0]) for line in result.stdout.split()]
    assert len(predictions) == 2 and predictions[0] == predictions[1] > 0
