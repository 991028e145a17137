"""A held-out regression check: the shipped default pass (``stss_recurrent``: STSS with its
learned display-resolution accumulation) against the non-neural passes on a short
``traffic`` segment rendered here (the scene no weights were trained on).

Measured on this segment (Y-PSNR rendered / extrapolated): stss_recurrent 33.91 / 32.43 dB,
bilinear 32.64 / 29.93, temporal 32.70 / 30.38; plain STSS 32.55 / 31.58; the recurrent
network untrained (its parameter head zeroed: the temporal rule with STSS in the holes)
33.41 / 31.56. The margins below sit between the untrained and the shipped figures, so the
check fails when the trained accumulation stops carrying its weight.
"""

from __future__ import annotations

import numpy as np
import pytest

from demo_renderer.sequence import SequenceSpec
from stss_runtime import framedump
from stss_runtime.frame import frame_from_dump
from stss_runtime.ops import metrics
from stss_runtime.ops.encoding import display_transform
from stss_runtime.passes import create_pass

#: 12 display frames from t = 1 s: the whip-panning camera and the cars, 160x96 -> 320x192.
HELD_OUT = SequenceSpec(scene="traffic", frames=12, render_size=(160, 96), display_size=(320, 192),
                        gt_samples=8, fps=30.0, start_time=1.0)
WARMUP = 4  # frames run but not scored, so the histories fill
#: The default pass must beat the temporal upscaler by this much (Y-PSNR, dB) on rendered
#: and on extrapolated frames, and bilinear upsampling by at least as much.
SF_MARGIN_DB = 1.0
EF_MARGIN_DB = 1.5


@pytest.fixture(scope="module")
def held_out(gl_ctx, tmp_path_factory):
    from demo_renderer.scenes import load_scene
    from demo_renderer.sequence import render_sequence

    out = tmp_path_factory.mktemp("held_out") / "traffic"
    render_sequence(HELD_OUT, out, load_scene(HELD_OUT.scene), gl_ctx, progress=False)
    return out


def _psnr_by_kind(folder, pass_name: str) -> dict[str, float]:
    """Mean Y-PSNR (8-bit display values) of ``pass_name`` over the scored rendered ("sf")
    and extrapolated ("ef") frames, run in display order as the runtime schedules them."""
    meta = framedump.read_meta(folder)
    p = create_pass(pass_name)
    p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
    scores: dict[str, list[float]] = {"sf": [], "ef": []}
    for i in range(HELD_OUT.frames):
        arrays = framedump.read_frame(folder, i)
        out = p(frame_from_dump(arrays, meta, i, shaded=(i % 2 == 0)))
        if i < WARMUP:
            continue
        img = display_transform(out[0].permute(1, 2, 0).cpu().numpy())
        gt = display_transform(arrays["gt"].astype(np.float32))
        scores["sf" if i % 2 == 0 else "ef"].append(metrics.psnr_y(gt, img))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def test_the_shipped_default_pass_beats_bilinear_and_temporal_on_a_held_out_scene(held_out):
    import plugin
    from stss_runtime.checkpoint import default_weights, load_weights

    default = plugin.ContextDescription.__dataclass_fields__["pass_name"].default
    assert default == plugin.DEFAULT_PASS == "stss_recurrent"
    for preset in ("stss", "stss_recurrent"):  # the trunk's weights and the accumulation head's
        _, info = load_weights(default_weights(preset), expected_model=preset)
        assert not any(HELD_OUT.scene in str(d) for d in info.get("data", [])), info["data"]  # really held out
    ours, bilinear = _psnr_by_kind(held_out, default), _psnr_by_kind(held_out, "bilinear")
    temporal = _psnr_by_kind(held_out, "temporal")
    print(f"held-out traffic, Y-PSNR rendered / extrapolated: {default} {ours['sf']:.2f} / {ours['ef']:.2f} dB, "
          f"bilinear {bilinear['sf']:.2f} / {bilinear['ef']:.2f} dB, temporal {temporal['sf']:.2f} / "
          f"{temporal['ef']:.2f} dB")
    for base in (bilinear, temporal):
        assert ours["sf"] > base["sf"] + SF_MARGIN_DB, (ours, base)
        assert ours["ef"] > base["ef"] + EF_MARGIN_DB, (ours, base)
