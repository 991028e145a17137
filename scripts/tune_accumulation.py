"""Choose ``stss_taa``'s accumulation settings (alpha, clamp window, keep window) on
training segments, never on the held-out scenes.

    .venv/bin/python scripts/tune_accumulation.py data/plaza_c data/scatter_17

Runs STSS (the shipped weights, or ``--weights``) once over each folder, keeping every
frame's encoded output, motion, depth and the runtime's hole mask, then replays
:func:`stss_runtime.passes.stss.accumulate` with each setting of the grid and prints
the mean Y-PSNR (dB) of rendered (SF) and extrapolated (EF) frames after ``--warmup``
frames, per folder and averaged. ``alpha 1`` is STSS alone. Memory: ~7 MB per 960x540 frame.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from stss_runtime import framedump
from stss_runtime.frame import frame_from_dump
from stss_runtime.ops import metrics
from stss_runtime.ops.encoding import decode_color, display_transform
from stss_runtime.passes import StssPass
from stss_runtime.passes.stss_taa import accumulate


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def record(folder: Path, weights: Path | None, frames: int) -> list[dict]:
    meta = framedump.read_meta(folder)
    kw = {}
    if weights is not None:
        from stss_runtime.checkpoint import load_weights

        kw["model"] = load_weights(weights)[0]
    p = StssPass(**kw)
    p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
    w, h = p.display_size
    rec = []
    indices = framedump.existing_frames(folder)[: frames or None]
    with torch.inference_mode():
        for i in indices:
            arrays = framedump.read_frame(folder, i)
            f = frame_from_dump(arrays, meta, i, shaded=(i % 2 == 0))
            enc = p.run(p.prepare(f))[..., :h, :w].clone()
            rec.append({"i": i, "enc": enc, "motion": f.motion, "depth": f.depth,
                        "valid": p.history.previous_valid,
                        "gt": display_transform(arrays["gt"].astype(np.float32))})
    return rec


def replay(rec: list[dict], step, warmup: int, output=None) -> tuple[float, float]:
    """Mean Y-PSNR (SF, EF) after ``warmup`` frames of the accumulation ``step(accum, d)``
    builds over the recorded frames ``d`` (restarted from STSS after a reset);
    ``output(accum, n)``: what is scored for the n-th frame (default: the accumulation)."""
    accum, scores = None, {0: [], 1: []}
    for n, d in enumerate(rec):
        accum = d["enc"] if accum is None or d["valid"] is None else step(accum, d)
        if d["i"] >= warmup:
            out = accum if output is None else output(accum, n)
            img = display_transform(decode_color(out)[0].permute(1, 2, 0).numpy())
            scores[d["i"] % 2].append(metrics.psnr_y(d["gt"], img))
    return float(np.mean(scores[0])), float(np.mean(scores[1]))


def setting(alpha: float, clamp: int, keep: int):
    """The pass's own accumulation step with these settings, for :func:`replay`."""
    return lambda accum, d: accumulate(accum, d["enc"], d["motion"], d["depth"], d["valid"], alpha, clamp, keep)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+", type=Path, help="frame dump folders (training segments)")
    ap.add_argument("--weights", type=Path, help="STSS weights (default: the shipped ones)")
    ap.add_argument("--alpha", type=floats, default=[1.0, 0.2, 0.3, 0.4], help="comma-separated (default 1,0.2,0.3,0.4)")
    ap.add_argument("--clamp", type=ints, default=[3, 5], help="clamp windows, display px (default 3,5)")
    ap.add_argument("--keep", type=ints, default=[1, 3, 5], help="keep windows, render px (default 1,3,5)")
    ap.add_argument("--frames", type=int, default=0, help="first N frames of each folder (0: all)")
    ap.add_argument("--warmup", type=int, default=6, help="frames not scored, as evaluate (default 6)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    recs = {f.name: record(f, args.weights, args.frames) for f in args.data}
    print("alpha clamp keep | " + " | ".join(f"{n} SF / EF" for n in recs) + " | mean SF / EF")
    for alpha, clamp, keep in itertools.product(args.alpha, args.clamp, args.keep):
        if alpha == 1.0 and (clamp, keep) != (args.clamp[0], args.keep[0]):
            continue  # alpha 1 ignores the history: one row is enough
        res = [replay(r, setting(alpha, clamp, keep), args.warmup) for r in recs.values()]
        mean = np.mean(res, 0)
        print(f"{alpha:5.2f} {clamp:5d} {keep:4d} | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in res)
              + f" | {mean[0]:.3f} / {mean[1]:.3f}", flush=True)


if __name__ == "__main__":
    main()
