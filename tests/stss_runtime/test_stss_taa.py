"""``stss_taa``: STSS outputs accumulated at display resolution (StssTaaPass)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from stss_runtime import framedump
from stss_runtime.checkpoint import save_weights
from stss_runtime.evaluation.evaluate import make_pass
from stss_runtime.frame import frame_from_dump
from stss_runtime.history import History
from stss_runtime.models import build_model
from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import encode_color
from stss_runtime.passes import StssPass, StssTaaPass
from stss_runtime.synthetic import synthetic_frames


def _tiny_model():
    torch.manual_seed(0)
    return build_model("stss_tiny")


def test_alternating_aliasing_is_averaged_on_a_static_view():
    """Two STSS frames that disagree pixel by pixel (a checkerboard and its inverse, as
    aliasing flips between jitter positions) settle to their mean, the residual flicker
    shrunk by alpha / (2 - alpha) (the geometric series of the blend); the 3x3 clamp box
    holds both colours, so it does not interfere."""
    size = (32, 24)
    # one object that does not move: the runtime keeps the history everywhere
    frames = [dataclasses.replace(f, motion=torch.zeros_like(f.motion), object_id=torch.zeros_like(f.object_id))
              for f in synthetic_frames(size, 20)]
    p = StssTaaPass(model=_tiny_model())
    p.setup(size, (64, 48))
    ys, xs = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    sign = ((xs + ys) % 2 * 2 - 1).float().view(1, 1, 48, 64).expand(1, 3, 48, 64)
    amplitude = 0.2
    seq = iter([0.5 + (amplitude if i % 2 else -amplitude) * sign for i in range(len(frames))])
    p.run = lambda inputs: next(seq)  # stand-in network outputs (encoded colour)
    for f in frames:
        out = encode_color(p(f))
    flicker = (out - 0.5).abs()
    expected = amplitude * p.alpha / (2 - p.alpha)
    assert torch.allclose(flicker, torch.full_like(flicker, expected), atol=1e-3), (flicker.min(), flicker.max())


def test_holes_and_resets_show_the_plain_stss_frame(tiny_dump):
    """Where the runtime's hole mask (dilated by keep_window) marks a disocclusion, and on
    the first frame after a reset, the output is STSS's own; elsewhere the history blends in."""
    meta = framedump.read_meta(tiny_dump)
    frames = [frame_from_dump(framedump.read_frame(tiny_dump, i), meta, i, shaded=(i % 2 == 0))
              for i in range(12)]
    model = _tiny_model()
    taa, plain, history = StssTaaPass(model=model), StssPass(model=model), History()
    for q in (taa, plain):
        q.setup((64, 40), (128, 80))
    hole_pixels = blended = 0
    for i, f in enumerate(frames):
        a, b = taa(f), plain(f)
        history.step(f)
        if i == 0:
            assert torch.equal(a, b)
            continue
        kept = F.max_pool2d(history.previous_valid, taa.keep_window, 1, taa.keep_window // 2)
        holes = W.resample(kept, (128, 80), mode="nearest") < 0.5
        holes = holes.expand_as(a)
        assert torch.allclose(a[holes], b[holes], atol=1e-6)
        hole_pixels += int(holes[0, 0].sum())
        blended += int(((a - b).abs() > 1e-3)[~holes].sum())
    assert hole_pixels > 0, "the tiny traffic sequence should open some holes"
    assert blended > 0
    taa.reset()
    plain.reset()
    assert torch.equal(taa(frames[0]), plain(frames[0]))


def test_evaluate_weights_reach_stss_taa(tmp_path):
    weights = tmp_path / "w.pt"
    save_weights(weights, _tiny_model(), "stss_tiny")
    p = make_pass("stss_taa", weights)
    assert isinstance(p, StssTaaPass)
    assert sum(t.numel() for t in p.model.parameters()) == sum(t.numel() for t in build_model("stss_tiny").parameters())


def test_listed_by_the_plugin_and_demo():
    import plugin
    from demo_renderer.pipeline import MODE_LABELS, MODES

    assert "stss_taa" in plugin.capabilities()["passes"]
    assert MODES["stss_taa"] == ("stss_taa", 1) and "accumulat" in MODE_LABELS["stss_taa"]
