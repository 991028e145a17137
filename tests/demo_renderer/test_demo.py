"""The demo as a user runs it: the pipeline through the plugin API, the compositor's views,
headless (clip, comparison sheet, profile CSV + plot) and a real window under Xvfb with the
ImGui overlay."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import moderngl
import numpy as np
import pytest
from PIL import Image

import plugin
from demo_renderer.demo import Compositor
from demo_renderer.pipeline import MODES, DemoPipeline
from demo_renderer.scene import look_at
from demo_renderer.scenes import load_scene
from demo_renderer.shaderlib import ShaderLibrary
from demo_renderer.views import DEBUG_VIEWS


def _not_blank(img: np.ndarray) -> None:
    assert img.std() > 10, "image is flat (blank or black)"
    assert img.mean() > 20, "image is black"


def test_pipeline_drives_the_plugin_like_an_engine(gl):
    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="stss")
    assert isinstance(p.ctx, plugin.Context) and p.render_size == (64, 36)
    frames = [p.frame(i, i / 60) for i in range(4)]
    assert [f.kind for f in frames] == ["rendered", "generated", "rendered", "generated"]
    assert frames[0].reset and not frames[2].reset
    for f in frames:
        assert f.output.shape == (72, 128, 3) and np.isfinite(f.output).all()
        assert f.gbuffers["depth"].shape == (36, 64)  # what the engine drew for this display frame
    assert not np.allclose(frames[0].output, frames[1].output)  # time moved
    # the plugin's own timings, filed where the work happened: the rendered frame
    assert set(frames[0].cpu_ms) == {"readback", "stss", "stss_generate"} and frames[1].cpu_ms == {}
    assert all(v > 0 for v in frames[0].cpu_ms.values())
    for view in DEBUG_VIEWS[1:]:
        img = p.debug_image(view, frames[3])
        assert img.shape == (72, 128, 3) and img.dtype == np.uint8, view
    p.set_mode("temporal", "QUALITY")
    assert p.render_size == (85, 48) and p.ctx.desc.pass_name == "temporal"
    assert [p.frame(i, i / 60).kind for i in range(2)] == ["rendered", "rendered"]  # upscale only
    p.set_mode("native")
    f = p.frame(0, 0.0)
    assert p.ctx is None and f.kind == "native" and p.debug_image("depth", f) is None  # not read back
    f = p.frame(1, 1 / 60, gbuffers=True)  # asked for: the native frame's G-buffers at display size
    assert f.gbuffers["depth"].shape == (72, 128) and p.debug_image("depth", f).shape == (72, 128, 3)
    assert p.debug_image("holes", f) is None  # nothing generated
    with pytest.raises(ValueError, match="mode: expected one of native"):
        p.set_mode("dlss")
    with pytest.raises(ValueError, match="debug_view: expected one of none, albedo"):
        p.debug_image("normals", f)
    p.close()
    assert set(MODES) >= {"native", "bilinear", "temporal", "stss_sr", "stss"}


@pytest.mark.parametrize("n", [2, 3])
def test_pipeline_generates_n_frames_per_rendered_one(gl, n):
    """3x and 4x: each rendered frame is followed by n generated ones, each its own instant
    (time moves between them), tinted by its distance in the debug view."""
    from plugin.debug import distance_tint, tint
    from stss_runtime.ops.encoding import display_transform

    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="warp_fill", generated_frames=n)
    assert p.ctx.next_generated_frames == n
    frames = []
    for i in range(2 * (n + 1)):
        kind, distance = p.kind(i), p.distance(i)
        frames.append(p.frame(i, i / 60))
        assert (frames[-1].kind, frames[-1].distance) == (kind, distance)
    assert [f.kind for f in frames] == (["rendered"] + ["generated"] * n) * 2
    assert [f.distance for f in frames] == list(range(n + 1)) * 2
    assert [f.t for f in frames] == pytest.approx([i / 60 for i in range(2 * (n + 1))])
    for a, b in zip(frames, frames[1:]):
        assert not np.allclose(a.output, b.output)  # every display frame moves on
    assert frames[n + 1].cpu_ms["warp_fill_generate"] > 0 and not frames[n].cpu_ms
    for f in frames[1:n + 1]:
        want = tint(display_transform(f.output), distance_tint(f.distance))
        assert (p.debug_image("tint_generated", f) == want).all()
    p.set_multiplier("auto", 2000.0)  # far beyond what rendering reaches: the most the plugin makes
    assert p.ctx.desc.generated_frames == "auto" and p.ctx.desc.target_display_hz == 2000.0
    kinds = [p.frame(i, i / 60).kind for i in range(2 + 4)]
    assert kinds == ["rendered", "generated", "rendered", "generated", "generated", "generated"]  # 1, then 3
    assert p.last_generated == 3
    with pytest.raises(ValueError, match="generated_frames: expected one of"):
        p.set_multiplier(4)
    p.close()


def test_late_gpu_times_of_the_plugin_reach_the_right_display_frames(gl):
    """On CUDA the plugin hands back an earlier dispatch's GPU times; the pipeline files them
    under the display frame that dispatch showed. Here a CPU context is wrapped to answer as a
    CUDA one would, one dispatch late."""
    from demo_renderer.profiler import FrameProfiler

    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="stss")
    real = p.ctx.dispatch

    def late_by_one(desc):
        r = real(desc)
        if desc.frame_index > 0:
            r.gpu_timings_frame = desc.frame_index - 1
            r.gpu_timings_ms = {"inputs": 1.0, "upscale": 2.0, "generate": 3.0, "ui": 0.5, "total": 6.5}
        return r

    p.ctx.dispatch = late_by_one
    prof = FrameProfiler()
    frames = []
    for i in range(6):
        prof.begin_frame(i, p.kind(i))
        f = p.frame(i, i / 60)
        for shown, gpu in f.gpu_late:
            prof.add_gpu_results((shown, gpu))
        prof.end_frame(16.0)
        frames.append(f)
    assert frames[0].gpu_late == [] and frames[1].gpu_late == []  # nothing is ready at first
    assert frames[2].gpu_late == [(0, {"stss": 3.5, "stss_generate": 3.0})]  # dispatch 0 showed frame 0
    assert frames[4].gpu_late == [(2, {"stss": 3.5, "stss_generate": 3.0})]
    # in the profile they sit on display frames 0 and 2; frame 4's would come with a 4th dispatch
    assert list(prof.frame_indices()) == list(range(6))
    nan = np.nan
    assert np.array_equal(prof.history("stss", gpu=True), [3.5, nan, 3.5, nan, nan, nan], equal_nan=True)
    assert np.array_equal(prof.history("stss_generate", gpu=True), [3.0, nan, 3.0, nan, nan, nan], equal_nan=True)
    p.close()


def test_debug_views_at_every_quality_and_tinted_generated_frames(gl):
    """Render scales that do not divide the display size (BALANCED: 128x72 from 75x42) used to
    crash the G-buffer views; every view is display-sized, generated frames alone are tinted."""
    from plugin.debug import tint
    from stss_runtime.ops.encoding import display_transform

    p = DemoPipeline(gl, load_scene("gallery"), (128, 72), mode="stss", quality="BALANCED")
    assert p.render_size == (75, 42)
    frames = [p.frame(i, 1.0 + i / 60) for i in range(2)]
    for f in frames:
        for view in DEBUG_VIEWS[1:]:
            img = p.debug_image(view, f)
            assert img.shape == (72, 128, 3) and img.dtype == np.uint8, (view, f.kind)
    rendered, generated = frames
    assert (p.debug_image("tint_generated", rendered) == display_transform(rendered.output)).all()
    assert (p.debug_image("tint_generated", generated) == tint(display_transform(generated.output))).all()
    # a generated frame's G-buffer views are its own (drawn half a frame later), not the rendered one's
    assert not (p.debug_image("motion", generated) == p.debug_image("motion", rendered)).all()
    ids = p.debug_image("object_id", rendered).reshape(-1, 3)
    assert len(np.unique(ids, axis=0)) >= 4  # several objects, each its own colour
    p.set_mode("stss_sr")  # supersampling only: no generated frame, no holes
    assert p.debug_image("holes", p.frame(0, 1.0)) is None
    p.close()


def test_pause_stops_the_scene_not_the_frames(gl):
    """Paused (dt = 0) the frames go on: no motion, no history resets, and the temporal
    upscaler keeps accumulating jittered samples."""
    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="stss")
    frames = [p.frame(i, 2.0, dt=0.0) for i in range(4)]
    assert [f.kind for f in frames] == ["rendered", "generated", "rendered", "generated"]
    assert frames[0].reset and not frames[2].reset
    for f in frames:
        assert np.abs(f.gbuffers["motion"]).max() < 1e-4, "paused, yet something moved"
    moving = p.frame(4, 2.0)  # dt = 1/60 again: the scene moves
    assert np.abs(moving.gbuffers["motion"]).max() > 0.05 and not moving.reset
    p.close()


def test_free_camera_replaces_the_scripted_one(gl):
    """With a free camera the views the plugin receives are the free camera's, and its
    motion shows in the motion vectors even while the scene is paused."""
    from demo_renderer.freecam import FreeCamera

    scene = load_scene("gallery")
    p = DemoPipeline(gl, scene, (128, 72), mode="stss")
    eye, target = scene.camera.eye_target(1.0)
    p.free_camera = fc = FreeCamera(eye, target, fps=60.0, speed=30.0)
    still = p.frame(0, 1.0, dt=0.0)
    np.testing.assert_allclose(still.view, look_at(eye, target), atol=1e-9)
    assert np.abs(p.frame(1, 1.0, dt=0.0).gbuffers["motion"]).max() < 1e-4  # hovering, scene paused
    fc.steer(2, move=(1, 0, 0))  # strafe right at 0.5 m per frame from frame 2 on
    flying = p.frame(2, 1.0, dt=0.0)
    np.testing.assert_array_equal(flying.view, fc.view(2))
    gen = p.frame(3, 1.0, dt=0.0)  # rendered with frame 2, where the camera will be
    np.testing.assert_array_equal(gen.view, fc.view(3))
    assert np.linalg.norm(np.linalg.inv(gen.view)[:3, 3] - eye) == pytest.approx(0.5)
    mx = gen.gbuffers["motion"][..., 0]
    assert np.median(mx[gen.gbuffers["object_id"] > 0]) > 0.5  # moved right: surfaces were further right
    p.free_camera = None
    p.reset_history()
    back = p.frame(4, 1.0)
    assert back.reset and np.allclose(back.view, scene.camera.view(1.0))
    p.close()


def test_compositor_views(gl):
    size = (64, 32)
    comp = Compositor(gl, ShaderLibrary(gl), size)
    tex = gl.texture(size, 4)
    fbo = gl.framebuffer(color_attachments=[tex])
    red, blue = np.zeros((32, 64, 3), np.float32), np.zeros((32, 64, 3), np.float32)
    red[..., 0], blue[..., 2] = 4.0, 4.0
    comp.upload("native", red)
    comp.upload("output", blue)

    def read():
        return np.frombuffer(tex.read(), np.uint8).reshape(32, 64, 4)[::-1, :, :3].astype(int)

    comp.compose(fbo, "wipe", 0.25)
    img = read()
    assert img[16, 5, 0] > 200 and img[16, 5, 2] < 10  # native left of the divider
    assert img[16, 40, 2] > 200 and img[16, 40, 0] < 10  # the mode's output right of it
    assert (img[:, 15:17] > 240).all(axis=-1).any()  # the white divider
    comp.compose(fbo, "side_by_side")
    img = read()
    assert img[16, 10, 0] > 200 and img[16, 50, 2] > 200
    comp.compose(fbo, "off")
    assert (read()[..., 2] > 200).all()
    pattern = np.zeros((32, 64, 3), np.float32)
    pattern[:, ::2] = 4.0  # one-pixel stripes: the loupe shows them as wide bands
    comp.upload("output", pattern)
    comp.compose(fbo, "off", loupe=(0.5, 0.5), zoom=4)
    box = read()[-8 - 60:-8, -8 - 60:-8, 0]
    row = box[box.shape[0] // 2]
    runs = np.flatnonzero(np.diff(row > 128))
    assert len(runs) >= 4 and np.diff(runs).min() >= 3  # magnified: each stripe several pixels wide


def test_headless_demo_writes_clip_sheet_and_profile(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "6", "--mode", "warp_fill",
                        "--display-size", "320x180", "--sheet-frames", "4", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout and "frame time ms" in r.stdout and "comparison sheet" in r.stdout
    # the sheet's fixed columns, plus the mode the demo ran (no latency, so it can be shown)
    assert all(f"\n{m} " in r.stdout for m in ("native", "bilinear", "temporal", "STSS", "STSS + accum.", "warp + fill"))
    pngs = sorted((out / "frames").glob("*.png"))
    assert len(pngs) == 6
    img = np.asarray(Image.open(pngs[-1]))
    assert img.shape == (180, 320, 3)
    _not_blank(img)
    import imageio.v3 as iio

    video = iio.imread(out / "demo.mp4", plugin="pyav" if _has_av() else None)
    assert video.shape[0] == 6 and video.shape[1:3] == (180, 320)
    rows = list(csv.DictReader((out / "profile.csv").open()))
    assert len(rows) == 6
    assert [r["FrameType"] for r in rows] == ["Application", "STSS_FG1"] * 3
    times = [float(r["MsBetweenPresents"]) for r in rows]
    assert all(0 < t < 60_000 for t in times)
    assert Image.open(out / "frame_times.png").size[0] > 300
    sheet = np.asarray(Image.open(out / "comparison.png"))
    _not_blank(sheet)


def test_headless_demo_at_4x_speaks_presentmon(tmp_path):
    """--generated-frames 3: three generated frames per rendered one; profile.csv read back by
    PresentMon's column names; the summary gives the rendered and presented rates."""
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "8", "--mode",
                        "warp_fill", "--generated-frames", "3", "--display-size", "160x90", "--sheet-frames", "2",
                        "--compare", "off", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "presented" in r.stdout and "rendered fps (4.00x); frame generation 4x" in r.stdout, r.stdout
    assert "2 at +1, 2 at +2, 2 at +3" in r.stdout and "0.1% low" in r.stdout
    assert "PSNR gen. 3/4" in r.stdout  # the comparison at the same multiplier
    rows = list(csv.DictReader((out / "profile.csv").open()))
    assert list(rows[0])[:9] == ["Application", "FrameType", "TimeInSeconds", "MsBetweenPresents",
                                 "MsBetweenDisplayChange", "MsCPUBusy", "MsGPUBusy", "MsAnimationError", "AnimationTime"]
    assert [r["FrameType"] for r in rows] == ["Application", "STSS_FG1", "STSS_FG2", "STSS_FG3"] * 2
    assert [float(r["AnimationTime"]) for r in rows] == pytest.approx([1000 * i / 60 for i in range(8)], abs=1e-3)
    for prev, row in zip(rows, rows[1:]):  # the step in animation time less the step in present time
        assert float(row["MsAnimationError"]) == pytest.approx(
            1000 / 60 - float(row["MsBetweenDisplayChange"]), abs=2e-3)
    assert all(float(r["MsCPUBusy"]) > 0 for r in rows)
    assert float(rows[0]["warp_fill_generate_cpu_ms"]) > 0 and rows[1]["warp_fill_generate_cpu_ms"] == ""


def _has_av():
    try:
        import av  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.window
def test_windowed_demo_with_overlay_under_xvfb(tmp_path, xvfb_display):
    """The window shows the scene and the overlay (both drawn, not blank), and the profile
    has a row per frame with plausible times."""
    shot = tmp_path / "window.png"
    out = tmp_path / "profile"
    env = {**os.environ, "DISPLAY": xvfb_display}
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--window", "--frames", "6",
                        "--scene", "gallery", "--display-size", "640x360", "--screenshot", str(shot),
                        "--generated-frames", "3", "--out", str(out)], capture_output=True, text=True, timeout=600,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert "demo: 6 frames" in r.stdout and "frame generation 4x" in r.stdout
    # no GPU and a window: the CPU preset, running the plugin's default pass, says so
    assert "demo: cpu preset: stss_recurrent on cpu" in r.stdout and "mode stss_recurrent: the plugin's" in r.stdout
    img = np.asarray(Image.open(shot)).astype(int)
    assert img.shape == (360, 640, 3)
    _not_blank(img)
    # the scene: the right part of the frame is the rendered gallery (varied colours)
    scene = img[200:, 400:]
    assert scene.std() > 15
    # the overlay: ImGui panels across the top, with text (many sharp light/dark edges); at
    # 640x360 the compact layout folds the controls (top left) and keeps the frame times (top right)
    panel = img[:150]
    edges = np.abs(np.diff(panel.mean(-1), axis=1)) > 60
    assert edges.sum() > 200, "no overlay text drawn"
    rows = list(csv.DictReader((out / "profile.csv").open()))
    assert len(rows) == 6
    assert [r["FrameType"] for r in rows] == ["Application", "STSS_FG1", "STSS_FG2", "STSS_FG3", "Application",
                                              "STSS_FG1"]
    times = [float(r["MsBetweenPresents"]) for r in rows]
    assert all(0 < t < 60_000 for t in times)
    assert (out / "frame_times.png").exists()


@pytest.mark.window
def test_windowed_demo_without_overlay(tmp_path, xvfb_display):
    shot = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": xvfb_display}
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--window", "--no-overlay", "--frames", "3",
                        "--mode", "bilinear", "--display-size", "320x180", "--screenshot", str(shot),
                        "--out", str(tmp_path / "p")], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    _not_blank(np.asarray(Image.open(shot)))


DRIVER = r'''
"""Runs the real windowed demo (run_window) with the user's clicks and keys scripted: the
overlay's state is set as its widgets would set it, the keyboard and mouse come from a
script instead of the X server. Prints what each frame showed."""
import json, sys
from pathlib import Path
import numpy as np
import demo_renderer.overlay as ov  # imgui_bundle before glfw
import demo_renderer.demo as demo
from demo_renderer.scenes import load_scene

out, obj = Path(sys.argv[1]), sys.argv[2]
CLICKS = {1: {"scene_path": obj, "load_scene_requested": True},  # type a path, press "Load"
          3: {"free_camera": True},
          8: {"debug_view": "object_id"},
          9: {"export_requested": True},
          10: {"scene_path": str(out / "missing.glb"), "load_scene_requested": True}}
status = []


class ScriptedOverlay(ov.Overlay):
    calls = 0

    def frame(self):
        super().frame()
        status.append(self.state.status)
        for k, v in CLICKS.get(ScriptedOverlay.calls, {}).items():
            setattr(self.state, k, v)
            self.state.changed.add(k)
        ScriptedOverlay.calls += 1


ov.Overlay = ScriptedOverlay
polls = [0]


def poll(self, keyboard=True, mouse=True):
    n = polls[0]
    polls[0] += 1
    snap = demo.InputSnapshot(cursor=(0.5, 0.5))
    if 4 <= n <= 7:
        snap.move = (0.0, 0.0, 1.0)  # W held
    if n == 6:
        snap.look_px = (60.0, 0.0)  # right-drag: turn right
    snap.toggle_pause = n == 11  # Space
    snap.quit = n == 14  # Esc
    return snap


demo.WindowInput.poll = poll
log = []
step = demo._Run.step


def logged_step(self, i, t, fbo, compare, split, debug_view="none", loupe=None, zoom=4, dt=None):
    f = step(self, i, t, fbo, compare, split, debug_view, loupe, zoom, dt)
    log.append({"i": i, "t": t, "dt": dt, "scene": self.pipeline.scene.name, "debug": debug_view,
                "eye": np.linalg.inv(f.view)[:3, 3].tolist(), "flying": self.pipeline.free_camera is not None})
    if debug_view == "object_id" and not (out / "ids.png").exists():
        from PIL import Image
        w, h = fbo.size
        Image.fromarray(np.frombuffer(fbo.read(components=3), np.uint8).reshape(h, w, 3)[::-1]).save(out / "ids.png")
        self.gl.error  # moderngl's read of the default framebuffer leaves GL_INVALID_OPERATION on Mesa
    return f


demo._Run.step = logged_step
cfg = demo.DemoConfig(scene="traffic", frames=40, display_size=(320, 180), mode="bilinear", compare="off")
s = demo.run_window(load_scene("traffic"), cfg, profile_out=out / "profile")
print("RESULT " + json.dumps({"log": log, "status": status, "frames": s["frames"], "scene": s["scene"]}))
'''


@pytest.mark.window
def test_window_controls_scene_file_free_camera_debug_view_export_pause_quit(tmp_path, xvfb_display):
    """The window reacts to its controls: a scene file loaded by path, the free camera flown
    with W and the mouse, a debug view, Export, a bad path reported (not a crash), Space
    pauses the scene and Esc quits."""
    obj = tmp_path / "crate.obj"
    obj.write_text("o crate\n" + "".join(f"v {x} {y} {z}\n" for x in (-1, 1) for y in (0, 2) for z in (-1, 1))
                   + "f 1 2 4 3\nf 5 7 8 6\nf 1 5 6 2\nf 3 4 8 7\nf 1 3 7 5\nf 2 6 8 4\n")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "DISPLAY": xvfb_display,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, str(script), str(tmp_path), str(obj)], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    log, status = res["log"], res["status"]
    assert res["frames"] == 14 and len(log) == 14, "Esc did not quit"  # 40 were allowed
    assert [e["scene"] for e in log[:2]] == ["traffic"] * 2 and {e["scene"] for e in log[2:]} == {"crate"}
    assert res["scene"] == "crate" and log[2]["i"] == 0  # a new scene starts from its first frame
    assert not log[3]["flying"] and all(e["flying"] for e in log[4:])
    eyes = np.array([e["eye"] for e in log])
    scripted = load_scene(obj).camera.eye_target(log[4]["t"])[0]
    assert np.linalg.norm(eyes[4] - scripted) < 1e-6  # the free camera starts where the scripted one is
    assert np.linalg.norm(eyes[8] - eyes[4]) > 0.1  # W flew it
    assert np.linalg.norm(eyes[10] - eyes[9]) < 1e-9  # keys released: it hovers
    assert all(e["debug"] == "object_id" for e in log[9:])
    ids = np.asarray(Image.open(tmp_path / "ids.png")).reshape(-1, 3).astype(int)
    black = (ids.max(axis=1) < 10).mean()
    assert 0.05 < black < 0.95, "the object-id view should show the crate's colour on a black background"
    assert any(s.startswith("exported ") and "profile.csv" in s for s in status)
    assert any(s.startswith("could not load: ") and "missing.glb" in s for s in status)
    assert [e["dt"] for e in log[11:]] == [0.0] * 3 and log[10]["dt"] > 0  # Space paused the scene
    assert len({e["t"] for e in log[11:]}) == 1 and [e["i"] for e in log[11:]] == [9, 10, 11]  # frames go on
    rows = list(csv.DictReader((tmp_path / "profile" / "profile.csv").open()))
    assert len(rows) == 14 and {"overlay_cpu_ms", "bilinear_cpu_ms", "debug_cpu_ms"} <= set(rows[0])


def test_headless_debug_view_from_the_command_line(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "2",
                        "--mode", "bilinear", "--display-size", "160x90", "--sheet-frames", "0",
                        "--debug-view", "object_id", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out / "frames" / "000001.png")).reshape(-1, 3)
    colours = np.unique(img, axis=0)
    assert 3 <= len(colours) <= 64  # flat object-id colours, not a shaded picture
    assert "debug_cpu_ms" in (out / "profile.csv").read_text().splitlines()[0]
    bad = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--free-camera",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--free-camera needs a window" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--debug-view", "normals",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--debug-view: invalid choice: 'normals'" in bad.stderr


def test_headless_demo_runs_the_plugins_default_pass_unless_told(tmp_path):
    """``--mode`` left out: the plugin's default pass (headless runs the default preset)."""
    import plugin

    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "2",
                        "--display-size", "160x90", "--sheet-frames", "0", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"mode {plugin.DEFAULT_PASS}: the plugin's default pass" in r.stdout, r.stdout
    assert f"{plugin.DEFAULT_PASS}_cpu_ms" in (out / "profile.csv").read_text().splitlines()[0]
