"""The renderer on hand-made scenes: image orientation, texture orientation, LOD bias,
shader loading. Every test runs on the shared headless context and checks GL errors."""

from __future__ import annotations

import numpy as np
import pytest

from demo_renderer.renderer import Renderer
from demo_renderer.scene import Camera, Material, Scene, SceneObject, rotate, static, translate
from demo_renderer.scenes import primitives as P
from demo_renderer.shaderlib import ShaderError, ShaderLibrary, preprocess

SIZE = (96, 64)


def _scene(objects) -> Scene:
    cam = Camera(lambda t: (np.array([0.0, 0.0, 5.0]), np.array([0.0, 0.0, 0.0])), fov_y_deg=60,
                 near=0.1, far=50.0)
    return Scene("test", "hand-made", objects, cam)


def test_row_zero_is_the_top_and_x_grows_right(gl):
    # a small box up and to the right of the view centre
    box = SceneObject("box", P.box(0.6, 0.6, 0.6), Material(), static(translate(1.2, 0.9, 0.0)))
    r = Renderer(gl, _scene([box]), timers=False)
    target, _ = r.render(0.0, 0.0, SIZE)
    ids = r.read_frame(target)["object_id"]
    ys, xs = np.nonzero(ids == 1)
    assert len(ys) > 20
    assert ys.mean() < SIZE[1] / 2, "the box is above the centre, so in the top rows"
    assert xs.mean() > SIZE[0] / 2, "the box is right of the centre, so in the right columns"


@pytest.mark.parametrize("jitter", [(0.25, 0.0), (0.0, 0.25), (-0.3, 0.2), (0.45, -0.4)])
def test_a_jittered_render_moves_the_picture_by_plus_jitter(gl, jitter):
    """CONVENTIONS.md: the surface at unjittered position p sits at p + jitter in the image
    (x right, y down, pixels). A card tilted 20 degrees, so its edges cross pixel centres at
    every sub-pixel phase: the centroid of the pixels it covers moves by the jitter, within
    0.04 px (measured 0.015 at most; the wrong sign would be off by twice the jitter)."""
    card = SceneObject("card", P.box(2.0, 2.0, 0.1), Material(), static(rotate((0.0, 0.0, 1.0), 0.35)))
    r = Renderer(gl, _scene([card]), timers=False)
    size = (256, 192)

    def centroid(j):
        target, _ = r.render(0.0, 0.0, size, j)
        ys, xs = np.nonzero(r.read_frame(target)["object_id"] == 1)
        assert len(xs) > 3000
        return np.array([xs.mean(), ys.mean()])

    moved = centroid(jitter) - centroid((0.0, 0.0))
    r.release()
    assert np.abs(moved - np.array(jitter)).max() < 0.04, (moved, jitter)


def test_texture_top_left_is_uv_origin(gl):
    tex = np.zeros((8, 8, 4), np.uint8)
    tex[:4] = (255, 0, 0, 255)  # top half of the image red
    tex[4:] = (0, 0, 255, 255)  # bottom half blue
    quad = SceneObject("picture", P.quad(3.0, 3.0),
                       Material(base_color=(1, 1, 1, 1), base_color_texture=tex, roughness=1.0),
                       static(translate(0.0, -1.5, 0.0)))
    r = Renderer(gl, _scene([quad]), timers=False)
    target, _ = r.render(0.0, 0.0, SIZE)
    albedo = r.read_frame(target)["albedo"].astype(np.float32)
    ids = r.read_frame(target)["object_id"]
    ys, xs = np.nonzero(ids == 1)
    top = albedo[ys.min() + 2, int(xs.mean())]
    bottom = albedo[ys.max() - 2, int(xs.mean())]
    assert top[0] > 0.9 and top[2] < 0.1, top
    assert bottom[2] > 0.9 and bottom[0] < 0.1, bottom


def test_negative_lod_bias_keeps_texture_detail(gl):
    # a 256-texel checker of 4-texel cells on a quad ~33 px tall: about 8 texels per pixel,
    # mip level ~3 where the cells average to grey; a -1 bias samples level ~2 where they show
    checker = np.zeros((256, 256, 4), np.uint8)
    yy, xx = np.mgrid[0:256, 0:256]
    checker[..., :3] = (((xx // 4 + yy // 4) % 2) * 255)[..., None]
    checker[..., 3] = 255
    wall = SceneObject("wall", P.quad(3.0, 3.0), Material(base_color_texture=checker),
                       static(translate(0, -1.5, 0)))
    r = Renderer(gl, _scene([wall]), timers=False)

    def detail(bias):
        target, _ = r.render(0.0, 0.0, SIZE, lod_bias=bias)
        frame = r.read_frame(target)
        a = frame["albedo"].astype(np.float32)[..., 0]
        return float(a[frame["object_id"] == 1].std())

    sharp, blurred = detail(-1.0), detail(0.0)
    assert sharp > 1.5 * blurred, (sharp, blurred)


def test_alpha_tested_cards_cut_holes(gl):
    tex = np.zeros((16, 16, 4), np.uint8)
    tex[..., :3] = 200
    tex[:, :8, 3] = 255  # left half opaque, right half transparent
    card = SceneObject("card", P.quad(3.0, 3.0),
                       Material(base_color_texture=tex, alpha_cutoff=0.5, double_sided=True),
                       static(translate(0.0, -1.5, 0.0)))
    r = Renderer(gl, _scene([card]), timers=False)
    target, _ = r.render(0.0, 0.0, SIZE)
    ids = r.read_frame(target)["object_id"]
    xs = np.nonzero(ids == 1)[1]
    assert len(xs) > 50 and xs.max() <= SIZE[0] / 2 + 1  # only the opaque (left) half remains


def test_timer_queries_report_each_pass(gl):
    box = SceneObject("box", P.box(1, 1, 1), Material())
    r = Renderer(gl, _scene([box]), timers=True)
    for _ in range(2):
        r.render(0.0, 0.0, SIZE)
    for name in ("shadow", "gbuffer", "shading"):
        assert 0.0 < r.last_times.gpu_ms[name] < 10_000.0
        assert r.last_times.cpu_ms[name] >= 0.0
    # one query object per pass, reused: nothing leaks per frame or per ground-truth sample
    r.render_ground_truth(0.5, SIZE, 8)
    r.render(1.0, 0.9, SIZE)
    assert sorted(r._queries) == ["gbuffer", "shading", "shadow"]


def test_shader_includes_are_resolved(tmp_path):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "a.glsl").write_text('#include "include/b.glsl"\nfloat a() { return b(); }\n')
    (tmp_path / "include" / "b.glsl").write_text("float b() { return 1.0; }\n")
    (tmp_path / "prog.glsl").write_text('#include "include/a.glsl"\nvoid main() {}\n')
    src = preprocess("prog.glsl", tmp_path)
    assert "float b()" in src and "float a()" in src and "#include" not in src


def test_shader_include_errors(tmp_path):
    (tmp_path / "loop.glsl").write_text('#include "loop.glsl"\n')
    with pytest.raises(ShaderError, match="include cycle"):
        preprocess("loop.glsl", tmp_path)
    (tmp_path / "missing.glsl").write_text('#include "nowhere.glsl"\n')
    with pytest.raises(ShaderError, match="nowhere.glsl.*included from missing.glsl"):
        preprocess("missing.glsl", tmp_path)


def test_shader_compile_error_names_the_file(gl, tmp_path):
    (tmp_path / "broken.glsl").write_text(
        "#if defined VERTEX_SHADER\nvoid main() { gl_Position = vec4(0); }\n"
        "#elif defined FRAGMENT_SHADER\nout vec4 c; void main() { c = undefined_name; }\n#endif\n")
    with pytest.raises(ShaderError, match="broken.glsl"):
        ShaderLibrary(gl, tmp_path).get("broken.glsl")
    gl.error  # reading clears a compile-time error flag, if the driver set one


def test_every_project_shader_compiles(gl):
    lib = ShaderLibrary(gl)
    for name in ("gbuffer.glsl", "sky_gbuffer.glsl", "shadow.glsl", "shading.glsl",
                 "accumulate.glsl", "present.glsl"):
        assert lib.get(name) is lib.get(name)  # compiled once, then cached


def test_gbuffer_only_frames_skip_the_shadow_map_and_views_replace_the_camera(gl):
    """A frame rendered for extrapolation (shade=False) needs no shadow map; its G-buffers are
    the same either way. ``views`` stands in for the scripted camera (the demo's free camera)."""
    box = SceneObject("box", P.box(1, 1, 1), Material(), static(translate(0.3, 0.0, 0.0)))
    scene = _scene([box])
    r = Renderer(gl, scene, timers=True)
    shaded = r.read_frame(r.render(0.5, 0.4, SIZE)[0])
    assert set(r.last_times.gpu_ms) == {"shadow", "gbuffer", "shading"}
    cheap = r.read_frame(r.render(0.5, 0.4, SIZE, shade=False)[0])
    assert set(r.last_times.gpu_ms) == {"gbuffer"}
    for k in ("albedo", "normal", "depth", "motion", "object_id"):
        np.testing.assert_array_equal(cheap[k], shaded[k])
    moved = np.linalg.inv(translate(0.5, 0.0, 0.0)) @ scene.camera.view(0.5)  # the camera 0.5 m right
    target, cam = r.render(0.5, 0.4, SIZE, views=(moved, scene.camera.view(0.4)))
    np.testing.assert_array_equal(cam.view, moved)
    ids = r.read_frame(target)["object_id"]
    assert np.nonzero(ids == 1)[1].mean() < np.nonzero(shaded["object_id"] == 1)[1].mean() - 3  # box further left
    r.release()
    fb = gl.framebuffer(color_attachments=[gl.texture((4, 4), 4)])  # no stale binding left behind
    fb.release()
