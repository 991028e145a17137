"""The demo: a scene rendered natively and at low resolution, shown as a split-screen wipe.

Left of the divider: native rendering at display resolution. Right: the low-resolution
render (jittered, as handed to the plugin) upscaled bilinearly. Windowed with glfw when a
display exists, otherwise headless: PNG frames and an MP4 in an output folder.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import moderngl
import numpy as np

from stss_runtime.conventions import jitter_offset_px, jitter_phase_count, texture_lod_bias

from .renderer import Renderer
from .scene import Scene
from .shaderlib import ShaderLibrary


@dataclass(frozen=True)
class DemoConfig:
    scene: str = "traffic"
    frames: int = 120  # headless: frames to write; windowed: 0 = run until closed
    render_size: tuple[int, int] = (480, 270)
    display_size: tuple[int, int] = (960, 540)
    fps: float = 60.0
    split: float = 0.5  # divider position, fraction of the width


class SplitView:
    """Composes native and low-resolution colour into ``fbo`` through the display transform."""

    def __init__(self, ctx: moderngl.Context, shaders: ShaderLibrary):
        self.ctx = ctx
        self.prog = shaders.get("present.glsl")
        self.vao = ctx.vertex_array(self.prog, [])

    def _draw(self, tex: moderngl.Texture, size):
        # bilinear here; the renderer itself reads its targets with texelFetch (no filtering)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.use(0)
        self.prog["u_source"].value = 0
        self.prog["u_viewport"].value = (0.0, 0.0, float(size[0]), float(size[1]))
        self.vao.render(moderngl.TRIANGLES, vertices=3)

    def compose(self, fbo: moderngl.Framebuffer, native: moderngl.Texture,
                lowres: moderngl.Texture, split: float) -> None:
        ctx = self.ctx
        w, h = fbo.size
        fbo.use()
        ctx.viewport = (0, 0, w, h)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        x = int(round(split * w))
        ctx.scissor = (0, 0, x, h)
        self._draw(native, (w, h))
        ctx.scissor = (x, 0, w - x, h)
        self._draw(lowres, (w, h))
        ctx.scissor = (max(x - 1, 0), 0, 2, h)
        fbo.clear(1.0, 1.0, 1.0, 1.0)
        ctx.scissor = None


class DemoFrameSource:
    """Renders both halves of the demo for display frame ``index``."""

    def __init__(self, ctx: moderngl.Context, scene: Scene, cfg: DemoConfig):
        self.ctx = ctx
        self.cfg = cfg
        self.shaders = ShaderLibrary(ctx)
        self.renderer = Renderer(ctx, scene, self.shaders)
        self.view = SplitView(ctx, self.shaders)
        self.phases = jitter_phase_count(cfg.render_size[0], cfg.display_size[0])
        self.bias = texture_lod_bias(cfg.render_size[0], cfg.display_size[0])

    def draw(self, index: int, fbo: moderngl.Framebuffer, t: float | None = None) -> dict[str, float]:
        dt = 1.0 / self.cfg.fps
        t = index * dt if t is None else t
        r = self.renderer
        native, _ = r.render(t, t - dt, self.cfg.display_size)
        times = {f"native_{k}": v for k, v in r.last_times.gpu_ms.items()}
        low, _ = r.render(t, t - dt, self.cfg.render_size,
                          jitter_offset_px(index, self.phases), self.bias)
        times.update({f"low_{k}": v for k, v in r.last_times.gpu_ms.items() if k != "shadow"})
        self.view.compose(fbo, native.color, low.color, self.cfg.split)
        return times


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_headless(scene: Scene, cfg: DemoConfig, out: Path, ctx: moderngl.Context,
                 progress: bool = True) -> dict:
    """Write ``frames/NNNNNN.png`` and ``demo.mp4`` into ``out``; returns a summary."""
    import imageio.v3 as iio
    from PIL import Image

    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    w, h = cfg.display_size
    target = ctx.texture((w, h), 4)
    fbo = ctx.framebuffer(color_attachments=[target])
    src = DemoFrameSource(ctx, scene, cfg)
    images = []
    times: dict[str, list[float]] = {}
    iterator = range(cfg.frames)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, unit="frame", desc=f"demo {scene.name}", dynamic_ncols=True)
    for i in iterator:
        for k, v in src.draw(i, fbo).items():
            times.setdefault(k, []).append(v)
        rgb = np.frombuffer(target.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]
        Image.fromarray(rgb).save(frames_dir / f"{i:06d}.png")
        images.append(np.ascontiguousarray(rgb))
    video = out / "demo.mp4"
    iio.imwrite(video, np.stack(images), fps=cfg.fps, codec="libx264", macro_block_size=2,
                plugin="pyav" if _has_pyav() else "FFMPEG")
    return {"frames": frames_dir, "video": video,
            "median_ms": {k: float(np.median(v[1:] if len(v) > 1 else v)) for k, v in times.items()}}


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def run_window(scene: Scene, cfg: DemoConfig, screenshot: Path | None = None) -> dict:
    """Open a glfw window and animate until closed (Esc) or ``cfg.frames`` frames (if > 0)."""
    import glfw

    if not glfw.init():
        raise RuntimeError("glfw could not initialise (is DISPLAY set to a running X server?)")
    try:
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 4)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        w, h = cfg.display_size
        window = glfw.create_window(w, h, f"STSS demo - {scene.name} (native | bilinear from "
                                          f"{cfg.render_size[0]}x{cfg.render_size[1]})", None, None)
        if not window:
            raise RuntimeError("glfw could not open a window with OpenGL 4.3 core")
        glfw.make_context_current(window)
        glfw.swap_interval(0)
        ctx = moderngl.create_context(require=430)
        src = DemoFrameSource(ctx, scene, cfg)
        state = {"paused": False, "t": 0.0, "split": cfg.split}

        def on_key(win, key, scancode, action, mods):
            if action != glfw.PRESS:
                return
            if key in (glfw.KEY_ESCAPE, glfw.KEY_Q):
                glfw.set_window_should_close(win, True)
            elif key == glfw.KEY_SPACE:
                state["paused"] = not state["paused"]

        glfw.set_key_callback(window, on_key)
        index = 0
        frame_ms = []
        last = time.perf_counter()
        while not glfw.window_should_close(window):
            fb_w, fb_h = glfw.get_framebuffer_size(window)
            if fb_w == 0 or fb_h == 0:  # minimised
                glfw.wait_events()
                continue
            if glfw.get_mouse_button(window, glfw.MOUSE_BUTTON_LEFT) == glfw.PRESS:
                mx, _ = glfw.get_cursor_pos(window)
                win_w, _ = glfw.get_window_size(window)
                state["split"] = min(max(mx / max(win_w, 1), 0.0), 1.0)
            src.cfg = DemoConfig(**{**cfg.__dict__, "split": state["split"]})
            src.draw(index, ctx.detect_framebuffer(), t=state["t"])
            if cfg.frames and index + 1 >= cfg.frames and screenshot is not None:
                _save_screen(ctx, screenshot)
            glfw.swap_buffers(window)
            glfw.poll_events()
            now = time.perf_counter()
            frame_ms.append((now - last) * 1e3)
            last = now
            if not state["paused"]:
                state["t"] += 1.0 / cfg.fps
                index += 1
            if cfg.frames and index >= cfg.frames:
                break
        glfw.destroy_window(window)
        return {"frames": index, "median_frame_ms": float(np.median(frame_ms)) if frame_ms else None}
    finally:
        glfw.terminate()


def _save_screen(ctx: moderngl.Context, path: Path) -> None:
    from PIL import Image

    fbo = ctx.detect_framebuffer()
    w, h = fbo.size
    rgb = np.frombuffer(fbo.read(components=3), np.uint8).reshape(h, w, 3)[::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
