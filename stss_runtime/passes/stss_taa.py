"""``stss_taa``: STSS with its outputs accumulated at display resolution (no added latency)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..frame import Frame
from ..ops import warp as W
from ..ops.encoding import decode_color
from .stss import StssPass


class StssTaaPass(StssPass):
    """STSS whose outputs are accumulated over time at display resolution.

    The published network reads the history only at its 1/8-resolution bottleneck (32
    channels per 8x8 render pixels from the history encoder): the history steers each output
    (worth 0.5-0.7 dB on rendered frames of the held-out scenes) but cannot carry per-pixel
    sub-pixel detail, so each STSS frame keeps much of its own render's aliasing (thin
    lines, fine repeating texture) that a temporal upscaler averages away.

    This pass blends each STSS output (SF and EF alike) into an accumulation reprojected by
    the upsampled motion vectors (bicubic), the reprojection clamped to the 3x3 colour box
    of the new STSS frame (so stale colour cannot survive, as in TAA) and dropped where the
    runtime's hole mask marks a disocclusion. ``alpha``, ``clamp_window`` and
    ``keep_window`` were chosen on two training segments (plaza_c, scatter:17), not on the
    held-out scenes (``scripts/tune_accumulation.py``; the idea itself was first tried on
    traffic, see ``docs/training/README.md``). No latency is added: frame i's
    output depends on frames up to i only. The accumulation runs in eager torch after the
    back-end (the ``finish`` stage), not inside the exported graph.
    """

    name = "stss_taa"
    description = "STSS, its outputs accumulated at display resolution (clamped history, no added latency)"
    alpha = 0.4  # weight of the new STSS frame where the history is kept
    clamp_window = 3  # display pixels: the colour box the reprojected history is clamped to
    keep_window = 3  # render pixels: holes narrower than this keep their history (jitter moves thin lines)

    def reset(self) -> None:
        super().reset()
        self.accum: torch.Tensor | None = None  # encoded colour, display resolution
        self._reprojection: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def prepare(self, frame: Frame) -> dict[str, torch.Tensor]:
        frame = frame.to(self.device)  # once: the plan's own move then copies nothing
        inputs = super().prepare(frame)
        # what finish() needs to bring the accumulation to this frame
        self._reprojection = (frame.motion, frame.depth, self.history.previous_valid)
        return inputs

    def finish(self, encoded: torch.Tensor) -> torch.Tensor:
        w, h = self.display_size
        cur = encoded[..., :h, :w]
        motion, depth, previous_valid = self._reprojection
        if self.accum is None or previous_valid is None:  # first frame after a reset
            self.accum = cur.clone()  # the runner may reuse its output buffer
            return decode_color(self.accum)
        self.accum = accumulate(self.accum, cur, motion, depth, previous_valid,
                                self.alpha, self.clamp_window, self.keep_window)
        return decode_color(self.accum)


def accumulate(accum: torch.Tensor, cur: torch.Tensor, motion: torch.Tensor, depth: torch.Tensor,
               previous_valid: torch.Tensor, alpha: float, clamp_window: int, keep_window: int) -> torch.Tensor:
    """One step of :class:`StssTaaPass`: the accumulation ``accum`` (encoded, display
    resolution, the previous display frame's) brought to this frame and blended with its
    STSS output ``cur``. ``motion``/``depth`` (render resolution) reproject it;
    ``previous_valid`` is the runtime's hole mask (render resolution, 1 = history valid)."""
    size = (cur.shape[-1], cur.shape[-2])
    reprojected = W.sample(accum, W.upsample_motion(motion, depth, size), "bicubic")
    k, r = clamp_window, clamp_window // 2
    lo = -F.max_pool2d(-cur, k, 1, r)
    hi = F.max_pool2d(cur, k, 1, r)
    history = torch.minimum(torch.maximum(reprojected.clamp(0.0, 1.0), lo), hi)
    kept = F.max_pool2d(previous_valid, keep_window, 1, keep_window // 2)
    kept = W.resample(kept, size, mode="nearest")
    a = torch.where(kept > 0.5, torch.full_like(kept, alpha), torch.ones_like(kept))
    return history + a * (cur - history)
