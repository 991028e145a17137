"""The plugin's C ABI (``plugin/include/stss_plugin.h``): the Python side of
``libstss_plugin.so`` and the build of that library with cffi's embedding mode.

Build (about 2 s, most of it importing the plugin; writes ``build/plugin/libstss_plugin.so``,
cffi's generated ``_stss_plugin.c`` and ``stss_build_config.h`` next to it)::

    .venv/bin/python -m plugin.c_abi --build [--out DIR] [--verbose]

The library is a C shared object that embeds CPython. Its C is in real files under
``plugin/c/``, compiled from there:

- ``stss_plugin.c``: the exported ``stss_*`` functions, which start the interpreter on
  first use, call the Python functions of this module through cffi's ``extern "Python"``
  entry points and map their outcome to an ``stss_result``; and the pure helpers
  (``stss_version``, ``stss_last_error``, the ``*_init`` functions, the jitter helpers),
  plain C that never starts Python;
- ``stss_plugin_internal.h``: what the C side and this module share: the entry points'
  declarations (cffi's embedding API), ``stss__set_error`` (called from Python), and the
  ``STSS__TAG`` / ``STSS__ERROR_CAPACITY`` constants this module reads from it.

cffi generates a second translation unit, ``_stss_plugin.c``, with the entry points and
the init code (:data:`_INIT_CODE`, Python). The values baked into a build are written by
:func:`build` into ``stss_build_config.h`` in the output folder, which ``stss_plugin.c``
includes; no C is kept in Python strings.

**The library is tied to this checkout and its virtual environment**: the build bakes in

- the venv's interpreter (``sys.executable`` at build time), used as the embedded
  interpreter's program name, so that CPython finds ``pyvenv.cfg`` and sets ``sys.prefix``
  to the venv (its site-packages and ``.pth`` files included) exactly as running
  ``.venv/bin/python`` does; the engine needs no ``PYTHONHOME`` / ``PYTHONPATH``, and the
  ``PYTHON*`` variables of its environment are ignored (``PyConfig.use_environment = 0``),
  so one set for some other Python cannot break the library;
- the venv's site-packages and the repository root, inserted into ``sys.path`` by the
  init code (so ``import plugin`` finds this checkout even without the editable install);
- libpython's directory as the library's RPATH (no ``LD_LIBRARY_PATH`` needed), and
  libpython's path, re-opened ``RTLD_GLOBAL`` before Python starts so that extension
  modules (numpy, torch) resolve its symbols even when an engine dlopens the library
  with ``RTLD_LOCAL``.

Move the checkout or rebuild the venv: rebuild the library (``stss_build_config.h`` in the
build folder shows what a build is tied to). When the host process already
runs Python (e.g. a Python engine that dlopens the library), that interpreter is used
and must be able to import ``_cffi_backend`` (cffi) itself.

The boundary: every entry point runs under :func:`_boundary`, which turns
:class:`~plugin.errors.PluginError` into its ``code`` and anything else (any
``BaseException``) into ``STSS_RESULT_INTERNAL`` with the exception's type and message,
stores the message for ``stss_last_error()`` and prints nothing. Python warnings raised
during a call go to the context's message callback, never to stderr. Calls are serialised
by one lock.

Images: C host pointers become numpy arrays with ``ffi.buffer`` + ``np.ndarray(...,
strides=...)`` honouring ``pitch_bytes`` (zero-copy; a negative pitch is a flipped view).
Single-channel images are copied, because the runtime keeps (1, 1, h, w) tensors of them
in its history and ``torch.from_numpy`` of a packed single-channel array aliases the
caller's memory, which the caller may reuse after ``stss_dispatch`` returns. 8-bit UNORM
formats are converted to float32 (a copy). Outputs are written into the caller's buffers,
honouring their pitch (RGBA32F: alpha = 1).

GPU handles (``stss_image.memory``), on a context with device "cuda" only (a CPU context
refuses them with ``STSS_RESULT_UNSUPPORTED`` naming the field): a CUDA device pointer
becomes a torch tensor over that memory through ``__cuda_array_interface__`` (no copy; same
format, pitch and alignment checks as host memory), and a GL texture name is copied on the
GPU by :mod:`plugin.gl_interop` (its declared size and format are checked against the
mapped CUDA array). Outputs can be CUDA pointers or GL textures (RGBA32F / RGBA16F); the
library synchronises the device before ``stss_dispatch`` returns. These paths were written
without a GPU (none was available): here only their refusal and the pure parts are tested;
the tests of their success skip, saying a CUDA GPU is required.

Handles: ``stss_context*`` encodes an integer id (1, 2, ...) of a dict entry; it is never
dereferenced. A destroyed id stays known, so a later call returns
``STSS_RESULT_INVALID_STATE`` ("context 3 was destroyed") instead of crashing.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .context import Context
from .descriptions import (
    DEFAULT_PASS,
    MAX_IMAGE_DIMENSION,
    ContextDescription,
    FrameDescription,
    GeneratedFrameDescription,
    Severity,
)
from .errors import BackendUnavailableError, ContextStateError, InvalidInputError, PluginError, Result, UnsupportedError
from .helpers import capabilities, required_inputs

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADER = Path(__file__).resolve().parent / "include" / "stss_plugin.h"
#: The library's C side: the exported functions and the embedded interpreter's start, and
#: the declarations it shares with this module (compiled from these files, not from strings).
C_DIR = Path(__file__).resolve().parent / "c"
C_SOURCE = C_DIR / "stss_plugin.c"
INTERNAL_HEADER = C_DIR / "stss_plugin_internal.h"
#: Written by the build next to the library: the paths and version baked into it.
BUILD_CONFIG = "stss_build_config.h"
DEFAULT_OUT = REPO_ROOT / "build" / "plugin"
LIBRARY_NAME = "libstss_plugin.so"
MODULE_NAME = "_stss_plugin"  # cffi's module inside the library
ABI_VERSION = 3
#: stss_context_desc.generated_frames for a count chosen per frame (generated_frames="auto").
GENERATED_FRAMES_AUTO = -1



def _c_define(name: str, header: Path = INTERNAL_HEADER) -> int:
    """The integer value of ``#define name`` in a header (one source for C and Python)."""
    match = re.search(rf"^#define\s+{name}\s+(\S+)", header.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"{header}: no #define {name}")
    return int(match.group(1), 0)


#: Internal entry points return TAG + result code, so that cffi's "init failed, returning
#: 0" is told apart from STSS_RESULT_OK by the C wrappers (STSS__TAG in the internal header).
_TAG = _c_define("STSS__TAG")
_MAX_MESSAGE = _c_define("STSS__ERROR_CAPACITY") - 96  # bytes kept of a message, well inside the C buffer

# stss_format: value -> (name, channels, numpy dtype, kind)
FORMATS: dict[int, tuple[str, int, Any, str]] = {
    1: ("R32F", 1, np.float32, "float"),
    2: ("RG32F", 2, np.float32, "float"),
    3: ("RGB32F", 3, np.float32, "float"),
    4: ("RGBA32F", 4, np.float32, "float"),
    5: ("R16F", 1, np.float16, "float"),
    6: ("RG16F", 2, np.float16, "float"),
    7: ("RGBA16F", 4, np.float16, "float"),
    8: ("R32I", 1, np.int32, "int"),
    9: ("R32UI", 1, np.uint32, "int"),
    10: ("R8_UNORM", 1, np.uint8, "unorm"),
    11: ("RGBA8_UNORM", 4, np.uint8, "unorm"),
}
OUTPUT_FORMATS = (3, 4)  # RGB32F, RGBA32F

# stss_memory
MEMORY_HOST, MEMORY_CUDA, MEMORY_GL_TEXTURE = 0, 1, 2
MEMORY_NAMES = {MEMORY_HOST: "STSS_MEMORY_HOST", MEMORY_CUDA: "STSS_MEMORY_CUDA",
                MEMORY_GL_TEXTURE: "STSS_MEMORY_GL_TEXTURE"}
#: The formats a GL texture handle may declare -> (moderngl dtype, channels) of
#: plugin.gl_interop: CUDA-OpenGL interop maps 1, 2 and 4 channels, never RGB.
GL_FORMATS = {1: ("f4", 1), 2: ("f4", 2), 4: ("f4", 4), 5: ("f2", 1), 6: ("f2", 2), 7: ("f2", 4), 8: ("i4", 1),
              9: ("u4", 1), 10: ("f1", 1), 11: ("f1", 4)}
GL_OUTPUT_FORMATS = (4, 7)  # RGBA32F, RGBA16F

FLAG_HDR, FLAG_INVERTED_DEPTH, FLAG_INFINITE_FAR = 0x1, 0x2, 0x4
FLAG_JITTERED_MOTION, FLAG_DISPLAY_RES_MOTION, FLAG_DEPTH_IS_DEVICE, FLAG_VALIDATION = 0x8, 0x10, 0x20, 0x40
FLAGS_ALL = 0x7F

#: The largest |pitch_bytes| of an image (STSS_MAX_PITCH_BYTES): 16 times the widest row of
#: the largest pixel format at the largest size would be 4 MiB; no engine pads rows so far.
MAX_PITCH_BYTES = 1 << 20
#: No image starts (or ends) in the first page: such a "pointer" is a small integer.
_LOWEST_ADDRESS = 1 << 12

# Per image field: the channel counts accepted (more channels than the largest are sliced
# off where noted) and the kinds of format accepted.
_FIELDS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "color": ((3, 4), ("float",)),
    "hudless": ((3, 4), ("float",)),
    "depth": ((1,), ("float",)),
    "motion": ((2,), ("float",)),
    "albedo": ((3,), ("float", "unorm")),  # RGBA accepted, alpha ignored
    "normal": ((3,), ("float",)),  # RGBA accepted, alpha ignored
    "roughness": ((1,), ("float", "unorm")),
    "metallic": ((1,), ("float", "unorm")),
    "object_id": ((1,), ("int", "float")),
    "reactive": ((1,), ("float", "unorm")),
    "transparency": ((1,), ("float", "unorm")),
    "ui": ((4,), ("float", "unorm")),
}
_GBUFFERS = ("albedo", "normal", "roughness", "metallic", "object_id")


class NullPointerError(PluginError):
    """A required pointer is NULL (C only)."""

    code = Result.NULL_POINTER

    def __init__(self, field: str, expected: str = "a pointer"):
        self.field = field
        super().__init__(f"{field}: expected {expected}, got NULL")


# -- messages in C terms ---------------------------------------------------------------

#: Python field names -> the C fields an engine sets (messages from plugin.Context).
_RENAMES = [
    (re.compile(r"\b(frame(?:\.generated\[\d+\])?)\.jitter_px\b"), r"\1.jitter_x/jitter_y"),
    (re.compile(r"\bframe\.motion_scale\b"), "frame.motion_scale_x/motion_scale_y"),
    (re.compile(r"\bframe\.near\b"), "frame.near_plane"),
    (re.compile(r"\bframe\.far\b"), "frame.far_plane"),
    (re.compile(r"\bframe\.render_size\b"), "frame.render_width/render_height"),
    (re.compile(r"\bdesc\.max_render_size\b"), "desc.max_render_width/max_render_height"),
    (re.compile(r"\bdesc\.display_size\b"), "desc.display_width/display_height"),
    (re.compile(r"\bdesc\.depth_format\b"), "desc.flags (STSS_FLAG_DEPTH_IS_DEVICE)"),
    (re.compile(r"\(desc\.hdr=False\)"), "(STSS_FLAG_HDR not set)"),
    (re.compile(r"set hdr=True"), "set STSS_FLAG_HDR in desc.flags"),
    (re.compile(r"depth_format='device'"), "STSS_FLAG_DEPTH_IS_DEVICE"),
    (re.compile(r"depth_format='linear'"), "STSS_FLAG_DEPTH_IS_DEVICE not set"),
    (re.compile(r"use device='cpu'"), "use device \"cpu\""),
    (re.compile(r"\breset=True\b"), "reset = 1"),
    (re.compile(r"\bplugin\.jitter_offset\b"), "stss_jitter_offset"),
    (re.compile(r"\bplugin\.MAX_IMAGE_DIMENSION\b"), "STSS_MAX_IMAGE_DIMENSION"),
    (re.compile(r"\bplugin\.capabilities\(\)\['backends'\]"), "stss_query_capabilities: \"backends\""),
    (re.compile(r"backend='tensorrt'"), "backend \"tensorrt\""),
    (re.compile(r"None unless generated_frames='auto'"), "0 unless generated_frames = STSS_GENERATED_FRAMES_AUTO"),
    (re.compile(r"generated_frames='auto'"), "generated_frames = STSS_GENERATED_FRAMES_AUTO"),
    (re.compile(r"\(an integer\) or 'auto'"), "or STSS_GENERATED_FRAMES_AUTO (-1)"),
    (re.compile(r"\) or 'auto'"), ") or STSS_GENERATED_FRAMES_AUTO (-1)"),
    (re.compile(r"got 'auto'"), "got STSS_GENERATED_FRAMES_AUTO (-1)"),
    (re.compile(r"\bContext\.next_generated_frames\b"), "stss_next_generated_frames"),
    (re.compile(r"milliseconds(,)? or None"), r"milliseconds\1 or 0 (none)"),
]


def c_message(message: str) -> str:
    """A message of :mod:`plugin` rewritten with the C field names of ``stss_plugin.h``."""
    for pattern, repl in _RENAMES:
        message = pattern.sub(repl, message)
    return message


# -- header ------------------------------------------------------------------------------

def header_declarations(header: Path = HEADER, block: str = "cffi") -> str:
    """The declarations between the ``<block>:begin`` and ``<block>:end`` comments of a
    header (``cffi``: the public ABI of ``stss_plugin.h``; ``cffi:embedding`` and
    ``cffi:cdef``: the internal header's two parts), with the ``STSS_API`` attribute
    removed: what ``ffi.cdef`` / ``ffi.embedding_api`` take (also for ABI-mode tests)."""
    text = header.read_text()
    start = text.index("*/", text.index(f"---- {block}:begin")) + 2
    end = text.rindex("/*", 0, text.index(f"---- {block}:end"))
    return re.sub(r"\bSTSS_API\s+", "", text[start:end])


# -- the Python side of the library -------------------------------------------------------

_ffi: Any = None
_lib: Any = None
_LOCK = threading.RLock()


@dataclass
class _Entry:
    context: Context
    desc: ContextDescription
    required: frozenset[str]


_contexts: dict[int, _Entry] = {}
_destroyed: set[int] = set()
_next_id = 1


class _Call:
    """Per-call state: where Python warnings raised during the call are forwarded."""

    callback: Callable[[Severity, str], None] | None = None


def _set_error(message: str) -> None:
    data = message.encode("utf-8", "replace")
    if len(data) > _MAX_MESSAGE:
        data = data[: _MAX_MESSAGE - 3].decode("utf-8", "ignore").encode() + b"..."
    _lib.stss__set_error(data.replace(b"\0", b" "))


def _boundary(c_name: str, fn: Callable[..., None]) -> Callable[..., int]:
    """``fn`` as an ``extern "Python"`` entry point: TAG + result code, never an exception."""
    public = c_name.replace("stss__py_", "stss_")

    def entry(*args) -> int:
        call = _Call()
        try:
            with _LOCK, warnings.catch_warnings(record=True) as caught:
                try:
                    fn(call, *args)
                finally:
                    _forward(call, public, caught)
            return _TAG + int(Result.OK)
        except PluginError as e:
            code, message = int(e.code), c_message(str(e))
        except BaseException as e:  # noqa: BLE001 - nothing crosses the C boundary
            code = int(Result.INTERNAL)
            message = f"{public}: internal error: {type(e).__name__}: {e}"
        try:
            _set_error(message or f"{public}: {Result(code).name}")
        except BaseException:  # noqa: BLE001
            pass
        return _TAG + code

    entry.__name__ = c_name
    return entry


def _forward(call: _Call, public: str, caught: list) -> None:
    """Python warnings raised during a call -> the context's message callback (or nowhere)."""
    for w in caught:
        if call.callback is not None:
            try:
                call.callback(Severity.WARNING, f"{public}: {w.category.__name__}: {w.message}")
            except Exception:  # noqa: BLE001 - a broken callback must not fail the call
                pass


def _onerror(exc_type, exc_value, tb) -> None:
    """cffi's last resort (an exception escaping :func:`_boundary`): record it, print nothing."""
    try:
        _set_error(f"internal error: {exc_type.__name__}: {exc_value}")
    except BaseException:  # noqa: BLE001
        pass


def bind(ffi, lib) -> None:
    """Attach this module's functions to the library's ``extern "Python"`` entry points
    (called by the library's init code)."""
    global _ffi, _lib
    _ffi, _lib = ffi, lib
    for c_name, fn in (("stss__py_init", _init), ("stss__py_query_capabilities", _query_capabilities),
                       ("stss__py_create", _create), ("stss__py_dispatch", _dispatch),
                       ("stss__py_reset", _reset), ("stss__py_release_gpu_resources", _release_gpu_resources),
                       ("stss__py_next_generated_frames", _next_generated_frames),
                       ("stss__py_destroy", _destroy)):
        ffi.def_extern(name=c_name, error=_TAG + int(Result.INTERNAL), onerror=_onerror)(_boundary(c_name, fn))


def _init(call: _Call) -> None:
    """The library's first call: cffi has run the init code; nothing else to do."""


@functools.lru_cache(maxsize=1)
def _capabilities_json() -> bytes:
    return json.dumps(capabilities()).encode("utf-8") + b"\0"


def _query_capabilities(call: _Call, json_out, capacity: int, needed) -> None:
    ffi = _ffi
    data = _capabilities_json()
    if needed != ffi.NULL:
        needed[0] = len(data)
    if json_out == ffi.NULL:
        if capacity != 0:
            raise NullPointerError("json_out", f"a buffer of {capacity} bytes (capacity = {capacity})")
        if needed == ffi.NULL:
            raise NullPointerError("needed", "a pointer (json_out = NULL asks for the size)")
        return
    if capacity < len(data):
        if capacity > 0:
            json_out[0] = b"\0"
        raise InvalidInputError("capacity", f"at least {len(data)} bytes (the JSON and its terminating NUL; "
                                "*needed holds the size)", capacity)
    ffi.memmove(json_out, data, len(data))


def _string(ptr, field: str, default: str) -> str:
    if ptr == _ffi.NULL:
        return default
    raw = _ffi.string(ptr)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(field, "a UTF-8 string", repr(raw)) from None


def _c_callback(fn, user) -> Callable[[Severity, str], None]:
    ffi = _ffi
    user = ffi.cast("void *", user)

    def callback(severity: Severity, text: str) -> None:
        data = c_message(text).encode("utf-8", "replace").replace(b"\0", b" ")
        fn(int(severity), ffi.new("char[]", data), user)

    return callback


def _create(call: _Call, desc, out) -> None:
    global _next_id
    ffi = _ffi
    if out == ffi.NULL:
        raise NullPointerError("out", "a pointer to an stss_context* that receives the handle")
    out[0] = ffi.NULL
    if desc == ffi.NULL:
        raise NullPointerError("desc", "a pointer to an stss_context_desc (see stss_context_desc_init)")
    flags = int(desc.flags)
    if flags & ~FLAGS_ALL:
        raise InvalidInputError("desc.flags", f"a combination of STSS_FLAG_* (mask 0x{FLAGS_ALL:x})", f"0x{flags:x}")
    callback = None
    if desc.message_callback != ffi.NULL:
        callback = _c_callback(desc.message_callback, desc.message_user)
    py = ContextDescription(
        max_render_size=(int(desc.max_render_width), int(desc.max_render_height)),
        display_size=(int(desc.display_width), int(desc.display_height)),
        pass_name=_string(desc.pass_name, "desc.pass_name", DEFAULT_PASS),
        backend=_string(desc.backend, "desc.backend", "torch"),
        precision=_string(desc.precision, "desc.precision", "fp32"),
        device=_string(desc.device, "desc.device", "cpu"),
        generated_frames="auto" if int(desc.generated_frames) == GENERATED_FRAMES_AUTO else int(desc.generated_frames),
        target_display_hz=_target_hz(desc),
        hdr=bool(flags & FLAG_HDR),
        depth_format="device" if flags & FLAG_DEPTH_IS_DEVICE else "linear",
        inverted_depth=bool(flags & FLAG_INVERTED_DEPTH),
        infinite_far=bool(flags & FLAG_INFINITE_FAR),
        jittered_motion=bool(flags & FLAG_JITTERED_MOTION),
        display_res_motion=bool(flags & FLAG_DISPLAY_RES_MOTION),
        validation=bool(flags & FLAG_VALIDATION),
        message_callback=callback)
    call.callback = callback
    context = Context(py)
    handle = _next_id
    _next_id += 1
    _contexts[handle] = _Entry(context, context.desc, frozenset(required_inputs(context.desc.pass_name)))
    out[0] = ffi.cast("stss_context *", handle)


def _target_hz(desc) -> float | None:
    """``desc.target_display_hz`` for the Python description: 0 is none unless the count is
    chosen per frame (where the context refuses 0, naming the field)."""
    hz = float(desc.target_display_hz)
    return None if hz == 0.0 and int(desc.generated_frames) != GENERATED_FRAMES_AUTO else hz


def _entry(context, call: _Call) -> tuple[int, _Entry]:
    if context == _ffi.NULL:
        raise NullPointerError("context", "a handle from stss_create")
    handle = int(_ffi.cast("uintptr_t", context))
    entry = _contexts.get(handle)
    if entry is None:
        if handle in _destroyed:
            raise ContextStateError(f"context {handle} was destroyed (stss_destroy); create a new one with stss_create")
        raise ContextStateError(f"context: expected a handle from stss_create, got {handle:#x} (not a context "
                                "of this library)")
    call.callback = entry.desc.message_callback
    return handle, entry


def _reset(call: _Call, context) -> None:
    _entry(context, call)[1].context.reset()


def _next_generated_frames(call: _Call, context, count) -> None:
    _, entry = _entry(context, call)
    if count == _ffi.NULL:
        raise NullPointerError("count", "a pointer to an int32_t that receives the count")
    count[0] = entry.context.next_generated_frames


def _release_gpu_resources(call: _Call, context) -> None:
    _entry(context, call)[1].context.release_gpu_resources()


def _destroy(call: _Call, context) -> None:
    handle, entry = _entry(context, call)
    del _contexts[handle]
    _destroyed.add(handle)
    entry.context.destroy()


# -- images ------------------------------------------------------------------------------

def _format_names(channels: tuple[int, ...], kinds: tuple[str, ...]) -> str:
    return ", ".join(name for name, c, _, kind in FORMATS.values() if c in channels and kind in kinds)


def _memory(img, field: str, entry: _Entry) -> int:
    """``img.memory``, checked: known, and a GPU handle only on a CUDA context."""
    mem = int(img.memory)
    if mem not in MEMORY_NAMES:
        raise InvalidInputError(f"{field}.memory", ", ".join(f"{n} ({v})" for v, n in MEMORY_NAMES.items()), mem,
                                "an uninitialised stss_image? zero it first")
    if mem != MEMORY_HOST and entry.desc.device != "cuda":
        raise UnsupportedError(f"{field}.memory", f"STSS_MEMORY_HOST (0) on this context: GPU handles need a context "
                               f"created with desc.device = \"cuda\" (this one runs on \"{entry.desc.device}\")",
                               f"{MEMORY_NAMES[mem]} ({mem})")
    return mem


def _given(img, mem: int) -> bool:
    return int(img.gl_texture) != 0 if mem == MEMORY_GL_TEXTURE else img.data != _ffi.NULL


def _layout(img, field: str, formats: dict[int, tuple[str, int, Any, str]]):
    """The checked layout of a pointer image: (format name, channels, dtype, w, h, pitch)."""
    ffi = _ffi
    if img.data == ffi.NULL:
        raise NullPointerError(f"{field}.data")
    fmt = int(img.format)
    if fmt not in formats:
        names = ", ".join(f"STSS_FORMAT_{v[0]} ({k})" for k, v in formats.items())
        got = f"STSS_FORMAT_{FORMATS[fmt][0]} ({fmt})" if fmt in FORMATS else fmt
        raise InvalidInputError(f"{field}.format", f"one of {names}", got)
    name, channels, dtype, _ = formats[fmt]
    w, h = int(img.width), int(img.height)
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"{field}.width/height", "positive sizes", f"{w}x{h}")
    if w > MAX_IMAGE_DIMENSION or h > MAX_IMAGE_DIMENSION:
        raise InvalidInputError(f"{field}.width/height", f"at most {MAX_IMAGE_DIMENSION}x{MAX_IMAGE_DIMENSION} "
                                "(STSS_MAX_IMAGE_DIMENSION)", f"{w}x{h}")
    esize = np.dtype(dtype).itemsize
    row = w * channels * esize
    pitch = int(img.pitch_bytes) or row
    if abs(pitch) < row:
        raise InvalidInputError(f"{field}.pitch_bytes", f"at least width * bytes per pixel = {w} * "
                                f"{channels * esize} = {row} ({name}; 0 = tightly packed)", pitch)
    if abs(pitch) > MAX_PITCH_BYTES:
        raise InvalidInputError(f"{field}.pitch_bytes", f"at most {MAX_PITCH_BYTES} bytes (STSS_MAX_PITCH_BYTES)",
                                pitch)
    if pitch % esize:
        raise InvalidInputError(f"{field}.pitch_bytes", f"a multiple of the element size, {esize} bytes ({name})",
                                pitch)
    address = int(ffi.cast("uintptr_t", img.data))
    if address % esize:
        raise InvalidInputError(f"{field}.data", f"an address aligned to {esize} bytes ({name})", f"{address:#x}")
    low, high = address + min(0, (h - 1) * pitch), address + max(0, (h - 1) * pitch) + row
    if low < _LOWEST_ADDRESS or high > 1 << (8 * _ffi.sizeof("void *")):
        raise InvalidInputError(f"{field}.data", f"a pointer whose {h} rows {pitch} bytes apart lie inside the "
                                "address space", f"{address:#x}")
    return name, channels, dtype, w, h, pitch


def _view(img, field: str, formats: dict[int, tuple[str, int, Any, str]],
          rect: tuple[int, int] | None = None) -> np.ndarray:
    """The (h, w, c) numpy view of a host-memory ``img`` (an ``stss_image`` cdata), checked;
    with ``rect`` (width, height) only its top-left part up to that size: the view never
    spans more than the plugin reads, so an image declared larger than it is costs nothing
    and is never read beyond the rectangle in use."""
    ffi = _ffi
    name, channels, dtype, w, h, pitch = _layout(img, field, formats)
    if rect is not None:
        w, h = min(w, rect[0]), min(h, rect[1])
    esize = np.dtype(dtype).itemsize
    row = w * channels * esize
    span = (h - 1) * abs(pitch) + row
    base = img.data if pitch > 0 else ffi.cast("char *", img.data) + (h - 1) * pitch
    buf = ffi.buffer(ffi.cast("char *", base), span)
    arr = np.ndarray((h, w, channels), dtype=dtype, buffer=buf, strides=(abs(pitch), channels * esize, esize))
    return arr if pitch > 0 else arr[::-1]


def cuda_array_interface(address: int, pitch: int, width: int, height: int, channels: int, dtype: Any) -> dict:
    """``__cuda_array_interface__`` (v3) of an (height, width, channels) image at device
    ``address`` with rows ``pitch`` bytes apart. A negative pitch (bottom-up rows, ``address``
    at the top row) describes the rows from the lowest address up: flip the result."""
    esize = np.dtype(dtype).itemsize
    base = address if pitch > 0 else address + (height - 1) * pitch
    return {"shape": (height, width, channels), "typestr": np.dtype(dtype).str, "data": (base, False),
            "strides": (abs(pitch), channels * esize, esize), "version": 3, "stream": None}


class _CudaImage:
    def __init__(self, interface: dict):
        self.__cuda_array_interface__ = interface


def _cuda_view(img, field: str, formats: dict[int, tuple[str, int, Any, str]], entry: _Entry,
               rect: tuple[int, int] | None = None):
    """The (h, w, c) torch view of an ``img`` in CUDA memory (no copy; flipped for a negative
    pitch), up to ``rect`` (width, height) as :func:`_view`."""
    import torch

    _, channels, dtype, w, h, pitch = _layout(img, field, formats)
    if rect is not None:
        w, h = min(w, rect[0]), min(h, rect[1])
    address = int(_ffi.cast("uintptr_t", img.data))
    t = torch.as_tensor(_CudaImage(cuda_array_interface(address, pitch, w, h, channels, dtype)),
                        device=entry.context.device)
    return t if pitch > 0 else t.flip(0)


def _interop(entry: _Entry, field: str):
    try:
        return entry.context.interop()
    except PluginError as e:
        raise BackendUnavailableError(f"{field}.memory: STSS_MEMORY_GL_TEXTURE needs CUDA-OpenGL interop, which "
                                      f"cannot run here: {e}") from None


def _gl_format(img, field: str, allowed: tuple[int, ...]):
    from .gl_interop import gl_format

    fmt = int(img.format)
    if fmt not in allowed:
        names = ", ".join(f"STSS_FORMAT_{FORMATS[k][0]} ({k})" for k in allowed)
        got = f"STSS_FORMAT_{FORMATS[fmt][0]} ({fmt})" if fmt in FORMATS else fmt
        raise InvalidInputError(f"{field}.format", f"one of {names} (a GL texture: CUDA-OpenGL interop maps 1, 2 or "
                                "4 channels)", got)
    w, h = int(img.width), int(img.height)
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"{field}.width/height", "the texture's positive size", f"{w}x{h}")
    if w > MAX_IMAGE_DIMENSION or h > MAX_IMAGE_DIMENSION:
        raise InvalidInputError(f"{field}.width/height", f"at most {MAX_IMAGE_DIMENSION}x{MAX_IMAGE_DIMENSION} "
                                "(STSS_MAX_IMAGE_DIMENSION)", f"{w}x{h}")
    return gl_format(*GL_FORMATS[fmt])[0], (w, h)


def _gl_view(img, field: str, entry: _Entry, rect: tuple[int, int] | None = None):
    """A GL texture handle's (h, w, c) tensor on the context's GPU, row 0 = top (only its
    ``rect`` at GL's origin, where ``glViewport(0, 0, w, h)`` draws)."""
    fmt, size = _gl_format(img, field, tuple(GL_FORMATS))
    return _interop(entry, field).read(int(img.gl_texture), size, fmt, field, rect=rect)


def _input(img, field: str, kind: str, required: bool, entry: _Entry, rect: tuple[int, int]):
    """An input image (None when optional and absent), in the shape the plugin takes: numpy
    for host memory, a torch tensor on the GPU for GPU handles; only its top-left ``rect``
    (width, height: the size this field must have) is viewed and read."""
    mem = _memory(img, field, entry)
    if not _given(img, mem):
        if not required:
            return None
        if mem == MEMORY_GL_TEXTURE:
            raise NullPointerError(f"{field}.gl_texture", "a GL texture name (0 is none)")
    want, kinds = _FIELDS[kind]
    allowed = want + ((4,) if want == (3,) else ())
    if mem == MEMORY_HOST:
        arr = _view(img, field, FORMATS, rect)
    elif mem == MEMORY_CUDA:
        arr = _cuda_view(img, field, FORMATS, entry, rect)
    else:
        arr = _gl_view(img, field, entry, rect)
    name, channels, _, fkind = FORMATS[int(img.format)]
    if channels not in allowed or fkind not in kinds:
        kind_words = " or ".join(kinds)
        raise InvalidInputError(f"{field}.format", f"a {'/'.join(map(str, allowed))}-channel {kind_words} format "
                                f"({_format_names(allowed, kinds)})", name)
    if channels > max(want):
        arr = arr[..., : max(want)]
    if fkind == "unorm":
        arr = (arr.astype(np.float32) if isinstance(arr, np.ndarray) else arr.float()) / 255.0
        return arr[..., 0] if arr.shape[-1] == 1 else arr
    if arr.shape[-1] == 1:
        # the runtime may keep this array's tensor (history): own the memory (tensors on the
        # GPU are copied by plugin.resources when they alias the engine's memory)
        return np.array(arr[..., 0], copy=True) if isinstance(arr, np.ndarray) else arr[..., 0]
    return arr


class _GLOutput:
    """An output GL texture, checked before the frame runs, written after."""

    def __init__(self, img, field: str, display: tuple[int, int], entry: _Entry):
        self.fmt, size = _gl_format(img, field, GL_OUTPUT_FORMATS)
        if size != display:
            raise InvalidInputError(f"{field}.width/height", f"the display size {display[0]}x{display[1]} "
                                    "(desc.display_width x display_height)", f"{size[0]}x{size[1]}")
        self.name, self.size, self.field, self.entry = int(img.gl_texture), size, field, entry
        _interop(entry, field).check(self.name, size, self.fmt, field, write=True)

    def write(self, image: Any) -> None:
        import torch

        device = self.entry.context.device
        src = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.asarray(image, np.float32))
        rgb = src[..., :3].to(device, torch.float32)
        rgba = torch.cat([rgb, torch.ones_like(rgb[..., :1])], -1)
        _interop(self.entry, self.field).write(self.name, self.size, self.fmt, rgba, self.field)


def _output_view(img, field: str, display: tuple[int, int], entry: _Entry):
    mem = _memory(img, field, entry)
    if mem == MEMORY_GL_TEXTURE:
        if not _given(img, mem):
            raise NullPointerError(f"{field}.gl_texture", "a GL texture name (0 is none)")
        return _GLOutput(img, field, display, entry)
    formats = {k: FORMATS[k] for k in OUTPUT_FORMATS}
    _, _, _, w, h, _ = _layout(img, field, formats)
    if (w, h) != display:  # checked before a view of the buffer exists
        raise InvalidInputError(f"{field}.width/height", f"the display size {display[0]}x{display[1]} "
                                "(desc.display_width x display_height)", f"{w}x{h}")
    return _view(img, field, formats) if mem == MEMORY_HOST else _cuda_view(img, field, formats, entry)


def _matrix(values) -> np.ndarray:
    """16 column-major doubles -> the (4, 4) matrix (column-vector convention)."""
    m = np.frombuffer(_ffi.buffer(values, 16 * 8), dtype=np.float64).reshape(4, 4)
    return m.T.copy()


def _gbuffers(src, prefix: str, entry: _Entry, rect: tuple[int, int]) -> dict[str, Any]:
    return {name: _input(getattr(src, name), f"{prefix}.{name}", name, name in entry.required, entry, rect)
            for name in _GBUFFERS}


def _declared_size(img, field: str, entry: _Entry) -> tuple[int, int]:
    """An image's declared (width, height), checked (pointer, format, size, pitch), unread."""
    mem = _memory(img, field, entry)
    if mem == MEMORY_GL_TEXTURE:
        if not _given(img, mem):
            raise NullPointerError(f"{field}.gl_texture", "a GL texture name (0 is none)")
        return _gl_format(img, field, tuple(GL_FORMATS))[1]
    _, _, _, w, h, _ = _layout(img, field, FORMATS)
    return w, h


def _frame(entry: _Entry, f) -> FrameDescription:
    """The frame description of an ``stss_frame_desc``. The render size is settled first,
    from the declared sizes alone, so that every image is then read only inside the
    rectangle the frame uses (render or display size)."""
    ffi, desc = _ffi, entry.desc
    mw, mh = desc.max_render_size
    rw, rh = int(f.render_width), int(f.render_height)
    render_size = None
    if (rw, rh) == (0, 0):
        cw, ch = _declared_size(f.color, "frame.color", entry)
        if cw > mw or ch > mh:
            raise InvalidInputError("frame.color.width/height", f"at most {mw}x{mh} (desc.max_render_width x "
                                    "max_render_height), or frame.render_width/height set to the rendered part",
                                    f"{cw}x{ch}")
        render = (cw, ch)
    else:
        if not (8 <= rw <= mw and 8 <= rh <= mh):
            raise InvalidInputError("frame.render_width/render_height", f"a render size of 8x8 .. {mw}x{mh} "
                                    "(desc.max_render_width x max_render_height), or 0, 0 for the colour image's size",
                                    f"{rw}x{rh}")
        render = render_size = (rw, rh)
    display = desc.display_size
    motion_rect = display if desc.display_res_motion else render
    color = _input(f.color, "frame.color", "color", True, entry, render)
    n, expected = int(f.generated_count), entry.context.next_generated_frames
    if n != expected:
        raise InvalidInputError("frame.generated_count", f"{expected} (desc.generated_frames)" if desc.generated_frames
                                != "auto" else f"{expected} (stss_next_generated_frames, for a "
                                f"{desc.target_display_hz:g} Hz target)", n)
    if n and f.generated == ffi.NULL:
        raise NullPointerError("frame.generated", f"a pointer to {n} stss_generated_desc")
    generated = []
    for k in range(n):
        g, name = f.generated[k], f"frame.generated[{k}]"
        generated.append(GeneratedFrameDescription(
            depth=_input(g.depth, f"{name}.depth", "depth", True, entry, render),
            motion=_input(g.motion, f"{name}.motion", "motion", "motion" in entry.required, entry, motion_rect),
            jitter_px=(float(g.jitter_x), float(g.jitter_y)), view=_matrix(g.view), proj=_matrix(g.proj),
            ui=_input(g.ui, f"{name}.ui", "ui", False, entry, display), **_gbuffers(g, name, entry, render)))
    optional = {name: _input(getattr(f, name), f"frame.{name}", name, False, entry,
                             display if name == "ui" else render)
                for name in ("reactive", "transparency", "hudless", "ui")}
    return FrameDescription(
        frame_index=int(f.frame_index), color=color,
        depth=_input(f.depth, "frame.depth", "depth", True, entry, render),
        motion=_input(f.motion, "frame.motion", "motion", "motion" in entry.required, entry, motion_rect),
        jitter_px=(float(f.jitter_x), float(f.jitter_y)), frame_time_ms=float(f.frame_time_ms),
        near=float(f.near_plane), far=math.inf if desc.infinite_far else float(f.far_plane),
        fov_y_rad=float(f.fov_y_rad), view=_matrix(f.view), proj=_matrix(f.proj),
        motion_scale=(float(f.motion_scale_x), float(f.motion_scale_y)), pre_exposure=float(f.pre_exposure),
        reset=bool(f.reset), render_size=render_size,
        render_time_ms=None if float(f.render_time_ms) == 0.0 else float(f.render_time_ms),
        prev_view=None if f.prev_view == ffi.NULL else _matrix(f.prev_view),
        prev_proj=None if f.prev_proj == ffi.NULL else _matrix(f.prev_proj),
        generated=tuple(generated), **_gbuffers(f, "frame", entry, render), **optional)


def _write(dst: Any, image: Any) -> None:
    """An output image into the caller's buffer: host memory, CUDA memory or a GL texture."""
    if isinstance(dst, _GLOutput):
        dst.write(image)
        return
    if isinstance(dst, np.ndarray):
        src = np.asarray(image.cpu() if hasattr(image, "cpu") else image, dtype=np.float32)
        dst[..., :3] = src[..., :3]
        if dst.shape[-1] == 4:
            dst[..., 3] = 1.0
        return
    import torch  # a tensor over the caller's CUDA memory

    src = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.asarray(image, np.float32))
    dst[..., :3].copy_(src[..., :3])
    if dst.shape[-1] == 4:
        dst[..., 3] = 1.0


def _dispatch(call: _Call, context, frame, output) -> None:
    t0 = time.perf_counter()
    ffi = _ffi
    _, entry = _entry(context, call)
    if frame == ffi.NULL:
        raise NullPointerError("frame", "a pointer to an stss_frame_desc (see stss_frame_desc_init)")
    if output == ffi.NULL:
        raise NullPointerError("output", "a pointer to an stss_dispatch_output")
    desc = _frame(entry, frame)
    # every output is checked before the context's state changes
    display = entry.desc.display_size
    out_color = _output_view(output.color, "output.color", display, entry)
    n = len(desc.generated)
    if int(output.generated_count) != n:
        raise InvalidInputError("output.generated_count", f"{n} (frame.generated_count)", int(output.generated_count))
    if n and output.generated == ffi.NULL:
        raise NullPointerError("output.generated", f"a pointer to {n} stss_generated_output")
    out_generated = [_output_view(output.generated[k].color, f"output.generated[{k}].color", display, entry)
                     for k in range(n)]
    result = entry.context.dispatch(desc)
    _write(out_color, result.output)
    for k, (dst, g) in enumerate(zip(out_generated, result.generated)):
        _write(dst, g.color)
        output.generated[k].present_time_ms = float(g.present_time_ms)
    if entry.context.device.type == "cuda" and not all(isinstance(o, np.ndarray) for o in [out_color, *out_generated]):
        import torch

        torch.cuda.synchronize(entry.context.device)  # GPU outputs are complete when stss_dispatch returns
    output.reset = int(result.reset)
    output.generated_frames, output.next_generated_frames = result.generated_frames, result.next_generated_frames
    output.warning_count = len(result.warnings)
    t = result.timings_ms
    output.inputs_ms, output.upscale_ms = t.get("inputs", 0.0), t.get("upscale", 0.0)
    output.generate_ms, output.ui_ms = t.get("generate", 0.0), t.get("ui", 0.0)
    output.total_ms = (time.perf_counter() - t0) * 1e3


# -- the build ---------------------------------------------------------------------------

#: Runs once inside the library when Python starts: the checkout and venv on sys.path,
#: then this module bound to the entry points. A failure is reported by every entry point
#: (STSS_RESULT_BACKEND_UNAVAILABLE and the reason), never printed.
_INIT_CODE = r'''
import sys

def _stss_paths():
    import site
    site_packages, repo = %(site_packages)r, %(repo)r
    if site_packages not in sys.path:
        site.addsitedir(site_packages)
    if repo not in sys.path:
        sys.path.insert(0, repo)

from %(module)s import ffi, lib

try:
    _stss_paths()
    from plugin import c_abi as _stss_c_abi
    _stss_c_abi.bind(ffi, lib)
except BaseException as _e:
    _stss_message = ("the plugin's Python side failed to load (%(repo)s, venv %(site_packages)s): %%s: %%s"
                     %% (type(_e).__name__, _e)).encode("utf-8", "replace")[:4000]

    def _stss_failed(*args):
        lib.stss__set_error(_stss_message)
        return %(tag)d + 4  # STSS_RESULT_BACKEND_UNAVAILABLE

    for _name in ("stss__py_init", "stss__py_query_capabilities", "stss__py_create", "stss__py_dispatch",
                  "stss__py_reset", "stss__py_release_gpu_resources", "stss__py_destroy",
                  "stss__py_next_generated_frames"):
        ffi.def_extern(name=_name, error=%(tag)d + 5)(_stss_failed)
'''


def _c_string(text: str) -> str:
    """``text`` as a C string literal (UTF-8; quotes, backslashes and non-printable bytes
    escaped in octal)."""
    out = []
    for b in text.encode("utf-8"):
        ch = chr(b)
        out.append(f"\\{ch}" if ch in '"\\' else ch if 32 <= b < 127 and ch != "?" else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _version() -> str:
    try:
        from importlib.metadata import version
        v = version("stss-plugin")
    except Exception:  # noqa: BLE001 - not installed: the source tree's version is unknown
        v = "0.0.0"
    return f"{v} (abi {ABI_VERSION})"


def build_config(python: str, libpython: str, version: str) -> str:
    """The text of ``stss_build_config.h``: what the build bakes into the library."""
    return ("/* stss_build_config.h - written by python -m plugin.c_abi --build: what this build of\n"
            " * libstss_plugin.so is tied to (see plugin/examples/README.md). Do not edit. */\n"
            "#ifndef STSS_BUILD_CONFIG_H\n#define STSS_BUILD_CONFIG_H\n"
            f"#define STSS__PYTHON_EXECUTABLE {_c_string(python)}\n"
            f"#define STSS__LIBPYTHON {_c_string(libpython)}\n"
            f"#define STSS__VERSION {_c_string(version)}\n"
            "#endif\n")


def build_missing() -> list[str]:
    """What :func:`build` needs and this machine lacks (empty when it can build): a C
    compiler, the running Python's headers, and a shared libpython to embed (an image whose
    Python is built without ``--enable-shared`` has only a static one)."""
    import shutil
    import sysconfig

    missing = []
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if shutil.which("gcc") is None:
        missing.append("gcc (a C compiler)")
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        missing.append(f"Python.h in {include} (the Python {version} headers, e.g. python{version}-dev)")
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY") or ""
    if ".so" not in soname or not (Path(libdir) / soname).exists():
        missing.append(f"a shared libpython{version} ({Path(libdir) / soname} is not one; e.g. "
                       f"libpython{version}, or a Python built with --enable-shared)")
    return missing


def build(out_dir: str | Path = DEFAULT_OUT, verbose: bool = False) -> Path:
    """Build ``libstss_plugin.so`` into ``out_dir`` for this checkout and the running
    interpreter's venv; returns its path. Compiles :data:`C_SOURCE` (``plugin/c/``) and
    cffi's generated ``_stss_plugin.c`` (the Python entry points and the init code); the
    baked-in paths and version go into ``out_dir/stss_build_config.h``, which
    ``stss_plugin.c`` includes."""
    import sysconfig

    import cffi

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    config = build_config(sys.executable, str(Path(libdir) / soname), _version())
    config_path = out_dir / BUILD_CONFIG
    if not config_path.exists() or config_path.read_text() != config:  # keep its date: no needless rebuild
        config_path.write_text(config)
    ffib = cffi.FFI()
    ffib.cdef(header_declarations())
    ffib.cdef(header_declarations(INTERNAL_HEADER, "cffi:cdef"))
    ffib.embedding_api(header_declarations(INTERNAL_HEADER, "cffi:embedding"))
    # cffi's module only needs the declarations; the C side is its own translation unit
    ffib.set_source(MODULE_NAME, f'#include "{INTERNAL_HEADER.name}"\n', sources=[str(C_SOURCE)],
                    include_dirs=[str(C_DIR), str(HEADER.parent), str(out_dir)],
                    extra_compile_args=["-O2", "-std=gnu11", "-Wall"],
                    extra_link_args=[f"-Wl,-rpath,{libdir}"], depends=[str(HEADER), str(INTERNAL_HEADER)])
    ffib.embedding_init_code(_INIT_CODE % {
        "site_packages": sysconfig.get_paths()["purelib"], "repo": str(REPO_ROOT), "module": MODULE_NAME,
        "tag": _TAG})
    path = ffib.compile(tmpdir=str(out_dir), target=LIBRARY_NAME, verbose=verbose)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugin.c_abi", description="Build the plugin's C ABI library.")
    parser.add_argument("--build", action="store_true", help="build libstss_plugin.so")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: build/plugin)")
    parser.add_argument("--verbose", action="store_true", help="show the compiler's commands")
    args = parser.parse_args(argv)
    if not args.build:
        parser.print_help()
        return 2
    t0 = time.perf_counter()
    path = build(args.out, verbose=args.verbose)
    print(f"built {path} in {time.perf_counter() - t0:.1f} s (header: {HEADER})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
