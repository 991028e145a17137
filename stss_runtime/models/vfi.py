"""The frame-interpolation refiner: a small residual network over the cheap (FSR 3 style)
interpolation, with a whole-frame, low-resolution uncertainty head that predicts where the
cheap path is wrong (``shared/PASSES.md``, uncertainty-guided spatial pruning).

Two parts, so that the expensive one can run on a few tiles only:

* :meth:`VfiRefiner.context` -- cheap, whole frame, at 1/8 display resolution: the
  **uncertainty** map (predicted log10 of the cheap path's mean squared error, encoded
  colour, per 8x8 display-pixel cell) and a few **context** feature channels (a wide
  receptive field for free, since this part always runs densely);
* :meth:`VfiRefiner.refine` -- the local refiner at half display resolution (2x2 pixel
  unshuffle in, pixel shuffle out): two 3x3 and three 1x1 convolutions, so each output
  pixel depends on input pixels at most :attr:`VfiRefiner.halo` (4) display pixels away in
  each direction (block-aligned). A tile plus a halo of that size therefore refines to
  exactly what the dense refiner gives on that tile: pruning changes where work is done,
  not what it computes.

Inputs (:data:`INPUT_CHANNELS` = 14, display resolution, NCHW): the cheap interpolation,
frame a warped to the middle, frame b warped to the middle (encoded colour, 3 each), the two
visibility weights, the middle-time flow (display pixels / 32) and the depth feature
(:func:`stss_runtime.history.depth_feature`). Output: the cheap interpolation plus a
residual, clamped to [0, 1] (encoded colour).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.interpolate import VfiInputError, need_tensor
from ..ops.tiles import gather_runs, gather_tiles, pad_for_tiles, scatter_runs, scatter_tiles, tile_grid, tile_runs
from .blocks import scale_channels

#: Input channels of the refiner (see the module docstring for their order).
INPUT_CHANNELS = 14
#: Cell size (display pixels) of the uncertainty map.
CELL = 8

#: Preset name -> width multiplier.
VFI_PRESETS: dict[str, float] = {"vfi_refiner": 1.0, "vfi_refiner_tiny": 0.25}


class VfiRefiner(nn.Module):
    """Uncertainty head + context trunk (dense, 1/8 res) and a local residual refiner
    (half res, receptive field radius :attr:`halo` display pixels)."""

    #: Display pixels of input context each output pixel needs on every side.
    halo = 4

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        c = scale_channels(64, width)  # local refiner
        t = scale_channels(32, width)  # context trunk
        self.context_channels = cc = scale_channels(8, width)
        # context trunk: input average-pooled to 1/4 res, then 1/8
        self.t1 = nn.Conv2d(INPUT_CHANNELS, t, 3, padding=1)
        self.t2 = nn.Conv2d(t, t, 3, stride=2, padding=1)
        self.t3 = nn.Conv2d(t, t, 3, padding=1)
        self.t4 = nn.Conv2d(t, t, 3, padding=1)
        self.uncertainty_head = nn.Conv2d(t, 1, 1)
        self.context_head = nn.Conv2d(t, cc, 1)
        # local refiner at half resolution (2x2 blocks of display pixels)
        self.r1 = nn.Conv2d(4 * INPUT_CHANNELS + cc, c, 3, padding=1)
        self.r2 = nn.Conv2d(c, c, 1)
        self.r3 = nn.Conv2d(c, c, 3, padding=1)
        self.r4 = nn.Conv2d(c, c, 1)
        self.r5 = nn.Conv2d(c, 12, 1)
        nn.init.zeros_(self.r5.weight)  # start as the identity (residual 0)
        nn.init.zeros_(self.r5.bias)
        nn.init.constant_(self.uncertainty_head.bias, -3.0)  # a typical log10 MSE

    @staticmethod
    def _check(name: str, x: torch.Tensor, channels: int, multiple: int) -> None:
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(f"VfiRefiner: {name} must have shape (B, {channels}, H, W), "
                             f"got {tuple(x.shape)}")
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(f"VfiRefiner: {name} H and W must be multiples of {multiple}, got "
                             f"{tuple(x.shape[2:])}; pad first")

    def context(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, 14, H, W), H and W multiples of 8 -> (uncertainty (B, 1, H/8, W/8):
        predicted log10 MSE of the cheap path per 8x8 cell, context (B, cc, H/8, W/8))."""
        self._check("x", x, INPUT_CHANNELS, CELL)
        y = F.avg_pool2d(x, 4)
        y = F.relu(self.t1(y))
        y = F.relu(self.t2(y))
        y = F.relu(self.t3(y))
        y = F.relu(self.t4(y)) + y
        return self.uncertainty_head(y), self.context_head(y)

    @staticmethod
    def context_to_half(ctx: torch.Tensor) -> torch.Tensor:
        """Context features (1/8 res) -> half display resolution (bilinear, 4x)."""
        return F.interpolate(ctx, scale_factor=4, mode="bilinear", align_corners=False)

    def refine(self, x: torch.Tensor, ctx_half: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 14, P, P') display res (P, P' even), ``ctx_half`` (B, cc, P/2, P'/2)
        -> refined encoded colour (B, 3, P, P'): the cheap channels plus a residual.
        Output pixels closer than :attr:`halo` to the border see zero padding."""
        self._check("x", x, INPUT_CHANNELS, 2)
        if ctx_half.shape != (x.shape[0], self.context_channels, x.shape[2] // 2, x.shape[3] // 2):
            raise ValueError(f"VfiRefiner: ctx_half must have shape "
                             f"{(x.shape[0], self.context_channels, x.shape[2] // 2, x.shape[3] // 2)}, "
                             f"got {tuple(ctx_half.shape)}")
        y = torch.cat([F.pixel_unshuffle(x, 2), ctx_half], dim=1)
        y = F.relu(self.r1(y))
        y = F.relu(self.r2(y))
        y = F.relu(self.r3(y))
        y = F.relu(self.r4(y))
        res = F.pixel_shuffle(self.r5(y), 2)
        return (x[:, :3] + res).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense: ``x`` (B, 14, H, W), multiples of 8 -> (refined (B, 3, H, W), uncertainty
        (B, 1, H/8, W/8)). Border pixels see zero padding (the pass pads by :attr:`halo`
        first, see :mod:`stss_runtime.passes.vfi`)."""
        unc, ctx = self.context(x)
        return self.refine(x, self.context_to_half(ctx)), unc

    def example_inputs(self, size: tuple[int, int], device="cpu") -> tuple[torch.Tensor]:
        """A batch-1 input of display size ``size`` (height, width) (for count_macs)."""
        h, w = size
        return (torch.zeros(1, INPUT_CHANNELS, h, w, device=device),)


#: Default tile side (display pixels) of the pruned refiner.
TILE = 16


def tile_scores(uncertainty: torch.Tensor, tile: int) -> torch.Tensor:
    """Per-cell uncertainty (1, 1, H/8, W/8) -> per-tile score (rows, cols): the largest
    predicted error of the tile's cells."""
    k = tile // CELL
    return F.max_pool2d(uncertainty, k, ceil_mode=True)[0, 0] if k > 1 else uncertainty[0, 0]


class PrunedRefiner:
    """Runs a :class:`VfiRefiner` densely or on the tiles whose predicted error exceeds a
    threshold. Both pad the frame by the refiner's halo the same way, so a refined tile has
    the same values either way."""

    def __init__(self, model: VfiRefiner, tile: int = TILE, threshold: float = -3.0,
                 max_run: int = 8):
        """``max_run``: selected tiles that are horizontal neighbours are refined as one
        patch of up to this many tiles (they share their halo; 1: every tile alone)."""
        if tile % CELL or tile < CELL:
            raise VfiInputError(f"tile must be a positive multiple of {CELL} display pixels, got {tile}")
        if model.halo % 2:
            raise VfiInputError(f"the refiner's halo must be even, got {model.halo}")
        if max_run < 1:
            raise VfiInputError(f"max_run must be >= 1, got {max_run}")
        self.model, self.tile, self.threshold = model, int(tile), float(threshold)
        self.max_run = int(max_run)

    def _prepare(self, x: torch.Tensor):
        need_tensor("x", x, (1, INPUT_CHANNELS, None, None))
        h, w = x.shape[-2:]
        rows, cols = tile_grid((h, w), self.tile)
        whole = pad_for_tiles(x, self.tile, 0)  # (1, 14, rows*T, cols*T)
        unc, ctx = self.model.context(whole)
        ctx_half = pad_for_tiles(self.model.context_to_half(ctx), self.tile // 2, self.model.halo // 2)
        padded = pad_for_tiles(whole, self.tile, self.model.halo)
        return (h, w), whole, unc, ctx_half, padded

    def dense(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(refined (1, 3, H, W), per-tile scores (rows, cols))."""
        (h, w), whole, unc, ctx_half, padded = self._prepare(x)
        hl = self.model.halo
        out = self.model.refine(padded, ctx_half)[:, :, hl:hl + h, hl:hl + w]
        return out, tile_scores(unc, self.tile)

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """(K, 2) row, column of the tiles to refine."""
        return torch.nonzero(scores > self.threshold)

    def pruned(self, x: torch.Tensor, tiles: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(output (1, 3, H, W), scores (rows, cols), refined tiles (K, 2)). ``tiles``
        overrides the selection by the predicted uncertainty."""
        (h, w), whole, unc, ctx_half, padded = self._prepare(x)
        scores = tile_scores(unc, self.tile)
        if tiles is None:
            tiles = self.select(scores)
        out = whole[:, :3].clone()
        hl = self.model.halo
        if len(tiles) and self.max_run == 1:
            xp = gather_tiles(padded, tiles, self.tile, hl)
            cp = gather_tiles(ctx_half, tiles, self.tile, hl, scale=2)
            scatter_tiles(out, self.model.refine(xp, cp), tiles, self.tile, hl)
        elif len(tiles):
            for length, starts in tile_runs(tiles, self.max_run).items():
                xp = gather_runs(padded, starts, length, self.tile, hl)
                cp = gather_runs(ctx_half, starts, length, self.tile, hl, scale=2)
                scatter_runs(out, self.model.refine(xp, cp), starts, length, self.tile, hl)
        return out[:, :, :h, :w], scores, tiles
