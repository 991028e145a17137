"""``temporal``: an FSR 2-like temporal upscaler, the classical baseline. Jittered samples are
accumulated at display resolution in a history reprojected with dilated motion vectors,
rectified by clamping to the current frame's 3x3 neighbourhood colour box, reset at
disocclusions; on extrapolated frames the history is reprojected without new samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..frame import Frame
from ..history import History
from ..ops import accumulate as A
from ..ops import warp as W
from ..ops.encoding import decode_color, encode_color
from .base import Pass


class TemporalPass(Pass):
    name = "temporal"
    description = "FSR 2-like jittered history accumulation with neighbourhood clamping"
    inputs = ("color", "motion", "depth", "normal", "object_id")
    max_weight = 12.0  # accumulated sample weight cap: at most ~1/12 new sample per frame
    sigma_display_px = 0.5  # reconstruction kernel width, display pixels

    def reset(self) -> None:
        self.history = History(frames=1)
        self.accum: torch.Tensor | None = None  # encoded colour, display resolution
        self.weight: torch.Tensor | None = None

    def _disocclusion_free(self, size) -> torch.Tensor:
        """Display-resolution mask of pixels whose history is kept. Holes narrower than two
        render pixels are ignored (dilating the valid mask): jitter alone moves thin
        geometry by a pixel between frames, and those are the pixels accumulation fixes."""
        pv = self.history.previous_valid
        if pv is None:
            return torch.zeros_like(self.accum[:, :1])
        return W.upsample_mask(F.max_pool2d(pv, 3, 1, 1), size)

    def execute(self, frame: Frame) -> torch.Tensor:
        inp = self.history.step(frame, with_history=False)
        size = self.display_size
        if self.accum is not None:
            motion = W.upsample_motion(frame.motion, frame.depth, size)
            reprojected = W.sample(self.accum, motion, "bicubic").clamp(0.0, 1.0)
            valid = self._disocclusion_free(size)
        if not frame.shaded:
            if self.accum is None:
                self.accum = W.resample(inp.x[:, :3], size, frame.jitter_px)
                self.weight = torch.ones_like(self.accum[:, :1])
            else:
                bg = W.upsample_motion(W.background_motion(frame.motion, frame.depth), frame.depth, size)
                filled = W.sample(self.accum, bg, "bicubic").clamp(0.0, 1.0)
                self.accum = torch.where(valid > 0.5, reprojected, filled)
                self.weight = W.sample(self.weight, motion, "nearest") * valid
            return decode_color(self.accum)

        cur = encode_color(frame.color)
        if self.accum is None:
            self.accum = W.resample(cur, size, frame.jitter_px)
            self.weight = torch.ones_like(self.accum[:, :1])
            return decode_color(self.accum)
        hw, jitter = (size[1], size[0]), frame.jitter_tensor().to(cur)
        # each display pixel takes its nearest jittered sample, weighted by its distance
        upsampled, lo, hi = A.current_samples(cur, hw, jitter)
        history = A.clamp_to_box(reprojected, lo, hi)
        prev_w = W.sample(self.weight, motion, "nearest") * valid
        w = A.sample_weight(jitter, tuple(cur.shape[-2:]), hw, self.sigma_display_px)
        alpha = A.rule_alpha(w, prev_w, self.max_weight)
        self.accum = history + alpha * (upsampled - history)
        self.weight = (prev_w + w).clamp_max(self.max_weight)
        return decode_color(self.accum)
