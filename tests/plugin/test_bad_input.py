"""The Python half of the malformed-call campaign (the C half: ``c_abi_table.py``; the
count of both: ``test_campaign.py``). Each call is refused with a typed error naming the
field, the value expected and the value received, and leaves the context as it was: the
next correct frames are bit-identical to those of a context that never saw the bad call
(``campaign.run_case``). Motion vectors beyond the screen are clamped with a warning
instead, see test_context.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import plugin
from plugin import BackendUnavailableError, ContextStateError, InvalidInputError, UnsupportedError

from .campaign import Case, SyntheticFrames, run_case


@pytest.fixture(scope="module")
def dump():
    """The campaign's synthetic frames (64x40 -> 128x80), under the name the tables use."""
    return SyntheticFrames()


def _img(dump, key, i=0):
    return dump.arrays(i)[key].copy()


def _nan(a, value=np.nan):
    a = a.astype(np.float32)
    a[3, 5] = value
    return a


# (case id, frame overrides built from the frames, context overrides, error type, field, text in the message)
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
    ("device depth outside [0, 1]", lambda d: {"depth": _img(d, "depth") * 5}, {"depth_format": "device"},
     InvalidInputError, "frame.depth", "device depth in [0, 1]"),
    ("motion 3 channels", lambda d: {"motion": np.concatenate([_img(d, "motion")] * 2, -1)[..., :3]}, {},
     InvalidInputError, "frame.motion", "2 channels"),
    ("motion NaN", lambda d: {"motion": _nan(_img(d, "motion"))}, {}, InvalidInputError, "frame.motion", "NaN"),
    ("albedo missing for stss", lambda d: {"albedo": None}, {"pass_name": "stss"}, InvalidInputError, "frame.albedo",
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
    ("four generated frames", {"generated_frames": 4}, UnsupportedError, "desc.generated_frames", "got 4"),
    ("depth format unknown", {"depth_format": "log"}, InvalidInputError, "desc.depth_format", "'log'"),
    ("callback not callable", {"message_callback": "print"}, InvalidInputError, "desc.message_callback", "str"),
]


def _check_message(err, field, text):
    msg = str(err)
    assert msg.startswith(field + ":"), msg  # the field first
    assert "expected" in msg and "got" in msg, msg
    assert text in msg, msg


def _cases_of(rows, kind):
    out = []
    for row in rows:
        if kind == "frame":
            name, build, desc_over, err, field, text = row
            source = (("device_depth", True),) if desc_over.get("depth_format") == "device" else ()
            out.append(Case(name, build, err, field, (text,), "frame", tuple(desc_over.items()), source=source))
        else:
            name, over, err, field, text = row
            out.append(Case(name, lambda d, over=over: over, err, field, (text,), "desc"))
    return out


ZEROS = np.zeros((4, 4))


def _rank3(m):
    m = np.array(m, np.float64)
    m[2] = 0.0
    return m


def _generator(d):
    return {"generated": (g for g in [d.generated(0)])}


#: Camera matrices that cannot be inverted, wrong types, channels-first images, sizes beyond
#: the limit, back-ends that cannot run here.
NEW_CASES = [
    Case("view all zeros", lambda d: {"view": ZEROS}, InvalidInputError, "frame.view", ("invertible", "all zeros")),
    Case("proj all zeros", lambda d: {"proj": ZEROS}, InvalidInputError, "frame.proj", ("invertible", "all zeros")),
    Case("generated view all zeros", lambda d: {"generated": [d.generated(0, view=ZEROS)]}, InvalidInputError,
         "frame.generated[0].view", ("invertible",)),
    Case("generated proj all zeros", lambda d: {"generated": [d.generated(0, proj=ZEROS)]}, InvalidInputError,
         "frame.generated[0].proj", ("invertible",)),
    Case("view rank 3", lambda d: {"view": _rank3(_img(d, "view"))}, InvalidInputError, "frame.view", ("rank 3",)),
    Case("proj rank 3", lambda d: {"proj": _rank3(_img(d, "proj"))}, InvalidInputError, "frame.proj", ("rank 3",)),
    Case("prev_view all zeros", lambda d: {"prev_view": ZEROS}, InvalidInputError, "frame.prev_view", ("invertible",)),
    Case("view of strings", lambda d: {"view": [["1"] * 4] * 4}, InvalidInputError, "frame.view", ("numbers",)),
    Case("view of booleans", lambda d: {"view": np.eye(4, dtype=bool)}, InvalidInputError, "frame.view",
         ("numbers",)),
    Case("view all zeros (stss)", lambda d: {"view": ZEROS}, InvalidInputError, "frame.view", ("invertible",),
         pass_name="stss"),
    Case("generated view all zeros (stss)", lambda d: {"generated": [d.generated(0, view=ZEROS)]},
         InvalidInputError, "frame.generated[0].view", ("invertible",), pass_name="stss"),
    Case("proj all zeros (stss)", lambda d: {"proj": ZEROS}, InvalidInputError, "frame.proj", ("invertible",),
         pass_name="stss"),
    # types: checked, never coerced
    Case("reset a string", lambda d: {"reset": "no"}, InvalidInputError, "frame.reset", ("True or False", "'no'")),
    Case("reset an integer", lambda d: {"reset": 1}, InvalidInputError, "frame.reset", ("True or False",)),
    Case("frame time a string", lambda d: {"frame_time_ms": "33.3"}, InvalidInputError, "frame.frame_time_ms",
         ("'33.3' (a str)",)),
    Case("frame time a bool", lambda d: {"frame_time_ms": True}, InvalidInputError, "frame.frame_time_ms",
         ("True (a bool)",)),
    Case("frame time None", lambda d: {"frame_time_ms": None}, InvalidInputError, "frame.frame_time_ms", ("None",)),
    Case("jitter strings", lambda d: {"jitter_px": ("0.1", "0.2")}, InvalidInputError, "frame.jitter_px",
         ("'0.1' (a str)",)),
    Case("jitter None", lambda d: {"jitter_px": None}, InvalidInputError, "frame.jitter_px", ("None",)),
    Case("generated jitter strings", lambda d: {"generated": [d.generated(0, jitter_px=("0", "0"))]},
         InvalidInputError, "frame.generated[0].jitter_px", ("(a str)",)),
    Case("frame index beyond int64", lambda d: {"frame_index": 2 ** 70}, InvalidInputError, "frame.frame_index",
         ("64 bits", str(2 ** 70))),
    Case("frame index below int64", lambda d: {"frame_index": -(2 ** 64)}, InvalidInputError, "frame.frame_index",
         ("64 bits",)),
    Case("frame index a string", lambda d: {"frame_index": "1"}, InvalidInputError, "frame.frame_index",
         ("an integer",)),
    Case("frame index a bool", lambda d: {"frame_index": True}, InvalidInputError, "frame.frame_index",
         ("an integer",)),
    Case("near a string", lambda d: {"near": "0.1"}, InvalidInputError, "frame.near", ("(a str)",)),
    Case("far a bool", lambda d: {"far": True}, InvalidInputError, "frame.far", ("(a bool)",)),
    Case("fov a string", lambda d: {"fov_y_rad": "1.0"}, InvalidInputError, "frame.fov_y_rad", ("(a str)",)),
    Case("pre-exposure a string", lambda d: {"pre_exposure": "1"}, InvalidInputError, "frame.pre_exposure",
         ("(a str)",)),
    Case("pre-exposure overflowing the colour", lambda d: {"pre_exposure": 1e-300}, InvalidInputError,
         "frame.pre_exposure", ("finite", "overflow")),
    Case("motion scale strings", lambda d: {"motion_scale": ("1", "1")}, InvalidInputError, "frame.motion_scale",
         ("(a str)",)),
    Case("render size strings", lambda d: {"render_size": ("64", "40")}, InvalidInputError, "frame.render_size",
         ("integers",)),
    Case("render size beyond the limit", lambda d: {"render_size": (2 ** 40, 40)}, InvalidInputError,
         "frame.render_size", ("16384",)),
    Case("generated None", lambda d: {"generated": None}, InvalidInputError, "frame.generated",
         ("list or tuple", "None")),
    Case("generated a generator", _generator, InvalidInputError, "frame.generated", ("list or tuple", "generator")),
    Case("generated a string", lambda d: {"generated": "g"}, InvalidInputError, "frame.generated",
         ("list or tuple", "a str")),
    Case("generated a description, not a list", lambda d: {"generated": d.generated(0)}, InvalidInputError,
         "frame.generated", ("list or tuple", "GeneratedFrameDescription")),
    # channels-first and batched images
    Case("color channels-first", lambda d: {"color": np.ascontiguousarray(_img(d, "color").transpose(2, 0, 1))},
         InvalidInputError, "frame.color", ("channels-first", "(3, 40, 64)")),
    Case("color batched channels-first", lambda d: {"color": _img(d, "color").transpose(2, 0, 1)[None]},
         InvalidInputError, "frame.color", ("batch", "(1, 3, 40, 64)")),
    Case("color channels-first torch", lambda d: {"color": torch.from_numpy(_img(d, "color")).permute(2, 0, 1)},
         InvalidInputError, "frame.color", ("channels-first", ".permute(1, 2, 0)")),
    Case("depth channels-first", lambda d: {"depth": _img(d, "depth")[None]}, InvalidInputError, "frame.depth",
         ("channels-first",)),
    Case("motion channels-first", lambda d: {"motion": np.ascontiguousarray(_img(d, "motion").transpose(2, 0, 1))},
         InvalidInputError, "frame.motion", ("channels-first",)),
    Case("normal channels-first", lambda d: {"normal": np.ascontiguousarray(_img(d, "normal").transpose(2, 0, 1))},
         InvalidInputError, "frame.normal", ("channels-first",)),
    Case("ui channels-first", lambda d: {"ui": np.zeros((4, 80, 128), np.float32)}, InvalidInputError, "frame.ui",
         ("channels-first",)),
    # the description
    Case("hdr a string", lambda d: {"hdr": "no"}, InvalidInputError, "desc.hdr", ("True or False", "'no'"),
         kind="desc"),
    Case("validation a string", lambda d: {"validation": "yes"}, InvalidInputError, "desc.validation",
         ("True or False",), kind="desc"),
    Case("inverted depth an integer", lambda d: {"inverted_depth": 1}, InvalidInputError, "desc.inverted_depth",
         ("True or False",), kind="desc"),
    Case("infinite far None", lambda d: {"infinite_far": None}, InvalidInputError, "desc.infinite_far",
         ("True or False",), kind="desc"),
    Case("jittered motion a string", lambda d: {"jittered_motion": "false"}, InvalidInputError,
         "desc.jittered_motion", ("True or False",), kind="desc"),
    Case("display-res motion a list", lambda d: {"display_res_motion": [True]}, InvalidInputError,
         "desc.display_res_motion", ("True or False",), kind="desc"),
    Case("generated frames a bool", lambda d: {"generated_frames": True}, InvalidInputError,
         "desc.generated_frames", ("an integer", "True (a bool)"), kind="desc"),
    Case("generated frames a float", lambda d: {"generated_frames": 1.0}, InvalidInputError,
         "desc.generated_frames", ("an integer", "1.0 (a float)"), kind="desc"),
    Case("pass name a list", lambda d: {"pass_name": ["stss"]}, InvalidInputError, "desc.pass_name",
         ("a pass name", "['stss'] (a list)"), kind="desc"),
    Case("back-end a list", lambda d: {"backend": ["torch"]}, InvalidInputError, "desc.backend", ("(a list)",),
         kind="desc"),
    Case("device None", lambda d: {"device": None}, InvalidInputError, "desc.device", ("None",), kind="desc"),
    Case("precision a number", lambda d: {"precision": 16}, InvalidInputError, "desc.precision", ("16 (a int)",),
         kind="desc"),
    Case("depth format a list", lambda d: {"depth_format": ["linear"]}, InvalidInputError, "desc.depth_format",
         ("['linear']",), kind="desc"),
    Case("gl interop None", lambda d: {"gl_interop": None}, InvalidInputError, "desc.gl_interop", ("None",),
         kind="desc"),
    Case("display size beyond the limit", lambda d: {"display_size": (2 ** 40, 2 ** 40)}, InvalidInputError,
         "desc.display_size", ("at most 16384x16384", f"{2 ** 40}x{2 ** 40}"), kind="desc"),
    Case("all sizes beyond the limit", lambda d: {"display_size": (20000, 20000), "max_render_size": (20000, 20000)},
         InvalidInputError, "desc.max_render_size", ("at most 16384x16384",), kind="desc"),
    Case("max render size a float", lambda d: {"max_render_size": (64.0, 40)}, InvalidInputError,
         "desc.max_render_size", ("integers",), kind="desc"),
]

#: Wrong counts of generated frames: on a context at 4x (three per rendered frame), on one
#: whose count is chosen per frame ("auto": the first frame takes 1, then 3 at 30 rendered
#: frames per second for a 120 Hz target), and descriptions of counts that cannot be.
_X4 = (("generated_frames", 3),)
_AUTO = (("generated_frames", "auto"), ("target_display_hz", 120.0), ("schedule", (1, 3)))


COUNT_CASES = [
    Case("4x: two generated frames", lambda d: {"generated": [d.generated(1, k) for k in range(2)]},
         InvalidInputError, "frame.generated", ("3 generated-frame description(s)", "desc.generated_frames", "got 2"),
         source=_X4),
    Case("4x: four generated frames", lambda d: {"generated": [d.generated(1, k % 3) for k in range(4)]},
         InvalidInputError, "frame.generated", ("3 generated-frame", "got 4"), source=_X4),
    Case("4x: no generated frame", lambda d: {"generated": []}, InvalidInputError, "frame.generated",
         ("3 generated-frame", "got 0"), source=_X4),
    Case("4x: the third one's jitter outside", lambda d: {"generated": [d.generated(1, 0), d.generated(1, 1),
                                                                        d.generated(1, 2, jitter_px=(0.7, 0.0))]},
         InvalidInputError, "frame.generated[2].jitter_px", ("[-0.5, 0.5]",), source=_X4, pass_name="stss"),
    Case("4x: the second one's motion NaN", lambda d: {"generated": [
        d.generated(1, 0), d.generated(1, 1, motion=_nan(d.arrays(d.display_index(1, 1))["motion"])), d.generated(1, 2)]},
         InvalidInputError, "frame.generated[1].motion", ("NaN",), source=_X4, pass_name="warp_fill"),
    Case("4x interpolation: two generated frames", lambda d: {"generated": [d.generated(1, k) for k in range(2)]},
         InvalidInputError, "frame.generated", ("3 generated-frame", "got 2"), source=_X4, pass_name="vfi_cheap"),
    Case("auto: one generated frame where 3 are chosen", lambda d: {"generated": [d.generated(1, 0)]},
         InvalidInputError, "frame.generated", ("3 generated-frame", "Context.next_generated_frames", "120 Hz",
                                                "33.3 ms", "got 1"), source=_AUTO),
    Case("auto: render time negative", lambda d: {"render_time_ms": -4.0}, InvalidInputError, "frame.render_time_ms",
         ("positive time in milliseconds", "-4.0"), source=_AUTO),
    Case("auto: render time NaN", lambda d: {"render_time_ms": float("nan")}, InvalidInputError,
         "frame.render_time_ms", ("finite",), source=_AUTO),
    Case("auto: render time a string", lambda d: {"render_time_ms": "8"}, InvalidInputError, "frame.render_time_ms",
         ("'8' (a str)",), source=_AUTO),
    Case("render time zero", lambda d: {"render_time_ms": 0.0}, InvalidInputError, "frame.render_time_ms",
         ("positive",)),
    Case("generated frames 5", lambda d: {"generated_frames": 5}, UnsupportedError, "desc.generated_frames",
         ("0 to 3", "4x", "got 5"), kind="desc"),
    Case("generated frames -1", lambda d: {"generated_frames": -1}, UnsupportedError, "desc.generated_frames",
         ("0 to 3", "got -1"), kind="desc"),
    Case("generated frames a numeric string", lambda d: {"generated_frames": "2"}, InvalidInputError,
         "desc.generated_frames", ("'auto'", "'2' (a str)"), kind="desc"),
    Case("generated frames AUTO in capitals", lambda d: {"generated_frames": "AUTO"}, InvalidInputError,
         "desc.generated_frames", ("'auto'", "'AUTO' (a str)"), kind="desc"),
    Case("generated frames None", lambda d: {"generated_frames": None}, InvalidInputError, "desc.generated_frames",
         ("None (a NoneType)",), kind="desc"),
    Case("auto without a target", lambda d: {"generated_frames": "auto"}, InvalidInputError,
         "desc.target_display_hz", ("positive rate in Hz", "None"), kind="desc"),
    Case("auto with a target of 0 Hz", lambda d: {"generated_frames": "auto", "target_display_hz": 0.0},
         InvalidInputError, "desc.target_display_hz", ("above 0", "0.0"), kind="desc"),
    Case("auto with an infinite target", lambda d: {"generated_frames": "auto", "target_display_hz": math.inf},
         InvalidInputError, "desc.target_display_hz", ("inf",), kind="desc"),
    Case("auto with a target string", lambda d: {"generated_frames": "auto", "target_display_hz": "120"},
         InvalidInputError, "desc.target_display_hz", ("'120' (a str)",), kind="desc"),
    Case("a target with a fixed count", lambda d: {"generated_frames": 3, "target_display_hz": 120.0},
         InvalidInputError, "desc.target_display_hz", ("None unless generated_frames='auto'", "120.0"), kind="desc"),
    Case("auto with interpolation", lambda d: {"generated_frames": "auto", "target_display_hz": 120.0},
         UnsupportedError, "desc.generated_frames", ("a fixed count for pass 'vfi_cheap'", "'auto'"), kind="desc",
         pass_name="vfi_cheap"),
]

_TENSORRT_HERE = plugin.capabilities()["backends"]["tensorrt"]["available"]
if not _TENSORRT_HERE:  # a back-end that cannot run here is refused when the context is created
    NEW_CASES.append(Case("tensorrt where it cannot run", lambda d: {"backend": "tensorrt"}, BackendUnavailableError,
                          "desc.backend", ("'tensorrt'",), kind="desc", pass_name="stss"))
NEW_CASES.append(Case("tensorrt on the CPU", lambda d: {"backend": "tensorrt", "device": "cpu"},
                      BackendUnavailableError if not _TENSORRT_HERE else UnsupportedError,
                      "desc.backend" if not _TENSORRT_HERE else "desc.device", (), kind="desc", pass_name="stss_taa"))


# -- NaN and Inf in any input --------------------------------------------------------------------

#: Every image of a frame description (and of its generated frame), with the field named in the error.
IMAGES = ["color", "depth", "motion", "albedo", "normal", "roughness", "metallic", "object_id", "reactive",
          "transparency", "hudless", "ui", "generated.depth", "generated.motion", "generated.albedo",
          "generated.normal", "generated.roughness", "generated.metallic", "generated.object_id", "generated.ui"]
#: Every number and matrix.
SCALARS = ["frame_time_ms", "near", "far", "fov_y_rad", "pre_exposure", "jitter_px", "motion_scale", "view", "proj",
           "prev_view", "prev_proj", "generated.jitter_px", "generated.view", "generated.proj"]


def _image_for(dump, key):
    """A valid image for ``key`` (a G-buffer, or a mask / HUD-less colour / UI layer)."""
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


def _non_finite(key, bad):
    def build(d):
        if key in IMAGES:
            img = _image_for(d, key)
            img[(3, 5) + (0,) * (img.ndim - 2)] = bad
            return _with(d, key, img)
        return _with(d, key, _scalar_for(d, key, bad))
    return build


NON_FINITE_CASES = [
    Case(f"{key} {name}", _non_finite(key, bad), InvalidInputError,
         ".".join({"generated": "generated[0]"}.get(p, p) for p in ("frame." + key).split(".")))
    for key in IMAGES + SCALARS for name, bad in (("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf))]

CASES = _cases_of(FRAME_CASES, "frame") + _cases_of(DESC_CASES, "desc") + NEW_CASES + NON_FINITE_CASES + COUNT_CASES


def check(case: Case) -> dict:
    r = run_case(case)
    assert r["typed"], f"{case.id}: expected {case.error.__name__}, got {r['error']}: {r['message']}"
    assert r["code"] == int(case.error.code), r
    assert r["named"], f"{case.id}: the message must name {case.field} and say expected/got {case.words}: " \
                       f"{r['message']}"
    assert not r["state_changed"], f"{case.id}: the next correct frames differ from a context that never saw it"
    return r


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_call_is_refused_by_name_and_changes_nothing(case):
    check(case)


def test_case_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


def test_refused_frames_do_not_enter_the_jitter_history():
    """Validation mode: 20 frames each sent first twice with one NaN pixel (refused), then
    corrected, give the messages of the same 20 frames sent once: none about the jitter
    (refused frames counted in the jitter window made it look like 6 phases of 16)."""
    frames = SyntheticFrames()
    runs = []
    for with_refusals in (False, True):
        messages = []
        desc = frames.desc(validation=True, message_callback=lambda sev, text: messages.append(text))
        with plugin.Context(desc) as ctx:
            for n in range(20):
                for key in ("color", "depth") if with_refusals else ():
                    image = _img(frames, key, 2 * n)
                    image[3, 5] = np.nan
                    with pytest.raises(InvalidInputError, match=f"^frame.{key}:"):
                        ctx.dispatch(frames.frame(n, **{key: image}))
                ctx.dispatch(frames.frame(n))
        runs.append(messages)
    assert runs[1] == runs[0], runs[1][:3]
    assert not any("distinct jitter values" in m for m in runs[1])


def test_a_refused_frame_sends_no_messages():
    """Warnings about a frame that is then refused are not sent: the corrected frame sends them."""
    frames = SyntheticFrames()
    messages = []
    desc = frames.desc(validation=True, message_callback=lambda sev, text: messages.append(text))
    with plugin.Context(desc) as ctx:
        ctx.dispatch(frames.frame(0))
        color = _img(frames, "color", 2)
        color[3, 5, 1] = np.inf
        with pytest.raises(InvalidInputError, match="^frame.color"):  # a zero jitter (warned) and an Inf pixel
            ctx.dispatch(frames.frame(1, jitter_px=(0.0, 0.0), color=color))
        assert messages == []
        r = ctx.dispatch(frames.frame(1, jitter_px=(0.0, 0.0)))
        assert len(messages) == 1 and "frame.jitter_px is (0, 0)" in messages[0] and r.warnings == messages


def test_frame_index_gap_and_going_back(dump):
    with plugin.Context(dump.desc()) as ctx:
        ctx.dispatch(dump.frame(0))
        for bad in (2, 0, -1):
            with pytest.raises(InvalidInputError) as info:
                ctx.dispatch(dump.frame(1, frame_index=bad))
            _check_message(info.value, "frame.frame_index", "or reset=True")
        assert not ctx.dispatch(dump.frame(1)).reset  # the stream goes on


def test_the_largest_frame_index_is_taken():
    frames = SyntheticFrames()
    with plugin.Context(frames.desc(pass_name="bilinear")) as ctx:
        assert ctx.dispatch(frames.frame(0, frame_index=2 ** 63 - 1)).reset


def test_numpy_numbers_and_flags_are_taken():
    """numpy scalars and bools are numbers and flags, as Python's are."""
    frames = SyntheticFrames()
    desc = frames.desc(pass_name="bilinear", hdr=np.bool_(True), generated_frames=np.int64(1))
    with plugin.Context(desc) as ctx:
        r = ctx.dispatch(frames.frame(0, frame_index=np.int64(0), frame_time_ms=np.float32(33.3),
                                      near=np.float64(0.1), reset=np.bool_(False), jitter_px=np.zeros(2, np.float32)))
        assert np.isfinite(r.output).all()


def test_pre_exposure_outputs_carry_it():
    """Colour multiplied by pre_exposure gives outputs multiplied by it (the history is kept
    without it): what descriptions.py, the header and the README say."""
    frames = SyntheticFrames()
    results = []
    for exposure in (1.0, 4.0):
        with plugin.Context(frames.desc(pass_name="bilinear")) as ctx:
            results.append([ctx.dispatch(frames.frame(n, color=_img(frames, "color", 2 * n) * exposure,
                                                      pre_exposure=exposure)) for n in range(2)])
    for a, b in zip(*results):
        np.testing.assert_allclose(b.output, 4.0 * a.output, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.generated[0].color, 4.0 * a.generated[0].color, rtol=1e-5, atol=1e-6)


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


def test_a_backend_that_fails_to_start_at_the_first_dispatch_is_typed(monkeypatch):
    """Runners start at the first dispatch: a failure there is a BackendUnavailableError
    naming desc.backend (not a raw error), and the context can dispatch once it works."""
    from stss_runtime.backends import BackendError

    frames = SyntheticFrames()
    with plugin.Context(frames.desc(pass_name="bilinear")) as ctx:
        real = ctx.pass_.setup

        def broken(*args, **kwargs):
            raise BackendError("no engine could be built for this GPU")

        monkeypatch.setattr(ctx.pass_, "setup", broken)
        with pytest.raises(BackendUnavailableError, match="^desc.backend: expected .* to start, got BackendError"):
            ctx.dispatch(frames.frame(0))
        monkeypatch.setattr(ctx.pass_, "setup", real)
        assert ctx.dispatch(frames.frame(0)).reset


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
