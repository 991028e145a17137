"""The frame dump format of ``shared/CONVENTIONS.md``: one folder per sequence.

``meta.json`` describes the sequence; ``NNNNNN.npz`` holds one display frame. Writes are
atomic (temporary name, then rename), so an interrupted writer never leaves a half-written
frame behind, and a re-run can resume from the frames that exist.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .conventions import CONVENTIONS_VERSION
from .ops.encoding import DISPLAY_TRANSFORM


class FrameDumpError(ValueError):
    """A frame dump (folder, meta or frame) does not follow the format."""


@dataclass(frozen=True)
class Field:
    dtype: str
    resolution: str | None  # "render", "display" or None (not an image)
    channels: tuple[int, ...]  # trailing shape after (h, w); for non-images the whole shape
    meaning: str


#: Every key of a frame file: dtype, resolution, trailing shape and meaning.
FRAME_FIELDS: dict[str, Field] = {
    "color": Field("float16", "render", (3,), "shaded linear colour"),
    "albedo": Field("float16", "render", (3,), "base colour, linear"),
    "normal": Field("float16", "render", (3,), "unit normal, view space"),
    "depth": Field("float32", "render", (), "linear view depth, scene units (background: far)"),
    "roughness": Field("float16", "render", (), "material roughness"),
    "metallic": Field("float16", "render", (), "material metalness"),
    "motion": Field("float32", "render", (2,),
                    "render pixels, previous minus current, +x right, +y down, jitter excluded"),
    "object_id": Field("int32", "render", (), "0 = background"),
    "gt": Field("float16", "display", (3,), "converged anti-aliased reference, linear"),
    "view": Field("float64", None, (4, 4), "unjittered view matrix (column vectors)"),
    "proj": Field("float64", None, (4, 4), "unjittered OpenGL projection (column vectors)"),
    "jitter": Field("float32", None, (2,), "jitter of the low-resolution render, pixels"),
    "time": Field("float64", None, (), "animation time, seconds"),
}

#: Fields ``meta.json`` must have.
META_FIELDS = ("scene", "render_size", "display_size", "fps", "frames", "conventions",
               "near", "far", "fov_y_deg", "display_transform", "channels")

_FRAME_RE = re.compile(r"^(\d{6})\.npz$")


def frame_path(folder: str | os.PathLike, index: int) -> Path:
    """Path of display frame ``index`` in ``folder``."""
    return Path(folder) / f"{index:06d}.npz"


def channel_list() -> list[str]:
    """The channel list recorded in ``meta.json``."""
    return list(FRAME_FIELDS)


def make_meta(*, scene: str, render_size: tuple[int, int], display_size: tuple[int, int],
              fps: float, frames: int, near: float, far: float, fov_y_deg: float,
              **extra) -> dict:
    """A complete ``meta.json`` dictionary; ``extra`` keys are kept (e.g. ``gt_samples``)."""
    meta = {
        "scene": scene,
        "render_size": [int(render_size[0]), int(render_size[1])],
        "display_size": [int(display_size[0]), int(display_size[1])],
        "fps": float(fps),
        "frames": int(frames),
        "conventions": CONVENTIONS_VERSION,
        "near": float(near),
        "far": float(far),
        "fov_y_deg": float(fov_y_deg),
        "display_transform": DISPLAY_TRANSFORM,
        "channels": channel_list(),
    }
    meta.update(extra)
    return meta


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_meta(folder: str | os.PathLike, meta: dict) -> None:
    missing = [k for k in META_FIELDS if k not in meta]
    if missing:
        raise FrameDumpError(f"meta.json: missing fields {missing}")
    data = (json.dumps(meta, indent=2) + "\n").encode()
    _atomic_write_bytes(Path(folder) / "meta.json", lambda f: f.write(data))


def read_meta(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise FrameDumpError(f"{path}: no meta.json (not a frame dump folder)") from None
    except json.JSONDecodeError as e:
        raise FrameDumpError(f"{path}: not valid JSON ({e})") from None
    missing = [k for k in META_FIELDS if k not in meta]
    if missing:
        raise FrameDumpError(f"{path}: missing fields {missing}")
    return meta


def validate_frame(arrays: dict, render_size: tuple[int, int],
                   display_size: tuple[int, int]) -> None:
    """Raise :class:`FrameDumpError` naming the first key whose presence, shape or dtype is wrong."""
    for key, field in FRAME_FIELDS.items():
        if key not in arrays:
            raise FrameDumpError(f"frame: missing key '{key}' ({field.meaning})")
        a = np.asarray(arrays[key])
        if field.resolution is None:
            expected = field.channels
        else:
            w, h = render_size if field.resolution == "render" else display_size
            expected = (h, w) + field.channels
        if a.shape != expected:
            raise FrameDumpError(f"frame: '{key}' has shape {a.shape}, expected {expected}")
        if a.dtype != np.dtype(field.dtype):
            raise FrameDumpError(f"frame: '{key}' has dtype {a.dtype}, expected {field.dtype}")


def write_frame(folder: str | os.PathLike, index: int, arrays: dict, *,
                render_size: tuple[int, int], display_size: tuple[int, int],
                compress: bool = False) -> Path:
    """Validate and atomically write display frame ``index``."""
    validate_frame(arrays, render_size, display_size)
    path = frame_path(folder, index)
    saver = np.savez_compressed if compress else np.savez
    _atomic_write_bytes(path, lambda f: saver(f, **{k: arrays[k] for k in FRAME_FIELDS}))
    return path


def read_frame(folder: str | os.PathLike, index: int) -> dict[str, np.ndarray]:
    path = frame_path(folder, index)
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FrameDumpError(f"{path}: no such frame") from None


def existing_frames(folder: str | os.PathLike) -> list[int]:
    """Sorted indices of the complete frame files in ``folder`` (temporary files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = _FRAME_RE.match(p.name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete ``*.tmp`` files a killed writer left behind; returns how many."""
    n = 0
    for p in Path(folder).glob("*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
