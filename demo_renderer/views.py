"""The demo's debug views as (H, W, 3) uint8 images at the display size.

The G-buffer views show what the engine (the demo renderer) drew for the frame on screen:
for a generated frame, its own G-buffers, the only inputs the extrapolation gets besides
the history. The hole mask comes from the plugin's public debug API
(:func:`plugin.debug.hole_mask_view`); generated frames are tinted with
:func:`plugin.debug.tint`. Nothing here imports imgui: the overlay only lists the names.
"""

from __future__ import annotations

import math

import numpy as np

#: Debug views of the G-buffers, in the order the overlay lists them.
GBUFFER_VIEWS = ("albedo", "normal", "roughness", "metallic", "depth", "object_id", "motion")
#: Every debug view: "none", the G-buffers, the generated frame's holes, generated frames tinted.
DEBUG_VIEWS = ("none",) + GBUFFER_VIEWS + ("holes", "tint_generated")
DEBUG_LABELS = {"none": "none", "albedo": "albedo", "normal": "normal (view space)", "roughness": "roughness",
                "metallic": "metallic", "depth": "depth (log, near bright)", "object_id": "object id",
                "motion": "motion vectors", "holes": "hole mask (generated frame)",
                "tint_generated": "generated frames tinted"}


class DebugViewError(ValueError):
    """An unknown debug view name or a G-buffer array of the wrong shape."""


def check_view(name: str) -> str:
    if name not in DEBUG_VIEWS:
        raise DebugViewError(f"debug_view: expected one of {', '.join(DEBUG_VIEWS)}, got {name!r}")
    return name


def nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` (h, w, ...) resampled nearest-neighbour to ``size`` (W, H), any ratio."""
    w, h = int(size[0]), int(size[1])
    rows = (np.arange(h) * img.shape[0]) // h
    cols = (np.arange(w) * img.shape[1]) // w
    return np.ascontiguousarray(img[rows][:, cols])


def _u8(v: np.ndarray) -> np.ndarray:
    return (np.clip(v, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _grey(v: np.ndarray) -> np.ndarray:
    return np.repeat(_u8(v)[..., None], 3, axis=2)


def object_id_colours(ids: np.ndarray) -> np.ndarray:
    """A distinct, stable colour per object id (a golden-ratio hue walk); id 0 (background)
    is black."""
    ids = np.asarray(ids).astype(np.int64)
    hue = (ids * 0.61803398875) % 1.0
    rgb = _hsv(hue, np.full(ids.shape, 0.65), np.full(ids.shape, 0.95))
    rgb[ids <= 0] = 0.0
    return _u8(rgb)


def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    out = np.zeros(h.shape + (3,))
    for k, c in enumerate(choices):
        out[i == k] = c[i == k]
    return out


def motion_colours(motion: np.ndarray) -> np.ndarray:
    """Motion vectors (h, w, 2) in pixels as a colour wheel: hue = direction, brightness =
    length / max(1 px, the 99th percentile length of the frame); still pixels are black."""
    m = np.asarray(motion, dtype=np.float64)
    length = np.hypot(m[..., 0], m[..., 1])
    scale = max(1.0, float(np.percentile(length, 99))) if length.size else 1.0
    hue = (np.arctan2(m[..., 1], m[..., 0]) / (2 * math.pi)) % 1.0
    return _u8(_hsv(hue, np.ones_like(hue), np.clip(length / scale, 0.0, 1.0)))


def depth_grey(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Linear depth on a log scale over the frame's range, near bright (the far plane, i.e.
    the sky, black)."""
    d = np.asarray(depth, dtype=np.float64)
    ld = np.log(np.clip(d, max(near, 1e-6), max(far, near * 1.001)))
    lo, hi = float(ld.min()), float(ld.max())
    if hi - lo < 1e-9:
        lo, hi = math.log(max(near, 1e-6)), math.log(max(far, near * 1.001))
    return _grey(1.0 - (ld - lo) / (hi - lo))


def gbuffer_view(name: str, arrays: dict[str, np.ndarray], display_size: tuple[int, int],
                 near: float = 0.1, far: float = 200.0) -> np.ndarray:
    """One G-buffer of ``arrays`` (the renderer's :meth:`read_frame` dict, render size) as a
    display-size uint8 image."""
    if name not in GBUFFER_VIEWS:
        raise DebugViewError(f"gbuffer_view: expected one of {', '.join(GBUFFER_VIEWS)}, got {name!r}")
    a = np.asarray(arrays[name])
    want = {"albedo": 3, "normal": 3, "motion": 2}.get(name)
    if (want is None and a.ndim != 2) or (want is not None and (a.ndim != 3 or a.shape[2] != want)):
        shape = "(h, w)" if want is None else f"(h, w, {want})"
        raise DebugViewError(f"gbuffer_view({name!r}): expected a {shape} array, got shape {a.shape}")
    a32 = a.astype(np.float32)
    if name == "albedo":
        img = _u8(np.power(np.clip(a32, 0.0, 1.0), 1 / 2.2))  # linear albedo, roughly display-encoded
    elif name == "normal":
        img = _u8(a32 * 0.5 + 0.5)
    elif name in ("roughness", "metallic"):
        img = _grey(a32)
    elif name == "depth":
        img = depth_grey(a32, near, far)
    elif name == "object_id":
        img = object_id_colours(a)
    else:
        img = motion_colours(a32)
    return nearest(img, display_size)
