"""The two-stage baseline of the STSS paper: supersample, then extrapolate.

:class:`SupersamplingNet` turns a rendered frame into a 2x frame; :class:`ExtraNet`
(ExtraNet-style, 2021) extrapolates a never-shaded frame at display resolution from the
warped previous output. Both use STSS's building blocks (gated convs, the history
encoder, the gated U-Net) without the ERM, so comparing their cost with STSS's measures
what the joint design saves.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Decoder, Encoder, HistoryEncoder, PixelShuffleHead, ResidualHead, check_inputs, scale_channels

#: Named width multipliers of :class:`SupersamplingNet`.
SUPERSAMPLING_PRESETS: dict[str, float] = {
    "supersampling": 1.0, "supersampling_small": 0.5, "supersampling_tiny": 0.25}
#: Named width multipliers of :class:`ExtraNet`.
EXTRANET_PRESETS: dict[str, float] = {
    "extranet": 1.0, "extranet_small": 0.5, "extranet_tiny": 0.25}


def _random_inputs(size: tuple[int, int], batch: int, channels: dict[str, int],
                   device: torch.device | str | None) -> tuple[torch.Tensor, ...]:
    """Random (batch, C, H, W) tensors for ``channels``; "mask" and the 4th channel of
    each "history" frame in {0, 1}."""
    h, w = size
    g = torch.Generator().manual_seed(0)
    out = []
    for name, c in channels.items():
        t = torch.rand(batch, c, h, w, generator=g)
        if name == "mask":
            t = (t > 0.1).float()
        elif name == "history":
            t[:, 3::4] = (t[:, 3::4] > 0.1).float()
        out.append(t.to(device) if device is not None else t)
    return tuple(out)


class _GatedUNet(nn.Module):
    """History encoder + gated U-Net encoder/decoder without the ERM (shared skeleton).

    The bottleneck is ``concat(x4, motion feature)`` at 1/8 resolution.
    """

    SIZE_MULTIPLE = 8

    def __init__(self, in_channels: int, head_factory: type[nn.Module], width: float,
                 **head_kwargs: int) -> None:
        super().__init__()
        self.width = float(width)

        def ch(c: int) -> int:
            return scale_channels(c, width)

        self.history_encoder = HistoryEncoder(frame_channels=4, num_frames=3,
                                              stage_channels=(ch(24), ch(32), ch(32)),
                                              out_channels=ch(32))
        self.encoder = Encoder(in_channels, stem_channels=ch(24),
                               block_channels=(ch(24), ch(32), ch(32)))
        x1_ch, x2_ch, x3_ch, x4_ch = self.encoder.out_channels
        dec_blocks = ((ch(64), ch(32)), (ch(28), ch(24)), (ch(24), ch(24)))
        self.decoder = Decoder(x4_ch + self.history_encoder.out_channels,
                               skip_channels=(x3_ch, x2_ch, x1_ch), block_channels=dec_blocks,
                               head=head_factory(dec_blocks[-1][1], 3, **head_kwargs))

    def _run(self, net_input: torch.Tensor, history: torch.Tensor,
             color: torch.Tensor) -> torch.Tensor:
        motion = self.history_encoder(history)
        x1, x2, x3, x4 = self.encoder(net_input)
        return self.decoder(torch.cat([x4, motion], dim=1), (x3, x2, x1), color)


class SupersamplingNet(_GatedUNet):
    """Supersampling-only network (first stage of the two-stage pipeline).

    STSS's design without the ERM and without the mask: the encoder reads
    ``concat(color, feature)`` (12 ch); output = pixel-shuffle head + bilinear x2 upsample
    of ``color``. ``width`` scales internal channels as in :class:`~.stss.STSS`.

    color (B, 3, H, W), feature (B, 9, H, W), history (B, 12, H, W) (three warped older
    frames, colour + hole mask, oldest first), all at render resolution with H and W
    multiples of 8 -> (B, 3, 2H, 2W), not clamped.
    """

    SCALE = 2
    INPUT_CHANNELS: dict[str, int] = {"color": 3, "feature": 9, "history": 12}
    OUTPUT_NAMES: tuple[str, ...] = ("output",)

    def __init__(self, width: float = 1.0) -> None:
        super().__init__(3 + 9, PixelShuffleHead, width, scale=self.SCALE)

    def forward(self, color: torch.Tensor, feature: torch.Tensor,
                history: torch.Tensor) -> torch.Tensor:
        """color (B,3,H,W), feature (B,9,H,W), history (B,12,H,W) -> (B,3,2H,2W)."""
        check_inputs("SupersamplingNet.forward",
                     {"color": color, "feature": feature, "history": history},
                     self.INPUT_CHANNELS, self.SIZE_MULTIPLE)
        return self._run(torch.cat([color, feature], dim=1), history, color)

    def example_inputs(self, size: tuple[int, int], batch: int = 1,
                       device: torch.device | str | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of render size ``size = (H, W)`` in :meth:`forward` order."""
        return _random_inputs(size, batch, self.INPUT_CHANNELS, device)


class ExtraNet(_GatedUNet):
    """Extrapolation-only network at display resolution (second stage), ExtraNet-style.

    Gated U-Net with a history encoder on ``concat(x * mask, mask, feature)`` (13 ch); the
    head is a 3x3 conv 24 -> 3 plus ``x`` as a residual (no pixel shuffle). 278,704
    parameters at width 1.0 (ExtraNet: ~262k).

    x (B, 3, H, W): the previous output warped to this frame, with holes;
    feature (B, 9, H, W): G-buffers upsampled to display resolution;
    mask (B, 1, H, W): 1 where ``x`` is valid, 0 in holes;
    history (B, 12, H, W): three warped older frames at display resolution, oldest first;
    H and W multiples of 8 -> (B, 3, H, W), not clamped.
    """

    SCALE = 1
    INPUT_CHANNELS: dict[str, int] = {"x": 3, "feature": 9, "mask": 1, "history": 12}
    OUTPUT_NAMES: tuple[str, ...] = ("output",)

    def __init__(self, width: float = 1.0) -> None:
        super().__init__(3 + 1 + 9, ResidualHead, width)

    def forward(self, x: torch.Tensor, feature: torch.Tensor, mask: torch.Tensor,
                history: torch.Tensor) -> torch.Tensor:
        """x (B,3,H,W), feature (B,9,H,W), mask (B,1,H,W), history (B,12,H,W) ->
        (B,3,H,W)."""
        check_inputs("ExtraNet.forward",
                     {"x": x, "feature": feature, "mask": mask, "history": history},
                     self.INPUT_CHANNELS, self.SIZE_MULTIPLE)
        return self._run(torch.cat([x * mask, mask, feature], dim=1), history, x)

    def example_inputs(self, size: tuple[int, int], batch: int = 1,
                       device: torch.device | str | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of display size ``size = (H, W)`` in :meth:`forward` order."""
        return _random_inputs(size, batch, self.INPUT_CHANNELS, device)
