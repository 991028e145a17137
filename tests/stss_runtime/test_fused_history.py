"""The history's per-frame work inside the exported graph (``stss_runtime.history_graph``):
the fused STSS pass gives the frames and hole masks of the eager pass on real frames, through
resets and at sizes that are not multiples of 8, on torch, ONNX Runtime and OpenVINO; the
plugin runs it on the CPU back-ends."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import plugin
from stss_runtime import framedump
from stss_runtime.frame import G_BUFFERS, frame_from_dump
from stss_runtime.history import HistoryError
from stss_runtime.history_graph import _background_motion
from stss_runtime.models import build_model
from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import encode_color
from stss_runtime.passes import StssPass
from stss_runtime.passes.stss_fused import StssFusedPass

#: encoded-colour tolerance against the eager pass (torch: the same arithmetic, reordered)
TOLERANCE = {("torch", "fp32"): 1e-5, ("onnxruntime", "fp32"): 2e-4, ("openvino", "fp32"): 2e-4,
             ("openvino", "fp16"): 4e-2}


def _frames(folder, n, crop=None, reset_at=None):
    meta = framedump.read_meta(folder)
    out = []
    for i in range(n):
        f = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0), reset=(i == reset_at))
        if crop:
            w, h = crop
            kw = {k: getattr(f, k)[..., :h, :w] for k in G_BUFFERS}
            f = replace(f, **kw, color=None if f.color is None else f.color[..., :h, :w])
        out.append(f)
    return out


def _run(cls, model, backend, precision, frames):
    p = cls(model=model, backend=backend, precision=precision)
    w, h = frames[0].size
    p.setup((w, h), (2 * w, 2 * h))
    outs, holes = [], []
    for f in frames:
        outs.append(encode_color(p(f)).clone())
        pv = p.history.previous_valid
        holes.append(None if pv is None else pv.clone())
    return outs, holes


@pytest.mark.parametrize("crop", [None, (60, 36)], ids=["64x40", "60x36"])
def test_fused_pass_gives_the_eager_frames_and_hole_masks(tiny_dump, tmp_path, monkeypatch, crop):
    monkeypatch.setenv("STSS_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = build_model("stss_tiny")
    frames = _frames(tiny_dump, 10, crop, reset_at=6)  # a camera cut on a rendered frame
    ref, ref_holes = _run(StssPass, model, "torch", "fp32", frames)
    for (backend, precision), tol in TOLERANCE.items():
        outs, holes = _run(StssFusedPass, model, backend, precision, frames)
        for i, (a, b) in enumerate(zip(outs, ref)):
            assert a.shape == b.shape
            err = (a - b).abs().max().item()
            assert err <= tol, f"{backend} {precision} frame {i}: {err}"
        for i, (a, b) in enumerate(zip(holes, ref_holes)):
            assert (a is None) == (b is None), i
            if a is not None:
                assert torch.equal(a, b), f"{backend} {precision} frame {i}: hole masks differ"


def test_fused_history_keeps_the_eager_rules(tiny_dump):
    torch.manual_seed(0)
    frames = _frames(tiny_dump, 4)
    p = StssFusedPass(model=build_model("stss_tiny"))
    p.setup(frames[0].size, (2 * frames[0].size[0], 2 * frames[0].size[1]))
    with pytest.raises(HistoryError, match="needs a shaded frame"):
        p(frames[1])  # an extrapolated frame first
    for f in frames:
        p(f)
    assert [e.index for e in p.history.entries] == [0, 2]
    p(replace(frames[0], index=9))  # an index gap clears the history
    assert [e.index for e in p.history.entries] == [9] and p.history.previous_valid is None


def test_background_motion_in_the_graph_is_the_runtime_s():
    g = torch.Generator().manual_seed(1)
    motion = torch.randn(1, 2, 37, 53, generator=g)
    for depth in (torch.rand(1, 1, 37, 53, generator=g) * 10,
                  (torch.rand(1, 1, 37, 53, generator=g) * 3).floor() + 1):  # many ties
        assert torch.equal(_background_motion(motion, depth), W.background_motion(motion, depth))


def test_the_plugin_runs_the_fused_pass_on_the_cpu_backends():
    desc = dict(max_render_size=(64, 40), display_size=(128, 80))
    for backend, precision, fused in (("openvino", "fp32", True), ("openvino", "fp16", True),
                                      ("onnxruntime", "fp32", True), ("onnxruntime", "fp16", False),
                                      ("torch", "fp32", False)):
        d = plugin.ContextDescription(**desc, pass_name="stss", backend=backend, precision=precision)
        with plugin.Context(d) as ctx:
            assert isinstance(ctx.pass_, StssFusedPass) is fused, (backend, precision)
    with plugin.Context(plugin.ContextDescription(**desc, pass_name="stss_taa", backend="openvino")) as ctx:
        assert not isinstance(ctx.pass_, StssFusedPass)
