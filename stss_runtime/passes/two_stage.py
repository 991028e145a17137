"""The two-stage neural pipeline the paper compares against: a supersampling network on
rendered frames, then an extrapolation network (ExtraNet-style) at display resolution that
warps the last high-resolution output forward on extrapolated frames.

Stages as :class:`~stss_runtime.passes.stss.StssPass`: ``prepare`` (history, and on
extrapolated frames the display-resolution warps), ``run`` (the network on its back-end),
``finish`` (crop, decode).
"""

from __future__ import annotations

import torch
from torch import nn

from ..backends import create_runner
from ..checkpoint import default_weights, load_weights
from ..frame import Frame
from ..graphs import extranet_graph, pad_to_multiple, supersampling_graph
from ..history import History
from ..ops import warp as W
from ..ops.encoding import decode_color
from ..models.recurrent import input_bound
from .base import Pass
from .stss import padded_size


def extranet_inputs(prev_output: torch.Tensor, frame: Frame, mask: torch.Tensor,
                    feature: torch.Tensor, history: torch.Tensor, display_size):
    """ExtraNet's display-resolution inputs: the previous output (encoded) warped by the
    upsampled motion, and the hole mask, G-buffer features and history (on the render's
    jittered grid) upsampled onto the display grid."""
    motion = W.upsample_motion(frame.motion, frame.depth, display_size)
    warped = W.sample(prev_output, motion)
    j = frame.jitter_px
    return (warped, W.resample(feature, display_size, j, mode="nearest"),
            W.resample(mask, display_size, j, mode="nearest"), W.resample(history, display_size, j))


class TwoStagePass(Pass):
    name = "two_stage"
    description = "supersampling network, then ExtraNet-style extrapolation at display resolution"
    inputs = ("color", "motion", "depth", "normal", "albedo", "roughness", "metallic", "object_id")
    neural = True
    runtime_options = True

    def __init__(self, supersampler: nn.Module | None = None, extrapolator: nn.Module | None = None,
                 device: str | torch.device = "cpu", backend: str = "torch", precision: str = "fp32",
                 max_render_size: tuple[int, int] | None = None, **backend_options):
        super().__init__()
        if supersampler is None:
            supersampler, _ = load_weights(default_weights("supersampling"), "supersampling")
        if extrapolator is None:
            extrapolator, _ = load_weights(default_weights("extranet"), "extranet")
        self.device = torch.device(device)
        self.supersampler = supersampler.eval().to(self.device)
        self.extrapolator = extrapolator.eval().to(self.device)
        self.specs = {"supersampling": supersampling_graph(self.supersampler),
                      "extranet": extranet_graph(self.extrapolator)}
        self.backend, self.precision = backend, precision
        self.max_render_size = max_render_size
        self.backend_options = backend_options
        self.runners: dict = {}

    @property
    def fixed_scale(self) -> int:
        return self.supersampler.SCALE

    def setup(self, render_size, display_size) -> None:
        super().setup(render_size, display_size)
        if not self.runners or self.backend == "tensorrt":
            size = padded_size(self.render_size)
            biggest = padded_size(self.max_render_size or self.render_size)
            self.runners = {name: create_runner(spec, self.backend, self.precision, self.device,
                                                render_size=size, max_render_size=biggest,
                                                **self.backend_options)
                            for name, spec in self.specs.items()}
        size = padded_size(self.render_size)
        for runner in self.runners.values():  # CUDA graphs are captured now, not at the first frame
            if hasattr(runner, "prepare"):
                runner.prepare(size[1], size[0])

    def reset(self) -> None:
        self.history = History()
        self.last_output: torch.Tensor | None = None  # encoded, display resolution

    def prepare(self, frame: Frame) -> tuple[str, dict[str, torch.Tensor]]:
        """(which network, its padded inputs)."""
        frame = frame.to(self.device)
        inp = self.history.step(frame)
        if frame.shaded or self.last_output is None:
            args = (inp.x[:, :3], inp.feature, inp.history, frame.jitter_tensor())
            name = "supersampling"
        else:
            args = extranet_inputs(self.last_output, frame, inp.mask, inp.feature, inp.history,
                                   self.display_size)
            name = "extranet"
        spec = self.specs[name]
        # no output brighter than the colours the network reads (finish clamps to it)
        self._bound = input_bound(args[0], *(inp.history[:, k:k + 3] for k in (0, 4, 8)))
        return name, {n: t if n in spec.fixed_inputs else pad_to_multiple(t)
                      for n, t in zip(spec.input_names, args)}

    def run(self, staged: tuple[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        name, inputs = staged
        return self.runners[name](inputs)["output"]

    def finish(self, encoded: torch.Tensor) -> torch.Tensor:
        w, h = self.display_size
        self.last_output = torch.minimum(encoded[..., :h, :w].clamp_min(0.0), self._bound)  # a copy: runners
        return decode_color(self.last_output)  # may reuse their output buffer

    def execute(self, frame: Frame) -> torch.Tensor:
        return self.finish(self.run(self.prepare(frame)))
