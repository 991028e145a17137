"""Resources in, tensors out: numpy arrays, torch tensors (CPU or CUDA), ``__dlpack__`` /
``__cuda_array_interface__`` objects and moderngl textures become (1, C, h, w) tensors on
the context's device, checked for shape, dtype and finiteness, each error naming the field.

moderngl textures are flipped so that row 0 is the top. Of a texture larger than the frame
(dynamic resolution) the rectangle at GL's origin is read, GL rows 0 .. h-1: where an engine
draws with ``glViewport(0, 0, w, h)``, the top-left of the picture once flipped. A context on CUDA reads them through
CUDA-OpenGL interop (``plugin.gl_interop``: a copy on the GPU, never through host memory;
written without a GPU to test it on) and falls back to ``Texture.read`` through host memory
where interop cannot run; a CPU context always reads them through host memory.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .checks import ValueChecks
from .errors import InvalidInputError, UnsupportedError

_FLOAT = (np.float32, np.float16, np.float64)
_INT = (np.int32, np.uint32, np.int16, np.uint16, np.uint8, np.int64)
_GL_DTYPES = {"f4": np.float32, "f2": np.float16, "f1": np.uint8, "u1": np.uint8, "u2": np.uint16,
              "u4": np.uint32, "i4": np.int32}


def kind_of(resource: Any) -> str:
    """"numpy", "torch", "dlpack", "cuda_array", "moderngl" or the type's name."""
    if isinstance(resource, np.ndarray):
        return "numpy"
    if isinstance(resource, torch.Tensor):
        return "torch"
    if (type(resource).__module__.startswith("moderngl") and hasattr(resource, "read")
            and hasattr(resource, "components") and len(getattr(resource, "size", ())) == 2):
        return "moderngl"  # a 2-D texture (not an array, cube or 3-D texture)
    if hasattr(resource, "__cuda_array_interface__"):
        return "cuda_array"
    if hasattr(resource, "__dlpack__"):
        return "dlpack"
    return type(resource).__name__


#: Reads a moderngl texture on the GPU: ``(texture, field, rect) -> (h, w, C) tensor``, or None
#: for the host path. ``rect``: the (width, height) wanted (of a GL texture: at GL's origin,
#: rows 0 .. h-1 bottom-up, which is where ``glViewport(0, 0, w, h)`` draws), or None for all.
GLReader = Callable[[Any, str, "tuple[int, int] | None"], "torch.Tensor | None"]


def _to_torch(resource: Any, name: str, gl_reader: GLReader | None = None,
              rect: tuple[int, int] | None = None) -> torch.Tensor:
    kind = kind_of(resource)
    if kind == "torch":
        return resource.detach()
    if kind == "numpy":
        if resource.dtype.type not in _FLOAT + _INT + (np.bool_,):
            raise InvalidInputError(name, "a float32/float16 (or integer for ids) array", f"dtype {resource.dtype}")
        return torch.from_numpy(np.ascontiguousarray(resource))
    if kind == "moderngl":
        dtype = _GL_DTYPES.get(resource.dtype)
        if dtype is None:
            raise InvalidInputError(name, "a moderngl texture of dtype f4, f2, u1, u2, u4 or i4", f"dtype {resource.dtype!r}")
        if getattr(resource, "samples", 0):
            raise InvalidInputError(name, "a single-sample texture (resolve a multisampled one first)",
                                    f"{resource.samples} samples")
        if gl_reader is not None:
            t = gl_reader(resource, name, rect)
            if t is not None:
                return t
        w, h = resource.size
        a = np.frombuffer(resource.read(), dtype=dtype).reshape(h, w, resource.components)
        if rect is not None:  # the viewport's rectangle: GL rows 0 .. h-1, columns 0 .. w-1
            a = a[: min(int(rect[1]), h), : min(int(rect[0]), w)]
        return torch.from_numpy(np.ascontiguousarray(a[::-1]))  # GL rows are bottom-up
    if kind == "cuda_array":
        if not torch.cuda.is_available():
            raise UnsupportedError(name, "host memory (numpy, CPU tensors, CPU __dlpack__ objects): this PyTorch "
                                   "sees no CUDA GPU to read CUDA memory with", f"a {type(resource).__name__} with "
                                   "__cuda_array_interface__")
        return torch.as_tensor(resource, device="cuda")
    if kind == "dlpack":
        try:
            return torch.from_dlpack(resource)
        except Exception as e:  # noqa: BLE001 - e.g. a CUDA array on a CPU build of PyTorch
            raise InvalidInputError(name, "a __dlpack__ object PyTorch can import", f"a {type(resource).__name__} "
                                    f"({type(e).__name__}: {e})") from None
    raise InvalidInputError(name, "a numpy array, torch tensor, __dlpack__ / __cuda_array_interface__ object "
                            "or moderngl texture", f"a {type(resource).__name__}")


def layout_hint(shape: tuple[int, ...], want: tuple[int, ...]) -> str:
    """Why an image of ``shape`` does not look (height, width, channels) with ``want``
    channels: a channels-first (C, H, W) or batched (1, C, H, W) tensor; "" otherwise."""
    if len(shape) == 3 and shape[0] in want and shape[2] not in want:
        return ("this looks channels-first (channels, height, width): pass (height, width, channels), e.g. "
                "tensor.permute(1, 2, 0) or array.transpose(1, 2, 0)")
    if len(shape) == 4 and shape[0] == 1 and shape[1] in want:
        return ("this looks like a batch of one channels-first image (1, channels, height, width): pass (height, "
                "width, channels), e.g. tensor[0].permute(1, 2, 0)")
    return ""


def image_shape(resource: Any, name: str) -> tuple[int, ...]:
    """(height, width[, channels]) of an image resource, without reading its pixels."""
    if kind_of(resource) == "moderngl":
        return (resource.size[1], resource.size[0], resource.components)
    shape = getattr(resource, "shape", None)
    if shape is None and resource is not None and kind_of(resource) == "cuda_array":
        shape = resource.__cuda_array_interface__.get("shape")
    if shape is None and resource is not None and kind_of(resource) in ("dlpack", "cuda_array"):
        shape = _to_torch(resource, name).shape
    if shape is None or len(shape) < 2:
        raise InvalidInputError(name, "an image of shape (height, width[, channels])",
                                "None" if resource is None else f"a {type(resource).__name__}")
    return tuple(int(v) for v in shape)


def to_tensor(resource: Any, name: str, size: tuple[int, int], channels: int | tuple[int, ...],
              device: torch.device, integer: bool = False, allow_larger: bool = True,
              gl_reader: GLReader | None = None, checks: ValueChecks | None = None) -> torch.Tensor:
    """``resource`` -> (1, C, h, w) on ``device``: float32, or int32 with ``integer``.

    ``size`` (width, height): the rectangle used; a larger resource gives its top-left
    part (``allow_larger``; of a GL texture the viewport's rectangle at GL's origin, which
    is the top-left of the flipped picture). ``channels``: the count expected (a tuple: any of them; the
    first ``min`` are used, e.g. RGBA colour -> RGB). Single-channel images may be (h, w).
    ``gl_reader``: how this context reads moderngl textures on the GPU (None: host memory).
    ``checks``: where the value checks (finite values, integer ids) are registered, to be
    read back with the dispatch's others; None checks them before returning.
    """
    if resource is None:
        raise InvalidInputError(name, "an image", "None")
    t = _to_torch(resource, name, gl_reader, size if allow_larger else None)
    source_ptr = t.untyped_storage().data_ptr() if t.numel() else None
    w, h = size
    want = (channels,) if isinstance(channels, int) else tuple(channels)
    if t.dim() == 2 and 1 in want:
        t = t.unsqueeze(-1)
    hint = layout_hint(tuple(t.shape), want)
    if t.dim() != 3:
        raise InvalidInputError(name, f"shape (height, width{', channels' if want != (1,) else ''}) with "
                                f"channels {' or '.join(map(str, want))}", f"shape {tuple(t.shape)}", hint)
    if t.shape[2] not in want:
        raise InvalidInputError(name, f"{' or '.join(map(str, want))} channels (last axis)",
                                f"{t.shape[2]} (shape {tuple(t.shape)})", hint)
    th, tw = int(t.shape[0]), int(t.shape[1])
    if (th, tw) != (h, w) and not (allow_larger and th >= h and tw >= w):
        raise InvalidInputError(name, f"{w}x{h} pixels (width x height){' or larger' if allow_larger else ''}",
                                f"{tw}x{th}")
    t = t[:h, :w, : min(want)]
    if not integer and not t.is_floating_point():
        raise InvalidInputError(name, "floating-point values (float32 or float16)", f"dtype {t.dtype}")
    own = checks is None
    if own:
        checks = ValueChecks()
    t = t.to(device, non_blocking=True)  # values are checked where they are: no host read per check
    if integer:
        if t.is_floating_point():
            bad = ~torch.isfinite(t)
            checks.add(_ids_verdict(name), bad.sum(), (t != t.round()).sum())
        t = t.to(torch.int32)
    else:
        t = t.to(torch.float32)
    t = t.permute(2, 0, 1).unsqueeze(0).contiguous()
    if t.untyped_storage().data_ptr() == source_ptr:  # never keep the engine's own memory: it is
        t = t.clone()  # reused for the next frame while the history still holds this one
    if not integer:
        checks.add(_finite_verdict(name), (~torch.isfinite(t)).sum(), torch.isnan(t).sum())
    if own:
        checks.run()
    return t


def _finite_verdict(name: str):
    def verdict(n: float, nan: float) -> None:
        if n:
            n, nan = int(n), int(nan)
            raise InvalidInputError(name, "finite values", f"{n} non-finite value(s) ({nan} NaN, {n - nan} Inf)")
    return verdict


def _ids_verdict(name: str):
    def verdict(n_bad: float, n_fractional: float) -> None:
        if n_bad:
            raise InvalidInputError(name, "finite integer ids", f"{int(n_bad)} non-finite value(s)")
        if n_fractional:
            raise InvalidInputError(name, "integer ids", "fractional values")
    return verdict


def to_output(t: torch.Tensor, like: str) -> Any:
    """(1, 3, H, W) -> (H, W, 3): numpy for numpy inputs, and for moderngl textures on a CPU
    context; a torch tensor otherwise (on the context's device: a CUDA context keeps the
    outputs of GL textures on the GPU)."""
    hwc = t[0].permute(1, 2, 0).contiguous()
    if like == "numpy" or (like == "moderngl" and hwc.device.type == "cpu"):
        return hwc.cpu().numpy()
    return hwc


def matrix(value: Any, name: str) -> np.ndarray:
    """A 4x4 float64 matrix of numbers, finite and invertible (a camera transform: the
    runtime inverts view and projection to un-project depth)."""
    try:
        a = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError):
        raise InvalidInputError(name, "a 4x4 matrix", f"a {type(value).__name__}") from None
    if a.dtype.kind not in "fiu":  # strings, booleans, None, ragged lists: not numbers
        got = f"a {type(value).__name__}" if a.dtype.kind == "O" or a.ndim == 0 else f"dtype {a.dtype}"
        raise InvalidInputError(name, "a 4x4 matrix of numbers", got)
    if a.shape != (4, 4):
        raise InvalidInputError(name, "a 4x4 matrix", f"shape {a.shape}")
    m = a.astype(np.float64)
    if not np.isfinite(m).all():
        raise InvalidInputError(name, "finite values", "NaN or Inf")
    if not m.any():
        raise InvalidInputError(name, "an invertible 4x4 matrix (a camera transform)", "all zeros",
                                "was it set?")
    try:
        rank = int(np.linalg.matrix_rank(m))
    except np.linalg.LinAlgError:
        rank = 0
    if rank < 4:
        raise InvalidInputError(name, "an invertible 4x4 matrix (a camera transform)",
                                f"a singular matrix (rank {rank})")
    return m
