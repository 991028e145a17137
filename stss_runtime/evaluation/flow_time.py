"""Benchmark tier 2's sparse computation: time per frame of the motion estimator's tier 2
(two fixed iterations, and the iteration policy) when an iteration computes a box around
each cluster of running tiles (what the runtime does), one box around all of them, or the
whole frame (dense).

    python -m stss_runtime measure flow-time --data data/traffic_eval data/fence_eval
    python -m stss_runtime measure flow-time --data data/traffic_eval --budgets 550 450

All variants compute the same flow (the boxes are exact, see ``models/flownet.py: HALO``); they
run in turn on each pair, in a rotating order, in one process, so that a machine whose speed
drifts affects them alike. Prints the median ms per frame after a warm-up round and the
median per-pair ratio to the dense variant. Camera prior, the tiles tier 0 finds not credible.

``--budgets``: the motion estimator with the policy over consecutive frames, its resource
scalar r set from each frame-time budget (``MotionEstimator(budget_ms=...)``), and without one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import framedump
from ..frame import frame_from_dump
from ..motion.credibility import credibility, tile_mask
from ..motion.decompose import camera_motion_between
from ..motion.estimator import CREDIBLE_THRESHOLD

VARIANTS = ("clusters", "single", "dense")


class MeasureError(RuntimeError):
    """The measurement cannot run on these dumps (too few pairs); the message says why."""


@dataclass(frozen=True)
class FlowTimeConfig:
    """What to time; the fields mean what the ``measure flow-time`` options of the same names say."""

    data: tuple[Path, ...]
    every: int = 6
    max_pairs: int = 7
    reps: int = 3
    policy_max_iters: int = 4
    weights: Path | None = None
    policy_weights: Path | None = None
    threads: int = 1
    budgets: tuple[float, ...] | None = None
    frames: int = 40
    progress: bool = True

    def __post_init__(self):
        for name in ("every", "max_pairs", "policy_max_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if self.reps < 2:
            raise ValueError(f"reps: expected >= 2 (the first round is warm-up), got {self.reps}")
        if self.budgets is not None and (self.frames < 12 or any(not b > 0 for b in self.budgets)):
            raise ValueError(f"budgets: expected budgets > 0 ms with frames >= 12, got {list(self.budgets)} "
                             f"with {self.frames} frames")


def bench_budgets(cfg: FlowTimeConfig, ref, out=print) -> None:
    """The estimator over consecutive frames under each budget: median tier 2 ms and r."""
    from ..motion.estimator import MotionEstimator

    folder = cfg.data[0]
    meta = framedump.read_meta(folder)
    idx = framedump.existing_frames(folder)
    seq = [i for i in idx if i - 1 in idx][:cfg.frames]
    if len(seq) < 12:
        raise MeasureError(f"budgets: need at least 12 consecutive pairs in {folder}, found {len(seq)}")
    out(f"tier 2 under a frame-time budget, {folder}: pairs {seq[10]}-{seq[-1]} after 10 to settle, "
          f"camera prior, policy capped at {cfg.policy_max_iters} iterations, {cfg.threads} thread(s)")
    out(f"  {'budget ms':>10} {'median ms':>10} {'p90 ms':>8} {'r median':>9} {'r min':>6} {'r max':>6} {'it/tile':>8}")
    for budget in [None] + list(cfg.budgets):
        est = MotionEstimator(2, refiner=ref, use_policy=True, max_iters=cfg.policy_max_iters, budget_ms=budget)
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
        out(f"  {'none' if budget is None else f'{budget:g}':>10} {statistics.median(ms):10.0f} {p90:8.0f} "
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


def bench_variants(cfg: FlowTimeConfig, ref, out=print) -> None:
    """Tier 2 per frame with each way of computing the running tiles (see the docstring)."""
    pairs = []
    for folder in cfg.data:
        meta = framedump.read_meta(folder)
        idx = framedump.existing_frames(folder)
        for i in [i for i in idx[1::cfg.every] if i - 1 in idx][:cfg.max_pairs]:
            cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
            prev = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
            cam = camera_motion_between(cur, prev)
            tiles = tile_mask(credibility(cur, prev, cam, camera=cam), threshold=CREDIBLE_THRESHOLD)
            pairs.append((cur, prev, cam, tiles))
    if not pairs:
        raise MeasureError("no frame pair in the data folders")
    modes = {"fixed 2": dict(max_iters=2, use_policy=False),
             f"policy (cap {cfg.policy_max_iters})": dict(max_iters=cfg.policy_max_iters, use_policy=True)}
    boxes = {v: variant_boxes(ref.net, v) for v in VARIANTS}
    ms = {(m, v): [] for m in modes for v in VARIANTS}
    try:
        from tqdm import tqdm

        bar = tqdm(total=cfg.reps * len(pairs), desc="measure flow-time", unit="pair", disable=not cfg.progress)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        bar = None
    try:
        for rep in range(cfg.reps):
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
    out(f"tier 2 time per frame, {len(pairs)} pairs x {cfg.reps - 1} timed rounds, {cfg.threads} thread(s), "
          f"camera prior: median ms (median per-pair ratio to dense)")
    out(f"  {'':<18}" + "".join(f"{v:>22}" for v in VARIANTS))
    for m in modes:
        dense = ms[(m, "dense")]
        cells = [f"{statistics.median(ms[(m, v)]):9.1f} ({statistics.median(a / b for a, b in zip(ms[(m, v)], dense)):.3f})"
                 for v in VARIANTS]
        out(f"  {m:<18}" + "".join(f"{c:>22}" for c in cells))
