"""Measure tier 2 of the motion pass on held-out sequences: end-point error of the prior,
of the flow network at fixed iteration counts, and of the network under its iteration
policy at several resource scalars r; then the iterations the policy saves at equal EPE.

    python -m stss_runtime measure flow-policy --data data/traffic_eval data/fence_eval --json out/flow_policy.json

Pairs (frame i-1, frame i); the target is the renderer's motion of frame i. Priors
(--prior): ``camera`` = the camera-induced motion (a renderer whose motion vectors miss the
object part), ``zero`` = no motion vectors at all. EPE is reported over all pixels and over
the pixels whose object motion (renderer motion minus camera-induced motion) exceeds 0.5 px.

``--fused`` measures tier 2 as the motion estimator runs it: the network refines only the
tiles holding pixels that tier 0's credibility marks as not credible, and its result replaces
the prior only on those pixels, outside disocclusions, and (camera prior) only where it
explains the colour clearly better (``estimator.fusion_mask``); iterations are then counted
per refined tile, and EPE is also reported over the non-credible pixels.

"Saving at equal EPE": for each r, the smallest fixed iteration count k whose EPE is at most
the policy's, and 1 - (policy iterations per tile, mean) / k. The fixed counts are prefixes
of one dense run (k iterations then stop: exactly what a run of k iterations computes), and
their time is that prefix's time. An iteration computes a box around each cluster of tiles
still running (plus the receptive field), so stopped tiles save time only where the boxes
shrink, and all of it when every tile has stopped; iterations per tile count the work the
policy decided (``measure flow-time`` times the boxes against dense computation).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import framedump
from ..frame import frame_from_dump
from ..models.flownet import PAD, TILE
from ..motion.credibility import credibility, tile_mask
from ..motion.decompose import camera_motion_between
from ..motion.estimator import CREDIBLE_THRESHOLD, fusion_mask, margin_for
from ..motion.flow_network import FlowRefiner, network_inputs, pad_to

MOVING_PX = 0.5


@dataclass(frozen=True)
class FlowPolicyConfig:
    """What to measure; the fields mean what the ``measure flow-policy`` options of the same
    names say."""

    data: tuple[Path, ...]
    weights: Path | None = None
    policy_weights: Path | None = None
    prior: tuple[str, ...] = ("camera", "zero")
    max_iters: int = 8
    r: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    fused: bool = False
    offsets: tuple[float, ...] | None = None
    tolerance: float = 0.01
    every: int = 1
    progress: bool = True

    def __post_init__(self):
        if any(not 0.0 < r <= 1.0 for r in self.r):
            raise ValueError(f"r: expected resource scalars in (0, 1], got {list(self.r)}")
        if self.max_iters < 1 or self.every < 1:
            raise ValueError(f"max_iters / every: expected >= 1, got {self.max_iters} / {self.every}")


class Acc:
    """Pixel-weighted EPE sums: all pixels, moving pixels and (fused) non-credible pixels."""

    def __init__(self):
        self.s = self.n = self.sm = self.nm = self.sc = self.nc = 0.0

    def add(self, flow, target, moving, noncredible=None):
        e = (flow - target).norm(dim=1, keepdim=True)
        self.s += float(e.sum())
        self.n += e.numel()
        self.sm += float(e[moving].sum())
        self.nm += int(moving.sum())
        if noncredible is not None:
            self.sc += float(e[noncredible].sum())
            self.nc += int(noncredible.sum())

    def result(self):
        out = {"epe": self.s / max(self.n, 1), "epe_moving": self.sm / self.nm if self.nm else None,
               "moving_pixels": int(self.nm)}
        if self.nc:
            out["epe_noncredible"] = self.sc / self.nc
            out["noncredible_pixels"] = int(self.nc)
        return out


def measure(cfg: FlowPolicyConfig) -> dict:
    refiner = FlowRefiner.from_weights(cfg.weights, cfg.policy_weights)
    net = refiner.net
    pairs = []
    for folder in cfg.data:
        meta = framedump.read_meta(folder)
        idx = framedump.existing_frames(folder)
        pairs += [(folder, meta, i) for i in idx[1::cfg.every] if i - 1 in idx]
    k_max = cfg.max_iters
    # policy settings: (r, decision offset); None = the offset stored with the policy weights
    settings = [(r, off) for r in cfg.r for off in (cfg.offsets or [None])]
    own_offset = float(refiner.policy.offset)
    res = {mode: {"prior": Acc(), "fixed": [Acc() for _ in range(k_max + 1)], "fixed_ms": [[] for _ in range(k_max + 1)],
                  "policy": {r: Acc() for r in settings}, "policy_ms": {r: [] for r in settings},
                  "policy_it": {r: [] for r in settings}, "policy_it_max": {r: 0 for r in settings}}
           for mode in cfg.prior}
    for R in res.values():
        R["tiles_refined"] = []
    it = pairs
    if not not cfg.progress:
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
            for mode in cfg.prior:
                R = res[mode]
                prior = cam if mode == "camera" else torch.zeros_like(cam)
                tiles = active = noncred = None
                if cfg.fused:  # as MotionEstimator(tier=2) runs it
                    cred = credibility(cur, prev, prior, camera=cam)
                    noncred = cred < CREDIBLE_THRESHOLD
                    tiles = tile_mask(cred, threshold=CREDIBLE_THRESHOLD)
                    active = torch.zeros(1, 1, -(-h // PAD) * PAD // TILE, -(-w // PAD) * PAD // TILE,
                                         dtype=torch.bool)
                    active[..., :tiles.shape[-2], :tiles.shape[-1]] = tiles
                    R["tiles_refined"].append(float(tiles.float().mean()))
                n_tiles = max(int(tiles.sum()), 1) if tiles is not None else None

                def fuse(f):
                    if not cfg.fused:
                        return f
                    return torch.where(fusion_mask(cur, prev, prior, f, cred, margin=margin_for(mode)), f, prior)

                R["prior"].add(prior, target, moving, noncred)
                # dense run: every fixed count k is a prefix of it
                times = []
                t0 = time.perf_counter()
                m_cur, m_prev, ctx, jd = network_inputs(cur, prev)
                out = net.refine(pad_to(m_cur), pad_to(m_prev), pad_to(ctx), pad_to(prior), jd, k_max,
                                 timings=times, active=active)
                for k in range(k_max + 1):
                    f = prior if (k == 0 or not out.flows) else out.flows[min(k, len(out.flows)) - 1][..., :h, :w]
                    R["fixed"][k].add(fuse(f), target, moving, noncred)
                    R["fixed_ms"][k].append(0.0 if k == 0 else 1000.0 * (times[min(k, len(times) - 1)] - t0))
                for r in settings:
                    refiner.policy.offset.fill_(own_offset if r[1] is None else r[1])
                    t0 = time.perf_counter()
                    pr = refiner(cur, prev, prior, r=r[0], max_iters=k_max, tiles=tiles)
                    R["policy_ms"][r].append(1000.0 * (time.perf_counter() - t0))
                    R["policy"][r].add(fuse(pr.flow), target, moving, noncred)
                    # iterations per refined tile (every tile unless --fused)
                    it = pr.iterations_mean if n_tiles is None else float(pr.iterations_per_tile.sum()) / n_tiles
                    R["policy_it"][r].append(it)
                    R["policy_it_max"][r] = max(R["policy_it_max"][r], pr.iterations_max)

    report = {"data": [str(d) for d in cfg.data], "pairs": len(pairs), "every": cfg.every,
              "fused": bool(cfg.fused),
              "max_iters": k_max, "threads": torch.get_num_threads(), "moving_px": MOVING_PX, "modes": {}}
    for mode, R in res.items():
        fixed = [{"iterations": k, **R["fixed"][k].result(), "ms_median": statistics.median(R["fixed_ms"][k])}
                 for k in range(k_max + 1)]
        pol = []
        for r in settings:
            p = {"r": r[0], "offset": own_offset if r[1] is None else r[1],
                 "iterations_mean": statistics.fmean(R["policy_it"][r]),
                 "iterations_max": R["policy_it_max"][r], **R["policy"][r].result(),
                 "ms_median": statistics.median(R["policy_ms"][r])}
            p["iteration_saving_vs_max_iters"] = 1.0 - p["iterations_mean"] / k_max
            for key in ("epe", "epe_moving", "epe_noncredible"):
                if p.get(key) is None:
                    continue
                k_eq = next((f["iterations"] for f in fixed if f.get(key) is not None and f[key] <= p[key]), None)
                p[f"equal_{key}_fixed_iterations"] = k_eq
                p[f"iteration_saving_{key}"] = (1.0 - p["iterations_mean"] / k_eq) if k_eq else None
            pol.append(p)
        report["modes"][mode] = {"prior": R["prior"].result(), "fixed": fixed, "policy": pol}
        if R["tiles_refined"]:
            report["modes"][mode]["tiles_refined"] = statistics.fmean(R["tiles_refined"])
    return report


def _fmt(v, nd=3):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def print_report(rep: dict, file=None) -> None:
    file = file or sys.stdout
    print(f"tier 2 on {', '.join(rep['data'])}: {rep['pairs']} pairs (every {rep['every']}), "
          f"{rep['threads']} thread(s); moving = object motion > {rep['moving_px']} px", file=file)
    if rep.get("fused"):
        print("fused as the motion estimator runs tier 2: only non-credible tiles refined, the result used "
              "on non-credible pixels; iterations per refined tile", file=file)
    for mode, m in rep["modes"].items():
        pr = m["prior"]
        nc = "epe_noncredible" in pr
        print(f"\nprior '{mode}': EPE all {_fmt(pr['epe'])} px, moving {_fmt(pr['epe_moving'])} px "
              f"({pr['moving_pixels']} moving pixels)"
              + (f", not credible {_fmt(pr['epe_noncredible'])} px ({pr['noncredible_pixels']} pixels, "
                 f"{_fmt(100 * m.get('tiles_refined', 0.0), 1)}% of the tiles refined)" if nc else ""), file=file)
        print("  fixed iterations   EPE all   EPE moving" + ("   EPE not credible" if nc else "")
              + "   ms/frame (median)", file=file)
        for f in m["fixed"]:
            print(f"  {f['iterations']:>16d}   {_fmt(f['epe']):>7}   {_fmt(f['epe_moving']):>10}   "
                  + (f"{_fmt(f.get('epe_noncredible')):>16}   " if nc else "")
                  + f"{_fmt(f['ms_median'], 1):>8}", file=file)
        print("  policy r   offset   it/tile mean   it max   EPE all   EPE moving   " + ("EPE not credible   " if nc else "")
              + "ms/frame   fixed k at equal EPE all (saving)   at equal EPE moving (saving)   "
              + ("at equal EPE not credible (saving)   " if nc else "") + "vs max_iters", file=file)
        for p in m["policy"]:
            def sv(key):
                k = p.get(f"equal_{key}_fixed_iterations")
                s = p.get(f"iteration_saving_{key}")
                if k is None:
                    return "none reaches it"
                return f"k={k} ({_fmt(100 * s, 0)}% fewer)" if s is not None else f"k={k}"
            print(f"  {p['r']:>8.2f}   {p['offset']:>6.2f}   {p['iterations_mean']:>12.2f}   {p['iterations_max']:>6d}   "
                  f"{_fmt(p['epe']):>7}   {_fmt(p['epe_moving']):>10}   "
                  + (f"{_fmt(p.get('epe_noncredible')):>16}   " if nc else "")
                  + f"{_fmt(p['ms_median'], 1):>8}   "
                  f"{sv('epe'):>33}   {sv('epe_moving'):>28}   "
                  + (f"{sv('epe_noncredible'):>34}   " if nc else "")
                  + f"{_fmt(100 * p['iteration_saving_vs_max_iters'], 0)}% fewer", file=file)


CALIBRATION_KEYS = ("epe", "epe_moving", "epe_noncredible")


def calibrate(rep: dict, cfg: FlowPolicyConfig) -> dict:
    """The largest offset (fewest iterations) whose EPE over all pixels, over moving pixels and
    (``--fused``) over non-credible pixels are each within ``cfg.tolerance`` (relative) of
    the best fixed iteration count's on that measure (first prior, first r)."""
    m = rep["modes"][cfg.prior[0]]
    keys = [k for k in CALIBRATION_KEYS if m["fixed"][1].get(k) is not None]
    best = {k: min(f[k] for f in m["fixed"][1:]) for k in keys}
    rows = [p for p in m["policy"] if p["r"] == cfg.r[0]]
    ok = [p for p in rows if all(p.get(k) is not None and p[k] <= best[k] * (1.0 + cfg.tolerance) for k in keys)]
    chosen = max(ok, key=lambda p: p["offset"]) if ok else min(rows, key=lambda p: p["offset"])
    return {"offset": chosen["offset"], "prior": cfg.prior[0], "r": cfg.r[0], "tolerance": cfg.tolerance,
            "best_fixed": best, "chosen": {k: chosen[k] for k in keys}, "iterations_mean": chosen["iterations_mean"],
            "met": bool(ok), "data": rep["data"], "pairs": rep["pairs"]}


def write_calibrated(rep: dict, cfg: FlowPolicyConfig, out: Path) -> dict:
    """Calibrate on ``rep`` (training sequences) and write the policy with the chosen decision
    offset to ``out``; returns the calibration, also stored in ``rep``."""
    from ..checkpoint import load_weights, save_weights
    from ..models import POLICY_MODELS
    from ..motion.flow_network import POLICY_WEIGHTS

    cal = calibrate(rep, cfg)
    rep["calibration"] = cal
    policy, info = load_weights(cfg.policy_weights or POLICY_WEIGHTS, expected_model=POLICY_MODELS)
    policy.offset.fill_(cal["offset"])
    name = info["model"]
    info = {k: v for k, v in info.items() if k not in ("model", "state_dict")}
    save_weights(out, policy, name, **info, calibration=cal)
    return cal
