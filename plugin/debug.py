"""Debug views of a :class:`plugin.Context`'s last dispatch, as (H, W, 3) uint8 images.

Each view shows one thing integrators get wrong or need to see: the motion vectors (an
HSV colour wheel), depth, the disocclusion (hole) mask of the generated frame, a reactive
mask, which frames were generated (tinted) and which followed a reset (a red border), and
the motion pass's view of the motion vectors (object motion apart from camera motion, and
where they are not credible).
Images are at the display size; render-resolution buffers are upscaled nearest. Linear
colour goes through THE display transform (``stss_runtime.conventions.display_transform``).

    result = ctx.dispatch(frame)
    views = plugin.debug.debug_views(ctx)            # {"output": ..., "motion": ..., ...}
    plugin.debug.save_debug_sheet(ctx, "views.png")  # a labelled contact sheet

    python -m plugin.debug --pass bilinear --out sheet.png   # the self-test scenario's sheet

Every view of a context raises :class:`plugin.ContextStateError` before the first dispatch
and after ``destroy()``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import display_transform

from .errors import ContextStateError, InvalidInputError

#: Colours of the overlays (8-bit sRGB).
HOLE_COLOUR = (255, 0, 0)
CREDIBILITY_COLOUR = (255, 140, 0)
REACTIVE_COLOUR = (255, 210, 0)
GENERATED_TINT = (255, 0, 255)
#: The tint of a generated frame by its distance from the rendered frame: the first after
#: it magenta (as :data:`GENERATED_TINT`), the second orange, the third cyan.
DISTANCE_TINTS = ((255, 0, 255), (255, 140, 0), (0, 200, 255))
RESET_COLOUR = (255, 0, 0)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

def _last(ctx, call: str) -> list:
    """The last dispatch's frames, or ContextStateError."""
    if ctx.destroyed:
        raise ContextStateError(f"plugin.debug.{call}: no frame dispatched yet: the context was destroyed "
                                f"(its frames went with it); create a new context and dispatch a frame")
    frames = ctx.last_frames
    if not frames:
        raise ContextStateError(f"plugin.debug.{call}: no frame dispatched yet; call ctx.dispatch(frame) first")
    return frames


def _pick(frames: list, index: int, call: str):
    try:
        return frames[index]
    except IndexError:
        raise InvalidInputError(f"{call}(index)", f"an index into the last dispatch's {len(frames)} frame(s) "
                                f"(0 = rendered, 1.. = generated, -1 = last)", index) from None


def _display_size(ctx) -> tuple[int, int]:
    return tuple(ctx.display_size)


def resize_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, ...) -> ``size`` = (W, H), nearest neighbour at pixel centres, any ratio."""
    w, h = size
    sh, sw = img.shape[:2]
    if (sh, sw) == (h, w):
        return img
    rows = np.minimum(((np.arange(h) + 0.5) * sh / h).astype(np.int64), sh - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * sw / w).astype(np.int64), sw - 1)
    return img[rows][:, cols]


def _linear_image(ctx, t: torch.Tensor) -> np.ndarray:
    """A (1, 3, h, w) linear pass output -> (H, W, 3) uint8 at the display size."""
    dw, dh = _display_size(ctx)
    t = t.detach().float()
    if tuple(t.shape[-2:]) != (dh, dw):  # a fixed-2x pass at another ratio
        t = F.interpolate(t, size=(dh, dw), mode="bilinear", align_corners=False)
    return display_transform(t[0].permute(1, 2, 0).cpu().numpy())


def _grey(img: np.ndarray, dim: float = 0.8) -> np.ndarray:
    """Luma of an 8-bit image as a float (H, W, 1) in [0, 255], dimmed."""
    y = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return (dim * y)[..., None]


def _overlay(base: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """``base`` (float) with ``colour`` over it at ``alpha`` (H, W, 1) -> uint8."""
    out = base * (1.0 - alpha) + alpha * np.asarray(colour, np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (each in [0, 1]) -> RGB float in [0, 1], (..., 3)."""
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def object_id_colours(ids: np.ndarray) -> np.ndarray:
    """(h, w) object ids -> (h, w, 3) uint8: a distinct, stable colour per id (a golden-ratio
    hue walk); id 0 (background) is black."""
    ids = np.asarray(ids).astype(np.int64)
    hue = (ids * 0.61803398875) % 1.0
    rgb = _hsv_to_rgb(hue, np.full(ids.shape, 0.65), np.full(ids.shape, 0.95))
    rgb[ids <= 0] = 0.0
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _flow_colours(dx: np.ndarray, dy: np.ndarray, scale: float) -> np.ndarray:
    mag = np.hypot(dx, dy)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    val = np.clip(mag / scale, 0.0, 1.0)
    rgb = _hsv_to_rgb(hue, np.ones_like(hue), val)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------

def motion_scale_px(motion: torch.Tensor | np.ndarray) -> float:
    """The normalisation :func:`motion_view` uses, for (1, 2, h, w), (2, h, w) or (h, w, 2)
    vectors: ``max(1, 99th percentile of |motion|)``
    render pixels (so a few outliers do not darken the view, and sub-pixel noise stays dark)."""
    m = motion.detach().float().cpu().numpy() if isinstance(motion, torch.Tensor) else np.asarray(motion)
    if m.ndim == 4:  # (1, 2, h, w)
        m = m[0]
    if m.shape[0] != 2 and m.shape[-1] == 2:  # (h, w, 2)
        m = np.moveaxis(m, -1, 0)
    m = m.reshape(2, -1)
    mag = np.hypot(m[0], m[1])
    return max(1.0, float(np.percentile(mag, 99))) if mag.size else 1.0


def motion_view(ctx, index: int = 0) -> np.ndarray:
    """The motion vectors of frame ``index`` of the last dispatch (0: the rendered frame,
    1: the generated one) as an HSV colour wheel, display size.

    Hue = direction of the vector as stored (previous minus current, i.e. where the surface
    *was*), measured clockwise on screen from +x: red = +x (right), yellow-green = +y
    (down), cyan = -x (left), violet = -y (up); a surface moving right therefore shows
    cyan. Value (brightness) = length / ``max(1 px, 99th percentile of the lengths in this
    frame)``, clipped to 1: still pixels are black, the fastest 1 % full brightness.
    See :func:`motion_wheel` for the key."""
    f = _pick(_last(ctx, "motion_view"), index, "motion_view")
    m = f.motion[0].detach().float().cpu().numpy()  # (2, h, w) render pixels
    return resize_nearest(motion_colours(np.moveaxis(m, 0, -1)), _display_size(ctx))


def motion_colours(motion: np.ndarray) -> np.ndarray:
    """(h, w, 2) motion vectors in pixels -> (h, w, 3) uint8, the colour wheel of
    :func:`motion_view` (hue = direction, brightness = length / :func:`motion_scale_px`)."""
    m = np.asarray(motion, dtype=np.float64)
    return _flow_colours(m[..., 0], m[..., 1], motion_scale_px(m))


def motion_wheel(size: int = 64) -> np.ndarray:
    """The key of :func:`motion_view`: (size, size, 3) uint8, a disc whose pixel at offset
    (dx, dy) from the centre has the colour of a motion vector (dx, dy) at the rim's length."""
    c = (np.arange(size) + 0.5) - size / 2
    dx, dy = np.meshgrid(c, c)
    img = _flow_colours(dx, dy, size / 2)
    img[np.hypot(dx, dy) > size / 2] = 40
    return img


def depth_view(ctx, index: int = 0) -> np.ndarray:
    """Linear depth of frame ``index`` of the last dispatch on a log scale, near bright:
    grey = ``1 - (log d - log d_min) / (log d_max - log d_min)`` over this frame's depth range
    (the near plane to the far plane when the depth is constant), display size."""
    f = _pick(_last(ctx, "depth_view"), index, "depth_view")
    return resize_nearest(depth_grey(f.depth[0, 0].detach().float().cpu().numpy(), f.near, f.far),
                          _display_size(ctx))


def depth_grey(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """(h, w) linear depth -> (h, w, 3) uint8 grey, the scale of :func:`depth_view`."""
    ld = np.log(np.maximum(np.asarray(depth, dtype=np.float64), 1e-6))
    lo, hi = float(ld.min()), float(ld.max())
    if hi - lo < 1e-6:
        lo, hi = math.log(max(near, 1e-6)), math.log(max(far, near * 1.001, 1e-5))
    v = np.clip(1.0 - (ld - lo) / (hi - lo), 0.0, 1.0)
    return np.repeat(np.round(v * 255).astype(np.uint8)[..., None], 3, axis=2)


def _generated_index(ctx, frames: list, call: str) -> int:
    if len(frames) < 2:
        raise ContextStateError(f"plugin.debug.{call}: the last dispatch generated no frame "
                                f"(ContextDescription.generated_frames=0?): nothing to show")
    return len(frames) - 1


def hole_valid_mask(ctx) -> torch.Tensor:
    """(1, 1, h, w) 1 where the last generated frame could reuse the rendered frame's colour,
    0 at disocclusions: the pass's own history mask when it keeps one
    (``ctx.debug_outputs()["hole_valid"]``), else recomputed from the two frames' G-buffers
    with the runtime's test (:func:`stss_runtime.ops.warp.hole_mask`)."""
    frames = _last(ctx, "hole_valid_mask")
    k = _generated_index(ctx, frames, "hole_valid_mask")
    cur = frames[k]
    pv = ctx.debug_outputs().get("hole_valid")
    if pv is not None and tuple(pv.shape[-2:]) == tuple(cur.depth.shape[-2:]):
        return pv.detach().float().cpu()
    if k != 1:
        raise ContextStateError("plugin.debug.hole_valid_mask: the pass keeps no hole mask and the last generated "
                                "frame is not the first one after the rendered frame")
    src = frames[0]
    pos = W.view_positions(cur.depth, cur.proj, cur.jitter_px)
    inv = np.linalg.inv(cur.view)
    view_dir = -pos / pos.norm(dim=1, keepdim=True).clamp_min(1e-6)
    offset = cur.motion + torch.tensor([src.jitter_px[0] - cur.jitter_px[0], src.jitter_px[1] - cur.jitter_px[1]],
                                       dtype=cur.motion.dtype, device=cur.motion.device).view(1, 2, 1, 1)
    valid = W.hole_mask(depth=cur.depth, normal_world=W.rotate_vectors(inv, cur.normal), object_id=cur.object_id,
                        world_pos=W.transform_points(inv, pos),
                        view_dir_cos=(view_dir * cur.normal).sum(1, keepdim=True),
                        src_depth=src.depth, src_normal_world=W.rotate_vectors(np.linalg.inv(src.view), src.normal),
                        src_object_id=src.object_id, src_view=src.view, offset=offset)
    return valid.float().cpu()


def hole_mask_view(ctx) -> np.ndarray:
    """The disocclusions of the last generated frame (where its pixels could not be warped
    from the rendered frame: background the moving objects uncovered) in red over the
    generated frame in dimmed grey, display size. ContextStateError when the last dispatch
    generated no frame."""
    frames = _last(ctx, "hole_mask_view")
    k = _generated_index(ctx, frames, "hole_mask_view")
    base = _grey(_linear_image(ctx, ctx.last_outputs[k]), 0.7)
    holes = (hole_valid_mask(ctx)[0, 0].numpy() < 0.5).astype(np.float32)
    alpha = 0.8 * resize_nearest(holes, _display_size(ctx))[..., None]
    return _overlay(base, alpha, HOLE_COLOUR)


def _generated_pair(ctx, call: str):
    frames = _last(ctx, call)
    k = _generated_index(ctx, frames, call)
    return frames[k - 1], frames[k]


def object_motion_view(ctx) -> np.ndarray:
    """The motion pass's decomposition of the last generated frame's motion vectors: the part
    the camera does not explain (objects moving by themselves), as the colour wheel of
    :func:`motion_view` (scaled by its own 99th percentile), display size. Camera-induced
    motion comes from depth and the two cameras (:mod:`stss_runtime.motion.decompose`)."""
    from stss_runtime.motion import decompose

    prev, cur = _generated_pair(ctx, "object_motion_view")
    _, obj = decompose(cur.motion.float().cpu(), cur.to("cpu"), prev.to("cpu"))
    return resize_nearest(motion_colours(np.moveaxis(obj[0].numpy(), 0, -1)), _display_size(ctx))


def credibility_view(ctx) -> np.ndarray:
    """Where the motion pass would not trust the last generated frame's motion vectors
    (tier 0's credibility against the rendered frame before it: disocclusion, world
    position, material flags; no colour test, a generated frame has no colour) in orange
    over the generated frame in grey, opacity 0.8 x (1 - credibility), display size."""
    from stss_runtime.motion import credibility

    prev, cur = _generated_pair(ctx, "credibility_view")
    c = credibility(cur.to("cpu"), replace(prev.to("cpu"), color=None), cur.motion.float().cpu())
    base = _grey(_linear_image(ctx, ctx.last_outputs[-1]), 0.7)
    alpha = 0.8 * resize_nearest(1.0 - c[0, 0].numpy(), _display_size(ctx))[..., None]
    return _overlay(base, alpha, CREDIBILITY_COLOUR)


def reactive_view(ctx, reactive: Any) -> np.ndarray:
    """``reactive`` (the (h, w) [0, 1] mask handed over with the last rendered frame, numpy or
    torch) in yellow over the upscaled frame in grey, opacity 0.8 x the mask, display size."""
    from .resources import to_tensor

    frames = _last(ctx, "reactive_view")
    size = frames[0].size
    r = to_tensor(reactive, "reactive", size, 1, torch.device("cpu"))[0, 0].numpy()
    if r.min() < 0 or r.max() > 1:
        raise InvalidInputError("reactive", "values in [0, 1]", f"[{r.min():.3g}, {r.max():.3g}]")
    base = _grey(_linear_image(ctx, ctx.last_outputs[0]), 0.7)
    return _overlay(base, 0.8 * resize_nearest(r, _display_size(ctx))[..., None], REACTIVE_COLOUR)


def tint(image: np.ndarray, colour=GENERATED_TINT, amount: float = 0.3) -> np.ndarray:
    """``image`` (H, W, 3) uint8 mixed with ``colour`` by ``amount``: mark generated frames
    in a presented stream (e.g. ``tint(display_transform(result.generated[0].color))``)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InvalidInputError("image", "an (H, W, 3) uint8 image", f"{img.dtype} {img.shape}")
    return _overlay(img.astype(np.float32), np.float32(amount), colour)


def distance_tint(distance: int) -> tuple[int, int, int]:
    """The tint (RGB, 0-255) of a generated frame ``distance`` display frames after its
    rendered frame (1 to 3: :data:`DISTANCE_TINTS`)."""
    if isinstance(distance, bool) or not isinstance(distance, (int, np.integer)) \
            or not 1 <= distance <= len(DISTANCE_TINTS):
        raise InvalidInputError("distance", f"a generated frame's distance from its rendered frame, 1 to "
                                f"{len(DISTANCE_TINTS)}", repr(distance))
    return DISTANCE_TINTS[int(distance) - 1]


def generated_tinted(ctx, index: int = -1, colour=None, amount: float = 0.3) -> np.ndarray:
    """Generated frame ``index`` of the last dispatch (-1: the last; 1: the first) tinted by
    its distance from the rendered frame (:func:`distance_tint`: magenta, orange, cyan; or
    ``colour``), so a viewer sees which display frames were extrapolated, and how far. Shows
    the pass output (before ``pre_exposure`` is divided back and before the UI is composited)."""
    frames = _last(ctx, "generated_tinted")
    _generated_index(ctx, frames, "generated_tinted")
    n = len(frames)
    if not 1 <= (index if index >= 0 else n + index) < n:
        raise InvalidInputError("generated_tinted(index)", f"a generated frame: 1..{len(frames) - 1} or "
                                f"-{len(frames) - 1}..-1", index)
    k = index if index >= 0 else n + index
    return tint(_linear_image(ctx, ctx.last_outputs[index]), colour if colour is not None else distance_tint(k), amount)


def output_view(ctx) -> np.ndarray:
    """The last rendered frame's upscaled pass output, with :func:`reset_indicator` when the
    history was dropped before it."""
    frames = _last(ctx, "output_view")
    return reset_indicator(_linear_image(ctx, ctx.last_outputs[0]), bool(frames[0].reset))


def reset_indicator(image: np.ndarray, reset: bool, width: int | None = None, colour=RESET_COLOUR) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 with a red border when ``reset`` (the frame after a
    reset: no history), unchanged otherwise. ``width``: border pixels (default ~2.5 % of
    the smaller side, at least 2)."""
    img = np.array(image, copy=True)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InvalidInputError("image", "an (H, W, 3) uint8 image", f"{img.dtype} {img.shape}")
    if reset:
        b = width if width is not None else max(2, round(min(img.shape[:2]) / 40))
        img[:b], img[-b:], img[:, :b], img[:, -b:] = colour, colour, colour, colour
    return img


def debug_views(ctx, reactive: Any = None) -> dict[str, np.ndarray]:
    """Every view of the last dispatch, by name: "output" (with the reset indicator),
    "motion", "depth", and when a frame was generated "holes" and "generated"; "reactive"
    when a ``reactive`` mask is given."""
    frames = _last(ctx, "debug_views")
    views = {"output": output_view(ctx), "motion": motion_view(ctx), "depth": depth_view(ctx)}
    if len(frames) > 1:
        views["holes"] = hole_mask_view(ctx)
        views["generated"] = generated_tinted(ctx)
        views["object motion"] = object_motion_view(ctx)
        views["credibility"] = credibility_view(ctx)
    if reactive is not None:
        views["reactive"] = reactive_view(ctx, reactive)
    return views


# ---------------------------------------------------------------------------------------
# Contact sheet
# ---------------------------------------------------------------------------------------

_LABELS = {"output": "upscaled frame (red border: reset)", "motion": "motion vectors (rendered frame)",
           "depth": "depth (log, near bright)", "holes": "holes of the generated frame (red)",
           "generated": "generated frame (tinted)", "reactive": "reactive mask (yellow)",
           "motion key": "motion key (hue: direction, brightness: length)",
           "first frame": "first frame (after a reset: red border)",
           "object motion": "object motion (motion minus camera motion)",
           "credibility": "motion not credible (orange)"}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def save_debug_sheet(ctx, path, views: dict[str, np.ndarray] | None = None, columns: int = 3,
                     tile_width: int = 256, title: str | None = None, reactive: Any = None,
                     labels: dict[str, str] | None = None) -> Path:
    """Write a labelled PNG contact sheet of :func:`debug_views` (plus ``views``, which
    add to or replace them, and the motion key) to ``path``; returns the path. ``labels``:
    captions by view name (default: a description of each view).

    Tiles are upscaled nearest by an integer factor to about ``tile_width`` pixels wide."""
    from PIL import Image, ImageDraw

    all_views = dict(debug_views(ctx, reactive))
    all_views.update(views or {})
    dw, dh = _display_size(ctx)
    factor = max(1, round(tile_width / dw))
    tw, th = dw * factor, dh * factor
    key = min(th, tw) - 8
    all_views["motion key"] = motion_wheel(max(16, key))
    label_h, pad = 20, 8
    font, title_font = _font(13), _font(15)
    names = list(all_views)
    rows = -(-len(names) // columns)
    title_h = 26
    sheet_w = columns * (tw + pad) + pad
    sheet_h = title_h + rows * (th + label_h + pad) + pad
    sheet = Image.new("RGB", (sheet_w, sheet_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    if title is None:
        f = ctx.last_frames[0]
        title = (f"{ctx.desc.pass_name}: display frame {f.index}, render {f.size[0]}x{f.size[1]} -> "
                 f"display {dw}x{dh}, {len(ctx.last_frames) - 1} generated")
    draw.text((pad, 5), title, fill=(235, 235, 235), font=title_font)
    for i, name in enumerate(names):
        r, c = divmod(i, columns)
        x = pad + c * (tw + pad)
        y = title_h + r * (th + label_h + pad)
        label = (labels or {}).get(name, _LABELS.get(name, name))
        draw.text((x, y + 3), label, fill=(220, 220, 220), font=font)
        img = np.asarray(all_views[name])
        tile = Image.fromarray(img)
        if name == "motion key":
            sheet.paste(tile, (x + (tw - tile.width) // 2, y + label_h + (th - tile.height) // 2))
        else:
            s = max(1, min(tw // tile.width, th // tile.height))
            sheet.paste(tile.resize((tile.width * s, tile.height * s), Image.NEAREST), (x, y + label_h))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plugin.debug",
                                description="Run the self-test scenario (plugin.selftest.run_scenario) and save "
                                            "a contact sheet of the debug views of its last dispatch.")
    p.add_argument("--pass", dest="pass_name", default="bilinear", help="pass (default: bilinear)")
    p.add_argument("--backend", default="torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", default="64x40", help="render size WxH (default 64x40; display is twice it)")
    p.add_argument("--frames", type=int, default=3, help="rendered frames (default 3)")
    p.add_argument("--out", default="docs/images/plugin_debug_views.png", help="PNG to write")
    a = p.parse_args(argv)
    from .selftest import run_scenario

    w, h = (int(v) for v in a.size.lower().split("x"))
    sc = run_scenario(a.pass_name, a.backend, a.device, (w, h), frames=a.frames)
    try:
        first = sc.records[0]["result"]
        extra = {"first frame": reset_indicator(display_transform(np.asarray(first.output)), first.reset)}
        ids = sc.scene.gbuffers(sc.records[-1]["t"], sc.records[-1]["jitter"])["object_id"]
        reactive = np.where(ids == 2, 0.8, 0.0).astype(np.float32)  # an example mask: the square
        path = save_debug_sheet(sc.ctx, a.out, views=extra, reactive=reactive,
                                labels={"reactive": "reactive mask (yellow; example: the square)"})
    finally:
        sc.ctx.destroy()
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
