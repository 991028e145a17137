"""Every pass through the common interface, and the evaluation CLI's table, JSON and crops."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from stss_runtime import framedump
from stss_runtime.checkpoint import WeightsError, load_weights, save_weights
from stss_runtime.evaluation.evaluate import is_baseline
from stss_runtime.frame import frame_from_dump
from stss_runtime.models import build_model
from stss_runtime.ops.encoding import display_transform
from stss_runtime.ops.metrics import rgb_to_y
from stss_runtime.passes import (
    PASSES,
    PassError,
    StssFlowPass,
    StssPass,
    StssRecurrentPass,
    StssTaaPass,
    TwoStagePass,
    VfiDensePass,
    VfiPass,
    create_pass,
)


def _passes():
    torch.manual_seed(0)
    out = {name: create_pass(name) for name in ("bilinear", "bicubic", "temporal", "warp_fill")}
    out["stss"] = StssPass(model=build_model("stss_tiny"))
    out["stss_taa"] = StssTaaPass(model=build_model("stss_tiny"))
    out["stss_recurrent"] = StssRecurrentPass(model=build_model("stss_recurrent_tiny"))
    out["two_stage"] = TwoStagePass(supersampler=build_model("supersampling_tiny"),
                                    extrapolator=build_model("extranet_tiny"))
    out["stss_flow"] = StssFlowPass(model=build_model("stss_tiny"))
    out["vfi"] = VfiPass(model=build_model("vfi_refiner_tiny"))
    out["vfi_dense"] = VfiDensePass(model=build_model("vfi_refiner_tiny"))
    out["vfi_cheap"] = create_pass("vfi_cheap")
    return out


def test_every_pass_runs_the_sf_ef_schedule(tiny_dump):
    meta = framedump.read_meta(tiny_dump)
    frames = [frame_from_dump(framedump.read_frame(tiny_dump, i), meta, i, shaded=(i % 2 == 0))
              for i in range(6)]
    assert set(_passes()) == set(PASSES)
    for name, p in _passes().items():
        p.setup((64, 40), (128, 80))
        for f in frames:
            out = p(f)
            assert out.shape == (1, 3, 80, 128), name
            assert torch.isfinite(out).all() and out.min() >= 0, name
        p.reset()  # after a reset the next frame must be a rendered one again
        assert p(frames[0]).shape == (1, 3, 80, 128)


def test_pass_misuse_is_reported(tiny_dump):
    meta = framedump.read_meta(tiny_dump)
    f = frame_from_dump(framedump.read_frame(tiny_dump, 0), meta, 0)
    p = create_pass("bilinear")
    with pytest.raises(PassError, match="setup"):
        p(f)
    p.setup((32, 20), (64, 40))
    with pytest.raises(PassError, match=r"render size \(64, 40\).*\(32, 20\)"):
        p(f)
    with pytest.raises(ValueError, match="unknown pass 'nope'"):
        create_pass("nope")


def test_fixed_scale_networks_refuse_another_ratio():
    """A pixel-shuffle network only makes 2x; set up at another ratio it must say so (it
    used to crop its 2x picture to the requested size)."""
    passes = _passes()
    scales = {name: p.fixed_scale for name, p in passes.items()}
    assert scales == {**{n: None for n in passes}, "stss": 2, "stss_taa": 2, "stss_recurrent": 2, "two_stage": 2,
                      "stss_flow": 2}
    for name, scale in scales.items():
        if scale is None:
            passes[name].setup((64, 40), (96, 60))  # any ratio
            continue
        with pytest.raises(PassError, match=rf"{name}: display_size: expected 2x .* = 128x80 .*got 96x60"):
            passes[name].setup((64, 40), (96, 60))
    vfi_on_stss = VfiPass(inner="stss")  # an interpolator inherits its upscaler's scale
    assert vfi_on_stss.fixed_scale == 2


def test_baselines_are_the_passes_without_a_network_or_latency():
    assert {m for m in PASSES if is_baseline(m)} == {"bilinear", "bicubic", "temporal", "warp_fill"}
    runtime = {m for m, cls in PASSES.items() if cls.runtime_options}
    assert runtime == {"stss", "stss_taa", "stss_recurrent", "two_stage", "stss_flow", "vfi", "vfi_dense", "vfi_cheap"}
    assert {m for m, cls in PASSES.items() if cls.neural} <= runtime  # every network honours the context's


def test_neural_passes_refuse_runtime_options_they_cannot_honour():
    """The tile-pruned VFI refiner and tier 2's flow network run in eager torch fp32: another
    back-end or precision is refused at construction, naming the option (the plugin turns it
    into UnsupportedError naming desc.backend / desc.precision)."""
    from stss_runtime.passes import PassOptionError

    with pytest.raises(PassOptionError, match="backend: expected 'torch'") as e:
        create_pass("vfi", backend="onnxruntime")
    assert e.value.option == "backend" and e.value.actual == "onnxruntime"
    with pytest.raises(PassOptionError, match="precision: expected 'fp32'"):
        create_pass("vfi_dense", precision="fp16")
    with pytest.raises(PassOptionError, match="backend"):
        create_pass("stss_flow", tier=2, backend="tensorrt")
    cheap = create_pass("vfi_cheap", backend="onnxruntime", precision="fp16")  # no network: nothing to refuse
    assert cheap.model is None
    import plugin

    with pytest.raises(plugin.UnsupportedError, match="desc.precision"):
        plugin.Context(plugin.ContextDescription(max_render_size=(32, 16), display_size=(64, 32), pass_name="vfi",
                                                 precision="fp16"))


def test_missing_weights_name_the_command(tmp_path, monkeypatch):
    import stss_runtime.passes.stss as sp

    monkeypatch.setattr(sp, "default_weights", lambda name: tmp_path / "none.pt")
    with pytest.raises(WeightsError, match="python -m stss_runtime train stss"):
        StssPass()


def test_temporal_upscaler_converges_on_a_static_view(gl):
    """Jittered accumulation: on a still camera the temporal baseline gets much closer to the
    ground truth than one bilinear frame (the baseline really accumulates)."""
    from demo_renderer.renderer import Renderer
    from demo_renderer.scenes import load_scene
    from demo_renderer.sequence import SequenceSpec, render_frame

    r = Renderer(gl, load_scene("fence"), timers=False)
    spec = SequenceSpec("fence", 1, (96, 56), (192, 112), fps=1e9, gt_samples=16, start_time=1.0)
    meta = {"near": 0.1, "far": 120.0}
    temporal, bilinear = create_pass("temporal"), create_pass("bilinear")
    for p in (temporal, bilinear):
        p.setup((96, 56), (192, 112))
    for i in range(24):
        arrays, _ = render_frame(r, spec, i)  # fps 1e9: the same instant, new jitter each frame
        f = frame_from_dump(arrays, meta, i)
        t_out, b_out = temporal(f), bilinear(f)
    gt = display_transform(arrays["gt"].astype(np.float32)).astype(float)

    def psnr(x):
        d = display_transform(x[0].permute(1, 2, 0).numpy()).astype(float) - gt
        return 10 * math.log10(255 ** 2 / np.mean(d ** 2))

    assert psnr(t_out) > psnr(b_out) + 2.0, (psnr(t_out), psnr(b_out))


def test_evaluate_cli_table_json_and_crops(tiny_dump, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "stss_tiny.pt"
    save_weights(weights, build_model("stss_tiny"), "stss_tiny")
    out_json = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "stss_runtime", "evaluate", "--data", str(tiny_dump),
                        "--methods", "stss,stss_taa,bilinear,bicubic,temporal,warp_fill,two_stage",
                        "--weights", str(weights), "--warmup", "4", "--json", str(out_json),
                        "--crops", str(tmp_path / "crops"), "--no-progress", "--threads", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "PSNR" in r.stdout and "temporal" in r.stdout
    res = json.loads(out_json.read_text())
    assert res["frames"] == {"sf": 5, "ef": 5}
    # every method ran: the two-stage weights are tracked in git, so a skip is a failure
    assert set(res["methods"]) == {"stss", "stss_taa", "bilinear", "bicubic", "temporal", "warp_fill", "two_stage"}
    assert res["skipped"] == {}
    for m in res["methods"]:
        for kind in ("sf", "ef"):
            for region in ("all", "edge", "hole"):
                assert set(res["methods"][m][kind][region]) == {"psnr", "ssim", "flip"}
            assert math.isfinite(res["methods"][m][kind]["all"]["psnr"])
            assert 0 <= res["methods"][m][kind]["all"]["flip"] <= 1
    # the figures are those of the frames they name: recomputed here for the baselines and
    # for STSS with the weights handed over, mean per-frame Y-PSNR after the 4 warm-up frames
    meta = framedump.read_meta(tiny_dump)
    model, _ = load_weights(weights, expected_model="stss_tiny")
    for m, p in [*((b, create_pass(b)) for b in ("bilinear", "bicubic", "temporal", "warp_fill")),
                 ("stss", StssPass(model=model))]:
        p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
        per_kind = {"sf": [], "ef": []}
        for i in range(14):
            arrays = framedump.read_frame(tiny_dump, i)
            out = p(frame_from_dump(arrays, meta, i, shaded=(i % 2 == 0)))
            if i >= 4:
                d = (rgb_to_y(display_transform(arrays["gt"].astype(np.float32)))
                     - rgb_to_y(display_transform(out[0].permute(1, 2, 0).numpy())))
                per_kind["sf" if i % 2 == 0 else "ef"].append(10 * math.log10(255.0 ** 2 / float(np.mean(d * d))))
        for kind, values in per_kind.items():
            assert res["methods"][m][kind]["all"]["psnr"] == pytest.approx(float(np.mean(values)), abs=1e-6), (m, kind)
    crops = sorted(p.name for p in (tmp_path / "crops").iterdir())
    assert len(crops) == 2 and crops[0].endswith(".png")
    # ground truth | STSS | STSS + accumulation | best baseline, each 2x a 80-pixel crop
    assert Image.open(tmp_path / "crops" / crops[0]).size == (4 * 160, 160 + 16)


def test_crops_of_a_scene_file_dump_land_in_the_crops_folder_even_when_interpolation_scores_best(tmp_path):
    """A dump of a scene *file* names its scene by the file's path: the crops still go into
    the folder asked for, and an interpolation pass scoring best (it sees the next rendered
    frame) does not stand in for the best baseline: the sheet shows the best zero-latency one."""
    from stss_runtime.evaluation.evaluate import write_crops

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    scene_file = tmp_path / "elsewhere" / "my_scene.json"

    def row(psnr):
        return {k: {"all": {"psnr": psnr, "ssim": 1.0, "flip": 0.0}} for k in ("sf", "ef")}

    results = {"scene": str(scene_file.resolve()), "generated_frames": 1,
               "methods": {"stss": row(30.0), "bilinear": row(28.0), "temporal": row(29.0), "vfi": row(40.0)}}
    outputs = {m: {0: gt, 1: gt} for m in ("stss", "bilinear", "temporal", "vfi")}
    outputs["temporal"] = {0: np.zeros_like(gt), 1: np.zeros_like(gt)}  # where it errs: the crop's spot
    written = write_crops(tmp_path / "crops", results, {0: gt, 1: gt}, outputs, holes={})
    assert sorted(p.name for p in written) == ["my_scene_ef_frame000001.png", "my_scene_sf_frame000000.png"]
    assert all(p.parent == tmp_path / "crops" for p in written)
    assert not (scene_file.parent).exists()
    # ground truth | STSS | best baseline, the baseline being temporal (not vfi): its black panel
    with Image.open(written[0]) as im:
        sheet = np.asarray(im)
    s = 40
    assert sheet.shape == (2 * s + 16, 3 * 2 * s, 3)
    assert sheet[16:, 4 * s:].max() == 0 and sheet[16:, :2 * s].max() > 0
