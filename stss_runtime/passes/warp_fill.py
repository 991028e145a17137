"""``warp_fill``: extrapolation without a network, the baseline for generated frames. The last
*output* (display resolution) is warped by the upsampled motion vectors, holes filled by a
background-motion warp; rendered frames are upsampled bicubically.
"""

from __future__ import annotations

import torch

from ..frame import Frame
from ..history import History
from ..ops import warp as W
from ..ops.encoding import decode_color
from .base import Pass


class WarpFillPass(Pass):
    name = "warp_fill"
    description = "last output warped by motion vectors, holes filled from the background"
    inputs = ("color", "motion", "depth", "normal", "object_id")

    def reset(self) -> None:
        self.history = History(frames=1)
        self.last_output: torch.Tensor | None = None

    def execute(self, frame: Frame) -> torch.Tensor:
        inp = self.history.step(frame, with_history=False)
        if frame.shaded or self.last_output is None:
            out = decode_color(W.resample(inp.x[:, :3], self.display_size, frame.jitter_px, "bicubic"))
        else:
            size = self.display_size
            motion = W.upsample_motion(frame.motion, frame.depth, size)
            bg = W.upsample_motion(W.background_motion(frame.motion, frame.depth), frame.depth, size)
            valid = W.upsample_mask(inp.mask, size)
            out = torch.where(valid > 0.5, W.sample(self.last_output, motion),
                              W.sample(self.last_output, bg))
        self.last_output = out
        return out
