"""The project's shared conventions (``shared/CONVENTIONS.md``) as code.

Pure helpers used by the renderer, the runtime, the plugin and the tests: the jitter
sequence, the jittered projection and the texture LOD bias. Every function names its units.
The display transform and the depth conversions are colour and depth encodings:
:mod:`stss_runtime.ops.encoding`.
"""

from __future__ import annotations

import math

import numpy as np

#: Version string of CONVENTIONS.md that frame dumps declare in ``meta.json``.
CONVENTIONS_VERSION = "1.0"

def halton(index: int, base: int) -> float:
    """Radical inverse of ``index`` (>= 1) in ``base``: the Halton sequence value in [0, 1)."""
    if index < 0:
        raise ValueError(f"halton: index must be >= 0, got {index}")
    result, f = 0.0, 1.0
    i = index
    while i > 0:
        f /= base
        result += f * (i % base)
        i //= base
    return result


def jitter_phase_count(render_width: int, display_width: int) -> int:
    """Number of jitter phases, ``int(8 * (display_width / render_width) ** 2)`` (FSR 2).

    2x per axis gives 32; native (1x) gives 8.
    """
    if render_width <= 0 or display_width <= 0:
        raise ValueError(
            f"jitter_phase_count: widths must be positive, got render_width={render_width}, "
            f"display_width={display_width}")
    return int(8.0 * (display_width / render_width) ** 2)


def jitter_offset(frame_index: int, phase_count: int) -> tuple[float, float]:
    """Sub-pixel jitter of frame ``frame_index`` in render-resolution pixels, each in [-0.5, 0.5).

    Halton base 2 for x and base 3 for y at index ``(frame_index % phase_count) + 1`` (never
    index 0, so never the zero vector), minus 0.5. +x right, +y down.
    """
    if phase_count <= 0:
        raise ValueError(f"jitter_offset: phase_count must be positive, got {phase_count}")
    i = (frame_index % phase_count) + 1
    return halton(i, 2) - 0.5, halton(i, 3) - 0.5


def jittered_projection(proj: np.ndarray, jitter_px: tuple[float, float],
                        render_size: tuple[int, int]) -> np.ndarray:
    """``proj`` (4x4, column-vector convention) with the jitter applied in clip space.

    ``ndc_x += 2 * jx / render_width`` and ``ndc_y -= 2 * jy / render_height``: a point at
    unjittered pixel ``p`` lands at pixel ``p + jitter`` (+y down).
    """
    w, h = render_size
    jx, jy = jitter_px
    out = np.asarray(proj, dtype=np.float64).copy()
    # clip.x += a * clip.w shifts ndc.x by exactly a after the perspective divide
    out[0, :] += (2.0 * jx / w) * out[3, :]
    out[1, :] -= (2.0 * jy / h) * out[3, :]
    return out


def mip_bias(render_width: int, display_width: int) -> float:
    """Texture LOD bias for the low-resolution render: ``log2(render_width / display_width)``."""
    return math.log2(render_width / display_width)
