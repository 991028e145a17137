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
from dataclasses import dataclass, field, replace
from pathlib import Path

import moderngl
import numpy as np

from .hardware import ChoiceError, RuntimeChoice, choose
from .pipeline import (
    MODE_LABELS,
    MODES,
    MULTIPLIER_LABELS,
    MULTIPLIERS,
    DemoFrame,
    DemoPipeline,
    mode_pass,
    multiplier_name,
)
from .profiler import DeferredGpuTimer, FrameProfiler
from .scene import Scene
from .shaderlib import ShaderLibrary
from .views import GBUFFER_VIEWS


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
    debug_view: str = "none"  # see views.DEBUG_VIEWS
    loupe: bool = False  # the zoom loupe (window: at the pointer; headless: the centre)
    free_camera: bool = False  # window: start with the free-flying camera
    # frame-generation modes: generated frames per rendered one (1 to 3: 2x to 4x), or "auto" (the plugin
    # chooses per frame from the measured render time, towards target_fps presented frames per second)
    generated_frames: int | str = 1
    target_fps: float = 120.0
    # where the plugin runs and with what (hardware.choose: --device, --preset, --backend, --network);
    # the default is the CPU with torch and the default network
    runtime: RuntimeChoice = field(default_factory=RuntimeChoice)


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
    its times into the profiler (GPU times arrive a few frames late).

    Profile columns, each a separate cost (none contains another): ``shadow``, ``gbuffer``,
    ``shading`` (the rendered or native frame), ``next_gbuffer`` (the G-buffers of the frame
    to extrapolate), ``readback`` (G-buffers to host memory for the plugin), the plugin pass
    (e.g. ``stss``: upscaling, and ``stss_generate``: the extrapolated frame, both timed by
    the plugin during the rendered frame), ``compare`` (the native frame rendered for the
    wipe / side by side), ``debug`` (a debug view), ``present`` (uploads and composition) and,
    in a window, ``overlay``."""

    def __init__(self, gl: moderngl.Context, scene: Scene, cfg: DemoConfig):
        self.gl, self.cfg = gl, cfg
        self.shaders = ShaderLibrary(gl)
        self.profiler = FrameProfiler()
        self.timer = DeferredGpuTimer(gl, profiler=self.profiler)  # GPU times arrive frames late
        self.pipeline = DemoPipeline(gl, scene, cfg.display_size, cfg.mode, cfg.quality, cfg.fps,
                                     self.shaders, scope=self.timer.scope, runtime=cfg.runtime,
                                     generated_frames=cfg.generated_frames, target_fps=cfg.target_fps)
        self.comp = Compositor(gl, self.shaders, cfg.display_size)

    def switch_scene(self, scene: Scene) -> None:
        """Replace the scene (a new renderer and plugin context; same mode and quality)."""
        old = self.pipeline
        self.pipeline = DemoPipeline(self.gl, scene, self.cfg.display_size, old.mode, old.quality, self.cfg.fps,
                                     self.shaders, scope=self.timer.scope, runtime=old.runtime,
                                     generated_frames=old.multiplier, target_fps=old.target_fps)
        old.close()

    def step(self, i: int, t: float, fbo, compare: str, split: float, debug_view: str = "none",
             loupe=None, zoom: int = 4, dt: float | None = None) -> DemoFrame:
        """Display frame ``i`` at scene time ``t`` into ``fbo``; ``dt``: scene seconds since
        the previous display frame (default ``1 / fps``; 0 while paused)."""
        dt = 1.0 / self.cfg.fps if dt is None else dt
        prof, timer, p = self.profiler, self.timer, self.pipeline
        prof.begin_frame(i, p.kind(i), p.distance(i), animation_s=t)
        frame = p.frame(i, t, dt, gbuffers=debug_view in GBUFFER_VIEWS)
        for name, ms in frame.cpu_ms.items():  # the plugin's own timings
            prof.add(name, cpu_ms=ms)
        for shown, gpu_ms in frame.gpu_late:  # its GPU times (CUDA), for frames a dispatch or two back
            prof.add_gpu_results((shown, gpu_ms))
        compare = compare if p.mode != "native" else "off"
        dbg = None
        if debug_view != "none":
            with timer.scope("debug"):
                dbg = p.debug_image(debug_view, frame)
                if dbg is not None:
                    self.comp.upload("debug", dbg)
        if compare != "off" and dbg is None:
            with timer.scope("compare"):
                self.comp.upload("native", p.native(i, t, dt))
        with timer.scope("present"):
            self.comp.upload("output", frame.output)
            self.comp.compose(fbo, compare, split, dbg is not None, loupe, zoom)
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
    cfg = replace(cfg, runtime=cfg.runtime.with_gl(gl.info["GL_VENDOR"], gl.info["GL_RENDERER"]))
    run = _Run(gl, scene, cfg)
    images = []
    iterator = range(cfg.frames)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, unit="frame", desc=f"demo {scene.name} {cfg.mode}", dynamic_ncols=True)
    last = time.perf_counter()
    loupe = (0.5, 0.5) if cfg.loupe else None
    for i in iterator:
        run.step(i, i / cfg.fps, fbo, cfg.compare, cfg.split, cfg.debug_view, loupe)
        rgb = np.frombuffer(target.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]
        Image.fromarray(rgb).save(frames_dir / f"{i:06d}.png")
        images.append(np.ascontiguousarray(rgb))
        now = time.perf_counter()
        run.end((now - last) * 1e3)
        last = now
    render_size = run.pipeline.render_size
    last_generated, generating = run.pipeline.last_generated, bool(run.pipeline.generated_frames)
    run.finish()
    video = out / "demo.mp4"
    iio.imwrite(video, np.stack(images), fps=min(cfg.fps, 30.0), codec="libx264", macro_block_size=2,
                plugin="pyav" if _has_pyav() else "FFMPEG")
    run.profiler.to_csv(out / "profile.csv")
    run.profiler.plot_png(out / "frame_times.png")
    summary = {"frames": frames_dir, "video": video, "profile": out / "profile.csv",
               "plot": out / "frame_times.png", "stats": run.profiler.stats(), "sheet": None, "table": None,
               "runtime": cfg.runtime, "note": run.pipeline.note, "generated_frames": last_generated,
               "multiplier": multiplier_name(cfg.generated_frames) if generating else None}
    if cfg.sheet_frames:
        import plugin

        from .compare import compare_passes, format_table, save_sheet

        # STSS alone, with its outputs accumulated and with its learned accumulation side by side
        passes = ("native", "bilinear", "temporal", "stss", "stss_taa", "stss_recurrent")
        spec = MODES[cfg.mode]  # None: native rendering
        chosen = mode_pass(cfg.mode)
        if chosen and chosen not in passes and plugin.capabilities()["passes"][chosen]["latency_frames"] == 0:
            passes += (chosen,)  # the mode the demo ran, when the sheet can show it (no latency)
        # at the multiplier the demo ran ("auto": its last choice), the same display frame rate
        g = max(1, int(summary["generated_frames"]) if spec and spec[1] else 1)
        comparison = compare_passes(gl, scene, passes=passes,
                                    frames=cfg.sheet_frames, render_size=render_size,
                                    display_size=cfg.display_size, fps=cfg.fps / (g + 1), progress=progress,
                                    generated_frames=g)
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


@dataclass
class InputSnapshot:
    """The keyboard and mouse of one frame, as the demo uses them."""

    quit: bool = False  # Esc
    toggle_pause: bool = False  # Space (pressed since the last poll)
    move: tuple[float, float, float] = (0.0, 0.0, 0.0)  # right (D-A), up (E-Q), forward (W-S)
    fast: bool = False  # Shift
    look_px: tuple[float, float] = (0.0, 0.0)  # pointer motion while the right button is held
    cursor: tuple[float, float] | None = None  # pointer in the window, 0..1, y down
    left_drag: bool = False  # left button held over the scene (not over a panel)


class WindowInput:
    """Polls a glfw window's keys and mouse once a frame. Sticky keys: a key pressed and
    released between two polls still counts. ``keyboard`` / ``mouse`` False (an ImGui text
    field or panel has them) leave the demo's controls alone."""

    def __init__(self, glfw, window):
        self.glfw, self.window = glfw, window
        glfw.set_input_mode(window, glfw.STICKY_KEYS, True)
        glfw.set_input_mode(window, glfw.STICKY_MOUSE_BUTTONS, True)
        self._down: set[int] = set()
        self._cursor_px: tuple[float, float] | None = None

    def _pressed(self, key: int) -> bool:
        return self.glfw.get_key(self.window, key) == self.glfw.PRESS

    def _edge(self, key: int) -> bool:
        now = self._pressed(key)
        was = key in self._down
        (self._down.add if now else self._down.discard)(key)
        return now and not was

    def poll(self, keyboard: bool = True, mouse: bool = True) -> InputSnapshot:
        g, win = self.glfw, self.window
        snap = InputSnapshot()
        esc, space = self._edge(g.KEY_ESCAPE), self._edge(g.KEY_SPACE)
        if keyboard:
            k = self._pressed
            snap.quit, snap.toggle_pause = esc, space
            snap.move = (float(k(g.KEY_D)) - float(k(g.KEY_A)), float(k(g.KEY_E)) - float(k(g.KEY_Q)),
                         float(k(g.KEY_W)) - float(k(g.KEY_S)))
            snap.fast = k(g.KEY_LEFT_SHIFT) or k(g.KEY_RIGHT_SHIFT)
        x, y = g.get_cursor_pos(win)
        ww, wh = g.get_window_size(win)
        prev, self._cursor_px = self._cursor_px, (x, y)
        snap.cursor = (min(max(x / max(ww, 1), 0.0), 1.0), min(max(y / max(wh, 1), 0.0), 1.0))
        if mouse:
            if g.get_mouse_button(win, g.MOUSE_BUTTON_RIGHT) == g.PRESS and prev is not None:
                snap.look_px = (x - prev[0], y - prev[1])
            snap.left_drag = g.get_mouse_button(win, g.MOUSE_BUTTON_LEFT) == g.PRESS
        return snap


class SceneSources:
    """The scenes the window offers: the built-in ones and every scene file loaded so far,
    by the name shown in the scene list."""

    def __init__(self, current: Scene, source: str):
        from .scenes import BUILTIN_SCENES

        self._source = {name: name for name in BUILTIN_SCENES}
        self._source[current.name] = source

    @property
    def names(self) -> list[str]:
        return list(self._source)

    def load(self, name_or_path: str) -> Scene:
        """A listed scene by name, or a scene file (then listed); ValueError (with the file
        and the reason) when it cannot be loaded."""
        from .scenes import load_scene

        key = str(name_or_path).strip()
        if not key:
            raise ValueError("scene file: expected a path to a .gltf/.glb/.obj/.json file, got an empty path")
        scene = load_scene(self._source.get(key, os.path.expanduser(key)))
        if key not in self._source:
            self._source[scene.name] = os.path.expanduser(key)
        return scene


def run_window(scene: Scene, cfg: DemoConfig, screenshot: Path | None = None, overlay: bool = True,
               profile_out: Path | None = None) -> dict:
    """Open a glfw window with the controls and the frame-time overlay; run until closed (Esc)
    or ``cfg.frames`` frames (if > 0). ``screenshot``: save the last frame (PNG);
    ``profile_out``: a folder for the profile CSV and plot at exit (also on "Export").

    Keys: Space pauses the scene (frames go on, so temporal passes converge and the free
    camera still flies), Esc quits, F1 hides the overlay; with the free camera, W/A/S/D fly,
    Q/E go down/up, Shift is faster, and dragging with the right mouse button looks around.
    Dragging with the left button over the scene moves the wipe divider."""
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
        gl_names = (gl.info["GL_VENDOR"], gl.info["GL_RENDERER"])
        cfg = replace(cfg, runtime=cfg.runtime.with_gl(*gl_names))
        run = _Run(gl, scene, cfg)
        sources = SceneSources(scene, cfg.scene)
        from .uistate import DemoUiState

        s = DemoUiState(scene=scene.name, scenes=sources.names, pass_name=cfg.mode, passes=list(MODES),
                        pass_labels=dict(MODE_LABELS), quality=cfg.quality, compare=cfg.compare, split=cfg.split,
                        debug_view=cfg.debug_view, loupe=cfg.loupe, free_camera=cfg.free_camera,
                        scene_path=os.getcwd() + os.sep, frame_multiplier=multiplier_name(cfg.generated_frames),
                        multipliers=list(MULTIPLIERS), multiplier_labels=dict(MULTIPLIER_LABELS),
                        target_fps=cfg.target_fps)
        _show_runtime(s, run.pipeline)
        ui = None
        if overlay:
            from .overlay import Overlay

            ui = Overlay(window, run.profiler, s)
        inp = WindowInput(glfw, window)
        index, t = 0, 0.0
        frame_ms: list[float] = []
        look = np.zeros(2)
        flying = False
        last = time.perf_counter()
        while not glfw.window_should_close(window):
            glfw.poll_events()
            fb_w, fb_h = glfw.get_framebuffer_size(window)
            if fb_w == 0 or fb_h == 0:  # minimised
                glfw.wait_events()
                continue
            # what the user changed in the last overlay frame
            if s.load_scene_requested or ("scene" in s.changed and s.scene != run.pipeline.scene.name):
                key = s.scene_path if s.load_scene_requested else s.scene
                s.load_scene_requested = False
                try:
                    new_scene = sources.load(key)
                except ValueError as e:  # SceneFileError, UnknownSceneError: one line naming the file
                    s.status = f"could not load: {e}"
                    s.scene = run.pipeline.scene.name
                else:
                    run.switch_scene(new_scene)
                    s.scenes, s.scene, s.status = sources.names, new_scene.name, f"scene: {new_scene.name}"
                    glfw.set_window_title(window, f"STSS demo - {new_scene.name}")
                    index, t, flying = 0, 0.0, False
            elif s.changed & {"pass_name", "quality"}:
                run.pipeline.set_mode(s.pass_name, s.quality)
                _show_runtime(s, run.pipeline)
            elif s.changed & {"device", "backend", "network"}:
                s.status = _switch_runtime(s, run.pipeline, gl_names)
            elif s.changed & {"frame_multiplier", "target_fps"}:
                run.pipeline.set_multiplier(MULTIPLIERS[s.frame_multiplier], s.target_fps)
                s.status = f"frame generation {MULTIPLIER_LABELS[s.frame_multiplier]}" + (
                    f", target {s.target_fps:.0f} fps" if s.frame_multiplier == "auto" else "")
            if s.export_requested:
                s.export_requested = False
                if profile_out is None:
                    s.status = "export: no output folder (--out)"
                else:
                    _export(run.profiler, profile_out)
                    s.status = f"exported {profile_out / 'profile.csv'} and frame_times.png"
            keyboard = ui is None or not ui.wants_keyboard
            mouse = ui is None or not ui.wants_mouse
            snap = inp.poll(keyboard, mouse)
            if snap.quit:
                break
            if snap.toggle_pause:
                s.paused = not s.paused
            if snap.left_drag and s.compare == "wipe" and snap.cursor is not None:
                s.split = snap.cursor[0]
            # the free-flying camera: steered before each frame the pipeline renders
            p = run.pipeline
            if s.free_camera and not flying:
                from .freecam import FreeCamera

                eye, target = p.scene.camera.eye_target(t)
                p.free_camera = FreeCamera(eye, target, fps=cfg.fps, start=index)
                flying, look = True, np.zeros(2)
            elif flying and not s.free_camera:
                p.free_camera, flying = None, False
                p.reset_history()  # back on the scripted path: a camera jump
            if flying:
                look += snap.look_px
                if p.kind(index) != "generated":
                    p.free_camera.steer(index, snap.move, look, snap.fast)
                    look = np.zeros(2)
            loupe = snap.cursor if s.loupe else None
            dt = 0.0 if s.paused else 1.0 / cfg.fps
            frame = run.step(index, t, gl.detect_framebuffer(), s.compare, s.split, s.debug_view, loupe,
                             s.loupe_zoom, dt)
            if frame.kind == "rendered":  # what the multiplier generates now ("auto": the plugin's choice)
                s.generating = p.last_generated if p.generated_frames else 0
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
            t += dt
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
                "stats": run.profiler.stats(), "scene": run.pipeline.scene.name, "status": s.status,
                "runtime": run.pipeline.runtime, "note": run.pipeline.note,
                "pass_name": run.pipeline.pass_name or "native",
                "generated_frames": run.pipeline.last_generated,
                "multiplier": multiplier_name(run.pipeline.multiplier) if run.pipeline.generated_frames else None}
    finally:
        glfw.terminate()


def _show_runtime(s, pipeline: DemoPipeline) -> None:
    """Put what the plugin runs on, why, and the choices offered into the panel's state."""
    from .hardware import offered

    rt = pipeline.runtime
    s.device, s.backend, s.network = rt.device, rt.backend, rt.network
    s.devices, s.backends, s.networks = offered(rt.device)
    s.runtime = rt.headline(pipeline.pass_name or "native")
    s.runtime_reasons = list(rt.reasons) + ([pipeline.note] if pipeline.note else [])


def _switch_runtime(s, pipeline: DemoPipeline, gl_names: tuple[str, str]) -> str:
    """Apply the device / back-end / network picked in the panel; the status line says what
    happened (on failure the previous choice stays)."""
    import plugin

    old = pipeline.runtime
    backend = s.backend if "device" not in s.changed else "auto"  # a new device: its best back-end
    preset = old.preset if s.device == "cpu" else "default"  # the CPU preset is for the CPU
    try:
        rt = choose(s.device, backend, s.network, preset, old.display_size, old.compare,
                    window=True).with_gl(*gl_names)
        pipeline.set_runtime(rt)
        rt.apply_threads()
    except (ChoiceError, plugin.PluginError, ValueError, RuntimeError) as e:  # the runtime's: RuntimeErrors
        pipeline.set_runtime(old)
        _show_runtime(s, pipeline)
        return f"could not switch: {e}"
    _show_runtime(s, pipeline)
    return f"now on {rt.device} / {rt.backend} ({rt.compute}), network {rt.network}"


def _export(profiler: FrameProfiler, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    profiler.to_csv(folder / "profile.csv")
    profiler.plot_png(folder / "frame_times.png")


def _save_screen(gl: moderngl.Context, path: Path) -> None:
    from PIL import Image

    fbo = gl.detect_framebuffer()
    w, h = fbo.size
    rgb = np.frombuffer(fbo.read(components=3), np.uint8).reshape(h, w, 3)[::-1]
    gl.error  # clears the GL_INVALID_OPERATION moderngl's read of the default framebuffer leaves on Mesa
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


__all__ = ["Compositor", "DemoConfig", "InputSnapshot", "MODE_LABELS", "MODES", "SceneSources", "WindowInput",
           "has_display", "run_headless", "run_window"]
