"""The demo-cost table (``python -m demo_renderer.cost``) from profile CSVs: warm-up frames
dropped, runs pooled, medians over the frames that measured a pass."""

from __future__ import annotations

import math

import pytest

from demo_renderer.cost import CostError, format_table, read_profile, summarise


def _csv(path, frame_ms, overlay=None):
    lines = ["Frame,TimeInSeconds,MsBetweenPresents,Kind,overlay_cpu_ms,overlay_gpu_ms,present_cpu_ms,present_gpu_ms"]
    for i, ms in enumerate(frame_ms):
        o = "" if overlay is None else f"{overlay[i]:.4f}"
        lines.append(f"{i},{i * 0.1:.6f},{ms:.4f},rendered,{o},,1.0000,{2.0 + i:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_medians_pool_runs_and_skip_warmup(tmp_path):
    a = read_profile(_csv(tmp_path / "a.csv", [500, 10, 20, 30], overlay=[99, 1, 2, 3]), warmup=1)
    b = read_profile(_csv(tmp_path / "b.csv", [400, 40, 50, 60], overlay=[99, 4, 5, 6]), warmup=1)
    bare = read_profile(_csv(tmp_path / "c.csv", [300, 5, 6, 7]), warmup=1)
    rows = summarise({"bare": [bare], "overlay": [a, b]})
    assert rows[0]["frames"] == 3 and rows[0]["frame_ms"] == 6 and math.isnan(rows[0]["overlay_cpu"])
    assert rows[1]["frames"] == 6 and rows[1]["frame_ms"] == 35 and rows[1]["overlay_cpu"] == 3.5
    assert rows[1]["mean_ms"] == 35 and rows[0]["mean_ms"] == 6
    assert math.isnan(rows[1]["overlay_gpu"]) and rows[1]["present_gpu"] == 4.0 and math.isnan(rows[1]["compare_cpu"])
    table = format_table(rows)
    assert table.splitlines()[0].startswith("| configuration | frames | frame ms, median / mean | overlay CPU / GPU ms")
    assert "| overlay | 6 | 35.0 / 35.0 | 3.5 / - | - / - | - / - | 1.0 / 4.0 |" in table


def test_too_few_frames_is_an_error(tmp_path):
    with pytest.raises(CostError, match="2 frames, expected more than --warmup 4"):
        read_profile(_csv(tmp_path / "a.csv", [1, 2]), warmup=4)
