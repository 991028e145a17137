"""The demo: a scene rendered at low resolution and brought to the display by the chosen
mode through the plugin API (:mod:`demo_renderer.pipeline`), compared with native rendering.

In a window (glfw) when a display exists, with the ImGui controls and the frame-time
overlay (:mod:`demo_renderer.overlay`, the only module that imports imgui); otherwise
headless: a short clip (PNG frames and an MP4), a comparison sheet of the passes against
the ground truth, the profile as CSV and its plot as PNG, and a summary on the terminal.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from .pipeline import MODE_LABELS, MODES, DemoFrame, DemoPipeline
from .profiler import DeferredGpuTimer, FrameProfiler
from .scene import Scene
from .shaderlib import ShaderLibrary


@dataclass(frozen=True)
class DemoConfig:
    scene: str = "traffic"
    frames: int = 120  # headless: frames to write; windowed: 0 = run until closed
    display_size: tuple[int, int] = (960, 540)
    mode: str = "stss"  # see pipeline.MODES
    quality: str = "PERFORMANCE"  # plugin.QualityMode name
    fps: float = 60.0  # display frames per second of scene time
    split: float = 0.5  # wipe divider, fraction of the width
    compare: str = "wipe"  # "wipe" (native | mode), "side_by_side" or "off"
    sheet_frames: int = 8  # headless comparison sheet: display frames run per pass (0: no sheet)


class Compositor:
    """Puts the demo's images on screen: the mode's output alone, a wipe against native,
    side by side, a zoom loupe, or a debug view; linear images go through the display
    transform, 8-bit debug views are shown as they are."""

    def __init__(self, gl: moderngl.Context, shaders: ShaderLibrary, size: tuple[int, int]):
        self.gl = gl
        self.prog = shaders.get("present.glsl")
        self.vao = gl.vertex_array(self.prog, [])
        self.size = size
        self.tex = {name: gl.texture(size, 3, dtype="f4") for name in ("output", "native")}
        self.debug = gl.texture(size, 3, dtype="f1")
        for t in (*self.tex.values(), self.debug):
            t.filter = (moderngl.LINEAR, moderngl.LINEAR)

    def upload(self, name: str, image: np.ndarray) -> None:
        tex = self.debug if name == "debug" else self.tex[name]
        h = image.shape[0]
        tex.write(np.ascontiguousarray(image[::-1] if h == self.size[1] else image).tobytes())

    def _draw(self, tex, viewport, uv=(0.0, 0.0, 1.0, 1.0), encoded=False, nearest=False):
        gl = self.gl
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST) if nearest else (moderngl.LINEAR, moderngl.LINEAR)
        tex.use(0)
        self.prog["u_source"].value = 0
        self.prog["u_viewport"].value = tuple(float(v) for v in viewport)
        self.prog["u_uv_rect"].value = tuple(float(v) for v in uv)
        self.prog["u_encoded"].value = 1 if encoded else 0
        gl.viewport = tuple(int(v) for v in viewport)
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def compose(self, fbo: moderngl.Framebuffer, compare: str = "wipe", split: float = 0.5,
                debug: bool = False, loupe: tuple[float, float] | None = None, zoom: int = 4) -> None:
        """Draw into ``fbo``. ``loupe``: the point (0..1, y down) to magnify, shown in the
        bottom-right corner, native above the mode's output when comparing."""
        gl = self.gl
        w, h = fbo.size
        fbo.use()
        gl.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        fbo.clear(0.05, 0.05, 0.05, 1.0)
        out, nat = self.tex["output"], self.tex["native"]
        if debug:
            self._draw(self.debug, (0, 0, w, h), encoded=True)
        elif compare == "side_by_side":
            half = w // 2
            hh = h // 2  # letterboxed: each half keeps the display aspect
            y0 = (h - hh) // 2
            self._draw(nat, (0, y0, half, hh))
            self._draw(out, (half, y0, w - half, hh))
        elif compare == "wipe":
            x = int(round(split * w))
            gl.scissor = (0, 0, x, h)
            self._draw(nat, (0, 0, w, h))
            gl.scissor = (x, 0, w - x, h)
            self._draw(out, (0, 0, w, h))
            gl.scissor = (max(x - 1, 0), 0, 2, h)
            fbo.clear(1.0, 1.0, 1.0, 1.0)
            gl.scissor = None
        else:
            self._draw(out, (0, 0, w, h))
        if loupe is not None and not debug:
            u, v = loupe
            size = max(64, min(w, h) // 3)
            uw, vh = size / zoom / self.size[0], size / zoom / self.size[1]
            uv = (min(max(u - uw / 2, 0), 1 - uw), min(max(1 - v - vh / 2, 0), 1 - vh), uw, vh)
            x0 = w - size - 8
            boxes = [(out, 8)] if compare == "off" else [(out, 8), (nat, 16 + size)]
            for tex, y in boxes:
                gl.scissor = (x0 - 2, y - 2, size + 4, size + 4)
                fbo.clear(1.0, 1.0, 1.0, 1.0)
                gl.scissor = None
                self._draw(tex, (x0, y, size, size), uv, nearest=True)
        gl.viewport = (0, 0, w, h)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _Run:
    """The demo loop shared by the window and headless modes: one display frame per call,
    its times into the profiler (GPU times arrive a few frames late)."""

    def __init__(self, gl: moderngl.Context, scene: Scene, cfg: DemoConfig):
        self.gl, self.cfg = gl, cfg
        self.shaders = ShaderLibrary(gl)
        self.profiler = FrameProfiler()
        self.timer = DeferredGpuTimer(gl, profiler=self.profiler)  # GPU times arrive frames late
        self.pipeline = DemoPipeline(gl, scene, cfg.display_size, cfg.mode, cfg.quality, cfg.fps,
                                     self.shaders, scope=self.timer.scope)
        self.comp = Compositor(gl, self.shaders, cfg.display_size)
        self.last_present = None

    def step(self, i: int, t: float, fbo, compare: str, split: float, debug_view: str = "none",
             loupe=None, zoom: int = 4) -> DemoFrame:
        prof = self.profiler
        prof.begin_frame(i, self.pipeline.kind(i))
        t0 = time.perf_counter()
        frame = self.pipeline.frame(i, t)
        t1 = time.perf_counter()
        self.comp.upload("output", frame.output)
        if compare != "off" and self.pipeline.mode != "native":
            self.comp.upload("native", self.pipeline.native(t))
        elif self.pipeline.mode == "native":
            self.comp.upload("native", frame.output)
        dbg = self.pipeline.debug_image(debug_view) if debug_view != "none" else None
        if dbg is not None:
            self.comp.upload("debug", dbg)
        with self.timer.scope("present"):
            self.comp.compose(fbo, compare if self.pipeline.mode != "native" else "off", split, dbg is not None,
                              loupe, zoom)
        t2 = time.perf_counter()
        prof.add("pipeline", cpu_ms=(t1 - t0) * 1e3)  # render + the plugin dispatch
        prof.add("views", cpu_ms=(t2 - t1) * 1e3)  # uploads, native frame, debug view, compose
        for name, ms in frame.cpu_ms.items():
            prof.add(name, cpu_ms=ms)
        return frame

    def end(self, present_ms: float) -> None:
        self.timer.end_frame()
        self.profiler.end_frame(present_ms)

    def finish(self) -> None:
        self.timer.flush()
        self.pipeline.close()


def run_headless(scene: Scene, cfg: DemoConfig, out: Path, gl: moderngl.Context, progress: bool = True) -> dict:
    """Write the clip (``frames/*.png``, ``demo.mp4``), ``comparison.png``, ``profile.csv``
    and ``frame_times.png`` into ``out``; returns a summary."""
    import imageio.v3 as iio
    from PIL import Image

    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    w, h = cfg.display_size
    target = gl.texture((w, h), 4)
    fbo = gl.framebuffer(color_attachments=[target])
    run = _Run(gl, scene, cfg)
    images = []
    iterator = range(cfg.frames)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, unit="frame", desc=f"demo {scene.name} {cfg.mode}", dynamic_ncols=True)
    last = time.perf_counter()
    for i in iterator:
        run.step(i, i / cfg.fps, fbo, cfg.compare, cfg.split)
        rgb = np.frombuffer(target.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]
        Image.fromarray(rgb).save(frames_dir / f"{i:06d}.png")
        images.append(np.ascontiguousarray(rgb))
        now = time.perf_counter()
        run.end((now - last) * 1e3)
        last = now
    run.finish()
    video = out / "demo.mp4"
    iio.imwrite(video, np.stack(images), fps=min(cfg.fps, 30.0), codec="libx264", macro_block_size=2,
                plugin="pyav" if _has_pyav() else "FFMPEG")
    run.profiler.to_csv(out / "profile.csv")
    run.profiler.plot_png(out / "frame_times.png")
    summary = {"frames": frames_dir, "video": video, "profile": out / "profile.csv",
               "plot": out / "frame_times.png", "stats": run.profiler.stats(), "sheet": None, "table": None}
    if cfg.sheet_frames:
        from .compare import compare_passes, format_table, save_sheet

        comparison = compare_passes(gl, scene, passes=("native", "bilinear", "temporal", "stss"),
                                    frames=cfg.sheet_frames, render_size=run.pipeline.render_size,
                                    display_size=cfg.display_size, fps=cfg.fps / 2, progress=progress)
        save_sheet(comparison, out / "comparison.png")
        summary["sheet"] = out / "comparison.png"
        summary["table"] = format_table(comparison)
    return summary


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def run_window(scene: Scene, cfg: DemoConfig, screenshot: Path | None = None, overlay: bool = True,
               profile_out: Path | None = None) -> dict:
    """Open a glfw window with the controls and the frame-time overlay; run until closed (Esc)
    or ``cfg.frames`` frames (if > 0). ``screenshot``: save the last frame (PNG);
    ``profile_out``: a folder for the profile CSV and plot at exit (also on "Export")."""
    if overlay:
        from .overlay import import_glfw

        glfw = import_glfw()  # imgui-bundle's GLFW, shared with its backends
    else:
        import glfw

    if not glfw.init():
        raise RuntimeError("glfw could not initialise (is DISPLAY set to a running X server?)")
    try:
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 4)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        w, h = cfg.display_size
        window = glfw.create_window(w, h, f"STSS demo - {scene.name}", None, None)
        if not window:
            raise RuntimeError("glfw could not open a window with OpenGL 4.3 core")
        glfw.make_context_current(window)
        glfw.swap_interval(0)
        gl = moderngl.create_context(require=430)
        run = _Run(gl, scene, cfg)
        ui = None
        if overlay:
            from .overlay import DemoUiState, Overlay
            from .scenes import BUILTIN_SCENES

            state = DemoUiState(scene=scene.name, scenes=sorted(set(BUILTIN_SCENES) | {scene.name}),
                                pass_name=cfg.mode, passes=list(MODES), quality=cfg.quality, compare=cfg.compare,
                                split=cfg.split)
            ui = Overlay(window, run.profiler, state)
        keys = {"paused": False}

        def on_key(win, key, scancode, action, mods):
            if action != glfw.PRESS:
                return
            if key in (glfw.KEY_ESCAPE, glfw.KEY_Q):
                glfw.set_window_should_close(win, True)
            elif key == glfw.KEY_SPACE:
                keys["paused"] = not keys["paused"]

        if ui is None:
            glfw.set_key_callback(window, on_key)
        index, t = 0, 0.0
        frame_ms = []
        last = time.perf_counter()
        while not glfw.window_should_close(window):
            glfw.poll_events()
            fb_w, fb_h = glfw.get_framebuffer_size(window)
            if fb_w == 0 or fb_h == 0:  # minimised
                glfw.wait_events()
                continue
            if ui is not None:
                s = ui.state
                if "scene" in s.changed and s.scene != run.pipeline.scene.name:
                    from .scenes import load_scene

                    run.pipeline = DemoPipeline(gl, load_scene(s.scene), cfg.display_size, s.pass_name, s.quality,
                                                cfg.fps, run.shaders, scope=run.timer.scope)
                    index, t = 0, 0.0
                elif s.changed & {"pass_name", "quality"}:
                    run.pipeline.set_mode(s.pass_name, s.quality)
                paused, compare, split = s.paused, s.compare, s.split
                debug_view = s.debug_view
                loupe = None
                if s.loupe:
                    mx, my = glfw.get_cursor_pos(window)
                    win_w, win_h = glfw.get_window_size(window)
                    loupe = (min(max(mx / max(win_w, 1), 0), 1), min(max(my / max(win_h, 1), 0), 1))
                zoom = s.loupe_zoom
                if s.export_requested and profile_out is not None:
                    _export(run.profiler, profile_out)
                    s.export_requested = False
            else:
                paused, compare, split, debug_view, loupe, zoom = keys["paused"], cfg.compare, cfg.split, "none", None, 4
            run.step(index, t, gl.detect_framebuffer(), compare, split, debug_view, loupe, zoom)
            if ui is not None:
                with run.timer.scope("overlay"):  # the overlay's own CPU and GPU cost
                    ui.frame()
                    ui.render()
            if cfg.frames and index + 1 >= cfg.frames and screenshot is not None:
                _save_screen(gl, screenshot)
            glfw.swap_buffers(window)
            now = time.perf_counter()
            frame_ms.append((now - last) * 1e3)
            run.end(frame_ms[-1])
            last = now
            if not paused:
                t += 1.0 / cfg.fps
                index += 1
            if cfg.frames and len(frame_ms) >= cfg.frames:
                break
        run.finish()
        if profile_out is not None:
            _export(run.profiler, profile_out)
        if ui is not None:
            ui.shutdown()
        glfw.destroy_window(window)
        return {"frames": len(frame_ms), "median_frame_ms": float(np.median(frame_ms)) if frame_ms else None,
                "stats": run.profiler.stats()}
    finally:
        glfw.terminate()


def _export(profiler: FrameProfiler, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    profiler.to_csv(folder / "profile.csv")
    profiler.plot_png(folder / "frame_times.png")


def _save_screen(gl: moderngl.Context, path: Path) -> None:
    from PIL import Image

    fbo = gl.detect_framebuffer()
    w, h = fbo.size
    rgb = np.frombuffer(fbo.read(components=3), np.uint8).reshape(h, w, 3)[::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


__all__ = ["Compositor", "DemoConfig", "MODE_LABELS", "MODES", "has_display", "run_headless", "run_window"]
