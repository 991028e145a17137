"""Where to undo the render's jitter: at render resolution before the network, or at display
resolution after it? Scores the network's residual path alone (bilinear x2 of the rendered
colour, no learned part) both ways against the ground truth of rendered (SF) frames.

    .venv/bin/python scripts/unjitter_check.py data/traffic_eval data/fence_eval

Prints the mean Y-PSNR (dB, the evaluation's metric) per folder of:
- ``direct``: one bilinear resample of the render onto the display grid (the ``bilinear`` baseline);
- ``render_res``: bicubic sub-pixel shift at render resolution, then bilinear x2 (how STSS's
  inputs were unjittered at first);
- ``display_res``: bilinear x2 on the render's own grid, then the bicubic shift by twice the
  jitter at display resolution (:func:`stss_runtime.graphs.to_display_grid`, what the runtime does).

``--time WxH`` also times the two corrections as the frame graph runs them, interleaved in one
process (median ms, one thread): the old one shifted the 24 input channels at render
resolution (colour and history bicubic, G-buffer features bilinear), the new one shifts the
3 output channels at display resolution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stss_runtime import framedump
from stss_runtime.frame import frame_from_dump
from stss_runtime.graphs import shift_bicubic, to_display_grid, warp_in_graph
from stss_runtime.ops import metrics
from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import decode_color, display_transform, encode_color


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", type=Path, help="frame dump folders")
    p.add_argument("--warmup", type=int, default=6, help="first frames skipped, as evaluate (default 6)")
    p.add_argument("--time", metavar="WxH", help="also time both corrections at this render size")
    args = p.parse_args(argv)
    if args.time:
        try:
            w, h = (int(v) for v in args.time.lower().split("x"))
        except ValueError:
            p.error(f"--time: expected WxH, e.g. 480x270, got {args.time!r}")
        time_corrections(w, h)
    up = lambda t: F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)  # noqa: E731
    for folder in args.data:
        meta = framedump.read_meta(folder)
        dw, dh = meta["display_size"]
        scores: dict[str, list[float]] = {"direct": [], "render_res": [], "display_res": []}
        for i in framedump.existing_frames(folder):
            if i < args.warmup or i % 2:
                continue
            arrays = framedump.read_frame(folder, i)
            f = frame_from_dump(arrays, meta, i)
            x = encode_color(f.color)
            j = f.jitter_tensor()
            outs = {"direct": W.resample(x, (dw, dh), f.jitter_px),
                    "render_res": up(shift_bicubic(x, j)),
                    "display_res": to_display_grid(up(x), j)}
            gt = display_transform(arrays["gt"].astype(np.float32))
            for k, o in outs.items():
                img = display_transform(decode_color(o)[0].permute(1, 2, 0).numpy())
                scores[k].append(metrics.psnr_y(gt, img))
        print(f"{folder.name} ({len(scores['direct'])} SF frames): "
              + ", ".join(f"{k} {np.mean(v):.2f} dB" for k, v in scores.items()))


def time_corrections(w: int, h: int, runs: int = 30) -> None:
    import time

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    j = torch.tensor([0.3, -0.2]).view(1, 2, 1, 1)
    x, hist, feat = torch.rand(1, 6, h, w, generator=g), torch.rand(1, 9, h, w, generator=g), torch.rand(1, 9, h, w, generator=g)
    out = torch.rand(1, 3, 2 * h, 2 * w, generator=g)

    def render_res():
        shift_bicubic(x, j).clamp(0.0, 1.0)
        for k in range(3):
            shift_bicubic(hist[:, 3 * k:3 * k + 3], j).clamp(0.0, 1.0)
        warp_in_graph(feat, j.expand(-1, -1, h, w))

    def display_res():
        to_display_grid(out, j)

    ms: dict[str, list[float]] = {"render_res": [], "display_res": []}
    with torch.inference_mode():
        for _ in range(3):
            render_res(), display_res()
        for _ in range(runs):
            for name, fn in (("render_res", render_res), ("display_res", display_res)):
                t0 = time.perf_counter()
                fn()
                ms[name].append((time.perf_counter() - t0) * 1e3)
    print(f"jitter correction at {w}x{h} (median of {runs}, 1 thread): "
          + ", ".join(f"{k} {np.median(v):.1f} ms" for k, v in ms.items()))


if __name__ == "__main__":
    main()
