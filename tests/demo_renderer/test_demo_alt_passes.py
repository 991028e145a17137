"""The alternative passes in the demo: selectable modes driven like an engine would."""

from __future__ import annotations

import numpy as np
import pytest

from demo_renderer.pipeline import MODE_LABELS, MODES, DemoPipeline
from demo_renderer.scenes import load_scene
from stss_runtime.checkpoint import WEIGHTS_DIR


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


@pytest.mark.skipif(not (WEIGHTS_DIR / "vfi_refiner.pt").exists(),
                    reason="the frame-interpolation refiner's weights are not shipped in this checkout")
def test_vfi_mode_is_one_frame_late(gl):
    assert "latency" in MODE_LABELS["vfi"]
    p = DemoPipeline(gl, load_scene("traffic"), (128, 72), mode="vfi")
    frames = [p.frame(i, i / 60) for i in range(6)]
    for f in frames:
        assert f.output.shape == (72, 128, 3) and np.isfinite(f.output).all()
    p.close()
