"""Malformed calls, table-driven: each is refused with a specific typed error that names
the field, the expected and the actual value, and the context stays usable afterwards.
(The C ABI's own table is in test_c_abi.py; motion vectors beyond the screen are clamped
with a warning instead, see test_context.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import plugin
from plugin import BackendUnavailableError, ContextStateError, InvalidInputError, UnsupportedError


def _img(dump, key, i=0):
    return dump.arrays(i)[key].copy()


def _nan(a, value=np.nan):
    a = a.astype(np.float32)
    a[3, 5] = value
    return a


# (case id, frame overrides built from the dump, context overrides, error type, field, text in the message)
FRAME_CASES = [
    ("color 2-D", lambda d: {"color": _img(d, "color")[..., 0]}, {}, InvalidInputError, "frame.color", "channels"),
    ("color 2 channels", lambda d: {"color": _img(d, "color")[..., :2]}, {}, InvalidInputError, "frame.color", "got 2"),
    ("color integer dtype", lambda d: {"color": (_img(d, "color") * 255).astype(np.uint8)}, {}, InvalidInputError,
     "frame.color", "float32"),
    ("color smaller than the render size", lambda d: {"color": _img(d, "color")[:20], "render_size": (64, 40)}, {},
     InvalidInputError, "frame.color", "got 64x20"),
    ("color larger than the maximum render size", lambda d: {"color": np.zeros((80, 128, 3), np.float32)}, {},
     InvalidInputError, "frame.color", "render size of 8x8 .. 64x40"),
    ("color NaN", lambda d: {"color": _nan(_img(d, "color"))}, {}, InvalidInputError, "frame.color", "(3 NaN, 0 Inf)"),
    ("color Inf", lambda d: {"color": _nan(_img(d, "color"), np.inf)}, {}, InvalidInputError, "frame.color", "(0 NaN, 3 Inf)"),
    ("color a list", lambda d: {"color": [[0.0, 0.0, 0.0]]}, {}, InvalidInputError, "frame.color", "got a list"),
    ("LDR colour above 1", lambda d: {"color": _img(d, "color") + 2.0}, {"hdr": False}, InvalidInputError,
     "frame.color", "[0, 1]"),
    ("depth NaN", lambda d: {"depth": _nan(_img(d, "depth"))}, {}, InvalidInputError, "frame.depth", "NaN"),
    ("depth 2 channels", lambda d: {"depth": np.stack([_img(d, "depth")] * 2, -1)}, {}, InvalidInputError,
     "frame.depth", "1 channels"),
    ("depth not positive", lambda d: {"depth": -_img(d, "depth")}, {}, InvalidInputError, "frame.depth",
     "positive linear view depth"),
    ("device depth outside [0, 1]", lambda d: {"depth": _img(d, "depth")}, {"depth_format": "device"},
     InvalidInputError, "frame.depth", "device depth in [0, 1]"),
    ("motion 3 channels", lambda d: {"motion": np.concatenate([_img(d, "motion")] * 2, -1)[..., :3]}, {},
     InvalidInputError, "frame.motion", "2 channels"),
    ("motion NaN", lambda d: {"motion": _nan(_img(d, "motion"))}, {}, InvalidInputError, "frame.motion", "NaN"),
    ("albedo missing for stss", lambda d: {"albedo": None}, {}, InvalidInputError, "frame.albedo",
     "the stss pass reads albedo"),
    ("normal wrong size", lambda d: {"normal": _img(d, "normal")[:, :32]}, {}, InvalidInputError, "frame.normal",
     "got 32x40"),
    ("object ids fractional", lambda d: {"object_id": _img(d, "object_id").astype(np.float32) + 0.5}, {},
     InvalidInputError, "frame.object_id", "integer ids"),
    ("jitter outside [-0.5, 0.5]", lambda d: {"jitter_px": (0.7, 0.1)}, {}, InvalidInputError, "frame.jitter_px",
     "[-0.5, 0.5]"),
    ("jitter NaN", lambda d: {"jitter_px": (math.nan, 0.0)}, {}, InvalidInputError, "frame.jitter_px", "nan"),
    ("jitter a number", lambda d: {"jitter_px": 0.25}, {}, InvalidInputError, "frame.jitter_px", "got 0.25"),
    ("frame time in seconds", lambda d: {"frame_time_ms": 0.016}, {}, InvalidInputError, "frame.frame_time_ms",
     "looks like seconds"),
    ("frame time negative", lambda d: {"frame_time_ms": -16.0}, {}, InvalidInputError, "frame.frame_time_ms",
     "positive"),
    ("frame index not an integer", lambda d: {"frame_index": 1.0}, {}, InvalidInputError, "frame.frame_index",
     "an integer"),
    ("near plane zero", lambda d: {"near": 0.0}, {}, InvalidInputError, "frame.near", "positive"),
    ("far before near", lambda d: {"far": 0.01}, {}, InvalidInputError, "frame.far", "greater than near"),
    ("fov in degrees", lambda d: {"fov_y_rad": 60.0}, {}, InvalidInputError, "frame.fov_y_rad", "degrees?"),
    ("pre-exposure zero", lambda d: {"pre_exposure": 0.0}, {}, InvalidInputError, "frame.pre_exposure", "positive"),
    ("motion scale NaN", lambda d: {"motion_scale": (1.0, math.nan)}, {}, InvalidInputError, "frame.motion_scale",
     "finite"),
    ("view 3x3", lambda d: {"view": np.eye(3)}, {}, InvalidInputError, "frame.view", "4x4"),
    ("projection NaN", lambda d: {"proj": np.full((4, 4), np.nan)}, {}, InvalidInputError, "frame.proj", "finite"),
    ("generated frame missing", lambda d: {"generated": []}, {}, InvalidInputError, "frame.generated", "got 0"),
    ("generated depth wrong size", lambda d: {"generated": [d.generated(0, depth=_img(d, "depth", 1)[:10])]}, {},
     InvalidInputError, "frame.generated[0].depth", "64x40"),
    ("generated jitter outside", lambda d: {"generated": [d.generated(0, jitter_px=(0.0, -0.9))]}, {},
     InvalidInputError, "frame.generated[0].jitter_px", "[-0.5, 0.5]"),
    ("generated motion NaN", lambda d: {"generated": [d.generated(0, motion=_nan(_img(d, "motion", 1)))]}, {},
     InvalidInputError, "frame.generated[0].motion", "NaN"),
    ("generated not a description", lambda d: {"generated": [{"depth": None}]}, {}, InvalidInputError,
     "frame.generated[0]", "GeneratedFrameDescription"),
    ("ui at render size", lambda d: {"ui": np.zeros((40, 64, 4), np.float32)}, {}, InvalidInputError, "frame.ui",
     "128x80"),
    ("ui alpha above 1", lambda d: {"ui": np.full((80, 128, 4), 2.0, np.float32)}, {}, InvalidInputError,
     "frame.ui", "alpha in [0, 1]"),
    ("reactive mask above 1", lambda d: {"reactive": np.full((40, 64), 3.0, np.float32)}, {}, InvalidInputError,
     "frame.reactive", "[0, 1]"),
    ("render size above the maximum", lambda d: {"render_size": (128, 80)}, {}, InvalidInputError,
     "frame.render_size", "64x40"),
    ("render size not integers", lambda d: {"render_size": (63.5, 40)}, {}, InvalidInputError, "frame.render_size",
     "integers"),
]

DESC_CASES = [
    ("max render size above the display", {"max_render_size": (256, 160)}, InvalidInputError,
     "desc.max_render_size", "at most the display size"),
    ("display size tiny", {"display_size": (4, 4), "max_render_size": (4, 4)}, InvalidInputError,
     "desc.max_render_size", "at least 8x8"),
    ("unknown pass", {"pass_name": "dlss"}, UnsupportedError, "desc.pass_name", "'dlss'"),
    ("unknown back-end", {"backend": "tvm"}, UnsupportedError, "desc.backend", "'tvm'"),
    ("int8 precision", {"precision": "int8"}, UnsupportedError, "desc.precision", "'int8'"),
    ("two generated frames", {"generated_frames": 2}, UnsupportedError, "desc.generated_frames", "got 2"),
    ("depth format unknown", {"depth_format": "log"}, InvalidInputError, "desc.depth_format", "'log'"),
    ("callback not callable", {"message_callback": "print"}, InvalidInputError, "desc.message_callback", "str"),
]


def _check_message(err, field, text):
    msg = str(err)
    assert msg.startswith(field + ":"), msg  # the field first
    assert "expected" in msg and "got" in msg, msg
    assert text in msg, msg


@pytest.mark.parametrize("case", FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_bad_frame_is_refused_by_name(dump, case):
    _, build, desc_over, err_type, field, text = case
    with plugin.Context(dump.desc(**desc_over)) as ctx:
        with pytest.raises(err_type) as info:
            ctx.dispatch(dump.frame(0, **build(dump)))
        _check_message(info.value, field, text)
        assert info.value.code == plugin.Result.INVALID_ARGUMENT
        assert ctx.last_frames == []  # nothing ran


@pytest.mark.parametrize("case", DESC_CASES, ids=[c[0] for c in DESC_CASES])
def test_bad_description_is_refused_by_name(dump, case):
    _, over, err_type, field, text = case
    with pytest.raises(err_type) as info:
        plugin.Context(dump.desc(**over))
    _check_message(info.value, field, text)


def test_frame_index_gap_and_going_back(dump):
    with plugin.Context(dump.desc()) as ctx:
        ctx.dispatch(dump.frame(0))
        for bad in (2, 0, -1):
            with pytest.raises(InvalidInputError) as info:
                ctx.dispatch(dump.frame(1, frame_index=bad))
            _check_message(info.value, "frame.frame_index", "or reset=True")
        assert not ctx.dispatch(dump.frame(1)).reset  # the stream goes on


def test_use_after_destroy(dump):
    ctx = plugin.Context(dump.desc())
    ctx.dispatch(dump.frame(0))
    ctx.destroy()
    ctx.destroy()  # idempotent
    for call in (lambda: ctx.dispatch(dump.frame(1)), ctx.reset):
        with pytest.raises(ContextStateError, match="destroyed") as info:
            call()
        assert info.value.code == plugin.Result.INVALID_STATE


def test_not_descriptions():
    with pytest.raises(InvalidInputError, match="^desc: expected a plugin.ContextDescription"):
        plugin.Context({"display_size": (128, 80)})


def test_frame_not_a_description(dump):
    with plugin.Context(dump.desc()) as ctx, pytest.raises(InvalidInputError, match="^frame: expected"):
        ctx.dispatch({"frame_index": 0})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_says_so(dump):
    with pytest.raises(BackendUnavailableError, match="desc.device: expected a CUDA GPU, got none"):
        plugin.Context(dump.desc(device="cuda"))


# -- NaN and Inf in any input --------------------------------------------------------------------

#: Every image of a frame description (and of its generated frame), with the field named in the error.
IMAGES = ["color", "depth", "motion", "albedo", "normal", "roughness", "metallic", "object_id", "reactive",
          "transparency", "hudless", "ui", "generated.depth", "generated.motion", "generated.albedo",
          "generated.normal", "generated.roughness", "generated.metallic", "generated.object_id", "generated.ui"]
#: Every number and matrix.
SCALARS = ["frame_time_ms", "near", "far", "fov_y_rad", "pre_exposure", "jitter_px", "motion_scale", "view", "proj",
           "prev_view", "prev_proj", "generated.jitter_px", "generated.view", "generated.proj"]


def _image_for(dump, key):
    """A valid image for ``key`` (a dump G-buffer, or a mask / HUD-less colour / UI layer)."""
    W, H = dump.display_size
    w, h = dump.render_size
    src = dump.arrays(1 if key.startswith("generated.") else 0)
    name = key.split(".")[-1]
    if name in ("reactive", "transparency"):
        return np.full((h, w), 0.5, np.float32)
    if name == "hudless":
        return src["color"].astype(np.float32)
    if name == "ui":
        return np.zeros((H, W, 4), np.float32)
    return src[name].astype(np.float32)


def _scalar_for(dump, key, bad):
    name = key.split(".")[-1]
    if name in ("view", "proj", "prev_view", "prev_proj"):
        m = dump.arrays(0)["view" if "view" in name else "proj"].copy()
        m[1, 2] = bad
        return m
    if name in ("jitter_px", "motion_scale"):
        return (0.1, bad)
    return bad


def _with(dump, key, value):
    if key.startswith("generated."):
        return {"generated": [dump.generated(0, **{key.split(".")[1]: value})]}
    return {key: value}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_nan_and_inf_in_any_input_are_refused_by_name(dump, bad):
    """Every image and every number of a frame, with one NaN / +Inf / -Inf: a typed error
    naming that field, and the context goes on (checked on one context for all of them)."""
    names = {"generated": "generated[0]"}
    with plugin.Context(dump.desc()) as ctx:
        ctx.dispatch(dump.frame(0))
        for key in IMAGES + SCALARS:
            if key in IMAGES:
                img = _image_for(dump, key)
                img[(3, 5) + (0,) * (img.ndim - 2)] = bad
                value = img
            else:
                value = _scalar_for(dump, key, bad)
            field = ".".join(names.get(p, p) for p in ("frame." + key).split("."))
            with pytest.raises(InvalidInputError) as info:
                ctx.dispatch(dump.frame(1, **_with(dump, key, value)))
            msg = str(info.value)
            assert msg.startswith(field + ":") and "expected" in msg and "got" in msg, (key, msg)
            assert info.value.field == field and ctx.last_frames[0].index == 0, key
        assert not ctx.dispatch(dump.frame(1)).reset  # the stream goes on


# -- resources this machine cannot read --------------------------------------------------------

class _CudaOnly:
    """An object that lives in CUDA memory (e.g. a CuPy array)."""

    def __init__(self, shape):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f4", "data": (0x7000_0000, False),
                                         "strides": None, "version": 3}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a CUDA GPU")
def test_cuda_memory_without_a_gpu_is_refused_by_name(dump):
    with plugin.Context(dump.desc()) as ctx:
        with pytest.raises(UnsupportedError) as info:
            ctx.dispatch(dump.frame(0, motion=_CudaOnly((40, 64, 2))))
        _check_message(info.value, "frame.motion", "__cuda_array_interface__")
        assert "sees no CUDA GPU" in str(info.value)


def test_texture_arrays_and_odd_objects_are_refused_by_name(dump, gl):
    arr = gl.texture_array((64, 40, 2), 4, dtype="f4")
    with plugin.Context(dump.desc()) as ctx:
        for value, words in ((arr, "got a TextureArray"), ("color.png", "got a str"), (object(), "got a object")):
            with pytest.raises(InvalidInputError) as info:
                ctx.dispatch(dump.frame(0, color=value))
            _check_message(info.value, "frame.color", words)
    arr.release()


def test_the_table_is_big_enough():
    assert len(FRAME_CASES) + len(DESC_CASES) + 4 >= 30
