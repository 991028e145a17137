"""Building blocks shared by STSS and the two-stage networks, plus two small helpers.

Every convolution is 3x3 with padding 1 unless stated; ``B`` is the batch, ``C`` channels,
``H x W`` the spatial size of the tensor the block receives. No block holds normalisation
or dropout layers, so train and eval mode compute the same function.

Helpers: :func:`scale_channels` (the width multiplier), :func:`check_inputs` (the shape
contract of every ``forward``) and :func:`count_macs` (multiply-adds of one forward).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to the nearest multiple of 4 (halves up), at least 4."""
    if width <= 0:
        raise ValueError(f"width multiplier must be positive, got {width}")
    return max(4, int(channels * width / 4.0 + 0.5) * 4)


class Conv(nn.Module):
    """3x3 convolution (padding 1), optionally strided, with an optional ReLU after.

    (B, Cin, H, W) -> (B, Cout, H / stride, W / stride) (sizes rounded up).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return F.relu(y) if self.relu else y


class GatedConv(nn.Module):
    """Gated convolution: ``act(feature_conv(x)) * sigmoid(gate_conv(x))``.

    The feature conv maps Cin -> Cout, the gate conv Cin -> 1 (one gate shared by all
    output channels); both 3x3, padding 1, same stride. ``act`` is ReLU or the identity.
    (B, Cin, H, W) -> (B, Cout, H / stride, W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.feature = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.gate = nn.Conv2d(in_channels, 1, 3, stride=stride, padding=1)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.feature(x)
        if self.relu:
            y = F.relu(y)
        return y * torch.sigmoid(self.gate(x))


class HistoryEncoder(nn.Module):
    """Encodes the warped history frames into a "motion feature" at 1/8 resolution.

    The frames share one encoder and run through it as one batch: per frame three stages,
    each a stride-2 conv (with ReLU) followed by two same-width convs. The per-frame
    results are concatenated in frame order (oldest first) and reduced by a gated conv.

    (B, num_frames * frame_channels, H, W) -> (B, out_channels, H / 8, W / 8);
    H and W must be multiples of 8.
    """

    def __init__(self, frame_channels: int = 4, num_frames: int = 3,
                 stage_channels: Sequence[int] = (24, 32, 32), out_channels: int = 32) -> None:
        super().__init__()
        self.frame_channels = frame_channels
        self.num_frames = num_frames
        stages = []
        cin = frame_channels
        for c in stage_channels:
            stages.append(nn.Sequential(Conv(cin, c, stride=2), Conv(c, c), Conv(c, c)))
            cin = c
        self.stages = nn.Sequential(*stages)
        self.fuse = GatedConv(num_frames * cin, out_channels)
        self.out_channels = out_channels

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        h, w = history.shape[-2:]
        # (B, F*C, H, W) -> (B*F, C, H, W): batch-major, frames in order within a sample.
        frames = history.reshape(-1, self.frame_channels, h, w)
        encoded = self.stages(frames)
        c, he, we = encoded.shape[-3:]
        # (B*F, C', h, w) -> (B, F*C', h, w): frame k's channels at [k*C', (k+1)*C').
        return self.fuse(encoded.reshape(-1, self.num_frames * c, he, we))


class DownBlock(nn.Module):
    """Stride-2 gated conv keeping the channel count (no ReLU), then two gated convs with
    ReLU, the first of which maps Cin -> Cout.

    (B, Cin, H, W) -> (B, Cout, H / 2, W / 2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.down = GatedConv(in_channels, in_channels, stride=2, relu=False)
        self.conv1 = GatedConv(in_channels, out_channels)
        self.conv2 = GatedConv(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self.down(x)))


class Encoder(nn.Module):
    """Gated U-Net encoder: two gated convs to ``stem_channels`` at full resolution, then
    one :class:`DownBlock` per entry of ``block_channels``.

    (B, Cin, H, W) -> ``[x1, x2, ..., xn]`` with ``x1`` (B, stem, H, W) and ``x(k+1)``
    (B, block_channels[k], H / 2^k, W / 2^k).
    """

    def __init__(self, in_channels: int, stem_channels: int = 24,
                 block_channels: Sequence[int] = (24, 32, 32)) -> None:
        super().__init__()
        self.stem = nn.Sequential(GatedConv(in_channels, stem_channels),
                                  GatedConv(stem_channels, stem_channels))
        blocks = []
        cin = stem_channels
        for c in block_channels:
            blocks.append(DownBlock(cin, c))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        #: Channel counts of the returned tensors, full resolution first.
        self.out_channels: tuple[int, ...] = (stem_channels, *block_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [self.stem(x)]
        for block in self.blocks:
            outputs.append(block(outputs[-1]))
        return outputs


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling (half-pixel centres, ``align_corners=False``).

    (B, C, H, W) -> (B, C, 2H, 2W).
    """
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class UpBlock(nn.Module):
    """Bilinear x2 upsampling, concatenation with the skip tensor, two convs with ReLU.

    (B, Cin, H, W), skip (B, Cskip, 2H, 2W) -> (B, Cout, 2H, 2W).
    """

    def __init__(self, in_channels: int, skip_channels: int, mid_channels: int,
                 out_channels: int) -> None:
        super().__init__()
        self.conv1 = Conv(in_channels + skip_channels, mid_channels)
        self.conv2 = Conv(mid_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(torch.cat([upsample2x(x), skip], dim=1)))


class PixelShuffleHead(nn.Module):
    """1x1 conv to ``out_channels * scale^2``, pixel shuffle, plus a bilinear upsample of
    ``color`` as a residual. The output is not clamped.

    features (B, C, H, W), color (B, out_channels, H, W) -> (B, out_channels, sH, sW).
    """

    def __init__(self, in_channels: int, out_channels: int = 3, scale: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * scale * scale, 1)
        self.scale = scale

    def forward(self, features: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        residual = F.interpolate(color, scale_factor=float(self.scale), mode="bilinear",
                                 align_corners=False)
        return F.pixel_shuffle(self.conv(features), self.scale) + residual


class ResidualHead(nn.Module):
    """3x3 conv to ``out_channels`` plus ``color`` as a residual, same resolution; not
    clamped.

    features (B, C, H, W), color (B, out_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, features: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        return self.conv(features) + color


class Decoder(nn.Module):
    """U-Net decoder followed by an output head.

    One :class:`UpBlock` per skip tensor (deepest skip first), each entry of
    ``block_channels`` giving its (mid, out) channels; then ``head(features, color)``.

    bottleneck (B, Cin, h, w), skips ``[(B, C_k, 2^k h, 2^k w) for k = 1..n]``, color ->
    whatever ``head`` returns for features of size (2^n h, 2^n w).
    """

    def __init__(self, in_channels: int, skip_channels: Sequence[int],
                 block_channels: Sequence[tuple[int, int]], head: nn.Module) -> None:
        super().__init__()
        if len(skip_channels) != len(block_channels):
            raise ValueError(f"Decoder: {len(skip_channels)} skip tensors but "
                             f"{len(block_channels)} block widths")
        blocks = []
        cin = in_channels
        for skip, (mid, out) in zip(skip_channels, block_channels):
            blocks.append(UpBlock(cin, skip, mid, out))
            cin = out
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, bottleneck: torch.Tensor, skips: Sequence[torch.Tensor],
                color: torch.Tensor) -> torch.Tensor:
        y = bottleneck
        for block, skip in zip(self.blocks, skips):
            y = block(y, skip)
        return self.head(y, color)


# --------------------------------------------------------------------------------------
# Helpers


def check_inputs(owner: str, inputs: Mapping[str, torch.Tensor], channels: Mapping[str, int],
                 size_multiple: int = 1) -> None:
    """Check that every input is a (B, C, H, W) tensor with its expected channel count and
    the batch and spatial size of the first input.

    ``owner`` (e.g. ``"STSS.forward"``) starts every message. Raises ``ValueError`` naming
    the argument, the expected and the actual shape; with ``size_multiple > 1``, also when
    H or W is not a multiple of it. Skipped while ``torch.jit`` traces (legacy ONNX
    export), where shapes are traced values; sizes are never turned into Python ints, so
    symbolic shapes (``torch.export``) stay symbolic.
    """
    if torch.jit.is_tracing():
        return
    ref_name = next(iter(inputs))
    ref_shape = None
    for name, tensor in inputs.items():
        c = channels[name]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{owner}: {name} must be a torch.Tensor of shape "
                             f"(B, {c}, H, W), got {type(tensor).__name__}")
        shape = tuple(tensor.shape)
        if ref_shape is None:
            if len(shape) != 4 or shape[1] != c:
                raise ValueError(f"{owner}: {name} must have shape (B, {c}, H, W), "
                                 f"got {shape}")
            ref_shape = shape
            h, w = shape[2], shape[3]
            if size_multiple > 1 and (h % size_multiple != 0 or w % size_multiple != 0):
                raise ValueError(
                    f"{owner}: H and W must be multiples of {size_multiple}, got "
                    f"H={h}, W={w} (from {ref_name}); pad the inputs to a multiple of "
                    f"{size_multiple} first")
            continue
        expected = (ref_shape[0], c, ref_shape[2], ref_shape[3])
        if len(shape) != 4 or any(a != e for a, e in zip(shape, expected)):
            raise ValueError(f"{owner}: {name} must have shape (B, {c}, H, W) = "
                             f"{expected} (B, H, W from {ref_name}), got {shape}")


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of one batch-1 forward of ``model`` with inputs of ``height x width``.

    ``model`` must provide ``example_inputs((height, width))`` (every network of this
    package does; the size is the one its inputs have, i.e. the render size for STSS).
    Counts convolutions and linear layers (``Cin / groups * kh * kw`` per output element,
    biases and element-wise work not counted). Runs a copy of the model on the ``meta``
    device, so it costs no memory or compute at any size.
    """
    meta_model = copy.deepcopy(model).to("meta")
    total = 0

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += out.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in meta_model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        inputs = meta_model.example_inputs((height, width), device="meta")
        with torch.no_grad():
            meta_model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total
