"""What the demo itself costs: the windowed demo run with and without the overlay and with
each comparison view, and the frame time and the demo's own passes compared.

    python -m demo_renderer.cost --mode bilinear --frames 24 --rounds 2

Each configuration runs ``python -m demo_renderer demo --window`` in its own process (under
``xvfb-run`` when there is no display), the configurations interleaved ``--rounds`` times so
a change in the machine's load hits them alike. From each ``profile.csv`` the first
``--warmup`` frames are dropped (shader compilation, the plugin's first frames). The table
gives the median and mean frame time (``MsBetweenPresents``) and the median CPU / GPU ms of
the demo's own passes: ``overlay`` (ImGui + ImPlot), ``compare`` (the native frame rendered
at display resolution for the wipe or side by side), ``debug`` (a debug view) and
``present`` (uploads and composition, the loupe included).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

#: (label, demo arguments): the bare demo first, then one thing added at a time.
CONFIGS = [
    ("no overlay, no comparison", ["--no-overlay", "--compare", "off"]),
    ("overlay", ["--compare", "off"]),
    ("overlay + wipe", ["--compare", "wipe"]),
    ("overlay + side by side", ["--compare", "side_by_side"]),
    ("overlay + wipe + loupe", ["--compare", "wipe", "--loupe"]),
    ("overlay + debug view (motion)", ["--compare", "off", "--debug-view", "motion"]),
]
#: The demo's own passes (profile columns).
OWN_PASSES = ("overlay", "compare", "debug", "present")


class CostError(RuntimeError):
    """A run failed or wrote no usable profile."""


def read_profile(path: Path, warmup: int) -> dict[str, np.ndarray]:
    """``{"frame_ms": ..., "<pass>_cpu_ms": ..., "<pass>_gpu_ms": ...}`` from a demo
    ``profile.csv``, without its first ``warmup`` rows; NaN where a pass was not measured."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) <= warmup:
        raise CostError(f"{path}: {len(rows)} frames, expected more than --warmup {warmup}")
    rows = rows[warmup:]
    out = {"frame_ms": np.array([float(r["MsBetweenPresents"]) for r in rows])}
    for col in rows[0]:
        if col.endswith("_ms"):
            out[col] = np.array([float(r[col]) if r[col] else math.nan for r in rows])
    return out


def summarise(profiles: dict[str, list[dict[str, np.ndarray]]]) -> list[dict]:
    """Per configuration (frames of all its rounds pooled): frames, median and mean frame ms
    (with frame generation the frame times are bimodal, rendered frames long and generated
    ones short: the mean is 1000 / presented FPS), and the median CPU and GPU ms of each of
    :data:`OWN_PASSES` over the frames that measured it."""
    rows = []
    for label, runs in profiles.items():
        ft = np.concatenate([r["frame_ms"] for r in runs])
        row = {"config": label, "frames": int(ft.size), "frame_ms": float(np.median(ft)), "mean_ms": float(ft.mean())}
        for p in OWN_PASSES:
            for tag in ("cpu", "gpu"):
                v = np.concatenate([r.get(f"{p}_{tag}_ms", np.zeros(0)) for r in runs])
                v = v[~np.isnan(v)]
                row[f"{p}_{tag}"] = float(np.median(v)) if v.size else math.nan
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`summarise`'s rows."""
    def ms(v: float) -> str:
        return "-" if math.isnan(v) else f"{v:.1f}"

    head = ("| configuration | frames | frame ms, median / mean | overlay CPU / GPU ms | compare CPU / GPU ms "
            "| debug view CPU / GPU ms | present CPU / GPU ms |")
    lines = [head, "|" + " --- |" * 7]
    for r in rows:
        cells = [r["config"], str(r["frames"]), f"{ms(r['frame_ms'])} / {ms(r['mean_ms'])}"]
        cells += [f"{ms(r[p + '_cpu'])} / {ms(r[p + '_gpu'])}" for p in OWN_PASSES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _run(args: list[str], out: Path) -> None:
    cmd = [sys.executable, "-m", "demo_renderer", "demo", "--window", *args, "--out", str(out)]
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise CostError("no display and no xvfb-run: install xvfb (make setup does) or run under X")
        cmd = [xvfb, "-a", "-s", "-screen 0 1280x1024x24", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise CostError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m demo_renderer.cost", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="bilinear", help="the demo's --mode (default bilinear: the cheapest pass, "
                                                        "so the demo's own cost is not lost in the network's)")
    ap.add_argument("--scene", default="gallery")
    ap.add_argument("--display-size", default="960x540")
    ap.add_argument("--frames", type=int, default=24, help="frames per run (default 24)")
    ap.add_argument("--warmup", type=int, default=4, help="first frames of each run left out (default 4)")
    ap.add_argument("--rounds", type=int, default=2, help="times each configuration runs, interleaved (default 2)")
    ap.add_argument("--out", type=Path, help="keep each run's profile here (default: a temporary folder)")
    a = ap.parse_args(argv)
    if a.frames <= a.warmup or a.warmup < 0 or a.rounds < 1:
        ap.error(f"--frames ({a.frames}) must exceed --warmup ({a.warmup}) >= 0, and --rounds ({a.rounds}) be >= 1")
    root = a.out or Path(tempfile.mkdtemp(prefix="demo_cost_"))
    common = ["--frames", str(a.frames), "--mode", a.mode, "--scene", a.scene, "--display-size", a.display_size]
    profiles: dict[str, list[dict[str, np.ndarray]]] = {label: [] for label, _ in CONFIGS}
    try:
        for k in range(a.rounds):
            for j, (label, args) in enumerate(CONFIGS):
                out = root / f"round{k}_config{j}"
                print(f"round {k + 1}/{a.rounds}: {label}", file=sys.stderr, flush=True)
                _run(common + args, out)
                profiles[label].append(read_profile(out / "profile.csv", a.warmup))
    except CostError as e:
        print(f"demo_renderer.cost: error: {e}", file=sys.stderr)
        return 1
    finally:
        if a.out is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{a.scene}, {a.display_size}, --mode {a.mode}: {a.rounds} x {a.frames - a.warmup} frames per configuration")
    print(format_table(summarise(profiles)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
