"""Where to undo the render's jitter: at render resolution before the network, or at display
resolution after it? Scores the network's residual path alone (bilinear x2 of the rendered
colour, no learned part) both ways against the ground truth of rendered (SF) frames.

    .venv/bin/python scripts/unjitter_check.py data/traffic_eval data/fence_eval

Prints the mean Y-PSNR (dB, the evaluation's metric) per folder of:
- ``direct``: one bilinear resample of the render onto the display grid (the ``bilinear`` baseline);
- ``render_res``: bicubic sub-pixel shift at render resolution, then bilinear x2 (how STSS's
  inputs were unjittered until stop 13);
- ``display_res``: bilinear x2 on the render's own grid, then the bicubic shift by twice the
  jitter at display resolution (:func:`stss_runtime.graphs.to_display_grid`, since stop 13).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stss_runtime import framedump, metrics
from stss_runtime import warp as W
from stss_runtime.frame import frame_from_dump
from stss_runtime.graphs import shift_bicubic, to_display_grid
from stss_runtime.history import decode_color, encode_color


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", type=Path, help="frame dump folders")
    p.add_argument("--warmup", type=int, default=6, help="first frames skipped, as evaluate (default 6)")
    args = p.parse_args(argv)
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
            j = torch.tensor(f.jitter_px, dtype=torch.float32).view(1, 2, 1, 1)
            up = lambda t: F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)  # noqa: E731
            outs = {"direct": W.resample(x, (dw, dh), f.jitter_px),
                    "render_res": up(shift_bicubic(x, j)),
                    "display_res": to_display_grid(up(x), j)}
            gt = metrics.to_display(arrays["gt"].astype(np.float32))
            for k, o in outs.items():
                img = metrics.to_display(decode_color(o)[0].permute(1, 2, 0).numpy())
                scores[k].append(metrics.psnr_y(gt, img))
        print(f"{folder.name} ({len(scores['direct'])} SF frames): "
              + ", ".join(f"{k} {np.mean(v):.2f} dB" for k, v in scores.items()))


if __name__ == "__main__":
    main()
