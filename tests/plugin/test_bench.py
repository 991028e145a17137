"""``python -m plugin.bench``: the API's own cost against the bare pass call."""

from __future__ import annotations

import subprocess
import sys

from plugin.bench import measure_overhead


def test_overhead_is_measured_on_the_same_frames():
    r = measure_overhead("bilinear", (40, 24), pairs=2, warmup=1)
    assert r["dispatch_ms"] > 0 and r["bare_ms"] > 0
    assert abs(r["overhead_ms"] - (r["dispatch_ms"] - r["bare_ms"])) < 1e-9
    assert r["display_size"] == [80, 48]


def test_cli_table_and_errors():
    r = subprocess.run([sys.executable, "-m", "plugin.bench", "--passes", "bilinear", "--sizes", "40x24",
                        "--pairs", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| bilinear | 40x24 -> 80x48 |" in r.stdout
    r = subprocess.run([sys.executable, "-m", "plugin.bench", "--passes", "dlss"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "--passes: expected some of" in r.stderr
