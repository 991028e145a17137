"""CUDA-OpenGL interop: OpenGL textures copied into CUDA memory on the GPU, never through
host memory (cuda-python 13, ``cuda.bindings.runtime``).

    UNTESTED ON A GPU. This module was written against cuda-python 13.4's runtime API and
    its documentation on machines without a GPU (none was available to this project when it
    was written). What the tests run here: the decision logic (:func:`decide`), the format
    mapping, the probe's messages without a GPU, the argument conventions of every
    cuda-python call (they run here and return ``cudaErrorInsufficientDriver``), and the
    whole read / write sequence -- registration cache, map, copy offsets and pitches, row
    flip, unmap on every path, error messages -- against a stand-in runtime whose "CUDA
    arrays" are host memory (``tests/plugin/test_gl_interop.py``). What only a GPU can show:
    that the real driver accepts these calls on a moderngl texture and the copy is right.
    The tests that do that skip here, saying a CUDA GPU is required.

One read, per texture and frame:

1. ``cudaGraphicsGLRegisterImage(name, GL_TEXTURE_2D, ReadOnly)``, once per texture (cached
   for the texture's life; dropped when the texture object is collected, when another
   texture takes its GL name, or by :meth:`GLInterop.release`);
2. ``cudaGraphicsMapResources`` on PyTorch's current stream (orders the copy after the GL
   work that drew the texture);
3. ``cudaGraphicsSubResourceGetMappedArray`` (level 0) and ``cudaArrayGetInfo``: the mapped
   array must have the size and channel layout expected, else a typed error;
4. ``cudaMemcpy2DFromArrayAsync`` device-to-device into a preallocated (h, w, C) torch CUDA
   tensor, only the rows and columns used: for dynamic resolution, the rectangle a GL engine
   draws with ``glViewport(0, 0, w, h)``, which is GL rows 0 .. h-1 (the bottom of the
   allocation in GL's bottom-up row order, the top-left of the picture once flipped);
5. ``cudaGraphicsUnmapResources`` (always, also when a step above failed);
6. the rows flipped on the GPU (GL rows are bottom-up; row 0 of the result is the top).

The result has the element type the host path (``Texture.read``) gives, so both paths feed
identical values to the rest of the plugin. CUDA-OpenGL interop maps 1-, 2- and 4-channel
colour formats (R/RG/RGBA x 8/16/32 bit, float or integer); RGB textures, depth textures
and multisampled ones cannot be mapped and take the host path (or are refused when interop
is forced). Requirements: an NVIDIA GPU, the OpenGL context current on the calling thread
and created by the NVIDIA driver on the same GPU as CUDA (EGL or GLX on the NVIDIA driver;
not Mesa), PyTorch with CUDA, cuda-python >= 12 and a driver new enough for it.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .errors import BackendUnavailableError, UnsupportedError

GL_TEXTURE_2D = 0x0DE1
#: ``ContextDescription.gl_interop``: "auto" (interop when the context runs on CUDA and
#: interop works here, else host memory), "host" (always through host memory), "cuda"
#: (interop or an error).
MODES = ("auto", "host", "cuda")

# cudaGraphicsRegisterFlags / cudaMemcpyKind / cudaChannelFormatKind values (the C enums'),
# so that this module's logic needs no cuda-python to be imported.
REGISTER_READ_ONLY = 1
REGISTER_WRITE_DISCARD = 2
MEMCPY_DEVICE_TO_DEVICE = 3
CHANNEL_KINDS = {"signed": 0, "unsigned": 1, "float": 2}
#: cudaChannelFormatKindUnsignedNormalized{8,16}X{1,2,4}: how the driver may describe a
#: normalised texture (GL_R8, GL_RG8, GL_RGBA8, ...) instead of as plain "unsigned".
UNORM_KINDS = {(8, 1): 5, (8, 2): 6, (8, 4): 7, (16, 1): 8, (16, 2): 9, (16, 4): 10}


class GLInteropError(BackendUnavailableError):
    """A CUDA-OpenGL interop call failed: ``call`` (the cuda-python function) and ``error``
    (its ``cudaError_t`` name) say which and why."""

    def __init__(self, message: str, call: str = "", error: str = ""):
        self.call, self.error = call, error
        super().__init__(message)


@dataclass(frozen=True)
class GLFormat:
    """A texture format interop can map: what one element is and how CUDA sees it."""

    name: str  # "RGBA16F", "RG32F", "R8", "R32UI", ...
    components: int  # 1, 2 or 4
    dtype: torch.dtype  # element type of the copy (the host path's ``Texture.read`` type)
    bits: int  # per component
    kind: str  # CUDA channel kind: "float", "unsigned" or "signed"
    normalized: bool = False  # a normalised integer format (RGBA8): CUDA may call it UnsignedNormalized8X4

    def accepts(self, kind: int, bits: list[int]) -> bool:
        """Whether a mapped array of channel ``kind`` and per-channel ``bits`` (x, y, z, w)
        is this format: its own kind and bits, or for a normalised format the driver's
        UnsignedNormalized kind of this size (with the bits given, or all zero)."""
        want = [self.bits if c < self.components else 0 for c in range(4)]
        if kind == CHANNEL_KINDS[self.kind]:
            return bits == want
        return (self.normalized and kind == UNORM_KINDS.get((self.bits, self.components))
                and bits in (want, [0, 0, 0, 0]))

    @property
    def bytes_per_pixel(self) -> int:
        return self.components * self.bits // 8


#: Unsigned element types PyTorch's CUDA kernels may lack (flip): flipped through a signed view.
_SIGNED_VIEW = {torch.uint16: torch.int16, torch.uint32: torch.int32}


def flip_rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` upside down (a new tensor), for every element type interop reads."""
    signed = _SIGNED_VIEW.get(t.dtype)
    return t.flip(0) if signed is None else t.view(signed).flip(0).view(t.dtype)


#: moderngl ``Texture.dtype`` -> (element type, bits, CUDA channel kind, format-name suffix).
#: The same dtypes as the host path (``plugin.resources``) accepts.
MODERNGL_DTYPES: dict[str, tuple[torch.dtype, int, str, str]] = {
    "f2": (torch.float16, 16, "float", "16F"),
    "f4": (torch.float32, 32, "float", "32F"),
    "f1": (torch.uint8, 8, "unsigned", "8"),  # normalised 8-bit; read as uint8 like the host path
    "u1": (torch.uint8, 8, "unsigned", "8UI"),
    "u2": (torch.uint16, 16, "unsigned", "16UI"),
    "u4": (torch.uint32, 32, "unsigned", "32UI"),
    "i4": (torch.int32, 32, "signed", "32I"),
}
_CHANNELS = {1: "R", 2: "RG", 3: "RGB", 4: "RGBA"}
INTEROP_COMPONENTS = (1, 2, 4)


def gl_format(dtype: str, components: int) -> tuple[GLFormat | None, str]:
    """The interop format of a texture of moderngl ``dtype`` with ``components`` channels,
    or ``(None, why not)``."""
    if dtype not in MODERNGL_DTYPES:
        return None, f"dtype {dtype!r} (interop here reads {', '.join(MODERNGL_DTYPES)})"
    tdtype, bits, kind, suffix = MODERNGL_DTYPES[dtype]
    name = f"{_CHANNELS.get(components, f'{components}-channel ')}{suffix}"
    if components not in INTEROP_COMPONENTS:
        return None, f"{name}: CUDA-OpenGL interop maps 1, 2 or 4 channels, not {components}"
    return GLFormat(name, components, tdtype, bits, kind, normalized=dtype == "f1"), ""


def moderngl_format(texture: Any) -> tuple[GLFormat | None, str]:
    """The interop format of a moderngl texture, or ``(None, why it cannot be mapped)``."""
    if getattr(texture, "depth", False):
        return None, "a depth texture (CUDA-OpenGL interop cannot map depth formats)"
    if getattr(texture, "samples", 0):
        return None, f"a multisampled texture ({texture.samples} samples)"
    return gl_format(texture.dtype, texture.components)


@functools.lru_cache(maxsize=1)
def availability() -> tuple[bool, str]:
    """(whether CUDA-OpenGL interop can run here, what is missing or what runs it).

    Probes PyTorch's CUDA, then cuda-python's runtime (``cudaGetDeviceCount``, which returns
    an error code rather than raising without a GPU). Does not need an OpenGL context: a GL
    context that CUDA cannot share (Mesa) only shows when a texture is registered."""
    if not torch.cuda.is_available():
        return False, ("PyTorch sees no CUDA GPU (a CPU build of PyTorch, or no NVIDIA GPU / driver): interop "
                       "copies into CUDA memory")
    try:
        from cuda.bindings import runtime
    except ImportError as e:
        return False, (f"cuda-python is not importable ({e}): pip install 'cuda-python>=12' "
                       "(it provides cuda.bindings.runtime)")
    err, count = runtime.cudaGetDeviceCount()
    if int(err) != 0:
        return False, (f"cuda-python's runtime cannot reach a GPU: cudaGetDeviceCount returned {_error_name(runtime, err)} "
                       "(a driver too old for this cuda-python?)")
    if count < 1:
        return False, "cuda-python's runtime sees no CUDA device"
    try:
        from cuda.bindings import __version__ as version
    except ImportError:  # pragma: no cover - every cuda-python 12/13 has it
        version = "?"
    return True, f"cuda-python {version} runtime, {count} CUDA device(s)"


def decide(mode: str, device: torch.device, probe: Callable[[], tuple[bool, str]] = availability) -> bool:
    """Whether a context on ``device`` reads GL textures through interop, for
    ``ContextDescription.gl_interop`` = ``mode``. "cuda" that cannot be served raises:
    :class:`UnsupportedError` on a CPU context, :class:`BackendUnavailableError` (saying
    what is missing) where interop cannot run."""
    if mode not in MODES:
        raise UnsupportedError("desc.gl_interop", "'auto', 'host' or 'cuda'", repr(mode))
    if mode == "host":
        return False
    if device.type != "cuda":
        if mode == "cuda":
            raise UnsupportedError("desc.gl_interop", "'auto' or 'host' on a CPU context ('cuda' copies GL textures "
                                   "into CUDA memory: it needs device='cuda')", repr(mode))
        return False
    ok, why = probe()
    if not ok and mode == "cuda":
        raise BackendUnavailableError(f"desc.gl_interop: expected CUDA-OpenGL interop (gl_interop='cuda'), got none "
                                      f"on this machine: {why}")
    return ok


def _error_name(runtime: Any, err: Any) -> str:
    try:
        ok, name = runtime.cudaGetErrorName(err)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - a name for the message only
        return str(err)


def _error_text(runtime: Any, err: Any) -> str:
    try:
        ok, text = runtime.cudaGetErrorString(err)
        return text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # noqa: BLE001
        return ""


@dataclass
class _Registration:
    resource: Any  # cudaGraphicsResource_t
    owner: Any  # weakref to the moderngl texture, or None (a bare GL name from C)
    size: tuple[int, int]  # (width, height) of the whole texture
    fmt: GLFormat
    staging: torch.Tensor | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self.owner is None or self.owner() is not None


class GLInterop:
    """Reads (and writes) OpenGL textures from CUDA memory for one context.

    ``device``: the context's CUDA device. ``runtime``: the cuda-python runtime module
    (default: ``cuda.bindings.runtime``, imported here, lazily). ``stream``: a callable
    returning the CUDA stream handle (an int) the copies run on (default: PyTorch's current
    stream on ``device``). Must be called from the thread whose OpenGL context owns the
    textures. Not thread-safe (a context's dispatches are serialised).
    """

    def __init__(self, device: torch.device | str = "cuda", runtime: Any = None,
                 stream: Callable[[], int] | None = None):
        self.device = torch.device(device)
        if runtime is None:
            try:
                from cuda.bindings import runtime
            except ImportError as e:
                raise GLInteropError(f"CUDA-OpenGL interop needs cuda-python ({e}): pip install 'cuda-python>=12'",
                                     "import cuda.bindings.runtime") from None
        self.rt = runtime
        self._stream = stream
        self._registered: dict[tuple[int, str], _Registration] = {}

    # -- cuda-python calls: (err, ...) tuples -> values, or a GLInteropError ----------------

    def _call(self, name: str, field: str, *args: Any, hint: str = "") -> Any:
        result = getattr(self.rt, name)(*args)
        err = result[0]
        if int(err) != 0:
            ename = _error_name(self.rt, err)
            text = _error_text(self.rt, err)
            raise GLInteropError(f"{field}: CUDA-OpenGL interop failed: {name} returned {ename}"
                                 f"{f' ({text})' if text else ''}{f'; {hint}' if hint else ''}", name, ename)
        values = result[1:]
        return values[0] if len(values) == 1 else (values or None)

    def _stream_handle(self) -> int:
        if self._stream is not None:
            return int(self._stream())
        return int(torch.cuda.current_stream(self.device).cuda_stream)

    def _set_device(self, field: str) -> None:
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            self._call("cudaSetDevice", field, index)

    # -- registrations -------------------------------------------------------------------

    def _unregister(self, reg: _Registration) -> None:
        try:  # the GL texture may already be gone: nothing left to do then
            self.rt.cudaGraphicsUnregisterResource(reg.resource)
        except Exception:  # noqa: BLE001
            pass

    def _sweep(self) -> None:
        for key in [k for k, r in self._registered.items() if not r.alive()]:
            self._unregister(self._registered.pop(key))

    def _registration(self, name: int, size: tuple[int, int], fmt: GLFormat, field: str, write: bool,
                      owner: Any) -> _Registration:
        self._sweep()
        key = (int(name), "write" if write else "read")
        reg = self._registered.get(key)
        if reg is not None:
            same_owner = (reg.owner is None and owner is None) or (
                reg.owner is not None and owner is not None and reg.owner() is owner)
            if same_owner and reg.size == tuple(size) and reg.fmt == fmt:
                return reg
            self._unregister(self._registered.pop(key))  # another texture under this GL name
        self._set_device(field)
        flags = REGISTER_WRITE_DISCARD if write else REGISTER_READ_ONLY
        resource = self._call("cudaGraphicsGLRegisterImage", field, int(name), GL_TEXTURE_2D, flags,
                              hint=f"texture {int(name)} must be a GL_TEXTURE_2D of the OpenGL context current on "
                                   "this thread, and that context must run on the NVIDIA driver of the CUDA GPU "
                                   "(Mesa / llvmpipe contexts cannot be shared with CUDA)")
        reg = _Registration(resource, None if owner is None else weakref.ref(owner), tuple(size), fmt)
        self._registered[key] = reg
        return reg

    def release(self) -> None:
        """Unregister every texture (call with the textures' GL context current). Idempotent."""
        for reg in self._registered.values():
            self._unregister(reg)
        self._registered.clear()

    @property
    def registered(self) -> int:
        """How many textures are registered now."""
        return len(self._registered)

    # -- the mapped array ---------------------------------------------------------------

    def _check_array(self, array: Any, size: tuple[int, int], fmt: GLFormat, field: str) -> None:
        desc, extent, _flags = self._call("cudaArrayGetInfo", field, array)
        bits = [int(desc.x), int(desc.y), int(desc.z), int(desc.w)]
        kind = int(desc.f)
        got_size = (int(extent.width), int(extent.height))
        if got_size != tuple(size) or not fmt.accepts(kind, bits):
            kinds = {v: k for k, v in CHANNEL_KINDS.items()}
            kinds.update({v: f"unsigned normalised {b}x{c}" for (b, c), v in UNORM_KINDS.items()})
            channels = [b for b in bits if b]
            raise UnsupportedError(field, f"a {size[0]}x{size[1]} {fmt.name} texture ({fmt.components} x "
                                   f"{fmt.bits}-bit {fmt.kind})",
                                   f"a {got_size[0]}x{got_size[1]} texture of {len(channels)} x "
                                   f"{'/'.join(map(str, channels)) or '0'}-bit {kinds.get(kind, kind)} channels")

    def _mapped(self, reg: _Registration, field: str, stream: int, body: Callable[[Any], None]) -> None:
        """Map ``reg``, run ``body(array)``, unmap -- also when ``body`` raised."""
        self._set_device(field)  # cuda-python's runtime keeps its own current device per thread
        self._call("cudaGraphicsMapResources", field, 1, reg.resource, stream)
        try:
            array = self._call("cudaGraphicsSubResourceGetMappedArray", field, reg.resource, 0, 0)
            self._check_array(array, reg.size, reg.fmt, field)
            body(array)
        except BaseException:
            try:
                self.rt.cudaGraphicsUnmapResources(1, reg.resource, stream)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        self._call("cudaGraphicsUnmapResources", field, 1, reg.resource, stream)

    # -- reads and writes ----------------------------------------------------------------

    def read(self, name: int, size: tuple[int, int], fmt: GLFormat, field: str,
             rect: tuple[int, int] | None = None, owner: Any = None) -> torch.Tensor:
        """The texture's ``rect`` (width, height; default: all of it) as an (h, w, C) tensor
        of ``fmt.dtype`` on the device, row 0 = the top of the image. The rectangle is GL's
        origin corner, GL rows 0 .. h-1 and columns 0 .. w-1: where an engine draws with
        ``glViewport(0, 0, w, h)`` into a larger texture (dynamic resolution).

        ``name``: the GL texture name; ``size``: the texture's (width, height); ``owner``:
        the Python object of the texture (its registration lives as long as it does)."""
        W, H = int(size[0]), int(size[1])
        w, h = (min(int(rect[0]), W), min(int(rect[1]), H)) if rect is not None else (W, H)
        reg = self._registration(name, (W, H), fmt, field, False, owner)
        if reg.staging is None or tuple(reg.staging.shape) != (h, w, fmt.components):
            reg.staging = torch.empty((h, w, fmt.components), dtype=fmt.dtype, device=self.device)
        staging, row = reg.staging, w * fmt.bytes_per_pixel
        stream = self._stream_handle()

        def copy(array: Any) -> None:
            # the viewport's rows are GL rows 0 .. h-1 (bottom-up; flipped below)
            self._call("cudaMemcpy2DFromArrayAsync", field, staging.data_ptr(), row, array, 0, 0, row, h,
                       MEMCPY_DEVICE_TO_DEVICE, stream)

        self._mapped(reg, field, stream, copy)
        return flip_rows(staging)  # a new tensor: the staging buffer is reused next frame

    def write(self, name: int, size: tuple[int, int], fmt: GLFormat, image: torch.Tensor, field: str,
              owner: Any = None) -> None:
        """Write ``image`` ((H, W, C) on the device, row 0 = top, C = ``fmt.components``)
        over the whole texture, converted to ``fmt.dtype``."""
        W, H = int(size[0]), int(size[1])
        if tuple(image.shape) != (H, W, fmt.components):
            raise UnsupportedError(field, f"an image of shape ({H}, {W}, {fmt.components}) for a {W}x{H} "
                                   f"{fmt.name} texture", f"shape {tuple(image.shape)}")
        reg = self._registration(name, (W, H), fmt, field, True, owner)
        src = image.to(self.device, fmt.dtype).flip(0).contiguous()  # GL rows are bottom-up
        row = W * fmt.bytes_per_pixel
        stream = self._stream_handle()

        def copy(array: Any) -> None:
            self._call("cudaMemcpy2DToArrayAsync", field, array, 0, 0, src.data_ptr(), row, row, H,
                       MEMCPY_DEVICE_TO_DEVICE, stream)

        # ``src`` may be freed once this returns: its memory is only reused by later work on the
        # same (PyTorch's current) stream, which runs after the copy
        self._mapped(reg, field, stream, copy)

    def check(self, name: int, size: tuple[int, int], fmt: GLFormat, field: str, write: bool = False,
              owner: Any = None) -> None:
        """Register and map the texture and check its size and format, copying nothing
        (so a wrong texture is refused before a frame runs)."""
        reg = self._registration(name, size, fmt, field, write, owner)
        self._mapped(reg, field, self._stream_handle(), lambda array: None)
