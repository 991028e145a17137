"""The project's shared conventions (``shared/CONVENTIONS.md``) as code.

Pure numpy helpers used by the renderer, the runtime, the plugin and the tests: the
jitter sequence, the LOD bias, the display transform used for every picture and metric,
and depth conversions. Every function names its units.
"""

from __future__ import annotations

import math

import numpy as np

#: Version string of CONVENTIONS.md that frame dumps declare in ``meta.json``.
CONVENTIONS_VERSION = "1.0"

#: Name of the display transform recorded in ``meta.json``.
DISPLAY_TRANSFORM = "reinhard_srgb8"


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


def jitter_offset_px(frame_index: int, phase_count: int) -> tuple[float, float]:
    """Sub-pixel jitter of frame ``frame_index`` in render-resolution pixels, each in [-0.5, 0.5).

    Halton base 2 for x and base 3 for y at index ``(frame_index % phase_count) + 1`` (never
    index 0, so never the zero vector), minus 0.5. +x right, +y down.
    """
    if phase_count <= 0:
        raise ValueError(f"jitter_offset_px: phase_count must be positive, got {phase_count}")
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


def texture_lod_bias(render_width: int, display_width: int) -> float:
    """Texture LOD bias for the low-resolution render: ``log2(render_width / display_width)``."""
    return math.log2(render_width / display_width)


def tonemap(linear: np.ndarray) -> np.ndarray:
    """Per-channel Reinhard ``x / (1 + x)`` of linear scene-referred colour (negatives -> 0)."""
    x = np.maximum(np.asarray(linear, dtype=np.float32), 0.0)
    return x / (1.0 + x)


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (linear [0, 1] -> encoded [0, 1])."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def srgb_decode(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode` (encoded [0, 1] -> linear [0, 1])."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4))


def display_transform(linear: np.ndarray) -> np.ndarray:
    """THE display transform for every metric, video and screenshot: Reinhard, sRGB, 8 bits.

    ``linear``: (..., 3) linear scene-referred RGB. Returns uint8 of the same shape.
    """
    encoded = srgb_encode(tonemap(linear))
    return np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)


def linearize_device_depth(device_depth: np.ndarray, near: float, far: float,
                           reversed_z: bool = False) -> np.ndarray:
    """OpenGL window-space depth in [0, 1] -> linear view depth in scene units.

    ``far`` may be ``math.inf`` (infinite far plane). With ``reversed_z`` the depth buffer
    holds 1 at the near plane and 0 at the far plane.
    """
    d = np.asarray(device_depth, dtype=np.float64)
    if reversed_z:
        d = 1.0 - d
    z_ndc = 2.0 * d - 1.0
    if math.isinf(far):
        return (2.0 * near / np.maximum(1.0 - z_ndc, 1e-12)).astype(np.float32)
    return (2.0 * near * far / (far + near - z_ndc * (far - near))).astype(np.float32)
