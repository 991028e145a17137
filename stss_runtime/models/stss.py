"""STSS: joint space-time supersampling network (``shared/STSS.md``).

One network for supersampled frames (SF) and extrapolated frames (EF): a history encoder
turns three warped past frames into a motion feature at 1/8 resolution, a gated U-Net
encoder reads the colour, its hole mask and the G-buffers, the Efficient Reshading
Module (ERM) fills holes at 1/8 resolution by a local attention whose similarity comes
from G-buffers alone, and the decoder and a pixel-shuffle head produce the 2x output on
top of a bilinear upsample of the input colour.

The default configuration (``STSS()``) has 417,241 parameters: history encoder 93,033,
main encoder 77,184, ERM 118,656, decoder and head 128,368.

Design decisions this project made where the description leaves them open:

* Mask and G-buffer features reach 1/8 resolution by 8x8 average pooling
  (``F.avg_pool2d(., 8)``), so the low-resolution mask is the fraction of trustworthy
  pixels of each 8x8 block (1 for SF frames).
* In the ERM's value and key encoders the first two convs have a ReLU and the last has
  none: values stay signed, and keys can point in opposite directions, so the
  ``relu(<K_i, K_j>)`` of the attention can actually reject a neighbour.
* Stride-2 convs use padding 1, so every stage halves H and W exactly; hence H and W must
  be multiples of 8 (checked; the runtime pads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Conv, Decoder, Encoder, HistoryEncoder, PixelShuffleHead, check_inputs, scale_channels

#: Named width multipliers of :class:`STSS`.
PRESETS: dict[str, float] = {"stss": 1.0, "stss_small": 0.5, "stss_tiny": 0.25}


def local_attention(keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                    radius: int = 2, eps: float = 1e-6) -> torch.Tensor:
    """The ERM's local attention over each pixel's (2r+1)^2 neighbourhood.

    For pixel ``i`` and neighbours ``j``: ``w_j = relu(<K_i, K_j * mask_j>)`` and output
    ``sum_j w_j V_j / max(sum_j w_j, eps)``. ``values`` are used as given (the ERM masks
    them beforehand). Outside the image keys and values are zero, so ``w_j = 0`` there:
    border pixels average over their in-image neighbours only.

    The neighbourhood is written as (2r+1)^2 constant slices of a zero-padded tensor, which
    exports to ONNX as plain Slice/Mul/ReduceSum ops for any H and W.

    keys (B, Ck, H, W), values (B, Cv, H, W), mask (B, 1, H, W) -> (B, Cv, H, W).
    """
    pad = (radius, radius, radius, radius)
    keys_padded = F.pad(keys * mask, pad)
    values_padded = F.pad(values, pad)
    size = 2 * radius + 1
    numerator = denominator = None
    for dy in range(size):
        for dx in range(size):
            # Neighbour at offset (dy - r, dx - r); the slice end is negative (or None).
            ys = slice(dy, dy - 2 * radius or None)
            xs = slice(dx, dx - 2 * radius or None)
            k_j = keys_padded[:, :, ys, xs]
            v_j = values_padded[:, :, ys, xs]
            w_j = F.relu((keys * k_j).sum(dim=1, keepdim=True))
            if numerator is None:
                numerator, denominator = w_j * v_j, w_j
            else:
                numerator = numerator + w_j * v_j
                denominator = denominator + w_j
    return numerator / denominator.clamp_min(eps)


class EfficientReshadingModule(nn.Module):
    """ERM: local attention at 1/8 resolution with keys from the G-buffers alone.

    ``V = enc_v(concat(x4, feature_1/8)) * mask_1/8`` and
    ``K = normalize(enc_k(feature_1/8))`` (unit length over channels), then
    :func:`local_attention` over 5x5 neighbourhoods. ``feature`` and ``mask`` come at full
    resolution and are average-pooled by ``downscale``.

    x4 (B, Cx, H / s, W / s), feature (B, Cf, H, W), mask (B, 1, H, W)
    -> (B, value_channels, H / s, W / s), with s = ``downscale``.
    """

    def __init__(self, in_channels: int = 32, feature_channels: int = 9,
                 value_channels: int = 64, key_channels: int = 32, radius: int = 2,
                 downscale: int = 8) -> None:
        super().__init__()
        self.enc_v = nn.Sequential(Conv(in_channels + feature_channels, value_channels),
                                   Conv(value_channels, value_channels),
                                   Conv(value_channels, value_channels, relu=False))
        self.enc_k = nn.Sequential(Conv(feature_channels, key_channels),
                                   Conv(key_channels, key_channels),
                                   Conv(key_channels, key_channels, relu=False))
        self.radius = radius
        self.downscale = downscale
        self.out_channels = value_channels

    def forward(self, x4: torch.Tensor, feature: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        feature_lr = F.avg_pool2d(feature, self.downscale)
        mask_lr = F.avg_pool2d(mask, self.downscale)
        values = self.enc_v(torch.cat([x4, feature_lr], dim=1)) * mask_lr
        keys = F.normalize(self.enc_k(feature_lr), dim=1)
        return local_attention(keys, values, mask_lr, self.radius)


class STSS(nn.Module):
    """The STSS network: one forward refines a render-resolution frame to 2x resolution.

    ``width`` scales every internal channel count (rounded to a multiple of 4, at least 4);
    1.0 is the published network (417,241 parameters), see :data:`PRESETS`.

    Submodules: ``history_encoder`` (incl. the gated conv to the motion feature),
    ``encoder``, ``erm``, ``decoder`` (incl. the pixel-shuffle head ``decoder.head``).

    Inputs, all at render resolution H x W (multiples of :attr:`SIZE_MULTIPLE`):

    * ``x`` (B, 6, H, W): the colour to refine (SF: current frame twice; EF: occlusion
      warp and plain warp of the last shaded frame);
    * ``feature`` (B, 9, H, W): G-buffers (normal 3, depth 1, roughness 1, metallic 1,
      albedo 3);
    * ``mask`` (B, 1, H, W): 1 where ``x`` is trustworthy, 0 in holes;
    * ``history`` (B, 12, H, W): three warped older frames, oldest first, each colour 3 +
      hole mask 1.

    Output (B, 3, 2H, 2W): the display-resolution frame, not clamped; the same in train
    and eval mode.
    """

    #: H and W must be multiples of this (three stride-2 stages down to 1/8).
    SIZE_MULTIPLE = 8
    #: Output size / input size, per axis.
    SCALE = 2
    #: Argument names of :meth:`forward`, in order, and their channel counts.
    INPUT_CHANNELS: dict[str, int] = {"x": 6, "feature": 9, "mask": 1, "history": 12}
    #: Names of the outputs of :meth:`forward` (one tensor).
    OUTPUT_NAMES: tuple[str, ...] = ("output",)

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.width = float(width)

        def ch(c: int) -> int:
            return scale_channels(c, width)

        feature_ch = self.INPUT_CHANNELS["feature"]
        self.history_encoder = HistoryEncoder(frame_channels=4, num_frames=3,
                                              stage_channels=(ch(24), ch(32), ch(32)),
                                              out_channels=ch(32))
        in_ch = 2 * self.INPUT_CHANNELS["x"] + feature_ch  # concat(x, x * mask, feature)
        self.encoder = Encoder(in_ch, stem_channels=ch(24),
                               block_channels=(ch(24), ch(32), ch(32)))
        x1_ch, x2_ch, x3_ch, x4_ch = self.encoder.out_channels
        self.erm = EfficientReshadingModule(in_channels=x4_ch, feature_channels=feature_ch,
                                            value_channels=ch(64), key_channels=ch(32),
                                            radius=2, downscale=self.SIZE_MULTIPLE)
        bottleneck_ch = self.erm.out_channels + self.history_encoder.out_channels
        dec_blocks = ((ch(64), ch(32)), (ch(28), ch(24)), (ch(24), ch(24)))
        self.decoder = Decoder(bottleneck_ch, skip_channels=(x3_ch, x2_ch, x1_ch),
                               block_channels=dec_blocks,
                               head=PixelShuffleHead(dec_blocks[-1][1], 3, self.SCALE))

    def forward(self, x: torch.Tensor, feature: torch.Tensor, mask: torch.Tensor,
                history: torch.Tensor) -> torch.Tensor:
        """x (B,6,H,W), feature (B,9,H,W), mask (B,1,H,W), history (B,12,H,W) ->
        (B,3,2H,2W)."""
        check_inputs("STSS.forward",
                     {"x": x, "feature": feature, "mask": mask, "history": history},
                     self.INPUT_CHANNELS, self.SIZE_MULTIPLE)
        motion = self.history_encoder(history)
        x1, x2, x3, x4 = self.encoder(torch.cat([x, x * mask, feature], dim=1))
        reshaded = self.erm(x4, feature, mask)
        bottleneck = torch.cat([reshaded, motion], dim=1)
        return self.decoder(bottleneck, (x3, x2, x1), x[:, :3])

    def example_inputs(self, size: tuple[int, int], batch: int = 1,
                       device: torch.device | str | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of render size ``size = (H, W)`` in :meth:`forward` order (mask
        and history masks in {0, 1})."""
        h, w = size
        g = torch.Generator().manual_seed(0)
        x = torch.rand(batch, 6, h, w, generator=g)
        feature = torch.rand(batch, 9, h, w, generator=g)
        mask = (torch.rand(batch, 1, h, w, generator=g) > 0.1).float()
        history = torch.rand(batch, 12, h, w, generator=g)
        history[:, 3::4] = (history[:, 3::4] > 0.1).float()
        return tuple(t.to(device) if device is not None else t
                     for t in (x, feature, mask, history))
