"""The conventions of CONVENTIONS.md as code: jitter sequence, LOD bias, display transform."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stss_runtime.conventions import halton, jitter_offset, jitter_phase_count, jittered_projection, mip_bias
from stss_runtime.ops.encoding import display_transform, linearize_device_depth


def test_halton_known_values():
    assert [halton(i, 2) for i in range(1, 8)] == [0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875]
    assert [halton(i, 3) for i in range(1, 5)] == pytest.approx([1 / 3, 2 / 3, 1 / 9, 4 / 9])


@pytest.mark.parametrize("render_w, display_w, phases", [(480, 960, 32), (640, 960, 18),
                                                         (960, 960, 8), (320, 960, 72)])
def test_phase_count(render_w, display_w, phases):
    assert jitter_phase_count(render_w, display_w) == phases


def test_jitter_sequence_values_and_range():
    assert jitter_offset(0, 32) == pytest.approx((0.0, 1 / 3 - 0.5))
    assert jitter_offset(1, 32) == pytest.approx((-0.25, 2 / 3 - 0.5))
    assert jitter_offset(2, 32) == pytest.approx((0.25, 1 / 9 - 0.5))
    # the sequence wraps after the phase count
    assert jitter_offset(32, 32) == jitter_offset(0, 32)
    assert jitter_offset(33, 32) == jitter_offset(1, 32)
    offsets = np.array([jitter_offset(i, 32) for i in range(32)])
    assert np.all(offsets >= -0.5) and np.all(offsets <= 0.5)
    assert len({tuple(o) for o in offsets}) == 32  # all phases distinct


@pytest.mark.parametrize("phases", [8, 18, 32, 72])
def test_jitter_is_never_the_zero_vector(phases):
    for i in range(3 * phases):
        assert jitter_offset(i, phases) != (0.0, 0.0)


def test_jittered_projection_moves_points_by_jitter_pixels():
    from demo_renderer.scene import perspective

    w, h = 480, 270
    proj = perspective(60, w / h, 0.1, 100)
    p = np.array([0.7, -0.4, -5.0, 1.0])

    def pixel(m):
        c = m @ p
        return (c[0] / c[3] + 1) / 2 * w, (1 - c[1] / c[3]) / 2 * h

    x0, y0 = pixel(proj)
    x1, y1 = pixel(jittered_projection(proj, (0.3, -0.2), (w, h)))
    assert (x1 - x0, y1 - y0) == pytest.approx((0.3, -0.2), abs=1e-9)  # +y down


def test_lod_bias():
    assert mip_bias(480, 960) == -1.0
    assert mip_bias(960, 960) == 0.0


def test_display_transform():
    x = np.array([[0.0, 1.0, 1e6], [-1.0, 0.01, 0.25]], np.float32)
    out = display_transform(x)
    assert out.dtype == np.uint8
    # Reinhard: 1 -> 0.5 -> sRGB 0.7354 -> 188; huge -> 255; negative and 0 -> 0
    # 0.01 -> 0.0099 -> 0.0992 -> 25; 0.25 -> 0.2 -> 0.4846 -> 124
    assert out.tolist() == [[0, 188, 255], [0, 25, 124]]


def test_linearize_device_depth_round_trip():
    from demo_renderer.scene import perspective

    near, far = 0.1, 100.0
    proj = perspective(60, 1.5, near, far)
    z = np.array([0.1, 0.5, 3.0, 50.0, 100.0])
    clip = proj @ np.stack([np.zeros_like(z), np.zeros_like(z), -z, np.ones_like(z)])
    device = (clip[2] / clip[3] + 1) / 2
    assert linearize_device_depth(device, near, far) == pytest.approx(z, rel=1e-5)
    assert linearize_device_depth(1 - device, near, far, reversed_z=True) == pytest.approx(z, rel=1e-5)
    inf_proj_depth = linearize_device_depth(np.array([0.0]), near, math.inf)
    assert inf_proj_depth == pytest.approx([near])


def test_helpers_reject_nonsense():
    with pytest.raises(ValueError, match="render_width"):
        jitter_phase_count(0, 960)
    with pytest.raises(ValueError, match="phase_count"):
        jitter_offset(3, 0)
