"""The non-neural baselines STSS must beat, behind the common pass interface.

- ``bilinear`` / ``bicubic``: spatial upsampling of the rendered frame (jitter undone). On
  extrapolated frames, which have no colour, they upsample what the runtime extrapolates:
  the last shaded frame warped to the current one, holes filled from the background.
- ``warp_fill``: extrapolation without a network: the last *output* (display resolution)
  warped by the upsampled motion vectors, holes filled by a background-motion warp;
  rendered frames are upsampled bicubically.
- ``temporal``: an FSR 2-like temporal upscaler: jittered samples accumulated at display
  resolution in a history reprojected with dilated motion vectors, rectified by clamping
  to the current frame's 3x3 neighbourhood colour box, reset at disocclusions; on
  extrapolated frames the history is reprojected without new samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import warp as W
from ..frame import Frame
from ..history import History, decode_color, encode_color
from .base import Pass


class _RuntimeColour(Pass):
    """Keeps the runtime's one-frame history: what colour there is for every display frame."""

    def reset(self) -> None:
        self.history = History(frames=1)

    def _colour(self, frame: Frame) -> torch.Tensor:
        """Display-encoded colour on the current frame's (jittered) render grid: rendered,
        or extrapolated by the runtime."""
        inp = self.history.step(frame, with_history=False)
        return inp.x[:, :3]


class SpatialUpsample(_RuntimeColour):
    """Resampling happens in the display-encoded space: filtering linear HDR colour makes
    bicubic ring around highlights."""

    name = "bilinear"
    description = "bilinear upsampling of the rendered (or runtime-extrapolated) frame"
    mode = "bilinear"

    def execute(self, frame: Frame) -> torch.Tensor:
        src = self._colour(frame)
        return decode_color(W.resample(src, self.display_size, frame.jitter_px, self.mode))


class BicubicUpsample(SpatialUpsample):
    name = "bicubic"
    description = "bicubic upsampling of the rendered (or runtime-extrapolated) frame"
    mode = "bicubic"


def _upsample_mask(mask: torch.Tensor, size) -> torch.Tensor:
    return W.resample(mask, size, mode="nearest")


class WarpFill(Pass):
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
            valid = _upsample_mask(inp.mask, size)
            out = torch.where(valid > 0.5, W.sample(self.last_output, motion),
                              W.sample(self.last_output, bg))
        self.last_output = out
        return out


class TemporalUpscaler(Pass):
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
        return _upsample_mask(F.max_pool2d(pv, 3, 1, 1), size)

    def _sample_weight(self, frame: Frame, device) -> torch.Tensor:
        """Gaussian weight of the distance from each display pixel centre to the nearest
        jittered render sample, in render pixels."""
        (w, h), (dw, dh) = self.render_size, self.display_size
        # image pixel k shows the unjittered position k + 0.5 - jitter: the display centre p
        # is (p - 0.5 + jitter - k) render pixels from it
        xs = (torch.arange(dw, device=device) + 0.5) * (w / dw) - 0.5 + frame.jitter_px[0]
        ys = (torch.arange(dh, device=device) + 0.5) * (h / dh) - 0.5 + frame.jitter_px[1]
        dx = xs - xs.round()
        dy = ys - ys.round()
        d2 = dy.view(-1, 1) ** 2 + dx.view(1, -1) ** 2
        sigma = self.sigma_display_px * w / dw  # in render pixels
        return torch.exp(-d2 / (2 * sigma ** 2)).view(1, 1, dh, dw)

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
        # each display pixel takes its nearest jittered sample, weighted by its distance
        upsampled = W.resample(cur, size, frame.jitter_px, "nearest")
        if self.accum is None:
            self.accum = W.resample(cur, size, frame.jitter_px)
            self.weight = torch.ones_like(self.accum[:, :1])
            return decode_color(self.accum)
        lo = W.resample(-F.max_pool2d(-cur, 3, 1, 1), size, frame.jitter_px, "nearest")
        hi = W.resample(F.max_pool2d(cur, 3, 1, 1), size, frame.jitter_px, "nearest")
        history = torch.minimum(torch.maximum(reprojected, lo), hi)
        prev_w = W.sample(self.weight, motion, "nearest") * valid
        w = self._sample_weight(frame, cur.device)
        alpha = (w / (prev_w + w)).clamp(1.0 / self.max_weight, 1.0)
        self.accum = history + alpha * (upsampled - history)
        self.weight = (prev_w + w).clamp_max(self.max_weight)
        return decode_color(self.accum)


BASELINES: dict[str, type[Pass]] = {p.name: p for p in (SpatialUpsample, BicubicUpsample, WarpFill, TemporalUpscaler)}
