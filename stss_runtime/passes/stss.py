"""The STSS pass: one network, the same weights, for rendered and extrapolated frames.

Per frame, three stages (timed apart by the benchmark):
1. ``prepare``: the history plans the warps (chained motion, hole masks) — eager torch;
2. ``run``: the back-end runs the frame graph — colour warps, network, jitter correction
   (the network works on the render's jittered grid; its output is shifted onto the display
   grid at display resolution);
3. ``finish``: crop the padding, decode to linear colour (``stss_taa`` accumulates the
   output at display resolution first: :mod:`.stss_taa`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..backends import create_runner
from ..checkpoint import default_weights, load_weights
from ..frame import Frame
from ..graphs import pad_to_multiple, stss_graph, to_display_grid
from ..history import History, NetworkInputs
from ..models.recurrent import network_bound
from ..ops.encoding import decode_color
from .base import Pass


def run_network(model: nn.Module, inp: NetworkInputs, jitter: torch.Tensor) -> torch.Tensor:
    """Encoded output (1, 3, 2h, 2w) of STSS on the display grid for ``inp`` (the inputs of
    ``History().step``, on the render's jittered grid) and the frame's ``jitter``
    (:meth:`Frame.jitter_tensor`), padding to a multiple of 8: the eager path the frame
    graph must match."""
    h, w = inp.x.shape[-2:]
    args = [pad_to_multiple(t) for t in inp.as_tuple()]
    out = to_display_grid(model(*args), jitter)
    out = torch.minimum(out.clamp_min(0.0), network_bound(inp.x, inp.history))
    return out[..., : 2 * h, : 2 * w]


def padded_size(size: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """(width, height) rounded up to multiples of ``multiple``."""
    return (-(-size[0] // multiple) * multiple, -(-size[1] // multiple) * multiple)


class StssPass(Pass):
    name = "stss"
    description = "STSS: joint supersampling and extrapolation, one network"
    inputs = ("color", "motion", "depth", "normal", "albedo", "roughness", "metallic", "object_id")
    neural = True
    runtime_options = True
    #: The frame graph of this pass's network (:mod:`stss_runtime.graphs`).
    graph = staticmethod(stss_graph)

    def __init__(self, model: nn.Module | None = None, model_name: str = "stss",
                 device: str | torch.device = "cpu", backend: str = "torch", precision: str = "fp32",
                 max_render_size: tuple[int, int] | None = None, **backend_options):
        """``backend``/``precision``: see :func:`stss_runtime.backends.create_runner`;
        ``max_render_size``: the largest render size a TensorRT engine must admit
        (dynamic resolution); ``backend_options`` go to the runner."""
        super().__init__()
        if model is None:
            model, _ = load_weights(default_weights(model_name), expected_model=model_name)
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.spec = self.graph(self.model)
        self.backend, self.precision = backend, precision
        self.max_render_size = max_render_size
        self.backend_options = backend_options
        self.runner = None

    @property
    def fixed_scale(self) -> int:
        return self.model.SCALE

    def setup(self, render_size, display_size) -> None:
        super().setup(render_size, display_size)
        size = padded_size(self.render_size)
        if self.runner is None or self.backend == "tensorrt":  # engines are built for a size range
            self.runner = create_runner(self.spec, self.backend, self.precision, self.device,
                                        render_size=size, max_render_size=padded_size(
                                            self.max_render_size or self.render_size),
                                        **self.backend_options)
        if hasattr(self.runner, "prepare"):  # a CUDA graph is captured now, not at the first frame
            self.runner.prepare(size[1], size[0])

    def reset(self) -> None:
        self.history = History()

    def prepare(self, frame: Frame) -> dict[str, torch.Tensor]:
        """The frame graph's inputs (padded to multiples of 8)."""
        plan = self.history.plan(frame.to(self.device))
        return {k: v if k in self.spec.fixed_inputs else pad_to_multiple(v)
                for k, v in plan.as_dict().items()}

    def run(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoded output at the padded display size (a buffer the runner may reuse)."""
        return self.runner(inputs)["output"]

    def finish(self, encoded: torch.Tensor) -> torch.Tensor:
        w, h = self.display_size
        return decode_color(encoded[..., :h, :w])

    def execute(self, frame: Frame) -> torch.Tensor:
        return self.finish(self.run(self.prepare(frame)))
