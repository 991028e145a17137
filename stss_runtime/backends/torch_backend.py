"""The torch back-end: eager PyTorch on the CPU or CUDA, fp32 or fp16, channels-last,
optionally ``torch.compile``; on CUDA the whole graph is captured once per input shape as a
CUDA graph and replayed from preallocated input and output buffers (one launch per frame
instead of hundreds), with eager execution as the fallback when a capture fails.

**What "fp32" means on a GPU.** IEEE float32 arithmetic: cuDNN's convolutions may use TF32
on Ampere and later GPUs by default (10-bit mantissa, about 1e-3 relative error), which
would make "fp32" a third precision that matches the CPU only to ~1e-3. The runner turns
TF32 off around its own calls (the process-wide flag is restored afterwards, so an engine's
setting is left alone): fp32 outputs match the CPU reference to 1e-4 on every device.
``tf32=True`` opts in to TF32 convolutions (a speed variant the benchmark times apart).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from typing import Mapping

import torch

from ..graphs import GraphSpec, at_precision
from .base import BackendError, BackendUnavailable, check_inputs, check_precision


@contextlib.contextmanager
def fp32_math(tf32: bool):
    """cuDNN convolutions in IEEE fp32 (``tf32=False``) or TF32 inside the block; the
    previous setting is restored after it. Uses the legacy flag, which both PyTorch 2.11 and
    2.13 honour; where an engine set the conv and RNN flags apart (the newer per-operator
    API), the conv flag of that API is set instead, since reading the legacy one then raises."""
    cudnn = torch.backends.cudnn
    try:
        old = cudnn.allow_tf32
    except RuntimeError:  # "a mix of the legacy and new APIs": use the new one
        conv = cudnn.conv
        old_precision = conv.fp32_precision
        conv.fp32_precision = "tf32" if tf32 else "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old_precision
        return
    cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        cudnn.allow_tf32 = old


class _CapturedGraph:
    """A CUDA graph of ``module`` for one set of input shapes, with its static buffers.

    Captured with ``capture_error_mode="thread_local"``: CUDA calls an engine makes from
    its other threads during the capture do not invalidate it (the "global" mode would)."""

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
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
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

    The runner works on its own copy of the spec's module: the caller's model keeps its
    device, dtype and memory layout (a CPU reference next to a CUDA runner stays on the CPU).

    ``channels_last``: NHWC memory layout for the convolutions (faster on CPUs and on
    tensor cores). ``cuda_graph``: capture and replay on CUDA (default on; off for
    debugging); a shape whose capture fails runs eagerly from then on (:attr:`fallbacks`
    says why). ``max_graphs``: captured shapes kept (dynamic resolution); the oldest is
    dropped beyond it. ``tf32``: TF32 convolutions on CUDA in fp32 (module docstring).
    ``compile``: wrap the module in ``torch.compile`` (``True``: the default inductor
    back-end, Triton kernels on CUDA; or a back-end name such as ``"eager"``, which only
    traces: a cheap check that the graph compiles at all).
    """

    backend = "torch"

    def __init__(self, spec: GraphSpec, precision: str = "fp32", device: str | torch.device = "cpu",
                 channels_last: bool = True, cuda_graph: bool = True, max_graphs: int = 4,
                 tf32: bool = False, compile: bool | str = False):
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
        self.tf32 = bool(tf32)
        # a copy: .to() and channels-last convert a module in place, and the caller's model
        # may be a reference on another device (at_precision copies only for fp16)
        module = copy.deepcopy(at_precision(spec, precision).module).eval().to(self.device)
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.eager_module = module
        self.compiled = compile
        if compile:
            module = torch.compile(module, **({} if compile is True else {"backend": compile}))
        self.module = module
        self.cuda_graph = cuda_graph and self.device.type == "cuda"
        self.max_graphs = max_graphs
        self._graphs: dict[tuple, _CapturedGraph] = {}
        #: input shapes whose CUDA-graph capture failed -> why; they run eagerly
        self.fallbacks: dict[tuple, str] = {}

    def _layout(self, name: str, t: torch.Tensor) -> torch.Tensor:
        if self.channels_last and name not in self.spec.fixed_inputs:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def _math(self):
        return fp32_math(self.tf32) if self.device.type == "cuda" else contextlib.nullcontext()

    def _graph_for(self, inputs: Mapping[str, torch.Tensor]) -> _CapturedGraph | None:
        """The captured graph of these input shapes (captured now if new), or None when
        capturing them failed (then they run eagerly, with one warning)."""
        key = tuple(tuple(inputs[n].shape) for n in self.input_names)
        graph = self._graphs.get(key)
        if graph is not None or key in self.fallbacks:
            return graph
        if len(self._graphs) >= self.max_graphs:
            self._graphs.pop(next(iter(self._graphs)))
        staged = {n: self._layout(n, inputs[n]) for n in self.input_names}
        try:
            graph = _CapturedGraph(self.module, staged, self.input_names, self.output_names)
        except RuntimeError as e:
            why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            self.fallbacks[key] = why
            warnings.warn(f"torch back-end: CUDA graph capture failed for input shapes {key} ({why}); "
                          f"running them eagerly", RuntimeWarning, stacklevel=3)
            return None
        self._graphs[key] = graph
        return graph

    def prepare(self, h: int, w: int) -> None:
        """Capture the CUDA graph of render size ``h`` x ``w`` now (a no-op off CUDA or with
        ``cuda_graph=False``), so the first frame of that size does not pay for it."""
        if not self.cuda_graph:
            return
        example = self.spec.example_inputs(h, w, device=self.device)
        with torch.inference_mode(), self._math():
            self._graph_for(example)

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_inputs(self, inputs)
        with torch.inference_mode(), self._math():
            graph = self._graph_for(inputs) if self.cuda_graph else None
            if graph is not None:
                outs = tuple(graph(inputs)[n] for n in self.output_names)
            else:
                out = self.module(*(self._layout(n, inputs[n]) for n in self.input_names))
                outs = out if isinstance(out, tuple) else (out,)
        # a new dict of NCHW tensors: a captured graph's outputs are its static (channels-last)
        # buffers, which the caller must neither hold in that layout nor be handed to mutate
        return {n: o.contiguous() for n, o in zip(self.output_names, outs)}
