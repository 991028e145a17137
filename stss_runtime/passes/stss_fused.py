"""The STSS pass with the history's per-frame work inside the exported graph
(:mod:`stss_runtime.history_graph`): what the plugin runs on the CPU back-ends (OpenVINO,
ONNX Runtime), where the eager ``prepare`` stage costs as much as a small network. The same
frames as :class:`~stss_runtime.passes.stss.StssPass` (parity-tested); its ``prepare`` stage
only gathers the stored frames, ``run`` is the graph (history step, warps, network, jitter
correction)."""

from __future__ import annotations

import torch

from ..frame import Frame
from ..history_graph import FusedHistory, fused_stss_graph
from .base import PassOptionError
from .stss import StssPass

#: The back-ends the fused graph is meant for (it runs on torch too: the parity reference).
FUSED_BACKENDS = ("openvino", "onnxruntime")


class StssFusedPass(StssPass):
    name = "stss"
    graph = staticmethod(fused_stss_graph)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.precision != "fp32" and self.backend != "openvino":
            # an fp16 ONNX file would put the geometry (pixel coordinates) in half precision;
            # OpenVINO keeps it in float32 and runs the network in its 16-bit type
            raise PassOptionError(self.name, "precision", "'fp32' (or backend 'openvino') for the fused graph",
                                  self.precision)
        if self.device.type != "cpu":
            raise PassOptionError(self.name, "device", "'cpu' for the fused graph (the CPU back-ends')",
                                  str(self.device))

    def reset(self) -> None:
        self.history = FusedHistory()

    def prepare(self, frame: Frame) -> dict[str, torch.Tensor]:
        """The fused graph's inputs: the frame's G-buffers and the stored frames."""
        return self.history.inputs(frame.to(self.device))

    def run(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoded output at the display size (a view of a buffer the runner reuses); the
        history takes the graph's new state."""
        outs = self.runner(inputs)
        self.history.update(outs["state"])
        return outs["output"][:, :3]


def fused_applies(backend: str, precision: str, device: str | torch.device) -> bool:
    """Whether the plugin runs pass ``stss`` as :class:`StssFusedPass` for these options."""
    return (backend in FUSED_BACKENDS and torch.device(device).type == "cpu"
            and (precision == "fp32" or backend == "openvino"))
