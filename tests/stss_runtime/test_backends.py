"""Graphs and back-ends: the exported per-frame graph is what the runtime computes, every
back-end and precision matches torch fp32 on the same inputs, and misuse is reported.

TensorRT's own tests (engine build and cache) are in test_tensorrt_backend.py."""

from __future__ import annotations

import pytest
import torch

from stss_runtime import framedump
from stss_runtime.backends import BackendError, BackendUnavailable, availability, create_runner, onnx_for
from stss_runtime.export import export_onnx
from stss_runtime.frame import frame_from_dump
from stss_runtime.graphs import (
    at_precision,
    extranet_graph,
    pad_to_multiple,
    recurrent_graph,
    stss_graph,
    supersampling_graph,
    warp_in_graph,
)
from stss_runtime.history import History
from stss_runtime.models import build_model
from stss_runtime.ops import warp as W
from stss_runtime.passes import StssPass, TwoStagePass
from stss_runtime.passes.stss import run_network

from .. import installed

TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}  # relative to max(1, |reference|)
NO_GPU = "needs a CUDA GPU; this machine has none (CUDA graphs and GPU back-ends are checked on the GPU machine)"


def _specs():
    torch.manual_seed(0)
    recurrent = build_model("stss_recurrent_tiny").eval()
    torch.nn.init.normal_(recurrent.params.out.weight, std=0.1)  # parameters away from zero: all of the step runs
    return {"stss": stss_graph(build_model("stss_tiny").eval()),
            "stss_recurrent": recurrent_graph(recurrent),
            "supersampling": supersampling_graph(build_model("supersampling_tiny").eval()),
            "extranet": extranet_graph(build_model("extranet_tiny").eval())}


@pytest.fixture(scope="module")
def specs():
    return _specs()


@pytest.fixture(scope="module")
def onnx_files(specs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {(name, p): export_onnx(spec, folder / f"{name}-{p}.onnx", 16, 24, p)
            for name, spec in specs.items() for p in ("fp32", "fp16")}


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_graph_warp_equals_runtime_warp(mode):
    g = torch.Generator().manual_seed(1)
    src = torch.rand((1, 3, 24, 40), generator=g)
    off = (torch.rand((1, 2, 24, 40), generator=g) - 0.5) * 10
    assert torch.allclose(warp_in_graph(src, off, mode), W.sample(src, off, mode), atol=1e-6)


def test_frame_graph_on_the_plan_equals_the_runtime_inputs(tiny_dump):
    """History.plan + StssFrameGraph == History().step + STSS + display-grid shift, frame by
    frame, rendered and extrapolated, so every back-end runs what the network was trained on."""
    torch.manual_seed(0)
    model = build_model("stss_tiny").eval()
    spec = stss_graph(model)
    meta = framedump.read_meta(tiny_dump)
    stepped, planned = History(), History()
    with torch.inference_mode():
        for i in range(10):
            f = frame_from_dump(framedump.read_frame(tiny_dump, i), meta, i, shaded=(i % 2 == 0))
            ref = run_network(model, stepped.step(f), f.jitter_tensor())
            plan = planned.plan(f).as_dict()
            got = spec.module(*(plan[n] for n in spec.input_names))
            assert got.shape == ref.shape
            assert (got - ref).abs().max() <= 1e-4, f"frame {i}"
            if i == 1:  # an extrapolated frame really reads the warped history
                assert plan["shaded"].item() == 0 and plan["last_valid"].mean() > 0.5


@pytest.mark.parametrize("name", ["stss", "stss_recurrent", "supersampling", "extranet"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_export_is_standard_onnx(onnx_files, name, precision):
    onnx = installed.module("onnx")  # a dependency: installed by make setup
    m = onnx.load(str(onnx_files[(name, precision)]))
    onnx.checker.check_model(m, full_check=True)
    assert all(n.domain in ("", "ai.onnx") for n in m.graph.node)  # no custom operators
    inputs = {i.name: i.type.tensor_type.elem_type for i in m.graph.input}
    assert set(inputs.values()) == {onnx.TensorProto.FLOAT}  # fp16 stays inside the graph
    if name == "stss":
        assert "GridSample" in {n.op_type for n in m.graph.node}  # the warps are in the graph
    if precision == "fp16":
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer)


def _reference(spec, inputs):
    with torch.inference_mode():
        return spec.module(*(inputs[n] for n in spec.input_names))


RUNNERS = [("torch", "fp32", {}), ("torch", "fp32", {"channels_last": False}), ("torch", "fp16", {}),
           ("onnxruntime", "fp32", {}), ("onnxruntime", "fp16", {})]


@pytest.mark.parametrize("backend,precision,options", RUNNERS,
                         ids=[f"{b}-{p}{'-nchw' if o else ''}" for b, p, o in RUNNERS])
@pytest.mark.parametrize("name", ["stss", "stss_recurrent", "supersampling", "extranet"])
def test_every_backend_matches_torch_fp32(specs, onnx_files, name, backend, precision, options):
    spec = specs[name]
    path = onnx_files[(name, precision)] if backend == "onnxruntime" else None
    runner = create_runner(spec, backend, precision, "cpu", onnx_path=path, **options)
    assert runner.input_names == spec.input_names and runner.precision == precision
    for h, w in ((16, 24), (24, 40)):  # the export size and another: dynamic axes work
        inputs = spec.example_inputs(h, w, seed=h)
        ref = _reference(spec, inputs)
        out = runner(inputs)["output"]
        assert out.shape == ref.shape == spec.output_shape(h, w) and out.dtype == torch.float32
        err = (out - ref).abs().max().item()
        assert err <= TOLERANCE[precision] * max(1.0, ref.abs().max().item()), err
        if precision == "fp16":  # really half precision inside, not fp32 under another name
            assert err > 0


def test_runner_rejects_bad_inputs_by_name(specs):
    spec = specs["supersampling"]
    runner = create_runner(spec, "torch")
    good = spec.example_inputs(16, 24)
    with pytest.raises(BackendError, match=r"missing \['history'\]"):
        runner({k: v for k, v in good.items() if k != "history"})
    with pytest.raises(BackendError, match=r"'feature'.*float32.*float64"):
        runner({**good, "feature": good["feature"].double()})
    with pytest.raises(BackendError, match=r"'color'.*4 dimensions.*\(3, 16, 24\)"):
        runner({**good, "color": good["color"][0]})
    with pytest.raises(BackendError, match="unexpected"):
        runner({**good, "depth": good["color"]})


def test_create_runner_reports_what_is_wrong(specs, tmp_path):
    spec = specs["supersampling"]
    with pytest.raises(ValueError, match="backend: expected one of torch, onnxruntime, tensorrt, openvino, got 'tvm'"):
        create_runner(spec, "tvm")
    with pytest.raises(ValueError, match="precision: expected one of fp32, fp16, got 'int8'"):
        create_runner(spec, "torch", "int8")
    with pytest.raises(BackendError, match="no ONNX file"):
        create_runner(spec, "onnxruntime", onnx_path=tmp_path / "missing.onnx")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
            create_runner(spec, "torch", device="cuda")
        with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
            create_runner(spec, "onnxruntime", device="cuda", onnx_path=onnx_for(spec, cache_dir=tmp_path))


def test_onnx_cache_exports_once_per_weights(tmp_path):
    torch.manual_seed(0)
    a = supersampling_graph(build_model("supersampling_tiny").eval())
    p1 = onnx_for(a, "fp32", tmp_path)
    mtime = p1.stat().st_mtime_ns
    assert onnx_for(a, "fp32", tmp_path) == p1 and p1.stat().st_mtime_ns == mtime  # cached
    assert onnx_for(a, "fp16", tmp_path) != p1
    b = supersampling_graph(build_model("supersampling_tiny").eval())  # other weights
    assert onnx_for(b, "fp32", tmp_path) != p1


def test_availability_says_why(monkeypatch):
    table = availability()
    assert set(table) == {"torch", "onnxruntime", "tensorrt", "openvino"}
    assert table["torch"][0] and table["onnxruntime"][0]
    if not torch.cuda.is_available():
        assert not table["tensorrt"][0] and ("GPU" in table["tensorrt"][1] or "install" in table["tensorrt"][1])


def _frames(folder, n):
    meta = framedump.read_meta(folder)
    return [frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0)) for i in range(n)]


@pytest.mark.parametrize("cls,kwargs", [
    (StssPass, lambda: {"model": build_model("stss_tiny")}),
    (TwoStagePass, lambda: {"supersampler": build_model("supersampling_tiny"),
                            "extrapolator": build_model("extranet_tiny")}),
], ids=["stss", "two_stage"])
def test_passes_give_the_same_frames_on_every_cpu_backend(tiny_dump, tmp_path, monkeypatch, cls, kwargs):
    monkeypatch.setenv("STSS_CACHE", str(tmp_path))
    torch.manual_seed(0)
    models = kwargs()
    frames = _frames(tiny_dump, 6)
    outputs = {}
    for backend, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16")):
        p = cls(**models, backend=backend, precision=precision)
        p.setup(frames[0].size, (2 * frames[0].size[0], 2 * frames[0].size[1]))
        outputs[(backend, precision)] = [p(f).clone() for f in frames]
    ref = outputs[("torch", "fp32")]
    for key, outs in outputs.items():
        for i, (a, b) in enumerate(zip(outs, ref)):
            # linear HDR colour: compare in the network's encoded space
            from stss_runtime.ops.encoding import encode_color

            err = (encode_color(a) - encode_color(b)).abs().max().item()
            assert err <= 2 * TOLERANCE[key[1]], f"{key} frame {i}: {err}"


def _crop(frame, w, h):
    from dataclasses import replace

    from stss_runtime.frame import G_BUFFERS

    kw = {k: getattr(frame, k)[..., :h, :w] for k in G_BUFFERS}
    if frame.color is not None:
        kw["color"] = frame.color[..., :h, :w]
    return replace(frame, **kw)


def test_pass_pads_sizes_that_are_not_multiples_of_8(tiny_dump):
    """A 60x36 frame is padded to 64x40 for the graph and cropped back; away from the
    padded edge the result is the training-time path's."""
    torch.manual_seed(0)
    model = build_model("stss_tiny").eval()
    frames = [_crop(f, 60, 36) for f in _frames(tiny_dump, 4)]
    p = StssPass(model=model)
    p.setup((60, 36), (120, 72))
    history = History()
    for f in frames:
        out = p(f)
        assert out.shape == (1, 3, 72, 120)
        with torch.inference_mode():
            from stss_runtime.ops.encoding import decode_color

            ref = decode_color(run_network(model, history.step(f), f.jitter_tensor()))
        # the padded rows/columns are filled before (graph) or after (reference) the warps;
        # that reaches a few pixels into the output, no further
        assert (out - ref)[..., :-16, :-16].abs().max() <= 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graph_replay_matches_eager(specs, precision):
    spec = specs["stss"]
    graph = create_runner(spec, "torch", precision, "cuda")
    eager = create_runner(spec, "torch", precision, "cuda", cuda_graph=False)
    for seed in range(3):  # replays with new inputs, not the captured ones
        inputs = spec.example_inputs(32, 48, seed=seed, device="cuda")
        a, b = graph(inputs)["output"].clone(), eager(inputs)["output"]
        assert (a - b).abs().max().item() <= TOLERANCE[precision]
    ref = _reference(at_precision(spec, "fp32"), {k: v.cpu() for k, v in inputs.items()})
    assert (a.cpu() - ref).abs().max().item() <= TOLERANCE[precision] * max(1.0, ref.abs().max().item())
    assert len(graph._graphs) == 1


def test_padding_helper():
    t = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7)
    p = pad_to_multiple(t)
    assert p.shape == (1, 2, 8, 8) and torch.equal(p[..., :5, :7], t)
    assert torch.equal(p[..., 7, :7], t[..., 4, :])  # replicate
