"""Decomposed motion: the part of each pixel's motion the camera explains, and the rest.

A renderer knows depth and both frames' cameras, so the motion a pixel would have if its
surface were static (camera-induced) is exact geometry: un-project the pixel with its depth
and the current camera, re-project with the previous camera. Object-induced motion is the
remainder of the full motion. Units follow CONVENTIONS.md: render pixels, previous minus
current, +x right, +y down, jitter excluded.
"""

from __future__ import annotations

import numpy as np
import torch

from ..frame import Frame
from ..ops import warp as W


def camera_motion(depth: torch.Tensor, view: np.ndarray, proj: np.ndarray, jitter_px,
                  prev_view: np.ndarray, prev_proj: np.ndarray) -> torch.Tensor:
    """Camera-induced motion (N, 2, h, w), render pixels, previous minus current.

    ``depth``: linear view depth of the current (jittered) render; ``view``/``proj``: the
    current unjittered camera; ``jitter_px``: the current render's jitter (pixels); the
    previous frame's unjittered camera. Exact for static surfaces; background pixels at
    ``far`` get (almost) the rotation-only motion of a point at infinity."""
    n, _, h, w = depth.shape
    pos = W.view_positions(depth, proj, jitter_px)  # view space of the current camera
    to_prev = np.asarray(prev_view, np.float64) @ np.linalg.inv(np.asarray(view, np.float64))
    p = W.transform_points(to_prev, pos)  # previous view space
    pp = np.asarray(prev_proj, np.float64)
    clip_x = pp[0, 0] * p[:, 0:1] + pp[0, 2] * p[:, 2:3]
    clip_y = pp[1, 1] * p[:, 1:2] + pp[1, 2] * p[:, 2:3]
    clip_w = (-p[:, 2:3]).clamp_min(1e-6)
    prev_x = (clip_x / clip_w + 1.0) * (0.5 * w)
    prev_y = (1.0 - clip_y / clip_w) * (0.5 * h)
    base = W._base_grid(h, w, str(depth.device), depth.dtype)
    cur_x = base[:, 0:1] - float(jitter_px[0])
    cur_y = base[:, 1:2] - float(jitter_px[1])
    return torch.cat([prev_x - cur_x, prev_y - cur_y], dim=1).to(depth.dtype)


def camera_motion_between(frame: Frame, prev: Frame) -> torch.Tensor:
    """:func:`camera_motion` of ``frame`` relative to the frame before it."""
    return camera_motion(frame.depth, frame.view, frame.proj, frame.jitter_px, prev.view, prev.proj)


def decompose(motion: torch.Tensor, frame: Frame, prev: Frame) -> tuple[torch.Tensor, torch.Tensor]:
    """``(camera, object)`` motion with ``camera + object == motion`` (render pixels)."""
    cam = camera_motion_between(frame, prev)
    return cam, motion - cam
