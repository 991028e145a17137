"""The README's plugin example runs as written (in its own process: it makes its own GL
context, as an engine would)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The plugin API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_example_is_under_30_lines():
    lines = [ln for ln in readme_example().splitlines() if ln.strip()]
    assert len(lines) <= 30, len(lines)


def test_the_readme_example_runs(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4
    for n, line in enumerate(lines):
        idx, shape, present, total = re.match(r"(\d) (\(.*?\)) ([\d.]+) ([\d.]+)", line).groups()
        assert int(idx) == n and shape == "(360, 640, 3)"
        assert abs(float(present) - 1000 / 30 / 2) < 1e-6 and float(total) > 0
