"""Reference reprojection in float64 numpy, written from CONVENTIONS.md alone (no renderer code)."""

from __future__ import annotations

import numpy as np


def pixel_grid(w: int, h: int, jitter) -> tuple[np.ndarray, np.ndarray]:
    """Unjittered pixel coordinates (+y down) of the surface seen at each pixel centre of a
    render jittered by ``jitter`` pixels."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    return x - jitter[0], y - jitter[1]


def unproject(px, py, depth, view, proj, w, h) -> np.ndarray:
    """World positions (h, w, 3) of pixels (px, py) at linear view depth ``depth``."""
    ndc = np.stack([px / w * 2 - 1, 1 - py / h * 2, np.ones_like(px), np.ones_like(px)], -1)
    q = ndc @ np.linalg.inv(proj).T
    ray = q[..., :3] / q[..., 3:4]
    pos_view = ray * (depth[..., None] / -ray[..., 2:3])
    pos = np.concatenate([pos_view, np.ones_like(depth)[..., None]], -1)
    return (pos @ np.linalg.inv(view).T)[..., :3]


def project(world, view, proj, w, h) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (+y down) of world positions (..., 3)."""
    p = np.concatenate([world, np.ones(world.shape[:-1] + (1,))], -1) @ (proj @ view).T
    ndc = p[..., :2] / p[..., 3:4]
    return (ndc[..., 0] + 1) / 2 * w, (1 - ndc[..., 1]) / 2 * h


def project_direction(dirs, view, proj, w, h):
    """Pixel coordinates of points at infinity along world directions (..., 3)."""
    d = np.concatenate([dirs, np.zeros(dirs.shape[:-1] + (1,))], -1) @ (proj @ view).T
    ndc = d[..., :2] / d[..., 3:4]
    return (ndc[..., 0] + 1) / 2 * w, (1 - ndc[..., 1]) / 2 * h


def expected_motion(frame: dict, prev_view: np.ndarray, prev_proj: np.ndarray,
                    object_transforms=None) -> np.ndarray:
    """Motion (h, w, 2) per CONVENTIONS.md from ``frame``'s depth and cameras.

    ``object_transforms``: optional {object_id: (model_now, model_prev)} for moving objects;
    background pixels (id 0) get the rotation-only motion of a point at infinity.
    """
    h, w = frame["depth"].shape
    px, py = pixel_grid(w, h, frame["jitter"].astype(np.float64))
    world = unproject(px, py, frame["depth"].astype(np.float64), frame["view"], frame["proj"], w, h)
    ids = frame["object_id"]
    for oid, (m_now, m_prev) in (object_transforms or {}).items():
        sel = ids == oid
        hom = np.concatenate([world[sel], np.ones((sel.sum(), 1))], -1)
        world[sel] = (hom @ (m_prev @ np.linalg.inv(m_now)).T)[:, :3]
    qx, qy = project(world, prev_view, prev_proj, w, h)
    bg = ids == 0
    if bg.any():
        eye_dirs = world[bg] - np.linalg.inv(frame["view"])[:3, 3]
        bx, by = project_direction(eye_dirs, prev_view, prev_proj, w, h)
        qx[bg], qy[bg] = bx, by
    return np.stack([qx - px, qy - py], -1)
