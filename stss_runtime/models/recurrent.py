"""STSS with a learned display-resolution accumulation (``stss_recurrent``).

The published network reads its history only at its 1/8-resolution bottleneck, so it
cannot gather the jittered samples that make a temporal upscaler sharp. This network keeps
STSS whole (it still makes the frame: its output is the *reconstruction*) and adds a
recurrent display-resolution state: the previous output, reprojected by the motion vectors,
with the sample weight it has accumulated. A small parameter head reads the state (pixel-
unshuffled to render resolution), the decoder's full-resolution features and the new colour,
and predicts per display pixel how to accumulate; a fixed, differentiable step
(:meth:`RecurrentStss.accumulate`) makes the output from them:

========================  ======================================================  =========
parameter                 what it controls                                        at 0
========================  ======================================================  =========
``alpha``                 offset of the new sample's blend weight (SF)            the rule
``box``                   widening (+) or narrowing (-) of the clamp box (SF)      min/max box
``mix``                   how much of the reconstruction enters the new sample    none
``ef_blend``              on generated frames, how much of the reconstruction     none
                          replaces the reprojected history
========================  ======================================================  =========

Where the history is valid the new sample is the render's own jittered sample at its true
sub-pixel position (:func:`stss_runtime.ops.accumulate.current_samples`), blended with the
rectified history by ``g / (w + g)`` (:func:`~stss_runtime.ops.accumulate.rule_alpha`: the
temporal upscaler's rule); where it is invalid (disocclusions, holes of generated frames,
the first frame after a reset) the reconstruction stands in. With the parameter head's last
layer at zero (its initialisation) the step is exactly the temporal upscaler
(:class:`stss_runtime.passes.temporal.TemporalPass`) on valid pixels and STSS elsewhere, so
training starts from the better of the two and can only move away from it where that helps.

Every output is bounded by its inputs: the reconstruction is clamped to [0, the largest
input colour per channel] (encoded), and the output is a convex blend of it, the clamped
history and the new samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import accumulate as A
from .blocks import Conv, check_inputs, scale_channels
from .stss import STSS

#: Names of the predicted parameters, in channel order.
PARAMETERS = ("alpha", "box", "mix", "ef_blend")
#: Channels of the recurrent state as the network reads it, at render resolution: the
#: reprojected output pixel-unshuffled (12), its accumulated weight / max_weight unshuffled
#: (4), and the fraction of valid history per render pixel (1).
STATE_CHANNELS = 12 + 4 + 1
#: Smallest blend weight the network may give a new sample (the rule's is 1 / max_weight).
MIN_ALPHA = 0.01
#: The clamp box may shrink to its middle (-0.45) or grow by this many box widths.
BOX_RANGE = (-0.45, 4.0)


class ParameterHead(nn.Module):
    """Two 3x3 convs over [decoder features, state, colour] at render resolution, a 1x1 conv
    to ``params * scale^2`` channels, pixel shuffle: (B, params, sH, sW). The last conv
    starts at zero, so every parameter starts at 0."""

    def __init__(self, feature_channels: int, state_channels: int = STATE_CHANNELS, mid: int = 32,
                 params: int = len(PARAMETERS), scale: int = 2):
        super().__init__()
        self.body = nn.Sequential(Conv(feature_channels + state_channels + 3, mid), Conv(mid, mid))
        self.out = nn.Conv2d(mid, params * scale * scale, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.scale = scale

    def forward(self, features: torch.Tensor, state: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.out(self.body(torch.cat([features, state, color], 1))), self.scale)


class RecurrentStss(nn.Module):
    """STSS + parameter head + the fixed accumulation step (module docstring).

    :meth:`forward` is the network (render-resolution inputs, on the render's jittered grid):
    ``x``, ``feature``, ``mask``, ``history`` as :class:`STSS`, and ``state`` (B, 17, H, W)
    -> (B, 3 + 4, 2H, 2W): the reconstruction (encoded colour, unbounded) and the parameters.
    :meth:`accumulate` turns them, on the display grid, into the output and the new weight.
    """

    SIZE_MULTIPLE = STSS.SIZE_MULTIPLE
    SCALE = STSS.SCALE
    INPUT_CHANNELS: dict[str, int] = {**STSS.INPUT_CHANNELS, "state": STATE_CHANNELS}
    OUTPUT_NAMES: tuple[str, ...] = ("output",)
    #: Channels of :meth:`forward`'s output: the reconstruction and the parameters.
    OUTPUT_CHANNELS = 3 + len(PARAMETERS)
    #: The accumulated weight saturates here (the temporal upscaler's cap).
    MAX_WEIGHT = 12.0
    #: The new sample's reconstruction kernel width, display pixels.
    SIGMA_DISPLAY_PX = 0.5

    def __init__(self, width: float = 1.0, head_width: int = 32):
        super().__init__()
        self.width = float(width)
        self.stss = STSS(width)
        self.params = ParameterHead(scale_channels(24, width), mid=scale_channels(head_width, width))

    @classmethod
    def from_stss(cls, stss: STSS) -> "RecurrentStss":
        """A recurrent network whose reconstruction is ``stss`` (its weights copied) and
        whose parameter head starts at zero."""
        net = cls(width=stss.width)
        net.stss.load_state_dict(stss.state_dict())
        return net

    def forward(self, x: torch.Tensor, feature: torch.Tensor, mask: torch.Tensor, history: torch.Tensor,
                state: torch.Tensor) -> torch.Tensor:
        check_inputs("RecurrentStss.forward",
                     {"x": x, "feature": feature, "mask": mask, "history": history, "state": state},
                     self.INPUT_CHANNELS, self.SIZE_MULTIPLE)
        recon, features = self.trunk(x, feature, mask, history)
        return self.head(recon, features, state, x[:, :3])

    def trunk(self, x: torch.Tensor, feature: torch.Tensor, mask: torch.Tensor,
              history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """STSS's forward, also returning the decoder's last features: (reconstruction (B, 3,
        2H, 2W) on the jittered grid, features (B, C, H, W)). It does not read the state, so
        a trainer with the trunk frozen may compute it once per frame."""
        s = self.stss
        motion = s.history_encoder(history)
        x1, x2, x3, x4 = s.encoder(torch.cat([x, x * mask, feature], dim=1))
        y = torch.cat([s.erm(x4, feature, mask), motion], dim=1)
        for block, skip in zip(s.decoder.blocks, (x3, x2, x1)):
            y = block(y, skip)
        return s.decoder.head(y, x[:, :3]), y

    def head(self, recon: torch.Tensor, features: torch.Tensor, state: torch.Tensor,
             color: torch.Tensor) -> torch.Tensor:
        """The network's output from the trunk's: reconstruction and parameters, (B, 7, 2H, 2W)."""
        return torch.cat([recon, self.params(features, state, color)], 1)

    def example_inputs(self, size: tuple[int, int], batch: int = 1,
                       device: torch.device | str | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of render size ``size = (H, W)`` in :meth:`forward` order."""
        g = torch.Generator().manual_seed(1)
        state = torch.rand(batch, STATE_CHANNELS, *size, generator=g)
        state = state.to(device) if device is not None else state
        return (*self.stss.example_inputs(size, batch, device), state)

    @staticmethod
    def state_inputs(reprojected: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor,
                     max_weight: float = MAX_WEIGHT) -> torch.Tensor:
        """The state as the network reads it (render resolution, :data:`STATE_CHANNELS`) from
        the reprojected output (B, 3, 2H, 2W), its weight and its validity (B, 1, 2H, 2W)."""
        return torch.cat([F.pixel_unshuffle(reprojected, 2), F.pixel_unshuffle(weight / max_weight, 2),
                          F.avg_pool2d(valid, 2)], 1)

    def accumulate(self, recon: torch.Tensor, params: torch.Tensor, cur: torch.Tensor, shaded: torch.Tensor,
                   jitter: torch.Tensor, reprojected: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor,
                   bound: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output (B, 3, H, W) encoded, new weight (B, 1, H, W)) on the display grid.

        ``recon``/``params``: the network's, moved onto the display grid; ``cur`` (B, 3, h, w)
        the new frame's encoded colour on its jittered grid (unused where ``shaded`` (B, 1, 1,
        1) is 0); ``jitter`` (B, 2, 1, 1); ``reprojected`` the previous output brought to this
        frame, ``weight`` its accumulated weight (already 0 where invalid), ``valid`` 1 where
        the history may be used; ``bound`` (B, 3, 1, 1) the largest input colour per channel."""
        display_hw = tuple(recon.shape[-2:])
        recon = torch.minimum(recon.clamp_min(0.0), bound)
        p_alpha, p_box, p_mix, p_ef = params.unbind(1)
        p_alpha, p_box, p_mix, p_ef = (t.unsqueeze(1) for t in (p_alpha, p_box, p_mix, p_ef))
        # rendered frames: the temporal upscaler's step, steered by the parameters
        g = A.sample_weight(jitter, tuple(cur.shape[-2:]), display_hw, self.SIGMA_DISPLAY_PX)
        sample, lo, hi = A.current_samples(cur, display_hw, jitter)
        sample = sample + p_mix.clamp(0.0, 1.0) * (recon - sample)
        hist = A.clamp_to_box(reprojected, lo, hi, p_box.clamp(*BOX_RANGE))
        alpha = (A.rule_alpha(g, weight, self.MAX_WEIGHT) + p_alpha).clamp(MIN_ALPHA, 1.0)
        out_sf = valid * (hist + alpha * (sample - hist)) + (1.0 - valid) * recon
        w_sf = valid * (weight + g).clamp_max(self.MAX_WEIGHT) + (1.0 - valid) * g
        # generated frames: no new samples; the reconstruction may replace the history
        out_ef = valid * (reprojected + p_ef.clamp(0.0, 1.0) * (recon - reprojected)) + (1.0 - valid) * recon
        out = shaded * out_sf + (1.0 - shaded) * out_ef
        new_weight = shaded * w_sf + (1.0 - shaded) * weight
        return out.clamp(0.0, 1.0), new_weight


def network_bound(x: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """The bound of a network's output: the largest colour per channel of its inputs ``x``
    (B, 6) and ``history`` (B, 12: three colour + mask groups), as the network sees them."""
    return input_bound(x, history[:, 0:3], history[:, 4:7], history[:, 8:11])


def input_bound(*colours: torch.Tensor) -> torch.Tensor:
    """(B, 3, 1, 1): the largest encoded colour per channel over ``colours`` (each (B, 3k, h,
    w), k colour triples): no output may be brighter than what its inputs show."""
    maxima = [c.view(c.shape[0], -1, 3, c.shape[-2] * c.shape[-1]).amax(dim=(1, 3)) for c in colours]
    return torch.stack(maxima, 0).amax(0).view(-1, 3, 1, 1)
