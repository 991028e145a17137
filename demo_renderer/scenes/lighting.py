"""The lighting rig shared by the built-in scenes and by scene files without their own."""

from __future__ import annotations

import numpy as np

from ..scene import PointLight, Sky, Sun


def default_lighting(lo: np.ndarray, hi: np.ndarray) -> tuple[Sun, list[PointLight], Sky]:
    """A warm sun, a blue-ish sky and three coloured point lights around the box [lo, hi]."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    centre = (lo + hi) / 2
    extent = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    y = hi[1] + 0.25 * extent
    lights = [
        PointLight(tuple(centre + [0.8 * extent, 0, 0.6 * extent] * np.array([1, 0, 1]) + [0, y - centre[1], 0]),
                   (1.0, 0.75, 0.5), 6.0 * extent ** 2, radius=3.0 * extent),
        PointLight(tuple(centre + [-0.8 * extent, 0, 0.2 * extent] * np.array([1, 0, 1]) + [0, y - centre[1], 0]),
                   (0.5, 0.7, 1.0), 5.0 * extent ** 2, radius=3.0 * extent),
        PointLight(tuple(centre + [0.0, 0, -0.8 * extent] * np.array([1, 0, 1]) + [0, y - centre[1], 0]),
                   (1.0, 1.0, 1.0), 4.0 * extent ** 2, radius=3.0 * extent),
    ]
    return Sun(direction=(0.45, 0.8, 0.35), intensity=3.0), lights, Sky()
