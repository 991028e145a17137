"""Benchmark tier 2's sparse computation: time per frame of the motion estimator's tier 2
(two fixed iterations, and the iteration policy) when an iteration computes a box around
each cluster of running tiles (what the runtime does), one box around all of them, or the
whole frame (dense).

    python -m stss_runtime.motion.bench_tier2 --data data/traffic_eval data/fence_eval
    python -m stss_runtime.motion.bench_tier2 --data data/traffic_eval --budgets 550 450

All variants compute the same flow (the boxes are exact, see ``models/flownet.py: HALO``); they
run in turn on each pair, in a rotating order, in one process, so that a machine whose speed
drifts affects them alike. Prints the median ms per frame after a warm-up round and the
median per-pair ratio to the dense variant. Camera prior, the tiles tier 0 finds not credible.

``--budgets``: the motion estimator with the policy over consecutive frames, its resource
scalar r set from each frame-time budget (``MotionEstimator(budget_ms=...)``), and without one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from .. import framedump
from ..checkpoint import WeightsError
from ..frame import frame_from_dump
from ..training.runs import check_data_folders
from .credibility import credibility, tile_mask
from .decompose import camera_motion_between
from .estimator import CREDIBLE_THRESHOLD
from .tier2 import FlowRefiner

VARIANTS = ("clusters", "single", "dense")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stss_runtime.motion.bench_tier2", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="frame dump folders")
    p.add_argument("--every", type=int, default=6, help="every N-th pair of each dump (default 6)")
    p.add_argument("--max-pairs", type=int, default=7, help="at most this many pairs per dump (default 7)")
    p.add_argument("--reps", type=int, default=3, help="rounds over the pairs; the first is warm-up (default 3)")
    p.add_argument("--policy-max-iters", type=int, default=4, help="the policy's iteration cap (default 4)")
    p.add_argument("--weights", type=Path, default=None, help="flow network (default: the shipped weights)")
    p.add_argument("--policy-weights", type=Path, default=None, help="policy (default: the shipped weights)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--budgets", type=float, nargs="*", default=None, metavar="MS",
                   help="instead: run the motion estimator (tier 2, policy) over consecutive frames of the "
                        "first --data dump with each frame-time budget for tier 2 (MotionEstimator(budget_ms=)), "
                        "and without one, and print the time and resource scalar r it settles at")
    p.add_argument("--frames", type=int, default=40, help="--budgets: frames per budget (default 40; the first "
                                                           "10 let r settle and are not counted)")
    a = p.parse_args(argv)
    check_data_folders(p, a.data)
    for name in ("every", "max_pairs", "policy_max_iters"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if a.reps < 2:
        p.error(f"--reps must be >= 2 (the first round is warm-up), got {a.reps}")
    if a.budgets is not None and (a.frames < 12 or any(not b > 0 for b in a.budgets)):
        p.error(f"--budgets needs --frames >= 12 and budgets > 0 ms, got --frames {a.frames}, --budgets {a.budgets}")
    return a


def bench_budgets(args, ref) -> int:
    """The estimator over consecutive frames under each budget: median tier 2 ms and r."""
    from .estimator import MotionEstimator

    folder = args.data[0]
    meta = framedump.read_meta(folder)
    idx = framedump.existing_frames(folder)
    seq = [i for i in idx if i - 1 in idx][:args.frames]
    if len(seq) < 12:
        print(f"bench_tier2: --budgets needs at least 12 consecutive pairs in {folder}, found {len(seq)}",
              file=sys.stderr)
        return 2
    print(f"tier 2 under a frame-time budget, {folder}: pairs {seq[10]}-{seq[-1]} after 10 to settle, "
          f"camera prior, policy capped at {args.policy_max_iters} iterations, {args.threads} thread(s)")
    print(f"  {'budget ms':>10} {'median ms':>10} {'p90 ms':>8} {'r median':>9} {'r min':>6} {'r max':>6} {'it/tile':>8}")
    for budget in [None] + list(args.budgets):
        est = MotionEstimator(2, refiner=ref, use_policy=True, max_iters=args.policy_max_iters, budget_ms=budget)
        rows = []
        for k, i in enumerate(seq):
            # consecutive pairs: this pair's previous frame is the last pair's current one
            if not (k and seq[k - 1] == i - 1):
                cur = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
            prev = cur
            cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
            res = est.estimate(cur, prev, "camera")
            rows.append((res.tier2_ms, res.r, res.iterations_mean))
        ms, rs, its = zip(*rows[10:])
        p90 = sorted(ms)[int(0.9 * (len(ms) - 1))]
        print(f"  {'none' if budget is None else f'{budget:g}':>10} {statistics.median(ms):10.0f} {p90:8.0f} "
              f"{statistics.median(rs):9.2f} {min(rs):6.2f} {max(rs):6.2f} {statistics.fmean(its):8.2f}")
    return 0


def variant_boxes(net, name: str):
    """The ``active_boxes`` function of variant ``name`` for ``net``."""
    if name == "clusters":
        return type(net).active_boxes.__get__(net)
    if name == "single":
        return lambda active, hw: [(*net.active_box(active, hw), active)]
    full = (Ellipsis, slice(None), slice(None))
    return lambda active, hw: [(full, full, active)]


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        ref = FlowRefiner.from_weights(args.weights, args.policy_weights)
    except WeightsError as e:
        print(f"bench_tier2: {e}", file=sys.stderr)
        return 2
    if args.budgets is not None:
        return bench_budgets(args, ref)
    pairs = []
    for folder in args.data:
        meta = framedump.read_meta(folder)
        idx = framedump.existing_frames(folder)
        for i in [i for i in idx[1::args.every] if i - 1 in idx][:args.max_pairs]:
            cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
            prev = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
            cam = camera_motion_between(cur, prev)
            tiles = tile_mask(credibility(cur, prev, cam, camera=cam), threshold=CREDIBLE_THRESHOLD)
            pairs.append((cur, prev, cam, tiles))
    if not pairs:
        print("bench_tier2: no frame pair in --data", file=sys.stderr)
        return 2
    modes = {"fixed 2": dict(max_iters=2, use_policy=False),
             f"policy (cap {args.policy_max_iters})": dict(max_iters=args.policy_max_iters, use_policy=True)}
    boxes = {v: variant_boxes(ref.net, v) for v in VARIANTS}
    ms = {(m, v): [] for m in modes for v in VARIANTS}
    try:
        from tqdm import tqdm

        bar = tqdm(total=args.reps * len(pairs), desc="bench tier 2", unit="pair")
    except ImportError:  # pragma: no cover - tqdm is a dependency
        bar = None
    try:
        for rep in range(args.reps):
            for k, (cur, prev, cam, tiles) in enumerate(pairs):
                order = VARIANTS[(k + rep) % 3:] + VARIANTS[:(k + rep) % 3]
                for m, kw in modes.items():
                    for v in order:
                        ref.net.active_boxes = boxes[v]
                        t0 = time.perf_counter()
                        with torch.inference_mode():
                            ref(cur, prev, cam, r=1.0, tiles=tiles, **kw)
                        if rep:
                            ms[(m, v)].append(1000.0 * (time.perf_counter() - t0))
                if bar is not None:
                    bar.update(1)
    finally:
        del ref.net.active_boxes  # back to the method
        if bar is not None:
            bar.close()
    print(f"tier 2 time per frame, {len(pairs)} pairs x {args.reps - 1} timed rounds, {args.threads} thread(s), "
          f"camera prior: median ms (median per-pair ratio to dense)")
    print(f"  {'':<18}" + "".join(f"{v:>22}" for v in VARIANTS))
    for m in modes:
        dense = ms[(m, "dense")]
        cells = [f"{statistics.median(ms[(m, v)]):9.1f} ({statistics.median(a / b for a, b in zip(ms[(m, v)], dense)):.3f})"
                 for v in VARIANTS]
        print(f"  {m:<18}" + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
