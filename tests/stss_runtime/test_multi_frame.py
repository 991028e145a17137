"""Several generated (unshaded) display frames in a row (3x and 4x frame rates): the
runtime's history chains the motion through every one of them, every pass runs the
schedule, and the evaluator scores each extrapolation distance apart."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from stss_runtime import framedump
from stss_runtime.evaluation.evaluate import frame_kind, frame_kinds
from stss_runtime.frame import frame_from_dump
from stss_runtime.history import History
from stss_runtime.ops.encoding import display_transform, encode_color
from stss_runtime.ops.metrics import rgb_to_y
from stss_runtime.models import build_model
from stss_runtime.passes import PASSES, StssRecurrentPass, create_pass

from .test_passes_evaluate import _passes
from .test_warp_history import H, Wd, _frame


def test_history_chains_motion_through_three_unshaded_frames():
    """A square moving 4 px per display frame; frame 0 shaded, 1-3 not: at frame 3 (12 px
    on) the last shaded frame's square is read 12 px back, the 12 columns it uncovered are
    holes, and the network's history is frame 0 alone (the newest shaded frame)."""
    h = History()
    f0 = _frame(0, 10)
    h.step(f0)
    for i in (1, 2):
        h.step(_frame(i, 10 + 4 * i, shaded=False))
    inp = h.step(_frame(3, 22, shaded=False))
    expected = torch.ones((H, Wd))
    expected[8:16, 10:22] = 0.0
    assert torch.equal(inp.mask[0, 0], expected), inp.mask[0, 0]
    src = encode_color(f0.color)
    assert torch.allclose(inp.x[:, 3:, 8:16, 22:32], src[..., 8:16, 10:20], atol=1e-4)  # the square
    assert torch.allclose(inp.x[:, 3:, :8], src[:, :, :8], atol=1e-4)  # the static wall (rows 0-7)
    assert torch.allclose(inp.history[:, 8:11], inp.x[:, 3:], atol=1e-5)  # newest slot: frame 0 warped
    assert inp.history[:, :8].abs().sum() == 0  # two empty slots
    # the next rendered frame is stored, and its successor reads it, not frame 0
    h.step(_frame(4, 26))
    nxt = h.step(_frame(5, 30, shaded=False))
    assert [e.index for e in h.entries] == [0, 4]
    assert nxt.mask[0, 0, 8:16, 26:30].sum() == 0  # uncovered since frame 4
    assert nxt.mask[0, 0, 8:16, 10:26].min() == 1  # background in frame 4 (a hole if frame 0 were read)


def test_frame_kinds_name_each_distance():
    assert [frame_kind(i) for i in range(4)] == ["sf", "ef", "sf", "ef"]
    assert [frame_kind(i, 3) for i in range(6)] == ["sf", "ef1", "ef2", "ef3", "sf", "ef1"]
    assert frame_kinds(1) == ("sf", "ef") and frame_kinds(2) == ("sf", "ef", "ef1", "ef2")


@pytest.mark.parametrize("n", [2, 3])
def test_every_pass_runs_several_generated_frames_in_a_row(tiny_dump, n):
    meta = framedump.read_meta(tiny_dump)
    frames = [frame_from_dump(framedump.read_frame(tiny_dump, i), meta, i, shaded=(i % (n + 1) == 0))
              for i in range(2 * (n + 1) + 1)]
    passes = _passes()
    passes["stss_recurrent"] = StssRecurrentPass(model=build_model("stss_recurrent_tiny"))
    for name in ("vfi", "vfi_dense", "vfi_cheap"):  # interpolation: made for n frames between rendered ones
        p = passes[name]
        passes[name] = type(p)(model=p.model, generated_frames=n) if p.model is not None \
            else type(p)(generated_frames=n)
    assert set(passes) == set(PASSES)
    for name, p in passes.items():
        p.setup((64, 40), (128, 80))
        outs = [p(f) for f in frames]
        for i, out in enumerate(outs):
            assert out.shape == (1, 3, 80, 128), name
            assert torch.isfinite(out).all() and out.min() >= 0, (name, i)
        if p.latency_frames == 0:  # each generated frame moves on: no two outputs in a run are the same
            for i in range(1, len(frames)):
                assert not torch.equal(outs[i], outs[i - 1]), (name, i)


def test_evaluate_scores_each_distance_at_4x(tiny_dump, tmp_path):
    out_json = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "stss_runtime", "evaluate", "--data", str(tiny_dump),
                        "--methods", "stss,warp_fill,temporal,vfi_cheap", "--generated-frames", "3", "--warmup", "4",
                        "--motion-tiers", "", "--json", str(out_json), "--crops", str(tmp_path / "crops"),
                        "--no-progress", "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(out_json.read_text())
    assert res["generated_frames"] == 3
    # frames 4..13: rendered 4, 8, 12; ef1 5, 9, 13; ef2 6, 10; ef3 7, 11
    assert res["frames"] == {"sf": 3, "ef": 7, "ef1": 3, "ef2": 2, "ef3": 2}
    for line in ("EF1 ", "EF2 ", "EF3 ", "per extrapolation distance"):
        assert line in r.stdout, line
    for m in res["methods"]:
        assert set(res["methods"][m]) == {"sf", "ef", "ef1", "ef2", "ef3"}
        assert set(res["stability"][m]) == {"sf", "ef", "ef1", "ef2", "ef3"}
        assert set(res["time_ms_by_kind"][m]) == {"sf", "ef1", "ef2", "ef3"}
    # recomputed: each distance's figure is the mean over exactly its frames, for an
    # extrapolating baseline and for interpolation (3 display frames late)
    meta = framedump.read_meta(tiny_dump)
    for m, late in (("warp_fill", 0), ("vfi_cheap", 3)):
        p = create_pass(m, generated_frames=3) if late else create_pass(m)
        p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
        per_kind: dict[str, list[float]] = {}
        for i in range(14):
            out = p(frame_from_dump(framedump.read_frame(tiny_dump, i), meta, i, shaded=(i % 4 == 0)))
            shown = i - late
            if shown < 4:
                continue
            gt = framedump.read_frame(tiny_dump, shown)["gt"].astype(np.float32)
            d = rgb_to_y(display_transform(gt)) - rgb_to_y(display_transform(out[0].permute(1, 2, 0).numpy()))
            per_kind.setdefault(frame_kind(shown, 3), []).append(10 * math.log10(255.0 ** 2 / float(np.mean(d * d))))
        assert sorted(per_kind) == ["ef1", "ef2", "ef3", "sf"]
        for kind, values in per_kind.items():
            assert res["methods"][m][kind]["all"]["psnr"] == pytest.approx(float(np.mean(values)), abs=1e-6), (m, kind)
    crops = sorted(p.name for p in (tmp_path / "crops").iterdir())
    assert [c.split("_")[1] for c in crops] == ["ef1", "ef2", "ef3", "sf"], crops
