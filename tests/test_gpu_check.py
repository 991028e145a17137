"""``scripts/gpu_check.sh --dry-run``: the GPU check's steps rehearsed on the CPU at tiny
sizes, so the script that runs the day a GPU machine is lent cannot rot in between."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STEPS = ["1", "2", "3", "4", "4a", "4b", "4c", "5", "6", "7"]
CUDA_ONLY = {"4a", "4b", "4c", "6"}  # skipped without a GPU, saying so


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    r = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run", str(out)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=900)
    return r, out


@pytest.mark.slow
def test_the_dry_run_runs_every_step_and_says_what_each_did(dry_run):
    r, out = dry_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True and summary["command"] == "bash scripts/gpu_check.sh --dry-run"
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == STEPS
    bad = {k: s["reason"] for k, s in steps.items() if s["status"] == "failed"}
    assert not bad, bad
    for k in CUDA_ONLY:
        assert steps[k]["status"] == "skipped" and steps[k]["reason"].startswith("no GPU"), steps[k]
    assert steps["3"]["status"] == "skipped" and "needs a CUDA GPU" in steps["3"]["reason"]
    assert {k for k, s in steps.items() if s["status"] == "passed"} == {"1", "2", "4", "5", "7"}
    for s in steps.values():
        assert 0 <= s["seconds"] <= s["box_s"] + 15 and (out / s["log"]).is_file()
    # what a real run brings back, at tiny sizes
    rows = json.loads((out / "bench" / "torch.json").read_text())
    assert {r["pipeline"] for r in rows} == {"joint", "two_stage"} and all("p99_ms" in r for r in rows)
    assert (out / "demo" / "profile.csv").is_file() and (out / "demo" / "summary.json").is_file()
    assert (out / "train" / "weights.pt").is_file() and (out / "train" / "eval_trained.json").is_file()
    assert steps["7"]["details"]["trained"]["sf"]["all"]["psnr"] > 10
    assert not (out / ".work").exists()  # the dry run's scratch is gone
    assert "gpu_check: 5 passed, 0 failed, 5 skipped" in r.stdout


def test_the_summary_turns_a_timeout_or_a_crash_into_a_failure_with_its_reason(tmp_path):
    """Each step's box: a step that ran out of time, or crashed without a record, is a failed
    step with the reason, and the steps after it still count."""
    steps = tmp_path / "steps"
    steps.mkdir()
    (tmp_path / "logs").mkdir()

    def shell(order, id_, rc, timed_out=False, record=None, log="last words\n"):
        (tmp_path / "logs" / f"{id_}.log").write_text(log)
        (steps / f"{id_}.run.json").write_text(json.dumps(
            {"order": order, "id": id_, "name": f"n{id_}", "rc": rc, "seconds": 1.0, "box_s": 30,
             "timed_out": timed_out, "log": f"logs/{id_}.log"}))
        if record:
            (steps / f"{id_}.json").write_text(json.dumps(record))

    shell(1, "1", 124, timed_out=True, log="still rendering\n")
    shell(2, "2", 1, log="Traceback ...\nRuntimeError: boom\n")
    shell(3, "3", 1, record={"status": "passed", "reason": "", "details": {}})
    shell(4, "4", 0, record={"status": "skipped", "reason": "no GPU", "details": {"x": 1}})
    shell(5, "5", 0)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), "summary", str(tmp_path),
                        "--wall", "12"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = {s["step"]: (s["status"], s["reason"]) for s in json.loads((tmp_path / "summary.json").read_text())["steps"]}
    assert got["1"] == ("failed", "timed out after 30 s (its box); last line: still rendering")
    assert got["2"] == ("failed", "exit code 1: RuntimeError: boom")
    assert got["3"][0] == "failed"  # a record saying "passed" does not hide a failed exit
    assert got["4"] == ("skipped", "no GPU") and got["5"] == ("passed", "")
    assert "1 passed, 3 failed, 1 skipped" in r.stdout


def test_only_runs_the_steps_asked_for(tmp_path):
    """A second call on the GPU machine can give one step (the training burst) the time the
    first call left it short of: --only runs those steps and says the others were not asked for."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    r = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run", "--only", "1,4c", str(tmp_path)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    steps = {s["step"]: s for s in json.loads((tmp_path / "summary.json").read_text())["steps"]}
    assert list(steps) == STEPS and steps["1"]["status"] == "passed" and steps["4c"]["status"] == "skipped"
    assert all(s["reason"] == "not asked for (--only 1,4c)" for k, s in steps.items() if k not in ("1", "4c"))
