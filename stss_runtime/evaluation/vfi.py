"""Measure the frame-interpolation pass on held-out sequences: quality of the cheap path,
the tile-pruned refiner (``vfi``) and the dense refiner (``vfi_dense``) against the
rendered middle frames, the fraction of tiles refined, and the refiner's time pruned vs
dense.

    python -m stss_runtime measure vfi --data data/traffic_eval data/fence_eval --json out/vfi_measure.json --threads 1

Each sequence runs through ONE ``vfi`` pass in display order (even frames rendered, odd
frames handed over with their motion only, as at run time; the inner upscaler sees the
rendered frames). After every interpolated frame m the same inputs also go through the
dense refiner, in the same process, so all three outputs share the upscaled a and b.
Scored on odd frames m >= ``--warmup`` (the upscaler's history fills first): Y-PSNR, SSIM
and FLIP (:mod:`stss_runtime.ops.metrics`, 8-bit display transform) vs m's ground truth.
Times: median per interpolated frame after the warm-up frames; the pruned refiner's time
includes its uncertainty head, the tile gather and the scatter; the dense refiner's its
context trunk (which it needs as well). "hold" (showing frame a again) is given as the
floor any interpolation must beat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import framedump
from ..frame import frame_from_dump
from ..ops import metrics
from ..ops.encoding import decode_color, display_transform
from ..passes.vfi import VfiPass

METHODS = ("hold", "cheap", "vfi", "vfi_dense")
GOAL_SAVING = 0.30
GOAL_PSNR_DB = 0.1


@dataclass(frozen=True)
class VfiMeasureConfig:
    """What to measure; the fields mean what the ``measure vfi`` options of the same names say."""

    data: tuple[Path, ...]
    weights: Path | None = None
    inner: str = "temporal"
    threshold: float | None = None
    warmup: int = 6
    frames: int = 0
    progress: bool = True


def _to8(linear: torch.Tensor) -> np.ndarray:
    return display_transform(linear[0].permute(1, 2, 0).cpu().numpy())


def measure_sequence(folder: Path, cfg: VfiMeasureConfig) -> dict:
    meta = framedump.read_meta(folder)
    indices = framedump.existing_frames(folder)
    if cfg.frames:
        indices = indices[: cfg.frames]
    p = VfiPass(inner=cfg.inner, weights=cfg.weights, threshold=cfg.threshold)
    p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
    acc = {m: metrics.MetricAccumulator() for m in METHODS}
    per_frame = []
    it = indices
    if not not cfg.progress:
        from tqdm import tqdm

        it = tqdm(indices, desc=f"vfi_measure {folder.name}", unit="frame", leave=False)
    prev_up = None
    with torch.inference_mode():
        for i in it:
            frame = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0))
            out = p(frame)
            stats = dict(p.last_stats)
            if not stats.get("interpolated"):
                if frame.shaded:
                    prev_up = p._prev_up
                continue
            m = i - 1
            t0 = time.perf_counter()
            dense, _ = p.refiner.dense(p.last_features)
            dense_ms = (time.perf_counter() - t0) * 1e3
            hold = prev_up
            prev_up = p._prev_up
            if m < cfg.warmup:
                continue
            gt = _to8(torch.from_numpy(framedump.read_frame(folder, m)["gt"].astype(np.float32))
                      .permute(2, 0, 1)[None])
            outs = {"hold": hold, "cheap": decode_color(p.last_cheap.cheap), "vfi": out,
                    "vfi_dense": decode_color(dense)}
            row = {"frame": m, "tiles_refined": stats["tiles_refined"], "cheap_ms": stats["cheap_ms"],
                   "refine_ms_pruned": stats["refine_ms"], "refine_ms_dense": dense_ms}
            for name, img in outs.items():
                r = metrics.evaluate_pair(gt, _to8(img))
                acc[name].add(r)
                row[f"psnr_{name}"] = r["all"]["psnr"]
            per_frame.append(row)
    med = lambda k: float(np.median([r[k] for r in per_frame]))  # noqa: E731
    return {"data": str(folder), "scene": meta["scene"], "frames_scored": len(per_frame),
            "methods": {m: a.mean() for m, a in acc.items()},
            "tiles_refined": float(np.mean([r["tiles_refined"] for r in per_frame])),
            "cheap_ms": med("cheap_ms"), "refine_ms_pruned": med("refine_ms_pruned"),
            "refine_ms_dense": med("refine_ms_dense"), "per_frame": per_frame,
            "threshold": p.refiner.threshold, "tile": p.refiner.tile}


def summarise(seqs: list[dict]) -> dict:
    frames = [r for s in seqs for r in s["per_frame"]]
    mean = lambda k: float(np.mean([r[k] for r in frames]))  # noqa: E731
    med = lambda k: float(np.median([r[k] for r in frames]))  # noqa: E731
    psnr = {m: mean(f"psnr_{m}") for m in METHODS}
    pruned_ms, dense_ms = med("refine_ms_pruned"), med("refine_ms_dense")
    per_frame_saving = float(np.median([1 - r["refine_ms_pruned"] / r["refine_ms_dense"] for r in frames]))
    saving = 1.0 - pruned_ms / dense_ms
    gap = psnr["vfi_dense"] - psnr["vfi"]
    return {"frames_scored": len(frames), "psnr_mean": psnr, "tiles_refined": mean("tiles_refined"),
            "cheap_ms": med("cheap_ms"), "refine_ms_pruned": pruned_ms, "refine_ms_dense": dense_ms,
            "refine_time_saving": saving, "refine_time_saving_per_frame_median": per_frame_saving,
            "psnr_gap_dense_minus_pruned_db": gap,
            "goal": {"saving_at_least": GOAL_SAVING, "psnr_gap_at_most_db": GOAL_PSNR_DB,
                     "met": bool(saving >= GOAL_SAVING and gap <= GOAL_PSNR_DB)}}


def format_report(seqs: list[dict], summary: dict) -> str:
    lines = []
    for s in seqs:
        lines.append(f"\n{s['scene']} ({s['data']}): {s['frames_scored']} interpolated frames scored; "
                     f"{100 * s['tiles_refined']:.1f}% of {s['tile']}px tiles refined (threshold {s['threshold']:.3f})")
        lines.append(f"  {'method':<10} {'PSNR':>7} {'SSIM':>7} {'FLIP':>7}")
        for m in METHODS:
            r = s["methods"][m]["all"]
            lines.append(f"  {m:<10} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['flip']:7.4f}")
        lines.append(f"  median ms per frame: cheap {s['cheap_ms']:.0f}, refiner pruned "
                     f"{s['refine_ms_pruned']:.0f} vs dense {s['refine_ms_dense']:.0f}")
    g = summary
    lines.append(f"\nall: {g['frames_scored']} frames; PSNR " +
                 ", ".join(f"{m} {v:.2f}" for m, v in g["psnr_mean"].items()) +
                 f"; tiles refined {100 * g['tiles_refined']:.1f}%; refiner {g['refine_ms_pruned']:.0f} ms pruned vs "
                 f"{g['refine_ms_dense']:.0f} ms dense (saving {100 * g['refine_time_saving']:.1f}%), PSNR dense - "
                 f"pruned {g['psnr_gap_dense_minus_pruned_db']:+.3f} dB; goal (>= 30% saving within "
                 f"0.1 dB) {'MET' if g['goal']['met'] else 'NOT MET'}")
    return "\n".join(lines)
