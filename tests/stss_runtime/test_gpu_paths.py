"""What the GPU paths promise, checked on the CPU: a runner never changes the model it was
given, export works whatever device the model is on, fp32 means IEEE fp32 on CUDA (no
TF32), a failed CUDA-graph capture runs eagerly, captured outputs are handed out as fresh
NCHW tensors, and the TensorRT runner gets the device it was asked for. The same paths run
for real in ``scripts/gpu_check.sh`` on a GPU machine."""

from __future__ import annotations

import warnings

import pytest
import torch

from stss_runtime.backends import create_runner
from stss_runtime.backends import torch_backend as TB
from stss_runtime.export import export_onnx
from stss_runtime.graphs import stss_graph, supersampling_graph
from stss_runtime.models import build_model


def _spec(name="stss"):
    torch.manual_seed(0)
    if name == "stss":
        return stss_graph(build_model("stss_tiny").eval())
    return supersampling_graph(build_model("supersampling_tiny").eval())


def _state(module):
    return {k: (v.data_ptr(), v.stride(), v.device, v.dtype) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_runner_leaves_the_callers_model_alone(precision):
    """channels-last (and .to(device)) convert a module in place: the runner must work on a
    copy, or a reference computed with the caller's model afterwards runs on the runner's
    weights (on CUDA: the CUDA-graph parity test's CPU reference failed)."""
    spec = _spec()
    before = _state(spec.module)
    runner = create_runner(spec, "torch", precision, "cpu", channels_last=True)
    assert _state(spec.module) == before
    assert all(p.is_contiguous() for p in spec.module.parameters())
    inputs = spec.example_inputs(16, 24)
    with torch.inference_mode():
        ref = spec.module(*(inputs[n] for n in spec.input_names))
    out = runner(inputs)["output"]
    assert (out - ref).abs().max() <= (1e-4 if precision == "fp32" else 1e-2)


def test_export_traces_a_cpu_copy(monkeypatch, tmp_path):
    """A pass moves its network to its device before a back-end exports it; export must
    trace a CPU copy (CPU example inputs), and leave the spec's module as it was."""
    spec = _spec("supersampling")
    seen = {}
    real = torch.onnx.export

    def spy(module, args, *a, **k):
        seen["module"] = module
        seen["devices"] = {p.device.type for p in module.parameters()} | {t.device.type for t in args}
        return real(module, args, *a, **k)

    monkeypatch.setattr(torch.onnx, "export", spy)
    before = _state(spec.module)
    export_onnx(spec, tmp_path / "g.onnx", 16, 24)
    assert seen["module"] is not spec.module and seen["devices"] == {"cpu"}
    assert _state(spec.module) == before and (tmp_path / "g.onnx").is_file()


@pytest.mark.parametrize("tf32", [False, True])
def test_fp32_math_turns_tf32_off_around_the_call_and_restores_it(tf32):
    """fp32 on a GPU means IEEE fp32: cuDNN's TF32 (on by default on Ampere and later) is off
    while the runner's module runs, unless the runner was asked for tf32; the engine's own
    setting is back afterwards."""
    seen = []
    engine_setting = torch.backends.cudnn.allow_tf32
    with TB.fp32_math(tf32):
        seen.append(torch.backends.cudnn.allow_tf32)
    assert seen == [tf32] and torch.backends.cudnn.allow_tf32 == engine_setting
    # a runner on CUDA enters it around every call (on the CPU it does nothing)
    runner = TB.TorchRunner(_spec("supersampling"), tf32=tf32)
    runner.device = torch.device("cuda")  # only _math() looks at it here
    with runner._math():
        assert torch.backends.cudnn.allow_tf32 == tf32


def _graph_runner(monkeypatch, capture):
    """A CPU runner taking its CUDA-graph path, with ``capture`` standing in for the capture."""
    monkeypatch.setattr(TB, "_CapturedGraph", capture)
    runner = TB.TorchRunner(_spec("supersampling"), channels_last=True)
    runner.cuda_graph = True
    return runner


def test_a_failed_capture_runs_eagerly_with_one_warning(monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    runner = _graph_runner(monkeypatch, failing)
    eager = TB.TorchRunner(runner.spec, cuda_graph=False)
    inputs = runner.spec.example_inputs(16, 24)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed .*operation not permitted.*running them eagerly"):
        first = runner(inputs)["output"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not every frame
        second = runner(inputs)["output"]
    assert calls == [1] and len(runner.fallbacks) == 1
    assert torch.equal(first, eager(inputs)["output"]) and torch.equal(second, first)
    with pytest.warns(RuntimeWarning):  # another size: tried again (and falls back again)
        runner.prepare(24, 40)
    assert calls == [1, 1] and len(runner.fallbacks) == 2


def test_captured_outputs_are_handed_out_as_fresh_nchw_tensors(monkeypatch):
    """A captured graph's outputs are its static buffers, channels-last: the runner returns
    a new dict of NCHW tensors, so the caller can neither mutate the graph's dict nor keep a
    tensor in the graph's layout."""
    class Fake:
        def __init__(self, module, inputs, input_names, output_names):
            self.outputs = {"output": torch.rand(1, 3, 32, 48).contiguous(memory_format=torch.channels_last)}

        def __call__(self, inputs):
            return self.outputs

    runner = _graph_runner(monkeypatch, Fake)
    runner.prepare(16, 24)
    graph = next(iter(runner._graphs.values()))
    got = runner(runner.spec.example_inputs(16, 24))
    assert got is not graph.outputs and got["output"].is_contiguous()
    assert torch.equal(got["output"], graph.outputs["output"])
    got.clear()
    assert "output" in graph.outputs


def test_create_runner_hands_the_device_to_tensorrt(monkeypatch):
    from stss_runtime.backends import tensorrt_backend

    seen = {}

    def from_spec(spec, path, precision, **kwargs):
        seen.update(kwargs)
        return "runner"

    monkeypatch.setattr(tensorrt_backend.TensorRTRunner, "from_spec", staticmethod(from_spec))
    spec = _spec("supersampling")
    assert create_runner(spec, "tensorrt", device="cuda:1", render_size=(24, 16),
                         onnx_path=__file__) == "runner"
    assert seen["device"] == "cuda:1"


def test_tensorrt_for_rtx_says_it_does_not_run_on_hopper(monkeypatch):
    from stss_runtime.backends import tensorrt_backend as T

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA H100 80GB HBM3")
    ok, why = T.rtx_supports_this_gpu()
    assert not ok
    for words in ("does not support compute capability 9.0", "H100", "64 MiB", "torch back-end"):
        assert words in why
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (8, 9))
    assert T.rtx_supports_this_gpu() == (True, "")


def test_bench_moves_one_frame_at_a_time_and_counts_peak_memory_after_the_warmup(monkeypatch, tmp_path):
    """The bench moved every warm-up and timed frame to the GPU before it reset the peak
    counter (~25 GB reported at 1920x1080): frames are made on the host one at a time, and
    the count starts at the first timed frame."""
    from stss_runtime.evaluation import bench as B

    events = []
    real = B.iter_synthetic_frames

    def frames(size, count, device="cpu", seed=0):
        assert device == "cpu"  # moved to the pass's device when used
        for i, f in enumerate(real(size, count, device, seed)):
            events.append(f"made {i}")
            yield f

    monkeypatch.setattr(B, "iter_synthetic_frames", frames)
    monkeypatch.setattr(B, "_reset_peak", lambda device: events.append("reset"))
    row = B.measure("joint", "torch", "fp32", "cpu", (40, 24), frames=2, warmup=2, cache_dir=str(tmp_path))
    assert events == ["made 0", "made 1", "made 2", "reset", "made 3"]  # frame 2 made on the host, not moved yet
    assert row["median_ms"] <= row["p95_ms"] <= row["p99_ms"] and row["graph_fallbacks"] == []


def test_bench_holds_each_row_against_a_ceiling_in_its_own_arithmetic():
    """fp32 convolutions with TF32 can beat an IEEE fp32 matrix product: a tf32 row gets a
    TF32 ceiling, an fp32 row an IEEE one, fp16 an fp16 one; TF32 is timed for fp32 only."""
    from stss_runtime.evaluation import bench as B

    assert B.ceiling_math("cuda", "fp32") == "fp32" and B.ceiling_math("cuda", "fp32", tf32=True) == "tf32"
    assert B.ceiling_math("cuda", "fp16", tf32=True) == "fp16" and B.ceiling_math("cpu", "fp32", True) == "fp32"
    fp32 = [name for name, _ in B._variants("torch", "cuda", "fp32")]
    fp16 = [name for name, _ in B._variants("torch", "cuda", "fp16")]
    assert "cuda graph tf32" in fp32 and "cuda graph tf32" not in fp16
    assert {"cuda graph", "torch.compile", "torch.compile + cuda graph"} <= set(fp16)
    assert [n for n, _ in B._variants("torch", "cuda", "fp32", ("cuda graph",))] == ["cuda graph"]
    with pytest.raises(ValueError, match="variants: expected some of"):
        B.BenchConfig(variants=("warp speed",))


def test_bench_on_cuda_lists_onnxruntime_without_its_cuda_provider_as_skipped(monkeypatch):
    """ONNX Runtime for the CPU is importable on the GPU machine: the bench must say why it
    is not timed there rather than export three graphs and fail in a worker."""
    from stss_runtime.evaluation import bench as B

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a GPU")
    monkeypatch.setattr("stss_runtime.backends.availability",
                        lambda: {"onnxruntime": (True, "onnxruntime 1.2, providers ['CPUExecutionProvider']")})
    res = B.run_bench(B.BenchConfig(device="cuda", backends=("onnxruntime",), precisions=("fp16",), progress=False))
    assert res.rows == [] and len(res.skipped) == 1
    assert "onnxruntime fp16: no CUDAExecutionProvider" in res.skipped[0] and "cannot be carried" in res.skipped[0]


def test_the_torch_apis_the_gpu_paths_use_exist_in_this_torch():
    """The GPU machine has PyTorch 2.11, CI 2.13: every torch API the CUDA paths (runner,
    bench, GPU check) call is checked here, and this test runs on the GPU machine too (step 3
    of scripts/gpu_check.sh), so a missing one shows on both."""
    import inspect

    assert "capture_error_mode" in inspect.signature(torch.cuda.graph).parameters
    assert callable(torch.cuda.set_sync_debug_mode) and callable(torch.cuda.CUDAGraph)
    assert isinstance(torch.backends.cudnn.allow_tf32, bool)
    assert isinstance(torch.backends.cuda.matmul.allow_tf32, bool)
    assert callable(torch.compile) and hasattr(torch.Tensor, "record_stream")
    assert "dynamo" in inspect.signature(torch.onnx.export).parameters
    assert callable(torch.cuda.reset_peak_memory_stats) and callable(torch.cuda.max_memory_allocated)
    assert hasattr(torch.cuda.Stream, "wait_stream") and "capture_error_mode" in inspect.signature(
        torch.cuda.graph.__init__).parameters
