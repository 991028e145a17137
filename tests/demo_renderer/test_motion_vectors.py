"""Motion vectors against an independent float64 reprojection (CONVENTIONS.md).

For every pixel: un-project with depth, view and (unjittered) projection of frame i, move
the point with the object's previous transform (animated objects), re-project with frame
i-1's matrices (read from the previous frame's file, as an outside user would): the stored
motion must agree within 0.05 px. Background pixels carry the rotation-only motion of a
point at infinity.
"""

from __future__ import annotations

import numpy as np
import pytest

from stss_runtime import framedump

from ..conftest import GENERATED_TEST_SCENE
from .reprojection import expected_motion

TOLERANCE_PX = 0.05
SCENES = ["fence", "gallery", "traffic", "plaza", GENERATED_TEST_SCENE]


def _moving_objects(scene, t_now, t_prev):
    return {i + 1: (np.asarray(o.transform(t_now)), np.asarray(o.transform(t_prev)))
            for i, o in enumerate(scene.objects) if o.animated}


def _check(scene_dumps, name):
    folder, scene = scene_dumps[name]
    prev = framedump.read_frame(folder, 1)
    cur = framedump.read_frame(folder, 2)
    exp = expected_motion(cur, prev["view"], prev["proj"],
                          _moving_objects(scene, float(cur["time"]), float(prev["time"])))
    return cur, exp


@pytest.mark.parametrize("name", SCENES)
def test_motion_matches_reprojection(scene_dumps, name):
    cur, exp = _check(scene_dumps, name)
    err = np.abs(cur["motion"].astype(np.float64) - exp).max(axis=-1)
    ids = cur["object_id"]
    for label, sel in (("static objects", np.isin(ids, [i + 1 for i, o in enumerate(scene_dumps[name][1].objects) if not o.animated])),
                       ("animated objects", np.isin(ids, [i + 1 for i, o in enumerate(scene_dumps[name][1].objects) if o.animated])),
                       ("background", ids == 0)):
        if sel.any():
            worst = float(err[sel].max())
            print(f"{name} {label}: worst {worst:.5f} px over {int(sel.sum())} pixels")
            assert worst < TOLERANCE_PX, f"{name}: {label}: worst motion error {worst:.4f} px"
    # the comparison is meaningful: there is real motion to get wrong
    assert np.median(np.abs(cur["motion"]).max(axis=-1)) > 0.2, "too little motion to test"


@pytest.mark.parametrize("flip", ["x", "y", "both", "swap_xy"])
def test_a_sign_or_axis_flip_fails(scene_dumps, flip):
    """The check above must reject motion vectors with a flipped sign or swapped axes."""
    cur, exp = _check(scene_dumps, "traffic")
    m = cur["motion"].astype(np.float64)
    bad = {"x": m * [-1, 1], "y": m * [1, -1], "both": -m, "swap_xy": m[..., ::-1]}[flip]
    err = np.abs(bad - exp).max(axis=-1)
    assert (err > TOLERANCE_PX).mean() > 0.5


def test_animated_object_moves_relative_to_camera(scene_dumps):
    """Cars in ``traffic`` move, so their motion differs from the static-world reprojection."""
    folder, scene = scene_dumps["traffic"]
    prev = framedump.read_frame(folder, 1)
    cur = framedump.read_frame(folder, 2)
    static_only = expected_motion(cur, prev["view"], prev["proj"], None)
    cars = np.isin(cur["object_id"], [i + 1 for i, o in enumerate(scene.objects) if o.name.startswith("car_")])
    assert cars.sum() > 20, "no car in view"
    diff = np.abs(cur["motion"].astype(np.float64) - static_only).max(axis=-1)[cars]
    assert np.median(diff) > 1.0
