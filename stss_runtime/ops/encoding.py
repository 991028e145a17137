"""Colour and depth encodings, once for the whole project (numpy and torch side by side).

- **The display transform** (``shared/CONVENTIONS.md``, "Images"): Reinhard ``x / (1 + x)``
  per channel, then the sRGB transfer function, then 8 bits. Every metric, video and
  screenshot goes through :func:`display_transform` (numpy).
- **The networks' colour space**: the same Reinhard + sRGB curve without quantisation, in
  torch (:func:`encode_color` / :func:`decode_color`), so a network sees display-referred
  values in [0, 1] and the plugin still takes and returns linear colour.
- **Depth**: OpenGL device depth to linear view depth (:func:`linearize_device_depth`,
  numpy), and linear depth to the networks' [0, 1] log-scale feature (:func:`depth_feature`,
  torch).
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: Name of the display transform recorded in ``meta.json``.
DISPLAY_TRANSFORM = "reinhard_srgb8"


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


def encode_color(linear: torch.Tensor) -> torch.Tensor:
    """Linear HDR colour -> display-referred [0, 1] (Reinhard, then sRGB): the network's space."""
    x = linear.clamp_min(0.0)
    x = x / (1.0 + x)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-8).pow(1 / 2.4) - 0.055)


def decode_color(encoded: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_color` (values clamped to [0, 0.999] first)."""
    y = encoded.clamp(0.0, 0.999)
    lin = torch.where(y <= 0.04045, y / 12.92, ((y + 0.055) / 1.055).pow(2.4))
    return lin / (1.0 - lin)


def depth_feature(depth: torch.Tensor, near: float, far: float) -> torch.Tensor:
    """Linear depth -> [0, 1] on a log scale between the near and far planes."""
    return (torch.log(depth.clamp_min(near) / near) / math.log(far / near)).clamp(0.0, 1.0)
