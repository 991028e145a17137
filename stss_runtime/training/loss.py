"""The STSS loss (STSS.md): L1 over all pixels + L1 over hole pixels normalised by their
count + 0.01 x a perceptual term.

The paper's perceptual term is LPIPS-VGG, whose weights cannot be downloaded here. Its
substitute needs no weights: an L1 loss on image gradients (finite differences in x and
y), which, like LPIPS, penalises blur and lost edges that plain L1 tolerates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PERCEPTUAL_WEIGHT = 0.01


def gradient_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return (dx(out) - dx(target)).abs().mean() + (dy(out) - dy(target)).abs().mean()


def stss_loss(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """``out``/``target`` (B, 3, H, W) in the network's encoded space; ``mask`` (B, 1, h, w)
    render-resolution valid mask (holes = 0). Returns the total and its parts."""
    holes = 1.0 - F.interpolate(mask, size=out.shape[-2:], mode="nearest")
    err = (out - target).abs()
    l1 = err.mean()
    hole = (err * holes).sum() / (holes.sum() * out.shape[1]).clamp_min(1.0)
    grad = gradient_l1(out, target)
    total = l1 + hole + PERCEPTUAL_WEIGHT * grad
    return {"loss": total, "l1": l1, "hole": hole, "grad": grad}
