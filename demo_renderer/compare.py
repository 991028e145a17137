"""The demo's headless comparison: the same engine frames through several plugin passes,
against native rendering and the ground truth, as a PNG contact sheet and a text table.

The demo renderer plays the engine exactly as README.md's plugin example does: display
frames run at ``g + 1`` times the render rate (``g`` generated frames per rendered frame, 1
by default); display frame ``(g + 1) n`` is rendered and shaded at render resolution
(jittered, mip-biased), the ``g`` after it only have their G-buffers drawn, and they go to
the plugin in one :class:`plugin.FrameDescription` (rendered frame ``n``, with ``g``
:class:`plugin.GeneratedFrameDescription`). Every pass gets identical descriptions (the
frames are rendered once and cached) through its own :class:`plugin.Context`. With
``g > 1`` the "generated" row is the farthest generated frame (``g / (g + 1)`` of a frame
after the rendered one) and each distance gets its own PSNR.

    from demo_renderer.compare import compare_passes, save_sheet, format_table
    cmp = compare_passes(gl_ctx, "gallery")
    save_sheet(cmp, "out/compare.png")
    print(format_table(cmp))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

import plugin
from plugin.helpers import vertical_fov_from_proj
from stss_runtime.ops.encoding import display_transform
from stss_runtime.ops.metrics import psnr_y, rgb_to_y

from .renderer import Renderer
from .scene import Scene

#: Columns that are not plugin passes.
NATIVE = "native"
GROUND_TRUTH = "ground truth"
#: G-buffers handed to the plugin besides colour, depth and motion.
GBUFFERS = ("albedo", "normal", "roughness", "metallic", "object_id")
#: Column titles on the sheet and in the table.
TITLES = {NATIVE: "native", "bilinear": "bilinear", "bicubic": "bicubic", "temporal": "temporal",
          "warp_fill": "warp + fill", "stss": "STSS", "stss_taa": "STSS + accum.",
          "stss_recurrent": "STSS + learned accum.", "two_stage": "two-stage",
          GROUND_TRUTH: "ground truth"}
#: Frame kinds (sheet rows, table columns).
RENDERED, GENERATED = "rendered", "generated"


def title(method: str) -> str:
    return TITLES.get(method, method)


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------

@dataclass
class EngineFrame:
    """One display frame as the engine rendered it (render resolution, numpy, row 0 top)."""

    index: int  # display frame index
    t: float  # seconds
    shaded: bool  # one display frame in g + 1 is rendered (shaded); the others have G-buffers only
    jitter_px: tuple[float, float]
    arrays: dict[str, np.ndarray]  # color (shaded frames only), depth, motion and GBUFFERS
    view: np.ndarray
    proj: np.ndarray
    prev_view: np.ndarray
    prev_proj: np.ndarray
    render_ms: float  # wall time of render + read-back


class EngineFrames:
    """The demo renderer playing the engine, with every frame cached.

    Display frame ``i`` is the instant ``start_time + i / ((g + 1) fps)``: rendered frames
    run at ``fps`` and ``g`` (``generated_frames``, 1 to 3) generated frames lie between two
    of them. Its motion vectors point to display frame ``i - 1``, its jitter is
    ``plugin.jitter_offset(i, phases)`` and its textures are sampled with ``plugin.mip_bias``.
    Rendered frame ``n`` (:meth:`description`) is display frame ``(g + 1) n``, shaded,
    carrying the next ``g`` display frames' G-buffers (``shade=False``) as its generated frames.
    """

    def __init__(self, renderer: Renderer, scene: Scene, render_size: tuple[int, int],
                 display_size: tuple[int, int], fps: float, start_time: float = 0.0, generated_frames: int = 1):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if generated_frames not in (1, 2, 3):
            raise ValueError(f"generated_frames must be 1, 2 or 3, got {generated_frames!r}")
        self.generated_frames = int(generated_frames)
        self.renderer = renderer
        self.scene = scene
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.display_size = (int(display_size[0]), int(display_size[1]))
        self.fps = float(fps)
        self.start_time = float(start_time)
        self.phases = plugin.jitter_phase_count(self.render_size[0], self.display_size[0])
        self.bias = plugin.mip_bias(self.render_size[0], self.display_size[0])
        self._frames: dict[int, EngineFrame] = {}
        self._native: dict[int, np.ndarray] = {}
        self._gt: dict[tuple[int, int], np.ndarray] = {}
        self.native_ms: dict[int, float] = {}
        self.gt_ms: dict[tuple[int, int], float] = {}

    @property
    def display_dt(self) -> float:
        """Seconds between two display frames (1 / (g + 1) of a rendered frame time)."""
        return 1.0 / ((self.generated_frames + 1) * self.fps)

    def time(self, index: int) -> float:
        """The instant of display frame ``index``, seconds."""
        return self.start_time + index * self.display_dt

    def frame(self, index: int) -> EngineFrame:
        """Display frame ``index`` at render resolution (rendered once, then cached)."""
        f = self._frames.get(index)
        if f is None:
            t0 = time.perf_counter()
            t = self.time(index)
            shaded = index % (self.generated_frames + 1) == 0
            jitter = plugin.jitter_offset(index, self.phases)
            target, cam = self.renderer.render(t, t - self.display_dt, self.render_size, jitter, self.bias,
                                               shade=shaded)
            a = self.renderer.read_frame(target)
            arrays = {k: a[k] for k in ("depth", "motion") + GBUFFERS}
            if shaded:
                arrays["color"] = a["color"]
            f = self._frames[index] = EngineFrame(
                index=index, t=t, shaded=shaded, jitter_px=jitter, arrays=arrays, view=cam.view, proj=cam.proj,
                prev_view=cam.prev_view, prev_proj=cam.prev_proj, render_ms=(time.perf_counter() - t0) * 1e3)
        return f

    def description(self, n: int) -> plugin.FrameDescription:
        """Rendered frame ``n`` (display frame ``(g + 1) n``) with the ``g`` display frames
        after it to generate."""
        step = self.generated_frames + 1
        r = self.frame(step * n)
        cam = self.scene.camera
        between = [plugin.GeneratedFrameDescription(
            depth=g.arrays["depth"], motion=g.arrays["motion"], jitter_px=g.jitter_px, view=g.view, proj=g.proj,
            **{k: g.arrays[k] for k in GBUFFERS}) for g in (self.frame(step * n + k) for k in range(1, step))]
        return plugin.FrameDescription(
            frame_index=n, color=r.arrays["color"], depth=r.arrays["depth"], motion=r.arrays["motion"],
            jitter_px=r.jitter_px, frame_time_ms=1000.0 / self.fps, near=cam.near, far=cam.far,
            fov_y_rad=vertical_fov_from_proj(r.proj), view=r.view, proj=r.proj,
            prev_view=r.prev_view, prev_proj=r.prev_proj, generated=between,
            **{k: r.arrays[k] for k in GBUFFERS})

    def native(self, index: int) -> np.ndarray:
        """Display frame ``index`` shaded at display resolution, no jitter, no mip bias:
        (H, W, 3) float32 linear colour."""
        img = self._native.get(index)
        if img is None:
            t0 = time.perf_counter()
            t = self.time(index)
            target, _ = self.renderer.render(t, t - self.display_dt, self.display_size)
            img = self._native[index] = self.renderer.read_frame(target)["color"].astype(np.float32)
            self.native_ms[index] = (time.perf_counter() - t0) * 1e3
        return img

    def ground_truth(self, index: int, samples: int = 16) -> np.ndarray:
        """Display frame ``index``'s ground truth (``samples`` jittered renders averaged at
        display resolution): (H, W, 3) float32 linear colour."""
        key = (index, int(samples))
        img = self._gt.get(key)
        if img is None:
            t0 = time.perf_counter()
            tex = self.renderer.render_ground_truth(self.time(index), self.display_size, samples)
            img = self._gt[key] = self.renderer.read_color(tex)
            self.gt_ms[key] = (time.perf_counter() - t0) * 1e3
        return img


# ---------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """What :func:`compare_passes` found. Images are (H, W, 3) float32 linear colour at
    display resolution, keyed by method (a plugin pass name, ``"native"`` or
    ``"ground truth"``), for the last rendered and the last generated display frame."""

    scene: str
    methods: list[str]  # column order; "ground truth" last
    render_size: tuple[int, int]
    display_size: tuple[int, int]
    fps: float
    frames: int  # rendered frames dispatched (display frames: g + 1 times as many)
    gt_samples: int
    times: dict[str, float]  # {"rendered": t, "generated": t + g/((g+1) fps)} seconds
    display_index: dict[str, int]  # {"rendered": (g+1)(frames-1), "generated": (g+1)(frames-1) + g}
    images: dict[str, dict[str, np.ndarray]]  # {"rendered" | "generated": {method: image}}
    # {method: {"psnr_rendered", "psnr_generated", "ms_per_dispatch"}, with g > 1 also "psnr_generated1" ..
    # "psnr_generated<g>" per distance ("psnr_generated": the farthest)}
    metrics: dict[str, dict[str, float]]
    timings_ms: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # pass -> per-dispatch timings_ms
    warnings: dict[str, list[str]] = field(default_factory=dict)  # pass -> the plugin's warnings
    psnr_frames: int = 1  # PSNR averaged over this many last frames of each kind
    timing_warmup: int = 0  # first dispatches left out of ms_per_dispatch
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage
    object_ids: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> (H, W) ids, display size
    generated_frames: int = 1  # generated frames per rendered frame

    @property
    def passes(self) -> list[str]:
        """The methods that ran through :class:`plugin.Context`."""
        return [m for m in self.methods if m not in (NATIVE, GROUND_TRUTH)]

    def image(self, kind: str, method: str) -> np.ndarray:
        return self.images[kind][method]

    def psnr(self, kind: str, method: str) -> float:
        """Y-PSNR (dB) of ``method`` on ``kind`` frames; NaN for the ground truth."""
        return self.metrics.get(method, {}).get(f"psnr_{kind}", math.nan)


def _psnr(gt: np.ndarray, img: np.ndarray) -> float:
    """Y-PSNR of linear images through THE display transform (stss_runtime.ops.metrics)."""
    return psnr_y(display_transform(gt), display_transform(img))


def _median(values: Iterable[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.median(v)) if v else math.nan


def _progress(iterable, progress: bool, desc: str, total: int | None = None):
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit="frame", dynamic_ncols=True, leave=False)


def compare_passes(ctx_gl, scene: Scene | str, passes: Sequence[str] = ("native", "bilinear", "temporal", "stss"),
                   frames: int = 8, render_size: tuple[int, int] = (480, 270),
                   display_size: tuple[int, int] = (960, 540), fps: float = 30.0, gt_samples: int = 16,
                   progress: bool = True, start_time: float = 0.0, psnr_frames: int = 1,
                   timing_warmup: int = 3, context_options: dict[str, Any] | None = None,
                   generated_frames: int = 1) -> Comparison:
    """Run ``frames`` rendered frames (each with ``generated_frames`` generated frames,
    1 to 3) of ``scene`` through
    one :class:`plugin.Context` per pass of ``passes`` and compare them with ``"native"``
    (the renderer at display resolution, no jitter, when listed) and the ground truth
    (``gt_samples`` samples per pixel, always added as the last column).

    Every pass is fed the identical, cached frame descriptions. PSNR is Y-PSNR of the
    display-transformed images against the ground truth, averaged over the last
    ``psnr_frames`` rendered and generated frames; ``ms_per_dispatch`` is the median
    ``timings_ms["total"]`` of a pass's dispatches (one rendered frame and its generated ones)
    after the first ``timing_warmup`` (the history filling up, allocations; all of them
    when there are no more).
    ``context_options`` go to every :class:`plugin.ContextDescription` (backend, precision,
    device...). ``scene`` is a :class:`Scene` or a scene name / file.
    """
    if isinstance(scene, (str, Path)):
        from .scenes import load_scene

        scene = load_scene(scene)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not 1 <= psnr_frames <= frames:
        raise ValueError(f"psnr_frames must be in 1..frames ({frames}), got {psnr_frames}")
    methods = list(dict.fromkeys(p for p in passes if p != GROUND_TRUTH)) + [GROUND_TRUTH]
    plugin_passes = [m for m in methods if m not in (NATIVE, GROUND_TRUTH)]
    for name in plugin_passes:  # unknown names fail now, before any rendering
        plugin.required_inputs(name)
    display_size = (int(display_size[0]), int(display_size[1]))
    render_size = (int(render_size[0]), int(render_size[1]))

    seconds: dict[str, float] = {}
    t_start = time.perf_counter()
    renderer = Renderer(ctx_gl, scene)
    engine = EngineFrames(renderer, scene, render_size, display_size, fps, start_time, generated_frames)
    step = generated_frames + 1
    # the rendered frame and the farthest generated one shown; every distance scored
    last = {RENDERED: step * (frames - 1), GENERATED: step * (frames - 1) + generated_frames}
    distances = {f"{GENERATED}{d}": step * (frames - 1) + d for d in range(1, step)} if generated_frames > 1 else {}
    # the display frames the PSNR looks at, newest last
    scored = {kind: [i - step * k for k in range(psnr_frames)][::-1] for kind, i in {**last, **distances}.items()}
    reference = sorted(set().union(*scored.values()))

    t0 = time.perf_counter()
    for i in _progress(range(step * frames), progress, f"render {scene.name}"):
        engine.frame(i)
    seconds["render"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in _progress(reference, progress, f"ground truth ({gt_samples} spp)"):
        engine.ground_truth(i, gt_samples)
        if NATIVE in methods:
            engine.native(i)
    seconds["ground truth + native"] = time.perf_counter() - t0
    descriptions = [engine.description(n) for n in range(frames)]

    outputs: dict[str, dict[int, np.ndarray]] = {}
    timings: dict[str, list[dict[str, float]]] = {}
    warnings: dict[str, list[str]] = {}
    for name in plugin_passes:
        desc = plugin.ContextDescription(max_render_size=render_size, display_size=display_size, pass_name=name,
                                         **{"generated_frames": generated_frames, **(context_options or {})})
        outputs[name], timings[name], warnings[name] = {}, [], []
        t0 = time.perf_counter()
        with plugin.Context(desc) as ctx:
            for n in _progress(range(frames), progress, f"plugin {name}"):
                result = ctx.dispatch(descriptions[n])
                timings[name].append(dict(result.timings_ms))
                warnings[name].extend(result.warnings)
                shown = [result.output] + [g.color for g in result.generated]
                for index, img in zip(range(step * n, step * (n + 1)), shown):
                    if index in reference:
                        outputs[name][index] = np.asarray(img, dtype=np.float32)
        seconds[name] = time.perf_counter() - t0

    def image(method: str, index: int) -> np.ndarray:
        if method == GROUND_TRUTH:
            return engine.ground_truth(index, gt_samples)
        if method == NATIVE:
            return engine.native(index)
        return outputs[method][index]

    images = {kind: {m: image(m, last[kind]) for m in methods} for kind in (RENDERED, GENERATED)}
    metrics: dict[str, dict[str, float]] = {}
    for m in methods:
        if m == GROUND_TRUTH:
            continue
        row = {f"psnr_{kind}": float(np.mean([_psnr(engine.ground_truth(i, gt_samples), image(m, i))
                                              for i in frames_of]))
               for kind, frames_of in scored.items()}
        if m in timings:
            steady = timings[m][timing_warmup:] or timings[m]
            row["ms_per_dispatch"] = _median(t["total"] for t in steady)
        else:
            row["ms_per_dispatch"] = math.nan
        metrics[m] = row
    seconds["total"] = time.perf_counter() - t_start
    rows = np.arange(display_size[1]) * render_size[1] // display_size[1]
    cols = np.arange(display_size[0]) * render_size[0] // display_size[0]
    object_ids = {k: engine.frame(v).arrays["object_id"][rows][:, cols] for k, v in last.items()}
    return Comparison(scene=scene.name, methods=methods, render_size=render_size, display_size=display_size,
                      fps=float(fps), frames=frames, gt_samples=int(gt_samples),
                      times={k: engine.time(v) for k, v in last.items()}, display_index=last, images=images,
                      metrics=metrics, timings_ms=timings, warnings=warnings, psnr_frames=psnr_frames,
                      timing_warmup=min(timing_warmup, max(frames - 1, 0)), seconds=seconds,
                      object_ids=object_ids, generated_frames=generated_frames)


# ---------------------------------------------------------------------------------------
# Crops: where the ground truth has detail
# ---------------------------------------------------------------------------------------

def gradient_energy(image: np.ndarray) -> np.ndarray:
    """Per-pixel squared gradient (H, W) of the display-referred luma of a linear image."""
    y = rgb_to_y(display_transform(image))
    e = np.zeros_like(y)
    dx = np.diff(y, axis=1)
    dy = np.diff(y, axis=0)
    e[:, :-1] += dx * dx
    e[:-1, :] += dy * dy
    return e


def window_energies(images: np.ndarray | Sequence[np.ndarray], window: tuple[int, int],
                    stride: tuple[int, int] | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Mean gradient energy (summed over ``images``) of every ``window`` (w, h) on a grid
    with ``stride`` (default: half the window): (scores, top-left (x, y) per score)."""
    imgs = [images] if isinstance(images, np.ndarray) else list(images)
    e = sum(gradient_energy(im) for im in imgs)
    h, w = e.shape
    ww, wh = min(int(window[0]), w), min(int(window[1]), h)
    sx, sy = stride or (max(1, ww // 2), max(1, wh // 2))
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = e.cumsum(0).cumsum(1)
    xs = sorted(set(list(range(0, w - ww + 1, sx)) + [w - ww]))
    ys = sorted(set(list(range(0, h - wh + 1, sy)) + [h - wh]))
    scores, corners = [], []
    for y in ys:
        for x in xs:
            s = integral[y + wh, x + ww] - integral[y, x + ww] - integral[y + wh, x] + integral[y, x]
            scores.append(s / (ww * wh))
            corners.append((x, y))
    return np.asarray(scores), corners


def detail_windows(images: np.ndarray | Sequence[np.ndarray], window: tuple[int, int], count: int,
                   labels: np.ndarray | None = None) -> list[tuple[int, int, int, int]]:
    """The ``count`` non-overlapping ``window``-sized boxes (x, y, w, h) with the most
    gradient energy in ``images`` (the ground truth), best first.

    With ``labels`` ((H, W) integers, e.g. object ids), each box is first looked for among
    windows whose most common label no chosen box has yet (so two crops do not both land on
    one large textured surface); when there are none left, the best remaining window is taken.
    """
    scores, corners = window_energies(images, window)
    ww, wh = window
    order = np.argsort(-scores, kind="stable")

    def major(x: int, y: int) -> int:
        ids = np.asarray(labels[y:y + wh, x:x + ww]).ravel()
        values, counts = np.unique(ids, return_counts=True)
        return int(values[np.argmax(counts)])

    chosen: list[tuple[int, int, int, int]] = []
    used: set[int] = set()
    while len(chosen) < count:
        pick = fallback = None
        for k in order:
            x, y = corners[k]
            if not all(x + ww <= cx or cx + cw <= x or y + wh <= cy or cy + ch <= y for cx, cy, cw, ch in chosen):
                continue
            if fallback is None:
                fallback = (x, y)
            if labels is None or major(x, y) not in used:
                pick = (x, y)
                break
        pick = pick or fallback
        if pick is None:
            break
        chosen.append((pick[0], pick[1], ww, wh))
        if labels is not None:
            used.add(major(*pick))
    return chosen


# ---------------------------------------------------------------------------------------
# The sheet
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SheetLayout:
    """Geometry of :func:`save_sheet`'s PNG, pixels."""

    columns: int
    crops: int
    tile: tuple[int, int]  # full frames, downscaled to this (w, h)
    zoom: int  # crops are enlarged this many times, nearest neighbour
    crop: tuple[int, int]  # crop window (w, h) in display pixels
    pad: int = 8
    title_h: int = 30
    header_h: int = 26  # the method names over the columns
    band_h: int = 24  # a row's label
    caption_h: int = 20  # a tile's label

    @property
    def crop_tile(self) -> tuple[int, int]:
        return self.crop[0] * self.zoom, self.crop[1] * self.zoom

    @property
    def rows(self) -> list[tuple[str, int]]:
        """(kind, tile height) per row: two full-frame rows, then a rendered and a
        generated row per crop."""
        full = [("full", self.tile[1])] * 2
        return full + [("crop", self.crop_tile[1])] * (2 * self.crops)

    @property
    def width(self) -> int:
        return self.pad + self.columns * (self.tile[0] + self.pad)

    @property
    def height(self) -> int:
        body = sum(self.band_h + self.caption_h + h + self.pad for _, h in self.rows)
        return self.title_h + self.header_h + body + self.pad

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def sheet_layout(display_size: tuple[int, int], columns: int, crops: int = 2, max_tile_width: int = 320,
                 zoom: int = 4) -> SheetLayout:
    """Full frames downscaled to at most ``max_tile_width`` wide (never enlarged); crops of
    ``tile / zoom`` display pixels enlarged ``zoom`` times (3 when 4 would leave a crop under
    32 pixels wide)."""
    dw, dh = int(display_size[0]), int(display_size[1])
    tw = min(dw, int(max_tile_width))
    th = max(1, round(dh * tw / dw))
    if zoom == 4 and tw // 4 < 32:
        zoom = 3
    zoom = max(1, int(zoom))
    crop = (max(1, min(dw, tw // zoom)), max(1, min(dh, th // zoom)))
    return SheetLayout(columns=int(columns), crops=int(crops), tile=(tw, th), zoom=zoom, crop=crop)


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    for name in (("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"),
                 ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf" if bold
                  else "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _fmt_db(v: float) -> str:
    return "-" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.2f} dB")


def save_sheet(comparison: Comparison, path: str | Path, crops: int = 2, max_tile_width: int = 320,
               zoom: int = 4) -> Path:
    """Write the comparison as a PNG contact sheet; returns the path.

    One column per method (ground truth last); rows: the rendered frame ("rendered (t)"),
    the generated frame ("generated (t + 1/2)") -- for native and ground truth their own
    render at that instant -- then, for each of ``crops`` regions where the ground truth
    has the most detail, a nearest-neighbour ``zoom``x crop of both frames. Every tile's
    label gives that method's Y-PSNR for that frame (and, on crops, over the crop)."""
    from PIL import Image, ImageDraw

    c = comparison
    lay = sheet_layout(c.display_size, len(c.methods), crops, max_tile_width, zoom)
    kinds = (RENDERED, GENERATED)
    gt = {k: c.images[k][GROUND_TRUTH] for k in kinds}
    boxes = detail_windows([gt[k] for k in kinds], lay.crop, crops, c.object_ids.get(RENDERED)) if crops > 0 else []
    u8 = {k: {m: display_transform(c.images[k][m]) for m in c.methods} for k in kinds}

    sheet = Image.new("RGB", lay.size, (22, 22, 24))
    draw = ImageDraw.Draw(sheet)
    f_title, f_head, f_band, f_cap = _font(17, True), _font(16, True), _font(14, True), _font(13)
    fg, dim, accent = (238, 238, 238), (190, 190, 196), (255, 200, 60)
    rw, rh = c.render_size
    dw, dh = c.display_size
    g = c.generated_frames
    dt_ms = 1000.0 * g / ((g + 1) * c.fps)
    draw.text((lay.pad, 6), f"{c.scene}: render {rw}x{rh} -> display {dw}x{dh}, {c.fps:g} rendered fps + {g} "
              f"generated between ({g + 1}x), rendered frame {c.frames - 1} of {c.frames}; Y-PSNR vs "
              f"{c.gt_samples}-sample ground truth", fill=fg, font=f_title)
    y = lay.title_h
    xs = [lay.pad + j * (lay.tile[0] + lay.pad) for j in range(len(c.methods))]
    for x, m in zip(xs, c.methods):
        sub = {NATIVE: f" {dw}x{dh}", GROUND_TRUTH: f" {c.gt_samples} spp"}.get(m, "")
        draw.text((x, y + 3), title(m), fill=fg, font=f_head)
        if sub:
            tw = draw.textlength(title(m), font=f_head)
            draw.text((x + tw + 4, y + 6), sub.strip(), fill=dim, font=f_cap)
    y += lay.header_h

    def band(text: str):
        nonlocal y
        draw.rectangle((lay.pad, y + 2, lay.width - lay.pad, y + lay.band_h - 2), fill=(48, 48, 54))
        draw.text((lay.pad + 6, y + 4), text, fill=fg, font=f_band)
        y += lay.band_h

    labels = {RENDERED: "rendered (t)", GENERATED: f"generated (t + {g}/{g + 1})"}
    for k in kinds:
        band(f"{labels[k]}  -  display frame {c.display_index[k]}, t = {c.times[k]:.4f} s"
             + (f" (+{dt_ms:.1f} ms, extrapolated from G-buffers only)" if k == GENERATED else ""))
        for x, m in zip(xs, c.methods):
            cap = "reference" if m == GROUND_TRUTH else _fmt_db(c.psnr(k, m))
            if k == GENERATED and g > 1 and m != GROUND_TRUTH:  # each distance's PSNR under the farthest's
                cap = " / ".join(_fmt_db(c.psnr(f"{GENERATED}{d}", m)).replace(" dB", "") for d in range(1, g + 1))
                cap += " dB (1.." + str(g) + ")"
            draw.text((x, y + 2), f"{title(m)}: {cap}", fill=dim if m == GROUND_TRUTH else fg, font=f_cap)
            tile = Image.fromarray(u8[k][m])
            if tile.size != lay.tile:
                tile = tile.resize(lay.tile, Image.LANCZOS)
            sheet.paste(tile, (x, y + lay.caption_h))
            if m == GROUND_TRUTH:  # where the crops come from
                s = lay.tile[0] / dw
                for b, (bx, by, bw, bh) in enumerate(boxes):
                    r = (x + bx * s, y + lay.caption_h + by * s, x + (bx + bw) * s, y + lay.caption_h + (by + bh) * s)
                    draw.rectangle(r, outline=accent, width=2)
                    draw.text((r[0] + 3, r[1] + 1), str(b + 1), fill=accent, font=f_band)
        y += lay.caption_h + lay.tile[1] + lay.pad

    for b, (bx, by, bw, bh) in enumerate(boxes):
        for k in kinds:
            band(f"crop {b + 1} ({lay.zoom}x nearest): {labels[k]}, display pixels x {bx}-{bx + bw}, "
                 f"y {by}-{by + bh}")
            ref = u8[k][GROUND_TRUTH][by:by + bh, bx:bx + bw]
            for x, m in zip(xs, c.methods):
                part = u8[k][m][by:by + bh, bx:bx + bw]
                if m == GROUND_TRUTH:
                    cap = "reference"
                else:
                    cap = f"{_fmt_db(c.psnr(k, m))} (crop {_fmt_db(psnr_y(ref, part)).replace(' dB', '')})"
                draw.text((x, y + 2), f"{title(m)}: {cap}", fill=dim if m == GROUND_TRUTH else fg, font=f_cap)
                tile = Image.fromarray(np.ascontiguousarray(part)).resize(lay.crop_tile, Image.NEAREST)
                sheet.paste(tile, (x, y + lay.caption_h))
            y += lay.caption_h + lay.crop_tile[1] + lay.pad

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


def format_table(comparison: Comparison) -> str:
    """Method, Y-PSNR of the rendered and of the generated frame (with more than one per
    rendered frame: of each distance), median ms per dispatch."""
    c = comparison
    rows = [m for m in c.methods if m != GROUND_TRUTH]
    name_w = max(len("method"), *(len(title(m)) for m in rows))
    g = c.generated_frames
    gen = [("psnr_generated", "PSNR generated")] if g == 1 else [(f"psnr_generated{d}", f"PSNR gen. {d}/{g + 1}")
                                                                 for d in range(1, g + 1)]
    head = f"{'method':<{name_w}}  {'PSNR rendered':>13}  " + "".join(f"{h:>14}  " for _, h in gen) \
        + f"{'ms / dispatch':>13}"
    lines = [head, "-" * len(head)]
    for m in rows:
        met = c.metrics[m]
        ms = met.get("ms_per_dispatch", math.nan)
        lines.append(f"{title(m):<{name_w}}  {_fmt_db(met['psnr_rendered']):>13}  "
                     + "".join(f"{_fmt_db(met[k]):>14}  " for k, _ in gen)
                     + f"{('-' if math.isnan(ms) else f'{ms:.1f}'):>13}")
    which = "the last frame" if c.psnr_frames == 1 else f"mean of the last {c.psnr_frames} frames"
    timed = c.frames - c.timing_warmup
    lines.append(f"{c.scene}, {c.render_size[0]}x{c.render_size[1]} -> {c.display_size[0]}x{c.display_size[1]}: "
                 f"Y-PSNR against the {c.gt_samples}-sample ground truth ({which} of each kind);")
    lines.append(f"ms: median plugin dispatch (one rendered + {g} generated frame{'s' if g > 1 else ''}) of the "
                 f"last {timed} of {c.frames}")
    return "\n".join(lines)
