"""The ONNX Runtime back-end: runs an exported graph (:func:`stss_runtime.export.export_onnx`)
on the CPU provider, or on the CUDA / TensorRT providers when the installed ONNX Runtime
has them. Inputs and outputs are bound in place (IO binding on the tensors' own memory):
no copy through numpy, no host round trip for CUDA tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..graphs import GraphSpec
from .base import BackendError, BackendUnavailable, check_inputs, check_precision


def _ort():
    try:
        import onnxruntime
    except ImportError as e:  # a dependency of record, but be clear if it is broken
        raise BackendUnavailable(f"onnxruntime back-end: cannot import onnxruntime ({e}); "
                                 f"pip install onnxruntime (or onnxruntime-gpu on a CUDA machine)") from e
    return onnxruntime


def providers_for(device: torch.device, tensorrt: bool = False) -> list:
    """The execution providers for ``device``, best first; BackendUnavailable if none."""
    ort = _ort()
    available = ort.get_available_providers()
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    wanted = (["TensorrtExecutionProvider"] if tensorrt else []) + ["CUDAExecutionProvider"]
    chosen = [p for p in wanted if p in available]
    if "CUDAExecutionProvider" not in chosen:
        raise BackendUnavailable(
            f"onnxruntime back-end: device {device} needs the CUDAExecutionProvider, but this "
            f"onnxruntime has only {available}; install onnxruntime-gpu on a CUDA machine")
    return [(p, {"device_id": device.index or 0}) for p in chosen]


class OnnxRuntimeRunner:
    """Runs the ONNX file of a :class:`~stss_runtime.graphs.GraphSpec` exported at
    ``precision`` (the file's own precision: export it with the same one)."""

    backend = "onnxruntime"

    def __init__(self, spec: GraphSpec, onnx_path: str | Path, precision: str = "fp32",
                 device: str | torch.device = "cpu", threads: int | None = None,
                 tensorrt_provider: bool = False, int8: bool = False):
        """``int8``: run the graph with its convolutions quantised to 8 bits
        (:func:`stss_runtime.quantize.quantized_onnx`; the CPU provider)."""
        ort = _ort()
        self.precision = check_precision(precision)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", 0)
        self.spec = spec
        self.input_names = spec.input_names
        self.output_names = spec.output_names
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise BackendError(f"onnxruntime back-end: no ONNX file at {onnx_path}; "
                               f"write one with `python -m stss_runtime export`")
        self.int8 = bool(int8)
        if self.int8:
            from ..quantize import quantized_onnx

            onnx_path = quantized_onnx(spec, onnx_path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # ORT's pool threads spin after a run by default; beside torch's eager work in the
        # same frame (the history) they take its cores (BENCHMARKS.md: 393 -> 277 ms)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.providers = providers_for(self.device, tensorrt_provider)
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=self.providers)
        except Exception as e:  # ORT raises its own exception types for bad files
            raise BackendError(f"onnxruntime back-end: cannot load {onnx_path}: {e}") from e
        names = tuple(i.name for i in self.session.get_inputs())
        if set(names) != set(self.input_names):
            raise BackendError(f"onnxruntime back-end: {onnx_path} has inputs {list(names)}, "
                               f"expected {list(self.input_names)} (graph {spec.name!r})")
        self._outputs: dict[tuple, dict[str, torch.Tensor]] = {}

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_inputs(self, inputs)
        kind = "cuda" if self.device.type == "cuda" else "cpu"
        index = self.device.index or 0
        binding = self.session.io_binding()
        frame = inputs[next(n for n in self.input_names if n not in self.spec.fixed_inputs)]
        h, w = frame.shape[-2:]
        if self.spec.name == "extranet":  # its inputs are at display resolution already
            h, w = h // 2, w // 2
        keep = []
        for name in self.input_names:
            t = inputs[name].contiguous()
            keep.append(t)
            binding.bind_input(name, kind, index, np.float32, list(t.shape), t.data_ptr())
        outs = self._outputs.get((h, w))
        if outs is None:
            outs = {n: torch.empty(self.spec.output_shape(h, w), dtype=torch.float32, device=self.device)
                    for n in self.output_names}
            self._outputs = {(h, w): outs}  # one size at a time: a size change drops the old buffers
        for name, t in outs.items():
            binding.bind_output(name, kind, index, np.float32, list(t.shape), t.data_ptr())
        if kind == "cuda":
            # the inputs were written on torch's stream of this runner's device (ORT runs on
            # its own stream): wait for that one, not the current device's
            torch.cuda.current_stream(self.device).synchronize()
        try:
            self.session.run_with_iobinding(binding)
        except Exception as e:
            raise BackendError(f"onnxruntime back-end: run failed: {e}") from e
        del keep
        return dict(outs)
