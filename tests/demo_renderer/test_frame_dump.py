"""The frame dump format (CONVENTIONS.md): keys, shapes, dtypes, units and meta.json."""

from __future__ import annotations

import numpy as np
import pytest

from demo_renderer.scene import perspective
from stss_runtime import framedump
from stss_runtime.conventions import jitter_offset, jitter_phase_count

from ..conftest import DUMP_DISPLAY_SIZE, DUMP_FPS, DUMP_FRAMES, DUMP_RENDER_SIZE, GENERATED_TEST_SCENE


@pytest.mark.parametrize("name", ["fence", "gallery", "traffic", "plaza", GENERATED_TEST_SCENE])
def test_meta(scene_dumps, name):
    folder, scene = scene_dumps[name]
    meta = framedump.read_meta(folder)
    for key in framedump.META_FIELDS:
        assert key in meta
    assert meta["scene"] == name
    assert meta["render_size"] == list(DUMP_RENDER_SIZE)
    assert meta["display_size"] == list(DUMP_DISPLAY_SIZE)
    assert meta["fps"] == DUMP_FPS and meta["frames"] == DUMP_FRAMES
    assert meta["conventions"] == "1.0"
    assert meta["display_transform"] == "reinhard_srgb8"
    assert meta["channels"] == list(framedump.FRAME_FIELDS)
    assert (meta["near"], meta["far"], meta["fov_y_deg"]) == (
        scene.camera.near, scene.camera.far, scene.camera.fov_y_deg)
    assert framedump.existing_frames(folder) == list(range(DUMP_FRAMES))
    assert not list(folder.glob("*.tmp"))


@pytest.mark.parametrize("name", ["fence", "gallery", "traffic", "plaza", GENERATED_TEST_SCENE])
def test_frames_keys_shapes_dtypes_and_units(scene_dumps, name):
    folder, scene = scene_dumps[name]
    meta = framedump.read_meta(folder)
    (w, h), (dw, dh) = meta["render_size"], meta["display_size"]
    phases = jitter_phase_count(w, dw)
    for i in range(DUMP_FRAMES):
        f = framedump.read_frame(folder, i)
        assert set(f) == set(framedump.FRAME_FIELDS)
        framedump.validate_frame(f, (w, h), (dw, dh))  # shapes and dtypes
        assert f["color"].shape == (h, w, 3) and f["gt"].shape == (dh, dw, 3)
        ids = f["object_id"]
        fg = ids > 0
        assert 0 <= ids.min() and ids.max() <= len(scene.objects)
        assert fg.any() and (~fg).any()
        # depth: linear view depth in scene units, in [near, far]; background at far
        assert np.all(f["depth"][fg] >= meta["near"]) and np.all(f["depth"][fg] < meta["far"])
        assert np.all(f["depth"][~fg] == np.float32(meta["far"]))
        # normals: unit length (float16), view space: visible surfaces face the camera (z > 0 mostly)
        n = f["normal"].astype(np.float32)
        assert np.allclose(np.linalg.norm(n, axis=-1), 1.0, atol=2e-3)
        assert np.mean(n[fg][:, 2] > 0) > 0.95
        for key in ("roughness", "metallic"):
            v = f[key].astype(np.float32)
            assert v.min() >= 0 and v.max() <= 1
        for key in ("color", "gt", "albedo"):
            v = f[key].astype(np.float32)
            assert np.isfinite(v).all() and v.min() >= 0, key
        assert f["gt"].astype(np.float32).max() > 0.05
        assert np.isfinite(f["motion"]).all()
        # cameras: unjittered projection, jitter separate and matching the Halton sequence
        assert np.allclose(f["proj"], perspective(meta["fov_y_deg"], w / h, meta["near"], meta["far"]))
        assert np.allclose(f["view"][3], [0, 0, 0, 1])
        assert tuple(f["jitter"]) == pytest.approx(jitter_offset(i, phases))
        assert float(f["time"]) == pytest.approx(1.0 + i / DUMP_FPS)


def _frame(render=(8, 4), display=(16, 8)):
    w, h = render
    dw, dh = display
    return {
        "color": np.zeros((h, w, 3), np.float16), "albedo": np.zeros((h, w, 3), np.float16),
        "normal": np.zeros((h, w, 3), np.float16), "depth": np.ones((h, w), np.float32),
        "roughness": np.zeros((h, w), np.float16), "metallic": np.zeros((h, w), np.float16),
        "motion": np.zeros((h, w, 2), np.float32), "object_id": np.zeros((h, w), np.int32),
        "gt": np.zeros((dh, dw, 3), np.float16), "view": np.eye(4), "proj": np.eye(4),
        "jitter": np.zeros(2, np.float32), "time": np.float64(0.0),
    }


@pytest.mark.parametrize("key, bad, message", [
    ("depth", np.ones((4, 8), np.float16), "'depth' has dtype float16, expected float32"),
    ("gt", np.zeros((4, 8, 3), np.float16), "'gt' has shape (4, 8, 3), expected (8, 16, 3)"),
    ("motion", np.zeros((4, 8, 3), np.float32), "'motion' has shape"),
    ("object_id", np.zeros((4, 8), np.float32), "'object_id' has dtype float32, expected int32"),
])
def test_validate_frame_names_the_field(key, bad, message):
    f = _frame()
    f[key] = bad
    with pytest.raises(framedump.FrameDumpError, match=message.replace("(", r"\(").replace(")", r"\)")):
        framedump.validate_frame(f, (8, 4), (16, 8))


def test_write_is_atomic_and_refuses_bad_frames(tmp_path):
    f = _frame()
    framedump.write_frame(tmp_path, 0, f, render_size=(8, 4), display_size=(16, 8))
    del f["gt"]
    with pytest.raises(framedump.FrameDumpError, match="missing key 'gt'"):
        framedump.write_frame(tmp_path, 1, f, render_size=(8, 4), display_size=(16, 8))
    (tmp_path / "000002.npz.tmp").write_bytes(b"half a frame")  # a killed writer's leftover
    assert framedump.existing_frames(tmp_path) == [0]
    assert framedump.remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.npz"]


def test_read_meta_errors(tmp_path):
    with pytest.raises(framedump.FrameDumpError, match="no meta.json"):
        framedump.read_meta(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(framedump.FrameDumpError, match="not valid JSON"):
        framedump.read_meta(tmp_path)
    (tmp_path / "meta.json").write_text('{"scene": "x"}')
    with pytest.raises(framedump.FrameDumpError, match="missing fields"):
        framedump.read_meta(tmp_path)
