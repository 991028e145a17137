"""The demo's debug views of the G-buffers (numpy only, no GL)."""

from __future__ import annotations

import numpy as np
import pytest

from demo_renderer.views import (
    DEBUG_VIEWS,
    GBUFFER_VIEWS,
    DebugViewError,
    check_view,
    gbuffer_view,
    motion_colours,
    nearest,
    object_id_colours,
)


def _arrays(h=6, w=8):
    rng = np.random.default_rng(1)
    ids = np.zeros((h, w), np.int32)
    ids[:, 2:5], ids[:, 5:] = 3, 7
    depth = np.tile(np.linspace(1.0, 50.0, w, dtype=np.float32), (h, 1))
    depth[ids == 0] = 200.0  # the sky at the far plane
    return {"albedo": rng.random((h, w, 3)).astype(np.float16), "normal": np.zeros((h, w, 3), np.float16),
            "roughness": np.full((h, w), 0.25, np.float16), "metallic": (ids == 7).astype(np.float16),
            "depth": depth, "object_id": ids, "motion": np.zeros((h, w, 2), np.float32)}


def test_every_gbuffer_has_a_view_and_the_list_is_complete():
    assert set(GBUFFER_VIEWS) == {"albedo", "normal", "roughness", "metallic", "depth", "object_id", "motion"}
    assert DEBUG_VIEWS[0] == "none" and {"holes", "tint_generated"} <= set(DEBUG_VIEWS)
    a = _arrays()
    for name in GBUFFER_VIEWS:
        img = gbuffer_view(name, a, (13, 9))  # a ratio that is not a whole number
        assert img.shape == (9, 13, 3) and img.dtype == np.uint8, name


def test_views_show_the_values():
    a = _arrays()
    assert (gbuffer_view("roughness", a, (8, 6)) == 64).all()  # 0.25 -> 64 of 255
    metal = gbuffer_view("metallic", a, (8, 6))[..., 0]
    assert (metal[:, 5:] == 255).all() and (metal[:, :5] == 0).all()
    assert (gbuffer_view("normal", a, (8, 6)) == 128).all()  # a zero vector sits mid-grey
    depth = gbuffer_view("depth", a, (8, 6))[0, :, 0].astype(int)
    assert (np.diff(depth[2:]) < 0).all() and depth[0] == depth[1] == 0  # near bright, far darker, sky black
    assert (gbuffer_view("motion", a, (8, 6)) == 0).all()  # still: black


def test_object_ids_get_distinct_colours_and_the_background_black():
    c = object_id_colours(np.arange(0, 40))
    assert (c[0] == 0).all() and (c[1:].max(axis=1) > 150).all()
    assert len({tuple(x) for x in c[1:]}) == 39
    np.testing.assert_array_equal(object_id_colours(np.array([5, 5])), object_id_colours(np.array([5, 9]))[[0, 0]])


def test_motion_wheel_direction_and_length():
    m = np.zeros((1, 4, 2), np.float32)
    m[0, 0], m[0, 1], m[0, 2] = (8, 0), (-8, 0), (2, 0)
    c = motion_colours(m)[0].astype(int)
    assert c[0, 0] > 200 and c[0, 1] < 50 and c[0, 2] < 50  # +x: red
    assert c[1, 0] < 50 and c[1, 1] > 200 and c[1, 2] > 200  # -x: cyan
    assert 0 < c[2].max() < c[0].max() and (c[3] == 0).all()  # shorter: dimmer; still: black


def test_nearest_any_ratio():
    img = np.arange(12).reshape(3, 4)
    out = nearest(img, (6, 5))
    assert out.shape == (5, 6) and out[0, 0] == 0 and out[-1, -1] == 11


def test_bad_names_and_shapes_are_refused():
    with pytest.raises(DebugViewError, match="debug_view: expected one of none, albedo.*got 'normals'"):
        check_view("normals")
    with pytest.raises(DebugViewError, match="gbuffer_view: expected one of albedo.*got 'holes'"):
        gbuffer_view("holes", _arrays(), (8, 6))
    bad = _arrays()
    bad["motion"] = np.zeros((6, 8), np.float32)
    with pytest.raises(DebugViewError,
                       match=r"gbuffer_view\('motion'\): expected a \(h, w, 2\) array, got shape \(6, 8\)"):
        gbuffer_view("motion", bad, (8, 6))
