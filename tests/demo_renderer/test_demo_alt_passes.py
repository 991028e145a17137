"""The alternative passes in the demo: selectable modes driven like an engine would."""

from __future__ import annotations

import numpy as np

from demo_renderer.pipeline import MODE_LABELS, MODES, DemoPipeline
from demo_renderer.scenes import load_scene
from stss_runtime.checkpoint import WEIGHTS_DIR
from stss_runtime.ops.encoding import display_transform


def test_stss_flow_mode_runs_without_handing_over_motion_vectors(gl):
    assert "stss_flow" in MODES and "motion pass" in MODE_LABELS["stss_flow"]
    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="stss_flow")
    frames = [p.frame(i, i / 60) for i in range(4)]
    assert [f.kind for f in frames] == ["rendered", "generated", "rendered", "generated"]
    for f in frames:
        assert f.output.shape == (72, 128, 3) and np.isfinite(f.output).all()
    # the plugin got no motion vectors (zeros stand in), the pass estimated its own from the
    # second rendered frame on, and carries the object motion into the generated frames
    assert float(p.ctx.last_frames[0].motion.abs().max()) == 0.0
    assert p.ctx.pass_.object is not None and p.ctx.pass_.object.shape == (1, 2, 36, 64)
    p.close()


def test_vfi_mode_is_one_frame_late(gl):
    """Frame interpolation shows each display frame one frame late: the first rendered frame
    is shown twice (nothing earlier exists), then every display slot i shows frame i - 1
    (the interpolated frame i - 1 at a rendered slot, the upscale of the rendered frame i - 1
    at the slot after it). At 15 display fps the scene moves enough between frames that each
    output is measurably closer to native frame i - 1 than to native frame i."""
    assert (WEIGHTS_DIR / "vfi_refiner.pt").exists(), (
        "stss_runtime/weights/vfi_refiner.pt is tracked in git and missing from this checkout: restore it")
    assert "latency" in MODE_LABELS["vfi"]
    fps = 15.0
    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="vfi", display_fps=fps)
    assert p.ctx.pass_.latency_frames == 1
    frames = [p.frame(i, 1.0 + i / fps) for i in range(8)]
    native = [p.native(i, 1.0 + i / fps) for i in range(8)]
    p.close()
    for f in frames:
        assert f.output.shape == (72, 128, 3) and np.isfinite(f.output).all()
    assert np.array_equal(frames[1].output, frames[0].output), "the first frame is shown twice"

    def diff(a, b) -> float:
        return float(np.abs(display_transform(a).astype(float) - display_transform(b).astype(float)).mean())

    late = [diff(frames[i].output, native[i - 1]) for i in range(1, 8)]
    on_time = [diff(frames[i].output, native[i]) for i in range(1, 8)]
    print("mean |output - native| (8-bit), against frame i - 1:", [round(v, 2) for v in late],
          "against frame i:", [round(v, 2) for v in on_time])
    assert sum(late) < 0.85 * sum(on_time), (late, on_time)
    # the slots after a rendered one show that rendered frame's upscale: each closer to it
    assert all(late[i - 1] < on_time[i - 1] for i in (1, 3, 5, 7)), (late, on_time)


def test_learned_accumulation_mode_runs_through_the_plugin_and_keeps_its_history(gl):
    """``--mode stss_recurrent``: the shipped recurrent weights through the plugin, every
    other frame generated; its display-resolution state carries from frame to frame, so a
    reset (a camera cut) changes what the next rendered frame shows."""
    from stss_runtime.passes import StssRecurrentPass

    assert (WEIGHTS_DIR / "stss_recurrent_2x.pt").exists(), (
        "stss_runtime/weights/stss_recurrent_2x.pt is tracked in git and missing from this checkout: restore it")
    assert "learned" in MODE_LABELS["stss_recurrent"]
    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="stss_recurrent")
    assert isinstance(p.ctx.pass_, StssRecurrentPass)
    frames = [p.frame(i, 1.0 + i / 60) for i in range(5)]
    assert [f.kind for f in frames] == ["rendered", "generated", "rendered", "generated", "rendered"]
    for f in frames:
        assert f.output.shape == (72, 128, 3) and np.isfinite(f.output).all() and f.output.min() >= 0
    again = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="stss_recurrent")
    cold = again.frame(4, 1.0 + 4 / 60)  # the same frame with no history behind it
    assert np.abs(cold.output - frames[4].output).mean() > 1e-3, np.abs(cold.output - frames[4].output).mean()
    p.close()
    again.close()
