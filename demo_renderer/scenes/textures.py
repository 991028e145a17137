"""Textures for the built-in scenes: photographs shipped inside scikit-image, and procedural
patterns. Every function returns an (h, w, 4) uint8 sRGB-encoded RGBA array, cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PHOTOS = ("astronaut", "brick", "chelsea", "coffee", "grass", "gravel", "rocket",
          "hubble_deep_field", "text", "page", "camera")


def _rgba(img: np.ndarray, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    rgb = np.clip(img[..., :3].astype(np.float32) * np.asarray(tint, np.float32), 0, 255)
    alpha = np.full(img.shape[:2] + (1,), 255, np.uint8)
    return np.ascontiguousarray(np.concatenate([rgb.astype(np.uint8), alpha], axis=2))


@lru_cache(maxsize=None)
def photo(name: str, tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """A photograph from ``skimage.data`` (shipped in the wheel, nothing downloaded)."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    import skimage.data

    return _rgba(getattr(skimage.data, name)(), tint)


@lru_cache(maxsize=None)
def checker(size: int = 512, squares: int = 64, a=(235, 235, 230), b=(25, 25, 30)) -> np.ndarray:
    """A fine checkerboard: the classic aliasing stress pattern."""
    y, x = np.mgrid[0:size, 0:size] * squares // size
    mask = ((x + y) % 2).astype(bool)[..., None]
    rgb = np.where(mask, np.array(a, np.uint8), np.array(b, np.uint8))
    return _rgba(rgb.astype(np.uint8))


@lru_cache(maxsize=None)
def foliage(size: int = 256, leaves: int = 90, seed: int = 7) -> np.ndarray:
    """Leaves on a transparent background, for alpha-tested foliage cards (alpha 0 or 255)."""
    rng = np.random.default_rng(seed)
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    rgba = np.zeros((size, size, 4), np.uint8)
    # a few twigs
    for _ in range(6):
        x0, y0 = rng.uniform(0.3, 0.7), 1.0
        ang = rng.uniform(-0.6, 0.6)
        dx, dy = np.sin(ang), -np.cos(ang)
        px, py = x - x0, y - y0
        along = px * dx + py * dy
        across = np.abs(px * dy - py * dx)
        m = (across < 0.006) & (along > 0) & (along < rng.uniform(0.5, 0.9))
        rgba[m] = (70, 50, 30, 255)
    for _ in range(leaves):
        cx, cy = rng.uniform(0.08, 0.92, 2)
        ang = rng.uniform(0, np.pi)
        a, b = rng.uniform(0.03, 0.06), rng.uniform(0.012, 0.022)
        px, py = x - cx, y - cy
        u = px * np.cos(ang) + py * np.sin(ang)
        v = -px * np.sin(ang) + py * np.cos(ang)
        m = (u / a) ** 2 + (v / b) ** 2 < 1.0
        shade = rng.uniform(0.6, 1.1)
        colour = np.clip(np.array([60, 130, 40]) * shade + rng.normal(0, 10, 3), 0, 255)
        rgba[m] = (*colour.astype(np.uint8), 255)
    return rgba


@lru_cache(maxsize=None)
def facade(size: int = 512, seed: int = 3, wall=(150, 120, 100)) -> np.ndarray:
    """A building facade: noisy wall with a grid of framed windows (fine repeated detail)."""
    rng = np.random.default_rng(seed)
    img = np.clip(np.array(wall, np.float32) + rng.normal(0, 12, (size, size, 1)), 0, 255)
    cells = 8
    c = size // cells
    y, x = np.mgrid[0:size, 0:size]
    fx, fy = x % c, y % c
    frame = (fx > c * 0.2) & (fx < c * 0.8) & (fy > c * 0.15) & (fy < c * 0.85)
    glass = (fx > c * 0.25) & (fx < c * 0.75) & (fy > c * 0.2) & (fy < c * 0.8)
    mullion = glass & (np.abs(fx - c / 2) < max(1, c // 40))
    img[frame] = (230, 230, 225)
    lit = rng.random((cells, cells)) < 0.3
    glass_col = np.where(lit[y // c, x // c][..., None], [[[250, 220, 150]]], [[[40, 60, 90]]])
    img[glass] = glass_col[glass]
    img[mullion] = (230, 230, 225)
    return _rgba(img.astype(np.uint8))


@lru_cache(maxsize=None)
def planks(size: int = 512, boards: int = 16, seed: int = 5) -> np.ndarray:
    """Wooden floor boards with grain: thin dark seams every board."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    board = np.floor(y * boards).astype(int)
    offset = rng.random(boards)[board]
    grain = 0.5 + 0.5 * np.sin((x + offset) * 90.0 + 6.0 * np.sin(y * boards * 9.0 + offset * 20))
    tone = rng.uniform(0.8, 1.1, boards)[board]
    base = np.array([150, 100, 60], np.float32)
    img = base * (0.75 + 0.25 * grain[..., None]) * tone[..., None]
    seam = ((y * boards) % 1.0) < 0.04
    img[seam] = (40, 25, 15)
    return _rgba(np.clip(img, 0, 255).astype(np.uint8))


@lru_cache(maxsize=None)
def cobbles(size: int = 512, stones: int = 24, seed: int = 9) -> np.ndarray:
    """Cobblestones: jittered cells of varied stone colour with dark mortar seams and a
    speckle inside each stone (tileable: the cells wrap around the edges)."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    g = (np.stack(np.mgrid[0:stones, 0:stones], -1).reshape(-1, 2) + 0.15 + 0.7 * rng.random((stones * stones, 2)))
    pts = g / stones
    # wrap: copies shifted by one texture in each direction, so the pattern tiles
    shifts = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], np.float64)
    allpts = (pts[None] + shifts[:, None]).reshape(-1, 2)
    y, x = np.mgrid[0:size, 0:size] / size
    d, i = cKDTree(allpts).query(np.stack([y.ravel(), x.ravel()], 1), k=2)
    cell = (i[:, 0] % len(pts)).reshape(size, size)
    edge = ((d[:, 1] - d[:, 0]) * stones).reshape(size, size)  # 0 on a seam
    tone = rng.uniform(0.7, 1.15, len(pts))[cell]
    hue = np.array([[150, 140, 125], [125, 120, 118], [160, 130, 105]], np.float32)[rng.integers(0, 3, len(pts))][cell]
    speck = rng.normal(1.0, 0.08, (size, size))
    img = hue * (tone * speck)[..., None] * np.clip(edge / 0.12, 0.25, 1.0)[..., None]
    return _rgba(np.clip(img, 0, 255).astype(np.uint8))
