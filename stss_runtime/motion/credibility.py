"""Tier 0 of the motion pass: the renderer's (or engine's) motion vectors, and a computed
credibility mask that says where to trust them (MVFlow's idea, with the credibility
computed from what a renderer knows instead of learned).

A pixel's motion is not credible where:
- **disocclusion**: reprojected by the motion, the previous frame shows another surface
  (depth of the previous frame against the current surface's depth seen from the previous
  camera, with the tolerance of :func:`stss_runtime.ops.warp.hole_mask`, object id, normal);
- **world-position mismatch** where the motion claims the surface is static (it equals the
  camera-induced motion): the surface point the previous frame shows there is not the
  current pixel's surface point (distance of the two world positions, both from depth and
  their frame's camera, above ``world_tolerance`` pixel footprints, widened at grazing
  angles). This catches motion vectors that miss an object's own motion even inside the
  object, where depth alone still matches. Where the motion includes object motion the
  point itself moved in the world, and geometry alone cannot check it;
- **photometric residual**: the previous colour, warped by the motion, does not match the
  current colour: the 7x7 mean of the absolute difference in the display-encoded space
  exceeds ``residual_gain`` times the 7x7 mean of the current colour's own one-pixel
  differences (texture detail: jittered aliasing and resampling make a residual of about
  that size even under exact motion) plus ``residual_floor`` — motion vectors that miss
  object motion, particles, video textures show up here;
- **material flags**: mirror-like metals (``metallic`` high, ``roughness`` low) reflect a
  world that moves with the camera, not with the surface: their shading's apparent motion
  differs from the surface motion, so their credibility is lowered (not zeroed).

Everything is at render resolution, NCHW; colours are linear as the frame carries them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..frame import Frame
from ..ops import warp as W
from ..ops.encoding import encode_color
from ..ops.tiles import tile_mask as tiles_of
from .decompose import camera_motion_between


@dataclass(frozen=True)
class CredibilityConfig:
    world_tolerance: float = 1.5  # pixel footprints at the surface's depth
    # a residual above gain * detail + floor (encoded colour, 7x7 means) is suspicious; under
    # the renderer's exact motion that flags 0.7% (traffic), 0.3% (gallery) and 0.3% (fence)
    # of the pixels of our held-out sequences; an absolute threshold flagged up to 5%
    residual_gain: float = 1.0
    residual_floor: float = 0.02
    residual_softness: float = 0.02  # credibility falls from 1 to 0 over this range
    mirror_metallic: float = 0.5
    mirror_roughness: float = 0.3
    mirror_credibility: float = 0.5
    dilate: int = 1  # grow non-credible regions by this many pixels (edges of moving objects)


def jitter_delta(cur: Frame, prev: Frame) -> torch.Tensor:
    """(1, 2, 1, 1): add to a motion vector to get the offset in the *jittered* images
    (pixel p of ``cur`` shows what pixel p + motion + delta of ``prev`` shows)."""
    return torch.tensor([prev.jitter_px[0] - cur.jitter_px[0], prev.jitter_px[1] - cur.jitter_px[1]],
                        dtype=torch.float32, device=cur.depth.device).view(1, 2, 1, 1)


def _world(frame: Frame) -> tuple[torch.Tensor, torch.Tensor]:
    """(world positions, view-space positions) of each pixel's surface."""
    pos_view = W.view_positions(frame.depth, frame.proj, frame.jitter_px)
    return W.transform_points(np.linalg.inv(frame.view), pos_view), pos_view


def disocclusion_valid(cur: Frame, prev: Frame, motion: torch.Tensor,
                       world_tolerance: float = 1.5, static_px: float = 0.25,
                       camera: torch.Tensor | None = None) -> torch.Tensor:
    """1 where warping ``prev`` by ``motion`` brings back the current surface point
    (geometry only: depth, object id, normal; world position where ``motion`` is within
    ``static_px`` of the camera-induced motion, i.e. claims a static surface). ``camera``:
    that camera-induced motion when the caller has it already."""
    world, pos_view = _world(cur)
    inv_view = np.linalg.inv(cur.view)
    view_dir = -pos_view / pos_view.norm(dim=1, keepdim=True).clamp_min(1e-6)
    cos = (view_dir * cur.normal).sum(1, keepdim=True)
    offset = motion + jitter_delta(cur, prev)
    valid = W.hole_mask(depth=cur.depth, normal_world=W.rotate_vectors(inv_view, cur.normal),
                        object_id=cur.object_id, world_pos=world, view_dir_cos=cos,
                        src_depth=prev.depth, src_normal_world=W.rotate_vectors(np.linalg.inv(prev.view), prev.normal),
                        src_object_id=prev.object_id, src_view=prev.view, offset=offset)
    prev_world = W.sample(_world(prev)[0], offset, "nearest")
    footprint = cur.depth * (2.0 / (float(cur.proj[1, 1]) * cur.depth.shape[-2]))
    footprint = footprint / cos.abs().clamp_min(0.2)
    same_point = (world - prev_world).norm(dim=1, keepdim=True) <= world_tolerance * footprint
    background = cur.object_id == 0  # the sky: no position to compare
    if camera is None:
        camera = camera_motion_between(cur, prev)
    claims_static = (motion - camera).norm(dim=1, keepdim=True) <= static_px
    return valid * (same_point | background | ~claims_static).to(valid.dtype)


def occluded_in_prev(cur: Frame, prev: Frame, motion: torch.Tensor, rel_tolerance: float = 0.05) -> torch.Tensor:
    """1 where, at the spot ``motion`` points to, the previous frame shows a surface clearly in
    front of the current pixel's surface as the previous camera sees it: the current surface
    was hidden there (a disocclusion); (1, 1, h, w)."""
    world, _ = _world(cur)
    expected = -W.transform_points(prev.view, world)[:, 2:3]
    d_src = W.sample(prev.depth, motion + jitter_delta(cur, prev), "nearest")
    return (d_src < expected * (1.0 - rel_tolerance)).to(cur.depth.dtype)


def photometric_residual(cur: Frame, prev: Frame, motion: torch.Tensor) -> torch.Tensor:
    """7x7 mean absolute difference (encoded colour, channel mean) between the current colour
    and the previous colour warped by ``motion``; (1, 1, h, w)."""
    if cur.color is None or prev.color is None:
        raise ValueError("photometric_residual: both frames need colour (frame.color is None)")
    warped = W.sample(encode_color(prev.color), motion + jitter_delta(cur, prev))
    diff = (encode_color(cur.color) - warped).abs().mean(1, keepdim=True)
    return F.avg_pool2d(diff, 7, 1, 3, count_include_pad=False)


def detail(frame: Frame) -> torch.Tensor:
    """7x7 mean of the encoded colour's one-pixel differences (channel mean, x and y)."""
    e = encode_color(frame.color)
    gx = F.pad((e[..., :, 1:] - e[..., :, :-1]).abs().mean(1, keepdim=True), (0, 1, 0, 0), mode="replicate")
    gy = F.pad((e[..., 1:, :] - e[..., :-1, :]).abs().mean(1, keepdim=True), (0, 0, 0, 1), mode="replicate")
    return F.avg_pool2d(0.5 * (gx + gy), 7, 1, 3, count_include_pad=False)


def credibility(cur: Frame, prev: Frame, motion: torch.Tensor,
                config: CredibilityConfig = CredibilityConfig(),
                camera: torch.Tensor | None = None) -> torch.Tensor:
    """Credibility in [0, 1] (1, 1, h, w) of ``motion`` (render px, previous minus current)
    for frame ``cur`` against ``prev``. Without colour on either frame, the photometric test
    is left out (geometry and material tests only). ``camera``: the camera-induced motion of
    ``cur`` against ``prev``, when the caller has it already."""
    c = disocclusion_valid(cur, prev, motion, config.world_tolerance, camera=camera)
    if cur.color is not None and prev.color is not None:
        r = photometric_residual(cur, prev, motion)
        limit = config.residual_gain * detail(cur) + config.residual_floor
        c = c * (1.0 - ((r - limit) / config.residual_softness).clamp(0.0, 1.0))
    mirror = (cur.metallic >= config.mirror_metallic) & (cur.roughness <= config.mirror_roughness)
    c = torch.where(mirror, c * config.mirror_credibility, c)
    if config.dilate > 0:
        k = 2 * config.dilate + 1
        c = -F.max_pool2d(-c, k, 1, config.dilate)
    return c.clamp(0.0, 1.0)


def tile_mask(cred: torch.Tensor, tile: int = 16, threshold: float = 0.5) -> torch.Tensor:
    """(1, 1, ceil(h/tile), ceil(w/tile)) bool: tiles holding any pixel with credibility
    below ``threshold`` — the tiles a flow estimator must look at."""
    return tiles_of(cred < threshold, tile)
