"""The two-stage neural pipeline the paper compares against: a supersampling network on
rendered frames, then an extrapolation network (ExtraNet-style) at display resolution that
warps the last high-resolution output forward on extrapolated frames."""

from __future__ import annotations

import torch
from torch import nn

from .. import warp as W
from ..checkpoint import default_weights, load_weights
from ..frame import Frame
from ..history import History, decode_color
from .base import Pass
from .stss_pass import pad_to_multiple


def extranet_inputs(prev_output: torch.Tensor, frame: Frame, mask: torch.Tensor,
                    feature: torch.Tensor, history: torch.Tensor, display_size):
    """ExtraNet's display-resolution inputs: the previous output (encoded) warped by the
    upsampled motion, the upsampled hole mask, G-buffer features and history."""
    motion = W.upsample_motion(frame.motion, frame.depth, display_size)
    warped = W.sample(prev_output, motion)
    return (warped, W.resample(feature, display_size, mode="nearest"),
            W.resample(mask, display_size, mode="nearest"), W.resample(history, display_size))


class TwoStagePass(Pass):
    name = "two_stage"
    description = "supersampling network, then ExtraNet-style extrapolation at display resolution"
    inputs = ("color", "motion", "depth", "normal", "albedo", "roughness", "metallic", "object_id")

    def __init__(self, supersampler: nn.Module | None = None, extrapolator: nn.Module | None = None,
                 device: str | torch.device = "cpu"):
        super().__init__()
        if supersampler is None:
            supersampler, _ = load_weights(default_weights("supersampling"), "supersampling")
        if extrapolator is None:
            extrapolator, _ = load_weights(default_weights("extranet"), "extranet")
        self.supersampler = supersampler.eval().to(device)
        self.extrapolator = extrapolator.eval().to(device)
        self.device = torch.device(device)

    def reset(self) -> None:
        self.history = History(unjitter=True)
        self.last_output: torch.Tensor | None = None  # encoded, display resolution

    def execute(self, frame: Frame) -> torch.Tensor:
        frame = frame.to(self.device)
        inp = self.history.step(frame)
        h, w = inp.x.shape[-2:]
        if frame.shaded or self.last_output is None:
            out = self.supersampler(*(pad_to_multiple(t) for t in (inp.x[:, :3], inp.feature, inp.history)))
            out = out[..., : 2 * h, : 2 * w]
        else:
            args = extranet_inputs(self.last_output, frame, inp.mask, inp.feature, inp.history,
                                   self.display_size)
            out = self.extrapolator(*(pad_to_multiple(t) for t in args))[..., : 2 * h, : 2 * w]
        self.last_output = out
        return decode_color(out)
