"""The runner protocol every back-end implements: named inputs -> named outputs.

A runner is built for one graph (:class:`stss_runtime.graphs.GraphSpec`), one precision
and one device. It takes a mapping of float32 torch tensors on its device and returns a
dict of float32 torch tensors on the same device: data never leaves the device it lives
on. Output tensors may be buffers the runner reuses: they are valid until its next call
(copy them to keep them). Half precision is internal: inputs and outputs stay float32.
"""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

import torch

PRECISIONS = ("fp32", "fp16")


class BackendError(RuntimeError):
    """A back-end was given inputs it cannot run, or failed to run them."""


class BackendUnavailable(BackendError):
    """The back-end (or the precision / device asked of it) cannot run on this machine;
    the message says what is missing and how to get it."""


@runtime_checkable
class Runner(Protocol):
    backend: str  # "torch", "onnxruntime", "tensorrt"
    precision: str  # "fp32" or "fp16"
    device: torch.device
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ...


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def check_inputs(runner: Runner, inputs: Mapping[str, torch.Tensor]) -> None:
    """Every input present, float32, on the runner's device, 4-D; a :class:`BackendError`
    naming the input, the expected and the actual value otherwise."""
    missing = [n for n in runner.input_names if n not in inputs]
    extra = [n for n in inputs if n not in runner.input_names]
    if missing or extra:
        raise BackendError(f"{runner.backend} runner: inputs expected {list(runner.input_names)}, "
                           f"missing {missing}, unexpected {extra}")
    for name in runner.input_names:
        t = inputs[name]
        if not isinstance(t, torch.Tensor):
            raise BackendError(f"input {name!r}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dtype != torch.float32:
            raise BackendError(f"input {name!r}: expected dtype torch.float32, got {t.dtype}")
        if t.device.type != runner.device.type or (
                runner.device.index is not None and t.device.index != runner.device.index):
            raise BackendError(f"input {name!r}: expected device {runner.device}, got {t.device}")
        if t.dim() != 4:
            raise BackendError(f"input {name!r}: expected 4 dimensions (N, C, H, W), got shape {tuple(t.shape)}")


def cuda_available() -> bool:
    return torch.cuda.is_available()
