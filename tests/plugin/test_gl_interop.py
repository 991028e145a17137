"""CUDA-OpenGL interop (``plugin/gl_interop.py``).

There is no GPU on this project's machines, so the interop path is run here against a
stand-in for cuda-python's runtime (``HostRuntime``): its "CUDA arrays" are the texture's
bytes in host memory, in GL row order, exactly as ``Texture.read`` returns them, and its
2-D copies honour every offset, width, height and pitch they are given. That checks what
this code computes (registration cache, map / unmap pairing, which rows and columns are
copied, the row flip, format and size checks, errors) and that the result is the host
path's, byte for byte. Whether the real driver does the same on a real texture needs a
CUDA GPU that also runs the OpenGL context: those tests skip here, saying so.
"""

from __future__ import annotations

import ctypes
import gc
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import plugin
from plugin import gl_interop
from plugin.gl_interop import GLInterop, GLInteropError
from plugin.resources import _to_torch

GPU_REASON = "needs a CUDA GPU whose NVIDIA driver also runs the OpenGL context (CUDA-OpenGL interop); none here"


# -- a stand-in runtime over host memory -------------------------------------------------------

class _Array:
    def __init__(self, data: np.ndarray, fmt: tuple[int, int, str], size: tuple[int, int]):
        self.data = data  # (H, W * bytes per pixel) uint8, GL row order (row 0 = bottom)
        self.fmt = fmt  # (components, bits, kind)
        self.size = size


class HostRuntime:
    """The calls :class:`GLInterop` makes, with cuda-python's return convention ((err, ...)
    tuples) and argument order, over host memory. ``textures``: GL name -> moderngl texture
    (or a (size, components, bits, kind, bytes) tuple for formats moderngl cannot make)."""

    KINDS = {"float": 2, "unsigned": 1, "signed": 0}

    def __init__(self, textures: dict):
        self.textures = textures
        self.calls: list[str] = []
        self.fail: dict[str, int] = {}  # call name -> error code to return
        self.resources: dict[int, int] = {}  # handle -> GL name
        self.mapped: set[int] = set()
        self.arrays: dict[int, _Array] = {}
        self.writes: dict[int, np.ndarray] = {}  # GL name -> bytes written through a mapped array
        self._next = 100

    def _ret(self, name, *values):
        self.calls.append(name)
        if name in self.fail:
            return (self.fail[name],) + (None,) * len(values)
        return (0,) + values

    def count(self, name: str) -> int:
        return self.calls.count(name)

    def cudaGetErrorName(self, err):
        return 0, {700: b"cudaErrorIllegalAddress", 999: b"cudaErrorUnknown", 304: b"cudaErrorOperatingSystem"}.get(
            int(err), b"cudaErrorInvalidValue")

    def cudaGetErrorString(self, err):
        return 0, b"an error the stand-in runtime was told to return"

    def cudaSetDevice(self, index):
        assert isinstance(index, int)
        return self._ret("cudaSetDevice")

    def cudaGraphicsGLRegisterImage(self, name, target, flags):
        assert isinstance(name, int) and target == gl_interop.GL_TEXTURE_2D and flags in (1, 2)
        if "cudaGraphicsGLRegisterImage" in self.fail:
            return self._ret("cudaGraphicsGLRegisterImage", None)
        self._next += 1
        self.resources[self._next] = name
        return self._ret("cudaGraphicsGLRegisterImage", self._next)

    def cudaGraphicsUnregisterResource(self, resource):
        assert resource in self.resources and resource not in self.mapped
        del self.resources[resource]
        return self._ret("cudaGraphicsUnregisterResource")

    def cudaGraphicsMapResources(self, count, resource, stream):
        assert count == 1 and isinstance(stream, int) and resource in self.resources and resource not in self.mapped
        r = self._ret("cudaGraphicsMapResources")
        if r[0] == 0:
            self.mapped.add(resource)
        return r

    def cudaGraphicsUnmapResources(self, count, resource, stream):
        assert count == 1 and isinstance(stream, int) and resource in self.mapped
        self.mapped.discard(resource)
        name = self.resources[resource]
        array = self.arrays.pop(resource, None)
        if array is not None and array.fmt[3:] == ("written",):
            self.writes[name] = array.data
        return self._ret("cudaGraphicsUnmapResources")

    def _texture(self, name):
        tex = self.textures[name]
        if isinstance(tex, tuple):
            size, comps, bits, kind, data = tex
        else:
            dtype, bits, kind, _ = gl_interop.MODERNGL_DTYPES[tex.dtype]
            size, comps, data = tex.size, tex.components, tex.read()
        return size, comps, bits, kind, data

    def cudaGraphicsSubResourceGetMappedArray(self, resource, index, level):
        assert resource in self.mapped and (index, level) == (0, 0)
        size, comps, bits, kind, data = self._texture(self.resources[resource])
        w, h = size
        raw = np.frombuffer(data, np.uint8).reshape(h, w * comps * bits // 8).copy()
        self.arrays[resource] = _Array(raw, (comps, bits, kind), size)
        return self._ret("cudaGraphicsSubResourceGetMappedArray", self.arrays[resource])

    def cudaArrayGetInfo(self, array):
        comps, bits, kind = array.fmt[:3]
        b = [bits if c < comps else 0 for c in range(4)]
        desc = SimpleNamespace(x=b[0], y=b[1], z=b[2], w=b[3], f=self.KINDS[kind])
        extent = SimpleNamespace(width=array.size[0], height=array.size[1], depth=0)
        return self._ret("cudaArrayGetInfo", desc, extent, 0)

    def _live(self, array):
        assert any(a is array for a in self.arrays.values()), "the array is used after its resource was unmapped"

    def cudaMemcpy2DFromArrayAsync(self, dst, dpitch, src, w_offset, h_offset, width, height, kind, stream):
        self._live(src)
        assert kind == 3 and all(isinstance(v, int) for v in (dst, dpitch, w_offset, h_offset, width, height, stream))
        assert dpitch >= width and w_offset + width <= src.data.shape[1] and h_offset + height <= src.data.shape[0]
        r = self._ret("cudaMemcpy2DFromArrayAsync")
        if r[0] == 0:
            for row in range(height):
                line = np.ascontiguousarray(src.data[h_offset + row, w_offset: w_offset + width])
                ctypes.memmove(dst + row * dpitch, line.ctypes.data, width)
        return r

    def cudaMemcpy2DToArrayAsync(self, dst, w_offset, h_offset, src, spitch, width, height, kind, stream):
        self._live(dst)
        assert kind == 3 and spitch >= width and w_offset + width <= dst.data.shape[1]
        assert h_offset + height <= dst.data.shape[0]
        r = self._ret("cudaMemcpy2DToArrayAsync")
        if r[0] == 0:
            for row in range(height):
                line = (ctypes.c_uint8 * width).from_address(src + row * spitch)
                dst.data[h_offset + row, w_offset: w_offset + width] = np.frombuffer(line, np.uint8)
            dst.fmt = dst.fmt[:3] + ("written",)
        return r


def _interop(textures: dict) -> tuple[GLInterop, HostRuntime]:
    rt = HostRuntime(textures)
    return GLInterop("cpu", runtime=rt, stream=lambda: 0), rt


def _texture(gl, size, components, dtype, seed=0):
    w, h = size
    rng = np.random.default_rng(seed)
    np_dtype = {"f2": np.float16, "f4": np.float32, "f1": np.uint8, "u1": np.uint8, "u2": np.uint16,
                "u4": np.uint32, "i4": np.int32}[dtype]
    if np.issubdtype(np_dtype, np.floating):
        data = rng.normal(0, 10, (h, w, components)).astype(np_dtype)
    else:
        info = np.iinfo(np_dtype)
        data = rng.integers(max(info.min, -1000), min(info.max, 100000), (h, w, components)).astype(np_dtype)
    return gl.texture(size, components, data.tobytes(), dtype=dtype)


# -- the format mapping and the decision -----------------------------------------------------

def test_format_mapping_covers_the_renderers_formats():
    expected = {("f2", 4): ("RGBA16F", torch.float16, 16, "float"), ("f4", 4): ("RGBA32F", torch.float32, 32, "float"),
                ("f2", 2): ("RG16F", torch.float16, 16, "float"), ("f4", 2): ("RG32F", torch.float32, 32, "float"),
                ("f4", 1): ("R32F", torch.float32, 32, "float"), ("f2", 1): ("R16F", torch.float16, 16, "float"),
                ("f1", 4): ("RGBA8", torch.uint8, 8, "unsigned"), ("u4", 1): ("R32UI", torch.uint32, 32, "unsigned"),
                ("i4", 1): ("R32I", torch.int32, 32, "signed")}
    for (dtype, comps), (name, tdtype, bits, kind) in expected.items():
        fmt, why = gl_interop.gl_format(dtype, comps)
        assert (fmt.name, fmt.dtype, fmt.bits, fmt.kind, why) == (name, tdtype, bits, kind, "")
        assert fmt.bytes_per_pixel == comps * bits // 8
    for dtype, comps, words in (("f4", 3, "not 3"), ("f2", 3, "RGB16F"), ("i2", 1, "dtype 'i2'")):
        fmt, why = gl_interop.gl_format(dtype, comps)
        assert fmt is None and words in why


def test_depth_and_multisampled_textures_are_not_mapped(gl):
    fmt, why = gl_interop.moderngl_format(gl.depth_texture((8, 8)))
    assert fmt is None and "depth" in why
    fmt, why = gl_interop.moderngl_format(SimpleNamespace(depth=False, samples=4, dtype="f4", components=4))
    assert fmt is None and "4 samples" in why


def test_decision_logic():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    yes, no = (lambda: (True, "ok")), (lambda: (False, "cuda-python is not importable"))
    assert gl_interop.decide("auto", cuda, yes) is True
    assert gl_interop.decide("auto", cuda, no) is False  # the host path, no error
    assert gl_interop.decide("auto", cpu, yes) is False  # a CPU context never maps textures into CUDA
    assert gl_interop.decide("host", cuda, yes) is False
    assert gl_interop.decide("cuda", cuda, yes) is True
    with pytest.raises(plugin.BackendUnavailableError, match="desc.gl_interop: .* cuda-python is not importable"):
        gl_interop.decide("cuda", cuda, no)
    with pytest.raises(plugin.UnsupportedError, match="^desc.gl_interop: expected 'auto' or 'host' on a CPU"):
        gl_interop.decide("cuda", cpu, yes)
    with pytest.raises(plugin.UnsupportedError, match="got 'zero-copy'"):
        gl_interop.decide("zero-copy", cuda, yes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without a CUDA GPU")
def test_without_a_gpu_the_probe_says_what_is_missing_and_forcing_fails_clearly(dump):
    ok, why = gl_interop.availability()
    assert not ok and "PyTorch sees no CUDA GPU" in why
    assert plugin.capabilities()["gl_interop"] == {"available": False, "detail": why}
    with pytest.raises(plugin.UnsupportedError) as info:  # forced on a CPU context
        plugin.Context(dump.desc(gl_interop="cuda"))
    assert str(info.value).startswith("desc.gl_interop: expected 'auto' or 'host' on a CPU context")
    with pytest.raises(plugin.BackendUnavailableError, match="desc.gl_interop: .*PyTorch sees no CUDA GPU"):
        gl_interop.decide("cuda", torch.device("cuda"))
    with plugin.Context(dump.desc()) as ctx, pytest.raises(plugin.UnsupportedError, match="desc.gl_interop"):
        ctx.interop()  # what the C ABI's GPU handles ask for


def test_the_real_cuda_python_accepts_these_arguments():
    """Every runtime call GLInterop makes, with the argument types it passes, through the
    installed cuda-python: an error code comes back (no GPU here), never a TypeError."""
    from cuda.bindings import runtime as rt

    res, arr = rt.cudaGraphicsResource_t(), rt.cudaArray_t()
    calls = [("cudaSetDevice", (0,)), ("cudaGraphicsGLRegisterImage", (5, gl_interop.GL_TEXTURE_2D, 1)),
             ("cudaGraphicsMapResources", (1, res, 0)), ("cudaGraphicsSubResourceGetMappedArray", (res, 0, 0)),
             ("cudaArrayGetInfo", (arr,)), ("cudaMemcpy2DFromArrayAsync", (0, 16, arr, 0, 0, 16, 1, 3, 0)),
             ("cudaMemcpy2DToArrayAsync", (arr, 0, 0, 0, 16, 16, 1, 3, 0)),
             ("cudaGraphicsUnmapResources", (1, res, 0)), ("cudaGraphicsUnregisterResource", (res,))]
    assert rt.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsReadOnly == gl_interop.REGISTER_READ_ONLY
    assert rt.cudaGraphicsRegisterFlags.cudaGraphicsRegisterFlagsWriteDiscard == gl_interop.REGISTER_WRITE_DISCARD
    assert rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice == gl_interop.MEMCPY_DEVICE_TO_DEVICE
    for kind, value in gl_interop.CHANNEL_KINDS.items():
        assert getattr(rt.cudaChannelFormatKind, f"cudaChannelFormatKind{kind.capitalize()}") == value
    for name, args in calls:
        result = getattr(rt, name)(*args)
        assert isinstance(result, tuple) and isinstance(result[0], rt.cudaError_t), name
        if not torch.cuda.is_available():
            assert result[0] != rt.cudaError_t.cudaSuccess, name
    if not torch.cuda.is_available():  # and GLInterop turns the first failure into a typed error
        with pytest.raises(GLInteropError, match="frame.color: CUDA-OpenGL interop failed: cudaSetDevice|"
                                                 "frame.color: CUDA-OpenGL interop failed: cudaGraphicsGLRegister"):
            GLInterop("cuda:0", stream=lambda: 0).read(5, (8, 8), gl_interop.gl_format("f4", 4)[0], "frame.color")


# -- reads and writes, against the host-memory runtime ---------------------------------------------

@pytest.mark.parametrize("components, dtype", [(4, "f2"), (4, "f4"), (2, "f2"), (2, "f4"), (1, "f4"), (1, "f2"),
                                               (4, "f1"), (1, "u1"), (1, "u2"), (1, "u4"), (1, "i4")])
def test_read_equals_the_host_path(gl, components, dtype):
    tex = _texture(gl, (13, 7), components, dtype)
    interop, rt = _interop({tex.glo: tex})
    fmt, _ = gl_interop.moderngl_format(tex)
    host = _to_torch(tex, "frame.color")
    got = interop.read(tex.glo, tex.size, fmt, "frame.color", owner=tex)
    assert got.dtype == host.dtype and got.shape == host.shape == (7, 13, components)
    assert torch.equal(got, host)
    crop = interop.read(tex.glo, tex.size, fmt, "frame.color", rect=(5, 3), owner=tex)  # dynamic resolution
    # the viewport's rectangle: GL rows 0..2 (the bottom of the allocation), as the host path reads it
    assert torch.equal(crop, host[-3:, :5]) and torch.equal(crop, _to_torch(tex, "frame.color", rect=(5, 3)))
    assert rt.count("cudaGraphicsGLRegisterImage") == 1  # cached per texture
    assert rt.count("cudaGraphicsMapResources") == rt.count("cudaGraphicsUnmapResources") == 2
    assert not rt.mapped
    tex.release()


def test_registrations_follow_the_textures(gl):
    a = _texture(gl, (8, 8), 4, "f4", 1)
    b = _texture(gl, (8, 8), 4, "f4", 2)
    textures = {a.glo: a, b.glo: b}
    interop, rt = _interop(textures)
    fmt, _ = gl_interop.moderngl_format(a)
    for _ in range(3):
        interop.read(a.glo, a.size, fmt, "frame.color", owner=a)
        interop.read(b.glo, b.size, fmt, "frame.albedo", owner=b)
    assert rt.count("cudaGraphicsGLRegisterImage") == 2 and interop.registered == 2
    # another texture object under a's GL name (GL reuses names): registered anew
    c = _texture(gl, (8, 8), 4, "f4", 3)
    textures[a.glo] = c
    got = interop.read(a.glo, c.size, fmt, "frame.color", owner=c)
    assert torch.equal(got, _to_torch(c, "x"))
    assert rt.count("cudaGraphicsGLRegisterImage") == 3 and rt.count("cudaGraphicsUnregisterResource") == 1
    # a texture object that is gone: its registration is dropped on the next read
    name_b = b.glo
    b.release()
    del b, textures[name_b]
    gc.collect()
    interop.read(a.glo, c.size, fmt, "frame.color", owner=c)
    assert interop.registered == 1 and rt.count("cudaGraphicsUnregisterResource") == 2
    interop.release()
    assert interop.registered == 0 and not rt.resources
    for t in (a, c):
        t.release()


def test_a_failed_copy_is_unmapped_and_named(gl):
    tex = _texture(gl, (8, 8), 4, "f2")
    interop, rt = _interop({tex.glo: tex})
    fmt, _ = gl_interop.moderngl_format(tex)
    rt.fail["cudaMemcpy2DFromArrayAsync"] = 700
    with pytest.raises(GLInteropError) as info:
        interop.read(tex.glo, tex.size, fmt, "frame.color", owner=tex)
    assert str(info.value).startswith("frame.color: CUDA-OpenGL interop failed: cudaMemcpy2DFromArrayAsync returned "
                                      "cudaErrorIllegalAddress")
    assert (info.value.call, info.value.error) == ("cudaMemcpy2DFromArrayAsync", "cudaErrorIllegalAddress")
    assert not rt.mapped and rt.count("cudaGraphicsUnmapResources") == 1
    del rt.fail["cudaMemcpy2DFromArrayAsync"]
    assert torch.equal(interop.read(tex.glo, tex.size, fmt, "frame.color", owner=tex), _to_torch(tex, "x"))
    tex.release()


def test_a_texture_cuda_cannot_register_says_why(gl):
    tex = _texture(gl, (8, 8), 4, "f2")
    interop, rt = _interop({tex.glo: tex})
    rt.fail["cudaGraphicsGLRegisterImage"] = 304
    with pytest.raises(GLInteropError, match="cudaGraphicsGLRegisterImage returned cudaErrorOperatingSystem.*"
                                             "current on this thread.*Mesa"):
        interop.read(tex.glo, tex.size, gl_interop.moderngl_format(tex)[0], "frame.depth", owner=tex)
    assert interop.registered == 0
    tex.release()


def test_a_texture_of_another_size_or_format_is_refused_by_name():
    """What the C ABI's GL handles declare is checked against the mapped array."""
    data = bytes(8 * 4 * 8)
    interop, rt = _interop({7: ((8, 4), 2, 32, "float", data)})  # an RG32F texture, 8x4
    rgba16f, rg32f = gl_interop.gl_format("f2", 4)[0], gl_interop.gl_format("f4", 2)[0]
    with pytest.raises(plugin.UnsupportedError) as info:
        interop.read(7, (8, 4), rgba16f, "frame.motion")
    assert str(info.value) == ("frame.motion: expected a 8x4 RGBA16F texture (4 x 16-bit float), got a 8x4 texture "
                               "of 2 x 32/32-bit float channels")
    with pytest.raises(plugin.UnsupportedError, match="expected a 16x4 RG32F texture .*got a 8x4 texture"):
        interop.read(7, (16, 4), rg32f, "frame.motion")
    assert not rt.mapped
    assert interop.read(7, (8, 4), rg32f, "frame.motion").shape == (4, 8, 2)


def test_write_lands_top_row_first(gl):
    data = bytes(6 * 5 * 16)
    interop, rt = _interop({9: ((6, 5), 4, 32, "float", data)})
    fmt = gl_interop.gl_format("f4", 4)[0]
    image = torch.arange(5 * 6 * 4, dtype=torch.float32).reshape(5, 6, 4)
    interop.write(9, (6, 5), fmt, image, "output.color")
    written = np.frombuffer(rt.writes[9].tobytes(), np.float32).reshape(5, 6, 4)
    assert np.array_equal(written[::-1], image.numpy())  # GL row 0 = the image's bottom row
    interop.check(9, (6, 5), fmt, "output.color", write=True)
    assert rt.count("cudaGraphicsGLRegisterImage") == 1 and not rt.mapped
    with pytest.raises(plugin.UnsupportedError, match=r"output.color: expected an image of shape \(5, 6, 4\)"):
        interop.write(9, (6, 5), fmt, image[:, :, :3], "output.color")


# -- the context: interop when on, the host path otherwise --------------------------------------

def _gl_frame(gl, dump, n, keep):
    """Frame n of the dump with colour, depth and motion as moderngl textures (GL rows bottom-up)."""
    a = dump.arrays(2 * n)

    def tex(arr, dtype):
        arr = np.ascontiguousarray(arr, dtype=np.float16 if dtype == "f2" else np.float32)
        arr = arr if arr.ndim == 3 else arr[..., None]
        if arr.shape[2] == 3:
            arr = np.concatenate([arr, np.ones_like(arr[..., :1])], -1)  # RGBA16F, as the renderer's colour
        t = gl.texture((arr.shape[1], arr.shape[0]), arr.shape[2], np.ascontiguousarray(arr[::-1]).tobytes(),
                       dtype=dtype)
        keep.append(t)
        return t

    return {"color": tex(a["color"], "f2"), "depth": tex(a["depth"], "f4"), "motion": tex(a["motion"], "f4")}


def test_context_reads_textures_through_interop_when_it_is_on(gl, dump):
    keep: list = []
    with plugin.Context(dump.desc(pass_name="bilinear")) as ref_ctx:
        ref = [ref_ctx.dispatch(dump.frame(n, **_gl_frame(gl, dump, n, keep))) for n in range(2)]
        assert ref_ctx.gl_interop_active is False  # a CPU context: the host path
    keep2: list = []
    frames = [_gl_frame(gl, dump, n, keep2) for n in range(2)]
    interop, rt = _interop({t.glo: t for t in keep2})
    with plugin.Context(dump.desc(pass_name="bilinear")) as ctx:
        ctx._gl = interop  # what a CUDA context with working interop holds
        got = [ctx.dispatch(dump.frame(n, **frames[n])) for n in range(2)]
        assert ctx.gl_interop_active is True
    assert rt.count("cudaGraphicsMapResources") == 6 and not rt.mapped  # 3 textures x 2 frames
    assert rt.count("cudaGraphicsGLRegisterImage") == 6 and not rt.resources  # destroy unregistered them
    for a, b in zip(ref, got):
        assert np.array_equal(a.output, b.output) and np.array_equal(a.generated[0].color, b.generated[0].color)
    for t in keep + keep2:
        t.release()


def test_auto_falls_back_to_host_memory_with_one_warning(gl, dump):
    keep: list = []
    interop, rt = _interop({})
    rt.fail["cudaGraphicsGLRegisterImage"] = 999
    with plugin.Context(dump.desc(pass_name="bilinear")) as ctx:
        ctx._gl = interop
        r0 = ctx.dispatch(dump.frame(0, **_gl_frame(gl, dump, 0, keep)))
        r1 = ctx.dispatch(dump.frame(1, **_gl_frame(gl, dump, 1, keep)))
        assert ctx.gl_interop_active is False
    assert [w for w in r0.warnings if "cudaGraphicsGLRegisterImage returned cudaErrorUnknown" in w
            and "through host memory from now on" in w]
    assert r1.warnings == [] and rt.count("cudaGraphicsGLRegisterImage") == 1  # not retried every frame
    assert np.isfinite(r1.output).all()
    for t in keep:
        t.release()


def test_a_texture_cuda_sees_otherwise_is_read_through_host_memory(gl, dump):
    """A texture whose mapped array does not match what moderngl says (a packed internal
    format, say): "auto" reads that texture through host memory, with one INFO message."""
    keep: list = []
    frames = [_gl_frame(gl, dump, n, keep) for n in range(2)]
    interop, rt = _interop({t.glo: t for t in keep})
    for f in frames:  # CUDA would see the colour textures as 10/10/10/2-bit unsigned
        w, h = f["color"].size
        rt.textures[f["color"].glo] = ((w, h), 4, 8, "unsigned", bytes(w * h * 4))
    got = []
    with plugin.Context(dump.desc(pass_name="bilinear", message_callback=lambda sev, m: got.append((sev, m)))) as ctx:
        ctx._gl = interop
        results = [ctx.dispatch(dump.frame(n, **frames[n])) for n in range(2)]
        assert ctx.gl_interop_active is True  # the other textures still go through interop
    with plugin.Context(dump.desc(pass_name="bilinear")) as ref_ctx:
        ref = [ref_ctx.dispatch(dump.frame(n, **frames[n])) for n in range(2)]
    for a, b in zip(ref, results):
        assert np.array_equal(a.output, b.output)
    notes = [m for sev, m in got if "frame.color" in m and "host memory" in m]
    assert len(notes) == 1 and got[0][0] == plugin.Severity.INFO, got
    assert "expected a 64x40 RGBA16F texture" in notes[0]
    assert rt.count("cudaMemcpy2DFromArrayAsync") == 4  # depth and motion, two frames; not the colour
    for t in keep:
        t.release()


def test_forced_interop_refuses_what_it_cannot_map(gl, dump):
    keep: list = []
    rgb = gl.texture((64, 40), 3, np.zeros((40, 64, 3), np.float32).tobytes(), dtype="f4")
    interop, rt = _interop({rgb.glo: rgb})
    with plugin.Context(dump.desc()) as ctx:
        ctx.desc = replace(ctx.desc, gl_interop="cuda")  # as on a CUDA context with gl_interop='cuda'
        ctx._gl = interop
        with pytest.raises(plugin.UnsupportedError) as info:
            ctx.dispatch(dump.frame(0, color=rgb))
        assert str(info.value).startswith("frame.color: expected a texture CUDA-OpenGL interop can map")
        assert "RGB32F: CUDA-OpenGL interop maps 1, 2 or 4 channels, not 3" in str(info.value)
        rt.fail["cudaGraphicsMapResources"] = 999
        with pytest.raises(GLInteropError, match="frame.color: .*cudaGraphicsMapResources"):
            ctx.dispatch(dump.frame(0, **_gl_frame(gl, dump, 0, keep)))
        assert ctx.last_frames == []
    for t in keep + [rgb]:
        t.release()


# -- on a GPU -------------------------------------------------------------------------------------

def _nvidia_gl(gl) -> bool:
    return "NVIDIA" in gl.info.get("GL_RENDERER", "") + gl.info.get("GL_VENDOR", "")


@pytest.mark.skipif(not torch.cuda.is_available() or not gl_interop.availability()[0], reason=GPU_REASON)
def test_on_a_gpu_interop_reads_what_the_host_path_reads(gl):
    if not _nvidia_gl(gl):
        pytest.skip(f"{GPU_REASON} (the GL context here is {gl.info.get('GL_RENDERER')})")
    for components, dtype in ((4, "f2"), (4, "f4"), (2, "f4"), (2, "f2"), (1, "f4"), (1, "i4")):
        tex = _texture(gl, (37, 21), components, dtype)
        interop = GLInterop("cuda")
        got = interop.read(tex.glo, tex.size, gl_interop.moderngl_format(tex)[0], "frame.color", owner=tex)
        assert got.device.type == "cuda"
        assert torch.equal(got.cpu(), _to_torch(tex, "x")), (components, dtype)
        interop.release()
        tex.release()


@pytest.mark.skipif(not torch.cuda.is_available() or not gl_interop.availability()[0], reason=GPU_REASON)
def test_on_a_gpu_a_cuda_context_maps_moderngl_textures(gl, dump):
    if not _nvidia_gl(gl):
        pytest.skip(f"{GPU_REASON} (the GL context here is {gl.info.get('GL_RENDERER')})")
    keep: list = []
    with plugin.Context(dump.desc(device="cuda", gl_interop="cuda", pass_name="bilinear")) as ctx:
        r = ctx.dispatch(dump.frame(0, **_gl_frame(gl, dump, 0, keep)))
        assert ctx.gl_interop_active is True and isinstance(r.output, torch.Tensor) and r.output.is_cuda
    with plugin.Context(dump.desc(device="cuda", gl_interop="host", pass_name="bilinear")) as ctx:
        h = ctx.dispatch(dump.frame(0, **_gl_frame(gl, dump, 0, keep)))
    assert torch.allclose(r.output.cpu(), h.output.cpu(), atol=1e-6)
    for t in keep:
        t.release()
