"""``stss_recurrent``: STSS with a learned display-resolution accumulation
(:mod:`stss_runtime.models.recurrent`), one network for rendered and generated frames.

Per frame, like :class:`~stss_runtime.passes.stss.StssPass`: ``prepare`` (eager torch) has
the history plan the warps and brings the pass's own state to the frame (the upsampled,
depth-dilated motion that reprojects the previous output, and where that history may be
used: the runtime's hole mask, with holes narrower than a few pixels kept); ``run`` is the
frame graph on the back-end (warps, network, accumulation:
:class:`~stss_runtime.graphs.RecurrentFrameGraph`); ``finish`` keeps the output and its
weight as the next frame's state and decodes the output. No latency is added: frame i's
output depends on frames up to i only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..frame import Frame
from ..graphs import pad_to_multiple, recurrent_graph
from ..ops import warp as W
from ..ops.encoding import decode_color
from .stss import StssPass, padded_size

#: Render pixels: holes of the runtime's mask narrower than this keep their history (jitter
#: alone moves thin geometry by a pixel between frames; the temporal upscaler does the same).
KEEP_WINDOW = 3


def history_valid(previous_valid: torch.Tensor, display_wh: tuple[int, int]) -> torch.Tensor:
    """Display-resolution mask of the pixels whose reprojected history may be used, from the
    runtime's render-resolution hole mask (holes narrower than :data:`KEEP_WINDOW` ignored)."""
    return W.upsample_mask(F.max_pool2d(previous_valid, KEEP_WINDOW, 1, KEEP_WINDOW // 2), display_wh)


class StssRecurrentPass(StssPass):
    name = "stss_recurrent"
    description = ("STSS with a learned display-resolution accumulation: the render's jittered samples "
                   "accumulated over time under per-pixel parameters the network predicts (no added latency)")
    graph = staticmethod(recurrent_graph)

    def __init__(self, model: nn.Module | None = None, model_name: str = "stss_recurrent", **kwargs):
        super().__init__(model=model, model_name=model_name, **kwargs)

    def reset(self) -> None:
        super().reset()
        self.accum: torch.Tensor | None = None  # encoded output, padded display size
        self.weight: torch.Tensor | None = None

    def prepare(self, frame: Frame) -> dict[str, torch.Tensor]:
        frame = frame.to(self.device)
        inputs = super().prepare(frame)
        pw, ph = padded_size(self.render_size)
        size = (2 * pw, 2 * ph)
        pv = self.history.previous_valid
        if self.accum is None or pv is None or self.accum.shape[-2:] != (2 * ph, 2 * pw):
            zeros = torch.zeros(1, 1, 2 * ph, 2 * pw, device=self.device)
            inputs.update(accum=zeros.expand(-1, 3, -1, -1), weight=zeros, acc_offset=zeros.expand(-1, 2, -1, -1),
                          acc_valid=zeros)
            return inputs
        motion, depth = pad_to_multiple(frame.motion), pad_to_multiple(frame.depth)
        inputs.update(accum=self.accum, weight=self.weight, acc_offset=W.upsample_motion(motion, depth, size),
                      acc_valid=history_valid(pad_to_multiple(pv), size))
        return inputs

    def finish(self, encoded: torch.Tensor) -> torch.Tensor:
        # the state beyond the frame repeats its last row and column (a reprojection that reads
        # past the edge reads the edge, as from an unpadded frame), and is a copy: the runner
        # may reuse its output buffer
        w, h = self.display_size
        state = pad_to_multiple(encoded[..., :h, :w], 2 * 8)
        self.accum, self.weight = state[:, :3], state[:, 3:4]
        return decode_color(self.accum[..., :h, :w])
