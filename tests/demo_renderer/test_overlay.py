"""The ImGui overlay in a real glfw window under a private Xvfb (in a subprocess: one GL
context type per process), and the rule that only ``demo_renderer/overlay.py`` imports imgui."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

CLEAR = (26, 51, 77)  # the clear colour (0.1, 0.2, 0.3) in 8 bits

SCRIPT = r'''
import json, sys, time
import numpy as np
from demo_renderer.overlay import DemoUiState, Overlay, import_glfw
from demo_renderer.profiler import FrameProfiler
from imgui_bundle import imgui   # only to inject mouse input (imported after overlay: shared glfw)
glfw = import_glfw()
import moderngl
from PIL import Image

out_dir = sys.argv[1]
W, H = 1280, 720
assert glfw.init(), "glfw.init failed"
glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 4)
glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
win = glfw.create_window(W, H, "overlay test", None, None)
assert win, "no window"
glfw.make_context_current(win)
glfw.swap_interval(0)
ctx = moderngl.create_context()

prof = FrameProfiler(capacity=512, budget_ms=4.0)
rng = np.random.default_rng(0)
for i in range(400):   # fake history: 2x frame generation, a spike every 50 frames
    prof.begin_frame(i, "rendered" if i % 2 == 0 else "generated")
    prof.add("gbuffer", cpu_ms=0.3, gpu_ms=1.1 + 0.1 * rng.random())
    prof.add("shading", cpu_ms=0.2, gpu_ms=0.8)
    prof.add("stss", cpu_ms=2.5 + rng.random())
    prof.add("present", cpu_ms=0.1, gpu_ms=0.05)
    prof.end_frame(3.0 + 2.0 * rng.random() + (6.0 if i % 50 == 0 else 0.0))

state = DemoUiState(scene="gallery", scenes=["gallery", "traffic", "forest"],
                    passes=["final", "albedo"])
ov = Overlay(win, prof, state, ctx=ctx)
io = imgui.get_io()
export_btn = (60.0, 251.0)   # "Export CSV + PNG" in the Controls panel (default layout)
log = {"cpu_ms": [], "changed": [], "errors": []}

def one_frame(f, clear=(0.1, 0.2, 0.3), press=None):
    glfw.poll_events()
    if press is not None:
        x, y, down = press
        glfw.set_cursor_pos(win, x, y)
        io.add_mouse_pos_event(x, y)
        io.add_mouse_button_event(0, down)
    prof.begin_frame(400 + f, "rendered")
    ov.frame()
    log["changed"].append(sorted(state.changed))
    ctx.screen.use()
    ctx.clear(*clear)
    ov.render()
    log["errors"].append(ctx.error)
    prof.add("overlay", cpu_ms=ov.last_cpu_ms)
    prof.end_frame(4.0)
    log["cpu_ms"].append(ov.last_cpu_ms)

def grab():
    img = np.frombuffer(ctx.screen.read(components=3), np.uint8).reshape(H, W, 3)[::-1]
    ctx.error  # moderngl's read of the default framebuffer sets GL_INVALID_OPERATION on Mesa
    return img

t0 = time.perf_counter()
for f in range(5):
    one_frame(f)
    glfw.swap_buffers(win)
one_frame(5)
Image.fromarray(grab()).save(f"{out_dir}/overlay.png")
glfw.swap_buffers(win)
# click "Export CSV + PNG": press in one frame, release in the next
one_frame(6, press=(*export_btn, True))
one_frame(7, press=(*export_btn, False))
log["export_requested"] = state.export_requested
# hidden overlay: nothing drawn over the clear colour
state.show_overlay = False
one_frame(8)
hidden = grab()
log["hidden_differs"] = int((np.abs(hidden.astype(int) - [26, 51, 77]).max(axis=2) > 2).sum())
log["total_s"] = time.perf_counter() - t0
ov.shutdown()
glfw.destroy_window(win)
glfw.terminate()
print("RESULT " + json.dumps(log))
'''


def _run_script(tmp_path: Path, display: str) -> dict:
    script = tmp_path / "overlay_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "DISPLAY": display,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                       timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    assert not (tmp_path / "imgui.ini").exists(), "imgui wrote an ini file"
    return json.loads(line[len("RESULT "):])


@pytest.mark.window
def test_overlay_draws_panels_under_xvfb(tmp_path, xvfb_display):
    log = _run_script(tmp_path, xvfb_display)
    assert all(e == "GL_NO_ERROR" for e in log["errors"]), log["errors"]
    img = np.asarray(Image.open(tmp_path / "overlay.png")).astype(int)
    assert img.shape == (720, 1280, 3)
    clear = np.array(CLEAR)

    def differs(region):
        return (np.abs(region - clear).sum(axis=2) > 6).mean()

    def text_like(region):  # high-frequency: strong horizontal steps (glyph edges)
        return (np.abs(np.diff(region.sum(axis=2), axis=1)) > 150).sum()

    controls = img[10:265, 10:310]        # "Controls", top left
    frame_times = img[10:380, 840:1270]   # "Frame times", top right
    empty = img[500:700, 300:800]         # no panel there
    assert differs(controls) > 0.9 and differs(frame_times) > 0.9
    assert text_like(controls) > 500 and text_like(frame_times) > 1500
    assert differs(empty) == 0.0
    # the frame-time plot (under the statistics) draws the budget line in red, generated frames
    # in orange
    red = (img[..., 0] > 200) & (img[..., 1] < 100) & (img[..., 2] < 100)
    orange = (img[..., 0] > 200) & (img[..., 1] > 120) & (img[..., 1] < 190) & (img[..., 2] < 80)
    plot = np.s_[165:215, 880:1255]  # inside the plot's axes
    assert red[plot].sum() > 100 and orange[plot].sum() > 50
    # interaction: the export button sets the flag and reports the change
    assert log["export_requested"] is True and ["export_requested"] in log["changed"]
    assert log["hidden_differs"] == 0
    # the overlay's own CPU time is measured (the first frames build the font atlas/shaders)
    assert all(ms > 0 for ms in log["cpu_ms"])
    assert min(log["cpu_ms"][2:]) < 50


def test_import_glfw_refuses_a_second_glfw_library():
    code = ("import glfw\nfrom demo_renderer.overlay import import_glfw\n"
            "try:\n    import_glfw()\nexcept RuntimeError as e:\n    print('refused', e)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYGLFW_LIBRARY", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "refused" in r.stdout and "before the first `import glfw`" in r.stdout


def test_overlay_state_defaults():
    from demo_renderer.overlay import COMPARES, DEBUG_VIEWS, QUALITIES, DemoUiState

    st = DemoUiState()
    assert st.quality in QUALITIES and st.compare in COMPARES and st.debug_view in DEBUG_VIEWS
    assert QUALITIES == ["NATIVE_AA", "QUALITY", "BALANCED", "PERFORMANCE", "ULTRA_PERFORMANCE"]
    assert st.changed == set() and st.export_requested is False and st.show_overlay is True
    assert DemoUiState().changed is not st.changed  # no shared mutable defaults


def _imports_imgui(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", ""))
              in ("__import__", "import_module") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        else:
            continue
        if any(n.split(".")[0] in ("imgui", "imgui_bundle", "implot") for n in names):
            return True
    return False


def test_only_the_overlay_imports_imgui():
    offenders = []
    for pkg in ("demo_renderer", "stss_runtime", "plugin"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel != "demo_renderer/overlay.py" and _imports_imgui(path):
                offenders.append(rel)
    assert offenders == [], f"only demo_renderer/overlay.py may import imgui: {offenders}"
    assert _imports_imgui(ROOT / "demo_renderer" / "overlay.py")


def test_pass_bars_order_and_scene_file_listing(tmp_path):
    from demo_renderer.overlay import Overlay, scene_file_entries

    names = ["present", "bilinear", "shading", "overlay", "readback", "gbuffer", "shadow", "bilinear_generate"]
    assert Overlay.pass_order(names) == ["shadow", "gbuffer", "shading", "readback", "bilinear", "bilinear_generate",
                                         "present", "overlay"]
    for name in ("b.GLB", "a.obj", "notes.txt", ".hidden.gltf", "c.json"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    assert scene_file_entries(str(tmp_path)) == (["sub"], ["a.obj", "b.GLB", "c.json"])
    assert scene_file_entries(str(tmp_path / "missing")) == ([], [])


def test_scene_sources_load_names_files_and_refuse_bad_paths(tmp_path):
    from demo_renderer.demo import SceneSources
    from demo_renderer.scenes import load_scene

    obj = tmp_path / "tri.obj"
    obj.write_text("o t\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    src = SceneSources(load_scene(str(obj)), str(obj))  # started with --scene tri.obj
    assert src.names[:4] == ["fence", "gallery", "traffic", "plaza"] and "tri" in src.names
    assert src.load("gallery").name == "gallery"
    assert src.load("tri").name == "tri"  # back to the file by the name the list shows
    with pytest.raises(ValueError, match="missing.glb"):
        src.load(str(tmp_path / "missing.glb"))
    with pytest.raises(ValueError, match="scene file: expected a path to a .gltf/.glb/.obj/.json file, got an empty"):
        src.load("  ")
    with pytest.raises(ValueError, match="unknown scene 'forest'"):
        src.load("forest")
    assert "missing" not in src.names
