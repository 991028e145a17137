"""The STSS pass: one network, the same weights, for rendered and extrapolated frames.

Per frame, three stages (timed apart by the benchmark):
1. ``prepare``: the history plans the warps (chained motion, hole masks) — eager torch;
2. ``run``: the back-end runs the frame graph — colour warps, network, jitter correction
   (the network works on the render's jittered grid; its output is shifted onto the display
   grid at display resolution);
3. ``finish``: crop the padding, decode to linear colour (``stss_taa``: after accumulating
   the output at display resolution, :class:`StssTemporalPass`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import warp as W
from ..backends import create_runner
from ..checkpoint import default_weights, load_weights
from ..frame import Frame
from ..graphs import pad_to_multiple, stss_graph, to_display_grid
from ..history import History, NetworkInputs, decode_color
from .base import Pass


def run_network(model: nn.Module, inp: NetworkInputs, jitter: torch.Tensor) -> torch.Tensor:
    """Encoded output (1, 3, 2h, 2w) of STSS on the display grid for ``inp`` (the inputs of
    ``History().step``, on the render's jittered grid) and the frame's ``jitter``
    (:meth:`Frame.jitter_tensor`), padding to a multiple of 8: the eager path the frame
    graph must match."""
    h, w = inp.x.shape[-2:]
    args = [pad_to_multiple(t) for t in inp.as_tuple()]
    out = to_display_grid(model(*args), jitter)
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
        self.spec = stss_graph(self.model)
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


class StssTemporalPass(StssPass):
    """STSS whose outputs are accumulated over time at display resolution.

    The published network reads the history only at its 1/8-resolution bottleneck (32
    channels per 8x8 render pixels from the history encoder): the history steers each output
    (worth 0.5-0.7 dB on rendered frames of the held-out scenes) but cannot carry per-pixel
    sub-pixel detail, so each STSS frame keeps much of its own render's aliasing (thin
    lines, fine repeating texture) that a temporal upscaler averages away.

    This pass blends each STSS output (SF and EF alike) into an accumulation reprojected by
    the upsampled motion vectors (bicubic), the reprojection clamped to the 3x3 colour box
    of the new STSS frame (so stale colour cannot survive, as in TAA) and dropped where the
    runtime's hole mask marks a disocclusion. ``alpha``, ``clamp_window`` and
    ``keep_window`` were chosen on two training segments (plaza_c, scatter:17), not on the
    held-out scenes (``scripts/tune_accumulation.py``; the idea itself was first tried on
    traffic, see ``stss_runtime/weights/README.md``). No latency is added: frame i's
    output depends on frames up to i only. The accumulation runs in eager torch after the
    back-end (the ``finish`` stage), not inside the exported graph.
    """

    name = "stss_taa"
    description = "STSS, its outputs accumulated at display resolution (clamped history, no added latency)"
    alpha = 0.4  # weight of the new STSS frame where the history is kept
    clamp_window = 3  # display pixels: the colour box the reprojected history is clamped to
    keep_window = 3  # render pixels: holes narrower than this keep their history (jitter moves thin lines)

    def reset(self) -> None:
        super().reset()
        self.accum: torch.Tensor | None = None  # encoded colour, display resolution
        self._reprojection: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def prepare(self, frame: Frame) -> dict[str, torch.Tensor]:
        frame = frame.to(self.device)  # once: the plan's own move then copies nothing
        inputs = super().prepare(frame)
        # what finish() needs to bring the accumulation to this frame
        self._reprojection = (frame.motion, frame.depth, self.history.previous_valid)
        return inputs

    def finish(self, encoded: torch.Tensor) -> torch.Tensor:
        w, h = self.display_size
        cur = encoded[..., :h, :w]
        motion, depth, previous_valid = self._reprojection
        if self.accum is None or previous_valid is None:  # first frame after a reset
            self.accum = cur.clone()  # the runner may reuse its output buffer
            return decode_color(self.accum)
        self.accum = accumulate(self.accum, cur, motion, depth, previous_valid,
                                self.alpha, self.clamp_window, self.keep_window)
        return decode_color(self.accum)


def accumulate(accum: torch.Tensor, cur: torch.Tensor, motion: torch.Tensor, depth: torch.Tensor,
               previous_valid: torch.Tensor, alpha: float, clamp_window: int, keep_window: int) -> torch.Tensor:
    """One step of :class:`StssTemporalPass`: the accumulation ``accum`` (encoded, display
    resolution, the previous display frame's) brought to this frame and blended with its
    STSS output ``cur``. ``motion``/``depth`` (render resolution) reproject it;
    ``previous_valid`` is the runtime's hole mask (render resolution, 1 = history valid)."""
    size = (cur.shape[-1], cur.shape[-2])
    reprojected = W.sample(accum, W.upsample_motion(motion, depth, size), "bicubic")
    k, r = clamp_window, clamp_window // 2
    lo = -F.max_pool2d(-cur, k, 1, r)
    hi = F.max_pool2d(cur, k, 1, r)
    history = torch.minimum(torch.maximum(reprojected.clamp(0.0, 1.0), lo), hi)
    kept = F.max_pool2d(previous_valid, keep_window, 1, keep_window // 2)
    kept = W.resample(kept, size, mode="nearest")
    a = torch.where(kept > 0.5, torch.full_like(kept, alpha), torch.ones_like(kept))
    return history + a * (cur - history)
