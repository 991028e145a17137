"""Synthetic frames: smooth colour, depth and motion, for benchmarks and self-checks whose cost
or behaviour does not depend on the picture."""

from __future__ import annotations

import math

import numpy as np
import torch


def _perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                     [0, 0, -1, 0]], dtype=np.float64)


def synthetic_frames(render_size: tuple[int, int], count: int, device: str = "cpu", seed: int = 0):
    """``count`` display frames (even = rendered, odd = extrapolated) of smooth synthetic
    G-buffers at ``render_size`` (width, height), panning a pixel per frame."""
    return list(iter_synthetic_frames(render_size, count, device, seed))


def iter_synthetic_frames(render_size: tuple[int, int], count: int, device: str = "cpu", seed: int = 0):
    """:func:`synthetic_frames` one at a time, each made when it is asked for: a benchmark
    holds one frame on its device, not all of them."""
    from .conventions import halton
    from .frame import Frame

    w, h = render_size
    g = torch.Generator().manual_seed(seed)

    def smooth(c, lo=0.0, hi=1.0):
        t = torch.rand((1, c, max(h // 8, 1), max(w // 8, 1)), generator=g)
        return lo + (hi - lo) * torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear")

    depth = smooth(1, 2.0, 30.0)
    normal = torch.nn.functional.normalize(smooth(3, -1, 1) + torch.tensor([0, 0, 1.5]).view(1, 3, 1, 1), dim=1)
    base = {"albedo": smooth(3), "normal": normal, "depth": depth, "roughness": smooth(1),
            "metallic": (smooth(1) > 0.8).float(),
            "object_id": (smooth(1, 0, 4)).floor().to(torch.int32)}
    motion = torch.zeros((1, 2, h, w))
    motion[:, 0] = -1.0  # the scene pans one pixel right per display frame
    for i in range(count):
        jitter = (halton(i + 1, 2) - 0.5, halton(i + 1, 3) - 0.5)
        color = smooth(3, 0, 2) if i % 2 == 0 else None
        f = Frame(index=i, motion=motion, view=np.eye(4), proj=_perspective(60, w / h, 0.1, 100.0),
                  jitter_px=jitter, near=0.1, far=100.0, color=color, **base)
        yield f.to(device)
