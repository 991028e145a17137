"""Summarise a demo run's profile.csv: presented frames per second, median, p95 and the 1% low
(MangoHud's rules, as the overlay computes them: demo_renderer.profiler.slowest), the
rendered / generated split and each pass's mean CPU and GPU time.

    .venv/bin/python scripts/profile_summary.py out/demo/profile.csv [--skip 10] [--markdown]

``--skip``: leading frames left out (start-up: the first frames compile the back-end's graph
and build the overlay's font atlas).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np

from demo_renderer.profiler import slowest


def summarise(path: Path, skip: int = 0) -> dict:
    rows = list(csv.DictReader(Path(path).open()))[skip:]
    if not rows:
        raise SystemExit(f"{path}: no frames after skipping {skip}")
    ft = np.array([float(r["MsBetweenPresents"]) for r in rows])
    desc = np.sort(ft)[::-1]
    # PresentMon's FrameType (Application, STSS_FG<k>), or the older Kind column
    kinds = [r["Kind"] if "Kind" in r else ("generated" if r["FrameType"].startswith("STSS_FG") else "rendered")
             for r in rows]
    out = {"frames": len(rows), "rendered": kinds.count("rendered"), "generated": kinds.count("generated"),
           "presented_fps": len(rows) / (ft.sum() / 1000.0), "median_ms": float(np.median(ft)),
           "p95_ms": slowest(desc, 0.05), "low_1pct_fps": 1000.0 / slowest(desc, 0.01),
           "mean_ms": float(ft.mean()), "passes": {}}
    out["rendered_fps"] = out["rendered"] / (ft.sum() / 1000.0)
    for col in rows[0]:
        if col.endswith("_cpu_ms") or col.endswith("_gpu_ms"):
            vals = [float(r[col]) for r in rows if r[col] not in ("", "nan")]
            name, tag = col[:-7], col[-6:-3]
            out["passes"].setdefault(name, {})[tag] = float(np.mean(vals)) if vals else math.nan
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile", type=Path)
    ap.add_argument("--skip", type=int, default=10, help="leading frames left out (default 10)")
    ap.add_argument("--markdown", action="store_true", help="the per-pass means as a markdown table")
    ns = ap.parse_args()
    s = summarise(ns.profile, ns.skip)
    print(f"{ns.profile}: {s['frames']} frames after {ns.skip} ({s['rendered']} rendered, {s['generated']} "
          f"generated): presented {s['presented_fps']:.1f} fps from {s['rendered_fps']:.1f} rendered; frame time "
          f"median {s['median_ms']:.1f} ms, mean {s['mean_ms']:.1f}, p95 {s['p95_ms']:.1f}; "
          f"1% low {s['low_1pct_fps']:.1f} fps")
    fmt = lambda v: "-" if math.isnan(v) else f"{v:.1f}"  # noqa: E731
    if ns.markdown:
        print("| pass | CPU ms (mean) | GPU ms (mean) |\n| --- | --- | --- |")
        for k, v in s["passes"].items():
            print(f"| {k} | {fmt(v.get('cpu', math.nan))} | {fmt(v.get('gpu', math.nan))} |")
    else:
        print("mean ms per pass (cpu / gpu): " + ", ".join(
            f"{k} {fmt(v.get('cpu', math.nan))} / {fmt(v.get('gpu', math.nan))}" for k, v in s["passes"].items()))


if __name__ == "__main__":
    main()
