"""The torch back-end: eager PyTorch on the CPU or CUDA, fp32 or fp16, channels-last; on
CUDA the whole graph is captured once per input shape as a CUDA graph and replayed from
preallocated input and output buffers (one launch per frame instead of hundreds)."""

from __future__ import annotations

from typing import Mapping

import torch

from ..graphs import GraphSpec, at_precision
from .base import BackendError, BackendUnavailable, check_inputs, check_precision


class _CapturedGraph:
    """A CUDA graph of ``module`` for one set of input shapes, with its static buffers."""

    def __init__(self, module, inputs: Mapping[str, torch.Tensor], input_names, output_names,
                 warmup: int = 3):
        self.inputs = {n: inputs[n].clone() for n in input_names}
        args = [self.inputs[n] for n in input_names]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture (cuDNN autotuning, allocations)
            for _ in range(warmup):
                module(*args)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            out = module(*args)
        outs = out if isinstance(out, tuple) else (out,)
        self.outputs = dict(zip(output_names, outs))

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for n, t in inputs.items():
            self.inputs[n].copy_(t, non_blocking=True)
        self.graph.replay()
        return self.outputs


class TorchRunner:
    """Runs a :class:`~stss_runtime.graphs.GraphSpec` with PyTorch.

    ``channels_last``: NHWC memory layout for the convolutions (faster on CPUs and on
    tensor cores). ``cuda_graph``: capture and replay on CUDA (default on; off for
    debugging). ``max_graphs``: captured shapes kept (dynamic resolution); the oldest is
    dropped beyond it.
    """

    backend = "torch"

    def __init__(self, spec: GraphSpec, precision: str = "fp32", device: str | torch.device = "cpu",
                 channels_last: bool = True, cuda_graph: bool = True, max_graphs: int = 4):
        self.precision = check_precision(precision)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("torch back-end: device 'cuda' asked for, but this PyTorch build "
                                     "sees no CUDA GPU (CPU build or no driver); use device='cpu'")
        if self.device.type not in ("cpu", "cuda"):
            raise BackendUnavailable(f"torch back-end: device expected 'cpu' or 'cuda', got {self.device}")
        self.spec = spec
        self.input_names = spec.input_names
        self.output_names = spec.output_names
        self.channels_last = channels_last
        module = at_precision(spec, precision).module.eval().to(self.device)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module
        self.cuda_graph = cuda_graph and self.device.type == "cuda"
        self.max_graphs = max_graphs
        self._graphs: dict[tuple, _CapturedGraph] = {}

    def _layout(self, name: str, t: torch.Tensor) -> torch.Tensor:
        if self.channels_last and name not in self.spec.fixed_inputs:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_inputs(self, inputs)
        with torch.inference_mode():
            if self.cuda_graph:
                key = tuple(tuple(inputs[n].shape) for n in self.input_names)
                graph = self._graphs.get(key)
                if graph is None:
                    if len(self._graphs) >= self.max_graphs:
                        self._graphs.pop(next(iter(self._graphs)))
                    staged = {n: self._layout(n, inputs[n]) for n in self.input_names}
                    try:
                        graph = _CapturedGraph(self.module, staged, self.input_names, self.output_names)
                    except RuntimeError as e:
                        raise BackendError(f"torch back-end: CUDA graph capture failed for shapes {key}: {e}") from e
                    self._graphs[key] = graph
                return graph(inputs)
            out = self.module(*(self._layout(n, inputs[n]) for n in self.input_names))
        outs = out if isinstance(out, tuple) else (out,)
        return {n: o.contiguous() for n, o in zip(self.output_names, outs)}
