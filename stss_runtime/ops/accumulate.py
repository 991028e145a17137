"""Temporal accumulation at display resolution: the pieces a temporal upscaler is made of.

The render is jittered: each frame shades the scene at a different sub-pixel offset, so
blending every new frame's samples into a history reprojected by the motion vectors
gathers many samples per display pixel over time, which is what makes a temporal
upscaler sharp. This module holds that arithmetic once, for the classical upscaler
(:class:`stss_runtime.passes.temporal.TemporalPass`) and for the network that predicts
its parameters (:class:`stss_runtime.models.recurrent.RecurrentStss`):

- :func:`sample_weight`: how close each display pixel centre is to the nearest jittered
  render sample (a Gaussian of the distance), the confidence of this frame's sample there;
- :func:`current_samples`: that nearest sample, and the 3x3 neighbourhood box of the new
  frame's colours (nearest-upsampled) the history is clamped to;
- :func:`rule_alpha`: the blend weight of the new sample: its weight against the weight the
  history has accumulated (``g / (w + g)``), at least ``1 / max_weight``;
- :func:`clamp_to_box`: history rectification, optionally with the box widened or narrowed.

Everything is written with sizes taken from tensor shapes and no data-dependent control
flow, so it traces into an exported graph. Colours are in the networks' encoded space
(:func:`stss_runtime.ops.encoding.encode_color`), images NCHW.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _grid(n: int, out_h: int, out_w: int, src_h: int, src_w: int, shift: torch.Tensor | None,
          device, dtype) -> torch.Tensor:
    """grid_sample grid reading each output pixel centre's position in the source plus
    ``shift`` (N, 2, 1, 1) source pixels."""
    xs = (torch.arange(out_w, device=device, dtype=dtype) + 0.5) * (src_w / out_w)
    ys = (torch.arange(out_h, device=device, dtype=dtype) + 0.5) * (src_h / out_h)
    gx = xs.view(1, 1, out_w).expand(n, out_h, out_w)
    gy = ys.view(1, out_h, 1).expand(n, out_h, out_w)
    if shift is not None:
        gx = gx + shift[:, 0].view(n, 1, 1)
        gy = gy + shift[:, 1].view(n, 1, 1)
    return torch.stack([gx * (2.0 / src_w) - 1.0, gy * (2.0 / src_h) - 1.0], dim=-1)


def upsample(src: torch.Tensor, out_hw: tuple[int, int], shift: torch.Tensor | None = None,
             mode: str = "nearest") -> torch.Tensor:
    """``src`` (N, C, h, w) resampled to ``out_hw`` (H, W), each output pixel reading its
    centre's position plus ``shift`` (N, 2, 1, 1, source pixels; the jitter undoes a
    jittered render), border clamped."""
    n, _, h, w = src.shape
    grid = _grid(n, out_hw[0], out_hw[1], h, w, shift, src.device, src.dtype)
    return F.grid_sample(src, grid, mode=mode, padding_mode="border", align_corners=False)


def sample_weight(jitter: torch.Tensor, render_hw: tuple[int, int], display_hw: tuple[int, int],
                  sigma_display_px: float = 0.5) -> torch.Tensor:
    """(N, 1, H, W): Gaussian weight of the distance from each display pixel centre to the
    nearest jittered render sample. ``jitter`` (N, 2, 1, 1) render pixels; the sample of
    render pixel k shows the unjittered position k + 0.5 - jitter, so display centre p is
    (p - 0.5 + jitter - k) render pixels from it; sigma in display pixels."""
    (h, w), (dh, dw) = render_hw, display_hw
    n = jitter.shape[0]
    xs = (torch.arange(dw, device=jitter.device, dtype=jitter.dtype) + 0.5) * (w / dw) - 0.5
    ys = (torch.arange(dh, device=jitter.device, dtype=jitter.dtype) + 0.5) * (h / dh) - 0.5
    xs = xs.view(1, 1, dw) + jitter[:, 0].view(n, 1, 1)
    ys = ys.view(1, dh, 1) + jitter[:, 1].view(n, 1, 1)
    dx = xs - torch.round(xs)
    dy = ys - torch.round(ys)
    sigma = sigma_display_px * w / dw  # in render pixels
    return torch.exp(-(dy * dy + dx * dx) / (2 * sigma ** 2)).view(n, 1, dh, dw)


def current_samples(cur: torch.Tensor, display_hw: tuple[int, int], jitter: torch.Tensor,
                    box: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(nearest sample, box low, box high) at display resolution for the new frame's encoded
    colour ``cur`` (N, 3, h, w) on its jittered grid: each display pixel's nearest render
    sample, and the per-channel min and max of that sample's ``box`` x ``box`` neighbourhood."""
    r = box // 2
    lo = -F.max_pool2d(-cur, box, 1, r)
    hi = F.max_pool2d(cur, box, 1, r)
    up = upsample(torch.cat([cur, lo, hi], 1), display_hw, jitter, "nearest")
    return up[:, 0:3], up[:, 3:6], up[:, 6:9]


def rule_alpha(g: torch.Tensor, prev_weight: torch.Tensor, max_weight: float) -> torch.Tensor:
    """The new sample's blend weight: its weight ``g`` against the history's accumulated
    ``prev_weight``, at least ``1 / max_weight`` (so a history never outweighs
    ``max_weight`` samples) and at most 1."""
    return (g / (prev_weight + g)).clamp(1.0 / max_weight, 1.0)


def clamp_to_box(history: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                 expand: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The history clamped to [lo - e (hi - lo), hi + e (hi - lo)], ``e = expand`` (0: the
    box itself; negative: tighter, down to the box's middle at -0.5)."""
    span = hi - lo
    if isinstance(expand, torch.Tensor) or expand != 0.0:
        lo, hi = lo - expand * span, hi + expand * span
    return torch.minimum(torch.maximum(history, lo), hi)
