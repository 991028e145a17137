"""Backward warping by motion vectors, motion composition and hole (disocclusion) marking.

All functions take NCHW tensors at render resolution. Sample positions are in pixels with
pixel centres at +0.5 (CONVENTIONS.md); ``offset`` fields say where, relative to each
pixel's centre, to read the source image.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F


@lru_cache(maxsize=16)
def _base_grid(h: int, w: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """Pixel-centre coordinates (1, 2, h, w): x + 0.5, y + 0.5."""
    ys = torch.arange(h, device=device, dtype=dtype) + 0.5
    xs = torch.arange(w, device=device, dtype=dtype) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy]).unsqueeze(0)


def sample(src: torch.Tensor, offset: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Read ``src`` (N, C, h, w) at each pixel centre + ``offset`` (N, 2, h, w) pixels.

    Positions outside the image clamp to the border (out-of-screen motion is legal).
    ``mode``: ``"bilinear"`` or ``"nearest"``.
    """
    n, _, h, w = offset.shape
    pos = _base_grid(h, w, str(offset.device), offset.dtype) + offset
    sh, sw = src.shape[-2:]
    # normalised coordinates for align_corners=False: pixel-centre convention
    gx = pos[:, 0] * (2.0 / sw) - 1.0
    gy = pos[:, 1] * (2.0 / sh) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    dtype = src.dtype
    out = F.grid_sample(src.float() if not src.is_floating_point() else src, grid, mode=mode,
                        padding_mode="border", align_corners=False)
    return out.to(dtype) if not dtype.is_floating_point else out


def resample(src: torch.Tensor, out_size: tuple[int, int], shift_px=(0.0, 0.0),
             mode: str = "bilinear") -> torch.Tensor:
    """Resample ``src`` (N, C, h, w) to ``out_size`` (width, height), reading each output
    pixel centre's position in ``src`` plus ``shift_px`` (source pixels).

    For a jittered render, ``shift_px = jitter`` undoes the jitter (the surface at
    unjittered position p sits at p + jitter in the image). ``mode``: nearest, bilinear,
    bicubic.
    """
    out_w, out_h = out_size
    n, _, sh, sw = src.shape
    xs = (torch.arange(out_w, device=src.device, dtype=torch.float32) + 0.5) * (sw / out_w) + float(shift_px[0])
    ys = (torch.arange(out_h, device=src.device, dtype=torch.float32) + 0.5) * (sh / out_h) + float(shift_px[1])
    gy, gx = torch.meshgrid(ys * (2.0 / sh) - 1.0, xs * (2.0 / sw) - 1.0, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(n, -1, -1, -1)
    return F.grid_sample(src, grid.to(src.dtype), mode=mode, padding_mode="border", align_corners=False)


def upsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A render-resolution mask (N, 1, h, w) at display ``size`` (width, height), nearest."""
    return resample(mask, size, mode="nearest")


def upsample_motion(motion: torch.Tensor, depth: torch.Tensor,
                    out_size: tuple[int, int]) -> torch.Tensor:
    """Render-resolution motion -> display resolution, in display pixels.

    Each display pixel takes the motion of the nearest-depth render pixel of its 3x3
    neighbourhood (FSR 2's dilation: edges of foreground objects move with them)."""
    _, idx = F.max_pool2d(-depth, 3, stride=1, padding=1, return_indices=True)
    n, c, h, w = motion.shape
    flat = motion.reshape(n, c, h * w)
    dilated = torch.gather(flat, 2, idx.reshape(n, 1, h * w).expand(n, c, h * w)).reshape(n, c, h, w)
    out_w, out_h = out_size
    up = resample(dilated, out_size, mode="nearest")
    return up * torch.tensor([out_w / w, out_h / h], dtype=up.dtype, device=up.device).view(1, 2, 1, 1)


def compose_motion(motion: torch.Tensor, older: torch.Tensor) -> torch.Tensor:
    """Chain motion fields: ``motion`` maps frame i to i-1; ``older`` maps frame i-1 to k.
    Returns the field mapping frame i to frame k: ``motion + older(x + motion)``."""
    return motion + sample(older, motion)


def background_motion(motion: torch.Tensor, depth: torch.Tensor, window: int = 7) -> torch.Tensor:
    """For each pixel, the motion of the farthest pixel (largest depth) in a ``window`` x
    ``window`` neighbourhood: where a hole opened behind a foreground object, this is the
    motion of the background around it."""
    pad = window // 2
    _, idx = F.max_pool2d(depth, window, stride=1, padding=pad, return_indices=True)
    n, c, h, w = motion.shape
    flat = motion.reshape(n, c, h * w)
    return torch.gather(flat, 2, idx.reshape(n, 1, h * w).expand(n, c, h * w)).reshape(n, c, h, w)


def view_positions(depth: torch.Tensor, proj: np.ndarray, jitter_px) -> torch.Tensor:
    """View-space positions (N, 3, h, w) of each pixel's surface from linear depth.

    The pixel at jittered centre c shows the unjittered position c - jitter."""
    n, _, h, w = depth.shape
    base = _base_grid(h, w, str(depth.device), torch.float32)
    px = base[:, 0:1] - float(jitter_px[0])
    py = base[:, 1:2] - float(jitter_px[1])
    ndc_x = px * (2.0 / w) - 1.0
    ndc_y = 1.0 - py * (2.0 / h)
    # for an OpenGL perspective projection: x_view = (ndc_x - P02) * d / P00 (P02 is 0 unjittered)
    p = np.asarray(proj, np.float64)
    x = (ndc_x + p[0, 2]) * depth / p[0, 0]
    y = (ndc_y + p[1, 2]) * depth / p[1, 1]
    return torch.cat([x, y, -depth], dim=1)


def transform_points(m: np.ndarray, pts: torch.Tensor) -> torch.Tensor:
    """Apply a 4x4 affine matrix to (N, 3, h, w) points."""
    t = torch.as_tensor(np.asarray(m, np.float64), dtype=pts.dtype, device=pts.device)
    return torch.einsum("ij,njhw->nihw", t[:3, :3], pts) + t[:3, 3].view(1, 3, 1, 1)


def rotate_vectors(m: np.ndarray, v: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(m, np.float64)[:3, :3], dtype=v.dtype, device=v.device)
    return torch.einsum("ij,njhw->nihw", t, v)


def hole_mask(*, depth: torch.Tensor, normal_world: torch.Tensor, object_id: torch.Tensor,
              world_pos: torch.Tensor, view_dir_cos: torch.Tensor,
              src_depth: torch.Tensor, src_normal_world: torch.Tensor, src_object_id: torch.Tensor,
              src_view: np.ndarray, offset: torch.Tensor,
              rel_tolerance: float = 0.02, grazing_gain: float = 4.0,
              normal_cos: float = 0.5) -> torch.Tensor:
    """1 where warping the source frame by ``offset`` brings back the same surface, else 0.

    Tests (ExtraNet-style), each on the source's buffers read (nearest) at the warped spot:
    - depth: the source's depth must match the current surface's depth *as seen from the
      source camera* (``src_view``), within ``rel_tolerance`` of it, grown towards grazing
      angles by ``1 + grazing_gain * (1 - |cos|)``;
    - object id: unchanged;
    - normals (world space): within ``acos(normal_cos)``.
    Background pixels (id 0) are valid when the source is background too.
    """
    d_src = sample(src_depth, offset, "nearest")
    id_src = sample(src_object_id, offset, "nearest")
    n_src = sample(src_normal_world, offset, "nearest")
    expected = -transform_points(src_view, world_pos)[:, 2:3]
    tol = rel_tolerance * expected.abs() * (1.0 + grazing_gain * (1.0 - view_dir_cos.abs()))
    ok_depth = (d_src - expected).abs() <= tol
    ok_id = id_src == object_id
    ok_normal = (n_src * normal_world).sum(1, keepdim=True) >= normal_cos
    background = (object_id == 0) & ok_id
    return ((ok_depth & ok_id & ok_normal) | background).to(depth.dtype)
