"""Frame interpolation's cheap path (FSR 3 style), in encoded colour at display resolution:
the rendered frame b's motion forward-splatted to the middle time (nearest depth wins),
cracks and disocclusions filled from the background, the two frames read along it and
blended by visibility. Used by the interpolation pass and by its refiner's training data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import warp as W
from .encoding import depth_feature

#: Relative depth tolerance of the visibility test.
DEPTH_TOLERANCE = 0.04
#: Sources whose depth is within this fraction of the nearest one at a target pixel are
#: averaged there (flat surfaces), farther ones are occluded.
SPLAT_TIE = 0.01
#: Display pixels of middle-time flow per unit of the refiner's flow feature.
FLOW_SCALE = 32.0


class VfiInputError(ValueError):
    """Bad input to the interpolation functions (names the field, expected and actual)."""


def need_tensor(name: str, t: torch.Tensor, shape: tuple) -> None:
    """``VfiInputError`` unless ``t`` is a finite tensor of ``shape`` (None: any size)."""
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
    their object, as :func:`stss_runtime.ops.warp.upsample_motion`)."""
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
    need_tensor("color_a", color_a, (1, 3, None, None))
    need_tensor("color_b", color_b, (1, 3, *color_a.shape[2:]))
    need_tensor("motion_ba", motion_ba, (1, 2, None, None))
    need_tensor("depth_b", depth_b, (1, 1, *motion_ba.shape[2:]))
    need_tensor("depth_a", depth_a, (1, 1, *motion_ba.shape[2:]))
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
