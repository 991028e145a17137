"""The soak command (``python -m plugin.soak``) on a few tiny frames: it dispatches,
samples resident memory and reports growth; its real runs (thousands of frames) are not
part of the suite."""

from __future__ import annotations

import json

import pytest

from plugin import soak


def test_soak_reports_growth_after_warm_up(tmp_path):
    r = soak.soak("bilinear", frames=12, render=(16, 16), display=(32, 32), warmup=4, every=2)
    assert r["frames"] == 12 and r["warmup"] == 4 and r["samples"][-1][0] == 12
    assert r["rss_warm_bytes"] > 0 and r["rss_end_bytes"] > 0
    assert r["growth_percent"] == pytest.approx(100 * (r["rss_end_bytes"] / r["rss_warm_bytes"] - 1))
    assert {"trend_percent", "slope_bytes_per_1000_frames", "ms_per_frame"} <= set(r)
    out = tmp_path / "soak.json"
    code = soak.main(["--frames", "6", "--render", "16x16", "--display", "32x32", "--max-growth", "1000",
                      "--json", str(out)])
    assert code == 0 and json.loads(out.read_text())["pass"] == "bilinear"


def test_soak_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        soak.main(["--render", "16"])
    assert info.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err
    assert soak.main(["--frames", "4", "--warmup", "9", "--render", "16x16", "--display", "32x32"]) == 2
    assert "warmup" in capsys.readouterr().err
