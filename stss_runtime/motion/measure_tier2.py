"""Measure tier 2 of the motion pass on held-out sequences: end-point error of the prior,
of the flow network at fixed iteration counts, and of the network under its iteration
policy at several resource scalars r; then the iterations the policy saves at equal EPE.

    python -m stss_runtime.motion.measure_tier2 --data data/traffic_eval data/fence_eval --json out/tier2.json

Pairs (frame i-1, frame i); the target is the renderer's motion of frame i. Priors
(--prior): ``camera`` = the camera-induced motion (a renderer whose motion vectors miss the
object part), ``zero`` = no motion vectors at all. EPE is reported over all pixels and over
the pixels whose object motion (renderer motion minus camera-induced motion) exceeds 0.5 px.

"Saving at equal EPE": for each r, the smallest fixed iteration count k whose EPE is at most
the policy's, and 1 - (policy iterations per tile, mean) / k. The fixed counts are prefixes
of one dense run (k iterations then stop: exactly what a run of k iterations computes), and
their time is that prefix's time. Kernels are dense: a stopped tile's work is still computed
(and discarded) unless every tile has stopped, so the time saved is far below the iteration
saving; iterations per tile are the FLOPs proxy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from .. import framedump
from ..checkpoint import WeightsError
from ..frame import frame_from_dump
from .decompose import camera_motion_between
from .tier2 import FlowRefiner, network_inputs, pad_to

MOVING_PX = 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m stss_runtime.motion.measure_tier2", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="held-out frame dump folders")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--weights", type=Path, default=None, help="flow network (default: the shipped weights)")
    p.add_argument("--policy-weights", type=Path, default=None, help="policy (default: the shipped weights)")
    p.add_argument("--prior", nargs="+", default=["camera", "zero"], choices=("camera", "zero"),
                   help="priors to measure from (default: camera zero)")
    p.add_argument("--max-iters", type=int, default=8, help="iterations of the dense run and the policy's cap")
    p.add_argument("--r", nargs="+", type=float, default=[1.0, 0.75, 0.5, 0.25], help="resource scalars")
    p.add_argument("--every", type=int, default=1, help="use every N-th pair (default 1: all)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    for d in a.data:
        if not (d / "meta.json").exists():
            p.error(f"--data {d}: not a frame dump folder (no meta.json)")
    if any(not 0.0 < r <= 1.0 for r in a.r):
        p.error(f"--r values must be in (0, 1], got {a.r}")
    if a.max_iters < 1 or a.every < 1:
        p.error("--max-iters and --every must be >= 1")
    return a


class Acc:
    """Pixel-weighted EPE sums: all pixels and moving pixels."""

    def __init__(self):
        self.s = self.n = self.sm = self.nm = 0.0

    def add(self, flow, target, moving):
        e = (flow - target).norm(dim=1, keepdim=True)
        self.s += float(e.sum())
        self.n += e.numel()
        self.sm += float(e[moving].sum())
        self.nm += int(moving.sum())

    def result(self):
        return {"epe": self.s / max(self.n, 1), "epe_moving": self.sm / self.nm if self.nm else None,
                "moving_pixels": int(self.nm)}


def measure(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    refiner = FlowRefiner.from_weights(args.weights, args.policy_weights)
    net = refiner.net
    pairs = []
    for folder in args.data:
        meta = framedump.read_meta(folder)
        idx = framedump.existing_frames(folder)
        pairs += [(folder, meta, i) for i in idx[1::args.every] if i - 1 in idx]
    k_max = args.max_iters
    res = {mode: {"prior": Acc(), "fixed": [Acc() for _ in range(k_max + 1)], "fixed_ms": [[] for _ in range(k_max + 1)],
                  "policy": {r: Acc() for r in args.r}, "policy_ms": {r: [] for r in args.r},
                  "policy_it": {r: [] for r in args.r}, "policy_it_max": {r: 0 for r in args.r}}
           for mode in args.prior}
    it = pairs
    if not args.no_progress:
        from tqdm import tqdm

        it = tqdm(pairs, desc="measure tier 2", unit="pair")
    with torch.inference_mode():
        for folder, meta, i in it:
            cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
            prev = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
            cam = camera_motion_between(cur, prev)
            target = cur.motion
            moving = (target - cam).norm(dim=1, keepdim=True) > MOVING_PX
            w, h = cur.size
            for mode in args.prior:
                R = res[mode]
                prior = cam if mode == "camera" else torch.zeros_like(cam)
                R["prior"].add(prior, target, moving)
                # dense run: every fixed count k is a prefix of it
                times = []
                t0 = time.perf_counter()
                m_cur, m_prev, ctx, jd = network_inputs(cur, prev)
                out = net.refine(pad_to(m_cur), pad_to(m_prev), pad_to(ctx), pad_to(prior), jd, k_max, timings=times)
                for k in range(k_max + 1):
                    f = prior if k == 0 else out.flows[k - 1][..., :h, :w]
                    R["fixed"][k].add(f, target, moving)
                    R["fixed_ms"][k].append(0.0 if k == 0 else 1000.0 * (times[k] - t0))
                for r in args.r:
                    t0 = time.perf_counter()
                    pr = refiner(cur, prev, prior, r=r, max_iters=k_max)
                    R["policy_ms"][r].append(1000.0 * (time.perf_counter() - t0))
                    R["policy"][r].add(pr.flow, target, moving)
                    R["policy_it"][r].append(pr.iterations_mean)
                    R["policy_it_max"][r] = max(R["policy_it_max"][r], pr.iterations_max)

    report = {"data": [str(d) for d in args.data], "pairs": len(pairs), "every": args.every,
              "max_iters": k_max, "threads": torch.get_num_threads(), "moving_px": MOVING_PX, "modes": {}}
    for mode, R in res.items():
        fixed = [{"iterations": k, **R["fixed"][k].result(), "ms_median": statistics.median(R["fixed_ms"][k])}
                 for k in range(k_max + 1)]
        pol = []
        for r in args.r:
            p = {"r": r, "iterations_mean": statistics.fmean(R["policy_it"][r]),
                 "iterations_max": R["policy_it_max"][r], **R["policy"][r].result(),
                 "ms_median": statistics.median(R["policy_ms"][r])}
            p["iteration_saving_vs_max_iters"] = 1.0 - p["iterations_mean"] / k_max
            for key in ("epe", "epe_moving"):
                if p[key] is None:
                    continue
                k_eq = next((f["iterations"] for f in fixed if f[key] is not None and f[key] <= p[key]), None)
                p[f"equal_{key}_fixed_iterations"] = k_eq
                p[f"iteration_saving_{key}"] = (1.0 - p["iterations_mean"] / k_eq) if k_eq else None
            pol.append(p)
        report["modes"][mode] = {"prior": R["prior"].result(), "fixed": fixed, "policy": pol}
    return report


def _fmt(v, nd=3):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def print_report(rep: dict, file=sys.stdout) -> None:
    print(f"tier 2 on {', '.join(rep['data'])}: {rep['pairs']} pairs (every {rep['every']}), "
          f"{rep['threads']} thread(s); moving = object motion > {rep['moving_px']} px", file=file)
    for mode, m in rep["modes"].items():
        pr = m["prior"]
        print(f"\nprior '{mode}': EPE all {_fmt(pr['epe'])} px, moving {_fmt(pr['epe_moving'])} px "
              f"({pr['moving_pixels']} moving pixels)", file=file)
        print("  fixed iterations   EPE all   EPE moving   ms/frame (median)", file=file)
        for f in m["fixed"]:
            print(f"  {f['iterations']:>16d}   {_fmt(f['epe']):>7}   {_fmt(f['epe_moving']):>10}   "
                  f"{_fmt(f['ms_median'], 1):>8}", file=file)
        print("  policy r   it/tile mean   it max   EPE all   EPE moving   ms/frame   "
              "fixed k at equal EPE all (saving)   at equal EPE moving (saving)   vs max_iters", file=file)
        for p in m["policy"]:
            def sv(key):
                k = p.get(f"equal_{key}_fixed_iterations")
                s = p.get(f"iteration_saving_{key}")
                if k is None:
                    return "none reaches it"
                return f"k={k} ({_fmt(100 * s, 0)}% fewer)" if s is not None else f"k={k}"
            print(f"  {p['r']:>8.2f}   {p['iterations_mean']:>12.2f}   {p['iterations_max']:>6d}   "
                  f"{_fmt(p['epe']):>7}   {_fmt(p['epe_moving']):>10}   {_fmt(p['ms_median'], 1):>8}   "
                  f"{sv('epe'):>33}   {sv('epe_moving'):>28}   "
                  f"{_fmt(100 * p['iteration_saving_vs_max_iters'], 0)}% fewer", file=file)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        rep = measure(args)
    except WeightsError as e:
        print(f"measure_tier2: {e}", file=sys.stderr)
        return 2
    print_report(rep)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rep, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
