"""What the demo shows each display frame, produced the way an engine would produce it:
the renderer draws G-buffers (and shading on rendered frames) at the render size, and the
product runs through the plugin API (:class:`plugin.Context`), never a private shortcut.

Modes (:data:`MODES`): ``native`` (every display frame shaded at full resolution), upscalers
(one display frame per rendered frame) and frame generators (a rendered frame, then 1 to 3
extrapolated from their G-buffers alone: 2x to 4x the rendered frame rate, the frame
multiplier of :data:`MULTIPLIERS`; "auto" lets the plugin choose per frame from the render
time so that the presented rate tracks a target).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import moderngl
import numpy as np
import torch

import plugin
from plugin.helpers import NETWORK_PASSES
from stss_runtime.ops.encoding import display_transform
from stss_runtime.passes import PASSES

from .hardware import RuntimeChoice
from .renderer import Renderer
from .scene import Scene
from .shaderlib import ShaderLibrary
from .views import GBUFFER_VIEWS, check_view, gbuffer_view

#: Demo mode -> (plugin pass, generated frames per rendered frame); None: native rendering.
MODES: dict[str, tuple[str, int] | None] = {
    "native": None,
    "bilinear": ("bilinear", 0),
    "bicubic": ("bicubic", 0),
    "temporal": ("temporal", 0),
    "stss_sr": ("stss", 0),  # STSS supersampling only
    "stss": ("stss", 1),  # STSS supersampling + extrapolation: 2x frames
    "stss_taa": ("stss_taa", 1),  # the same, outputs accumulated at display resolution
    "stss_recurrent": ("stss_recurrent", 1),  # STSS predicting a display-resolution accumulation's parameters
    "two_stage": ("two_stage", 1),
    "warp_fill": ("warp_fill", 1),
    "stss_flow": ("stss_flow", 1),  # STSS with motion vectors estimated by the motion pass
    "vfi": ("vfi", 1),  # frame interpolation: one frame of latency
}
def mode_pass(mode: str) -> str | None:
    """The plugin pass demo mode ``mode`` runs (None: native rendering)."""
    spec = MODES[mode]
    return None if spec is None else spec[0]


MODE_LABELS = {"native": "native (full resolution)", "bilinear": "bilinear upscale", "bicubic": "bicubic upscale",
               "temporal": "temporal upscaler (FSR 2-like)", "stss_sr": "STSS supersampling only",
               "stss": "STSS supersampling + extrapolation (2x frames)",
               "stss_taa": "STSS + display-resolution accumulation (2x frames)",
               "stss_recurrent": "STSS + learned display-resolution accumulation (2x frames)",
               "two_stage": "two-stage networks (2x frames)", "warp_fill": "warp + fill extrapolation (2x frames)",
               "stss_flow": "STSS, motion vectors estimated by the motion pass (2x frames)",
               "vfi": "frame interpolation, tile-pruned refiner (2x frames, +1 frame latency)"}
_GB = ("albedo", "normal", "roughness", "metallic", "object_id")
#: The frame multiplier of the frame-generation modes -> generated frames per rendered frame
#: (``ContextDescription.generated_frames``).
MULTIPLIERS: dict[str, int | str] = {"2x": 1, "3x": 2, "4x": 3, "auto": "auto"}
MULTIPLIER_LABELS = {"2x": "2x (1 generated frame)", "3x": "3x (2 generated)", "4x": "4x (3 generated)",
                     "auto": "auto (tracks the target rate)"}


def multiplier_name(generated_frames: int | str) -> str:
    """The :data:`MULTIPLIERS` key of a generated-frame count (1 -> "2x", "auto" -> "auto")."""
    for name, n in MULTIPLIERS.items():
        if n == generated_frames:
            return name
    raise ValueError(f"generated_frames: expected one of {', '.join(map(str, MULTIPLIERS.values()))}, "
                     f"got {generated_frames!r}")


@dataclass
class DemoFrame:
    """One display frame: the pass output (linear, display size) and what it came from."""

    index: int
    t: float
    kind: str  # "rendered", "generated" or "native"
    output: np.ndarray  # (H, W, 3) linear colour
    cpu_ms: dict[str, float] = field(default_factory=dict)  # the plugin's stages, by profile column
    # the plugin's GPU times (CUDA contexts only) arrive a dispatch or two late: (display frame
    # index, {profile column: gpu ms}) pairs for earlier frames, for FrameProfiler.add_gpu_results
    gpu_late: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    reset: bool = False
    gbuffers: dict[str, np.ndarray] | None = None  # what the engine drew for this frame (render size)
    view: np.ndarray | None = None  # the camera's 4x4 view matrix
    distance: int = 0  # a generated frame: display frames after its rendered frame (1 to 3)


class DemoPipeline:
    """Renders and runs the chosen mode for display frame ``i`` at time ``t``.

    ``scope(name)``: a context manager around each GPU pass (the demo's deferred timers).
    The passes are named ``shadow``, ``gbuffer``, ``shading`` (the rendered frame, or the
    native one), ``next_gbuffer`` (the G-buffers of the frame to extrapolate: no shadow map,
    no shading); :attr:`DemoFrame.cpu_ms` has ``readback`` (G-buffers to host memory, for
    the plugin) and the plugin's own timings.
    :attr:`free_camera` (a :class:`~demo_renderer.freecam.FreeCamera`), when set, replaces the
    scene's scripted camera.

    ``runtime`` (:class:`~demo_renderer.hardware.RuntimeChoice`): the device, back-end,
    precision and STSS network of the plugin context (default: the CPU, torch, ``stss``);
    a mode whose pass cannot run on that back-end runs on torch, and :attr:`note` says why.
    With ``runtime.gl_textures`` the rendered frame's colour and the generated frame's motion
    are handed over as GL textures (CUDA-OpenGL interop on a CUDA context), the other
    G-buffers through host memory (the renderer packs two buffers per texture).
    """

    def __init__(self, gl: moderngl.Context, scene: Scene, display_size: tuple[int, int],
                 mode: str = "stss", quality: str = "PERFORMANCE", display_fps: float = 60.0,
                 shaders: ShaderLibrary | None = None,
                 scope: Callable[[str], ContextManager] | None = None, runtime: RuntimeChoice | None = None,
                 generated_frames: int | str = 1, target_fps: float = 120.0):
        """``generated_frames``: of the frame-generation modes, 1 to 3 per rendered frame, or
        "auto" (chosen by the plugin per frame to present ``target_fps`` frames per second
        from the measured render time)."""
        self.gl = gl
        multiplier_name(generated_frames)  # a count the demo offers
        self.multiplier, self.target_fps = generated_frames, float(target_fps)
        self.runtime = runtime or RuntimeChoice(display_size=tuple(display_size))
        self.note = ""  # why the mode's pass does not run on the chosen back-end, when it does not
        self.scene = scene
        self.display_size = display_size
        self.display_fps = display_fps
        self.shaders = shaders or ShaderLibrary(gl)
        self.renderer = Renderer(gl, scene, self.shaders, timers=False,
                                 shadow_map_size=self.runtime.shadow_map_size)
        self.scope = scope or nullscope
        self.free_camera = None
        self.readback_ms = 0.0  # G-buffer read-back CPU time of the last frame() call
        self.ctx: plugin.Context | None = None
        self.set_mode(mode, quality)

    # -- configuration ------------------------------------------------------------------

    def set_mode(self, mode: str, quality: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.quality = quality or getattr(self, "quality", "PERFORMANCE")
        self.render_size = plugin.render_size(self.display_size, self.quality)
        if self.ctx is not None:
            self.ctx.destroy()
            self.ctx = None
        spec = MODES[mode]
        self.pass_name = mode_pass(mode)
        # a frame-generation mode generates the multiplier's frames; the others none
        self.generated_frames = 0 if spec is None or not spec[1] else self.multiplier
        # a pass that estimates motion itself (stss_flow) gets none, as from an engine without them
        self.send_motion = spec is None or "motion" in plugin.required_inputs(spec[0])
        if spec is not None:
            self.ctx = self._context(spec[0], self.generated_frames)
        self.phases = plugin.jitter_phase_count(self.render_size[0], self.display_size[0])
        self.bias = plugin.mip_bias(self.render_size[0], self.display_size[0])
        self._rendered_index = 0  # the new context's frame numbers
        self._dispatched: dict[int, int] = {}  # dispatch frame_index -> display frame (late GPU times)
        self.reset_history()

    def _context(self, name: str, generated: int) -> plugin.Context:
        """The plugin context of pass ``name`` on :attr:`runtime`; on torch (with :attr:`note`
        saying why) when the pass cannot run on the chosen back-end (interpolation: torch only)."""
        rt = self.runtime
        kw = dict(max_render_size=self.render_size, display_size=self.display_size, pass_name=name,
                  generated_frames=generated, device=rt.device, gl_interop="auto" if rt.gl_textures else "host")
        if generated == "auto":
            if PASSES[name].latency_frames:  # interpolation waits for the next rendered frame: a fixed count
                kw["generated_frames"] = MULTIPLIERS["4x"]
                self.generated_frames = MULTIPLIERS["4x"]
            else:
                kw["target_display_hz"] = self.target_fps
        if PASSES[name].runtime_options:
            kw.update(backend=rt.backend, precision=rt.precision)
        if name in NETWORK_PASSES:
            kw["network"] = rt.network
        self.note = ""
        try:
            return plugin.Context(plugin.ContextDescription(**kw))
        except (plugin.UnsupportedError, plugin.BackendUnavailableError) as e:
            if kw.get("backend", "torch") == "torch":
                raise
            self.note = f"{name} runs on torch fp32: {e}"
            kw.update(backend="torch", precision="fp32")
            return plugin.Context(plugin.ContextDescription(**kw))

    def set_multiplier(self, generated_frames: int | str, target_fps: float | None = None) -> None:
        """Generate 1 to 3 frames per rendered frame, or "auto" (towards ``target_fps``
        presented frames per second); a new context, the history starts over."""
        multiplier_name(generated_frames)
        self.multiplier = generated_frames
        if target_fps is not None:
            self.target_fps = float(target_fps)
        self.set_mode(self.mode, self.quality)

    def set_runtime(self, runtime: RuntimeChoice) -> None:
        """Run the plugin on another device / back-end / network (a new context; the history
        starts over)."""
        self.runtime = runtime
        self.set_mode(self.mode, self.quality)

    def reset_history(self) -> None:
        """Start over: the next frame is rendered and dispatched with ``reset`` (after a camera
        jump, e.g. the free camera switched on or off)."""
        self._pending: list[DemoFrame] = []  # the generated frames still to show, in display order
        self._last_display: int | None = None
        self.last_generated = 0  # the generated frames of the last rendered frame (with "auto": the choice)

    def close(self) -> None:
        """Destroy the plugin context and release the renderer's GL objects."""
        if self.ctx is not None:
            self.ctx.destroy()
            self.ctx = None
        if self.renderer is not None:
            self.renderer.release()
            self.renderer = None

    # -- rendering ----------------------------------------------------------------------

    def _views(self, i: int):
        fc = self.free_camera
        return None if fc is None else (fc.view(i), fc.view(i - 1))

    def camera_view(self, i: int, t: float) -> np.ndarray:
        """The view matrix of display frame ``i`` at ``t``: the free camera's when flying."""
        return self.free_camera.view(i) if self.free_camera is not None else self.scene.camera.view(t)

    def _render(self, i: int, t: float, prev_t: float, size, jitter, bias, shade: bool, prefix: str | None):
        r = self.renderer
        if prefix is not None:
            r.pass_scope = lambda name: self.scope(prefix + name)
        try:
            target, cam = r.render(t, prev_t, size, jitter, bias, shade=shade, timed=False, views=self._views(i))
        finally:
            r.pass_scope = None
        return target, cam

    def native(self, i: int, t: float, dt: float | None = None, gbuffers: bool = False,
               prefix: str | None = None) -> np.ndarray | tuple[np.ndarray, dict]:
        """Display frame ``i`` at time ``t`` shaded at display resolution (linear colour), for
        comparisons; ``dt``: seconds since the previous display frame (default
        ``1 / display_fps``, 0 when paused). With ``gbuffers``: (colour, every buffer).
        ``prefix``: time its passes as ``prefix + pass`` (default: untimed; the caller times
        the whole comparison render)."""
        dt = 1.0 / self.display_fps if dt is None else dt
        target, _ = self._render(i, t, t - dt, self.display_size, (0.0, 0.0), 0.0, True, prefix)
        if not gbuffers:
            return self.renderer.read_color(target.color)
        a = self._read(target)
        return a["color"].astype(np.float32), a

    def _read(self, target, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """Every buffer to host memory but those in ``skip`` ("color", "motion": handed over
        as textures, or not needed), its CPU time added to :attr:`readback_ms` (CPU time only:
        a GL timer query around a read-back does not measure the transfer on Mesa)."""
        t0 = time.perf_counter()
        a = self.renderer.read_frame(target) if not skip else _read_except(target, skip)
        self.readback_ms += (time.perf_counter() - t0) * 1e3
        return a

    def _engine_frame(self, i: int, t: float, dt: float, shade: bool, prefix: str,
                      textures: bool = False) -> tuple[dict, dict]:
        """The frame description fields of display frame ``i`` and what was read back;
        ``textures``: hand the colour (rendered frames) or the motion (G-buffer-only frames)
        over as a GL texture (the next render overwrites the G-buffers, not the colour)."""
        jitter = plugin.jitter_offset(i, self.phases)
        target, cam = self._render(i, t, t - dt, self.render_size, jitter, self.bias, shade, prefix)
        gl = ("color" if shade else "motion") if textures else None
        a = self._read(target, () if gl is None else ("color",) if shade else ("color", "motion"))
        motion = target.motion if gl == "motion" else a["motion"]
        fields = dict(depth=a["depth"], motion=motion if self.send_motion else None, jitter_px=jitter,
                      view=cam.view, proj=cam.proj, **{k: a[k] for k in _GB})
        if gl == "color":
            fields["color"] = target.color
        if not shade:
            a.pop("color", None)
        return fields, a

    def kind(self, i: int) -> str:
        """What :meth:`frame` will return for display frame ``i``: native, rendered or generated."""
        if self.mode == "native":
            return "native"
        return "generated" if self._pending and self._pending[0].index == i else "rendered"

    def distance(self, i: int) -> int:
        """Display frame ``i``'s distance from its rendered frame if :meth:`frame` will
        return a generated frame for it (1 to 3), else 0."""
        return self._pending[0].distance if self.kind(i) == "generated" else 0

    def frame(self, i: int, t: float, dt: float | None = None, gbuffers: bool = False) -> DemoFrame:
        """Display frame ``i`` at time ``t``; ``dt``: scene seconds between display frames
        (default ``1 / display_fps``; 0 while paused: the scene stands still, frames go on).
        Frame indices must increase by one; any other step resets the history.
        ``gbuffers``: in native mode, also read back the G-buffers (for debug views); the
        other modes always have them."""
        dt = 1.0 / self.display_fps if dt is None else float(dt)
        self.readback_ms = 0.0
        if self.mode == "native":
            if gbuffers:
                color, arrays = self.native(i, t, dt, gbuffers=True, prefix="")
                return DemoFrame(i, t, "native", color, {"readback": self.readback_ms}, gbuffers=arrays,
                                 view=self.camera_view(i, t))
            return DemoFrame(i, t, "native", self.native(i, t, dt, prefix=""), view=self.camera_view(i, t))
        if self._pending and self._pending[0].index == i:  # an extrapolated frame
            return self._pending.pop(0)
        self._pending = []
        cam = self.scene.camera
        textures = self.runtime.gl_textures and not gbuffers  # a G-buffer debug view reads them all
        t0 = time.perf_counter()
        rendered, arrays = self._engine_frame(i, t, dt, True, "", textures)
        render_ms = (time.perf_counter() - t0) * 1e3  # what rendering the frame cost: "auto" follows it
        color = rendered.pop("color", None)
        color = arrays["color"] if color is None else color
        n = self.ctx.next_generated_frames if self.generated_frames else 0  # "auto": the plugin's choice
        generated, gen_fields = [], []
        for k in range(n):  # generated frame k at the instant (k + 1) / (n + 1) of a frame after this one
            nxt, next_arrays = self._engine_frame(i + 1 + k, t + (k + 1) * dt, dt, False, "next_", textures)
            generated.append(plugin.GeneratedFrameDescription(**nxt))
            gen_fields.append((nxt, next_arrays))
        reset = self._last_display is None or i != self._last_display + 1
        result = self.ctx.dispatch(plugin.FrameDescription(
            frame_index=self._rendered_index, color=color,
            frame_time_ms=1000.0 * (1 + n) * max(dt, 1.0 / self.display_fps),
            near=cam.near, far=cam.far, fov_y_rad=plugin.helpers.vertical_fov_from_proj(rendered["proj"]),
            reset=reset, generated=generated, render_time_ms=max(render_ms, 1e-3), **rendered))
        self._dispatched[self._rendered_index] = i
        self._rendered_index += 1
        self._last_display = i + n
        self.last_generated = n
        stages = dict(result.timings_ms)
        cpu = {"readback": self.readback_ms, **self._plugin_columns(stages, bool(generated))}
        gpu_late = []
        if result.gpu_timings_frame is not None:  # CUDA: an earlier dispatch's GPU times, read late
            shown = self._dispatched.pop(result.gpu_timings_frame, None)
            if shown is not None:
                gpu_late.append((shown, self._plugin_columns(result.gpu_timings_ms, bool(generated))))
        for k in [k for k in self._dispatched if k < self._rendered_index - 8]:
            del self._dispatched[k]  # never read (the plugin dropped them): forget
        # done now, during the rendered frame: timed there, shown at the next presents
        self._pending = [DemoFrame(i + 1 + k, t + (k + 1) * dt, "generated", _host(g.color), distance=k + 1,
                                   gbuffers=a, view=f["view"])
                         for k, (g, (f, a)) in enumerate(zip(result.generated, gen_fields))]
        return DemoFrame(i, t, "rendered", _host(result.output), cpu, reset=result.reset, gbuffers=arrays,
                         view=rendered["view"], gpu_late=gpu_late)

    def _plugin_columns(self, stages: dict[str, float], generated: bool) -> dict[str, float]:
        """The plugin's stage times as profile columns: the pass (inputs, upscale, ui) and,
        with frame generation, ``<pass>_generate``."""
        cols = {self.pass_name: stages["inputs"] + stages["upscale"] + stages["ui"]}
        if generated:
            cols[self.pass_name + "_generate"] = stages["generate"]
        return cols

    def debug_image(self, view: str, frame: DemoFrame) -> np.ndarray | None:
        """Debug view ``view`` (:data:`~demo_renderer.views.DEBUG_VIEWS`) of display frame
        ``frame`` as (H, W, 3) uint8, or None where it has nothing to show: the G-buffers of
        a frame without them, the hole mask (and the motion pass's "object_motion" and
        "credibility") without frame generation or before a generated frame was dispatched.
        "tint_generated" shows the frame itself, tinted when it was generated, by its distance
        from the rendered frame (magenta, orange, cyan: :func:`plugin.debug.distance_tint`)."""
        from plugin import debug

        check_view(view)
        if view == "none":
            return None
        if view in GBUFFER_VIEWS:
            if frame.gbuffers is None:
                return None
            cam = self.scene.camera
            return gbuffer_view(view, frame.gbuffers, self.display_size, cam.near, cam.far)
        if view == "tint_generated":
            img = display_transform(np.asarray(frame.output, dtype=np.float32))
            return debug.tint(img, debug.distance_tint(max(frame.distance, 1))) if frame.kind == "generated" else img
        if self.ctx is None or not self.generated_frames:  # views of the generated frame
            return None
        view_of = {"holes": debug.hole_mask_view, "object_motion": debug.object_motion_view,
                   "credibility": debug.credibility_view}
        try:
            return view_of[view](self.ctx)
        except plugin.ContextStateError:
            return None


def nullscope(name: str) -> ContextManager:
    return contextlib.nullcontext()


def _host(image) -> np.ndarray:
    """A plugin output as host memory (a CUDA context returns torch tensors on the GPU)."""
    if isinstance(image, torch.Tensor):
        return image.detach().float().cpu().numpy()
    return image


def _read_except(target, skip: tuple[str, ...]) -> dict[str, np.ndarray]:
    """:meth:`Renderer.read_frame` without the buffers in ``skip`` ("color", "motion"): they
    stay on the GPU, for CUDA-OpenGL interop."""
    w, h = target.size

    def read(tex, dtype, comps):
        return np.frombuffer(tex.read(), dtype=dtype).reshape(h, w, comps)[::-1]

    ar = read(target.albedo_roughness, np.float16, 4)
    nm = read(target.normal_metallic, np.float16, 4)
    di = read(target.depth_id, np.float32, 2)
    out = {"albedo": np.ascontiguousarray(ar[..., :3]), "roughness": np.ascontiguousarray(ar[..., 3]),
           "normal": np.ascontiguousarray(nm[..., :3]), "metallic": np.ascontiguousarray(nm[..., 3]),
           "depth": np.ascontiguousarray(di[..., 0]), "object_id": np.rint(di[..., 1]).astype(np.int32)}
    if "motion" not in skip:
        out["motion"] = np.ascontiguousarray(read(target.motion, np.float32, 2))
    if "color" not in skip:
        out["color"] = np.ascontiguousarray(read(target.color, np.float16, 4)[..., :3])
    return out
