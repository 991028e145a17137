"""1 to 3 generated frames per rendered frame through the plugin, and the dynamic
multiplier (``generated_frames="auto"``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import plugin
from plugin.pacing import FrameMultiplier

from .campaign import SyntheticFrames


def _down(img: np.ndarray) -> np.ndarray:
    """Display (80, 128, 3) -> render (40, 64, 3) by 2x2 means."""
    return img.reshape(40, 2, 64, 2, 3).mean((1, 3))


@pytest.mark.parametrize("pass_name", ["warp_fill", "stss"])
def test_three_generated_frames_each_show_their_own_instant(pass_name):
    """4x: generated frame k is presented at (k + 1) / 4 of the frame time and shows the
    pattern where it is at its own display frame (the motion chained through the frames
    before it), closer to that than to the rendered frame it was extrapolated from."""
    frames = SyntheticFrames(generated_frames=3)
    with plugin.Context(frames.desc(pass_name=pass_name)) as ctx:
        assert ctx.next_generated_frames == 3
        for n in range(4):
            r = ctx.dispatch(frames.frame(n))
            assert (r.generated_frames, r.next_generated_frames, len(r.generated)) == (3, 3, 3)
            assert [g.present_time_ms for g in r.generated] == pytest.approx([33.3 * k / 4 for k in (1, 2, 3)])
        rendered = frames.arrays(frames.display_index(3))["color"]
        for k, g in enumerate(r.generated):
            own = frames.arrays(frames.display_index(3, k))["color"]
            out = _down(g.color)[:, 8:-8]  # the pattern enters at the left edge: not compared there
            err_own = float(np.abs(out - own[:, 8:-8]).mean())
            err_rendered = float(np.abs(out - rendered[:, 8:-8]).mean())
            # 0.5 render px per display frame: the farther, the plainer the difference
            assert err_own < (0.6 if k == 2 else 1.0) * err_rendered, (k, err_own, err_rendered)


def test_interpolation_at_4x_is_one_rendered_frame_late():
    """vfi_cheap with 3 generated frames: a dispatch's four outputs are the previous rendered
    frame's interval (m1, m2, m3 between it and this frame) and the previous rendered frame."""
    frames = SyntheticFrames(generated_frames=3)
    with plugin.Context(frames.desc(pass_name="vfi_cheap")) as ctx:
        assert ctx.pass_.latency_frames == 3
        results = [ctx.dispatch(frames.frame(n)) for n in range(3)]
    r = results[2]
    outs = [r.output] + [g.color for g in r.generated]  # display frames 5, 6, 7, 8 (= rendered frame 1)
    for k, out in enumerate(outs):
        shown = frames.arrays(frames.display_index(1) + k + 1)["color"]
        err = float(np.abs(_down(out)[:, 8:-8] - shown[:, 8:-8]).mean())
        assert err < 0.03, (k, err)


def test_the_multiplier_tracks_the_target_without_flapping():
    m = FrameMultiplier(120.0, smoothing=1.0)
    assert m.n == 1 and math.isnan(m.presented_hz())  # before any render time
    assert m.update(1000 / 30) == 3  # 30 rendered frames per second: 4x
    assert m.update(1000 / 45) == 2  # 45: 3x = 135 Hz
    assert m.update(1000 / 61) == 2  # 61: 2x = 122 Hz is short of 120 + 5%: 3x kept
    assert m.update(1000 / 65) == 1  # 65: 2x = 130 Hz
    assert m.update(1000 / 200) == 0  # rendering alone reaches it
    assert m.update(1000 / 10) == 3  # slower than 30: the most it can do
    # near a boundary (3x reaches 120 Hz at 40 rendered frames per second) the margin holds the choice
    m = FrameMultiplier(120.0, smoothing=1.0)
    m.update(1000 / 40.0)
    held = m.n
    for fps in (39.5, 40.5, 39.2, 40.8, 39.6):
        assert m.update(1000 / fps) == held, fps
    # a smoothed render time: one slow frame does not change the choice
    m = FrameMultiplier(120.0)
    for _ in range(20):
        m.update(1000 / 65)
    assert m.n == 1
    assert m.update(1000 / 52) == 1  # alone, 52 rendered frames per second would need 3x (104 Hz at 2x)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="render_ms"):
            m.update(bad)
    with pytest.raises(ValueError, match="target_hz"):
        FrameMultiplier(0.0)


def test_auto_chooses_each_frame_from_the_render_time_and_reports_it():
    frames = SyntheticFrames(generated_frames="auto", target_display_hz=120.0)
    render_ms = [33.3, 33.3, 33.3, 8.0, 8.0, 8.0, 8.0, 8.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 30.0, 30.0]
    chosen, presented = [], []
    with plugin.Context(frames.desc(pass_name="bilinear")) as ctx:
        for i, ms in enumerate(render_ms):
            n = ctx.next_generated_frames
            frames.schedule = tuple(chosen + [n])  # the frame source hands over what the context asks
            r = ctx.dispatch(frames.frame(i, render_time_ms=ms))
            assert r.generated_frames == n == len(r.generated)
            assert [g.present_time_ms for g in r.generated] == pytest.approx([33.3 * (k + 1) / (n + 1) for k in range(n)])
            assert r.next_generated_frames == ctx.next_generated_frames
            chosen.append(n)
            presented.append((n + 1) * 1000 / ms)
        ctx.reset()  # a camera cut keeps the render times measured
        assert ctx.next_generated_frames == r.next_generated_frames
    assert chosen[:4] == [1, 3, 3, 3], chosen  # 1 before a measurement, 4x at 30 rendered frames per second
    assert chosen[7] < 3 and chosen[13] < chosen[7], chosen  # fewer as rendering speeds up
    assert chosen[-1] > chosen[13], chosen  # more again when it slows down
    # with the render time steady, the presented rate reaches the target
    assert presented[7] >= 120 * 0.95 and presented[13] >= 120 * 0.95, presented


def test_auto_without_render_times_follows_the_frame_time():
    frames = SyntheticFrames(generated_frames="auto", target_display_hz=60.0)
    with plugin.Context(frames.desc(pass_name="bilinear")) as ctx:
        frames.schedule = (1,)
        ctx.dispatch(frames.frame(0))
        assert ctx.next_generated_frames == 1  # 30 rendered frames per second (33.3 ms) x2 = 60 Hz


def test_capabilities_list_the_counts():
    assert plugin.capabilities()["generated_frames"] == [0, 1, 2, 3, "auto"]
    frames = SyntheticFrames()
    with plugin.Context(frames.desc(pass_name="bilinear", generated_frames=0)) as ctx:
        r = ctx.dispatch(frames.frame(0, with_generated=False))
        assert (r.generated, r.generated_frames, r.next_generated_frames) == ([], 0, 0)
    assert isinstance(torch.zeros(1), torch.Tensor)


def test_generated_frames_are_tinted_by_distance():
    from plugin import debug
    from plugin.errors import InvalidInputError

    frames = SyntheticFrames(generated_frames=3)
    with plugin.Context(frames.desc(pass_name="warp_fill")) as ctx:
        ctx.dispatch(frames.frame(0))
        views = [debug.generated_tinted(ctx, k) for k in (1, 2, 3)]
        plain = [debug.tint(debug._linear_image(ctx, ctx.last_outputs[k]), amount=0.0) for k in (1, 2, 3)]
    for k, (view, base) in enumerate(zip(views, plain)):
        shift = view.astype(float).mean((0, 1)) - base.astype(float).mean((0, 1))
        want = np.asarray(debug.DISTANCE_TINTS[k], float) - base.astype(float).mean((0, 1))
        assert np.corrcoef(shift, want)[0, 1] > 0.99, (k, shift, want)  # towards its own colour
    assert len({debug.distance_tint(k) for k in (1, 2, 3)}) == 3
    with pytest.raises(InvalidInputError, match="distance"):
        debug.distance_tint(4)


def test_the_cpu_back_ends_fused_history_matches_torch_at_4x():
    """STSS on ONNX Runtime runs the history's work inside its graph (StssFusedPass): through
    three generated frames in a row it gives torch's frames."""
    frames = SyntheticFrames(generated_frames=3)
    outs = {}
    for backend in ("torch", "onnxruntime"):
        with plugin.Context(frames.desc(pass_name="stss", backend=backend)) as ctx:
            outs[backend] = [[r.output] + [g.color for g in r.generated]
                             for r in (ctx.dispatch(frames.frame(n)) for n in range(3))]
    for a, b in zip(outs["torch"], outs["onnxruntime"]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=1e-4)
