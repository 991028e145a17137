"""The history the runtime keeps, as production upscalers do: the last shaded frames,
warped to every new frame, with holes marked where the warp is invalid; and the network
inputs STSS needs for rendered (SF) and extrapolated (EF) frames.

Per display frame ``i`` (``shared/STSS.md``):
- SF (shaded): ``x`` = the current colour twice, ``mask`` = 1, history = frames i, i-2, i-4;
- EF (not shaded): ``x`` = [the last shaded frame warped to i with holes filled from a
  background-motion warp, the plain warp], ``mask`` = its hole mask, history = i-1, i-3, i-5.
History frames are stored once and re-warped from the current frame with motion fields
chained through every display frame since (one colour resampling, however old).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import warp as W
from .frame import Frame

HISTORY_FRAMES = 3


def encode_color(linear: torch.Tensor) -> torch.Tensor:
    """Linear HDR colour -> display-referred [0, 1] (Reinhard, then sRGB): the network's space."""
    x = linear.clamp_min(0.0)
    x = x / (1.0 + x)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-8).pow(1 / 2.4) - 0.055)


def decode_color(encoded: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_color` (values clamped to [0, 0.999] first)."""
    y = encoded.clamp(0.0, 0.999)
    lin = torch.where(y <= 0.04045, y / 12.92, ((y + 0.055) / 1.055).pow(2.4))
    return lin / (1.0 - lin)


def depth_feature(depth: torch.Tensor, near: float, far: float) -> torch.Tensor:
    """Linear depth -> [0, 1] on a log scale between the near and far planes."""
    return (torch.log(depth.clamp_min(near) / near) / math.log(far / near)).clamp(0.0, 1.0)


def features(frame: Frame) -> torch.Tensor:
    """The 9 G-buffer channels STSS reads: normal, depth, roughness, metallic, albedo."""
    return torch.cat([frame.normal, depth_feature(frame.depth, frame.near, frame.far),
                      frame.roughness, frame.metallic, frame.albedo.clamp(0, 1)], dim=1)


@dataclass
class NetworkInputs:
    """What one STSS forward pass reads (render resolution, NCHW)."""

    x: torch.Tensor  # (1, 6, h, w)
    feature: torch.Tensor  # (1, 9, h, w)
    mask: torch.Tensor  # (1, 1, h, w) 1 = trustworthy colour
    history: torch.Tensor  # (1, 12, h, w) 3 x (rgb, valid), oldest first
    shaded: bool

    def as_tuple(self):
        return self.x, self.feature, self.mask, self.history


@dataclass
class _Entry:
    index: int
    color: torch.Tensor  # encoded colour of the shaded frame
    depth: torch.Tensor
    normal_world: torch.Tensor
    object_id: torch.Tensor
    view: np.ndarray
    jitter_px: tuple[float, float]
    motion_to: torch.Tensor  # current frame's pixels -> this frame's (unjittered) positions


@dataclass
class _Geometry:
    world_pos: torch.Tensor
    normal_world: torch.Tensor
    view_cos: torch.Tensor


class HistoryError(RuntimeError):
    """The frame sequence cannot be served (e.g. an extrapolated frame with no history)."""


class History:
    """Keeps the last shaded frames and makes STSS's inputs for each display frame."""

    def __init__(self, frames: int = HISTORY_FRAMES, unjitter: bool = False):
        """``frames``: shaded frames kept. ``unjitter``: resample the returned inputs from the
        current frame's jittered pixel grid onto the unjittered one (bilinear; masks nearest),
        so a network that is not told the jitter sees aligned inputs and its output lands
        on the display grid (STSS). Passes that undo the jitter themselves leave it off."""
        self.capacity = frames
        self.unjitter = unjitter
        self.entries: list[_Entry] = []
        self.last_index: int | None = None
        self.size: tuple[int, int] | None = None
        self.previous_valid: torch.Tensor | None = None

    def reset(self) -> None:
        self.entries.clear()
        self.last_index = None
        self.size = None

    def _needs_reset(self, frame: Frame) -> bool:
        return (frame.reset or self.size != frame.size or self.last_index is None
                or frame.index != self.last_index + 1)

    @staticmethod
    def _geometry(frame: Frame) -> _Geometry:
        pos_view = W.view_positions(frame.depth, frame.proj, frame.jitter_px)
        inv_view = np.linalg.inv(frame.view)
        view_dir = -pos_view / pos_view.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return _Geometry(world_pos=W.transform_points(inv_view, pos_view),
                         normal_world=W.rotate_vectors(inv_view, frame.normal),
                         view_cos=(view_dir * frame.normal).sum(1, keepdim=True))

    def _warp(self, e: _Entry, frame: Frame, geo: _Geometry):
        """(colour warped to ``frame``, valid mask, sampling offset) for entry ``e``."""
        jx = e.jitter_px[0] - frame.jitter_px[0]
        jy = e.jitter_px[1] - frame.jitter_px[1]
        offset = e.motion_to + torch.tensor([jx, jy], dtype=e.motion_to.dtype,
                                            device=e.motion_to.device).view(1, 2, 1, 1)
        color = W.sample(e.color, offset)
        valid = W.hole_mask(depth=frame.depth, normal_world=geo.normal_world,
                            object_id=frame.object_id, world_pos=geo.world_pos,
                            view_dir_cos=geo.view_cos, src_depth=e.depth,
                            src_normal_world=e.normal_world, src_object_id=e.object_id,
                            src_view=e.view, offset=offset)
        return color, valid, offset

    def step(self, frame: Frame, with_history: bool = True) -> NetworkInputs:
        """Advance to ``frame`` (display frame ``frame.index``) and return its network inputs.

        A reset flag, a resolution change or an index gap clears the history first. The
        first frame after a clear must be shaded. ``with_history=False`` skips warping the
        history frames (``history`` is then empty), for passes that only need ``x``/``mask``.
        After the call, :attr:`previous_valid` holds the valid mask of the newest shaded
        frame older than this one, warped to it (None right after a clear).
        """
        if self._needs_reset(frame):
            self.reset()
        else:  # chain every stored frame's motion through this frame's motion vectors
            for e in self.entries:
                e.motion_to = W.compose_motion(frame.motion, e.motion_to)
        self.size = frame.size
        self.last_index = frame.index
        geo = self._geometry(frame)
        feat = features(frame)
        warped: dict[int, tuple] = {}  # each stored frame is warped once per step

        def warp(e: _Entry):
            if e.index not in warped:
                warped[e.index] = self._warp(e, frame, geo)
            return warped[e.index]

        self.previous_valid = warp(self.entries[-1])[1] if self.entries else None

        if frame.shaded:
            cur = encode_color(frame.color)
            self.entries.append(_Entry(frame.index, cur, frame.depth, geo.normal_world,
                                       frame.object_id, frame.view, frame.jitter_px,
                                       torch.zeros_like(frame.motion)))
            del self.entries[:-self.capacity]
            x = torch.cat([cur, cur], dim=1)
            mask = torch.ones_like(frame.depth)
        else:
            if not self.entries:
                raise HistoryError(
                    f"frame {frame.index}: an extrapolated (unshaded) frame needs a shaded frame "
                    f"before it; the first frame after a reset must carry colour")
            last = self.entries[-1]
            plain, mask, offset = warp(last)
            bg_offset = W.background_motion(offset, frame.depth)
            filled = torch.where(mask > 0.5, plain, W.sample(last.color, bg_offset))
            x = torch.cat([filled, plain], dim=1)

        if not with_history:
            return self._finish(frame, NetworkInputs(x=x, feature=feat, mask=mask,
                                                     history=feat[:, :0], shaded=frame.shaded))
        history = []
        for e in self.entries[-self.capacity:]:
            if e.index == frame.index:
                history += [e.color, torch.ones_like(frame.depth)]
            else:
                c, v, _ = warp(e)
                history += [c, v]
        missing = self.capacity - len(self.entries[-self.capacity:])
        zeros = torch.zeros_like(frame.depth)
        history = [zeros.expand(-1, 3, -1, -1), zeros] * missing + history
        return self._finish(frame, NetworkInputs(x=x, feature=feat, mask=mask,
                                                 history=torch.cat(history, dim=1), shaded=frame.shaded))

    def _finish(self, frame: Frame, inp: NetworkInputs) -> NetworkInputs:
        if not self.unjitter:
            return inp
        jx, jy = frame.jitter_px
        off = torch.tensor([jx, jy], dtype=inp.x.dtype, device=inp.x.device).view(1, 2, 1, 1)
        off = off.expand(1, 2, *inp.x.shape[-2:])
        # colour bicubic (a bilinear sub-pixel shift blurs visibly at render resolution),
        # G-buffer features bilinear, masks nearest
        colour = lambda t: W.sample(t, off, "bicubic").clamp(0.0, 1.0)  # noqa: E731
        smooth = lambda t: W.sample(t, off)  # noqa: E731
        sharp = lambda t: W.sample(t, off, "nearest")  # noqa: E731
        hist = inp.history
        if hist.shape[1]:
            parts = []
            for k in range(hist.shape[1] // 4):
                parts += [colour(hist[:, 4 * k:4 * k + 3]), sharp(hist[:, 4 * k + 3:4 * k + 4])]
            hist = torch.cat(parts, dim=1)
        return NetworkInputs(x=colour(inp.x), feature=smooth(inp.feature), mask=sharp(inp.mask),
                             history=hist, shaded=inp.shaded)
