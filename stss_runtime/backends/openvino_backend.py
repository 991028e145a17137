"""The OpenVINO back-end: Intel's CPU inference engine runs an exported graph
(:func:`stss_runtime.export.export_onnx`) on the CPU.

Precision: ``fp32`` computes in float32 (OpenVINO's own default on CPUs with AMX or
AVX512-BF16 would be bfloat16, so it is set explicitly); ``fp16`` computes in the CPU's
fast 16-bit float type, **bfloat16** where the CPU has it natively (AMX / AVX512-BF16:
8 mantissa bits, float32's range) and IEEE float16 elsewhere; :attr:`OpenVinoRunner.inference_precision`
says which. Both read the float32 ONNX file (OpenVINO converts the weights itself) and keep
float32 inputs and outputs, as the runner protocol asks. ``int8=True`` runs the graph with
its convolutions quantised to 8 bits (:mod:`stss_runtime.quantize`).

Each render size is compiled once with static shapes (OpenVINO's CPU plugin is faster on
static shapes than on the file's dynamic ones): the first frame at a new size takes a
compile (about a second). Inputs are read in place from the tensors' memory and outputs are
written straight into torch buffers the runner reuses: no copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..graphs import GraphSpec
from .base import BackendError, BackendUnavailable, check_inputs, check_precision

#: OpenVINO's names of the inference precisions this runner asks for.
INFERENCE_PRECISIONS = ("f32", "bf16", "f16")


def _ov():
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailable(f"openvino back-end: cannot import openvino ({e}); pip install openvino") from e
    return openvino


def sixteen_bit_type(core=None) -> str | None:
    """The 16-bit float type the CPU computes natively: "bf16" (AMX / AVX512-BF16), else
    "f16" (AVX512-FP16 and similar), else None (OpenVINO would emulate it)."""
    core = core or _ov().Core()
    caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    if "BF16" in caps:
        return "bf16"
    if "FP16" in caps:
        return "f16"
    return None


class OpenVinoRunner:
    """Runs the ONNX file of a :class:`~stss_runtime.graphs.GraphSpec` with OpenVINO on the
    CPU. ``threads``: inference threads (default: OpenVINO's, one per core);
    ``inference_precision``: "f32", "bf16" or "f16" instead of the one ``precision`` picks
    (see the module docstring); ``int8``: quantise the convolutions first (the ONNX file is
    quantised once and cached beside it)."""

    backend = "openvino"

    def __init__(self, spec: GraphSpec, onnx_path: str | Path, precision: str = "fp32",
                 device: str | torch.device = "cpu", threads: int | None = None,
                 inference_precision: str | None = None, int8: bool = False):
        ov = _ov()
        self.precision = check_precision(precision)
        self.device = torch.device(device)
        if self.device.type != "cpu":
            raise BackendUnavailable(f"openvino back-end: runs on the CPU only, got device {self.device}; "
                                     "use torch, onnxruntime or tensorrt on a CUDA GPU")
        self.spec = spec
        self.input_names = spec.input_names
        self.output_names = spec.output_names
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise BackendError(f"openvino back-end: no ONNX file at {onnx_path}; "
                               f"write one with `python -m stss_runtime export`")
        self.core = ov.Core()
        if inference_precision is None:
            inference_precision = "f32" if precision == "fp32" else sixteen_bit_type(self.core)
            if inference_precision is None:
                raise BackendUnavailable("openvino back-end: precision 'fp16' needs a CPU with native bf16 or "
                                         "fp16 arithmetic (AMX, AVX512-BF16 or AVX512-FP16); this one has "
                                         f"{self.core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}")
        if inference_precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"inference_precision: expected one of {', '.join(INFERENCE_PRECISIONS)}, "
                             f"got {inference_precision!r}")
        self.inference_precision = inference_precision
        self.int8 = bool(int8)
        if self.int8:
            from ..quantize import quantized_onnx

            onnx_path = quantized_onnx(spec, onnx_path)
        self.onnx_path = onnx_path
        try:
            self.model = self.core.read_model(str(onnx_path))
        except Exception as e:  # OpenVINO raises its own exception types for bad files
            raise BackendError(f"openvino back-end: cannot read {onnx_path}: {e}") from e
        names = tuple(p.get_any_name() for p in self.model.inputs)
        if set(names) != set(self.input_names):
            raise BackendError(f"openvino back-end: {onnx_path} has inputs {list(names)}, "
                               f"expected {list(self.input_names)} (graph {spec.name!r})")
        self.config = {"INFERENCE_PRECISION_HINT": inference_precision, "PERFORMANCE_HINT": "LATENCY",
                       # other processes share the cores: pinning threads to them would make
                       # OpenVINO wait for cores another program is using
                       "ENABLE_CPU_PINNING": False}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled: dict[tuple, tuple] = {}  # input shapes -> (infer request, output buffers)

    def _request(self, shapes: dict[str, tuple[int, ...]], h: int, w: int):
        key = tuple(shapes[n] for n in self.input_names)
        entry = self._compiled.get(key)
        if entry is None:
            model = self.model.clone()
            model.reshape({n: list(s) for n, s in shapes.items()})
            try:
                compiled = self.core.compile_model(model, "CPU", self.config)
            except Exception as e:
                raise BackendError(f"openvino back-end: cannot compile {self.onnx_path} for shapes {key}: {e}") from e
            request = compiled.create_infer_request()
            outs = {n: torch.empty(self.spec.output_shape(h, w), dtype=torch.float32) for n in self.output_names}
            ov = _ov()
            for k, port in enumerate(compiled.outputs):
                request.set_output_tensor(k, ov.Tensor(outs[port.get_any_name()].numpy(), shared_memory=True))
            entry = (request, outs, [p.get_any_name() for p in compiled.inputs])
            self._compiled = {key: entry}  # one size at a time: a size change drops the old one
        return entry

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_inputs(self, inputs)
        ov = _ov()
        frame = inputs[next(n for n in self.input_names if n not in self.spec.fixed_inputs)]
        h, w = frame.shape[-2:]
        if self.spec.name == "extranet":  # its inputs are at display resolution already
            h, w = h // 2, w // 2
        arrays = {n: inputs[n].contiguous().numpy() for n in self.input_names}
        request, outs, order = self._request({n: tuple(a.shape) for n, a in arrays.items()}, h, w)
        for k, name in enumerate(order):
            request.set_input_tensor(k, ov.Tensor(arrays[name], shared_memory=True))
        try:
            request.infer()
        except Exception as e:
            raise BackendError(f"openvino back-end: run failed: {e}") from e
        return dict(outs)
