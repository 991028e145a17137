"""Generated scenes (``scatter:SEED``): reproducible per seed, varied across seeds, free of the
held-out scene's materials, and usable by name everywhere a scene is named. Their motion
vectors, ground truth and dump format are checked with the built-in scenes
(``GENERATED_TEST_SCENE`` in test_motion_vectors, test_ground_truth, test_frame_dump)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from demo_renderer.scenes import GeneratedSceneError, UnknownSceneError, load_scene
from demo_renderer.scenes.generated import scatter

from .test_cli import SMALL, _one_line_error, run

SEEDS = range(16)


@functools.lru_cache(maxsize=None)
def _scene(seed: int):
    return scatter(seed)


def _fingerprint(scene, t=1.5):
    """Everything that decides the pixels: meshes, placements at time t, materials, camera."""
    parts = []
    for o in scene.objects:
        m = o.material
        tex = 0.0 if m.base_color_texture is None else float(m.base_color_texture[::7, ::7].sum())
        parts.append(np.concatenate([o.mesh.positions.ravel()[:60], np.asarray(o.transform(t)).ravel(),
                                     [m.roughness, m.metallic, tex, *m.base_color, *m.uv_scale]]))
    eye, target = scene.camera.eye_target(t)
    return np.concatenate([*parts, eye, target, [scene.camera.fov_y_deg, len(scene.objects)]])


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = scatter(4), load_scene("scatter:4"), scatter(5)
    assert a.name == b.name == "scatter:4"
    assert np.array_equal(_fingerprint(a), _fingerprint(b))
    fa, fc = _fingerprint(a), _fingerprint(c)
    assert fa.shape != fc.shape or not np.allclose(fa, fc)
    assert load_scene("scatter").name == "scatter:0"


def test_seeds_cover_every_camera_path_and_moving_objects():
    paths, moving = set(), []
    for s in SEEDS:
        sc = _scene(s)
        paths.add(sc.description.rsplit("; ", 1)[1])
        animated = [o for o in sc.objects if o.animated]
        moving.append(len(animated))
        for o in animated:  # "animated" is honest: the placement changes with time
            assert not np.allclose(o.transform(1.0), o.transform(1.1)), (s, o.name)
        for o in sc.objects:
            if not o.animated:
                assert np.array_equal(o.transform(0.0), o.transform(3.0)), (s, o.name)
    assert paths == {"dolly camera", "orbit camera", "whip camera", "fly camera"}
    assert min(moving) >= 1


def test_the_camera_never_jumps():
    """A jump would be an unannounced camera cut in the middle of a training sequence."""
    for s in SEEDS:
        cam = _scene(s).camera
        eyes = np.array([cam.eye_target(t / 60)[0] for t in range(0, 60 * 24, 3)])
        step = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
        assert step.max() < 0.5, (s, float(step.max()))


def test_no_material_of_the_held_out_scene():
    """traffic's window facades and gravel road stay unseen by anything trained on these."""
    held_out = [o.material.base_color_texture for o in load_scene("traffic").objects
                if o.name == "road" or o.name.startswith("buildings_")]
    assert len(held_out) == 3, "traffic's road or facades changed: update this test"
    for s in SEEDS:
        for o in _scene(s).objects:
            tex = o.material.base_color_texture
            if tex is None:
                continue
            for h in held_out:
                assert not (tex.shape == h.shape and np.array_equal(tex, h)), (s, o.name)


@pytest.mark.parametrize("name, words", [("scatter:x", ["scatter:SEED", "'x'"]),
                                         ("scatter:-3", ["scatter:SEED", "'-3'"]),
                                         ("scatter:", ["scatter:SEED"])])
def test_malformed_seed_is_a_typed_error(name, words):
    with pytest.raises(GeneratedSceneError) as e:
        load_scene(name)
    for w in words:
        assert w in str(e.value)


def test_bad_seed_from_python_and_near_miss_names():
    with pytest.raises(GeneratedSceneError, match="non-negative integer"):
        scatter(-1)
    with pytest.raises(UnknownSceneError, match="scatter:SEED"):
        load_scene("scatterbrain")


def test_cli_renders_and_lists_a_generated_scene(tmp_path):
    r = run("scenes")
    assert r.returncode == 0 and "scatter:SEED" in r.stdout
    r = run("render", "--scene", "scatter:21", "--frames", "2", "--out", str(tmp_path / "s"), *SMALL)
    assert r.returncode == 0, r.stderr
    from stss_runtime import framedump

    assert framedump.read_meta(tmp_path / "s")["scene"] == "scatter:21"
    assert framedump.existing_frames(tmp_path / "s") == [0, 1]
    _one_line_error(run("render", "--scene", "scatter:abc", "--out", str(tmp_path / "o"), *SMALL),
                    "scatter:SEED", "'abc'")
