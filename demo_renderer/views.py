"""The demo's debug views as (H, W, 3) uint8 images at the display size.

The G-buffer views show what the engine (the demo renderer) drew for the frame on screen:
for a generated frame, its own G-buffers, the only inputs the extrapolation gets besides
the history. Depth, motion and object ids use the colour maps of :mod:`plugin.debug`; the
hole mask comes from :func:`plugin.debug.hole_mask_view` and generated frames are tinted
with :func:`plugin.debug.tint`. Nothing here imports imgui: the overlay only lists the names.
"""

from __future__ import annotations

import numpy as np

# the colour maps are the plugin's own debug views', applied to the engine's arrays
from plugin.debug import depth_grey, motion_colours, object_id_colours
from plugin.debug import resize_nearest as nearest

#: Debug views of the G-buffers, in the order the overlay lists them.
GBUFFER_VIEWS = ("albedo", "normal", "roughness", "metallic", "depth", "object_id", "motion")
#: Every debug view: "none", the G-buffers, the generated frame's holes, generated frames tinted.
DEBUG_VIEWS = ("none",) + GBUFFER_VIEWS + ("holes", "object_motion", "credibility", "tint_generated")
#: Views of the last generated frame computed by the plugin (nothing to show without one).
GENERATED_VIEWS = ("holes", "object_motion", "credibility")
DEBUG_LABELS = {"none": "none", "albedo": "albedo", "normal": "normal (view space)", "roughness": "roughness",
                "metallic": "metallic", "depth": "depth (log, near bright)", "object_id": "object id",
                "motion": "motion vectors", "holes": "hole mask (generated frame)",
                "object_motion": "object motion (motion pass: minus camera motion)",
                "credibility": "motion vectors not credible (motion pass)",
                "tint_generated": "generated frames tinted"}


class DebugViewError(ValueError):
    """An unknown debug view name or a G-buffer array of the wrong shape."""


def check_view(name: str) -> str:
    if name not in DEBUG_VIEWS:
        raise DebugViewError(f"debug_view: expected one of {', '.join(DEBUG_VIEWS)}, got {name!r}")
    return name


def _u8(v: np.ndarray) -> np.ndarray:
    return (np.clip(v, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _grey(v: np.ndarray) -> np.ndarray:
    return np.repeat(_u8(v)[..., None], 3, axis=2)


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
