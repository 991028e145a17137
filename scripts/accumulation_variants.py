"""Variants of ``stss_taa``'s accumulation, replayed on recorded STSS outputs of training
segments (never the held-out scenes), against the shipped setting (alpha 0.4, 3x3 min/max
box, keep window 3):

    .venv/bin/python scripts/accumulation_variants.py data/plaza_c data/scatter_17 data/gallery_d

- ``alpha 0.5``: a larger new-frame weight than any ``tune_accumulation.py`` tried;
- ``variance γ``: clamp to mean ± γ·std of the new frame's 3x3 neighbourhood (within the box);
- ``ycocg``: clamp in YCoCg rather than RGB;
- ``alpha_ef``: another new-frame weight for extrapolated (EF) frames than for rendered ones;
- ``speed β``: new-frame weight 0.4 + β·|motion| (display px): less history under fast motion;
- ``mix w``: w·stss_taa + (1-w)·the temporal upscaler (jittered render samples accumulated).

Prints the mean Y-PSNR (dB) of rendered (SF) and extrapolated (EF) frames after 6 warm-up
frames, per folder and averaged. STSS is run once per folder (shipped weights) and cached in
``--cache`` with the temporal upscaler's outputs (~7 MB per 960x540 frame; the STSS cache's
name carries the weights' hash, so new weights are recorded anew).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from tune_accumulation import record, replay  # noqa: E402

from stss_runtime import framedump  # noqa: E402
from stss_runtime.checkpoint import default_weights  # noqa: E402
from stss_runtime.frame import frame_from_dump  # noqa: E402
from stss_runtime.ops import warp as W  # noqa: E402
from stss_runtime.ops.encoding import encode_color  # noqa: E402
from stss_runtime.passes.stss_taa import StssTaaPass  # noqa: E402
from stss_runtime.passes.temporal import TemporalPass  # noqa: E402

SHIPPED = {"alpha": StssTaaPass.alpha, "clamp": StssTaaPass.clamp_window,
           "keep": StssTaaPass.keep_window}
VARIANTS = [("STSS alone", {"alpha": 1.0}), ("shipped (box, 0.4)", {}), ("alpha 0.5", {"alpha": 0.5}),
            ("variance γ=1", {"gamma": 1.0}), ("variance γ=1.25", {"gamma": 1.25}),
            ("ycocg box", {"ycocg": True}), ("alpha_ef 0.3", {"alpha_ef": 0.3}), ("alpha_ef 0.5", {"alpha_ef": 0.5}),
            ("speed β=0.02", {"beta": 0.02}), ("speed β=0.05", {"beta": 0.05}),
            ("mix w=0.8", {"mix": 0.8}), ("mix w=0.6", {"mix": 0.6})]


def ycocg(x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    a, b, c = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    if inverse:  # (Y, Co, Cg) -> RGB
        t = a - c
        return torch.cat([t + b, a + c, t - b], 1)
    return torch.cat([0.25 * a + 0.5 * b + 0.25 * c, 0.5 * a - 0.5 * c, -0.25 * a + 0.5 * b - 0.25 * c], 1)


def step(accum, cur, motion, depth, valid, is_ef: bool, v: dict) -> torch.Tensor:
    """:func:`stss_runtime.passes.stss.accumulate` with the variant's changes."""
    size = (cur.shape[-1], cur.shape[-2])
    up = W.upsample_motion(motion, depth, size)
    rep = W.sample(accum, up, "bicubic").clamp(0.0, 1.0)
    c, h = (ycocg(cur), ycocg(rep)) if v.get("ycocg") else (cur, rep)
    k = SHIPPED["clamp"]
    lo, hi = -F.max_pool2d(-c, k, 1, k // 2), F.max_pool2d(c, k, 1, k // 2)
    if "gamma" in v:
        m1 = F.avg_pool2d(c, k, 1, k // 2, count_include_pad=False)
        sd = (F.avg_pool2d(c * c, k, 1, k // 2, count_include_pad=False) - m1 * m1).clamp_min(0).sqrt()
        lo, hi = torch.maximum(lo, m1 - v["gamma"] * sd), torch.minimum(hi, m1 + v["gamma"] * sd)
    hist = torch.minimum(torch.maximum(h, lo), hi)
    if v.get("ycocg"):
        hist = ycocg(hist, inverse=True)
    keep = SHIPPED["keep"]
    kept = W.resample(F.max_pool2d(valid, keep, 1, keep // 2), size, mode="nearest")
    alpha = v.get("alpha", SHIPPED["alpha"])
    a = torch.full_like(kept, v.get("alpha_ef", alpha) if is_ef else alpha)
    if "beta" in v:
        a = (a + v["beta"] * up.norm(dim=1, keepdim=True)).clamp(max=1.0)
    a = torch.where(kept > 0.5, a, torch.ones_like(kept))
    return hist + a * (cur - hist)


def temporal_outputs(folder: Path) -> list[torch.Tensor]:
    meta = framedump.read_meta(folder)
    p = TemporalPass()
    p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
    return [encode_color(p(frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0)))).clone()
            for i in framedump.existing_frames(folder)]


def cached(path: Path, make):
    if path.exists():
        return torch.load(path, weights_only=False)
    value = make()
    torch.save(value, path)
    return value


def score(rec: list[dict], temporal: list[torch.Tensor], v: dict, warmup: int = 6) -> tuple[float, float]:
    """Mean Y-PSNR (SF, EF) of variant ``v`` (:func:`tune_accumulation.replay`)."""
    mix = None
    if "mix" in v:
        mix = lambda accum, n: v["mix"] * accum + (1 - v["mix"]) * temporal[n]  # noqa: E731
    return replay(rec, lambda accum, d: step(accum, d["enc"], d["motion"], d["depth"], d["valid"], d["i"] % 2 == 1, v),
                  warmup, output=mix)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+", type=Path, help="frame dump folders (training segments)")
    ap.add_argument("--cache", type=Path, default=Path("runs/accumulation_cache"),
                    help="where the recorded STSS and temporal outputs are kept (default runs/accumulation_cache)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha1(default_weights("stss").read_bytes()).hexdigest()[:10]
    recs = {f.name: (cached(args.cache / f"{f.name}_stss_{tag}.pt", lambda f=f: record(f, None, 0)),
                     cached(args.cache / f"{f.name}_temporal.pt", lambda f=f: temporal_outputs(f)))
            for f in args.data}
    print(f"{'variant':20s} | " + " | ".join(f"{n} SF / EF" for n in recs) + " | mean SF / EF")
    for label, v in VARIANTS:
        res = [score(rec, temporal, v) for rec, temporal in recs.values()]
        mean = np.mean(res, 0)
        print(f"{label:20s} | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in res)
              + f" | {mean[0]:.3f} / {mean[1]:.3f}", flush=True)


if __name__ == "__main__":
    main()
