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


def test_readme_example_runs(emulator, tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 15
    script = tmp_path / "readme_example.py"
    script.write_text(code.replace("http://127.0.0.1:7070", emulator.url))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert float(result.stdout.strip().strip("b'").split("\\n")[0]) > 0
