"""Tiles: work skipped or done per square tile of an image, for sparse refinement (gather the
tiles that need work with a halo into a batch, refine, scatter back) and for marking where
a pixel mask needs attention. Shapes are NCHW; a tile grid is (rows, columns)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tile_mask(mask: torch.Tensor, tile: int = 16) -> torch.Tensor:
    """(1, 1, ceil(h/tile), ceil(w/tile)) bool: tiles holding any True pixel of ``mask``
    (1, 1, h, w)."""
    return F.max_pool2d(mask.float(), tile, tile, ceil_mode=True) > 0


def tile_region(tiles: torch.Tensor, tile: int, size: tuple[int, int], margin: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) in pixels of the True tiles, grown by ``margin`` and
    clipped to ``size`` (width, height); None when no tile is set."""
    t = tiles[0, 0]
    if not bool(t.any()):
        return None
    ys = torch.nonzero(t.any(1)).flatten()
    xs = torch.nonzero(t.any(0)).flatten()
    w, h = size
    x0 = max(0, int(xs[0]) * tile - margin)
    y0 = max(0, int(ys[0]) * tile - margin)
    x1 = min(w, (int(xs[-1]) + 1) * tile + margin)
    y1 = min(h, (int(ys[-1]) + 1) * tile + margin)
    return x0, y0, x1, y1


def tile_grid(size_hw: tuple[int, int], tile: int) -> tuple[int, int]:
    """Tiles (rows, columns) covering an image of (H, W)."""
    h, w = size_hw
    return -(-h // tile), -(-w // tile)


def pad_for_tiles(x: torch.Tensor, tile: int, halo: int) -> torch.Tensor:
    """Replicate-pad (N, C, H, W) to whole tiles (bottom/right) plus ``halo`` on every side."""
    h, w = x.shape[-2:]
    rows, cols = tile_grid((h, w), tile)
    return F.pad(x, (halo, halo + cols * tile - w, halo, halo + rows * tile - h), mode="replicate")


def gather_tiles(padded: torch.Tensor, tiles: torch.Tensor, tile: int, halo: int,
                 scale: int = 1) -> torch.Tensor:
    """Patches of (tile + 2 halo) / scale pixels around the tiles ``tiles`` ((K, 2) row,
    column) of a tensor padded by :func:`pad_for_tiles` (at 1/``scale`` resolution, with
    tile and halo divisible by ``scale``) -> (K, C, P, P). Only those patches are copied."""
    t, hl = tile // scale, halo // scale
    p = t + 2 * hl
    view = padded[0].unfold(1, p, t).unfold(2, p, t)  # (C, rows, cols, p, p), no copy
    return view[:, tiles[:, 0], tiles[:, 1]].permute(1, 0, 2, 3)


def scatter_tiles(image: torch.Tensor, patches: torch.Tensor, tiles: torch.Tensor, tile: int,
                  halo: int) -> torch.Tensor:
    """Write the interiors (halo cut off) of ``patches`` (K, C, P, P) into ``image``
    (1, C, rows * tile, cols * tile) at ``tiles`` ((K, 2) row, column), in place."""
    _, c, h, w = image.shape
    rows, cols = h // tile, w // tile
    view = image[0].view(c, rows, tile, cols, tile).permute(1, 3, 0, 2, 4)  # (rows, cols, C, t, t)
    view[tiles[:, 0], tiles[:, 1]] = patches[:, :, halo:halo + tile, halo:halo + tile]
    return image


def tile_runs(tiles: torch.Tensor, max_len: int) -> dict[int, torch.Tensor]:
    """Group tiles ((K, 2) row, column, row-major as :func:`torch.nonzero` gives them) into
    horizontal runs of neighbours, at most ``max_len`` long: {length: (R, 2) row, first
    column}. A run is refined as one patch, so neighbours share their halo."""
    runs: dict[int, list[tuple[int, int]]] = {}
    start = prev = None
    for r, c in tiles.tolist() + [(-1, -2)]:
        if start is not None and r == start[0] and c == prev + 1 and c - start[1] < max_len:
            prev = c
            continue
        if start is not None:
            runs.setdefault(prev - start[1] + 1, []).append(start)
        start, prev = (r, c), c
    return {n: torch.tensor(v, dtype=torch.long).view(-1, 2) for n, v in runs.items()}


def gather_runs(padded: torch.Tensor, starts: torch.Tensor, length: int, tile: int, halo: int,
                scale: int = 1) -> torch.Tensor:
    """Patches of ``length`` tiles side by side (plus the halo) starting at ``starts`` ((R, 2)
    row, first column) -> (R, C, (tile + 2 halo) / scale, (length tile + 2 halo) / scale)."""
    t, hl = tile // scale, halo // scale
    view = padded[0].unfold(1, t + 2 * hl, t).unfold(2, length * t + 2 * hl, t)
    return view[:, starts[:, 0], starts[:, 1]].permute(1, 0, 2, 3)


def scatter_runs(image: torch.Tensor, patches: torch.Tensor, starts: torch.Tensor, length: int,
                 tile: int, halo: int) -> torch.Tensor:
    """Write the interiors of run patches (:func:`gather_runs`) into ``image`` (1, C,
    rows * tile, cols * tile), in place."""
    _, c, h, w = image.shape
    view = image[0].view(c, h // tile, tile, w // tile, tile).permute(1, 3, 0, 2, 4)
    inner = patches[:, :, halo:halo + tile, halo:halo + length * tile]
    k = inner.shape[0]
    inner = inner.reshape(k, c, tile, length, tile).permute(0, 3, 1, 2, 4)
    cols = starts[:, 1:2] + torch.arange(length).view(1, -1)
    view[starts[:, 0:1].expand(k, length), cols] = inner
    return image
