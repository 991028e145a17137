"""Frame interpolation (VFI): double the frame rate by synthesising the frame BETWEEN two
rendered frames, at the price of one display frame of latency (``shared/PASSES.md``).

Schedule and call contract (``latency_frames = 1``): the engine renders only the even
display frames (``frame.shaded``); ``execute(frame i)`` returns the display output for
frame ``i - 1``:

* on a rendered frame ``b = i``: upscale ``b`` with the inner upscaler, interpolate the
  middle frame ``m = i - 1`` between the stored upscale of ``a = i - 2`` and ``b``, return
  ``m``, store ``b``'s upscale;
* on an unrendered frame ``i``: return the stored upscale of frame ``i - 1``;
* on the first call after setup/reset: return frame ``i``'s own upscale (nothing earlier
  exists; an evaluator drops that output);
* a camera cut (``frame.reset``, or an index gap) is never interpolated across: a cut at
  ``b`` shows ``a`` again for ``m`` (``m`` belongs to the old shot), a cut at ``m`` shows
  ``b``'s upscale for ``m``.

What the pass reads: everything of the rendered frames; of an unrendered frame **only its
motion vectors**. A half-rate engine would hand over motion from ``b`` straight to ``a``
(``b``'s pixels, render pixels, previous minus current); frame dumps carry per-display-frame
motion, so the pass emulates that by composing ``b -> m -> a``
(:func:`stss_runtime.warp.compose_motion` of ``b``'s motion with ``m``'s). The inner
upscaler (a pass of :data:`stss_runtime.passes.PASSES`, default ``temporal``) is fed a
consistent half-rate sequence: the rendered frames only, re-indexed consecutively, with
that composed ``b -> a`` motion.

The interpolation, in encoded (display-referred) colour at display resolution:

1. **Cheap path** (:func:`cheap_interpolate`, FSR 3 style): ``b``'s motion (dilated to the
   nearest depth, on the unjittered display grid) is forward-splatted to the middle time
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
   tiles both give the same values.

STSS extrapolation (zero latency) stays the runtime's default pass; this one is the
alternative for engines that accept a frame of delay.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import warp as W
from ..frame import Frame
from ..history import decode_color, depth_feature, encode_color
from ..models.vfi import CELL, FLOW_SCALE, INPUT_CHANNELS, VfiRefiner
from .base import Pass, PassError

#: Default tile side (display pixels) of the pruned refiner.
TILE = 16
#: Relative depth tolerance of the visibility test.
DEPTH_TOLERANCE = 0.04
#: Sources whose depth is within this fraction of the nearest one at a target pixel are
#: averaged there (flat surfaces), farther ones are occluded.
SPLAT_TIE = 0.01
WEIGHTS_NAME = "vfi_refiner.pt"


class VfiInputError(ValueError):
    """Bad input to the interpolation functions (names the field, expected and actual)."""


def _need(name: str, t: torch.Tensor, shape: tuple) -> None:
    if not isinstance(t, torch.Tensor):
        raise VfiInputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != len(shape) or any(e is not None and a != e for a, e in zip(t.shape, shape)):
        want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise VfiInputError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise VfiInputError(f"{name} contains NaN or Inf")


def geometry_to_display(motion: torch.Tensor, depth: torch.Tensor, jitter_px,
                        size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Render-resolution motion (render px) and depth of a jittered render -> display
    resolution on the unjittered grid: (motion in display px, depth). Each display pixel
    takes the nearest-depth render pixel of a 3x3 neighbourhood (foreground edges move with
    their object, as :func:`stss_runtime.warp.upsample_motion`)."""
    _, idx = F.max_pool2d(-depth, 3, stride=1, padding=1, return_indices=True)
    n, c, h, w = motion.shape
    flat = torch.cat([motion, depth], 1).reshape(n, c + 1, h * w)
    dil = torch.gather(flat, 2, idx.reshape(n, 1, h * w).expand(n, c + 1, h * w)).reshape(n, c + 1, h, w)
    up = W.resample(dil, size, shift_px=jitter_px, mode="nearest")
    scale = torch.tensor([size[0] / w, size[1] / h], dtype=up.dtype, device=up.device).view(1, 2, 1, 1)
    return up[:, :2] * scale, up[:, 2:]


@dataclass
class CheapResult:
    """The cheap interpolation and what the refiner reads (display res, encoded colour)."""

    cheap: torch.Tensor  # (1, 3, H, W)
    warped_a: torch.Tensor  # (1, 3, H, W) frame a read along the middle-time flow
    warped_b: torch.Tensor  # (1, 3, H, W)
    visibility: torch.Tensor  # (1, 2, H, W) weights of a and b, in [0, 1]
    flow: torch.Tensor  # (1, 2, H, W) middle -> a minus middle -> b, display px
    depth: torch.Tensor  # (1, 1, H, W) linear depth of the surface seen in the middle
    holes: torch.Tensor  # (1, 1, H, W) 1 where no pixel of b splatted (background-filled)

    def features(self, near: float, far: float) -> torch.Tensor:
        """The refiner's 14 input channels (:mod:`stss_runtime.models.vfi`)."""
        return torch.cat([self.cheap, self.warped_a, self.warped_b, self.visibility,
                          self.flow / FLOW_SCALE, depth_feature(self.depth, near, far)], dim=1)


def splat_to_middle(flow_b: torch.Tensor, depth_b: torch.Tensor, s: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward-splat ``b``'s flow (b -> a, display px) to the time ``s`` of the way from b
    to a: pixel p lands on the nearest pixel to ``p + s * flow``. The nearest depth wins;
    sources within :data:`SPLAT_TIE` of it are averaged. Returns (flow, depth, hit) at the
    middle time; ``hit`` is 0 where nothing landed (flow and depth 0 there)."""
    n, _, h, w = flow_b.shape
    if n != 1:
        raise VfiInputError(f"splat_to_middle: batch size must be 1, got {n}")
    base = W._base_grid(h, w, str(flow_b.device), flow_b.dtype)
    pos = base + s * flow_b
    tx = torch.floor(pos[0, 0]).long().reshape(-1)
    ty = torch.floor(pos[0, 1]).long().reshape(-1)
    d = depth_b.reshape(-1)
    f = flow_b[0].reshape(2, -1)
    ok = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    idx, d, f = (ty * w + tx)[ok], d[ok], f[:, ok]
    dmin = torch.full((h * w,), float("inf"), dtype=d.dtype, device=d.device)
    dmin.scatter_reduce_(0, idx, d, reduce="amin", include_self=True)
    win = d <= dmin[idx] * (1.0 + SPLAT_TIE)
    idx, f, d = idx[win], f[:, win], d[win]
    count = torch.zeros(h * w, dtype=flow_b.dtype, device=flow_b.device).index_add_(0, idx, torch.ones_like(d))
    fsum = torch.zeros(2, h * w, dtype=flow_b.dtype, device=flow_b.device).index_add_(1, idx, f)
    hit = count > 0
    flow = torch.where(hit, fsum / count.clamp_min(1.0), torch.zeros_like(fsum))
    depth = torch.where(hit, dmin, torch.zeros_like(dmin))
    return flow.view(1, 2, h, w), depth.view(1, 1, h, w), hit.to(flow_b.dtype).view(1, 1, h, w)


def farthest_in_window(values: torch.Tensor, depth: torch.Tensor, radius: int,
                       valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pixel, (values, depth) of the farthest pixel (largest depth; among
    ``valid`` ones if given) of a (2 radius + 1)^2 window, by two separable max passes."""
    n, c, h, w = values.shape
    k = 2 * radius + 1
    key = depth if valid is None else torch.where(valid, depth, torch.full_like(depth, -1.0))
    flat = torch.cat([values, depth, key], 1)
    for kernel, pad in (((1, k), (0, radius)), ((k, 1), (radius, 0))):
        _, idx = F.max_pool2d(flat[:, -1:], kernel, stride=1, padding=pad, return_indices=True)
        flat = torch.gather(flat.reshape(n, c + 2, h * w), 2,
                            idx.reshape(n, 1, h * w).expand(n, c + 2, h * w)).reshape(n, c + 2, h, w)
    return flat[:, :c], flat[:, c:c + 1]


def fill_from_background(flow: torch.Tensor, depth: torch.Tensor, hit: torch.Tensor,
                         flow_b: torch.Tensor, depth_b: torch.Tensor, s: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the splat's holes. Cracks (a hole pixel with at least 5 of its 8 neighbours
    hit, as a stretching surface leaves) take their farthest hit neighbour. Other holes are
    disocclusions: background the middle frame sees and b does not, next to where b's
    foreground now is; they take the flow and depth of the farthest pixel of b's own
    field within a window around them (radius: ``s`` times b's 99th-percentile motion plus
    3 px, at most 64), i.e. the background's motion."""
    valid = hit > 0.5
    if bool(valid.all()):
        return flow, depth
    count = F.avg_pool2d(hit, 3, stride=1, padding=1, count_include_pad=False) * 9 - hit
    crack = (~valid) & (count >= 5)
    if bool(crack.any()):
        f3, d3 = farthest_in_window(flow, depth, 1, valid)
        flow = torch.where(crack, f3, flow)
        depth = torch.where(crack, d3, depth)
        valid = valid | crack
    if not bool(valid.all()):
        speed = (flow_b * flow_b).sum(1).flatten()  # squared (norm() over dim 1 is slow on CPU)
        q = math.sqrt(float(torch.quantile(speed[:: max(1, speed.numel() // 100_000)], 0.99)))
        radius = int(min(64, math.ceil(s * q) + 3))
        fb, db = farthest_in_window(flow_b, depth_b, radius)
        flow = torch.where(valid, flow, fb)
        depth = torch.where(valid, depth, db)
    return flow, depth


def cheap_interpolate(color_a: torch.Tensor, color_b: torch.Tensor, motion_ba: torch.Tensor,
                      depth_a: torch.Tensor, depth_b: torch.Tensor, jitter_a=(0.0, 0.0),
                      jitter_b=(0.0, 0.0), t: float = 0.5) -> CheapResult:
    """The FSR 3 style interpolation of the frame at time ``t`` between a (t=0) and b (t=1).

    ``color_a``, ``color_b``: (1, 3, H, W) encoded colour at display resolution (unjittered
    grid); ``motion_ba``: (1, 2, h, w) render pixels on b's grid, from b to a (previous minus
    current); ``depth_a``/``depth_b``: (1, 1, h, w) linear depth of a's and b's renders;
    ``jitter_a``/``jitter_b``: their jitters (render px). Motion is assumed linear in time.
    """
    _need("color_a", color_a, (1, 3, None, None))
    _need("color_b", color_b, (1, 3, *color_a.shape[2:]))
    _need("motion_ba", motion_ba, (1, 2, None, None))
    _need("depth_b", depth_b, (1, 1, *motion_ba.shape[2:]))
    _need("depth_a", depth_a, (1, 1, *motion_ba.shape[2:]))
    if not 0.0 < t < 1.0:
        raise VfiInputError(f"t must be in (0, 1), got {t}")
    if bool((depth_a <= 0).any()) or bool((depth_b <= 0).any()):
        raise VfiInputError("depth_a and depth_b must be positive linear depth")
    H, W_ = color_a.shape[2:]
    size = (int(W_), int(H))
    flow_b, db = geometry_to_display(motion_ba, depth_b, jitter_b, size)
    _, da = geometry_to_display(motion_ba, depth_a, jitter_a, size)
    s = 1.0 - t  # fraction of the way from b back to a
    flow, depth, hit = splat_to_middle(flow_b, db, s)
    flow, depth = fill_from_background(flow, depth, hit, flow_b, db, s)
    off_a, off_b = t * flow, -s * flow
    warped_a = W.sample(color_a, off_a, "bicubic").clamp(0.0, 1.0)
    warped_b = W.sample(color_b, off_b, "bicubic").clamp(0.0, 1.0)
    seen_a = W.sample(da, off_a, "nearest")
    seen_b = W.sample(db, off_b, "nearest")
    tol = DEPTH_TOLERANCE * depth + 1e-6
    vis_a = torch.exp(-((seen_a - depth) / tol) ** 2)
    vis_b = torch.exp(-((seen_b - depth) / tol) ** 2)
    wa, wb = (1.0 - t) * vis_a, t * vis_b
    total = wa + wb
    none = total < 1e-4  # neither frame confirms the surface: plain time-weighted blend
    wa = torch.where(none, torch.full_like(wa, 1.0 - t), wa)
    wb = torch.where(none, torch.full_like(wb, t), wb)
    cheap = (wa * warped_a + wb * warped_b) / (wa + wb)
    return CheapResult(cheap=cheap, warped_a=warped_a, warped_b=warped_b,
                       visibility=torch.cat([vis_a, vis_b], 1), flow=flow, depth=depth,
                       holes=1.0 - hit)


# ---------------------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------------------

def tile_grid(size_hw: tuple[int, int], tile: int) -> tuple[int, int]:
    """Tiles (rows, columns) covering an image of (H, W)."""
    h, w = size_hw
    return -(-h // tile), -(-w // tile)


def pad_for_tiles(x: torch.Tensor, tile: int, halo: int) -> torch.Tensor:
    """Replicate-pad (N, C, H, W) to whole tiles (bottom/right) plus ``halo`` on every side."""
    h, w = x.shape[-2:]
    rows, cols = tile_grid((h, w), tile)
    return F.pad(x, (halo, halo + cols * tile - w, halo, halo + rows * tile - h), mode="replicate")


def gather_tiles(padded: torch.Tensor, tiles: torch.Tensor, tile: int, halo: int,
                 scale: int = 1) -> torch.Tensor:
    """Patches of (tile + 2 halo) / scale pixels around the tiles ``tiles`` ((K, 2) row,
    column) of a tensor padded by :func:`pad_for_tiles` (at 1/``scale`` resolution, with
    tile and halo divisible by ``scale``) -> (K, C, P, P). Only those patches are copied."""
    t, hl = tile // scale, halo // scale
    p = t + 2 * hl
    view = padded[0].unfold(1, p, t).unfold(2, p, t)  # (C, rows, cols, p, p), no copy
    return view[:, tiles[:, 0], tiles[:, 1]].permute(1, 0, 2, 3)


def scatter_tiles(image: torch.Tensor, patches: torch.Tensor, tiles: torch.Tensor, tile: int,
                  halo: int) -> torch.Tensor:
    """Write the interiors (halo cut off) of ``patches`` (K, C, P, P) into ``image``
    (1, C, rows * tile, cols * tile) at ``tiles`` ((K, 2) row, column), in place."""
    _, c, h, w = image.shape
    rows, cols = h // tile, w // tile
    view = image[0].view(c, rows, tile, cols, tile).permute(1, 3, 0, 2, 4)  # (rows, cols, C, t, t)
    view[tiles[:, 0], tiles[:, 1]] = patches[:, :, halo:halo + tile, halo:halo + tile]
    return image


def tile_runs(tiles: torch.Tensor, max_len: int) -> dict[int, torch.Tensor]:
    """Group tiles ((K, 2) row, column, row-major as :func:`torch.nonzero` gives them) into
    horizontal runs of neighbours, at most ``max_len`` long: {length: (R, 2) row, first
    column}. A run is refined as one patch, so neighbours share their halo."""
    runs: dict[int, list[tuple[int, int]]] = {}
    start = prev = None
    for r, c in tiles.tolist() + [(-1, -2)]:
        if start is not None and r == start[0] and c == prev + 1 and c - start[1] < max_len:
            prev = c
            continue
        if start is not None:
            runs.setdefault(prev - start[1] + 1, []).append(start)
        start, prev = (r, c), c
    return {n: torch.tensor(v, dtype=torch.long).view(-1, 2) for n, v in runs.items()}


def gather_runs(padded: torch.Tensor, starts: torch.Tensor, length: int, tile: int, halo: int,
                scale: int = 1) -> torch.Tensor:
    """Patches of ``length`` tiles side by side (plus the halo) starting at ``starts`` ((R, 2)
    row, first column) -> (R, C, (tile + 2 halo) / scale, (length tile + 2 halo) / scale)."""
    t, hl = tile // scale, halo // scale
    view = padded[0].unfold(1, t + 2 * hl, t).unfold(2, length * t + 2 * hl, t)
    return view[:, starts[:, 0], starts[:, 1]].permute(1, 0, 2, 3)


def scatter_runs(image: torch.Tensor, patches: torch.Tensor, starts: torch.Tensor, length: int,
                 tile: int, halo: int) -> torch.Tensor:
    """Write the interiors of run patches (:func:`gather_runs`) into ``image`` (1, C,
    rows * tile, cols * tile), in place."""
    _, c, h, w = image.shape
    view = image[0].view(c, h // tile, tile, w // tile, tile).permute(1, 3, 0, 2, 4)
    inner = patches[:, :, halo:halo + tile, halo:halo + length * tile]
    k = inner.shape[0]
    inner = inner.reshape(k, c, tile, length, tile).permute(0, 3, 1, 2, 4)
    cols = starts[:, 1:2] + torch.arange(length).view(1, -1)
    view[starts[:, 0:1].expand(k, length), cols] = inner
    return image


def tile_scores(uncertainty: torch.Tensor, tile: int) -> torch.Tensor:
    """Per-cell uncertainty (1, 1, H/8, W/8) -> per-tile score (rows, cols): the largest
    predicted error of the tile's cells."""
    k = tile // CELL
    return F.max_pool2d(uncertainty, k, ceil_mode=True)[0, 0] if k > 1 else uncertainty[0, 0]


class PrunedRefiner:
    """Runs a :class:`VfiRefiner` densely or on the tiles whose predicted error exceeds a
    threshold. Both pad the frame by the refiner's halo the same way, so a refined tile has
    the same values either way."""

    def __init__(self, model: VfiRefiner, tile: int = TILE, threshold: float = -3.0,
                 max_run: int = 8):
        """``max_run``: selected tiles that are horizontal neighbours are refined as one
        patch of up to this many tiles (they share their halo; 1: every tile alone)."""
        if tile % CELL or tile < CELL:
            raise VfiInputError(f"tile must be a positive multiple of {CELL} display pixels, got {tile}")
        if model.halo % 2:
            raise VfiInputError(f"the refiner's halo must be even, got {model.halo}")
        if max_run < 1:
            raise VfiInputError(f"max_run must be >= 1, got {max_run}")
        self.model, self.tile, self.threshold = model, int(tile), float(threshold)
        self.max_run = int(max_run)

    def _prepare(self, x: torch.Tensor):
        _need("x", x, (1, INPUT_CHANNELS, None, None))
        h, w = x.shape[-2:]
        rows, cols = tile_grid((h, w), self.tile)
        whole = pad_for_tiles(x, self.tile, 0)  # (1, 14, rows*T, cols*T)
        unc, ctx = self.model.context(whole)
        ctx_half = pad_for_tiles(self.model.context_to_half(ctx), self.tile // 2, self.model.halo // 2)
        padded = pad_for_tiles(whole, self.tile, self.model.halo)
        return (h, w), whole, unc, ctx_half, padded

    def dense(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(refined (1, 3, H, W), per-tile scores (rows, cols))."""
        (h, w), whole, unc, ctx_half, padded = self._prepare(x)
        hl = self.model.halo
        out = self.model.refine(padded, ctx_half)[:, :, hl:hl + h, hl:hl + w]
        return out, tile_scores(unc, self.tile)

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """(K, 2) row, column of the tiles to refine."""
        return torch.nonzero(scores > self.threshold)

    def pruned(self, x: torch.Tensor, tiles: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(output (1, 3, H, W), scores (rows, cols), refined tiles (K, 2)). ``tiles``
        overrides the selection by the predicted uncertainty."""
        (h, w), whole, unc, ctx_half, padded = self._prepare(x)
        scores = tile_scores(unc, self.tile)
        if tiles is None:
            tiles = self.select(scores)
        out = whole[:, :3].clone()
        hl = self.model.halo
        if len(tiles) and self.max_run == 1:
            xp = gather_tiles(padded, tiles, self.tile, hl)
            cp = gather_tiles(ctx_half, tiles, self.tile, hl, scale=2)
            scatter_tiles(out, self.model.refine(xp, cp), tiles, self.tile, hl)
        elif len(tiles):
            for length, starts in tile_runs(tiles, self.max_run).items():
                xp = gather_runs(padded, starts, length, self.tile, hl)
                cp = gather_runs(ctx_half, starts, length, self.tile, hl, scale=2)
                scatter_runs(out, self.model.refine(xp, cp), starts, length, self.tile, hl)
        return out[:, :, :h, :w], scores, tiles


# ---------------------------------------------------------------------------------------
# The pass
# ---------------------------------------------------------------------------------------

def _load_refiner(weights) -> tuple[VfiRefiner, dict]:
    from ..checkpoint import WEIGHTS_DIR, load_weights

    from ..checkpoint import WeightsError

    path = Path(weights) if weights is not None else WEIGHTS_DIR / WEIGHTS_NAME
    if not path.exists():
        raise WeightsError(f"no weights at {path}; train them with `python -m stss_runtime.train_vfi` "
                           f"(see stss_runtime/weights/README.md)")
    model, info = load_weights(path)
    if not isinstance(model, VfiRefiner):
        raise WeightsError(f"{path} holds a {info.get('model')!r} model, not a VFI refiner "
                           f"(train one with `python -m stss_runtime.train_vfi`)")
    return model, info


class VfiPass(Pass):
    """Frame interpolation with the tile-pruned refiner (see the module docstring)."""

    name = "vfi"
    description = ("frame interpolation between rendered frames (adds ONE frame of latency; "
                   "STSS extrapolation stays the default): FSR 3 style cheap blend, neural "
                   "refiner on the tiles its uncertainty head predicts to be hard")
    inputs = ("color", "motion", "depth", "normal", "object_id")
    latency_frames = 1
    neural = True  # the refiner
    dense = False

    def __init__(self, inner: str = "temporal", model: VfiRefiner | None = None,
                 weights: str | Path | None = None, threshold: float | None = None,
                 tile: int | None = None, refine: bool = True):
        """``inner``: the upscaler pass of the rendered frames (a name of ``PASSES``);
        ``model``: a refiner (else loaded from ``weights``, default the shipped
        ``stss_runtime/weights/vfi_refiner.pt``); ``threshold``/``tile``: override the
        values stored with the weights; ``refine=False``: the cheap path alone."""
        super().__init__()
        from . import PASSES

        if inner not in PASSES or PASSES[inner].latency_frames != 0:
            valid = [k for k, v in PASSES.items() if v.latency_frames == 0]
            raise ValueError(f"inner must be a zero-latency pass of PASSES ({', '.join(valid)}), got {inner!r}")
        self.inner_name = inner
        self.inner = PASSES[inner]()
        info: dict = {}
        if refine and model is None:
            model, info = _load_refiner(weights)
        self.model = model
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
        self._cut_at_unrendered = False
        self._inner_index = 0
        if self.display_size is not None:
            self.inner.reset()

    def _upscale(self, frame: Frame, motion: torch.Tensor, reset: bool) -> torch.Tensor:
        self._inner_index = 0 if reset else self._inner_index + 1
        return self.inner(replace(frame, index=self._inner_index, motion=motion, reset=reset))

    def execute(self, frame: Frame) -> torch.Tensor:
        gap = self._last_index is None or frame.index != self._last_index + 1
        first = self._prev_up is None
        self._last_index = frame.index
        self.last_stats = {"interpolated": False}
        if not frame.shaded:
            if first or gap:
                raise PassError(f"{self.name}: frame {frame.index} is not rendered, but the first "
                                f"frame after a reset (or an index gap) must be rendered")
            if self._pending_motion:
                raise PassError(f"{self.name}: frame {frame.index}: two unrendered frames in a "
                                f"row; interpolation doubles the frame rate (every other frame "
                                f"rendered)")
            if frame.reset:  # cut between a and m: nothing to compose, m shows b later
                self._cut_at_unrendered = True
            self._pending_motion.append(frame.motion)  # the one thing read of this frame
            return self._prev_up
        cut = first or gap or frame.reset or self._cut_at_unrendered
        if cut:
            up = self._upscale(frame, frame.motion, reset=True)
            if first or gap:
                out = up  # nothing earlier exists
            elif self._cut_at_unrendered or not self._pending_motion:
                out = up  # m belongs to b's shot (or b follows a directly)
            else:
                out = self._prev_up  # cut at b: m belongs to a's shot
        else:
            motion = frame.motion
            for older in reversed(self._pending_motion):
                motion = W.compose_motion(motion, older)  # b -> m -> a
            up = self._upscale(frame, motion, reset=False)
            out = self._interpolate(self._prev, self._prev_up, frame, up, motion) \
                if self._pending_motion else self._prev_up
        self._prev, self._prev_up = frame, up
        self._pending_motion = []
        self._cut_at_unrendered = False
        return out

    def _interpolate(self, a: Frame, up_a: torch.Tensor, b: Frame, up_b: torch.Tensor,
                     motion_ba: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        res = cheap_interpolate(encode_color(up_a), encode_color(up_b), motion_ba,
                                a.depth, b.depth, a.jitter_px, b.jitter_px)
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

    def __init__(self, inner: str = "temporal"):
        super().__init__(inner=inner, refine=False)


VFI_PASSES = {p.name: p for p in (VfiPass, VfiDensePass, VfiCheapPass)}
