"""The evaluator scores a pass with latency on the display frame its output shows."""

from __future__ import annotations

import numpy as np

from stss_runtime import framedump
from stss_runtime.evaluation import evaluate
from stss_runtime.frame import gt_tensor
from stss_runtime.passes import PASSES
from stss_runtime.passes.base import Pass


def _oracle(folder, latency):
    class Oracle(Pass):
        """Returns the ground truth of the display frame it shows (``latency`` frames late)."""

        name = f"oracle{latency}"
        latency_frames = latency

        def execute(self, frame):
            self.last_stats = {"calls": 1.0}
            return gt_tensor(framedump.read_frame(folder, max(frame.index - latency, 0)))

    return Oracle


def test_latency_passes_are_scored_on_the_frame_they_show(tiny_dump, monkeypatch):
    late = _oracle(tiny_dump, 1)
    monkeypatch.setitem(PASSES, "oracle1", late)
    # a pass that claims no latency but is one frame late is scored against the wrong frames
    wrong = type("Wrong", (late,), {"name": "wrong", "latency_frames": 0})
    monkeypatch.setitem(PASSES, "wrong", wrong)
    cfg = evaluate.EvaluateConfig(data=tiny_dump, methods=("oracle1", "wrong"), warmup=4, motion_tiers=(),
                                  progress=False)
    res = evaluate.evaluate(cfg)
    right, off = res["methods"]["oracle1"], res["methods"]["wrong"]
    for kind in ("sf", "ef"):
        assert right[kind]["all"]["flip"] == 0.0  # identical images
        assert right[kind]["all"]["psnr"] > 60 or np.isinf(right[kind]["all"]["psnr"])
        assert off[kind]["all"]["psnr"] < 45 and off[kind]["all"]["flip"] > 0
    assert res["pass_stats"]["oracle1"] == {"calls": 1.0}
    assert res["frames"] == {"sf": 5, "ef": 5}
