"""The demo as a user runs it: the pipeline through the plugin API, the compositor's views,
headless (clip, comparison sheet, profile CSV + plot) and a real window under Xvfb with the
ImGui overlay."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import moderngl
import numpy as np
import pytest
from PIL import Image

import plugin
from demo_renderer.demo import Compositor
from demo_renderer.pipeline import MODES, DemoPipeline
from demo_renderer.scenes import load_scene
from demo_renderer.shaderlib import ShaderLibrary


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
    assert not np.allclose(frames[0].output, frames[1].output)  # time moved
    for view in ("albedo", "normal", "depth", "motion", "holes", "generated_tinted"):
        img = p.debug_image(view)
        assert img.shape == (72, 128, 3) and img.dtype == np.uint8, view
    p.set_mode("temporal", "QUALITY")
    assert p.render_size == (85, 48) and p.ctx.desc.pass_name == "temporal"
    assert [p.frame(i, i / 60).kind for i in range(2)] == ["rendered", "rendered"]  # upscale only
    p.set_mode("native")
    assert p.ctx is None and p.frame(0, 0.0).kind == "native" and p.debug_image("depth") is None
    with pytest.raises(ValueError, match="mode: expected one of native"):
        p.set_mode("dlss")
    p.close()
    assert set(MODES) >= {"native", "bilinear", "temporal", "stss_sr", "stss"}


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
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "6",
                        "--display-size", "320x180", "--sheet-frames", "4", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout and "frame time ms" in r.stdout and "comparison sheet" in r.stdout
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
    assert {r["Kind"] for r in rows} == {"rendered", "generated"}
    times = [float(r["MsBetweenPresents"]) for r in rows]
    assert all(0 < t < 60_000 for t in times)
    assert Image.open(out / "frame_times.png").size[0] > 300
    sheet = np.asarray(Image.open(out / "comparison.png"))
    _not_blank(sheet)


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
                        "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    assert "demo: 6 frames" in r.stdout
    img = np.asarray(Image.open(shot)).astype(int)
    assert img.shape == (360, 640, 3)
    _not_blank(img)
    # the scene: the right part of the frame is the rendered gallery (varied colours)
    scene = img[200:, 400:]
    assert scene.std() > 15
    # the overlay: ImGui panels in the top-left, with text (many sharp light/dark edges)
    panel = img[:150, :250]
    edges = np.abs(np.diff(panel.mean(-1), axis=1)) > 60
    assert edges.sum() > 200, "no overlay text drawn"
    rows = list(csv.DictReader((out / "profile.csv").open()))
    assert len(rows) == 6
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
