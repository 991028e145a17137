"""The OpenVINO back-end and int8 quantisation keep the runner protocol and its parity: the
same outputs as torch fp32 on the same inputs, for every graph, at the export size and
another, within each precision's tolerance; and the STSS pass gives the same frames on
them as on torch."""

from __future__ import annotations

import pytest
import torch

from stss_runtime import framedump
from stss_runtime.backends import BackendUnavailable, availability, create_runner
from stss_runtime.export import export_onnx
from stss_runtime.frame import frame_from_dump
from stss_runtime.graphs import extranet_graph, stss_graph, supersampling_graph
from stss_runtime.models import build_model
from stss_runtime.ops.encoding import encode_color
from stss_runtime.passes import StssPass

pytest.importorskip("openvino", reason="the openvino back-end needs `pip install openvino` (a dependency of record)")

#: relative to max(1, |reference|): fp32 as the other back-ends; fp16 is bfloat16 on CPUs with
#: AMX / AVX512-BF16 (8 mantissa bits against float16's 11: the tolerance is float16's doubled);
#: int8 quantises every convolution's activations
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 2e-2}


@pytest.fixture(scope="module")
def specs():
    torch.manual_seed(0)
    return {"stss": stss_graph(build_model("stss_tiny").eval()),
            "supersampling": supersampling_graph(build_model("supersampling_tiny").eval()),
            "extranet": extranet_graph(build_model("extranet_tiny").eval())}


@pytest.fixture(scope="module")
def onnx_files(specs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx_ov")
    return {name: export_onnx(spec, folder / f"{name}.onnx", 16, 24) for name, spec in specs.items()}


CASES = [("openvino", "fp32", {}), ("openvino", "fp16", {}), ("openvino", "fp32", {"int8": True}),
         ("onnxruntime", "fp32", {"int8": True})]


@pytest.mark.parametrize("backend,precision,options", CASES,
                         ids=[f"{b}-{'int8' if o else p}" for b, p, o in CASES])
@pytest.mark.parametrize("name", ["stss", "supersampling", "extranet"])
def test_matches_torch_fp32(specs, onnx_files, name, backend, precision, options):
    spec = specs[name]
    runner = create_runner(spec, backend, precision, "cpu", onnx_path=onnx_files[name], **options)
    assert runner.backend == backend and runner.input_names == spec.input_names
    tol = TOLERANCE["int8" if options.get("int8") else precision]
    for h, w in ((16, 24), (24, 40), (16, 24)):  # the export size, another, and back (recompiled)
        inputs = spec.example_inputs(h, w, seed=h)
        with torch.inference_mode():
            ref = spec.module(*(inputs[n] for n in spec.input_names))
        out = runner(inputs)["output"]
        assert out.shape == ref.shape == spec.output_shape(h, w) and out.dtype == torch.float32
        err = (out - ref).abs().max().item()
        assert err <= tol * max(1.0, ref.abs().max().item()), err
        if precision == "fp16" or options:  # really reduced precision inside, not fp32 under another name
            assert err > 1e-5


def test_fp16_says_which_16_bit_type_it_computes_in(specs, onnx_files):
    runner = create_runner(specs["stss"], "openvino", "fp16", onnx_path=onnx_files["stss"])
    assert runner.inference_precision in ("bf16", "f16")
    assert create_runner(specs["stss"], "openvino", "fp32", onnx_path=onnx_files["stss"]).inference_precision == "f32"
    ok, why = availability()["openvino"]
    assert ok and "CPU only" in why and runner.inference_precision in why


def test_refuses_cuda_and_names_what_to_use(specs, onnx_files):
    with pytest.raises(BackendUnavailable, match="CPU only.*torch, onnxruntime or tensorrt"):
        create_runner(specs["stss"], "openvino", device="cuda", onnx_path=onnx_files["stss"])


def test_int8_file_is_cached_and_named_for_its_calibration(specs, onnx_files):
    from stss_runtime.quantize import quantized_onnx

    q = quantized_onnx(specs["supersampling"], onnx_files["supersampling"])
    assert q.exists() and "int8-synthetic" in q.name
    mtime = q.stat().st_mtime_ns
    assert quantized_onnx(specs["supersampling"], onnx_files["supersampling"]).stat().st_mtime_ns == mtime


def test_stss_pass_gives_the_same_frames_on_openvino(tiny_dump, tmp_path, monkeypatch):
    monkeypatch.setenv("STSS_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = build_model("stss_tiny")
    meta = framedump.read_meta(tiny_dump)
    frames = [frame_from_dump(framedump.read_frame(tiny_dump, i), meta, i, shaded=(i % 2 == 0)) for i in range(6)]
    outputs = {}
    for backend, precision in (("torch", "fp32"), ("openvino", "fp32"), ("openvino", "fp16")):
        p = StssPass(model=model, backend=backend, precision=precision)
        p.setup(frames[0].size, (2 * frames[0].size[0], 2 * frames[0].size[1]))
        outputs[(backend, precision)] = [p(f).clone() for f in frames]
    ref = outputs[("torch", "fp32")]
    for (backend, precision), outs in outputs.items():
        for i, (a, b) in enumerate(zip(outs, ref)):  # linear HDR colour: compare in the encoded space
            err = (encode_color(a) - encode_color(b)).abs().max().item()
            assert err <= 2 * TOLERANCE[precision], f"{backend} {precision} frame {i}: {err}"
