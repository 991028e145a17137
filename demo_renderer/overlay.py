"""The interactive demo's ImGui overlay: a "Controls" panel and a "Frame times" panel.

This is the only module of the project that imports imgui (imgui-bundle 1.93, its C++ glfw +
OpenGL 3 backends, ImPlot). ``imgui_bundle`` is imported before ``glfw`` so that pyGLFW loads
imgui-bundle's own ``libglfw`` and both share one GLFW state (a window made by another copy
of the library would be invalid for the C++ backend); :func:`import_glfw` does that for the
demo.

Render loop (the GL context of ``window`` current; exact order)::

    glfw = import_glfw()                      # before any other `import glfw`
    ... create the window, make its context current, install the demo's own glfw callbacks
    overlay = Overlay(window, profiler, state)          # chains to callbacks set before it
    while not glfw.window_should_close(window):
        glfw.poll_events()
        overlay.frame()                       # build the UI, update `state` (+ state.changed)
        if state.changed: ...react (scene, quality, ...); if state.export_requested: export,
            then set it back to False
        if not overlay.wants_mouse: ...camera / wipe-drag input
        ... draw the scene into the default framebuffer
        overlay.render()                      # ImGui draw data on top (default framebuffer)
        glfw.swap_buffers(window)
    overlay.shutdown()                        # before glfw.destroy_window / terminate

``frame()`` must be called once per frame before ``render()``; ``render()`` without a new
``frame()`` redraws nothing new. When ``state.show_overlay`` is False the panels are not built
(F1 toggles it) and ``render()`` draws nothing.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import time

import imgui_bundle  # noqa: F401  (first: points pyGLFW at imgui-bundle's libglfw)
import numpy as np
from imgui_bundle import imgui, implot

from demo_renderer.profiler import KINDS, FrameProfiler
from demo_renderer.uistate import DemoUiState
from demo_renderer.views import DEBUG_LABELS, DEBUG_VIEWS

#: Windows narrower than this get the compact layout (:meth:`Overlay.compact`).
COMPACT_WIDTH = 800
QUALITIES = ["NATIVE_AA", "QUALITY", "BALANCED", "PERFORMANCE", "ULTRA_PERFORMANCE"]
COMPARES = ["wipe", "side_by_side", "off"]

#: Passes shown first in the per-pass bars (others follow in the order the profiler saw them).
#: Passes shown first in the per-pass bars, in this order; the plugin passes
#: ("stss", "stss_generate", "bilinear", ...) go after "readback".
PASS_ORDER = ["shadow", "gbuffer", "shading", "next_gbuffer", "readback", "stss", "stss_generate",
              "compare", "debug", "present", "overlay"]
PASS_LABELS = {"gbuffer": "G-buffer", "shading": "shading", "shadow": "shadow", "next_gbuffer": "G-buf next",
               "readback": "readback", "stss": "STSS", "stss_generate": "STSS gen", "compare": "compare",
               "debug": "debug view", "present": "present", "overlay": "overlay"}
#: Scene files the "Browse" list offers.
SCENE_SUFFIXES = (".gltf", ".glb", ".obj", ".json")


def scene_file_entries(folder: str) -> tuple[list[str], list[str]]:
    """Sub-folders and scene files (:data:`SCENE_SUFFIXES`) of ``folder``, sorted, hidden
    ones left out; ([], []) when it cannot be listed."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name.lower())
    except OSError:
        return [], []
    dirs, files = [], []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir():
                dirs.append(e.name)
            elif os.path.splitext(e.name)[1].lower() in SCENE_SUFFIXES:
                files.append(e.name)
        except OSError:
            continue
    return dirs, files


def import_glfw():
    """``import glfw`` such that it uses imgui-bundle's libglfw (the one the C++ backend
    uses); raises if glfw was already imported with another library."""
    import glfw

    _check_shared_glfw(glfw)
    return glfw


def _check_shared_glfw(glfw) -> None:
    want = os.environ.get("PYGLFW_LIBRARY")
    lib = getattr(getattr(glfw, "_glfw", None), "_name", None)
    if want and lib and os.path.realpath(want) != os.path.realpath(lib):
        raise RuntimeError(
            f"glfw was imported before imgui_bundle and loaded {lib}, not imgui-bundle's {want}: "
            "the ImGui backend would see a different GLFW. Import demo_renderer.overlay (or "
            "imgui_bundle) before the first `import glfw`.")


def _window_address(window) -> int:
    if isinstance(window, int):
        return window
    addr = ctypes.cast(window, ctypes.c_void_p).value
    if not addr:
        raise ValueError("window is a NULL glfw window")
    return addr


_RGBA = {
    "cpu": imgui.ImVec4(0.35, 0.70, 1.00, 1.0),
    "gpu": imgui.ImVec4(0.45, 0.90, 0.40, 1.0),
    "over": imgui.ImVec4(1.00, 0.35, 0.30, 1.0),
    "rendered": imgui.ImVec4(0.35, 0.70, 1.00, 1.0),
    "generated": imgui.ImVec4(1.00, 0.65, 0.20, 1.0),
    "native": imgui.ImVec4(0.45, 0.90, 0.40, 1.0),
    "budget": imgui.ImVec4(1.00, 0.30, 0.30, 1.0),
    "status": imgui.ImVec4(1.00, 0.85, 0.40, 1.0),
    "runtime": imgui.ImVec4(0.55, 0.85, 1.00, 1.0),
    "dim": imgui.ImVec4(0.70, 0.70, 0.70, 1.0),
}


class Overlay:
    """ImGui + ImPlot panels over a glfw window, with imgui-bundle's C++ backends.

    ``window``: the glfw window (a pyGLFW pointer or its integer address); its GL context
    must be current (3.3 core or later). ``profiler``: the :class:`FrameProfiler` shown.
    ``state``: the :class:`DemoUiState` edited. ``install_callbacks``: let the backend install
    its glfw input callbacks (they chain to callbacks installed *before*; callbacks the demo
    installs *after* replace them and the UI gets no input). ``ctx``: an optional moderngl
    context; given, ``render()`` binds ``ctx.screen`` first. ``plot_seconds``: span of the
    frame-time plot and of the statistics shown. ``font_scale``: UI scale (1 = 13 px font).

    ``last_cpu_ms``: CPU time of the last ``frame()`` + ``render()`` (also ``last_build_ms``,
    ``last_render_ms``). Record it in the profiler as a pass if wanted, e.g.
    ``profiler.add("overlay", cpu_ms=overlay.last_cpu_ms)`` after ``render()``.
    """

    def __init__(self, window, profiler: FrameProfiler, state: DemoUiState | None = None, *,
                 install_callbacks: bool = True, ctx=None, glsl_version: str = "#version 330 core",
                 plot_seconds: float = 5.0, font_scale: float = 1.0):
        if "glfw" in sys.modules:
            _check_shared_glfw(sys.modules["glfw"])
        self.window = window
        self.profiler = profiler
        self.state = state if state is not None else DemoUiState()
        self.ctx = ctx
        self.plot_seconds = float(plot_seconds)
        self.last_cpu_ms = 0.0
        self.last_build_ms = 0.0
        self.last_render_ms = 0.0
        self._built = False
        self._browsing = False
        self._alive = False
        self._imgui_ctx = imgui.create_context()
        self._implot_ctx = implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename("")   # no imgui.ini in the working directory
        imgui.style_colors_dark()
        style = imgui.get_style()
        style.window_rounding = 4.0
        style.font_scale_main = float(font_scale)
        if not imgui.backends.glfw_init_for_opengl(_window_address(window), bool(install_callbacks)):
            raise RuntimeError("imgui glfw backend: glfw_init_for_opengl failed")
        if not imgui.backends.opengl3_init(glsl_version):
            imgui.backends.glfw_shutdown()
            raise RuntimeError(f"imgui OpenGL3 backend: opengl3_init({glsl_version!r}) failed")
        self._alive = True
        self._budget_line = np.array([profiler.budget_ms], np.float64)

    # ------------------------------------------------------------------ per frame
    @property
    def wants_mouse(self) -> bool:
        """True while the pointer is over a panel or dragging a widget: ignore mouse input."""
        return self._alive and bool(imgui.get_io().want_capture_mouse)

    @property
    def wants_keyboard(self) -> bool:
        return self._alive and bool(imgui.get_io().want_capture_keyboard)

    def frame(self) -> None:
        """Start a new ImGui frame and build the panels (updates ``state``)."""
        t0 = time.perf_counter()
        st = self.state
        st.changed.clear()
        imgui.backends.opengl3_new_frame()
        imgui.backends.glfw_new_frame()
        imgui.new_frame()
        if imgui.is_key_pressed(imgui.Key.f1, False):
            st.show_overlay = not st.show_overlay
            st.changed.add("show_overlay")
        if st.show_overlay:
            self._controls()
            self._frame_times()
        imgui.render()
        self._built = True
        self.last_build_ms = (time.perf_counter() - t0) * 1000.0
        self.last_render_ms = 0.0
        self.last_cpu_ms = self.last_build_ms

    def render(self) -> None:
        """Draw the frame's ImGui draw data onto the default framebuffer (after the scene)."""
        if not self._built:
            return
        t0 = time.perf_counter()
        if self.ctx is not None:
            self.ctx.screen.use()
        imgui.backends.opengl3_render_draw_data(imgui.get_draw_data())
        self.last_render_ms = (time.perf_counter() - t0) * 1000.0
        self.last_cpu_ms = self.last_build_ms + self.last_render_ms

    def shutdown(self) -> None:
        """Release the backends and contexts (the window and its GL context still alive)."""
        if not self._alive:
            return
        self._alive = False
        imgui.backends.opengl3_shutdown()
        imgui.backends.glfw_shutdown()
        implot.destroy_context(self._implot_ctx)
        imgui.destroy_context(self._imgui_ctx)

    # ------------------------------------------------------------------ widgets
    def _combo(self, label: str, name: str, options, labels: dict[str, str] | None = None) -> None:
        options = list(options)
        if not options:
            return
        cur = getattr(self.state, name)
        idx = options.index(cur) if cur in options else 0
        ch, idx = imgui.combo(label, idx, [labels.get(o, o) for o in options] if labels else options)
        if ch and options[idx] != cur:
            setattr(self.state, name, options[idx])
            self.state.changed.add(name)

    def _checkbox(self, label: str, name: str) -> None:
        ch, v = imgui.checkbox(label, bool(getattr(self.state, name)))
        if ch:
            setattr(self.state, name, v)
            self.state.changed.add(name)

    @staticmethod
    def compact() -> bool:
        """A small window (under 800 px wide, e.g. the CPU preset's 640x360): the controls start
        collapsed, the frame-time panel is narrower and its per-pass table folded, so the
        picture stays visible."""
        return imgui.get_io().display_size.x < COMPACT_WIDTH

    def _controls(self) -> None:
        st = self.state
        if self.compact():
            imgui.set_next_window_collapsed(True, imgui.Cond_.first_use_ever)
        imgui.set_next_window_pos(imgui.ImVec2(8, 8), imgui.Cond_.first_use_ever)
        imgui.set_next_window_bg_alpha(0.85)
        expanded, _ = imgui.begin("Controls", None, imgui.WindowFlags_.always_auto_resize)
        if expanded:
            imgui.push_item_width(190)
            self._combo("scene", "scene", st.scenes or ([st.scene] if st.scene else []))
            self._scene_file()
            self._combo("pass", "pass_name", st.passes or ([st.pass_name] if st.pass_name else []))
            if st.pass_labels.get(st.pass_name) and imgui.is_item_hovered():
                imgui.set_tooltip(st.pass_labels[st.pass_name])
            self._combo("quality", "quality", QUALITIES)
            self._combo("compare", "compare", COMPARES)
            if st.compare != "off":
                ch, v = imgui.slider_float("split", float(st.split), 0.0, 1.0, "%.2f")
                if ch:
                    st.split = v
                    st.changed.add("split")
            self._combo("debug view", "debug_view", DEBUG_VIEWS, DEBUG_LABELS)
            self._checkbox("loupe", "loupe")
            if st.loupe:
                imgui.same_line()
                imgui.push_item_width(120)
                ch, v = imgui.slider_int("##zoom", int(st.loupe_zoom), 2, 16, "zoom %dx")
                imgui.pop_item_width()
                if ch:
                    st.loupe_zoom = v
                    st.changed.add("loupe_zoom")
            self._checkbox("paused (Space)", "paused")
            imgui.same_line()
            self._checkbox("free camera", "free_camera")
            if st.free_camera:
                imgui.text_disabled("WASD fly, Q/E down/up, Shift fast, right-drag look")
            imgui.pop_item_width()
            if imgui.button("Export CSV + PNG"):
                st.export_requested = True
                st.changed.add("export_requested")
            imgui.same_line()
            imgui.text_disabled("F1: hide  Esc: quit")
            if st.status:
                imgui.push_text_wrap_pos(380)
                imgui.text_colored(_RGBA["status"], st.status)
                imgui.pop_text_wrap_pos()
            self._multiplier()
            self._runs_on()
        imgui.end()

    def _multiplier(self) -> None:
        """The frame multiplier of the frame-generation modes (2x / 3x / 4x / auto), the
        target rate of "auto", and what the last rendered frame generated."""
        st = self.state
        imgui.separator_text("frame generation")
        imgui.push_item_width(190)
        self._combo("frames", "frame_multiplier", st.multipliers, st.multiplier_labels or None)
        if imgui.is_item_hovered():
            imgui.set_tooltip("frames presented per rendered frame; auto: chosen per frame from the render time "
                              "so that the presented rate tracks the target")
        if st.frame_multiplier == "auto":
            ch, v = imgui.slider_float("target fps", float(st.target_fps), 30.0, 360.0, "%.0f")
            if ch:
                st.target_fps = v
            if imgui.is_item_deactivated_after_edit():  # a new context once the slider is let go
                st.changed.add("target_fps")
        imgui.pop_item_width()
        imgui.text_disabled(f"generating {st.generating} per rendered frame ({st.generating + 1}x)")

    def _runs_on(self) -> None:
        """Where the plugin runs: device, back-end and network (changing one makes a new
        context), the resulting choice in one line, and why each part was chosen."""
        st = self.state
        imgui.separator_text("runs on")
        imgui.push_item_width(190)
        self._combo("device", "device", st.devices or [st.device])
        self._combo("back-end", "backend", st.backends or [st.backend])
        self._combo("network", "network", st.networks or [st.network])
        imgui.pop_item_width()
        if st.runtime:
            imgui.push_text_wrap_pos(380)
            imgui.text_colored(_RGBA["runtime"], st.runtime)
            imgui.pop_text_wrap_pos()
        if st.runtime_reasons:
            imgui.set_next_item_open(False, imgui.Cond_.first_use_ever)
            if imgui.tree_node("why this choice"):
                imgui.push_text_wrap_pos(380)
                for why in st.runtime_reasons:
                    imgui.text_disabled("- " + why)
                imgui.pop_text_wrap_pos()
                imgui.tree_pop()

    def _scene_file(self) -> None:
        """A scene file: a path field, "Load", and "Browse" (folders and scene files)."""
        st = self.state
        ch, v = imgui.input_text("##scene_path", st.scene_path)
        if ch:
            st.scene_path = v
            st.changed.add("scene_path")
        imgui.same_line()
        if imgui.button("Load"):
            st.load_scene_requested = True
            st.changed.add("load_scene_requested")
        imgui.same_line()
        if imgui.button("Browse" if not self._browsing else "Close"):
            self._browsing = not self._browsing
        if not self._browsing:
            return
        path = os.path.expanduser(st.scene_path or ".")
        folder = path if os.path.isdir(path) else (os.path.dirname(path) or ".")
        dirs, files = scene_file_entries(folder)
        imgui.text_disabled(f"{os.path.abspath(folder)}")
        if imgui.begin_child("##browse", imgui.ImVec2(380, 150), imgui.ChildFlags_.borders):
            if imgui.selectable("../", False)[0]:
                st.scene_path = os.path.dirname(os.path.abspath(folder)) + os.sep
                st.changed.add("scene_path")
            for d in dirs:
                if imgui.selectable(f"{d}/", False)[0]:
                    st.scene_path = os.path.join(folder, d) + os.sep
                    st.changed.add("scene_path")
            for f in files:
                if imgui.selectable(f, False)[0]:  # pick and load
                    st.scene_path = os.path.join(folder, f)
                    st.load_scene_requested = True
                    st.changed |= {"scene_path", "load_scene_requested"}
                    self._browsing = False
            if not dirs and not files:
                imgui.text_disabled("(no folders or .gltf/.glb/.obj/.json files)")
        imgui.end_child()

    def _last_finite(self, name: str, gpu: bool) -> float:
        h = self.profiler.history(name, gpu=gpu, last=8)  # GPU times arrive frames late
        for v in h[::-1]:
            if not math.isnan(v):
                return float(v)
        return math.nan

    def _bar(self, ms: float, tag: str, width: float) -> None:
        budget = self.profiler.budget_ms
        if math.isnan(ms):
            imgui.text_disabled("-")
            return
        col = _RGBA["over"] if ms > budget else _RGBA[tag]
        imgui.push_style_color(imgui.Col_.plot_histogram, col)
        imgui.progress_bar(min(1.0, max(0.0, ms / budget)), imgui.ImVec2(width, 0), f"{ms:.2f}")
        imgui.pop_style_color()

    def plot_span_s(self) -> float:
        """Seconds the plot and the statistics cover: ``plot_seconds``, or longer (up to 120 s)
        when fewer than 30 frames fall in it (a slow frame rate, e.g. on a CPU)."""
        prof = self.profiler
        n = len(prof)
        if n == 0 or len(prof.frame_times(window_s=self.plot_seconds)) >= 30:
            return self.plot_seconds
        t = prof.times_s(last=30)
        return float(min(120.0, max(self.plot_seconds, t[-1] - t[0] + 1e-3)))

    def _frame_times(self) -> None:
        prof = self.profiler
        io = imgui.get_io()
        imgui.set_next_window_pos(imgui.ImVec2(max(8.0, io.display_size.x - 8), 8),
                                  imgui.Cond_.first_use_ever, imgui.ImVec2(1.0, 0.0))
        imgui.set_next_window_bg_alpha(0.85)
        expanded, _ = imgui.begin("Frame times", None, imgui.WindowFlags_.always_auto_resize)
        if expanded:
            span = self.plot_span_s()
            s = prof.stats(window_s=span)
            compact = self.compact()
            if compact:  # the figures that matter in a small window, on short lines
                imgui.push_text_wrap_pos(330)
                if self.state.runtime:
                    imgui.text_colored(_RGBA["runtime"], self.state.runtime)
                if s["frames"]:
                    imgui.text(f"presented {s['presented_fps']:.1f} FPS from {s['render_fps']:.1f} rendered")
                    imgui.text(f"frame ms mean {s['mean_ms']:.1f}  p95 {s['p95_ms']:.1f}  "
                               f"1% low {s['low_1pct_fps']:.1f} FPS")
                    imgui.text_colored(_RGBA["rendered"], f"{s['rendered']} rendered")
                    imgui.same_line()
                    imgui.text_colored(_RGBA["generated"], f"{s['generated']} generated")
                    imgui.same_line()
                    imgui.text_disabled(f"(last {span:.3g} s)")
                else:
                    imgui.text_disabled("no frames recorded yet")
                imgui.pop_text_wrap_pos()
            elif s["frames"]:
                imgui.text(f"frame ms  min {s['min_ms']:.2f}  mean {s['mean_ms']:.2f}  "
                           f"p95 {s['p95_ms']:.2f}  p99 {s['p99_ms']:.2f}")
                imgui.text(f"FPS {s['fps_mean']:.1f}   1% low {s['low_1pct_fps']:.1f}   "
                           f"0.1% low {s['low_0_1pct_fps']:.1f}   over {prof.budget_ms:g} ms: "
                           f"{s['over_budget']}/{s['frames']}")
                if imgui.is_item_hovered():
                    imgui.set_tooltip("MangoHud's rule: frame times sorted slowest first; the 1% low is 1000 / "
                                      "the one at index floor(n / 100) - 1 (the 0.1% low: n / 1000), p99 that "
                                      "same frame time")
                imgui.text(f"presented {s['presented_fps']:.2f} FPS  from  rendered {s['render_fps']:.2f} FPS"
                           + (f"  ({s['multiplier']:.2f}x)" if math.isfinite(s['multiplier']) else ""))
                imgui.text_colored(_RGBA["rendered"], f"rendered {s['rendered']}")
                imgui.same_line()
                imgui.text_colored(_RGBA["generated"], f"generated {s['generated']}")
                imgui.same_line()
                imgui.text_colored(_RGBA["native"], f"native {s['native']}")
                imgui.same_line()
                imgui.text_disabled(f"(last {span:.3g} s)")
            else:
                imgui.text_disabled("no frames recorded yet")
            self._plot(span, imgui.ImVec2(330, 110) if compact else imgui.ImVec2(430, 135))
            if not compact or imgui.collapsing_header("per pass"):
                self._pass_table(s)
        imgui.end()

    @staticmethod
    def pass_order(names: list[str]) -> list[str]:
        """:data:`PASS_ORDER` first; other passes (the plugin's: "bilinear", "two_stage",
        "two_stage_generate", ...) after "readback", in the order first seen."""
        known = [p for p in PASS_ORDER if p in names]
        others = [p for p in names if p not in PASS_ORDER]
        at = next((k + 1 for k, p in enumerate(known) if p == "readback"), len(known))
        return known[:at] + others + known[at:]

    def _pass_table(self, s: dict) -> None:
        names = self.profiler.pass_names
        if not names:
            return
        imgui.separator_text(f"per pass, last frame (bar = {self.profiler.budget_ms:g} ms)")
        flags = imgui.TableFlags_.sizing_fixed_fit | imgui.TableFlags_.row_bg
        imgui.push_style_var(imgui.StyleVar_.cell_padding, imgui.ImVec2(4, 0))  # compact: fits 540 px
        imgui.push_style_var(imgui.StyleVar_.frame_padding, imgui.ImVec2(4, 1))
        if imgui.begin_table("##passes", 4, flags):
            imgui.table_setup_column("pass", imgui.TableColumnFlags_.width_fixed, 80)
            imgui.table_setup_column("CPU ms", imgui.TableColumnFlags_.width_fixed, 105)
            imgui.table_setup_column("GPU ms", imgui.TableColumnFlags_.width_fixed, 105)
            imgui.table_setup_column("mean CPU/GPU", imgui.TableColumnFlags_.width_fixed, 110)
            imgui.table_headers_row()
            for p in self.pass_order(names):
                d = s["passes"].get(p, {})
                imgui.table_next_row()
                imgui.table_next_column()
                imgui.text(PASS_LABELS.get(p, p))
                imgui.table_next_column()
                self._bar(self._last_finite(p, gpu=False), "cpu", 100)
                imgui.table_next_column()
                self._bar(self._last_finite(p, gpu=True), "gpu", 100)
                imgui.table_next_column()
                c, g = d.get("cpu_ms_mean", math.nan), d.get("gpu_ms_mean", math.nan)
                imgui.text(f"{_fmt(c)} / {_fmt(g)}")
            imgui.end_table()
        imgui.pop_style_var(2)

    def _plot(self, span: float, size=None) -> None:
        size = size if size is not None else imgui.ImVec2(430, 135)
        prof = self.profiler
        n = len(prof)
        ft = prof.frame_times(window_s=span) if n else np.zeros(0)
        t = prof.times_s(window_s=span) if n else np.zeros(0)
        top = prof.budget_ms * 2.0
        if ft.size:
            top = max(top, float(np.max(ft)) * 1.15)
        log = top > 20 * prof.budget_ms  # slow frames: a log axis keeps the budget line in sight
        imgui.separator_text("frame time (ms)" + (", log scale" if log else ""))
        small = size.y < 135  # the compact layout: no legend (the colours are the stats lines')
        if not implot.begin_plot("##frametimes", size, implot.Flags_.no_legend if small else 0):
            return
        implot.setup_axes("" if small else "seconds ago", "ms", 0, 0)
        implot.setup_legend(implot.Location_.north, implot.LegendFlags_.horizontal | implot.LegendFlags_.outside)
        if log:
            implot.setup_axis_scale(implot.ImAxis_.y1, implot.Scale_.log10)
        implot.setup_axis_limits(implot.ImAxis_.x1, -span, 0.0, implot.Cond_.always)
        bottom = min(prof.budget_ms / 2, float(np.min(ft)) / 1.5) if (log and ft.size) else 0.0
        implot.setup_axis_limits(implot.ImAxis_.y1, bottom, top, implot.Cond_.always)
        if ft.size:
            x = t - t[-1]
            implot.plot_line("all frames", x, np.ascontiguousarray(ft),
                             spec=implot.Spec(line_color=_RGBA["dim"]))
            kinds = prof.kinds(window_s=span)
            for code, k in enumerate(KINDS):
                m = kinds == code
                if m.any():
                    implot.plot_scatter(k, x[m], ft[m], spec=implot.Spec(
                        marker=implot.Marker_.up if k == "generated" else implot.Marker_.circle,
                        marker_size=2.5, marker_fill_color=_RGBA[k], marker_line_color=_RGBA[k]))
        implot.plot_inf_lines(f"{prof.budget_ms:g} ms budget", self._budget_line, spec=implot.Spec(
            line_color=_RGBA["budget"], line_weight=2.0, flags=implot.InfLinesFlags_.horizontal))
        implot.end_plot()


def _fmt(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.2f}"
