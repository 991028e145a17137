"""The C half of the malformed-call campaign, made from Python through cffi's ABI mode
(``ffi.dlopen`` of the library). Each malformed call runs in a forked child (so that a
crash is counted, not fatal) and is checked for the exact result code, a
``stss_last_error()`` that names the field and says what was expected and what came,
output buffers left unwritten, nothing printed, and the next correct frames bit-identical
to those of a context that never saw the bad call. Every executed case writes a record
(``campaign.write_c_record``) that ``test_campaign.py`` counts.

Loading a library that embeds CPython into a process that already runs Python works, but
leaves that process fragile (a later ``import torch._dynamo`` crashed in the full suite).
So this file is not collected with the suite: ``test_c_abi.py::test_the_malformed_call_table``
runs it in a process of its own.
"""
from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import select
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import plugin
from plugin import c_abi
from plugin.errors import Result

from . import campaign

pytestmark = pytest.mark.usefixtures("c_buildable")  # what make setup installs: missing, the cases fail

# the constants and the session's built library are test_c_abi.py's
from .test_c_abi import BACKEND_UNAVAILABLE, INVALID_ARGUMENT, INVALID_STATE, NULL_POINTER, OK, UNSUPPORTED, c_library  # noqa: E402,F401

RW, RH, DW, DH = 64, 40, 128, 80


# -- the ABI from Python (cffi ABI mode) ---------------------------------------------------------

class Abi:
    """``ffi`` / ``lib`` of the built library, and builders of valid calls."""

    def __init__(self, path: Path):
        import cffi

        self.ffi = cffi.FFI()
        self.ffi.cdef(c_abi.header_declarations())
        self.lib = self.ffi.dlopen(str(path))
        self.keep: list = []

    def error(self) -> str:
        return self.ffi.string(self.lib.stss_last_error()).decode()

    def image(self, arr: np.ndarray | None, fmt: int, pitch: int = 0):
        img = self.ffi.new("stss_image *")
        self.keep.append(img)
        if arr is not None:
            arr = np.ascontiguousarray(arr)
            self.keep.append(arr)
            img.data = self.ffi.cast("void *", arr.ctypes.data)
            img.height, img.width = arr.shape[:2]
        img.pitch_bytes = pitch
        img.format = fmt
        return img[0]

    def desc(self, pass_name: str = "bilinear", generated: int = 1, flags: int | None = None, **fields):
        d = self.ffi.new("stss_context_desc *")
        self.lib.stss_context_desc_init(d)
        d.max_render_width, d.max_render_height, d.display_width, d.display_height = RW, RH, DW, DH
        name = self.ffi.new("char[]", pass_name.encode())
        self.keep.append(name)
        d.pass_name = name
        d.generated_frames = generated
        if flags is not None:
            d.flags = flags
        for k, v in fields.items():
            setattr(d, k, v)
        return d

    def create(self, **kw):
        out = self.ffi.new("stss_context **")
        r = self.lib.stss_create(self.desc(**kw), out)
        assert r == OK, self.error()
        return out[0]

    def gbuffers(self, target, t: float, with_color: bool, depth: float = 5.0):
        lib = self.lib
        x = (np.arange(RW) + 0.5)[None, :] * 2 - 2 * t
        y = (np.arange(RH) + 0.5)[:, None] * 2
        rgb = np.stack([0.5 + 0.3 * np.sin(x / 5) + 0 * y, 0.5 + 0.3 * np.sin(y / 4) + 0 * x,
                        0.5 + 0 * x + 0 * y], -1).astype(np.float32)
        if with_color:
            target.color = self.image(rgb, lib.STSS_FORMAT_RGB32F)
        target.depth = self.image(np.full((RH, RW), depth, np.float32), lib.STSS_FORMAT_R32F)
        motion = np.zeros((RH, RW, 2), np.float32)
        motion[..., 0] = -0.5  # 1 render pixel per frame; the previous display frame is half a frame back
        target.motion = self.image(motion, lib.STSS_FORMAT_RG32F)
        target.albedo = self.image(rgb, lib.STSS_FORMAT_RGB32F)
        normal = np.zeros((RH, RW, 3), np.float32)
        normal[..., 2] = 1
        target.normal = self.image(normal, lib.STSS_FORMAT_RGB32F)
        target.roughness = self.image(np.full((RH, RW), 0.5, np.float32), lib.STSS_FORMAT_R32F)
        target.metallic = self.image(np.zeros((RH, RW), np.float32), lib.STSS_FORMAT_R32F)
        target.object_id = self.image(np.ones((RH, RW), np.int32), lib.STSS_FORMAT_R32I)
        return rgb

    def frame(self, index: int = 0, generated: int = 1, depth: float = 5.0):
        f = self.ffi.new("stss_frame_desc *")
        self.keep.append(f)
        self.lib.stss_frame_desc_init(f)
        f.frame_index = index
        self.gbuffers(f, index, True, depth)
        f.jitter_x, f.jitter_y = plugin.jitter_offset(2 * index, 32)
        f.frame_time_ms, f.near_plane, f.far_plane, f.fov_y_rad = 33.3, 0.1, 100.0, 1.0
        g = self.ffi.new("stss_generated_desc[]", max(generated, 1))
        self.keep.append(g)
        for k in range(generated):
            self.lib.stss_generated_desc_init(g + k)
            self.gbuffers(g[k], index + (k + 1) / (generated + 1), False, depth)
            g[k].jitter_x, g[k].jitter_y = plugin.jitter_offset((generated + 1) * index + k + 1, 32)
        f.generated = g if generated else self.ffi.NULL
        f.generated_count = generated
        return f

    def output(self, generated: int = 1, fmt: int | None = None):
        out = self.ffi.new("stss_dispatch_output *")
        buf = np.full((DH, DW, 4), -1.0, np.float32)
        self.keep.append(buf)
        out.color = self.image(buf, self.lib.STSS_FORMAT_RGBA32F if fmt is None else fmt)
        g = self.ffi.new("stss_generated_output[]", max(generated, 1))
        self.keep.append(g)
        out.generated = g
        out.generated_count = generated
        gbufs = []
        for k in range(generated):
            gb = np.full((DH, DW, 3), -1.0, np.float32)
            gbufs.append(gb)
            g[k].color = self.image(gb, self.lib.STSS_FORMAT_RGB32F)
        self.keep.extend(gbufs)
        return out, buf, gbufs


@pytest.fixture(scope="module")
def abi(c_library) -> Abi:
    return Abi(c_library)


def test_constants_match_the_python_api(abi):
    lib = abi.lib
    for r in Result:
        assert getattr(lib, f"STSS_RESULT_{r.name}") == int(r)
    assert lib.STSS_ABI_VERSION == lib.stss_abi_version() == c_abi.ABI_VERSION
    assert abi.ffi.string(lib.stss_version()).decode().endswith(f"(abi {c_abi.ABI_VERSION})")
    for value, (name, channels, dtype, _) in c_abi.FORMATS.items():
        assert getattr(lib, f"STSS_FORMAT_{name}") == value
        assert lib.stss_format_bytes_per_pixel(value) == channels * np.dtype(dtype).itemsize
    assert lib.stss_format_bytes_per_pixel(99) == 0
    for flag in ("HDR", "INVERTED_DEPTH", "INFINITE_FAR", "JITTERED_MOTION", "DISPLAY_RES_MOTION",
                 "DEPTH_IS_DEVICE", "VALIDATION"):
        assert getattr(lib, f"STSS_FLAG_{flag}") == getattr(c_abi, f"FLAG_{flag}")


def test_pure_c_helpers_match_the_python_helpers(abi):
    lib, ffi = abi.lib, abi.ffi
    assert lib.stss_jitter_phase_count(RW, DW) == plugin.jitter_phase_count(RW, DW) == 32
    assert lib.stss_jitter_phase_count(960, 1440) == plugin.jitter_phase_count(960, 1440)
    x, y = ffi.new("double *"), ffi.new("double *")
    for i in (0, 1, 7, 31, 32, 1000):
        lib.stss_jitter_offset(i, 32, x, y)
        assert (x[0], y[0]) == pytest.approx(plugin.jitter_offset(i, 32), abs=1e-12)
    f = ffi.new("stss_frame_desc *")
    lib.stss_frame_desc_init(f)
    assert (f.motion_scale_x, f.pre_exposure, f.view[0], f.view[1], f.proj[15]) == (1.0, 1.0, 1.0, 0.0, 1.0)
    d = ffi.new("stss_context_desc *")
    lib.stss_context_desc_init(d)
    assert (d.generated_frames, d.flags, d.pass_name) == (1, lib.STSS_FLAG_HDR, ffi.NULL)


def test_capabilities_json_and_the_size_protocol(abi, capfd):
    lib, ffi = abi.lib, abi.ffi
    needed = ffi.new("size_t *")
    assert lib.stss_query_capabilities(ffi.NULL, 0, needed) == OK
    n = needed[0]
    small = ffi.new("char[]", 16)
    assert lib.stss_query_capabilities(small, 16, needed) == INVALID_ARGUMENT
    assert needed[0] == n and "capacity" in abi.error() and str(n) in abi.error()
    assert small[0] == b"\0"
    assert lib.stss_query_capabilities(ffi.NULL, 0, ffi.NULL) == NULL_POINTER and "needed" in abi.error()
    assert lib.stss_query_capabilities(ffi.NULL, 10, needed) == NULL_POINTER and "json_out" in abi.error()
    buf = ffi.new("char[]", n)
    assert lib.stss_query_capabilities(buf, n, ffi.NULL) == OK and abi.error() == ""
    caps = json.loads(ffi.string(buf).decode())
    assert caps == json.loads(json.dumps(plugin.capabilities()))
    assert capfd.readouterr().err == ""


def test_dispatch_writes_the_callers_buffers(abi, capfd):
    lib = abi.lib
    ctx = abi.create(pass_name="bilinear")
    for i in range(3):
        out, buf, gbufs = abi.output()
        assert lib.stss_dispatch(ctx, abi.frame(i), out) == OK, abi.error()
        assert abi.error() == ""
        assert np.isfinite(buf).all() and (buf[..., 3] == 1).all() and buf[..., :3].min() >= 0
        assert np.isfinite(gbufs[0]).all() and gbufs[0].min() >= 0
        assert out.generated[0].present_time_ms == pytest.approx(33.3 / 2)
        assert out.total_ms >= out.upscale_ms > 0 and out.reset == (i == 0)
    assert lib.stss_reset(ctx) == OK
    assert lib.stss_destroy(ctx) == OK
    assert capfd.readouterr().err == ""


def test_three_generated_frames_and_a_count_chosen_per_frame(abi):
    """4x: three outputs, presented at 1/4, 2/4 and 3/4 of the frame time, each a new picture;
    STSS_GENERATED_FRAMES_AUTO: stss_next_generated_frames says the count, the output reports it."""
    lib, ffi = abi.lib, abi.ffi
    ctx = abi.create(pass_name="warp_fill", generated=3)
    count = ffi.new("int32_t *")
    assert lib.stss_next_generated_frames(ctx, count) == OK and count[0] == 3
    for i in range(2):
        out, buf, gbufs = abi.output(3)
        assert lib.stss_dispatch(ctx, abi.frame(i, 3), out) == OK, abi.error()
        assert [out.generated[k].present_time_ms for k in range(3)] == pytest.approx([33.3 / 4, 33.3 / 2, 33.3 * 3 / 4])
        assert (out.generated_frames, out.next_generated_frames) == (3, 3)
        pictures = [buf[..., :3]] + gbufs
        assert all(np.isfinite(p).all() and p.min() >= 0 for p in pictures)
        assert all(not np.array_equal(a, b) for a, b in zip(pictures, pictures[1:]))
    lib.stss_destroy(ctx)
    ctx = abi.create(pass_name="bilinear", generated=lib.STSS_GENERATED_FRAMES_AUTO, target_display_hz=120.0)
    seen = []
    for i, render_ms in enumerate((33.3, 33.3, 8.0, 8.0, 8.0, 8.0, 8.0)):
        assert lib.stss_next_generated_frames(ctx, count) == OK
        n = count[0]
        f = abi.frame(i, n)
        f.render_time_ms = render_ms
        out, _, _ = abi.output(n)
        assert lib.stss_dispatch(ctx, f, out) == OK, abi.error()
        assert out.generated_frames == n
        seen.append(n)
        assert lib.stss_next_generated_frames(ctx, count) == OK and count[0] == out.next_generated_frames
    # 1 before any render time; 3 at 30 rendered frames per second; fewer as rendering speeds up
    assert seen[:3] == [1, 3, 3] and seen[-1] < 3, seen
    lib.stss_destroy(ctx)
    assert lib.stss_next_generated_frames(ctx, count) == INVALID_STATE


def test_pitch_and_formats_give_the_same_picture(abi):
    """Padded rows, bottom-up rows (negative pitch), RGBA16F colour and RGBA output: one picture."""
    lib, ffi = abi.lib, abi.ffi
    results = []
    for variant in ("packed", "padded", "bottom_up", "half"):
        ctx = abi.create(pass_name="bilinear", generated=0)
        f = abi.frame(0, generated=0)
        rgb = np.frombuffer(ffi.buffer(f.color.data, RW * RH * 12), np.float32).reshape(RH, RW, 3).copy()
        if variant == "padded":
            padded = np.zeros((RH, RW + 7, 3), np.float32)
            padded[:, :RW] = rgb
            f.color = abi.image(padded, lib.STSS_FORMAT_RGB32F, pitch=(RW + 7) * 12)
            f.color.width = RW
        elif variant == "bottom_up":
            flipped = np.ascontiguousarray(rgb[::-1])
            abi.keep.append(flipped)
            f.color = abi.image(flipped, lib.STSS_FORMAT_RGB32F, pitch=-RW * 12)
            f.color.data = ffi.cast("char *", flipped.ctypes.data) + (RH - 1) * RW * 12
        elif variant == "half":
            rgba = np.concatenate([rgb, np.ones((RH, RW, 1), np.float32)], -1).astype(np.float16)
            f.color = abi.image(rgba, lib.STSS_FORMAT_RGBA16F)
        out, buf, _ = abi.output(generated=0, fmt=lib.STSS_FORMAT_RGBA32F)
        assert lib.stss_dispatch(ctx, f, out) == OK, (variant, abi.error())
        results.append(buf[..., :3].copy())
        lib.stss_destroy(ctx)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_allclose(results[0], results[3], atol=2e-3)


def test_message_callback_gets_validation_warnings(abi):
    lib, ffi = abi.lib, abi.ffi
    got = []

    @ffi.callback("stss_message_callback")
    def on_message(severity, message, user):
        got.append((severity, ffi.string(message).decode(), int(ffi.cast("uintptr_t", user))))

    ctx = abi.create(pass_name="bilinear", flags=lib.STSS_FLAG_HDR | lib.STSS_FLAG_VALIDATION,
                     message_callback=on_message, message_user=ffi.cast("void *", 42))
    f = abi.frame(0)
    f.jitter_x = f.jitter_y = 0.0
    out, _, _ = abi.output()
    assert lib.stss_dispatch(ctx, f, out) == OK, abi.error()
    assert out.warning_count == 1
    assert got and got[0][0] == lib.STSS_SEVERITY_WARNING and got[0][2] == 42
    assert "frame.jitter_x/jitter_y" in got[0][1]
    lib.stss_destroy(ctx)


# -- malformed calls -----------------------------------------------------------------------------

def _set(obj, **fields):
    for k, v in fields.items():
        setattr(obj, k, v)


def _nan_color(abi, f, out):
    rgb = np.full((RH, RW, 3), 0.5, np.float32)
    rgb[3, 5, 1] = np.nan
    f.color = abi.image(rgb, abi.lib.STSS_FORMAT_RGB32F)


def _small_depth(abi, f, out):
    f.depth = abi.image(np.full((RH // 2, RW // 2), 5.0, np.float32), abi.lib.STSS_FORMAT_R32F)


def _large_color(abi, f, out):
    f.color = abi.image(np.full((RH, RW + 16, 3), 0.5, np.float32), abi.lib.STSS_FORMAT_RGB32F)


def _misaligned(abi, f, out):
    f.color.data = abi.ffi.cast("char *", f.color.data) + 2


def _nan_view(abi, f, out):
    f.view[5] = math.nan


def _wrong_output_size(abi, f, out):
    out.color.width = DW // 2


def _null(image: str):
    """Set ``frame.<image>.data`` or ``output.<image>.data`` to NULL."""
    def mutate(abi, f, out):
        obj, name = image.split(".")
        getattr(f if obj == "frame" else out, name).data = abi.ffi.NULL
    return mutate


def _output_generated_null(abi, f, out):
    out.generated[0].color.data = abi.ffi.NULL


def _frame_generated_null(abi, f, out):
    f.generated = abi.ffi.NULL


#: (case, mutation of a valid (frame, output), result, words stss_last_error() must contain)
DISPATCH_CASES = [
    ("null_color_data", _null("frame.color"), NULL_POINTER, ["frame.color.data", "NULL"]),
    ("null_depth_data", _null("frame.depth"), NULL_POINTER, ["frame.depth.data"]),
    ("null_motion_data", _null("frame.motion"), NULL_POINTER, ["frame.motion.data"]),
    ("null_generated", _frame_generated_null, NULL_POINTER, ["frame.generated"]),
    ("null_output_buffer", _null("output.color"), NULL_POINTER, ["output.color.data"]),
    ("null_generated_output_buffer", _output_generated_null, NULL_POINTER, ["output.generated[0].color.data"]),
    ("pitch_too_small", lambda a, f, o: _set(f.color, pitch_bytes=RW * 12 - 12), INVALID_ARGUMENT,
     ["frame.color.pitch_bytes", str(RW * 12), str(RW * 12 - 12)]),
    ("pitch_not_element_multiple", lambda a, f, o: _set(f.depth, pitch_bytes=RW * 4 + 2), INVALID_ARGUMENT,
     ["frame.depth.pitch_bytes", "4 bytes", str(RW * 4 + 2)]),
    ("output_pitch_too_small", lambda a, f, o: _set(o.color, pitch_bytes=DW * 12), INVALID_ARGUMENT,
     ["output.color.pitch_bytes", str(DW * 16)]),
    ("unknown_format", lambda a, f, o: _set(f.color, format=99), INVALID_ARGUMENT, ["frame.color.format", "99"]),
    ("format_zero", lambda a, f, o: _set(f.motion, format=0), INVALID_ARGUMENT, ["frame.motion.format"]),
    ("wrong_channel_count", lambda a, f, o: _set(f.depth, format=a.lib.STSS_FORMAT_RG32F, width=RW // 2),
     INVALID_ARGUMENT, ["frame.depth.format", "RG32F"]),
    ("integer_depth", lambda a, f, o: _set(f.depth, format=a.lib.STSS_FORMAT_R32I), INVALID_ARGUMENT,
     ["frame.depth.format", "R32I"]),
    ("output_format", lambda a, f, o: _set(o.color, format=a.lib.STSS_FORMAT_R32F, width=DW * 4), INVALID_ARGUMENT,
     ["output.color.format", "RGBA32F", "got STSS_FORMAT_R32F"]),
    ("negative_width", lambda a, f, o: _set(f.color, width=-RW), INVALID_ARGUMENT, ["frame.color.width/height"]),
    ("color_larger_than_max_render", _large_color, INVALID_ARGUMENT, ["frame.color.width/height", "64x40", "80x40"]),
    ("depth_smaller_than_color", _small_depth, INVALID_ARGUMENT, ["frame.depth", "64x40", "32x20"]),
    ("render_size_beyond_max", lambda a, f, o: _set(f, render_width=RW * 2, render_height=RH), INVALID_ARGUMENT,
     ["frame.render_width/render_height", "128x40"]),
    ("output_not_display_size", _wrong_output_size, INVALID_ARGUMENT, ["output.color.width/height", "128x80"]),
    ("misaligned_data", _misaligned, INVALID_ARGUMENT, ["frame.color.data", "aligned"]),
    ("nan_in_color", _nan_color, INVALID_ARGUMENT, ["frame.color", "1 NaN"]),
    ("nan_in_view", _nan_view, INVALID_ARGUMENT, ["frame.view"]),
    ("jitter_outside", lambda a, f, o: _set(f, jitter_x=0.7), INVALID_ARGUMENT, ["frame.jitter_x/jitter_y", "0.7"]),
    ("generated_jitter_outside", lambda a, f, o: _set(f.generated[0], jitter_y=-0.9), INVALID_ARGUMENT,
     ["frame.generated[0].jitter_x/jitter_y"]),
    ("frame_time_in_seconds", lambda a, f, o: _set(f, frame_time_ms=0.016), INVALID_ARGUMENT,
     ["frame.frame_time_ms", "seconds"]),
    ("near_not_positive", lambda a, f, o: _set(f, near_plane=0.0), INVALID_ARGUMENT, ["frame.near_plane"]),
    ("far_before_near", lambda a, f, o: _set(f, far_plane=0.05), INVALID_ARGUMENT, ["frame.far_plane"]),
    ("fov_in_degrees", lambda a, f, o: _set(f, fov_y_rad=60.0), INVALID_ARGUMENT, ["frame.fov_y_rad"]),
    ("frame_index_gap", lambda a, f, o: _set(f, frame_index=f.frame_index + 3), INVALID_ARGUMENT,
     ["frame.frame_index", "reset = 1"]),
    ("generated_count", lambda a, f, o: _set(f, generated_count=0), INVALID_ARGUMENT, ["frame.generated_count"]),
    ("output_generated_count", lambda a, f, o: _set(o, generated_count=2), INVALID_ARGUMENT,
     ["output.generated_count"]),
    ("motion_scale_nan", lambda a, f, o: _set(f, motion_scale_y=math.nan), INVALID_ARGUMENT,
     ["frame.motion_scale_x/motion_scale_y"]),
    # GPU handles on a context that runs on the CPU
    ("cuda_pointer_on_cpu_context", lambda a, f, o: _set(f.color, memory=a.lib.STSS_MEMORY_CUDA), UNSUPPORTED,
     ["frame.color.memory", "got STSS_MEMORY_CUDA (1)", 'desc.device = "cuda"', 'runs on "cpu"']),
    ("gl_texture_on_cpu_context", lambda a, f, o: _set(f.depth, memory=a.lib.STSS_MEMORY_GL_TEXTURE, gl_texture=3),
     UNSUPPORTED, ["frame.depth.memory", "got STSS_MEMORY_GL_TEXTURE (2)"]),
    ("gpu_handle_in_generated_frame", lambda a, f, o: _set(f.generated[0].motion, memory=a.lib.STSS_MEMORY_CUDA),
     UNSUPPORTED, ["frame.generated[0].motion.memory", "STSS_MEMORY_CUDA"]),
    ("gpu_output_on_cpu_context", lambda a, f, o: _set(o.color, memory=a.lib.STSS_MEMORY_GL_TEXTURE, gl_texture=4),
     UNSUPPORTED, ["output.color.memory", "STSS_MEMORY_GL_TEXTURE"]),
    ("unknown_memory", lambda a, f, o: _set(f.motion, memory=7), INVALID_ARGUMENT,
     ["frame.motion.memory", "STSS_MEMORY_HOST (0)", "got 7", "uninitialised"]),
]


# -- more malformed dispatches: item by item ---------------------------------------------------

INT32_MAX = 2 ** 31 - 1


def _matrix_set(name: str, value: float | None, index: int | None = None, generated: bool = False):
    """Set one element (or, with ``index`` None, all 16) of ``frame.<name>`` / ``frame.generated[0].<name>``."""
    def mutate(abi, f, out):
        m = getattr(f.generated[0] if generated else f, name)
        for i in range(16) if index is None else (index,):
            m[i] = value
    return mutate


def _rank3_view(abi, f, out):
    for col in range(4):
        f.view[col * 4 + 2] = 0.0  # row 2 (column-major)


def _prev_zero(abi, f, out):
    m = abi.ffi.new("double[16]")
    abi.keep.append(m)
    f.prev_view = m


def _image_of(abi, f, out, path: str):
    obj = f
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj.generated[0] if part == "generated" else getattr(obj, part)
    return obj, parts[-1]


def _replace(path: str, shape: tuple[int, ...], fmt: str, value: float = 0.5, nan: bool = False, dtype=np.float32):
    """``path`` ("frame.depth", "frame.generated.motion", "output.color"...) becomes a new image."""
    def mutate(abi, f, out):
        arr = np.full(shape, value, dtype)
        if nan:
            arr[(3, 5) + (0,) * (arr.ndim - 2)] = np.nan
        root = out if path.startswith("output.") else f
        obj, name = _image_of(abi, root, out, path.split(".", 1)[1])
        setattr(obj, name, abi.image(arr, getattr(abi.lib, f"STSS_FORMAT_{fmt}")))
    return mutate


def _declare(path: str, **fields):
    """Change the declared fields (width, height, pitch_bytes, data, format, ...) of an image."""
    def mutate(abi, f, out):
        root = out if path.startswith("output.") else f
        obj, name = _image_of(abi, root, out, path.split(".", 1)[1])
        img = getattr(obj, name)
        for k, v in fields.items():
            setattr(img, k, abi.ffi.cast("void *", v) if k == "data" else v)
    return mutate


#: (C field, mutation) for a NaN / Inf in every number and matrix of a frame
_NUMBERS = [("frame.jitter_x/jitter_y", "jitter_x"), ("frame.jitter_x/jitter_y", "jitter_y"),
            ("frame.motion_scale_x/motion_scale_y", "motion_scale_x"),
            ("frame.motion_scale_x/motion_scale_y", "motion_scale_y"), ("frame.frame_time_ms", "frame_time_ms"),
            ("frame.near_plane", "near_plane"), ("frame.far_plane", "far_plane"), ("frame.fov_y_rad", "fov_y_rad"),
            ("frame.pre_exposure", "pre_exposure")]
_GENERATED_NUMBERS = [("frame.generated[0].jitter_x/jitter_y", "jitter_x"),
                      ("frame.generated[0].jitter_x/jitter_y", "jitter_y")]
#: Every image a frame can carry, with its shape and format
_IMAGES = {"color": ((RH, RW, 3), "RGB32F"), "depth": ((RH, RW), "R32F"), "motion": ((RH, RW, 2), "RG32F"),
           "albedo": ((RH, RW, 3), "RGB32F"), "normal": ((RH, RW, 3), "RGB32F"), "roughness": ((RH, RW), "R32F"),
           "metallic": ((RH, RW), "R32F"), "hudless": ((RH, RW, 3), "RGB32F"), "reactive": ((RH, RW), "R32F"),
           "transparency": ((RH, RW), "R32F"), "ui": ((DH, DW, 4), "RGBA32F")}
_GENERATED_IMAGES = ("depth", "motion", "albedo", "normal", "roughness", "metallic")


def _non_finite_cases() -> list:
    cases = []
    for bad_name, bad in (("nan", math.nan), ("inf", math.inf)):
        for field, attr in _NUMBERS:
            cases.append((f"{attr}_{bad_name}", lambda a, f, o, attr=attr, bad=bad: setattr(f, attr, bad),
                          INVALID_ARGUMENT, [field]))
        for field, attr in _GENERATED_NUMBERS:
            cases.append((f"generated_{attr}_{bad_name}",
                          lambda a, f, o, attr=attr, bad=bad: setattr(f.generated[0], attr, bad), INVALID_ARGUMENT,
                          [field]))
        for name, index in (("view", 5), ("proj", 0)):
            cases.append((f"{name}_{bad_name}", _matrix_set(name, bad, index), INVALID_ARGUMENT, [f"frame.{name}",
                                                                                                    "finite"]))
            cases.append((f"generated_{name}_{bad_name}", _matrix_set(name, bad, 3 + index, generated=True),
                          INVALID_ARGUMENT, [f"frame.generated[0].{name}", "finite"]))
    for name, (shape, fmt) in _IMAGES.items():
        cases.append((f"nan_pixel_in_{name}", _replace(f"frame.{name}", shape, fmt, nan=True), INVALID_ARGUMENT,
                      [f"frame.{name}", "NaN"]))
    for name in _GENERATED_IMAGES:
        shape, fmt = _IMAGES[name]
        cases.append((f"nan_pixel_in_generated_{name}", _replace(f"frame.generated.{name}", shape, fmt, nan=True),
                      INVALID_ARGUMENT, [f"frame.generated[0].{name}", "NaN"]))
    return cases


MORE_DISPATCH_CASES = [
    # camera matrices that cannot be inverted
    ("zero_view", _matrix_set("view", 0.0), INVALID_ARGUMENT, ["frame.view", "invertible", "all zeros"]),
    ("zero_proj", _matrix_set("proj", 0.0), INVALID_ARGUMENT, ["frame.proj", "invertible", "all zeros"]),
    ("zero_generated_view", _matrix_set("view", 0.0, generated=True), INVALID_ARGUMENT,
     ["frame.generated[0].view", "invertible"]),
    ("zero_generated_proj", _matrix_set("proj", 0.0, generated=True), INVALID_ARGUMENT,
     ["frame.generated[0].proj", "invertible"]),
    ("rank3_view", _rank3_view, INVALID_ARGUMENT, ["frame.view", "rank 3"]),
    ("zero_prev_view", _prev_zero, INVALID_ARGUMENT, ["frame.prev_view", "invertible"]),
    # declared sizes, pitches and pointers beyond what can be read
    ("depth_declared_2_20", _declare("frame.depth", width=1 << 20, height=1 << 20), INVALID_ARGUMENT,
     ["frame.depth.width/height", "STSS_MAX_IMAGE_DIMENSION", "1048576x1048576"]),
    ("color_declared_int32_max", _declare("frame.color", width=INT32_MAX, height=INT32_MAX), INVALID_ARGUMENT,
     ["frame.color.width/height", "16384x16384"]),
    ("motion_width_int32_max", _declare("frame.motion", width=INT32_MAX), INVALID_ARGUMENT,
     ["frame.motion.width/height", "STSS_MAX_IMAGE_DIMENSION"]),
    ("generated_depth_height_int32_max", _declare("frame.generated.depth", height=INT32_MAX), INVALID_ARGUMENT,
     ["frame.generated[0].depth.width/height"]),
    ("ui_declared_2_20", _declare("frame.ui", data=0x10000, width=1 << 20, height=8, format=4), INVALID_ARGUMENT,
     ["frame.ui.width/height", "STSS_MAX_IMAGE_DIMENSION"]),
    ("output_declared_int32_max", _declare("output.color", width=INT32_MAX, height=INT32_MAX), INVALID_ARGUMENT,
     ["output.color.width/height", "STSS_MAX_IMAGE_DIMENSION"]),
    ("generated_output_declared_2_20", lambda a, f, o: _set(o.generated[0].color, width=1 << 20), INVALID_ARGUMENT,
     ["output.generated[0].color.width/height"]),
    ("depth_height_zero", _declare("frame.depth", height=0), INVALID_ARGUMENT,
     ["frame.depth.width/height", "positive"]),
    ("pitch_2_40", _declare("frame.color", pitch_bytes=1 << 40), INVALID_ARGUMENT,
     ["frame.color.pitch_bytes", "STSS_MAX_PITCH_BYTES", str(1 << 40)]),
    ("pitch_minus_2_40", _declare("frame.depth", pitch_bytes=-(1 << 40)), INVALID_ARGUMENT,
     ["frame.depth.pitch_bytes", "STSS_MAX_PITCH_BYTES"]),
    ("pitch_int64_min", _declare("frame.motion", pitch_bytes=-(2 ** 63)), INVALID_ARGUMENT,
     ["frame.motion.pitch_bytes"]),
    ("output_pitch_2_40", _declare("output.color", pitch_bytes=1 << 40), INVALID_ARGUMENT,
     ["output.color.pitch_bytes", "STSS_MAX_PITCH_BYTES"]),
    ("pointer_in_the_first_page", _declare("frame.depth", data=16), INVALID_ARGUMENT,
     ["frame.depth.data", "address space", "0x10"]),
    ("pointer_wrapping_the_address_space", _declare("frame.color", data=2 ** 64 - 4096), INVALID_ARGUMENT,
     ["frame.color.data", "address space"]),
    ("bottom_up_rows_below_address_zero", _declare("frame.depth", data=0x10000, pitch_bytes=-(1 << 19)),
     INVALID_ARGUMENT, ["frame.depth.data", "address space"]),
    ("output_pointer_in_the_first_page", _declare("output.color", data=64), INVALID_ARGUMENT,
     ["output.color.data", "address space"]),
    ("render_width_negative", lambda a, f, o: _set(f, render_width=-RW, render_height=RH), INVALID_ARGUMENT,
     ["frame.render_width/render_height", f"-{RW}x{RH}"]),
    ("render_height_only", lambda a, f, o: _set(f, render_width=0, render_height=RH), INVALID_ARGUMENT,
     ["frame.render_width/render_height", f"0x{RH}"]),
    ("render_width_int32_max", lambda a, f, o: _set(f, render_width=INT32_MAX, render_height=RH), INVALID_ARGUMENT,
     ["frame.render_width/render_height"]),
    ("ui_at_render_size", _replace("frame.ui", (RH, RW, 4), "RGBA32F", 0.0), INVALID_ARGUMENT, ["frame.ui", "128x80"]),
    ("hudless_smaller", _replace("frame.hudless", (RH // 2, RW, 3), "RGB32F"), INVALID_ARGUMENT,
     ["frame.hudless", "64x20"]),
    ("generated_normal_smaller", _replace("frame.generated.normal", (RH, RW // 2, 3), "RGB32F"), INVALID_ARGUMENT,
     ["frame.generated[0].normal", "32x40"]),
    # formats an image cannot have
    ("depth_rgba", _replace("frame.depth", (RH, RW, 4), "RGBA32F"), INVALID_ARGUMENT, ["frame.depth.format",
                                                                                          "RGBA32F"]),
    ("motion_r32f", _replace("frame.motion", (RH, RW), "R32F"), INVALID_ARGUMENT, ["frame.motion.format", "R32F"]),
    ("normal_unorm", _replace("frame.normal", (RH, RW, 4), "RGBA8_UNORM", 1, dtype=np.uint8), INVALID_ARGUMENT,
     ["frame.normal.format", "RGBA8_UNORM"]),
    ("object_id_rgb", _replace("frame.object_id", (RH, RW, 3), "RGB32F", 1.0), INVALID_ARGUMENT,
     ["frame.object_id.format", "RGB32F"]),
    ("ui_rgb", _replace("frame.ui", (DH, DW, 3), "RGB32F", 0.0), INVALID_ARGUMENT, ["frame.ui.format", "RGB32F"]),
    ("generated_motion_rgba16f", _replace("frame.generated.motion", (RH, RW, 4), "RGBA16F", 0, dtype=np.float16),
     INVALID_ARGUMENT, ["frame.generated[0].motion.format", "RGBA16F"]),
    ("color_format_negative", _declare("frame.color", format=-1), INVALID_ARGUMENT, ["frame.color.format", "-1"]),
    ("output_rgba16f", _declare("output.color", format=7), INVALID_ARGUMENT, ["output.color.format", "RGBA16F"]),
    # values out of range, counts, memory kinds
    ("object_id_fractional", _replace("frame.object_id", (RH, RW), "R32F", 1.5), INVALID_ARGUMENT,
     ["frame.object_id", "integer ids"]),
    ("reactive_above_1", _replace("frame.reactive", (RH, RW), "R32F", 2.0), INVALID_ARGUMENT,
     ["frame.reactive", "[0, 1]"]),
    ("ui_alpha_above_1", _replace("frame.ui", (DH, DW, 4), "RGBA32F", 2.0), INVALID_ARGUMENT,
     ["frame.ui", "alpha in [0, 1]"]),
    ("depth_negative", _replace("frame.depth", (RH, RW), "R32F", -1.0), INVALID_ARGUMENT,
     ["frame.depth", "positive linear view depth"]),
    ("frame_time_negative", lambda a, f, o: _set(f, frame_time_ms=-16.0), INVALID_ARGUMENT,
     ["frame.frame_time_ms", "positive"]),
    ("fov_zero", lambda a, f, o: _set(f, fov_y_rad=0.0), INVALID_ARGUMENT, ["frame.fov_y_rad"]),
    ("pre_exposure_negative", lambda a, f, o: _set(f, pre_exposure=-1.0), INVALID_ARGUMENT, ["frame.pre_exposure"]),
    ("pre_exposure_overflowing", lambda a, f, o: _set(f, pre_exposure=1e-300), INVALID_ARGUMENT,
     ["frame.pre_exposure", "finite"]),
    ("far_equal_near", lambda a, f, o: _set(f, far_plane=0.1), INVALID_ARGUMENT, ["frame.far_plane", "greater"]),
    ("generated_jitter_x_outside", lambda a, f, o: _set(f.generated[0], jitter_x=0.75), INVALID_ARGUMENT,
     ["frame.generated[0].jitter_x/jitter_y", "0.75"]),
    ("frame_index_back", lambda a, f, o: _set(f, frame_index=0), INVALID_ARGUMENT, ["frame.frame_index", "reset = 1"]),
    ("frame_index_int64_min", lambda a, f, o: _set(f, frame_index=-(2 ** 63)), INVALID_ARGUMENT,
     ["frame.frame_index", str(-(2 ** 63))]),
    ("generated_count_negative", lambda a, f, o: _set(f, generated_count=-1), INVALID_ARGUMENT,
     ["frame.generated_count", "-1"]),
    ("output_generated_count_negative", lambda a, f, o: _set(o, generated_count=-1), INVALID_ARGUMENT,
     ["output.generated_count"]),
    ("null_generated_depth", lambda a, f, o: _set(f.generated[0].depth, data=a.ffi.NULL), NULL_POINTER,
     ["frame.generated[0].depth.data"]),
    ("null_generated_motion", lambda a, f, o: _set(f.generated[0].motion, data=a.ffi.NULL), NULL_POINTER,
     ["frame.generated[0].motion.data"]),
    ("output_unknown_memory", _declare("output.color", memory=9), INVALID_ARGUMENT, ["output.color.memory", "got 9"]),
    ("gl_texture_zero_on_cpu_context", _declare("frame.ui", memory=2, gl_texture=0), UNSUPPORTED,
     ["frame.ui.memory", "STSS_MEMORY_GL_TEXTURE"]),
] + _non_finite_cases()


@dataclass(frozen=True)
class Config:
    """The context a case runs on: its pass, generated frames, flags and the depth the
    correct frames carry. ``generated`` STSS_GENERATED_FRAMES_AUTO (-1) with ``target_hz``:
    ``schedule`` are the counts the context asks for frame by frame (the last repeats)."""

    pass_name: str = "bilinear"
    generated: int = 1
    flags: int = 0x1  # STSS_FLAG_HDR
    depth: float = 5.0
    target_hz: float = 0.0
    schedule: tuple = ()

    def count(self, n: int) -> int:
        """The generated frames of frame ``n``."""
        return self.schedule[min(n, len(self.schedule) - 1)] if self.schedule else self.generated

    def create(self, abi: "Abi"):
        return abi.create(pass_name=self.pass_name, generated=self.generated, flags=self.flags,
                          target_display_hz=self.target_hz)


#: A context at 4x (three generated frames per rendered one), and one whose count is chosen
#: per frame: 120 Hz from frames 33.3 ms apart takes 1 (before any render time), then 3.
X4 = Config(generated=3)
AUTO = Config(generated=-1, target_hz=120.0, schedule=(1, 3))

#: Cases that need another context than the bilinear one.
CONFIGS = {
    "zero_view": Config("stss"), "zero_generated_view": Config("stss"), "depth_declared_2_20": Config("stss"),
    "ldr_colour_above_1": Config(flags=0), "device_depth_outside": Config(flags=0x21, depth=0.9),
    "nan_pixel_in_generated_albedo": Config("stss"),
    **{k: X4 for k in ("x4_two_generated", "x4_four_generated", "x4_output_count_short", "x4_third_jitter_outside",
                        "x4_null_third_motion", "x4_next_count_null")},
    "x4_stss_second_depth_nan": Config("stss", 3),
    "x4_interpolation_two_generated": Config("vfi_cheap", 3),
    **{k: AUTO for k in ("auto_one_generated", "auto_render_time_negative", "auto_render_time_nan",
                         "auto_output_count_mismatch")},
}

def _generated_count(n: int):
    """The frame hands ``n`` generated-frame descriptions over (a fresh array of them)."""
    def mutate(abi, f, out):
        g = abi.frame(f.frame_index, n)
        f.generated, f.generated_count = g.generated, n
    return mutate


def _next_count_null(abi, f, out):
    """stss_next_generated_frames with a NULL count, before the (then correct) frame."""
    ctx = abi.current
    r = abi.lib.stss_next_generated_frames(ctx, abi.ffi.NULL)
    raise _Refused(r, abi.error())


class _Refused(Exception):
    """A case whose malformed call is not stss_dispatch: its result code and message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _nan_in(path: str, k: int, shape, fmt: str):
    def mutate(abi, f, out):
        arr = np.full(shape, 5.0, np.float32)
        arr[(3, 5) + (0,) * (arr.ndim - 2)] = np.nan
        setattr(f.generated[k], path, abi.image(arr, getattr(abi.lib, f"STSS_FORMAT_{fmt}")))
    return mutate


EXTRA_CASES = [
    ("x4_two_generated", _generated_count(2), INVALID_ARGUMENT,
     ["frame.generated_count", "3 (desc.generated_frames)", "got 2"]),
    ("x4_four_generated", _generated_count(4), INVALID_ARGUMENT, ["frame.generated_count", "3", "got 4"]),
    ("x4_output_count_short", lambda a, f, o: _set(o, generated_count=2), INVALID_ARGUMENT,
     ["output.generated_count", "3 (frame.generated_count)", "got 2"]),
    ("x4_third_jitter_outside", lambda a, f, o: _set(f.generated[2], jitter_x=0.6), INVALID_ARGUMENT,
     ["frame.generated[2].jitter_x/jitter_y", "0.6"]),
    ("x4_null_third_motion", lambda a, f, o: _set(f.generated[2].motion, data=a.ffi.NULL), NULL_POINTER,
     ["frame.generated[2].motion.data"]),
    ("x4_stss_second_depth_nan", _nan_in("depth", 1, (RH, RW), "R32F"), INVALID_ARGUMENT,
     ["frame.generated[1].depth", "NaN"]),
    ("x4_interpolation_two_generated", _generated_count(2), INVALID_ARGUMENT, ["frame.generated_count", "got 2"]),
    ("x4_next_count_null", _next_count_null, NULL_POINTER, ["count", "NULL"]),
    ("auto_one_generated", _generated_count(1), INVALID_ARGUMENT,
     ["frame.generated_count", "3 (stss_next_generated_frames, for a 120 Hz target)", "got 1"]),
    ("auto_render_time_negative", lambda a, f, o: _set(f, render_time_ms=-2.0), INVALID_ARGUMENT,
     ["frame.render_time_ms", "or 0 (none)", "-2.0"]),
    ("auto_render_time_nan", lambda a, f, o: _set(f, render_time_ms=math.nan), INVALID_ARGUMENT,
     ["frame.render_time_ms", "finite"]),
    ("auto_output_count_mismatch", lambda a, f, o: _set(o, generated_count=1), INVALID_ARGUMENT,
     ["output.generated_count", "3 (frame.generated_count)"]),
    ("ldr_colour_above_1", _replace("frame.color", (RH, RW, 3), "RGB32F", 3.0), INVALID_ARGUMENT,
     ["frame.color", "STSS_FLAG_HDR not set"]),
    ("device_depth_outside", _replace("frame.depth", (RH, RW), "R32F", 5.0), INVALID_ARGUMENT,
     ["frame.depth", "device depth in [0, 1]", "STSS_FLAG_DEPTH_IS_DEVICE"]),
]

ALL_DISPATCH_CASES = DISPATCH_CASES + MORE_DISPATCH_CASES + EXTRA_CASES

#: (case, fields of a valid stss_context_desc to change, result, words): stss_create
CREATE_CASES = [
    ("unknown_pass", {"pass_name": "nope"}, UNSUPPORTED, ["desc.pass_name", "'nope'", "stss"]),
    ("unknown_flags", {"flags": 0x100}, INVALID_ARGUMENT, ["desc.flags", "0x100"]),
    ("all_flag_bits", {"flags": 0xFFFFFFFF}, INVALID_ARGUMENT, ["desc.flags", "0xffffffff"]),
    ("render_larger_than_display", {"max_render_width": DW * 2}, INVALID_ARGUMENT,
     ["desc.max_render_width/max_render_height"]),
    ("tiny_display", {"display_width": 4}, INVALID_ARGUMENT, ["desc.display_width/display_height", "8x8"]),
    ("four_generated_frames", {"generated_frames": 4}, UNSUPPORTED,
     ["desc.generated_frames", "0 to 3", "STSS_GENERATED_FRAMES_AUTO (-1)", "got 4"]),
    ("negative_generated_frames", {"generated_frames": -2}, UNSUPPORTED, ["desc.generated_frames", "-2"]),
    ("auto_without_target", {"generated_frames": -1}, INVALID_ARGUMENT,
     ["desc.target_display_hz", "above 0", "got 0.0"]),
    ("auto_target_nan", {"generated_frames": -1, "target_display_hz": math.nan}, INVALID_ARGUMENT,
     ["desc.target_display_hz", "nan"]),
    ("auto_target_negative", {"generated_frames": -1, "target_display_hz": -60.0}, INVALID_ARGUMENT,
     ["desc.target_display_hz", "-60.0"]),
    ("target_with_fixed_count", {"generated_frames": 3, "target_display_hz": 120.0}, INVALID_ARGUMENT,
     ["desc.target_display_hz", "0 unless generated_frames = STSS_GENERATED_FRAMES_AUTO", "120.0"]),
    ("auto_with_interpolation", {"generated_frames": -1, "target_display_hz": 120.0, "pass_name": "vfi_cheap"},
     UNSUPPORTED, ["desc.generated_frames", "a fixed count for pass 'vfi_cheap'", "got STSS_GENERATED_FRAMES_AUTO (-1)"]),
    ("unknown_precision", {"precision": "fp8"}, UNSUPPORTED, ["desc.precision", "fp8"]),
    ("unknown_backend", {"backend": "vulkan"}, UNSUPPORTED, ["desc.backend", "vulkan"]),
    ("unknown_device", {"device": "tpu"}, UNSUPPORTED, ["desc.device", "tpu"]),
    ("pass_name_not_utf8", {"pass_name": b"\xff\xfe"}, INVALID_ARGUMENT, ["desc.pass_name", "UTF-8"]),
    ("every_size_int32_max", {"max_render_width": INT32_MAX, "max_render_height": INT32_MAX,
                              "display_width": INT32_MAX, "display_height": INT32_MAX}, INVALID_ARGUMENT,
     ["desc.max_render_width/max_render_height", "STSS_MAX_IMAGE_DIMENSION"]),
    ("display_2_20", {"display_width": 1 << 20, "display_height": 1 << 20}, INVALID_ARGUMENT,
     ["desc.display_width/display_height", "at most 16384x16384", "1048576x1048576"]),
    ("max_render_negative", {"max_render_width": -RW}, INVALID_ARGUMENT,
     ["desc.max_render_width/max_render_height", "at least 8x8"]),
    ("display_int32_min", {"display_height": -(2 ** 31)}, INVALID_ARGUMENT, ["desc.display_width/display_height"]),
]
if not plugin.capabilities()["backends"]["tensorrt"]["available"]:  # refused at create, not at the first dispatch
    CREATE_CASES.append(("tensorrt_where_it_cannot_run", {"backend": "tensorrt", "pass_name": "stss"},
                         BACKEND_UNAVAILABLE, ["desc.backend", "'tensorrt'", "stss_query_capabilities"]))


# -- running a case in a forked child --------------------------------------------------------------

def in_child(fn: Callable[[], dict], timeout: float = 120.0) -> dict:
    """``fn()`` in a forked child: its JSON-able result, plus ``printed`` (what the child
    wrote on stdout and stderr); ``crashed`` says how a child that gave no result died."""
    fd, printed_path = tempfile.mkstemp(prefix="stss_case_")
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(r)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                result = fn()
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                result = {"exception": f"{type(e).__name__}: {e}"}
            data = memoryview(json.dumps(result).encode())
            while data:
                data = data[os.write(w, data):]
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    os.close(fd)
    chunks, deadline, killed = [], time.monotonic() + timeout, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            killed = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    printed = Path(printed_path).read_text(errors="replace")
    os.unlink(printed_path)
    if killed:
        return {"crashed": f"no answer within {timeout:.0f} s", "printed": printed}
    if os.WIFSIGNALED(status):
        return {"crashed": f"killed by signal {os.WTERMSIG(status)}", "printed": printed}
    if not chunks:
        return {"crashed": f"exited with status {os.WEXITSTATUS(status)} and no result", "printed": printed}
    result = json.loads(b"".join(chunks))
    result["printed"] = printed
    return result


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _good_frames(abi: Abi, ctx, cfg: Config, indices) -> list:
    """Dispatch correct frames ``indices``: the digest of each one's outputs, or its error."""
    digests = []
    for n in indices:
        out, buf, gbufs = abi.output(cfg.count(n))
        r = abi.lib.stss_dispatch(ctx, abi.frame(n, cfg.count(n), cfg.depth), out)
        digests.append(_digest(buf, *gbufs) + f"/{out.warning_count}/{out.reset}/{out.generated_frames}/"
                       f"{out.next_generated_frames}" if r == OK else f"result {r}: {abi.error()}")
    return digests


def _dispatch_case(abi: Abi, cfg: Config, mutate) -> dict:
    """In a child: frame 0, then frame 1 with ``mutate`` applied (None: unchanged), then frames 1 and 2."""
    ctx = abi.current = cfg.create(abi)
    first = _good_frames(abi, ctx, cfg, [0])
    result = {"code": OK, "message": ""}
    if mutate is not None:
        f = abi.frame(1, cfg.count(1), cfg.depth)
        out, buf, gbufs = abi.output(cfg.count(1))
        try:
            mutate(abi, f, out)
            result["code"] = int(abi.lib.stss_dispatch(ctx, f, out))
            result["message"] = abi.error()
        except _Refused as e:  # the malformed call was another function's
            result["code"], result["message"] = e.code, e.message
        result["untouched"] = bool((buf == -1).all() and all((g == -1).all() for g in gbufs))
    result["after"] = first + _good_frames(abi, ctx, cfg, [1, 2])
    return result


def _create_case(abi: Abi, fields: dict | None) -> dict:
    """In a child: stss_create with ``fields`` changed (None: unchanged), then a correct
    context's frames 0, 1, 2."""
    ffi, cfg = abi.ffi, Config()
    result = {"code": OK, "message": "", "untouched": True}
    if fields is not None:
        d = abi.desc()
        for k, v in fields.items():
            if isinstance(v, (str, bytes)):
                v = ffi.new("char[]", v.encode() if isinstance(v, str) else v)
                abi.keep.append(v)
            setattr(d, k, v)
        out = ffi.new("stss_context **", ffi.cast("stss_context *", 77))
        result["code"] = int(abi.lib.stss_create(d, out))
        result["message"] = abi.error()
        result["untouched"] = out[0] == ffi.NULL  # *out is NULL after a failure
    ctx = abi.create(pass_name=cfg.pass_name, generated=cfg.generated, flags=cfg.flags)
    result["after"] = _good_frames(abi, ctx, cfg, [0, 1, 2])
    return result


_REFERENCE: dict = {}


def _reference(abi: Abi, key, make: Callable[[], dict]) -> list:
    if key not in _REFERENCE:
        ref = in_child(make)
        assert "after" in ref and ref["printed"] == "", ref
        _REFERENCE[key] = ref["after"]
    return _REFERENCE[key]


def _judge(case_id: str, kind: str, result: dict, code: int, words: list[str], reference: list) -> dict:
    message = result.get("message", "")
    crashed = "crashed" in result or "exception" in result
    record = {"id": f"c:{kind}:{case_id}", "interface": "c", "code": result.get("code"), "expected_code": code,
              "message": message or result.get("crashed") or result.get("exception", ""),
              "named": (not crashed and message.startswith(words[0]) and "expected" in message and "got" in message
                        and all(w in message for w in words)),
              "state_changed": (not crashed and (result.get("after") != reference or not result.get("untouched"))),
              "crashed": crashed, "printed": result.get("printed", "")}
    campaign.write_c_record(record)
    return record


def _assert(record: dict, code: int) -> None:
    assert not record["crashed"], record
    assert (record["code"], record["named"]) == (code, True), (record["code"], record["message"])
    assert not record["state_changed"], f"the next correct frames differ from a clean context's: {record}"
    assert record["printed"] == "", record["printed"]
    assert record["code"] != int(Result.INTERNAL)


@pytest.mark.parametrize("mutate, code, words", [c[1:] for c in ALL_DISPATCH_CASES],
                         ids=[c[0] for c in ALL_DISPATCH_CASES])
def test_malformed_dispatch(abi, request, mutate, code, words):
    case_id = request.node.callspec.id
    cfg = CONFIGS.get(case_id, Config())
    reference = _reference(abi, ("dispatch", cfg), lambda: _dispatch_case(abi, cfg, None))
    _assert(_judge(case_id, "dispatch", in_child(lambda: _dispatch_case(abi, cfg, mutate)), code, words, reference),
            code)


@pytest.mark.parametrize("fields, code, words", [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES])
def test_malformed_create(abi, request, fields, code, words):
    reference = _reference(abi, ("create",), lambda: _create_case(abi, None))
    _assert(_judge(request.node.callspec.id, "create", in_child(lambda: _create_case(abi, fields)), code, words,
                   reference), code)


def test_case_ids_are_unique():
    ids = [c[0] for c in ALL_DISPATCH_CASES] + [c[0] for c in CREATE_CASES]
    assert len(ids) == len(set(ids))


# -- an image declared larger than its buffer: only the rectangle in use is read -----------------

def _guarded(nbytes: int) -> tuple[Any, int]:
    """``nbytes`` of memory whose next byte is an inaccessible page (a read past the end is
    a segmentation fault): (the mapping, to keep alive, and the address of the first byte)."""
    import ctypes

    page = mmap.PAGESIZE
    size = (nbytes + page - 1) // page * page
    region = mmap.mmap(-1, size + page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    assert libc.mprotect(base + size, page, 0) == 0, ctypes.get_errno()  # PROT_NONE
    return region, base + size - nbytes


@pytest.mark.parametrize("field", ["depth", "roughness", "object_id", "color"])
def test_an_image_declared_larger_than_its_buffer_is_read_only_where_used(abi, field):
    """The buffer holds exactly the render size, followed by an inaccessible page; the
    image declares 50 times as many rows (as an engine reusing a larger allocation's
    description would). The frame uses the render size: nothing beyond it is read, and the
    outputs are those of the exactly sized image (before, single-channel images were copied
    at their declared size: a read past the buffer)."""
    lib = abi.lib
    shape, fmt = {"depth": ((RH, RW), "R32F"), "roughness": ((RH, RW), "R32F"), "object_id": ((RH, RW), "R32I"),
                  "color": ((RH, RW, 3), "RGB32F")}[field]

    def run(guarded: bool) -> dict:
        ctx = abi.create(pass_name="bilinear", generated=0)
        f = abi.frame(0, 0)
        f.render_width, f.render_height = RW, RH
        if guarded:
            img = getattr(f, field)
            nbytes = RH * RW * lib.stss_format_bytes_per_pixel(getattr(lib, f"STSS_FORMAT_{fmt}"))
            region, address = _guarded(nbytes)
            abi.keep.append(region)
            abi.ffi.memmove(abi.ffi.cast("void *", address), img.data, nbytes)
            img.data = abi.ffi.cast("void *", address)
            img.height = RH * 50
        out, buf, _ = abi.output(0)
        r = lib.stss_dispatch(ctx, f, out)
        return {"code": int(r), "message": abi.error(), "digest": _digest(buf)}

    plain, guarded = in_child(lambda: run(False)), in_child(lambda: run(True))
    assert "crashed" not in guarded and "exception" not in guarded, guarded
    assert guarded["code"] == OK and guarded["digest"] == plain["digest"], (guarded, plain)
    assert guarded["printed"] == ""


def test_a_crash_in_a_child_is_counted_not_fatal():
    """The harness itself: a child that dies by a signal is reported, not fatal."""
    import faulthandler

    def crash():
        faulthandler.disable()  # (pytest's traceback dump would go to the terminal)
        os.kill(os.getpid(), signal.SIGSEGV)

    assert in_child(crash)["crashed"] == f"killed by signal {signal.SIGSEGV}"


@pytest.fixture(scope="module")
def live(abi):
    """A bilinear context that has dispatched frame 0 (so index gaps are detectable)."""
    ctx = abi.create(pass_name="bilinear")
    out, _, _ = abi.output()
    assert abi.lib.stss_dispatch(ctx, abi.frame(0), out) == OK, abi.error()
    yield ctx
    abi.lib.stss_destroy(ctx)


def test_last_error_is_per_thread(abi, live):
    """A failure on one thread is not cleared by a success on another."""
    import threading

    barrier, results = threading.Barrier(2, timeout=60), {}
    frame, (out, _, _) = abi.frame(1), abi.output()
    frame.frame_time_ms = 0.016

    def failing():
        r = abi.lib.stss_dispatch(live, frame, out)
        barrier.wait()  # the other thread succeeds now
        barrier.wait()
        results["failing"] = (r, abi.error())

    def succeeding():
        barrier.wait()
        needed = abi.ffi.new("size_t *")
        results["succeeding"] = (abi.lib.stss_query_capabilities(abi.ffi.NULL, 0, needed), abi.error())
        barrier.wait()

    threads = [threading.Thread(target=failing), threading.Thread(target=succeeding)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["succeeding"] == (OK, "")
    assert results["failing"][0] == INVALID_ARGUMENT and "frame.frame_time_ms" in results["failing"][1]


def test_null_arguments_of_dispatch(abi, live, capfd):
    lib, ffi = abi.lib, abi.ffi
    out, _, _ = abi.output()
    f = abi.frame(1)
    for args, field in (((ffi.NULL, f, out), "context"), ((live, ffi.NULL, out), "frame"),
                        ((live, f, ffi.NULL), "output")):
        assert lib.stss_dispatch(*args) == NULL_POINTER
        assert abi.error().startswith(f"{field}: expected") and "NULL" in abi.error()
    assert capfd.readouterr().err == ""


def test_stss_pass_needs_its_gbuffers(abi, capfd):
    ctx = abi.create(pass_name="stss")
    f = abi.frame(0)
    f.albedo.data = abi.ffi.NULL
    out, _, _ = abi.output()
    assert abi.lib.stss_dispatch(ctx, f, out) == NULL_POINTER
    assert "frame.albedo.data" in abi.error()
    g = abi.frame(0)
    g.generated[0].normal.data = abi.ffi.NULL
    assert abi.lib.stss_dispatch(ctx, g, out) == NULL_POINTER
    assert "frame.generated[0].normal.data" in abi.error()
    assert abi.lib.stss_destroy(ctx) == OK
    assert capfd.readouterr().err == ""


def test_cuda_without_a_gpu_is_backend_unavailable(abi, capfd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    d = abi.desc()
    device = abi.ffi.new("char[]", b"cuda")
    d.device = device
    out = abi.ffi.new("stss_context **")
    assert abi.lib.stss_create(d, out) == BACKEND_UNAVAILABLE
    assert "desc.device" in abi.error() and "CUDA" in abi.error()
    assert capfd.readouterr().err == ""


def test_null_arguments_of_create(abi, capfd):
    lib, ffi = abi.lib, abi.ffi
    out = ffi.new("stss_context **")
    assert lib.stss_create(ffi.NULL, out) == NULL_POINTER
    assert abi.error().startswith("desc: expected")
    assert lib.stss_create(abi.desc(), ffi.NULL) == NULL_POINTER
    assert abi.error().startswith("out: expected")
    assert capfd.readouterr().err == ""


def test_handles_after_destroy(abi, capfd):
    lib, ffi = abi.lib, abi.ffi
    ctx = abi.create()
    handle = int(ffi.cast("uintptr_t", ctx))
    assert lib.stss_destroy(ctx) == OK and abi.error() == ""
    out, buf, _ = abi.output()
    assert lib.stss_dispatch(ctx, abi.frame(0), out) == INVALID_STATE
    assert f"context {handle} was destroyed" in abi.error()
    assert (buf == -1).all()
    assert lib.stss_reset(ctx) == INVALID_STATE and "destroyed" in abi.error()
    assert lib.stss_destroy(ctx) == INVALID_STATE and f"context {handle} was destroyed" in abi.error()
    assert lib.stss_destroy(ffi.NULL) == NULL_POINTER and abi.error().startswith("context: expected")
    assert lib.stss_reset(ffi.cast("stss_context *", 0xDEAD0000)) == INVALID_STATE
    assert "not a context of this library" in abi.error()
    assert capfd.readouterr().err == ""


def test_an_unexpected_exception_is_internal_and_silent(abi, capfd, monkeypatch):
    """Anything that is not a PluginError: STSS_RESULT_INTERNAL, the type and message, no traceback."""
    ctx = abi.create()

    def boom(self, frame):
        raise ZeroDivisionError("a bug deep inside")

    monkeypatch.setattr(plugin.Context, "dispatch", boom)
    out, _, _ = abi.output()
    assert abi.lib.stss_dispatch(ctx, abi.frame(0), out) == int(Result.INTERNAL)
    assert abi.error() == "stss_dispatch: internal error: ZeroDivisionError: a bug deep inside"
    monkeypatch.undo()
    assert abi.lib.stss_destroy(ctx) == OK
    captured = capfd.readouterr()
    assert captured.err == "" and "Traceback" not in captured.out


# -- GPU handles on a CUDA context (need a GPU: skipped here, saying so) ----------------------------

GPU_REASON = "needs a CUDA GPU (GPU handles: CUDA pointers, GL textures through CUDA-OpenGL interop); none here"


def _cuda_desc(abi, **kw):
    d = abi.desc(**kw)
    device = abi.ffi.new("char[]", b"cuda")
    abi.keep.append(device)
    d.device = device
    return d


def _to_cuda(abi, img):
    """Replace a host stss_image by a CUDA copy of it (same format, packed rows)."""
    name, channels, dtype, _ = c_abi.FORMATS[int(img.format)]
    h, w = int(img.height), int(img.width)
    host = np.frombuffer(abi.ffi.buffer(img.data, h * w * channels * np.dtype(dtype).itemsize), dtype)
    t = torch.from_numpy(host.reshape(h, w, channels).copy()).cuda()
    abi.keep.append(t)
    img.data = abi.ffi.cast("void *", t.data_ptr())
    img.pitch_bytes = 0
    img.memory = abi.lib.STSS_MEMORY_CUDA
    return t


def _interop_here() -> bool:
    from plugin import gl_interop

    return gl_interop.availability()[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason=GPU_REASON)
def test_gpu_handles_give_the_host_pictures(abi):
    lib, ffi = abi.lib, abi.ffi
    results = []
    for gpu in (False, True):
        out = ffi.new("stss_context **")
        assert lib.stss_create(_cuda_desc(abi, pass_name="bilinear", generated=1), out) == OK, abi.error()
        ctx, pictures = out[0], []
        for i in range(3):
            f = abi.frame(i)
            o, buf, gbufs = abi.output()
            if gpu:
                for img in (f.color, f.depth, f.motion, f.generated[0].depth, f.generated[0].motion):
                    _to_cuda(abi, img)
                dst = torch.full((DH, DW, 4), -1.0, device="cuda")
                abi.keep.append(dst)
                o.color.data, o.color.memory = ffi.cast("void *", dst.data_ptr()), lib.STSS_MEMORY_CUDA
            assert lib.stss_dispatch(ctx, f, o) == OK, abi.error()
            pictures.append((dst.cpu().numpy() if gpu else buf.copy(), gbufs[0].copy()))
        assert lib.stss_destroy(ctx) == OK
        results.append(pictures)
    for (a, ga), (b, gb) in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-5)
        np.testing.assert_allclose(ga, gb, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available() or not _interop_here(), reason=GPU_REASON)
def test_gl_texture_handles_give_the_host_pictures(abi, gl):
    if "NVIDIA" not in gl.info.get("GL_RENDERER", ""):
        pytest.skip(f"{GPU_REASON} (the GL context here is {gl.info.get('GL_RENDERER')})")
    lib, ffi = abi.lib, abi.ffi
    textures, results = [], []
    for use_gl in (False, True):
        out = ffi.new("stss_context **")
        assert lib.stss_create(_cuda_desc(abi, pass_name="bilinear", generated=0), out) == OK, abi.error()
        ctx = out[0]
        f = abi.frame(0, generated=0)
        o, buf, _ = abi.output(generated=0)
        if use_gl:  # the motion vectors and the output as GL textures (GL rows bottom-up)
            m = np.frombuffer(ffi.buffer(f.motion.data, RW * RH * 8), np.float32).reshape(RH, RW, 2)
            tex = gl.texture((RW, RH), 2, np.ascontiguousarray(m[::-1]).tobytes(), dtype="f4")
            target = gl.texture((DW, DH), 4, dtype="f4")
            textures += [tex, target]
            f.motion.memory, f.motion.gl_texture = lib.STSS_MEMORY_GL_TEXTURE, tex.glo
            o.color.memory, o.color.gl_texture = lib.STSS_MEMORY_GL_TEXTURE, target.glo
        assert lib.stss_dispatch(ctx, f, o) == OK, abi.error()
        if use_gl:
            picture = np.frombuffer(target.read(), np.float32).reshape(DH, DW, 4)[::-1]
        else:
            picture = buf.copy()
        assert lib.stss_release_gpu_resources(ctx) == OK
        assert lib.stss_destroy(ctx) == OK
        results.append(picture)
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)
    for t in textures:
        t.release()
