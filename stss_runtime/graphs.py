"""The graphs a back-end runs: fixed-structure ``nn.Module``s with named inputs and outputs.

A pass keeps the history and decides *what* to warp (chained motion fields, hole tests on
depth, ids and normals: :meth:`stss_runtime.history.History.plan`); a graph does the dense
tensor work of one frame — the backward warps, the jitter correction and the network —
so that a compiled back-end (ONNX Runtime, TensorRT, a CUDA graph) runs all of it.

Every graph reads and writes float32 NCHW tensors whose height and width are multiples of 8
(the caller pads, :func:`pad_to_multiple`), and has no data-dependent control flow, so it
exports to ONNX with standard operators only (``GridSample`` for the warps).

- ``stss``: :class:`StssFrameGraph`, the joint pass — warps + STSS + unjitter at display resolution;
- ``stss_recurrent``: :class:`RecurrentFrameGraph`, the same with a recurrent display-resolution
  state and a learned accumulation (:mod:`stss_runtime.models.recurrent`);
- ``supersampling`` and ``extranet``: the two networks of the two-stage pipeline, whose
  (display-resolution) warps stay with the pass.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models import STSS, ExtraNet, SupersamplingNet
from .models.recurrent import RecurrentStss, network_bound

#: Height and width of every graph input are multiples of this.
SIZE_MULTIPLE = 8


def pad_to_multiple(t: torch.Tensor, multiple: int = SIZE_MULTIPLE) -> torch.Tensor:
    """Replicate-pad the bottom/right of (N, C, h, w) so h and w are multiples of ``multiple``."""
    h, w = t.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(t, (0, pw, 0, ph), mode="replicate") if ph or pw else t


def warp_in_graph(src: torch.Tensor, offset: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warp (border clamp), as :func:`stss_runtime.ops.warp.sample`, written with
    shape-derived grids so it traces for any size. ``mode``: bilinear, bicubic, nearest."""
    n, _, h, w = offset.shape
    ys = (torch.arange(h, device=offset.device, dtype=offset.dtype) + 0.5).view(1, h, 1)
    xs = (torch.arange(w, device=offset.device, dtype=offset.dtype) + 0.5).view(1, 1, w)
    gx = (xs + offset[:, 0]) * (2.0 / w) - 1.0
    gy = (ys + offset[:, 1]) * (2.0 / h) - 1.0
    return F.grid_sample(src, torch.stack([gx, gy], dim=-1), mode=mode,
                         padding_mode="border", align_corners=False)


def _cubic_weight(d: torch.Tensor, a: float = -0.75) -> torch.Tensor:
    """Keys' cubic convolution kernel (PyTorch's bicubic, a = -0.75) at distance ``d``."""
    d = d.abs()
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def shift_bicubic(src: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``src`` (N, C, h, w) read at every pixel + ``shift`` (N, 2, 1, 1) pixels, |shift| < 1,
    bicubic with the border clamped: equal to :func:`warp_in_graph` in bicubic mode with a
    uniform offset, written as two 5-tap filters over shifted slices (a uniform sub-pixel
    shift needs no gather, and a GridSample fed by other warps' arithmetic trips
    TensorRT-RTX 1.7's compiler)."""
    out = src
    for axis in (3, 2):  # x, then y
        j = shift[:, 0:1] if axis == 3 else shift[:, 1:2]
        pad = (2, 2, 0, 0) if axis == 3 else (0, 0, 2, 2)
        padded = F.pad(out, pad, mode="replicate")
        n = padded.shape[axis]
        acc = None
        for k in range(-2, 3):
            tap = padded[..., 2 + k: n - 2 + k] if axis == 3 else padded[..., 2 + k: n - 2 + k, :]
            term = _cubic_weight(k - j) * tap
            acc = term if acc is None else acc + term
        out = acc
    return out


def to_display_grid(out: torch.Tensor, jitter: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Undo the render's jitter on a network output (N, C, scale*h, scale*w) made on the
    jittered render grid: read it ``scale * jitter`` display pixels over (bicubic), since
    the surface at unjittered position p sits at p + jitter in the render.

    ``jitter`` (N, 2, 1, 1) render pixels. A convolutional network is translation-equivariant,
    so it needs no jitter input when it works on the grid the frame was rendered on, and the
    sub-pixel shift at display resolution costs far less detail than at render resolution:
    on the held-out scenes the network's bilinear residual alone scores 32.24 / 32.65 dB
    (traffic / fence SF, Y-PSNR) this way against 31.45 / 32.30 dB shifted at render
    resolution first (``scripts/unjitter_check.py``)."""
    return shift_bicubic(out, jitter * float(scale))


def network_inputs(current, shaded, last, last_offset, last_valid, bg_offset, stored, stored_offset,
                   stored_valid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """STSS's ``x``, ``mask`` and ``history`` from a warp plan (the warps of
    :meth:`stss_runtime.history.History.step`, written for a graph)."""
    plain = warp_in_graph(last, last_offset)
    filled = last_valid * plain + (1.0 - last_valid) * warp_in_graph(last, bg_offset)
    x = shaded * torch.cat([current, current], 1) + (1.0 - shaded) * torch.cat([filled, plain], 1)
    mask = shaded + (1.0 - shaded) * last_valid
    hist = []
    for k in range(3):
        c = warp_in_graph(stored[:, 3 * k:3 * k + 3], stored_offset[:, 2 * k:2 * k + 2])
        hist += [c, stored_valid[:, k:k + 1]]
    return x, mask, torch.cat(hist, 1)


class StssFrameGraph(nn.Module):
    """One STSS display frame from the history's warp plan; output (1, 3, 2h, 2w) encoded.

    The network sees its inputs on the current render's jittered pixel grid (the history is
    warped onto it) and :func:`to_display_grid` moves its output onto the display grid.

    Inputs (render resolution h x w, see :class:`stss_runtime.history.WarpPlan`):
    ``current`` (1, 3) the encoded colour of a rendered frame (ignored when ``shaded`` is 0);
    ``shaded`` (1, 1, 1, 1); ``jitter`` (1, 2, 1, 1) the frame's jitter in pixels;
    ``last`` (1, 3) the last rendered frame, ``last_offset`` (1, 2) where each pixel reads
    it, ``last_valid`` (1, 1) its hole mask, ``bg_offset`` (1, 2) the background-motion
    offsets that fill the holes; ``stored`` (1, 9) the three stored frames oldest first,
    ``stored_offset`` (1, 6), ``stored_valid`` (1, 3); ``feature`` (1, 9) G-buffer features.
    The output is clamped to [0, the largest input colour] per channel
    (:func:`~stss_runtime.models.recurrent.network_bound`).
    """

    input_names = ("current", "shaded", "jitter", "last", "last_offset", "last_valid", "bg_offset",
                   "stored", "stored_offset", "stored_valid", "feature")

    def __init__(self, stss: nn.Module):
        super().__init__()
        self.stss = stss

    def forward(self, current, shaded, jitter, last, last_offset, last_valid, bg_offset,
                stored, stored_offset, stored_valid, feature):
        x, mask, hist = network_inputs(current, shaded, last, last_offset, last_valid, bg_offset,
                                       stored, stored_offset, stored_valid)
        # the network works on the render's own (jittered) grid; its output moves onto the
        # display grid at display resolution (see to_display_grid)
        out = to_display_grid(self.stss(x, feature, mask, hist), jitter)
        # never brighter than the inputs: a network's guess must not flash
        return torch.minimum(out.clamp_min(0.0), network_bound(x, hist))


class SupersamplingFrameGraph(nn.Module):
    """The two-stage pipeline's supersampler on a rendered frame, its output moved onto the
    display grid like STSS's (:func:`to_display_grid`): inputs ``color`` (1, 3), ``feature``
    (1, 9), ``history`` (1, 12) on the render's jittered grid, ``jitter`` (1, 2, 1, 1)."""

    input_names = ("color", "feature", "history", "jitter")

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, color, feature, history, jitter):
        return to_display_grid(self.net(color, feature, history), jitter)


class RecurrentFrameGraph(nn.Module):
    """One display frame of :class:`~stss_runtime.models.recurrent.RecurrentStss`: the warps
    of :class:`StssFrameGraph`, the previous output reprojected, the network, and the fixed
    accumulation step. Inputs: those of :class:`StssFrameGraph`, plus at display resolution
    (2h x 2w) ``accum`` (1, 3) the previous output (encoded), ``weight`` (1, 1) its
    accumulated sample weight, ``acc_offset`` (1, 2) where each display pixel reads them
    (display pixels), ``acc_valid`` (1, 1) 1 where that history may be used. Output
    (1, 4, 2h, 2w): the encoded output and its new weight, the next frame's ``accum`` and
    ``weight``."""

    input_names = StssFrameGraph.input_names + ("accum", "weight", "acc_offset", "acc_valid")

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, current, shaded, jitter, last, last_offset, last_valid, bg_offset,
                stored, stored_offset, stored_valid, feature, accum, weight, acc_offset, acc_valid):
        x, mask, hist = network_inputs(current, shaded, last, last_offset, last_valid, bg_offset,
                                       stored, stored_offset, stored_valid)
        return recurrent_step(self.net, x, feature, mask, hist, current, shaded, jitter, accum, weight,
                              acc_offset, acc_valid, network_bound(x, hist))


def recurrent_step(net: nn.Module, x, feature, mask, history, current, shaded, jitter, accum, weight,
                   acc_offset, acc_valid, bound, trunk: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """One step of the recurrent network from its network inputs (batched: the same in the
    frame graph and in training): reproject the state, run the network, move its outputs onto
    the display grid, accumulate. Returns (B, 4, 2h, 2w): output and new weight. ``trunk``:
    the trunk's outputs for these inputs when already computed (:meth:`RecurrentStss.trunk`)."""
    reprojected = warp_in_graph(accum, acc_offset, "bicubic").clamp(0.0, 1.0)
    w = warp_in_graph(weight, acc_offset, "nearest") * acc_valid
    state = net.state_inputs(reprojected, w, acc_valid, net.MAX_WEIGHT)
    raw = net(x, feature, mask, history, state) if trunk is None else net.head(*trunk, state, x[:, :3])
    y = to_display_grid(raw, jitter)
    out, new_w = net.accumulate(y[:, :3], y[:, 3:], current, shaded, jitter, reprojected, w, acc_valid, bound)
    return torch.cat([out, new_w], 1)


@dataclass(frozen=True)
class GraphSpec:
    """A graph a back-end can run: the module, its named inputs and outputs, and the shape
    of each input for a render size (h, w) (outputs are 2h x 2w)."""

    name: str
    module: nn.Module
    input_names: tuple[str, ...]
    input_shapes: dict[str, Callable[[int, int], tuple[int, ...]]]
    output_names: tuple[str, ...] = ("output",)
    #: inputs whose last two axes do not follow the frame size (flags, jitter)
    fixed_inputs: frozenset[str] = field(default_factory=frozenset)
    #: channels of the (display-resolution) output
    output_channels: int = 3

    def input_shape(self, name: str, h: int, w: int) -> tuple[int, ...]:
        return self.input_shapes[name](h, w)

    def output_shape(self, h: int, w: int) -> tuple[int, ...]:
        return (1, self.output_channels, 2 * h, 2 * w)

    def example_inputs(self, h: int, w: int, seed: int = 0,
                       device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """Plausible random inputs: colours in [0, 1], offsets of a few pixels, binary masks."""
        g = torch.Generator().manual_seed(seed)
        out = {}
        for name in self.input_names:
            shape = self.input_shape(name, h, w)
            if name == "shaded":
                t = torch.zeros(shape)
            elif name == "jitter":
                t = torch.rand(shape, generator=g) - 0.5
            elif "offset" in name:
                t = (torch.rand(shape, generator=g) - 0.5) * 6
            elif "valid" in name or name == "mask":
                t = (torch.rand(shape, generator=g) > 0.2).float()
            elif name == "weight":
                t = torch.rand(shape, generator=g) * 12.0
            else:
                t = torch.rand(shape, generator=g)
            out[name] = t.to(device)
        return out


def _frame(c: int) -> Callable[[int, int], tuple[int, ...]]:
    return lambda h, w: (1, c, h, w)


def _display(c: int) -> Callable[[int, int], tuple[int, ...]]:
    return lambda h, w: (1, c, 2 * h, 2 * w)


def stss_graph(model: nn.Module) -> GraphSpec:
    """The joint pass: warps, STSS and the display-resolution unjitter (:class:`StssFrameGraph`)."""
    if not isinstance(model, STSS):
        raise TypeError(f"stss_graph needs an STSS model, got {type(model).__name__}")
    shapes = {"current": _frame(3), "shaded": lambda h, w: (1, 1, 1, 1),
              "jitter": lambda h, w: (1, 2, 1, 1), "last": _frame(3), "last_offset": _frame(2),
              "last_valid": _frame(1), "bg_offset": _frame(2), "stored": _frame(9),
              "stored_offset": _frame(6), "stored_valid": _frame(3), "feature": _frame(9)}
    return GraphSpec("stss", StssFrameGraph(model).eval(), StssFrameGraph.input_names, shapes,
                     fixed_inputs=frozenset({"shaded", "jitter"}))


def recurrent_graph(model: nn.Module) -> GraphSpec:
    """The recurrent joint pass: warps, the network, the accumulation (:class:`RecurrentFrameGraph`)."""
    if not isinstance(model, RecurrentStss):
        raise TypeError(f"recurrent_graph needs a RecurrentStss model, got {type(model).__name__}")
    shapes = dict(stss_graph(model.stss).input_shapes)
    shapes.update({"accum": _display(3), "weight": _display(1), "acc_offset": _display(2), "acc_valid": _display(1)})
    return GraphSpec("stss_recurrent", RecurrentFrameGraph(model).eval(), RecurrentFrameGraph.input_names, shapes,
                     fixed_inputs=frozenset({"shaded", "jitter"}), output_channels=4)


def supersampling_graph(model: nn.Module) -> GraphSpec:
    """The two-stage pipeline's supersampler on rendered frames (colour, features, history)."""
    if not isinstance(model, SupersamplingNet):
        raise TypeError(f"supersampling_graph needs a SupersamplingNet, got {type(model).__name__}")
    return GraphSpec("supersampling", SupersamplingFrameGraph(model).eval(),
                     SupersamplingFrameGraph.input_names,
                     {"color": _frame(3), "feature": _frame(9), "history": _frame(12),
                      "jitter": lambda h, w: (1, 2, 1, 1)}, fixed_inputs=frozenset({"jitter"}))


def extranet_graph(model: nn.Module) -> GraphSpec:
    """The two-stage pipeline's extrapolator, at display resolution: its inputs are 2h x 2w."""
    if not isinstance(model, ExtraNet):
        raise TypeError(f"extranet_graph needs an ExtraNet, got {type(model).__name__}")
    return GraphSpec("extranet", model.eval(), ("x", "feature", "mask", "history"),
                     {"x": _display(3), "feature": _display(9), "mask": _display(1),
                      "history": _display(12)})


def graph_for(model: nn.Module) -> GraphSpec:
    """The graph spec of any runtime network."""
    if isinstance(model, STSS):
        return stss_graph(model)
    if isinstance(model, RecurrentStss):
        return recurrent_graph(model)
    if isinstance(model, SupersamplingNet):
        return supersampling_graph(model)
    if isinstance(model, ExtraNet):
        return extranet_graph(model)
    raise TypeError(f"no graph for a {type(model).__name__}")


class HalfPrecision(nn.Module):
    """Runs ``net`` in float16 between float32 inputs and outputs. The warps around it stay
    float32: a float16 pixel coordinate is off by up to half a pixel past 1024."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = copy.deepcopy(net).half()

    def forward(self, *args):
        return self.net(*(a.half() for a in args)).float()


class HalfRecurrent(HalfPrecision):
    """:class:`HalfPrecision` for :class:`RecurrentStss`: the network in float16, the state
    inputs and the accumulation step in float32."""

    def __init__(self, net: nn.Module):
        super().__init__(net)
        self.MAX_WEIGHT = net.MAX_WEIGHT
        self.state_inputs, self.accumulate = net.state_inputs, net.accumulate

    def forward(self, *args):
        return self.net(*(a.half() for a in args)).float()


def at_precision(spec: GraphSpec, precision: str) -> GraphSpec:
    """``spec`` with its network in ``precision`` ("fp32": unchanged, "fp16": float16
    weights and activations inside, float32 at the graph's inputs and outputs)."""
    if precision == "fp32":
        return spec
    if precision != "fp16":
        raise ValueError(f"precision: expected 'fp32' or 'fp16', got {precision!r}")
    module = spec.module
    if isinstance(module, StssFrameGraph):
        module = StssFrameGraph(HalfPrecision(module.stss))
    elif isinstance(module, RecurrentFrameGraph):
        module = RecurrentFrameGraph(HalfRecurrent(module.net))
    elif isinstance(module, SupersamplingFrameGraph):
        module = SupersamplingFrameGraph(HalfPrecision(module.net))
    else:
        module = HalfPrecision(module)
    return replace(spec, module=module.eval())
