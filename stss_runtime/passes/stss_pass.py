"""The STSS pass: one network, the same weights, for rendered and extrapolated frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import default_weights, load_weights
from ..frame import Frame
from ..history import History, NetworkInputs, decode_color
from .base import Pass


def pad_to_multiple(t: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """Replicate-pad the bottom/right of (N, C, h, w) so h and w are multiples of ``multiple``."""
    h, w = t.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(t, (0, pw, 0, ph), mode="replicate") if ph or pw else t


def run_network(model: nn.Module, inp: NetworkInputs) -> torch.Tensor:
    """Encoded output (1, 3, 2h, 2w) of STSS for ``inp``, padding to a multiple of 8."""
    h, w = inp.x.shape[-2:]
    args = [pad_to_multiple(t) for t in inp.as_tuple()]
    out = model(*args)
    return out[..., : 2 * h, : 2 * w]


class StssPass(Pass):
    name = "stss"
    description = "STSS: joint supersampling and extrapolation, one network"
    inputs = ("color", "motion", "depth", "normal", "albedo", "roughness", "metallic", "object_id")

    def __init__(self, model: nn.Module | None = None, model_name: str = "stss",
                 device: str | torch.device = "cpu"):
        super().__init__()
        if model is None:
            model, _ = load_weights(default_weights(model_name), expected_model=model_name)
        self.model = model.eval().to(device)
        self.device = torch.device(device)

    def reset(self) -> None:
        self.history = History(unjitter=True)

    def execute(self, frame: Frame) -> torch.Tensor:
        inp = self.history.step(frame.to(self.device))
        return decode_color(run_network(self.model, inp))
