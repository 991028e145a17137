"""The demo's headless comparison sheet: the same engine frames through plugin contexts,
native rendering and the ground truth (small sizes: 160x90 -> 320x180, 4 rendered frames)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import plugin
from demo_renderer.compare import (
    GROUND_TRUTH,
    NATIVE,
    EngineFrames,
    compare_passes,
    detail_windows,
    format_table,
    save_sheet,
    sheet_layout,
    window_energies,
)
from demo_renderer.renderer import Renderer
from demo_renderer.scenes import load_scene
from stss_runtime.ops.encoding import display_transform
from stss_runtime.ops.metrics import rgb_to_y

RENDER, DISPLAY, FRAMES, FPS = (160, 90), (320, 180), 4, 30.0
PASSES = ("native", "bilinear", "temporal", "stss")


@pytest.fixture(scope="module")
def comparison(gl_ctx):
    """One comparison for the module, with every plugin dispatch recorded."""
    calls = []
    dispatch = plugin.Context.dispatch

    def spy(self, frame):
        calls.append((self.desc.pass_name, frame.frame_index, len(frame.generated)))
        return dispatch(self, frame)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plugin.Context, "dispatch", spy)
        c = compare_passes(gl_ctx, "gallery", passes=PASSES, frames=FRAMES, render_size=RENDER,
                           display_size=DISPLAY, fps=FPS, gt_samples=4, progress=False)
    assert gl_ctx.error == "GL_NO_ERROR"
    return c, calls


def test_every_method_has_finite_display_size_images(gl, comparison):
    c, _ = comparison
    assert c.methods == [*PASSES, GROUND_TRUTH]
    for kind in ("rendered", "generated"):
        assert set(c.images[kind]) == set(c.methods)
        for m, img in c.images[kind].items():
            assert img.shape == (DISPLAY[1], DISPLAY[0], 3) and img.dtype == np.float32, (kind, m)
            assert np.isfinite(img).all() and img.min() >= 0 and img.max() > 0.05, (kind, m)
    assert c.display_index == {"rendered": 2 * (FRAMES - 1), "generated": 2 * FRAMES - 1}
    assert c.times["generated"] - c.times["rendered"] == pytest.approx(1 / (2 * FPS))


def test_passes_ran_through_plugin_contexts(gl, comparison):
    c, calls = comparison
    assert c.passes == ["bilinear", "temporal", "stss"]
    # each pass: FRAMES dispatches with consecutive indices, each with one generated frame
    for name in c.passes:
        assert [(i, g) for p, i, g in calls if p == name] == [(n, 1) for n in range(FRAMES)]
        assert len(c.timings_ms[name]) == FRAMES
        assert all(t["total"] > 0 and t["upscale"] > 0 and t["generate"] > 0 for t in c.timings_ms[name])
        assert c.metrics[name]["ms_per_dispatch"] > 0
        assert c.warnings[name] == [], (name, c.warnings[name])  # the engine's input is clean
    assert {p for p, _, _ in calls} == set(c.passes)  # native and ground truth are no dispatch
    assert NATIVE not in c.timings_ms and math.isnan(c.metrics[NATIVE]["ms_per_dispatch"])
    # the passes really differ
    out = c.images["rendered"]
    assert np.abs(out["stss"] - out["bilinear"]).mean() > 1e-3
    assert np.abs(out["temporal"] - out["bilinear"]).mean() > 1e-3


def test_generated_frames_differ_from_rendered(gl, comparison):
    c, _ = comparison
    for m in c.methods:
        diff = np.abs(c.images["generated"][m] - c.images["rendered"][m]).mean()
        assert diff > 1e-3, (m, diff)


def test_psnr_is_finite_and_excludes_the_ground_truth(gl, comparison):
    c, _ = comparison
    assert set(c.metrics) == set(PASSES)
    assert c.psnr_frames == 1  # each figure is the last frame of its kind, the one in c.images
    for m in PASSES:
        for kind in ("rendered", "generated"):
            gt, img = (display_transform(c.images[kind][k]) for k in (GROUND_TRUTH, m))
            d = rgb_to_y(gt) - rgb_to_y(img)
            expected = 10 * math.log10(255.0 ** 2 / float(np.mean(d * d)))  # the formula, here
            assert c.psnr(kind, m) == pytest.approx(expected, abs=1e-6), (m, kind, c.psnr(kind, m), expected)
    # full-resolution shading is closer to the ground truth than any upscale of a quarter of it
    assert all(c.psnr("rendered", NATIVE) > c.psnr("rendered", m) for m in PASSES if m != NATIVE)
    assert math.isnan(c.psnr("rendered", GROUND_TRUTH))
    table = format_table(c)
    rows = table.splitlines()
    assert rows[0].split()[0] == "method"
    for name in ("native", "bilinear", "temporal", "STSS"):
        assert any(r.startswith(name + " ") for r in rows), name
    assert not any(r.startswith("ground truth") for r in rows)
    assert f"{c.metrics['stss']['psnr_generated']:.2f} dB" in table


def test_sheet_is_written_with_its_layout(gl, comparison, tmp_path):
    from PIL import Image

    c, _ = comparison
    path = save_sheet(c, tmp_path / "sub" / "sheet.png", crops=2)
    lay = sheet_layout(DISPLAY, len(c.methods), crops=2)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == lay.size
        arr = np.asarray(im.convert("RGB"))
    # five columns of full-size tiles, two full rows and 2 x 2 crop rows of 4x crops
    assert lay.tile == DISPLAY and lay.zoom == 4 and lay.crop == (80, 45)
    assert lay.width >= 5 * DISPLAY[0] and len(lay.rows) == 6
    assert lay.height >= 2 * DISPLAY[1] + 4 * lay.crop_tile[1]
    # the first full-frame tile holds the native frame, as displayed
    from stss_runtime.ops.encoding import display_transform

    y0 = lay.title_h + lay.header_h + lay.band_h + lay.caption_h
    tile = arr[y0:y0 + DISPLAY[1], lay.pad:lay.pad + DISPLAY[0]]
    assert np.array_equal(tile, display_transform(c.images["rendered"][NATIVE]))
    assert path.stat().st_size < 2_000_000
    # fewer crops: a shorter sheet
    small = save_sheet(c, tmp_path / "small.png", crops=0)
    with Image.open(small) as im:
        assert im.size == sheet_layout(DISPLAY, len(c.methods), crops=0).size
        assert im.size[1] < lay.height


def test_crops_are_where_the_ground_truth_has_detail(gl, comparison):
    c, _ = comparison
    gt = [c.images[k][GROUND_TRUTH] for k in ("rendered", "generated")]
    window = sheet_layout(DISPLAY, len(c.methods)).crop
    boxes = detail_windows(gt, window, 2, c.object_ids["rendered"])
    assert len(boxes) == 2
    scores, corners = window_energies(gt, window)
    median = float(np.median(scores))
    by_corner = dict(zip(corners, scores))
    for x, y, w, h in boxes:
        assert (w, h) == window and 0 <= x <= DISPLAY[0] - w and 0 <= y <= DISPLAY[1] - h
        assert by_corner[(x, y)] > median
    (x0, y0, w, h), (x1, y1, _, _) = boxes
    assert x0 + w <= x1 or x1 + w <= x0 or y0 + h <= y1 or y1 + h <= y0  # no overlap
    # without labels the first pick is the window of most energy
    assert detail_windows(gt, window, 1)[0][:2] == corners[int(np.argmax(scores))]


def test_detail_windows_find_a_textured_patch():
    img = np.full((60, 100, 3), 0.3, np.float32)
    rng = np.random.default_rng(0)
    img[30:50, 60:90] = rng.random((20, 30, 3))
    (x, y, w, h), = detail_windows(img, (20, 10), 1)
    assert 60 <= x and x + w <= 90 and 30 <= y and y + h <= 50


def test_engine_frames_follow_the_plugin_timeline(gl):
    scene = load_scene("gallery")
    engine = EngineFrames(Renderer(gl, scene), scene, RENDER, DISPLAY, FPS, start_time=0.5)
    d = engine.description(1)  # display frames 2 (shaded) and 3 (G-buffers only)
    phases = plugin.jitter_phase_count(RENDER[0], DISPLAY[0])
    assert d.frame_index == 1 and d.frame_time_ms == pytest.approx(1000 / FPS)
    assert d.jitter_px == plugin.jitter_offset(2, phases)
    assert d.generated[0].jitter_px == plugin.jitter_offset(3, phases)
    assert engine.time(3) == pytest.approx(0.5 + 3 / (2 * FPS))
    assert d.color.shape == (RENDER[1], RENDER[0], 3) and "color" not in engine.frame(3).arrays
    # motion points one display frame back: the previous view is display frame 2's
    assert np.allclose(engine.frame(3).prev_view, engine.frame(2).view)
    assert np.allclose(d.prev_view, scene.camera.view(engine.time(1)))
    # cached: a second description hands over the very same arrays
    again = engine.description(1)
    assert again.color is d.color and again.generated[0].motion is d.generated[0].motion
    native = engine.native(2)
    assert native.shape == (DISPLAY[1], DISPLAY[0], 3) and engine.native(2) is native


def test_unknown_pass_fails_before_rendering(gl):
    with pytest.raises(plugin.UnsupportedError, match="pass_name"):
        compare_passes(gl, "gallery", passes=("native", "nope"), frames=1, render_size=RENDER,
                       display_size=DISPLAY, progress=False)
