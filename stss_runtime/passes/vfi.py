"""Frame interpolation (VFI): double the frame rate by synthesising the frame BETWEEN two
rendered frames, at the price of one display frame of latency (``shared/PASSES.md``).

Schedule and call contract: the engine renders one display frame in ``n + 1``
(``generated_frames = n``, 1 to 3; ``frame.shaded``), and the pass synthesises the ``n``
frames between two rendered ones, frame ``k`` of them (1-based) at the fraction
``k / (n + 1)`` of the way from the earlier one. It returns one display frame per call, in
display order, ``n`` display frames late (``latency_frames = n``: one render frame's time
less one display frame; with ``n = 1``, handed frame ``i`` it returns frame ``i - 1``):

* on a rendered frame ``b``: upscale ``b`` with the inner upscaler, interpolate the
  ``n`` frames ``m_1 .. m_n`` between the stored upscale of the previous rendered frame
  ``a`` and ``b``, queue them and ``b``'s upscale, return the oldest queued frame;
* on an unrendered frame: return the oldest queued frame (the first calls after a reset,
  with nothing queued: the stored upscale of the last rendered frame);
* on the first call after setup/reset: return frame ``i``'s own upscale (nothing earlier
  exists; an evaluator drops that output);
* a camera cut (``frame.reset``, or an index gap) is never interpolated across: a cut at
  ``b`` shows ``a`` again for every ``m`` (they belong to the old shot), a cut at ``m_k``
  shows ``a`` for ``m_1 .. m_{k-1}`` and ``b``'s upscale from ``m_k`` on.

What the pass reads: everything of the rendered frames; of an unrendered frame **only its
motion vectors**. A reduced-rate engine would hand over motion from ``b`` straight to ``a``
(``b``'s pixels, render pixels, previous minus current); frame dumps carry per-display-frame
motion, so the pass emulates that by composing ``b -> m_n -> .. -> m_1 -> a``
(:func:`stss_runtime.ops.warp.compose_motion` of ``b``'s motion with each ``m``'s). The inner
upscaler (a pass of :data:`stss_runtime.passes.PASSES`, default ``temporal``) is fed a
consistent half-rate sequence: the rendered frames only, re-indexed consecutively, with
that composed ``b -> a`` motion.

The interpolation, in encoded (display-referred) colour at display resolution:

1. **Cheap path** (:func:`cheap_interpolate`, FSR 3 style): ``b``'s motion (dilated to the
   nearest depth, on the unjittered display grid) is forward-splatted to the frame's time
   with nearest-depth-wins (``scatter_reduce`` amin on depth); cracks take their farthest
   neighbour, disocclusion holes the flow of the farthest-depth (background) pixel of b's
   motion around them; ``a`` is read at ``p + t f`` and ``b`` at
   ``p - (1 - t) f`` and blended by visibility weights (each frame's depth at the read spot
   against the splatted depth), so a region that one frame does not see comes from the other.
2. **Refiner** (:class:`stss_runtime.models.vfi.VfiRefiner`): its dense, 1/8-resolution
   uncertainty head predicts each tile's error of the cheap path; ``vfi`` gathers only the
   tiles (:data:`TILE` px) whose predicted error exceeds the threshold (chosen on training
   data, stored in the weights) with a halo covering the refiner's receptive field into a
   batch (horizontal neighbours as one patch, sharing their halo), refines them and
   scatters them back -- the other tiles keep the cheap result and
   cost nothing. ``vfi_dense`` refines the whole frame with the same network; on refined
   tiles both give the same values. The refiner was trained on middle frames (``t = 1/2``);
   at the other fractions of 3x and 4x it runs as it is.

STSS extrapolation (zero latency) stays the runtime's default pass; this one is the
alternative for engines that accept a frame of delay.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import torch

from ..frame import Frame
from ..models.vfi import TILE, PrunedRefiner, VfiRefiner
from ..ops import warp as W
from ..ops.encoding import decode_color, encode_color
from ..ops.interpolate import CheapResult, cheap_interpolate
from .base import Pass, PassError, torch_only

WEIGHTS_NAME = "vfi_refiner.pt"
#: The most frames synthesised between two rendered ones (4x the rendered frame rate).
MAX_GENERATED = 3


def _load_refiner(weights) -> tuple[VfiRefiner, dict]:
    from ..checkpoint import WEIGHTS_DIR, WeightsError, load_weights

    path = Path(weights) if weights is not None else WEIGHTS_DIR / WEIGHTS_NAME
    if not path.exists():
        raise WeightsError(f"no weights at {path}; train them with `python -m stss_runtime train vfi` "
                           f"(see docs/training/README.md)")
    model, info = load_weights(path)
    if not isinstance(model, VfiRefiner):
        raise WeightsError(f"{path} holds a {info.get('model')!r} model, not a VFI refiner "
                           f"(train one with `python -m stss_runtime train vfi`)")
    return model, info


class VfiPass(Pass):
    """Frame interpolation with the tile-pruned refiner (see the module docstring)."""

    name = "vfi"
    description = ("frame interpolation between rendered frames (adds ONE frame of latency; "
                   "STSS extrapolation stays the default): FSR 3 style cheap blend, neural "
                   "refiner on the tiles its uncertainty head predicts to be hard")
    inputs = ("color", "motion", "depth", "normal", "object_id")
    latency_frames = 1  # display frames at 2x; an instance: its generated_frames (one rendered frame late)
    neural = True  # the refiner
    runtime_options = True
    dense = False

    def __init__(self, inner: str = "temporal", model: VfiRefiner | None = None,
                 weights: str | Path | None = None, threshold: float | None = None,
                 tile: int | None = None, refine: bool = True, device: str | torch.device = "cpu",
                 backend: str = "torch", precision: str = "fp32", max_render_size: tuple[int, int] | None = None,
                 generated_frames: int = 1):
        """``inner``: the upscaler pass of the rendered frames (a name of ``PASSES``);
        ``model``: a refiner (else loaded from ``weights``, default the shipped
        ``stss_runtime/weights/vfi_refiner.pt``); ``threshold``/``tile``: override the
        values stored with the weights; ``refine=False``: the cheap path alone.
        ``device``: where the refiner and the cheap path run (frames are moved there); the
        tile-pruned refiner runs in eager torch fp32 only (other ``backend`` / ``precision``
        values raise :class:`PassOptionError`); ``max_render_size`` is not needed.
        ``generated_frames``: display frames synthesised between two rendered ones (1 to 3;
        also the pass's :attr:`latency_frames`)."""
        super().__init__()
        from . import PASSES

        if isinstance(generated_frames, bool) or not isinstance(generated_frames, int) \
                or not 1 <= generated_frames <= MAX_GENERATED:
            raise ValueError(f"generated_frames: expected an integer from 1 to {MAX_GENERATED} (frames between two "
                             f"rendered ones), got {generated_frames!r}")
        self.generated_frames = generated_frames
        self.latency_frames = generated_frames  # display frames: the rendered frame waits for its successor
        if refine:
            torch_only(self.name, backend, precision, "the tile-pruned refiner gathers tiles in eager torch")
        self.device = torch.device(device)

        if inner not in PASSES or PASSES[inner].latency_frames != 0:
            valid = [k for k, v in PASSES.items() if v.latency_frames == 0]
            raise ValueError(f"inner must be a zero-latency pass of PASSES ({', '.join(valid)}), got {inner!r}")
        self.inner_name = inner
        self.inner = PASSES[inner]()
        info: dict = {}
        if refine and model is None:
            model, info = _load_refiner(weights)
        self.model = model.eval().to(self.device) if model is not None else None
        self.info = info
        tile = int(tile if tile is not None else info.get("tile", TILE))
        thr = float(threshold if threshold is not None else info.get("threshold", -3.0))
        self.refiner = PrunedRefiner(model, tile, thr) if model is not None else None
        self.last_stats: dict = {}
        self.last_cheap: CheapResult | None = None
        self.last_features: torch.Tensor | None = None

    @property
    def fixed_scale(self) -> int | None:
        return self.inner.fixed_scale

    def setup(self, render_size, display_size) -> None:
        self.inner.setup(render_size, display_size)
        super().setup(render_size, display_size)

    def reset(self) -> None:
        self._last_index: int | None = None
        self._prev: Frame | None = None  # the last rendered frame (a)
        self._prev_up: torch.Tensor | None = None  # its upscale, linear
        self._pending_motion: list[torch.Tensor] = []  # motion of unrendered frames since a
        self._cut_at: int | None = None  # which of them is a camera cut (its position in the list)
        self._queue: deque[tuple[torch.Tensor, dict]] = deque()  # (output, its stats), display order
        self._inner_index = 0
        if self.display_size is not None:
            self.inner.reset()

    def _upscale(self, frame: Frame, motion: torch.Tensor, reset: bool) -> torch.Tensor:
        self._inner_index = 0 if reset else self._inner_index + 1
        return self.inner(replace(frame, index=self._inner_index, motion=motion, reset=reset))

    def _next(self) -> torch.Tensor:
        """The oldest queued output (its statistics into :attr:`last_stats`); with nothing
        queued (the first calls after a reset), the last rendered frame's upscale."""
        if not self._queue:
            self.last_stats = {"interpolated": False}
            return self._prev_up
        out, self.last_stats = self._queue.popleft()
        return out

    def execute(self, frame: Frame) -> torch.Tensor:
        frame = frame.to(self.device)
        gap = self._last_index is None or frame.index != self._last_index + 1
        first = self._prev_up is None
        self._last_index = frame.index
        if not frame.shaded:
            if first or gap:
                raise PassError(f"{self.name}: frame {frame.index} is not rendered, but the first "
                                f"frame after a reset (or an index gap) must be rendered")
            if len(self._pending_motion) == self.generated_frames:
                raise PassError(f"{self.name}: frame {frame.index}: {len(self._pending_motion) + 1} unrendered "
                                f"frames in a row; the pass synthesises {self.generated_frames} between two "
                                f"rendered frames (generated_frames={self.generated_frames})")
            if frame.reset and self._cut_at is None:  # a cut before a rendered frame: the rest shows b
                self._cut_at = len(self._pending_motion)
            self._pending_motion.append(frame.motion)  # the one thing read of this frame
            return self._next()
        k = len(self._pending_motion)
        if first or gap:  # nothing earlier exists
            self._queue.clear()
            up = self._upscale(frame, frame.motion, reset=True)
            self._queue.append((up, {"interpolated": False}))
        elif frame.reset or self._cut_at is not None:  # never interpolated across a cut
            up = self._upscale(frame, frame.motion, reset=True)
            cut = k if frame.reset and self._cut_at is None else self._cut_at
            for j in range(k):  # before the cut: the old shot's last frame; from it on: b
                self._queue.append((self._prev_up if j < cut else up, {"interpolated": False}))
            self._queue.append((up, {"interpolated": False}))
        else:
            motion = frame.motion
            for older in reversed(self._pending_motion):
                motion = W.compose_motion(motion, older)  # b -> m_k -> ... -> m_1 -> a
            up = self._upscale(frame, motion, reset=False)
            for j in range(k):
                out = self._interpolate(self._prev, self._prev_up, frame, up, motion, (j + 1) / (k + 1))
                self._queue.append((out, self.last_stats))
            self._queue.append((up, {"interpolated": False}))
        self._prev, self._prev_up = frame, up
        self._pending_motion = []
        self._cut_at = None
        return self._next()

    def _interpolate(self, a: Frame, up_a: torch.Tensor, b: Frame, up_b: torch.Tensor,
                     motion_ba: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        """The frame at the fraction ``t`` of the way from ``a`` to ``b``."""
        t0 = time.perf_counter()
        res = cheap_interpolate(encode_color(up_a), encode_color(up_b), motion_ba,
                                a.depth, b.depth, a.jitter_px, b.jitter_px, t=t)
        x = res.features(b.near, b.far)
        t1 = time.perf_counter()
        self.last_cheap, self.last_features = res, x
        stats = {"interpolated": True, "cheap_ms": (t1 - t0) * 1e3}
        if self.refiner is None:
            out = res.cheap
            stats |= {"tiles_refined": 0.0, "refine_ms": 0.0}
        elif self.dense:
            out, scores = self.refiner.dense(x)
            stats |= {"tiles_refined": 1.0, "tiles": int(scores.numel())}
        else:
            out, scores, tiles = self.refiner.pruned(x)
            stats |= {"tiles_refined": len(tiles) / scores.numel(), "tiles": int(scores.numel())}
        if self.refiner is not None:
            stats["refine_ms"] = (time.perf_counter() - t1) * 1e3
        self.last_stats = stats
        return decode_color(out)


class VfiDensePass(VfiPass):
    name = "vfi_dense"
    description = ("frame interpolation (adds ONE frame of latency; STSS extrapolation stays "
                   "the default): FSR 3 style cheap blend, neural refiner on the whole frame "
                   "(the reference for vfi's tile pruning)")
    dense = True


class VfiCheapPass(VfiPass):
    """The cheap path alone (no network, no weights)."""

    name = "vfi_cheap"
    description = ("frame interpolation (adds ONE frame of latency; STSS extrapolation stays "
                   "the default): FSR 3 style depth-ordered, occlusion-aware blend only")
    neural = False

    def __init__(self, inner: str = "temporal", device: str | torch.device = "cpu", backend: str = "torch",
                 precision: str = "fp32", max_render_size: tuple[int, int] | None = None,
                 generated_frames: int = 1):
        """No network: ``backend`` and ``precision`` do not apply; ``device`` and
        ``generated_frames`` do."""
        super().__init__(inner=inner, refine=False, device=device, generated_frames=generated_frames)


VFI_PASSES = {p.name: p for p in (VfiPass, VfiDensePass, VfiCheapPass)}
