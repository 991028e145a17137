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

from dataclasses import dataclass

import numpy as np
import torch

from .frame import Frame
from .ops import warp as W
from .ops.encoding import depth_feature, encode_color

HISTORY_FRAMES = 3


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
class WarpPlan:
    """What :class:`stss_runtime.graphs.StssFrameGraph` reads for one frame (render
    resolution, NCHW, encoded colours): see :meth:`History.plan`."""

    current: torch.Tensor  # (1, 3, h, w) this frame's colour if shaded, else zeros
    shaded: torch.Tensor  # (1, 1, 1, 1)
    jitter: torch.Tensor  # (1, 2, 1, 1) pixels
    last: torch.Tensor  # (1, 3, h, w) the last shaded frame (EF), else zeros
    last_offset: torch.Tensor  # (1, 2, h, w)
    last_valid: torch.Tensor  # (1, 1, h, w)
    bg_offset: torch.Tensor  # (1, 2, h, w)
    stored: torch.Tensor  # (1, 9, h, w) three stored frames, oldest first (zeros if missing)
    stored_offset: torch.Tensor  # (1, 6, h, w)
    stored_valid: torch.Tensor  # (1, 3, h, w)
    feature: torch.Tensor  # (1, 9, h, w)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


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

    def __init__(self, frames: int = HISTORY_FRAMES):
        """``frames``: shaded frames kept. The inputs are made on the current frame's own
        (jittered) render grid, the history warped onto it; STSS undoes the jitter on its
        output at display resolution (:func:`stss_runtime.graphs.to_display_grid`): a
        sub-pixel shift at render resolution would blur what the network sees."""
        self.capacity = frames
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
        # |p| as sqrt(sum p^2): torch's norm over the channel axis takes ~300x longer on the CPU
        # (25 ms against 0.08 at 320x180, one thread: a fifth of the frame's history work)
        view_dir = -pos_view / (pos_view * pos_view).sum(1, keepdim=True).sqrt().clamp_min(1e-6)
        return _Geometry(world_pos=W.transform_points(inv_view, pos_view),
                         normal_world=W.rotate_vectors(inv_view, frame.normal),
                         view_cos=(view_dir * frame.normal).sum(1, keepdim=True))

    def _offset_and_valid(self, e: _Entry, frame: Frame, geo: _Geometry):
        """(sampling offset, valid mask) that bring entry ``e`` to ``frame``."""
        jx = e.jitter_px[0] - frame.jitter_px[0]
        jy = e.jitter_px[1] - frame.jitter_px[1]
        offset = e.motion_to + torch.tensor([jx, jy], dtype=e.motion_to.dtype,
                                            device=e.motion_to.device).view(1, 2, 1, 1)
        valid = W.hole_mask(depth=frame.depth, normal_world=geo.normal_world,
                            object_id=frame.object_id, world_pos=geo.world_pos,
                            view_dir_cos=geo.view_cos, src_depth=e.depth,
                            src_normal_world=e.normal_world, src_object_id=e.object_id,
                            src_view=e.view, offset=offset)
        return offset, valid

    def _advance(self, frame: Frame):
        """Move the history to ``frame``: clear it or chain the motion; the frame's geometry
        and a memo of (offset, valid) per stored frame."""
        if self._needs_reset(frame):
            self.reset()
        else:  # chain every stored frame's motion through this frame's motion vectors
            for e in self.entries:
                e.motion_to = W.compose_motion(frame.motion, e.motion_to)
        self.size = frame.size
        self.last_index = frame.index
        geo = self._geometry(frame)
        memo: dict[int, tuple] = {}  # each stored frame is brought to this one once per step

        def offset_and_valid(e: _Entry):
            if e.index not in memo:
                memo[e.index] = self._offset_and_valid(e, frame, geo)
            return memo[e.index]

        self.previous_valid = offset_and_valid(self.entries[-1])[1] if self.entries else None
        return geo, offset_and_valid

    def _store(self, frame: Frame, geo: _Geometry) -> torch.Tensor:
        cur = encode_color(frame.color)
        self.entries.append(_Entry(frame.index, cur, frame.depth, geo.normal_world,
                                   frame.object_id, frame.view, frame.jitter_px,
                                   torch.zeros_like(frame.motion)))
        del self.entries[:-self.capacity]
        return cur

    def _need_entries(self, frame: Frame) -> None:
        if not self.entries:
            raise HistoryError(
                f"frame {frame.index}: an extrapolated (unshaded) frame needs a shaded frame "
                f"before it; the first frame after a reset must carry colour")

    def plan(self, frame: Frame) -> "WarpPlan":
        """Advance to ``frame`` like :meth:`step`, but return what to warp instead of the
        warped inputs: the stored colours, where each pixel reads them and their hole masks
        (the inputs of :class:`stss_runtime.graphs.StssFrameGraph`). The graph's warps then
        give exactly what ``History().step`` gives."""
        geo, offset_and_valid = self._advance(frame)
        zeros1 = torch.zeros_like(frame.depth)
        zeros2 = torch.zeros_like(frame.motion)
        if frame.shaded:
            current = self._store(frame, geo)
            last = torch.zeros_like(current)
            last_offset, last_valid, bg_offset = zeros2, zeros1, zeros2
        else:
            self._need_entries(frame)
            e = self.entries[-1]
            last = e.color
            last_offset, last_valid = offset_and_valid(e)
            bg_offset = W.background_motion(last_offset, frame.depth)
            current = torch.zeros_like(last)
        colors, offsets, valids = [], [], []
        kept = self.entries[-self.capacity:]
        for _ in range(self.capacity - len(kept)):
            colors.append(zeros1.expand(-1, 3, -1, -1))
            offsets.append(zeros2)
            valids.append(zeros1)
        for e in kept:
            colors.append(e.color)
            if e.index == frame.index:
                offsets.append(zeros2)
                valids.append(torch.ones_like(zeros1))
            else:
                off, v = offset_and_valid(e)
                offsets.append(off)
                valids.append(v)
        return WarpPlan(current=current, shaded=torch.full((1, 1, 1, 1), float(frame.shaded),
                                                           device=frame.depth.device),
                        jitter=frame.jitter_tensor(), last=last, last_offset=last_offset,
                        last_valid=last_valid, bg_offset=bg_offset, stored=torch.cat(colors, 1),
                        stored_offset=torch.cat(offsets, 1), stored_valid=torch.cat(valids, 1),
                        feature=features(frame))

    def step(self, frame: Frame, with_history: bool = True) -> NetworkInputs:
        """Advance to ``frame`` (display frame ``frame.index``) and return its network inputs.

        A reset flag, a resolution change or an index gap clears the history first. The
        first frame after a clear must be shaded. ``with_history=False`` skips warping the
        history frames (``history`` is then empty), for passes that only need ``x``/``mask``.
        After the call, :attr:`previous_valid` holds the valid mask of the newest shaded
        frame older than this one, warped to it (None right after a clear).
        """
        geo, offset_and_valid = self._advance(frame)
        feat = features(frame)
        warped: dict[int, torch.Tensor] = {}

        def warp(e: _Entry):
            offset, valid = offset_and_valid(e)
            if e.index not in warped:
                warped[e.index] = W.sample(e.color, offset)
            return warped[e.index], valid, offset

        if frame.shaded:
            cur = self._store(frame, geo)
            x = torch.cat([cur, cur], dim=1)
            mask = torch.ones_like(frame.depth)
        else:
            self._need_entries(frame)
            last = self.entries[-1]
            plain, mask, offset = warp(last)
            bg_offset = W.background_motion(offset, frame.depth)
            filled = torch.where(mask > 0.5, plain, W.sample(last.color, bg_offset))
            x = torch.cat([filled, plain], dim=1)

        if not with_history:
            return NetworkInputs(x=x, feature=feat, mask=mask, history=feat[:, :0], shaded=frame.shaded)
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
        return NetworkInputs(x=x, feature=feat, mask=mask, history=torch.cat(history, dim=1),
                             shaded=frame.shaded)
