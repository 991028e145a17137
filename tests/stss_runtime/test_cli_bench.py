"""``python -m stss_runtime`` export, build-engine, backends and bench."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
import torch

from stss_runtime.evaluation.bench import format_table, measure
from stss_runtime.synthetic import synthetic_frames

REQUIRED_ROW_KEYS = {"backend", "precision", "device", "render_size", "display_size", "pipeline",
                     "median_ms", "p95_ms", "gmacs", "peak_mem_mb"}


def _run(*args, env=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env)


def test_export_writes_a_checked_onnx_file(tmp_path):
    out = tmp_path / "stss.onnx"
    r = _run("-m", "stss_runtime", "export", "--out", str(out), "--precision", "fp16")
    assert r.returncode == 0, r.stderr
    assert "the ONNX checker passes" in r.stdout and "GridSample" in r.stdout
    m = onnx.load(str(out))
    assert [i.name for i in m.graph.input][:3] == ["current", "shaded", "jitter"]


def test_cli_errors_are_one_line(tmp_path):
    r = _run("-m", "stss_runtime", "export", "--graph", "extranet", "--weights",
             "stss_runtime/weights/stss_2x.pt", "--out", str(tmp_path / "x.onnx"))
    assert r.returncode == 2 and "holds a stss network, not extranet" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run("-m", "stss_runtime", "export", "--weights", str(tmp_path / "none.pt"))
    assert r.returncode == 2 and "no weights at" in r.stderr and "Traceback" not in r.stderr
    r = _run("-m", "stss_runtime", "build-engine", "--render-size", "64x64", "--min-render-size", "128x128")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = _run("-m", "stss_runtime", "bench", "--backends", "tvm")
    assert r.returncode == 2 and "--backends: expected some of torch, onnxruntime, tensorrt, openvino, got tvm" in r.stderr
    r = _run("-m", "stss_runtime", "bench", "--sizes", "big")
    assert r.returncode == 2 and "expected WIDTHxHEIGHT" in r.stderr


def test_backends_command_lists_each_with_a_reason():
    r = _run("-m", "stss_runtime", "backends")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["torch", "onnxruntime", "tensorrt", "openvino"]
    if not torch.cuda.is_available():
        assert "GPU" in lines[2] or "install" in lines[2]


def test_synthetic_frames_alternate_rendered_and_extrapolated():
    frames = synthetic_frames((40, 24), 4)
    assert [f.shaded for f in frames] == [True, False, True, False]
    assert frames[0].size == (40, 24) and frames[1].jitter_px != frames[0].jitter_px


def test_measure_times_every_stage(tmp_path):
    row = measure("joint", "torch", "fp32", "cpu", (40, 24), frames=3, warmup=1, cache_dir=str(tmp_path))
    assert REQUIRED_ROW_KEYS <= set(row)
    assert row["render_size"] == [40, 24] and row["display_size"] == [80, 48]
    assert 0 < row["median_ms"] <= row["p95_ms"]
    assert row["frames"] == 4  # rounded up to whole rendered + extrapolated pairs
    assert min(row["rendered_ms"], row["extrapolated_ms"]) <= row["median_ms"] <= max(
        row["rendered_ms"], row["extrapolated_ms"]) * 1.5
    assert set(row["stages_ms"]) == {"prepare", "backend", "output"}
    assert abs(sum(row["stages_ms"].values()) - row["median_ms"]) <= 0.5 * row["median_ms"]
    assert row["gmacs"] > 0 and row["peak_mem_mb"] > 0


def test_bench_runs_backends_in_separate_processes_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = _run("-m", "stss_runtime", "bench", "--sizes", "40x24", "--frames", "2", "--warmup", "1",
             "--backends", "torch,onnxruntime,tensorrt", "--precisions", "fp32", "--cache-dir",
             str(tmp_path / "cache"), "--json", str(out), "--plot", str(tmp_path / "bench.png"))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and all(REQUIRED_ROW_KEYS <= set(row) for row in rows)
    got = {(row["backend"], row["variant"], row["pipeline"]) for row in rows}
    assert got == {(b, v, p) for b, v in (("torch", "eager nchw"), ("torch", "channels-last"),
                                          ("onnxruntime", ""), ("onnxruntime", "int8"))
                  for p in ("joint", "two_stage")}
    assert "| torch (eager nchw) | fp32 | 40x24 -> 80x48 | joint |" in r.stdout
    assert "skipped: tensorrt fp32:" in r.stdout  # said, not silently dropped
    assert (tmp_path / "bench.png").stat().st_size > 5000


def test_table_shows_the_joint_to_two_stage_ratio():
    base = {"backend": "torch", "precision": "fp32", "device": "cpu", "render_size": [8, 8],
            "display_size": [16, 16], "p95_ms": 1.0, "gmacs": 1.0, "peak_mem_mb": 1.0,
            "rendered_ms": 1.0, "extrapolated_ms": 1.0,
            "stages_ms": {"prepare": 0.1, "backend": 0.5, "output": 0.1}}
    table = format_table([{**base, "pipeline": "joint", "median_ms": 3.0},
                          {**base, "pipeline": "two_stage", "median_ms": 12.0}])
    assert table.splitlines()[2].endswith("| 0.25 |")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_bench_on_cuda_without_a_gpu_says_so():
    r = _run("-m", "stss_runtime", "bench", "--device", "cuda")
    assert r.returncode == 2 and "sees no CUDA GPU" in r.stderr


def test_measure_times_the_default_pass_with_its_own_network(tmp_path):
    """``joint_recurrent`` times pass stss_recurrent and counts its network's multiply-adds,
    more than STSS's alone (the accumulation head reads full render resolution)."""
    joint = measure("joint", "torch", "fp32", "cpu", (40, 24), frames=2, warmup=1, cache_dir=str(tmp_path))
    rec = measure("joint_recurrent", "torch", "fp32", "cpu", (40, 24), frames=2, warmup=1, cache_dir=str(tmp_path))
    assert rec["pipeline"] == "joint_recurrent" and rec["median_ms"] > 0
    assert 1.2 * joint["gmacs"] < rec["gmacs"] < 1.6 * joint["gmacs"], (joint["gmacs"], rec["gmacs"])
