"""The history's per-frame work inside the exported graph: for the CPU back-ends, where the
eager-torch ``prepare`` stage (:meth:`stss_runtime.history.History.plan`: motion chaining,
geometry, hole tests, background motion, G-buffer features) costs as much as the small
networks themselves.

:class:`FusedStssFrameGraph` takes one display frame's G-buffers as the engine hands them
over, plus the stored frames (at most three) as the history keeps them, and computes in one
graph what :meth:`History.plan` and :class:`~stss_runtime.graphs.StssFrameGraph` compute
together: the same arithmetic, written with shape-derived grids and no data-dependent
control flow, so it exports to ONNX (standard operators) for any render size. What stays on
the host (:class:`FusedHistory`) is bookkeeping: which stored frames exist, which is the
current one, resets.

Besides the encoded output the graph returns the history's new state, laid out as a second
output of the same shape (the runners allocate every output at the display size; a reshape,
no data moves): each
stored frame's motion chained through this frame, this frame's world-space normals and
encoded colour (stored when the frame is shaded), and the hole mask of the newest stored
frame (:attr:`History.previous_valid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .frame import Frame
from .graphs import SIZE_MULTIPLE, GraphSpec, StssFrameGraph, warp_in_graph
from .history import HISTORY_FRAMES, HistoryError

#: Channels of the packed state, at render resolution: chained motion of the three stored
#: frames (6), world normals (3), encoded colour (3), hole mask of the newest stored frame (1),
#: unused (3); the same memory read as 4 channels at display resolution (a reshape).
STATE_CHANNELS = 16
OUTPUT_CHANNELS = 4

FRAME_INPUTS = ("color", "depth", "normal", "albedo", "roughness", "metallic", "object_id", "motion")
SLOT_INPUTS = ("slot_color", "slot_depth", "slot_normal", "slot_id", "slot_motion")
FIXED_INPUTS = ("shaded", "jitter", "camera", "slot_view", "slot_jitter", "slot_flags")


def _encode(linear: torch.Tensor) -> torch.Tensor:
    """:func:`stss_runtime.ops.encoding.encode_color`, graph-friendly."""
    x = linear.clamp_min(0.0)
    x = x / (1.0 + x)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-8).pow(1 / 2.4) - 0.055)


def _background_motion(motion: torch.Tensor, depth: torch.Tensor, window: int = 7) -> torch.Tensor:
    """:func:`stss_runtime.ops.warp.background_motion` (the motion of the farthest pixel of each
    window, the first in row-major order on ties, pixels outside ignored) as two separable
    passes over shifted slices: a row's first maximum, then the first row's: the same pixel."""
    r = window // 2

    def along(d, m, axis):
        n = d.shape[axis]
        pad = (r, r, 0, 0) if axis == 3 else (0, 0, r, r)
        dp = F.pad(d, pad, value=-1e30)
        mp = F.pad(m, pad)
        best_d = best_m = None
        for k in range(window):
            dk = dp[..., k:k + n] if axis == 3 else dp[..., k:k + n, :]
            mk = mp[..., k:k + n] if axis == 3 else mp[..., k:k + n, :]
            if best_d is None:
                best_d, best_m = dk, mk
            else:
                take = dk > best_d
                best_d = torch.where(take, dk, best_d)
                best_m = torch.where(take, mk, best_m)
        return best_d, best_m

    d1, m1 = along(depth, motion, 3)
    return along(d1, m1, 2)[1]


class FusedStssFrameGraph(nn.Module):
    """History step + STSS frame graph in one module (see the module docstring).

    Inputs at render resolution h x w (any size: padded to multiples of 8 inside):
    the frame's ``color`` (1, 3) linear (zeros when not shaded), ``depth`` (1, 1) linear,
    ``normal`` (1, 3) view space, ``albedo`` (1, 3), ``roughness`` (1, 1), ``metallic`` (1, 1),
    ``object_id`` (1, 1) as floats, ``motion`` (1, 2) render pixels; ``shaded`` (1, 1, 1, 1),
    ``jitter`` (1, 2, 1, 1); ``camera`` (1, 18, 1, 1): the inverse view matrix's first three
    rows (12), P00, P11, P02, P12 of the projection, near and far. Three stored frames, oldest
    first (absent ones zero): ``slot_color`` (1, 9) encoded, ``slot_depth`` (1, 3),
    ``slot_normal`` (1, 9) world space, ``slot_id`` (1, 3), ``slot_motion`` (1, 6) each one's
    motion from the previous display frame (before this frame's is chained on),
    ``slot_view`` (1, 12, 1, 1) each one's view matrix row 2, ``slot_jitter`` (1, 6, 1, 1),
    ``slot_flags`` (1, 6, 1, 1): present (3), is this frame (3).

    Outputs (1, 4, 2h, 2w): ``output`` (channels 0-2: the encoded frame on the display grid)
    and ``state`` (:data:`STATE_CHANNELS` at h x w, reshaped to that shape).
    """

    input_names = (*FRAME_INPUTS, *SLOT_INPUTS, *FIXED_INPUTS)

    def __init__(self, stss: nn.Module):
        super().__init__()
        self.frame = StssFrameGraph(stss)

    def forward(self, color, depth, normal, albedo, roughness, metallic, object_id, motion,
                slot_color, slot_depth, slot_normal, slot_id, slot_motion,
                shaded, jitter, camera, slot_view, slot_jitter, slot_flags):
        h, w = depth.shape[-2:]
        dt = depth.dtype
        # -- geometry of this frame (History._geometry) -----------------------------------
        xs = (torch.arange(w, dtype=dt) + 0.5).view(1, 1, 1, w) - jitter[:, 0:1]
        ys = (torch.arange(h, dtype=dt) + 0.5).view(1, 1, h, 1) - jitter[:, 1:2]
        ndc_x = xs * (2.0 / w) - 1.0
        ndc_y = 1.0 - ys * (2.0 / h)
        p00, p11, p02, p12 = (camera[:, 12 + i:13 + i] for i in range(4))
        near, far = camera[:, 16:17], camera[:, 17:18]
        px = (ndc_x + p02) * depth / p00
        py = (ndc_y + p12) * depth / p11
        pz = -depth
        m = [camera[:, i:i + 1] for i in range(12)]  # inverse view, rows 0-2
        world = [m[4 * i] * px + m[4 * i + 1] * py + m[4 * i + 2] * pz + m[4 * i + 3] for i in range(3)]
        nx, ny, nz = normal[:, 0:1], normal[:, 1:2], normal[:, 2:3]
        normal_world = torch.cat([m[4 * i] * nx + m[4 * i + 1] * ny + m[4 * i + 2] * nz for i in range(3)], 1)
        length = (px * px + py * py + pz * pz).sqrt().clamp_min(1e-6)
        view_cos = (-px / length) * nx + (-py / length) * ny + (-pz / length) * nz
        # -- every stored frame brought to this one (History._advance, _offset_and_valid) ---
        present, current = slot_flags[:, 0:3], slot_flags[:, 3:6]
        chained, offsets, valids = [], [], []
        for k in range(HISTORY_FRAMES):
            cm = motion + warp_in_graph(slot_motion[:, 2 * k:2 * k + 2], motion)
            chained.append(cm)
            jit = slot_jitter[:, 2 * k:2 * k + 2] - jitter
            offset = cm + jit
            src = torch.cat([slot_depth[:, k:k + 1], slot_id[:, k:k + 1], slot_normal[:, 3 * k:3 * k + 3]], 1)
            s = warp_in_graph(src, offset, "nearest")
            v = slot_view[:, 4 * k:4 * k + 4]
            expected = -(v[:, 0:1] * world[0] + v[:, 1:2] * world[1] + v[:, 2:3] * world[2] + v[:, 3:4])
            tol = 0.02 * expected.abs() * (1.0 + 4.0 * (1.0 - view_cos.abs()))
            ok_depth = ((s[:, 0:1] - expected).abs() <= tol).to(dt)
            ok_id = (s[:, 1:2] == object_id).to(dt)
            ok_normal = ((s[:, 2:5] * normal_world).sum(1, keepdim=True) >= 0.5).to(dt)
            background = (object_id == 0).to(dt) * ok_id
            valid = torch.maximum(ok_depth * ok_id * ok_normal, background)
            p, c = present[:, k:k + 1], current[:, k:k + 1]
            offsets.append(offset * (p * (1.0 - c)))  # this frame: offset 0, valid 1; absent: 0, 0
            valids.append(valid * p * (1.0 - c) + c)
        # -- the warp plan (History.plan) ---------------------------------------------------
        encoded = _encode(color)
        cur = current
        slot_colors = [cur[:, k:k + 1] * encoded + (1.0 - cur[:, k:k + 1]) * slot_color[:, 3 * k:3 * k + 3]
                       for k in range(HISTORY_FRAMES)]
        last_offset, last_valid = offsets[-1], valids[-1]  # the newest stored frame
        bg_offset = _background_motion(last_offset, depth)
        feature = torch.cat([normal, (torch.log(depth.clamp_min(near) / near) / torch.log(far / near)).clamp(0.0, 1.0),
                             roughness, metallic, albedo.clamp(0, 1)], 1)
        plan = [encoded * shaded, slot_colors[-1], last_offset, last_valid, bg_offset,
                torch.cat(slot_colors, 1), torch.cat(offsets, 1), torch.cat(valids, 1), feature]
        ph, pw = (-h) % SIZE_MULTIPLE, (-w) % SIZE_MULTIPLE
        plan = [F.pad(t, (0, pw, 0, ph), mode="replicate") for t in plan]
        current_in, last, last_offset, last_valid, bg_offset, stored, stored_offset, stored_valid, feature = plan
        out = self.frame(current_in, shaded, jitter, last, last_offset, last_valid, bg_offset,
                         stored, stored_offset, stored_valid, feature)
        out = out[..., : 2 * h, : 2 * w]
        # the newest older frame's hole mask (History.previous_valid): slot 2 on extrapolated
        # frames, slot 1 on rendered ones (slot 2 is this frame)
        previous_valid = shaded * valids[1] + (1.0 - shaded) * valids[2]
        state = torch.cat([*chained, normal_world, encoded, previous_valid, torch.zeros_like(depth).expand(-1, 3, -1, -1)], 1)
        return torch.cat([out, torch.zeros_like(out[:, :1])], 1), state.reshape(out.shape[0], OUTPUT_CHANNELS, 2 * h, 2 * w)


@dataclass(frozen=True)
class FusedGraphSpec(GraphSpec):
    """:class:`GraphSpec` of :class:`FusedStssFrameGraph`, with plausible example inputs
    (a camera, integer ids, positive depth: the geometry divides by them)."""

    def example_inputs(self, h: int, w: int, seed: int = 0, device: str | torch.device = "cpu") -> dict:
        g = torch.Generator().manual_seed(seed)

        def rand(*shape, lo=0.0, hi=1.0):
            return lo + (hi - lo) * torch.rand(shape, generator=g)

        normal = F.normalize(rand(1, 3, h, w, lo=-1) + torch.tensor([0.0, 0.0, 1.5]).view(1, 3, 1, 1), dim=1)
        view = np.eye(4)
        view[:3, 3] = [0.1, -0.2, -0.3]
        inv = np.linalg.inv(view)
        camera = torch.tensor([*inv[:3].reshape(-1), 1.0, 1.7, 0.0, 0.0, 0.1, 100.0], dtype=torch.float32)
        out = {"color": rand(1, 3, h, w, hi=2.0), "depth": rand(1, 1, h, w, lo=2.0, hi=20.0), "normal": normal,
               "albedo": rand(1, 3, h, w), "roughness": rand(1, 1, h, w), "metallic": rand(1, 1, h, w),
               "object_id": torch.randint(0, 3, (1, 1, h, w), generator=g).float(),
               "motion": rand(1, 2, h, w, lo=-2.0, hi=2.0),
               "slot_color": rand(1, 9, h, w), "slot_depth": rand(1, 3, h, w, lo=2.0, hi=20.0),
               "slot_normal": torch.cat([normal] * 3, 1), "slot_id": torch.randint(0, 3, (1, 3, h, w), generator=g).float(),
               "slot_motion": rand(1, 6, h, w, lo=-3.0, hi=3.0),
               "shaded": torch.ones(1, 1, 1, 1), "jitter": rand(1, 2, 1, 1, lo=-0.5, hi=0.5),
               "camera": camera.view(1, 18, 1, 1),
               "slot_view": torch.tensor(np.tile(view[2], 3), dtype=torch.float32).view(1, 12, 1, 1),
               "slot_jitter": rand(1, 6, 1, 1, lo=-0.5, hi=0.5),
               "slot_flags": torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 1.0]).view(1, 6, 1, 1)}
        return {k: v.to(device) for k, v in out.items()}


def fused_stss_graph(model: nn.Module) -> FusedGraphSpec:
    """The STSS pass with the history's per-frame work in the graph (:class:`FusedStssFrameGraph`)."""
    channels = {"color": 3, "depth": 1, "normal": 3, "albedo": 3, "roughness": 1, "metallic": 1, "object_id": 1,
                "motion": 2, "slot_color": 9, "slot_depth": 3, "slot_normal": 9, "slot_id": 3, "slot_motion": 6}
    fixed = {"shaded": 1, "jitter": 2, "camera": 18, "slot_view": 12, "slot_jitter": 6, "slot_flags": 6}
    shapes = {n: (lambda c: (lambda h, w: (1, c, h, w)))(c) for n, c in channels.items()}
    shapes.update({n: (lambda c: (lambda h, w: (1, c, 1, 1)))(c) for n, c in fixed.items()})
    return FusedGraphSpec("stss_fused", FusedStssFrameGraph(model).eval(), FusedStssFrameGraph.input_names, shapes,
                          output_names=("output", "state"), fixed_inputs=frozenset(fixed),
                          output_channels=OUTPUT_CHANNELS)


@dataclass
class _Stored:
    index: int
    color: torch.Tensor  # (1, 3, h, w) encoded
    depth: torch.Tensor
    normal_world: torch.Tensor
    object_id: torch.Tensor  # float
    view_row: np.ndarray  # row 2 of the view matrix
    jitter: tuple[float, float]
    motion_to: torch.Tensor  # this frame's pixels -> the stored frame, before the next frame


class FusedHistory:
    """The host side of :class:`FusedStssFrameGraph`: the stored frames and the graph's inputs.
    Holds what :class:`~stss_runtime.history.History` holds, in the same order, and follows
    its rules (a reset, a size change or an index gap clears it; the first frame after a clear
    must be shaded)."""

    def __init__(self, frames: int = HISTORY_FRAMES):
        self.capacity = frames
        self.entries: list[_Stored] = []
        self.last_index: int | None = None
        self.size: tuple[int, int] | None = None
        self.previous_valid: torch.Tensor | None = None
        self._frame: Frame | None = None
        self._slots: list[_Stored | None] = []

    def reset(self) -> None:
        self.entries.clear()
        self.last_index = None
        self.size = None

    def inputs(self, frame: Frame) -> dict[str, torch.Tensor]:
        """The graph's inputs for ``frame`` (then :meth:`update` with the graph's state)."""
        if frame.reset or self.size != frame.size or self.last_index is None or frame.index != self.last_index + 1:
            self.reset()
        if not frame.shaded and not self.entries:
            raise HistoryError(f"frame {frame.index}: an extrapolated (unshaded) frame needs a shaded frame "
                               f"before it; the first frame after a reset must carry colour")
        self.size, self.last_index = frame.size, frame.index
        kept = self.entries[-(self.capacity - 1):] if frame.shaded else self.entries[-self.capacity:]
        slots: list[_Stored | None] = [*kept, None] if frame.shaded else list(kept)  # None: this frame
        slots = [False] * (self.capacity - len(slots)) + slots  # False: absent
        self._frame, self._slots = frame, slots
        depth = frame.depth
        zeros1 = torch.zeros_like(depth)
        cat = lambda attr, c: torch.cat([getattr(s, attr) if isinstance(s, _Stored) else  # noqa: E731
                                         zeros1.expand(-1, c, -1, -1) for s in slots], 1)
        flags = [float(s is not False) for s in slots] + [float(s is None) for s in slots]
        inv = np.linalg.inv(frame.view)
        p = np.asarray(frame.proj, np.float64)
        camera = [*inv[:3].reshape(-1), p[0, 0], p[1, 1], p[0, 2], p[1, 2], frame.near, frame.far]
        f32 = dict(dtype=torch.float32, device=depth.device)
        row = lambda s: s.view_row if isinstance(s, _Stored) else np.zeros(4)  # noqa: E731
        jit = lambda s: s.jitter if isinstance(s, _Stored) else (0.0, 0.0)  # noqa: E731
        return {"color": frame.color if frame.shaded else zeros1.expand(-1, 3, -1, -1).contiguous(),
                "depth": depth, "normal": frame.normal, "albedo": frame.albedo, "roughness": frame.roughness,
                "metallic": frame.metallic, "object_id": frame.object_id.to(torch.float32), "motion": frame.motion,
                "slot_color": cat("color", 3), "slot_depth": cat("depth", 1), "slot_normal": cat("normal_world", 3),
                "slot_id": cat("object_id", 1), "slot_motion": cat("motion_to", 2),
                "shaded": torch.full((1, 1, 1, 1), float(frame.shaded), **f32),
                "jitter": torch.tensor(frame.jitter_px, **f32).view(1, 2, 1, 1),
                "camera": torch.tensor(camera, **f32).view(1, 18, 1, 1),
                "slot_view": torch.tensor(np.concatenate([row(s) for s in slots]), **f32).view(1, 12, 1, 1),
                "slot_jitter": torch.tensor([v for s in slots for v in jit(s)], **f32).view(1, 6, 1, 1),
                "slot_flags": torch.tensor(flags, **f32).view(1, 6, 1, 1)}

    def update(self, packed_state: torch.Tensor) -> None:
        """Take the graph's state for the frame of the last :meth:`inputs` call: chained
        motion into the stored frames, the frame itself stored when shaded."""
        frame, slots = self._frame, self._slots
        n, _, hh, ww = packed_state.shape
        state = packed_state.reshape(n, STATE_CHANNELS, hh // 2, ww // 2)
        for k, s in enumerate(slots):
            if isinstance(s, _Stored):
                s.motion_to = state[:, 2 * k:2 * k + 2].clone()
        has_older = any(isinstance(s, _Stored) for s in (slots[:-1] if frame.shaded else slots))
        self.previous_valid = state[:, 12:13].clone() if has_older else None
        if frame.shaded:
            view = np.asarray(frame.view, np.float64)
            self.entries.append(_Stored(frame.index, state[:, 9:12].clone(), frame.depth, state[:, 6:9].clone(),
                                        frame.object_id.to(torch.float32), view[2].copy(), tuple(frame.jitter_px),
                                        torch.zeros_like(frame.motion)))
            del self.entries[:-self.capacity]
