"""What the demo shows each display frame, produced the way an engine would produce it:
the renderer draws G-buffers (and shading on rendered frames) at the render size, and the
product runs through the plugin API (:class:`plugin.Context`), never a private shortcut.

Modes (:data:`MODES`): ``native`` (every display frame shaded at full resolution), upscalers
(one display frame per rendered frame) and frame generators (a rendered frame, then one
extrapolated from its G-buffers alone: two display frames per rendered frame).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import moderngl
import numpy as np

import plugin

from .renderer import Renderer
from .scene import Scene
from .shaderlib import ShaderLibrary

#: Demo mode -> (plugin pass, generated frames per rendered frame); None: native rendering.
MODES: dict[str, tuple[str, int] | None] = {
    "native": None,
    "bilinear": ("bilinear", 0),
    "bicubic": ("bicubic", 0),
    "temporal": ("temporal", 0),
    "stss_sr": ("stss", 0),  # STSS supersampling only
    "stss": ("stss", 1),  # STSS supersampling + extrapolation: 2x frames
    "two_stage": ("two_stage", 1),
    "warp_fill": ("warp_fill", 1),
}
MODE_LABELS = {"native": "native (full resolution)", "bilinear": "bilinear upscale", "bicubic": "bicubic upscale",
               "temporal": "temporal upscaler (FSR 2-like)", "stss_sr": "STSS supersampling only",
               "stss": "STSS supersampling + extrapolation (2x frames)",
               "two_stage": "two-stage networks (2x frames)", "warp_fill": "warp + fill extrapolation (2x frames)"}
_GB = ("albedo", "normal", "roughness", "metallic", "object_id")


@dataclass
class DemoFrame:
    """One display frame: the pass output (linear, display size) and what it came from."""

    index: int
    t: float
    kind: str  # "rendered", "generated" or "native"
    output: np.ndarray  # (H, W, 3) linear colour
    cpu_ms: dict[str, float] = field(default_factory=dict)  # plugin stages (this frame's share)
    reset: bool = False


class DemoPipeline:
    """Renders and runs the chosen mode for display frame ``i`` at time ``t``.

    ``scope(name)``: a context manager around each GPU pass (the demo's deferred timers);
    the renderer's passes are named ``shadow``, ``gbuffer``, ``shading`` (the rendered frame),
    ``next_*`` (the G-buffers of the frame to extrapolate) and ``native_*``.
    """

    def __init__(self, gl: moderngl.Context, scene: Scene, display_size: tuple[int, int],
                 mode: str = "stss", quality: str = "PERFORMANCE", display_fps: float = 60.0,
                 shaders: ShaderLibrary | None = None,
                 scope: Callable[[str], ContextManager] | None = None):
        self.gl = gl
        self.scene = scene
        self.display_size = display_size
        self.display_fps = display_fps
        self.shaders = shaders or ShaderLibrary(gl)
        self.renderer = Renderer(gl, scene, self.shaders, timers=False)
        self.scope = scope
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
        self.generated_frames = 0 if spec is None else spec[1]
        if spec is not None:
            self.ctx = plugin.Context(plugin.ContextDescription(
                max_render_size=self.render_size, display_size=self.display_size, pass_name=spec[0],
                generated_frames=spec[1]))
        self.phases = plugin.jitter_phase_count(self.render_size[0], self.display_size[0])
        self.bias = plugin.mip_bias(self.render_size[0], self.display_size[0])
        self._pending: DemoFrame | None = None
        self._rendered_index = 0
        self._last_display: int | None = None

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.destroy()
            self.ctx = None

    # -- rendering ----------------------------------------------------------------------

    def _render(self, t: float, prev_t: float, size, jitter, bias, shade: bool, prefix: str):
        r = self.renderer
        if self.scope is not None:
            r.pass_scope = lambda name: self.scope(prefix + name)
        try:
            target, cam = r.render(t, prev_t, size, jitter, bias, shade=shade, timed=False)
        finally:
            r.pass_scope = None
        return target, cam

    def native(self, t: float) -> np.ndarray:
        """The display-resolution shaded frame at ``t`` (linear), for comparisons."""
        target, _ = self._render(t, t - 1.0 / self.display_fps, self.display_size, (0.0, 0.0), 0.0, True, "native_")
        return self.renderer.read_color(target.color)

    def _engine_frame(self, i: int, t: float, shade: bool, prefix: str) -> tuple[dict, np.ndarray | None]:
        jitter = plugin.jitter_offset(i, self.phases)
        target, cam = self._render(t, t - 1.0 / self.display_fps, self.render_size, jitter, self.bias, shade, prefix)
        a = self.renderer.read_frame(target)
        fields = dict(depth=a["depth"], motion=a["motion"], jitter_px=jitter, view=cam.view, proj=cam.proj,
                      **{k: a[k] for k in _GB})
        return fields, (a["color"] if shade else None)

    def kind(self, i: int) -> str:
        """What :meth:`frame` will return for display frame ``i``: native, rendered or generated."""
        if self.mode == "native":
            return "native"
        return "generated" if self._pending is not None and self._pending.index == i else "rendered"

    def frame(self, i: int, t: float) -> DemoFrame:
        """Display frame ``i`` at time ``t`` (``t`` of the next display frame is
        ``t + 1 / display_fps`` unless paused: then the same frame comes back)."""
        if self.mode == "native":
            return DemoFrame(i, t, "native", self.native(t))
        if self._pending is not None and self._pending.index == i:  # the extrapolated frame
            out, self._pending = self._pending, None
            return out
        dt = 1.0 / self.display_fps
        cam = self.scene.camera
        rendered, color = self._engine_frame(i, t, True, "")
        generated = []
        if self.generated_frames:
            nxt, _ = self._engine_frame(i + 1, t + dt, False, "next_")
            generated = [plugin.GeneratedFrameDescription(**nxt)]
        reset = self._last_display is None or i != self._last_display + 1
        result = self.ctx.dispatch(plugin.FrameDescription(
            frame_index=self._rendered_index, color=color, frame_time_ms=1000.0 * dt * (1 + self.generated_frames),
            near=cam.near, far=cam.far, fov_y_rad=plugin.helpers.vertical_fov_from_proj(rendered["proj"]),
            reset=reset, generated=generated, **rendered))
        self._rendered_index += 1
        self._last_display = i + self.generated_frames
        stages = dict(result.timings_ms)
        if generated:
            self._pending = DemoFrame(i + 1, t + dt, "generated", result.generated[0].color,
                                      {"pass_generate": stages["generate"]})
        return DemoFrame(i, t, "rendered", result.output,
                         {"pass_inputs": stages["inputs"], "pass_upscale": stages["upscale"],
                          "pass_ui": stages["ui"]}, reset=result.reset)

    def debug_image(self, view: str) -> np.ndarray | None:
        """A debug view of the last dispatch as (H, W, 3) uint8, or None (native mode,
        nothing dispatched, or no generated frame for the generated-frame views)."""
        if self.ctx is None or view == "none":
            return None
        from plugin import debug

        try:
            if view in ("albedo", "normal"):
                f = self.ctx.last_frames[0]
                t = getattr(f, view)[0].permute(1, 2, 0).numpy()
                img = (np.clip(t * 0.5 + 0.5 if view == "normal" else t, 0, 1) * 255).astype(np.uint8)
                return np.repeat(np.repeat(img, self.display_size[1] // img.shape[0], 0),
                                 self.display_size[0] // img.shape[1], 1)
            fn = {"depth": debug.depth_view, "motion": debug.motion_view, "holes": debug.hole_mask_view,
                  "generated_tinted": debug.generated_tinted}[view]
            return fn(self.ctx)
        except plugin.ContextStateError:
            return None


def nullscope(name: str) -> ContextManager:
    return contextlib.nullcontext()
