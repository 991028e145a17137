"""The demo's free-flying camera: where WASD, Q/E, Shift and the mouse take it, and that the
poses of frames already rendered never change (motion vectors look one frame back)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from demo_renderer.freecam import PITCH_LIMIT, FreeCamera, FreeCameraError
from demo_renderer.scene import look_at

EYE, TARGET = (1.0, 2.0, 3.0), (1.0, 2.0, -7.0)  # looking down -z


def _fwd(cam: FreeCamera, k: int) -> np.ndarray:
    eye, target = cam.eye_target(k)
    return target - eye


def test_starts_where_the_scripted_camera_was():
    cam = FreeCamera(EYE, (4.0, 0.0, -1.0))
    np.testing.assert_allclose(cam.view(0), look_at(EYE, (4.0, 0.0, -1.0)), atol=1e-12)
    assert not cam.moving


@pytest.mark.parametrize("move, axis", [((0, 0, 1), (0, 0, -1)), ((0, 0, -1), (0, 0, 1)), ((1, 0, 0), (1, 0, 0)),
                                        ((-1, 0, 0), (-1, 0, 0)), ((0, 1, 0), (0, 1, 0))])
def test_keys_fly_relative_to_the_view(move, axis):
    cam = FreeCamera(EYE, TARGET, fps=60.0, speed=6.0)
    cam.steer(10, move)
    eye10, _ = cam.eye_target(10)
    eye40, _ = cam.eye_target(40)
    np.testing.assert_allclose(eye10, EYE, atol=1e-12)  # no jump where the piece starts
    np.testing.assert_allclose(eye40 - eye10, np.array(axis) * 6.0 * 30 / 60.0, atol=1e-9)  # 6 m/s for 0.5 s
    assert cam.moving


def test_shift_is_faster_and_diagonals_are_not():
    cam = FreeCamera(EYE, TARGET, fps=60.0, speed=3.0, fast_factor=4.0)
    cam.steer(0, (1, 0, 1), fast=True)
    step = cam.eye_target(1)[0] - cam.eye_target(0)[0]
    assert math.isclose(np.linalg.norm(step), 3.0 * 4.0 / 60.0, rel_tol=1e-9)


def test_mouse_turns_and_pitch_stops_short_of_vertical():
    cam = FreeCamera(EYE, TARGET, look_rad_per_px=0.01)
    cam.steer(1, look_px=(50, 0))  # pointer right: turn right, towards +x
    f = _fwd(cam, 1)
    assert f[0] > 0 and math.isclose(math.atan2(f[0], -f[2]), 0.5, rel_tol=1e-9)
    cam.steer(2, look_px=(0, 30))  # pointer down: look down
    assert _fwd(cam, 2)[1] < 0 and math.isclose(math.asin(_fwd(cam, 2)[1]), -0.3, rel_tol=1e-9)
    cam.steer(3, look_px=(0, -10_000))  # far up: clamped
    assert math.isclose(math.asin(_fwd(cam, 3)[1]), PITCH_LIMIT, rel_tol=1e-9)
    assert np.isfinite(cam.view(3)).all()


def test_steering_keeps_the_poses_of_earlier_frames():
    cam = FreeCamera(EYE, TARGET)
    cam.steer(0, (0, 0, 1))
    before = [cam.view(k) for k in range(6)]
    cam.steer(4, (1, 0, 0), look_px=(40, -20))  # frames 0..3 were rendered: they stay
    for k in range(4):
        np.testing.assert_array_equal(cam.view(k), before[k])
    assert not np.allclose(cam.view(5), before[5])
    np.testing.assert_allclose(cam.eye_target(4)[0], np.linalg.inv(before[4])[:3, 3], atol=1e-9)  # no jump
    for k in range(5, 200):  # a long flight keeps only the pieces it needs
        cam.steer(k, (0, 0, 1))
    assert len(cam._pieces) <= 10
    np.testing.assert_allclose(cam.eye_target(190)[0], cam.eye_target(191)[0] - (cam.eye_target(192)[0]
                                                                                  - cam.eye_target(191)[0]))


@pytest.mark.parametrize("kwargs, field", [({"speed": 0}, "FreeCamera.speed"),
                                           ({"fps": float("nan")}, "FreeCamera.fps"),
                                           ({"look_rad_per_px": -1}, "FreeCamera.look_rad_per_px")])
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(FreeCameraError, match=field.replace(".", r"\.") + ": expected a finite number > 0, got"):
        FreeCamera(EYE, TARGET, **kwargs)


def test_bad_poses_and_moves_are_refused():
    with pytest.raises(FreeCameraError, match=r"FreeCamera\(eye, target\): expected finite, distinct points"):
        FreeCamera(EYE, EYE)
    cam = FreeCamera(EYE, TARGET)
    with pytest.raises(FreeCameraError, match="FreeCamera.steer: expected finite move and look_px"):
        cam.steer(1, (float("nan"), 0, 0))
