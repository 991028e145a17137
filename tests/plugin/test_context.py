"""The Python plugin API as an engine uses it: create, dispatch rendered frames with their
generated frames' G-buffers, reset, change resolution, every resource kind and convention
flag, UI composition, every pass through the same calls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import plugin
from stss_runtime.frame import frame_from_dump
from stss_runtime.ops.encoding import decode_color, encode_color
from stss_runtime.passes import PASSES, create_pass

from .conftest import GBUFFERS, as_nchw


def _run(dump, n_frames=3, desc=None, **frame_overrides):
    with plugin.Context(desc or dump.desc()) as ctx:
        return [ctx.dispatch(dump.frame(n, **frame_overrides)) for n in range(n_frames)]


@pytest.mark.parametrize("name", [plugin.DEFAULT_PASS, "stss"])
def test_stss_through_the_plugin_equals_the_pass(dump, name):
    """The plugin adds no error: its frames are the pass's on the same dump, for the default
    pass (the context's when none is named) and for plain STSS."""
    results = _run(dump, 3, desc=None if name == plugin.DEFAULT_PASS else dump.desc(pass_name=name))
    p = create_pass(name)
    p.setup(dump.render_size, dump.display_size)
    for n, r in enumerate(results):
        for k, out in ((2 * n, r.output), (2 * n + 1, r.generated[0].color)):
            f = frame_from_dump(dump.arrays(k), dump.meta, k, shaded=(k % 2 == 0))
            ref = p(f).numpy()
            assert out.shape == (dump.display_size[1], dump.display_size[0], 3) and out.dtype == np.float32
            assert np.abs(as_nchw(out) - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), k


def test_result_fields(dump):
    results = _run(dump, 2)
    r0, r1 = results
    assert r0.reset and not r1.reset  # the first frame starts the history
    assert r0.status == plugin.Result.OK == 0 and r0.warnings == []
    assert len(r0.generated) == 1
    assert r0.generated[0].present_time_ms == pytest.approx(dump.frame_time_ms / 2)
    assert set(r0.timings_ms) == {"inputs", "upscale", "generate", "ui", "total"}
    assert r0.timings_ms["total"] >= r0.timings_ms["upscale"] + r0.timings_ms["generate"] > 0


def test_reset_and_index_jump_mid_stream(dump):
    with plugin.Context(dump.desc()) as ctx:
        ctx.dispatch(dump.frame(0))
        ctx.dispatch(dump.frame(1))
        r = ctx.dispatch(dump.frame(2, frame_index=10, reset=True))  # a camera cut skips indices
        assert r.reset and np.isfinite(r.output).all()
        assert not ctx.dispatch(dump.frame(3, frame_index=11)).reset
        ctx.reset()
        assert ctx.dispatch(dump.frame(4, frame_index=12)).reset


@pytest.mark.parametrize("pass_name", ["stss", "stss_taa", "stss_flow"])
def test_dynamic_resolution_within_the_maximum(dump, pass_name):
    """A smaller render inside the same allocations (render_size), at other ratios too."""
    w, h = dump.render_size
    with plugin.Context(dump.desc(pass_name=pass_name)) as ctx:
        full = ctx.dispatch(dump.frame(0))
        small = ctx.dispatch(dump.frame(1, render_size=(w - 8, h - 8)))
        assert small.reset  # a size change drops the history
        back = ctx.dispatch(dump.frame(2))
        for r in (full, small, back):
            assert r.output.shape == (dump.display_size[1], dump.display_size[0], 3)
            assert r.generated[0].color.shape == r.output.shape
            assert np.isfinite(r.output).all()
    # the small render is read from the top-left rectangle of the resources: the same as
    # handing over arrays of exactly that size
    crop = {k: dump.arrays(2)[k][: h - 8, : w - 8] for k in ("color", "depth", "motion", *GBUFFERS)}
    gcrop = {k: dump.arrays(3)[k][: h - 8, : w - 8] for k in ("depth", "motion", *GBUFFERS)}
    with plugin.Context(dump.desc(pass_name=pass_name)) as ctx:
        exact = ctx.dispatch(dump.frame(1, generated=[dump.generated(1, **gcrop)], **crop))
    assert np.array_equal(exact.output, small.output)
    assert np.array_equal(exact.generated[0].color, small.generated[0].color)


@pytest.mark.parametrize("pass_name", list(PASSES))
def test_every_pass_at_another_display_ratio_shows_the_whole_picture(dump, pass_name):
    """At 1.5x the picture is the 2x one resampled, never a crop of it: a fixed-scale
    network is set up at its own ratio and its output resampled by the context (stss_flow
    once cropped), the other passes make the smaller size themselves (close to the
    resampled 2x picture: measured 0.4-2.7% mean difference on this dump)."""
    w, h = dump.render_size
    small_size = (3 * w // 2, 3 * h // 2)
    runs = {}
    for size in (dump.display_size, small_size):
        with plugin.Context(dump.desc(pass_name=pass_name, display_size=size)) as ctx:
            runs[size] = [ctx.dispatch(dump.frame(n)) for n in range(2)][-1]
            fixed = ctx.pass_.fixed_scale is not None

    def down(img):  # the context's own resampling: bicubic in the encoded space
        t = encode_color(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None])
        t = torch.nn.functional.interpolate(t, size=(small_size[1], small_size[0]), mode="bicubic",
                                            align_corners=False).clamp(0, 1)
        return decode_color(t)[0].permute(1, 2, 0).numpy()

    big, small = runs[dump.display_size], runs[small_size]
    for a, b in ((big.output, small.output), (big.generated[0].color, small.generated[0].color)):
        assert b.shape == (small_size[1], small_size[0], 3)
        rel = np.abs(down(a) - b).mean() / np.abs(b).mean()
        assert rel < (1e-5 if fixed else 0.05), (pass_name, rel)


def test_torch_dlpack_and_moderngl_resources(dump, gl):
    import moderngl

    base = _run(dump, 2)
    torch_res = _run(dump, 2, color=torch.from_numpy(dump.arrays(0)["color"]))  # frame 0's colour for both
    np_same = _run(dump, 2, color=dump.arrays(0)["color"])
    assert isinstance(torch_res[1].output, torch.Tensor)
    assert np.allclose(torch_res[1].output.numpy(), np_same[1].output, atol=1e-6)

    class DLPackOnly:  # e.g. a JAX or CuPy array
        def __init__(self, t):
            self.t = t

        def __dlpack__(self, **kw):
            return self.t.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.t.__dlpack_device__()

    dl = _run(dump, 2, color=DLPackOnly(torch.from_numpy(dump.arrays(0)["color"])))
    assert np.allclose(dl[1].output.numpy(), np_same[1].output, atol=1e-6)

    c = np.ascontiguousarray(dump.arrays(0)["color"].astype(np.float32))
    tex = gl.texture((c.shape[1], c.shape[0]), 3, np.ascontiguousarray(c[::-1]).tobytes(), dtype="f4")
    assert isinstance(tex, moderngl.Texture)
    gl_res = _run(dump, 2, color=tex)
    assert isinstance(gl_res[1].output, np.ndarray)
    assert np.allclose(gl_res[1].output, np_same[1].output, atol=1e-6)
    assert not np.allclose(base[1].output, np_same[1].output)  # the colour really changed


def test_ui_is_composited_last_and_never_warped(dump):
    W, H = dump.display_size
    ui = np.zeros((H, W, 4), np.float32)
    ui[4:20, 8:40] = (0.2, 0.9, 0.1, 1.0)  # an opaque HUD box
    ui[30:40, 8:40, 3] = 0.5
    ui[30:40, 8:40, :3] = 0.25
    plain = _run(dump, 2)
    with_ui = _run(dump, 2, ui=ui)
    for r0, r1 in zip(plain, with_ui):
        for a, b in ((r0.output, r1.output), (r0.generated[0].color, r1.generated[0].color)):
            assert np.allclose(b[4:20, 8:40], (0.2, 0.9, 0.1), atol=1e-6)  # exactly the HUD, even when generated
            assert np.allclose(b[30:40, 8:40], 0.25 + 0.5 * a[30:40, 8:40], atol=1e-5)
            assert np.array_equal(b[50:], a[50:])


def test_conventions_flags_give_the_same_frames(dump):
    """Pre-exposure, device depth (plain and reversed-Z), jittered motion vectors and
    display-resolution motion vectors are converted to the runtime's conventions. Checked
    through the STSS pass (the conversions happen before any pass): the default pass's
    display-resolution hole test flips a few pixels on float32 device depth's rounding
    (0.014 at most on this dump), which says nothing about the conversion."""
    dump = dump.with_pass("stss")
    ref = _run(dump, 2)
    near, far = float(dump.meta["near"]), float(dump.meta["far"])

    def device(z, reversed_z=False):
        ndc = (far + near - 2 * near * far / z) / (far - near)
        d = (ndc + 1) / 2
        return (1 - d) if reversed_z else d

    def check(results, tol, scale=1.0):
        for a, b in zip(ref, results):
            assert np.abs(scale * a.output - b.output).max() <= tol * scale
            assert np.abs(scale * a.generated[0].color - b.generated[0].color).max() <= tol * scale

    color = dump.arrays(0)["color"]
    with plugin.Context(dump.desc()) as ctx:
        exposed = [ctx.dispatch(dump.frame(n, color=dump.arrays(2 * n)["color"] * 4.0, pre_exposure=4.0))
                   for n in range(2)]
    check(exposed, 1e-4, scale=4.0)  # the same frames, in the input's exposure
    for rev in (False, True):
        d = dump.desc(depth_format="device", inverted_depth=rev)
        with plugin.Context(d) as ctx:
            res = []
            for n in range(2):
                g = dump.generated(n, depth=device(dump.arrays(2 * n + 1)["depth"].astype(np.float64), rev))
                res.append(ctx.dispatch(dump.frame(n, depth=device(dump.arrays(2 * n)["depth"].astype(np.float64), rev),
                                                   generated=[g])))
        check(res, 2e-3)
    with plugin.Context(dump.desc(jittered_motion=True)) as ctx:
        res, prev = [], None
        for n in range(2):
            a, b = dump.arrays(2 * n), dump.arrays(2 * n + 1)
            ja, jb = np.asarray(a["jitter"], np.float32), np.asarray(b["jitter"], np.float32)
            ma = a["motion"] + ((prev - ja) if prev is not None else 0)
            mb = b["motion"] + (ja - jb)
            res.append(ctx.dispatch(dump.frame(n, motion=ma, generated=[dump.generated(n, motion=mb)])))
            prev = jb
    check(res, 1e-4)
    with plugin.Context(dump.desc(display_res_motion=True)) as ctx:
        up = lambda m: np.repeat(np.repeat(m, 2, 0), 2, 1) * 2  # noqa: E731
        res = [ctx.dispatch(dump.frame(n, motion=up(dump.arrays(2 * n)["motion"]),
                                       generated=[dump.generated(n, motion=up(dump.arrays(2 * n + 1)["motion"]))]))
               for n in range(2)]
    check(res, 1e-4)
    assert color is dump.arrays(0)["color"]  # inputs are never modified in place


@pytest.mark.parametrize("pass_name", sorted(PASSES))
def test_every_pass_through_the_same_calls(dump, pass_name):
    results = _run(dump, 2, desc=dump.desc(pass_name=pass_name))
    for r in results:
        assert r.output.shape == (dump.display_size[1], dump.display_size[0], 3)
        assert np.isfinite(r.output).all() and np.isfinite(r.generated[0].color).all()
        assert r.output.mean() > 0


def test_upscale_only_and_other_back_ends(dump):
    res = _run(dump, 2, desc=dump.desc(generated_frames=0), with_generated=False)
    assert all(r.generated == [] for r in res)
    ort = _run(dump, 2, desc=dump.desc(backend="onnxruntime"))
    ref = _run(dump, 2)
    assert np.abs(ort[1].generated[0].color - ref[1].generated[0].color).max() < 1e-3


def test_messages_and_validation_mode(dump):
    got = []
    desc = dump.desc(validation=True, message_callback=lambda sev, msg: got.append((sev, msg)))
    with plugin.Context(desc) as ctx:
        r = ctx.dispatch(dump.frame(0, jitter_px=(0.0, 0.0)))
        assert any("jitter_px is (0, 0)" in w for w in r.warnings)
        assert got and got[0][0] == plugin.Severity.WARNING
        for n in range(1, 17):  # a sequence of two jitter values is too short
            r = ctx.dispatch(dump.frame(n % 6, frame_index=n, jitter_px=(0.25 * (-1) ** n, 0.1)))
        assert any("distinct jitter values" in w for w in r.warnings)

    def broken(sev, msg):
        raise RuntimeError("the engine's logger failed")

    with plugin.Context(dump.desc(validation=True, message_callback=broken)) as ctx:
        assert ctx.dispatch(dump.frame(0, jitter_px=(0.0, 0.0))).warnings  # the frame still completes


def test_buffers_the_engine_reuses_do_not_leak_into_the_history(dump):
    """An engine overwrites its buffers every frame; the runtime must have copied them."""
    ids = np.ascontiguousarray(dump.arrays(0)["object_id"].astype(np.int32))
    depth = np.ascontiguousarray(dump.arrays(0)["depth"].astype(np.float32))
    with plugin.Context(dump.desc()) as ctx:
        ctx.dispatch(dump.frame(0, object_id=ids, depth=depth))
        kept = ctx.last_frames[0]
        before_ids, before_depth = kept.object_id.clone(), kept.depth.clone()
        ids[:] = 99
        depth[:] = 1.0
        assert torch.equal(kept.object_id, before_ids) and torch.equal(kept.depth, before_depth)


def test_camera_out_of_step_is_reported_in_validation_mode(dump):
    with plugin.Context(dump.desc(validation=True)) as ctx:
        ctx.dispatch(dump.frame(0))
        good = ctx.dispatch(dump.frame(1, prev_view=dump.arrays(1)["view"], prev_proj=dump.arrays(1)["proj"]))
        assert not good.warnings
        bad = ctx.dispatch(dump.frame(2, prev_view=dump.arrays(2)["view"]))  # the rendered frame's, not the generated one's
        assert any("frame.prev_view differs" in w for w in bad.warnings)


def test_motion_beyond_the_screen_is_clamped_with_a_warning(dump):
    m = dump.arrays(0)["motion"].copy()
    m[0, 0] = (1e6, -1e6)
    r = _run(dump, 1, motion=m)[0]
    assert np.isfinite(r.output).all()
    assert any("clamped" in w and "frame.motion" in w for w in r.warnings)


def test_bad_input_leaves_the_stream_intact(dump):
    with plugin.Context(dump.desc()) as ctx:
        ctx.dispatch(dump.frame(0))
        with pytest.raises(plugin.InvalidInputError):
            ctx.dispatch(dump.frame(1, jitter_px=(0.9, 0.0)))
        r = ctx.dispatch(dump.frame(1))  # the corrected frame continues the history
        assert not r.reset


def test_helpers_without_a_context():
    assert plugin.render_size((1920, 1080), plugin.QualityMode.PERFORMANCE) == (960, 540)
    assert plugin.render_size((1920, 1080), "quality") == (1280, 720)
    assert plugin.jitter_phase_count(960, 1920) == 32
    j = [plugin.jitter_offset(i, 32) for i in range(32)]
    assert len(set(j)) == 32 and all(-0.5 <= x < 0.5 and -0.5 <= y < 0.5 for x, y in j)
    assert plugin.mip_bias(960, 1920) == pytest.approx(-1.0)
    assert set(plugin.required_inputs("stss")) >= {"color", "depth", "motion", "albedo", "normal", "object_id"}
    assert "albedo" in plugin.optional_inputs("bilinear") and "ui" in plugin.optional_inputs("stss")
    caps = plugin.capabilities()
    assert "stss" in caps["passes"] and set(caps["backends"]) == {"torch", "onnxruntime", "tensorrt", "openvino"}
    assert caps["gpu"] == torch.cuda.is_available()
    est = plugin.memory_estimate(plugin.ContextDescription((960, 540), (1920, 1080)))
    assert 50e6 < est["total_bytes"] < 2e9
    assert plugin.helpers.vertical_fov_from_proj(np.diag([1.0, 1 / math.tan(0.5), 1, 1])) == pytest.approx(1.0)
