"""Is the temporal upscaler a fair baseline? Replays FSR 2-like variants of its accumulation on
TRAINING segments (never the held-out scenes) and prints Y-PSNR and temporal stability.

    .venv/bin/python scripts/temporal_variants.py data/fence_a data/gallery_slow_a data/plaza_a

Variants (each alone, then the chosen combination):

- ``fill``: where the history is invalid (disocclusion, first frame) the new frame upsampled
  bilinearly instead of its nearest jittered sample (blocky);
- ``ycocg``: the history clamped to the neighbourhood's mean +- 1.25 standard deviations in
  YCoCg (variance clipping) instead of the RGB min/max box;
- ``splat``: the new sample reconstructed from the 3x3 nearest render samples weighted by a
  Gaussian of their distance (their total weight its confidence), not the nearest one alone.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stss_runtime import framedump
from stss_runtime.evaluation.evaluate import Stability, consecutive_geometry
from stss_runtime.frame import frame_from_dump
from stss_runtime.ops import accumulate as A
from stss_runtime.ops import metrics
from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import decode_color, display_transform, encode_color
from stss_runtime.passes.temporal import TemporalPass


def to_ycocg(c):
    r, g, b = c[:, 0:1], c[:, 1:2], c[:, 2:3]
    return torch.cat([0.25 * r + 0.5 * g + 0.25 * b, 0.5 * r - 0.5 * b, -0.25 * r + 0.5 * g - 0.25 * b], 1)


def from_ycocg(c):
    y, co, cg = c[:, 0:1], c[:, 1:2], c[:, 2:3]
    return torch.cat([y + co - cg, y + cg, y - co - cg], 1)


class Variant(TemporalPass):
    def __init__(self, fill=False, ycocg=False, splat=False):
        super().__init__()
        self.fill, self.ycocg, self.splat = fill, ycocg, splat

    def execute(self, frame):
        if not frame.shaded or self.accum is None:
            return super().execute(frame)
        self.history.step(frame, with_history=False)  # advances the hole mask
        size = self.display_size
        hw = (size[1], size[0])
        motion = W.upsample_motion(frame.motion, frame.depth, size)
        reprojected = W.sample(self.accum, motion, "bicubic").clamp(0.0, 1.0)
        valid = self._disocclusion_free(size)
        cur = encode_color(frame.color)
        jitter = frame.jitter_tensor().to(cur)
        nearest, lo, hi = A.current_samples(cur, hw, jitter)
        g = A.sample_weight(jitter, tuple(cur.shape[-2:]), hw, self.sigma_display_px)
        sample = nearest
        if self.splat:  # 3x3 render samples around the nearest one, Gaussian of their distance
            acc, wsum = 0.0, 0.0
            (h, w), sigma = cur.shape[-2:], self.sigma_display_px * cur.shape[-1] / hw[1]
            for dy, dx in itertools.product((-1, 0, 1), repeat=2):
                shifted = A.upsample(F.pad(cur, (1, 1, 1, 1), mode="replicate")[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w],
                                     hw, jitter, "nearest")
                xs = (torch.arange(hw[1]) + 0.5) * (w / hw[1]) - 0.5 + float(jitter[0, 0])
                ys = (torch.arange(hw[0]) + 0.5) * (h / hw[0]) - 0.5 + float(jitter[0, 1])
                ddx = xs - torch.round(xs) - dx
                ddy = ys - torch.round(ys) - dy
                wk = torch.exp(-(ddy.view(-1, 1) ** 2 + ddx.view(1, -1) ** 2) / (2 * sigma ** 2)).view(1, 1, *hw)
                acc, wsum = acc + wk * shifted, wsum + wk
            sample, g = acc / wsum, wsum.clamp_max(1.0)
        if self.ycocg:
            ycc = to_ycocg(cur)
            mean = F.avg_pool2d(ycc, 3, 1, 1, count_include_pad=False)
            sd = (F.avg_pool2d(ycc * ycc, 3, 1, 1, count_include_pad=False) - mean * mean).clamp_min(0).sqrt()
            lo_y, hi_y = (A.upsample(t, hw, jitter) for t in (mean - 1.25 * sd, mean + 1.25 * sd))
            history = from_ycocg(torch.minimum(torch.maximum(to_ycocg(reprojected), lo_y), hi_y))
        else:
            history = A.clamp_to_box(reprojected, lo, hi)
        prev_w = W.sample(self.weight, motion, "nearest") * valid
        alpha = A.rule_alpha(g, prev_w, self.max_weight)
        new = sample
        if self.fill:  # no history: the frame upsampled bilinearly, not its nearest sample
            new = torch.where(prev_w > 0, sample, A.upsample(cur, hw, jitter, "bilinear"))
        self.accum = history + alpha * (new - history)
        self.weight = (prev_w + g).clamp_max(self.max_weight)
        return decode_color(self.accum)


def score(folder: Path, variants: dict, warmup: int = 6) -> dict:
    meta = framedump.read_meta(folder)
    idx = framedump.existing_frames(folder)
    rs, ds = tuple(meta["render_size"]), tuple(meta["display_size"])
    geometry = consecutive_geometry(folder, meta, idx)
    out = {}
    for name, p in variants.items():
        p.setup(rs, ds)
        stab = Stability(ds, geometry)
        psnr = {"sf": [], "ef": []}
        for i in idx:
            arrays = framedump.read_frame(folder, i)
            img = display_transform(p(frame_from_dump(arrays, meta, i, shaded=(i % 2 == 0)))[0].permute(1, 2, 0).numpy())
            if i < warmup:
                continue
            gt = display_transform(arrays["gt"].astype(np.float32))
            psnr["sf" if i % 2 == 0 else "ef"].append(metrics.psnr_y(gt, img))
            stab.add(i, img, gt)
        s = stab.mean()
        out[name] = {k: (float(np.mean(v)), s[k]) for k, v in psnr.items()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+", type=Path, help="training frame dumps (not the held-out ones)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    make = {"shipped": dict(), "fill": dict(fill=True), "ycocg": dict(ycocg=True), "splat": dict(splat=True),
            "fill+ycocg": dict(fill=True, ycocg=True), "fill+splat": dict(fill=True, splat=True),
            "fill+ycocg+splat": dict(fill=True, ycocg=True, splat=True)}
    print(f"{'variant':<18}" + "".join(f"{Path(d).name + ' SF / EF dB, stab SF / EF':>44}" for d in a.data))
    res = {d: score(d, {k: Variant(**v) for k, v in make.items()}) for d in a.data}
    for k in make:
        cells = []
        for d in a.data:
            (sf, ssf), (ef, sef) = res[d][k]["sf"], res[d][k]["ef"]
            cells.append(f"{sf:.2f} / {ef:.2f}, {ssf:.3f} / {sef:.3f}")
        print(f"{k:<18}" + "".join(f"{c:>44}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
