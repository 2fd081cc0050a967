"""The README's "Use it from Python" example runs as printed (in a temporary folder) and prints what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_python_example_runs(tmp_path):
    section = README.read_text(encoding="utf-8").split("## Use it from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {"PRACTICEPLAN_HOME": str(tmp_path / "home"), "PRACTICEPLAN_TZ": "Europe/Berlin", "PATH": "/usr/bin:/bin",
           "PRACTICEPLAN_NOW": "2026-03-02T09:00:00Z"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "100.0\n"
    assert (tmp_path / "practice.db").exists()
