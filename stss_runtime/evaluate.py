"""Evaluate every method on a frame dump folder against its ground truth.

    python -m stss_runtime.evaluate --data data/traffic_eval --json out/eval.json --crops out/crops

Each method runs over the sequence in display order (even frames rendered, odd frames
extrapolated: the runtime's schedule) and is scored on 8-bit display-transformed frames:
Y-channel PSNR and SSIM and FLIP, separately for SF and EF frames, over all pixels, edge
pixels (Canny edges of the ground truth) and hole pixels (where the runtime's warp of the
last shaded frame is invalid). A method whose weights are missing is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import framedump, metrics
from .checkpoint import WeightsError
from .frame import frame_from_dump
from .history import History
from .passes import PASSES, create_pass

DEFAULT_METHODS = ("stss", "bilinear", "bicubic", "temporal", "warp_fill", "two_stage")
NEURAL = {"stss", "two_stage"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m stss_runtime.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="frame dump folder (any scene)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated, from: {', '.join(PASSES)} (default: all)")
    p.add_argument("--weights", type=Path, help="STSS weights (default: the shipped ones)")
    p.add_argument("--frames", type=int, default=0, help="evaluate only the first N frames (0: all)")
    p.add_argument("--warmup", type=int, default=6,
                   help="first frames run but not scored, so histories fill (default 6)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--crops", type=Path, help="write side-by-side PNG crops here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in args.methods:
        if m not in PASSES:
            p.error(f"--methods: unknown method {m!r}; valid: {', '.join(PASSES)}")
    if not (args.data / "meta.json").exists():
        p.error(f"--data {args.data}: not a frame dump folder (no meta.json)")
    return args


def hole_masks(folder: Path, meta: dict, indices: list[int]) -> dict[int, np.ndarray]:
    """Display-resolution hole masks (True = hole) per frame from a reference runtime: for EF
    frames where the last shaded frame's warp is invalid, for SF frames where the previous
    shaded frame's is."""
    hist = History(frames=1)
    out = {}
    (dw, dh) = meta["display_size"]
    with torch.inference_mode():
        for i in indices:
            f = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0))
            inp = hist.step(f, with_history=False)
            valid = inp.mask if not f.shaded else hist.previous_valid
            if valid is None:
                out[i] = np.zeros((dh, dw), bool)
                continue
            v = valid[0, 0].numpy() < 0.5
            out[i] = np.repeat(np.repeat(v, dh // v.shape[0], 0), dw // v.shape[1], 1)
    return out


def make_pass(name: str, weights: Path | None):
    if name == "stss" and weights is not None:
        from .checkpoint import load_weights
        from .models import STSS

        model, info = load_weights(weights)
        if not isinstance(model, STSS):
            raise WeightsError(f"--weights {weights} holds a {info.get('model')!r} model, not an STSS preset")
        return create_pass("stss", model=model)
    return create_pass(name)


def evaluate(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    folder: Path = args.data
    meta = framedump.read_meta(folder)
    indices = framedump.existing_frames(folder)
    if args.frames:
        indices = indices[: args.frames]
    if indices != list(range(len(indices))) or len(indices) <= args.warmup:
        raise SystemExit(f"evaluate: {folder} needs frames 0..N-1 with N > --warmup "
                         f"({args.warmup}); found {len(indices)}")
    scored = [i for i in indices if i >= args.warmup]
    holes = hole_masks(folder, meta, indices)
    gts = {i: metrics.to_display(framedump.read_frame(folder, i)["gt"].astype(np.float32)) for i in scored}
    results = {"data": str(folder), "scene": meta["scene"],
               "frames": {"sf": sum(i % 2 == 0 for i in scored), "ef": sum(i % 2 == 1 for i in scored)},
               "methods": {}, "time_ms": {}, "skipped": {}}
    outputs_for_crops: dict[str, dict[int, np.ndarray]] = {}
    crop_frames = _crop_frames(scored)
    for name in args.methods:
        try:
            p = make_pass(name, args.weights)
        except WeightsError as e:
            results["skipped"][name] = str(e)
            print(f"evaluate: skipping {name}: {e}", file=sys.stderr)
            continue
        p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
        acc = {"sf": metrics.MetricAccumulator(), "ef": metrics.MetricAccumulator()}
        times = []
        it = indices
        if not args.no_progress:
            from tqdm import tqdm

            it = tqdm(indices, desc=f"evaluate {name}", unit="frame", leave=False)
        for i in it:
            frame = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0))
            t0 = time.perf_counter()
            out = p(frame)
            times.append((time.perf_counter() - t0) * 1e3)
            if i < args.warmup:
                continue
            img = metrics.to_display(out[0].permute(1, 2, 0).cpu().numpy())
            acc["sf" if i % 2 == 0 else "ef"].add(metrics.evaluate_pair(gts[i], img, holes[i]))
            if i in crop_frames:
                outputs_for_crops.setdefault(name, {})[i] = img
        results["methods"][name] = {k: a.mean() for k, a in acc.items()}
        results["time_ms"][name] = float(np.median(times[args.warmup:]))
    if args.crops:
        write_crops(args.crops, results, gts, outputs_for_crops, holes)
    return results


def _crop_frames(scored: list[int]) -> set[int]:
    sf = [i for i in scored if i % 2 == 0]
    ef = [i for i in scored if i % 2 == 1]
    return {sf[len(sf) // 2], ef[len(ef) // 2]} if sf and ef else set()


def best_baseline(results: dict, kind: str) -> str | None:
    cands = [(m, r[kind]["all"]["psnr"]) for m, r in results["methods"].items()
             if m not in NEURAL and not math.isnan(r[kind]["all"]["psnr"])]
    return max(cands, key=lambda c: c[1])[0] if cands else None


def write_crops(out_dir: Path, results, gts, outputs, holes, size: int = 192) -> None:
    """Ground truth | STSS | best baseline, at the spot where the baseline errs most."""
    from PIL import Image, ImageDraw

    out_dir.mkdir(parents=True, exist_ok=True)
    for name_by_kind in ("sf", "ef"):
        base = best_baseline(results, name_by_kind)
        frames = [i for i in next(iter(outputs.values()), {}) if (i % 2 == 0) == (name_by_kind == "sf")]
        if not frames or base is None or "stss" not in outputs:
            continue
        i = frames[0]
        gt, ours, theirs = gts[i], outputs["stss"][i], outputs[base][i]
        err = np.abs(theirs.astype(np.float32) - gt).mean(-1)
        h, w = err.shape
        s = min(size, h, w)
        tiles = err[: h // s * s, : w // s * s].reshape(h // s, s, w // s, s).mean((1, 3))
        ty, tx = np.unravel_index(np.argmax(tiles), tiles.shape)
        y0, x0 = ty * s, tx * s
        panels = [gt, ours, theirs]
        labels = ["ground truth", "STSS", f"best baseline: {base}"]
        sheet = Image.new("RGB", (3 * 2 * s, 2 * s + 16), (0, 0, 0))
        d = ImageDraw.Draw(sheet)
        for k, (img, label) in enumerate(zip(panels, labels)):
            crop = Image.fromarray(img[y0:y0 + s, x0:x0 + s]).resize((2 * s, 2 * s), Image.NEAREST)
            sheet.paste(crop, (k * 2 * s, 16))
            d.text((k * 2 * s + 4, 2), label, fill=(255, 255, 255))
        sheet.save(out_dir / f"{results['scene']}_{name_by_kind}_frame{i:06d}.png")


def main(argv=None) -> int:
    args = parse_args(argv)
    results = evaluate(args)
    print(f"{results['scene']} ({results['data']}): {results['frames']['sf']} SF + "
          f"{results['frames']['ef']} EF frames scored after {args.warmup} warm-up frames")
    print(metrics.format_table(results))
    print("median time per frame (ms, this machine): " +
          ", ".join(f"{k} {v:.0f}" for k, v in results["time_ms"].items()))
    for k, v in results["skipped"].items():
        print(f"skipped {k}: {v}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
