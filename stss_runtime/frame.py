"""One display frame as the runtime sees it: G-buffers (and colour on rendered frames) as
torch tensors in NCHW layout at render resolution, plus cameras and jitter.

Units follow CONVENTIONS.md: ``motion`` in render pixels (previous minus current, +y down,
jitter excluded), ``depth`` linear view depth in scene units, ``jitter_px`` in render pixels,
colour linear (HDR allowed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

G_BUFFERS = ("albedo", "normal", "depth", "roughness", "metallic", "motion", "object_id")


@dataclass(frozen=True)
class Frame:
    index: int  # display frame index
    albedo: torch.Tensor  # (1, 3, h, w) linear base colour
    normal: torch.Tensor  # (1, 3, h, w) unit view-space normal
    depth: torch.Tensor  # (1, 1, h, w) linear view depth, scene units
    roughness: torch.Tensor  # (1, 1, h, w)
    metallic: torch.Tensor  # (1, 1, h, w)
    motion: torch.Tensor  # (1, 2, h, w) render pixels, previous minus current
    object_id: torch.Tensor  # (1, 1, h, w) int32, 0 = background
    view: np.ndarray  # (4, 4) float64 unjittered view matrix
    proj: np.ndarray  # (4, 4) float64 unjittered projection
    jitter_px: tuple[float, float]
    near: float
    far: float
    color: torch.Tensor | None = None  # (1, 3, h, w) linear shaded colour; None = not shaded
    reset: bool = False  # camera cut: drop the history before this frame

    @property
    def size(self) -> tuple[int, int]:
        """Render size (width, height)."""
        return int(self.depth.shape[-1]), int(self.depth.shape[-2])

    @property
    def shaded(self) -> bool:
        return self.color is not None

    def jitter_tensor(self) -> torch.Tensor:
        """The jitter (render px) as a (1, 2, 1, 1) tensor beside the G-buffers (dtype, device)."""
        return torch.tensor(self.jitter_px, dtype=self.depth.dtype, device=self.depth.device).view(1, 2, 1, 1)

    def to(self, device: torch.device | str) -> "Frame":
        kw = {k: getattr(self, k).to(device) for k in G_BUFFERS}
        if self.color is not None:
            kw["color"] = self.color.to(device)
        return replace(self, **kw)


def _chw(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).unsqueeze(0).to(dtype)


def frame_from_dump(arrays: dict, meta: dict, index: int, shaded: bool = True,
                    reset: bool = False) -> Frame:
    """A :class:`Frame` from one frame dump file's arrays (``stss_runtime.framedump``)."""
    return Frame(
        index=index,
        albedo=_chw(arrays["albedo"]), normal=_chw(arrays["normal"]), depth=_chw(arrays["depth"]),
        roughness=_chw(arrays["roughness"]), metallic=_chw(arrays["metallic"]),
        motion=_chw(arrays["motion"]), object_id=_chw(arrays["object_id"], torch.int32),
        view=np.asarray(arrays["view"], np.float64), proj=np.asarray(arrays["proj"], np.float64),
        jitter_px=(float(arrays["jitter"][0]), float(arrays["jitter"][1])),
        near=float(meta["near"]), far=float(meta["far"]),
        color=_chw(arrays["color"]) if shaded else None, reset=reset)


def gt_tensor(arrays: dict) -> torch.Tensor:
    """The ground truth of a frame dump file as (1, 3, H, W) float32 linear."""
    return _chw(arrays["gt"])
