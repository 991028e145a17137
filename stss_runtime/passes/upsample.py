"""``bilinear`` / ``bicubic``: spatial upsampling of the rendered frame (jitter undone), the
simplest baselines STSS must beat. On extrapolated frames, which have no colour, they upsample
what the runtime extrapolates: the last shaded frame warped to the current one, holes filled
from the background.
"""

from __future__ import annotations

import torch

from ..frame import Frame
from ..history import History
from ..ops import warp as W
from ..ops.encoding import decode_color
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


class BilinearPass(_RuntimeColour):
    """Resampling happens in the display-encoded space: filtering linear HDR colour makes
    bicubic ring around highlights."""

    name = "bilinear"
    description = "bilinear upsampling of the rendered (or runtime-extrapolated) frame"
    mode = "bilinear"

    def execute(self, frame: Frame) -> torch.Tensor:
        src = self._colour(frame)
        return decode_color(W.resample(src, self.display_size, frame.jitter_px, self.mode))


class BicubicPass(BilinearPass):
    name = "bicubic"
    description = "bicubic upsampling of the rendered (or runtime-extrapolated) frame"
    mode = "bicubic"
