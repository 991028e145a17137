"""Ground truth: temporal consistency with the motion vectors, and convergence with samples."""

from __future__ import annotations

import numpy as np
import pytest

from demo_renderer.renderer import Renderer
from stss_runtime import framedump
from stss_runtime.ops.encoding import display_transform

from ..conftest import GENERATED_TEST_SCENE
from .reprojection import pixel_grid, project, unproject

#: Warping the previous ground truth by the (upsampled) motion vectors must reproduce the
#: current ground truth outside disocclusions at least this well (PSNR, dB, 8-bit display
#: values). Measured at 320x180, 20 fps: 35.4 (gallery), 39.5 (traffic), 40.9 (fence) dB;
#: the residual is bilinear resampling blur of fine textures plus view-dependent shading
#: (highlights move with the camera). Wrong motion measures 24-28 dB (zero motion) and
#: 24-28 dB (flipped sign), so 32 dB separates right from wrong with margin on both sides.
WARP_PSNR_DB = 32.0


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64))[mask]
    mse = float(np.mean(d ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def bilinear_sample(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample img (h, w, c) at continuous pixel coordinates (pixel centres at +0.5), clamped."""
    h, w = img.shape[:2]
    fx = np.clip(x - 0.5, 0, w - 1)
    fy = np.clip(y - 0.5, 0, h - 1)
    x0, y0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
    top = img[y0, x0] * (1 - ax) + img[y0, x1] * ax
    bot = img[y1, x0] * (1 - ax) + img[y1, x1] * ax
    return top * (1 - ay) + bot * ay


def valid_render_pixels(cur, prev, moving) -> np.ndarray:
    """Render pixels whose surface was visible in the previous frame (no disocclusion):
    the previous depth buffer at the reprojected position matches the point's depth."""
    h, w = cur["depth"].shape
    px, py = pixel_grid(w, h, cur["jitter"].astype(np.float64))
    world = unproject(px, py, cur["depth"].astype(np.float64), cur["view"], cur["proj"], w, h)
    for oid, (m_now, m_prev) in moving.items():
        sel = cur["object_id"] == oid
        hom = np.concatenate([world[sel], np.ones((sel.sum(), 1))], -1)
        world[sel] = (hom @ (m_prev @ np.linalg.inv(m_now)).T)[:, :3]
    qx, qy = project(world, prev["view"], prev["proj"], w, h)
    qx, qy = qx + prev["jitter"][0], qy + prev["jitter"][1]  # where the jittered prev render has it
    inside = (qx >= 1) & (qx < w - 1) & (qy >= 1) & (qy < h - 1)
    ix = np.clip(qx.astype(int), 0, w - 1)
    iy = np.clip(qy.astype(int), 0, h - 1)
    hom = np.concatenate([world, np.ones(world.shape[:-1] + (1,))], -1)
    prev_depth_expected = -(hom @ prev["view"].T)[..., 2]
    prev_depth_seen = prev["depth"][iy, ix].astype(np.float64)
    ok = inside & (np.abs(prev_depth_seen - prev_depth_expected) < 0.02 * prev_depth_expected)
    ok &= prev["object_id"][iy, ix] == cur["object_id"]
    # erode by one pixel: nearest-neighbour motion upsampling is wrong across edges
    eroded = ok.copy()
    eroded[1:, :] &= ok[:-1, :]
    eroded[:-1, :] &= ok[1:, :]
    eroded[:, 1:] &= ok[:, :-1]
    eroded[:, :-1] &= ok[:, 1:]
    return eroded & (cur["object_id"] > 0)


def warp_psnr(folder, scene, motion_scale=(1.0, 1.0)) -> tuple[float, float]:
    """PSNR of previous GT warped by motion vs current GT, and the valid-pixel fraction."""
    meta = framedump.read_meta(folder)
    prev = framedump.read_frame(folder, 1)
    cur = framedump.read_frame(folder, 2)
    (rw, rh), (dw, dh) = meta["render_size"], meta["display_size"]
    sx, sy = dw / rw, dh / rh
    moving = {i + 1: (np.asarray(o.transform(float(cur["time"]))), np.asarray(o.transform(float(prev["time"]))))
              for i, o in enumerate(scene.objects) if o.animated}
    valid = valid_render_pixels(cur, prev, moving)
    Y, X = np.mgrid[0:dh, 0:dw]
    ry, rx = (Y // sy).astype(int), (X // sx).astype(int)
    m = cur["motion"][ry, rx].astype(np.float64)
    warped = bilinear_sample(prev["gt"].astype(np.float32),
                             X + 0.5 + m[..., 0] * sx * motion_scale[0],
                             Y + 0.5 + m[..., 1] * sy * motion_scale[1])
    mask = valid[ry, rx]
    a = display_transform(warped)
    b = display_transform(cur["gt"].astype(np.float32))
    return psnr(a, b, mask), float(mask.mean())


@pytest.mark.parametrize("name", ["fence", "gallery", "traffic", "plaza", GENERATED_TEST_SCENE])
def test_warped_previous_ground_truth_matches_current(scene_dumps, name):
    folder, scene = scene_dumps[name]
    good, coverage = warp_psnr(folder, scene)
    zero, _ = warp_psnr(folder, scene, motion_scale=(0.0, 0.0))
    flipped, _ = warp_psnr(folder, scene, motion_scale=(-1.0, -1.0))
    print(f"{name}: warp PSNR {good:.1f} dB over {coverage:.0%} of pixels; "
          f"zero motion {zero:.1f} dB, flipped {flipped:.1f} dB")
    assert coverage > 0.3
    assert good > WARP_PSNR_DB
    assert good > zero + 5 and good > flipped + 5


def test_ground_truth_converges(gl):
    """The difference between the N- and 2N-sample ground truth shrinks as N grows."""
    from demo_renderer.scenes import load_scene

    r = Renderer(gl, load_scene("fence"), timers=False)
    size = (160, 90)

    def gt(n):
        return Renderer.read_color(r.render_ground_truth(1.0, size, n)).copy()

    images = {n: gt(n) for n in (2, 4, 8, 16, 32, 64)}
    diffs = [float(np.abs(display_transform(images[n]).astype(float) -
                          display_transform(images[2 * n]).astype(float)).mean())
             for n in (2, 4, 8, 16, 32)]
    print("mean |GT_N - GT_2N| (8-bit) for N = 2..32:", [round(d, 3) for d in diffs])
    assert all(b < a for a, b in zip(diffs, diffs[1:])), diffs
    assert diffs[-1] < 0.5 * diffs[0]


def _high_frequency(img: np.ndarray) -> float:
    """Mean absolute Laplacian (8-bit display values): the energy of pixel-to-pixel detail,
    which aliasing (stair steps, sparkling sub-pixel features) inflates."""
    a = img.astype(float)
    return float(np.abs(4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]).mean())


def test_ground_truth_is_antialiased(gl, scene_dumps):
    """The ground truth averages samples spread over each pixel: against one sample at the
    pixel centres of the same instant and size (what every ground-truth sample would be
    without its jitter), the fence's pickets, wires and foliage lose much of their
    pixel-to-pixel high-frequency energy. Measured 0.69 of the one-sample render's."""
    folder, scene = scene_dumps["fence"]
    meta = framedump.read_meta(folder)
    f = framedump.read_frame(folder, 1)
    r = Renderer(gl, scene, timers=False)
    target, _ = r.render(float(f["time"]), float(f["time"]), tuple(meta["display_size"]), (0.0, 0.0), 0.0,
                         timed=False)
    one = display_transform(Renderer.read_color(target.color))
    gt = display_transform(f["gt"].astype(np.float32))
    r.release()
    assert one.shape == gt.shape
    ratio = _high_frequency(gt) / _high_frequency(one)
    print(f"fence: ground truth high-frequency energy {ratio:.2f} of one centred sample's")
    assert ratio < 0.85, ratio
