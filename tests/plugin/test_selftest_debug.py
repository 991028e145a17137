"""The motion-vector diagnosis, the self-test and the debug views (plugin.selftest, plugin.debug)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import plugin
from plugin import debug
from plugin.selftest import (
    HYPOTHESES,
    PSNR_THRESHOLDS,
    PatternScene,
    apply_mistake,
    diagnose_motion,
    main,
    perspective,
    run_scenario,
    self_test,
)

ROOT = Path(__file__).resolve().parents[2]
JITTER, PREV_JITTER = (0.25, -0.3), (-0.25, 0.35)  # a jitter difference of (-0.5, 0.65) px


def _pair(scene=None, jitter=JITTER, prev_jitter=PREV_JITTER):
    """(previous colour, colour, correct motion) of two consecutive rendered frames."""
    scene = scene or PatternScene((64, 40))
    return (scene.color(0.0, prev_jitter), scene.color(1.0, jitter),
            scene.gbuffers(1.0, jitter, dt=1.0)["motion"])


# -- diagnose_motion -------------------------------------------------------------------

def test_correct_vectors_are_ok():
    prev, cur, motion = _pair()
    d = diagnose_motion(prev, cur, motion, JITTER, PREV_JITTER)
    assert d.ok and d.conclusive and d.best == "as given", d.message
    assert d.message.startswith("motion vectors match the current frame")
    # NDC / UV scalings of 4 px vectors leave a 64x40 frame: they cannot be judged here
    assert set(d.errors) == set(d.baseline) == set(d.pixels) == set(HYPOTHESES) - {
        "NDC units", "NDC units, y up", "UV units", "UV units, y up"}
    # the given convention wins clearly over every mistake, where they differ
    for k in set(d.errors) - {"as given"}:
        assert d.baseline[k] * 1.5 < d.errors[k] and d.wins[k] < 0.4, k


def test_torch_inputs_and_no_jitter():
    scene = PatternScene((48, 32))
    prev, cur, motion = (torch.from_numpy(a) for a in _pair(scene, (0.0, 0.0), (0.0, 0.0)))
    d = diagnose_motion(prev, cur, motion)
    assert d.ok and d.best == "as given", d.message
    assert "jitter included" not in d.errors  # indistinguishable without a jitter difference


@pytest.mark.parametrize("mistake, words", [
    ("flipped in x", "flipped in x"), ("flipped in y", "flipped in y"),
    ("flipped in x and y", "current minus previous"), ("x and y swapped", "swapped"),
    ("NDC units", "NDC"), ("NDC units, y up", "+y up"), ("UV units", "UV"),
    ("half length", "half as long"), ("double length", "twice as long"), ("jitter included", "jitter")])
def test_each_mistake_is_named(mistake, words):
    prev, cur, motion = _pair()
    wrong = apply_mistake(motion, mistake, JITTER, PREV_JITTER)
    d = diagnose_motion(prev, cur, wrong, JITTER, PREV_JITTER)
    assert not d.ok and d.best == mistake, (d.best, d.message)
    assert d.message.startswith("your motion vectors") and words in d.message
    assert "as given" in d.message


def test_flipped_y_message_quotes_both_errors():
    prev, cur, motion = _pair()
    d = diagnose_motion(prev, cur, apply_mistake(motion, "flipped in y"), JITTER, PREV_JITTER)
    assert f"{d.errors['flipped in y']:.3g}" in d.message and f"{d.baseline['flipped in y']:.3g}" in d.message
    assert d.errors["flipped in y"] * 3 < d.baseline["flipped in y"] and d.wins["flipped in y"] > 0.8


@pytest.mark.parametrize("jitters", [((0.0, 0.0), (0.0, 0.0)), (JITTER, PREV_JITTER)])
def test_static_scene_with_zero_vectors_is_not_flagged(jitters):
    scene = PatternScene((64, 40), bg_velocity=(0, 0), fg_velocity=(0, 0))
    prev, cur, motion = _pair(scene, *jitters)
    assert not motion.any()
    d = diagnose_motion(prev, cur, motion, *jitters)
    assert d.ok and d.best == "as given" and not d.conclusive, d.message
    assert "needs motion" in d.message


def test_motion_over_flat_content_is_inconclusive_not_wrong():
    flat = np.full((32, 48, 3), 0.4, np.float32)
    motion = np.zeros((32, 48, 2), np.float32)
    motion[..., 1] = -3.0
    d = diagnose_motion(flat, flat, motion)
    assert d.ok and not d.conclusive and "cannot tell" in d.message


def test_vectors_leaving_the_screen_are_not_ok():
    prev, cur, motion = _pair()
    d = diagnose_motion(prev, cur, motion * 100, JITTER, PREV_JITTER)
    assert not d.ok and "off screen" in d.message and "pixels" in d.message


def test_diagnose_checks_its_inputs():
    prev, cur, motion = _pair()
    with pytest.raises(plugin.InvalidInputError, match="motion"):
        diagnose_motion(prev, cur, motion[:-1])
    with pytest.raises(plugin.InvalidInputError, match="previous_color"):
        diagnose_motion(prev[:, :-1], cur, motion)
    with pytest.raises(plugin.InvalidInputError, match="color"):
        diagnose_motion(prev, cur[..., 0], motion)
    with pytest.raises(plugin.InvalidInputError, match="mistake"):
        apply_mistake(motion, "upside down")


# -- self_test ----------------------------------------------------------------------------

def test_self_test_bilinear_passes_with_figures_in_range():
    r = self_test("bilinear")
    assert r.ok, str(r)
    names = [c.name for c in r.checks]
    assert names == ["outputs finite, display size", "upscaled vs display pattern", "generated frames at their instants",
                     "engine motion vectors", "diagnosis detects flipped y"]
    psnr = r.check("upscaled vs display pattern").figure
    assert PSNR_THRESHOLDS["bilinear"] <= psnr < 60
    assert 25 < r.check("generated frames at their instants").figure < 60
    assert r.check("engine motion vectors").figure < 0.05
    text = str(r)
    assert "PASS" in text and "FAIL" not in text and "self-test PASSED" in text and "dB" in text


def test_self_test_reports_a_flipped_y_engine():
    r = self_test("bilinear", mistake="flipped in y")
    assert not r.ok
    engine = r.check("engine motion vectors")
    assert engine.passed is False and "flipped in y" in engine.detail
    assert r.check("generated frames at their instants").passed is False  # extrapolated the wrong way
    assert r.check("diagnosis detects flipped y").passed  # the detector itself still works
    assert "FAIL" in str(r) and "self-test FAILED" in str(r)


@pytest.mark.parametrize("pass_name, n", [("stss", 3), ("warp_fill", 2), ("vfi_cheap", 3), ("bilinear", 1)])
def test_self_test_checks_every_generated_frame_at_its_instant(pass_name, n):
    """At 2x to 4x each generated frame is closest to the pattern at its own instant; the
    interpolation pass is judged at the instants it shows, a rendered frame late."""
    r = self_test(pass_name, generated_frames=n, frames=4)
    assert r.ok, str(r)
    c = r.check("generated frames at their instants")
    assert c.detail.startswith(f"{n} generated:") and c.detail.count(" dB at ") == n, c.detail
    assert f"{n} generated per rendered one" in str(r)


def test_self_test_catches_generated_frames_shown_at_the_wrong_instant(monkeypatch):
    """A context that presents each generated frame one slot late is caught: frame k shows
    what belongs to frame k - 1 (the first, the rendered frame again)."""
    from plugin.context import Context

    real = Context.dispatch

    def late(self, frame):
        res = real(self, frame)
        shifted = [res.output] + [g.color for g in res.generated[:-1]]
        for g, color in zip(res.generated, shifted):
            g.color = color
        return res

    monkeypatch.setattr(Context, "dispatch", late)
    r = self_test("warp_fill", generated_frames=3, frames=4)
    assert r.check("generated frames at their instants").passed is False
    assert "looks like" in r.check("generated frames at their instants").detail


def test_self_test_without_generated_frames_and_a_bad_pass():
    r = self_test("bilinear", generated_frames=0, frames=3)
    assert r.ok and r.check("generated frames at their instants").passed is None
    bad = self_test("no_such_pass")
    assert not bad.ok and bad.checks[0].name == "dispatch" and "pass_name" in bad.checks[0].detail


def test_command_line(capsys):
    assert main(["--pass", "bilinear", "--frames", "3"]) == 0
    assert "self-test PASSED" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "--pass" in capsys.readouterr().out
    p = subprocess.run([sys.executable, "-m", "plugin.selftest", "--frames", "3", "--mistake", "flipped in y"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert "look flipped in y" in p.stdout


# -- debug views ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scenario():
    sc = run_scenario("bilinear", frames=3)
    yield sc
    sc.ctx.destroy()


def _assert_image(img, size=(128, 80)):
    w, h = size
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (h, w, 3)
    assert img.std() > 5, "a constant image"


def test_debug_views_shapes_and_content(scenario):
    ctx = scenario.ctx
    views = debug.debug_views(ctx)
    assert set(views) == {"output", "motion", "depth", "holes", "generated", "object motion", "credibility"}
    for img in views.values():
        _assert_image(img)
    # motion: background and square move differently -> different colours; depth: the square is nearer
    ids = scenario.scene.gbuffers(scenario.records[-1]["t"], scenario.records[-1]["jitter"])["object_id"]
    sq = np.kron(ids == 2, np.ones((2, 2), bool))
    motion, depth = views["motion"].astype(int), views["depth"].astype(int)
    assert np.abs(motion[sq].mean(0) - motion[~sq].mean(0)).sum() > 100
    assert depth[sq].mean() > depth[~sq].mean() + 100
    # generated frames are tinted magenta: more red + blue than green compared to the output
    g, o = views["generated"].astype(float), views["output"].astype(float)
    assert (g[..., 0] + g[..., 2] - 2 * g[..., 1]).mean() > (o[..., 0] + o[..., 2] - 2 * o[..., 1]).mean() + 20
    # object motion: this scenario's camera never moves (identity view), so everything that
    # moves moves by itself: the object motion is the whole generated frame's motion
    same = np.abs(views["object motion"].astype(int) - debug.motion_view(ctx, index=1).astype(int))
    assert same.mean() < 1.0
    # credibility: exact motion vectors are credible except where the square uncovered the wall
    cred = views["credibility"].astype(int)
    orange = (cred[..., 0] - cred[..., 2]) > 60
    core = sq.copy()  # the square (of the rendered frame) well inside its edges
    for axis in (0, 1):
        for shift in (-6, 6):
            core &= np.roll(sq, shift, axis=axis)
    assert core.any() and 0 < orange.mean() < 0.1 and not orange[core].any()
    _assert_image(debug.motion_view(ctx, index=1))
    _assert_image(debug.generated_tinted(ctx, index=1))
    wheel = debug.motion_wheel(32)
    assert wheel.shape == (32, 32, 3) and wheel.dtype == np.uint8


def test_reactive_view(scenario):
    ctx = scenario.ctx
    reactive = np.zeros((40, 64), np.float32)
    reactive[10:20, 10:30] = 1.0
    img = debug.reactive_view(ctx, reactive).astype(int)
    _assert_image(img.astype(np.uint8))
    inside, outside = img[25:35, 25:55], img[60:75, 90:120]
    assert (inside[..., 0] - inside[..., 2]).mean() > 100  # yellow
    assert np.abs(outside[..., 0] - outside[..., 2]).mean() < 5  # grey
    with pytest.raises(plugin.InvalidInputError, match="reactive"):
        debug.reactive_view(ctx, reactive[:10])


def test_reset_indicator():
    img = np.full((40, 60, 3), 90, np.uint8)
    same = debug.reset_indicator(img, False)
    assert np.array_equal(same, img) and same is not img
    r = debug.reset_indicator(img, True)
    assert tuple(r[0, 0]) == (255, 0, 0) and tuple(r[-1, 30]) == (255, 0, 0) and tuple(r[20, -1]) == (255, 0, 0)
    assert tuple(r[20, 30]) == (90, 90, 90)
    assert np.array_equal(img, np.full((40, 60, 3), 90, np.uint8))  # the input is left alone


def _square_frames(index, x0, jitter, generated_jitter):
    """A static textured wall (depth 10, id 1) behind a square (depth 5, id 2) whose left edge
    is at column ``x0`` and that moves +8 px per rendered frame (+4 per display frame)."""
    w, h = 32, 24
    yy, xx = np.mgrid[0:h, 0:w]
    wall = np.stack([0.3 + 0.2 * np.sin(xx * 1.3), 0.3 + 0.2 * np.cos(yy * 0.9), np.full((h, w), 0.35)], -1)

    def buffers(left):
        inside = (xx >= left) & (xx < left + 8) & (yy >= 8) & (yy < 16)
        color = np.where(inside[..., None], np.array([1.5, 1.2, 0.2]), wall).astype(np.float32)
        motion = np.zeros((h, w, 2), np.float32)
        motion[inside, 0] = -4.0
        gb = {"depth": np.where(inside, 5.0, 10.0).astype(np.float32), "motion": motion,
              "albedo": np.clip(color, 0, 1), "object_id": np.where(inside, 2, 1).astype(np.int32)}
        return color, gb

    proj, view = perspective(math.radians(60), w / h, 0.1, 100.0), np.eye(4)
    color, gb = buffers(x0)
    _, ggb = buffers(x0 + 4)
    gen = plugin.GeneratedFrameDescription(jitter_px=generated_jitter, view=view, proj=proj, **ggb)
    return plugin.FrameDescription(frame_index=index, color=color, jitter_px=jitter, frame_time_ms=33.3,
                                   near=0.1, far=100.0, fov_y_rad=math.radians(60), view=view, proj=proj,
                                   generated=[gen], **gb)


def test_hole_mask_view_shows_uncovered_background():
    # no jitter: the hand-made buffers are per pixel index (a jittered render would shift them)
    desc = plugin.ContextDescription(max_render_size=(32, 24), display_size=(64, 48), pass_name="bilinear")
    with plugin.Context(desc) as ctx:
        ctx.dispatch(_square_frames(0, 4, (0.0, 0.0), (0.0, 0.0)))
        ctx.dispatch(_square_frames(1, 12, (0.0, 0.0), (0.0, 0.0)))
        img = debug.hole_mask_view(ctx).astype(int)
        assert img.shape == (48, 64, 3)
        red = (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)
        # the square (rows 8..15) left render columns 12..15 uncovered: display rows 16..31, columns 24..31
        expected = np.zeros_like(red)
        expected[16:32, 24:32] = True
        assert np.array_equal(red, expected)
        grey = img[~red]
        assert np.abs(grey[:, 0] - grey[:, 1]).max() <= 1 and grey.std() > 3  # the frame, in grey
        # the recomputed mask (for passes without a history) agrees with the pass's own
        own = debug.hole_valid_mask(ctx)
        ctx.pass_.history.previous_valid = None
        assert torch.equal(debug.hole_valid_mask(ctx), own)


def test_views_need_a_dispatch_and_a_live_context(scenario):
    desc = plugin.ContextDescription(max_render_size=(32, 24), display_size=(64, 48), pass_name="bilinear")
    calls = [debug.motion_view, debug.depth_view, debug.hole_mask_view, debug.generated_tinted, debug.output_view,
             debug.debug_views, debug.hole_valid_mask, lambda c: debug.reactive_view(c, np.zeros((24, 32))),
             lambda c: debug.save_debug_sheet(c, "/nonexistent/never.png")]
    ctx = plugin.Context(desc)
    for call in calls:
        with pytest.raises(plugin.ContextStateError, match="no frame dispatched yet"):
            call(ctx)
    ctx.dispatch(_square_frames(0, 4, (0.1, -0.2), (-0.3, 0.1)))
    _assert_image(debug.hole_mask_view(ctx), (64, 48))
    ctx.destroy()
    for call in calls:
        with pytest.raises(plugin.ContextStateError, match="no frame dispatched yet.*destroyed"):
            call(ctx)
    # a context that generates no frame has no hole mask nor generated frame to show
    with plugin.Context(plugin.ContextDescription((32, 24), (64, 48), pass_name="bilinear",
                                                  generated_frames=0)) as c0:
        f = _square_frames(0, 4, (0.1, -0.2), (-0.3, 0.1))
        from dataclasses import replace
        c0.dispatch(replace(f, generated=[]))
        assert set(debug.debug_views(c0)) == {"output", "motion", "depth"}
        assert debug.reset_indicator(debug.output_view(c0), True).shape == (48, 64, 3)
        assert tuple(debug.output_view(c0)[0, 0]) == (255, 0, 0)  # the first frame is a reset
        for call in (debug.hole_mask_view, debug.generated_tinted):
            with pytest.raises(plugin.ContextStateError, match="generated no frame"):
                call(c0)


def test_save_debug_sheet(scenario, tmp_path):
    from PIL import Image

    path = debug.save_debug_sheet(scenario.ctx, tmp_path / "sheet.png")
    im = Image.open(path)
    assert im.format == "PNG" and im.width > 3 * 128 and im.height > 2 * 80
    assert path.stat().st_size < 300_000


def test_shipped_debug_picture_is_small():
    path = ROOT / "docs" / "images" / "plugin_debug_views.png"
    assert path.exists(), "regenerate it: python -m plugin.debug"
    assert path.stat().st_size < 300_000
