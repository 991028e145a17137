"""The motion pass's tiers 0 and 1, camera/object decomposition and its evaluation, on
hand-made frames and a tiny rendered sequence."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from demo_renderer.scene import perspective, translate
from stss_runtime import framedump
from stss_runtime.frame import Frame, frame_from_dump
from stss_runtime.motion import (
    MotionEstimator,
    MotionInputError,
    camera_motion,
    credibility,
    decompose,
    end_point_error,
    tile_mask,
)
from stss_runtime.motion.classical import DisFlow
from stss_runtime.motion.credibility import occluded_in_prev
from stss_runtime.ops.tiles import tile_region

H, W = 48, 64


def _frame(index, *, depth=None, ids=None, color=None, motion=None, view=None, jitter=(0.0, 0.0),
           metallic=0.0, roughness=0.5):
    depth = torch.full((1, 1, H, W), 10.0) if depth is None else depth
    normal = torch.zeros((1, 3, H, W))
    normal[:, 2] = 1.0
    return Frame(index=index, albedo=torch.full((1, 3, H, W), 0.5), normal=normal, depth=depth,
                 roughness=torch.full((1, 1, H, W), roughness), metallic=torch.full((1, 1, H, W), metallic),
                 motion=torch.zeros((1, 2, H, W)) if motion is None else motion,
                 object_id=torch.ones((1, 1, H, W), dtype=torch.int32) if ids is None else ids,
                 view=np.eye(4) if view is None else view, proj=perspective(60, W / H, 0.1, 100),
                 jitter_px=jitter, near=0.1, far=100.0, color=color)


def _texture(seed=0, shift=(0.0, 0.0)):
    """A high-contrast random texture (features ~3 px; think of a video screen),
    read at x + shift (bilinear)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, H // 3 + 4, W // 3 + 4), generator=g)
    ys = (torch.arange(H, dtype=torch.float32) + 0.5 + shift[1]) / 3.0 + 1.0
    xs = (torch.arange(W, dtype=torch.float32) + 0.5 + shift[0]) / 3.0 + 1.0
    gy, gx = torch.meshgrid(ys / coarse.shape[-2] * 2 - 1, xs / coarse.shape[-1] * 2 - 1, indexing="ij")
    img = torch.nn.functional.grid_sample(coarse, torch.stack([gx, gy], -1)[None], align_corners=False)
    return 0.01 + 0.99 * img


def test_camera_motion_of_a_sideways_move_matches_the_pinhole_formula():
    """The camera moves 0.5 units right in front of a wall at depth 10: static points slide
    left on screen, so each was f * 0.5 / 10 pixels further right in the previous frame
    (motion = previous minus current: dx = +f t / d)."""
    proj = perspective(60, W / H, 0.1, 100)
    f_px = proj[0, 0] * W / 2  # focal length in pixels
    view_prev = np.eye(4)
    view_cur = np.linalg.inv(translate(0.5, 0.0, 0.0))  # camera at x = +0.5
    depth = torch.full((1, 1, H, W), 10.0)
    m = camera_motion(depth, view_cur, proj, (0.0, 0.0), view_prev, proj)
    expected = float(f_px * 0.5 / 10.0)
    assert torch.allclose(m[:, 0], torch.full_like(m[:, 0], expected), atol=1e-3), (m[:, 0].mean(), expected)
    assert float(m[:, 1].abs().max()) < 1e-3
    # jitter moves where the pixel's surface is, not its motion (motion excludes jitter)
    mj = camera_motion(depth, view_cur, proj, (0.3, -0.2), view_prev, proj)
    assert torch.allclose(mj, m, atol=1e-3)


def test_camera_motion_reads_the_surface_each_jittered_pixel_shows():
    """A dolly: the camera moved from 20 to 10 units in front of a wall, so every point's
    offset from the image centre doubled since the previous frame (motion = previous minus
    current = -0.5 (p - centre), p the point's unjittered position). A jittered pixel at
    centre c shows the surface at p = c - jitter: its motion is the field at c - jitter, not
    at c. (A sideways move gives every pixel the same motion, so there any jitter handling
    passes.)"""
    proj = perspective(60, W / H, 0.1, 100)
    view_prev = np.linalg.inv(translate(0.0, 0.0, 10.0))  # camera at z = +10, the wall at z = -10
    view_cur = np.eye(4)  # camera at the origin
    depth = torch.full((1, 1, H, W), 10.0)
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    for jitter in ((0.0, 0.0), (0.4, -0.3), (-0.25, 0.45)):
        m = camera_motion(depth, view_cur, proj, jitter, view_prev, proj)
        expected = -0.5 * torch.stack([xs - jitter[0] - W / 2, ys - jitter[1] - H / 2])[None]
        assert torch.allclose(m, expected, atol=1e-3), (jitter, float((m - expected).abs().max()))
        # the case can tell: reading the field at c instead of c - jitter is off by jitter / 2
        at_centre = -0.5 * torch.stack([xs - W / 2, ys - H / 2])[None]
        assert float((m - at_centre).abs().amax()) == pytest.approx(0.5 * max(abs(v) for v in jitter), abs=1e-3)


def test_decomposition_on_a_rendered_sequence(tiny_dump):
    meta = framedump.read_meta(tiny_dump)
    prev = frame_from_dump(framedump.read_frame(tiny_dump, 5), meta, 5)
    cur = frame_from_dump(framedump.read_frame(tiny_dump, 6), meta, 6)
    cam, obj = decompose(cur.motion, cur, prev)
    assert torch.allclose(cam + obj, cur.motion)
    mag = obj.norm(dim=1)[0]
    # static surfaces (the background at least) are explained by the camera alone
    static = (cur.object_id[0, 0] == 0)
    assert static.any() and float(mag[static].max()) < 0.1
    # the traffic scene has moving cars: somewhere the camera does not explain the motion
    assert float(mag.max()) > 0.5


def _square_scene(prior_true: bool):
    """Static camera; a wall (depth 10, id 1) with a textured square (depth 5, id 2) that moved
    +4 px right since the previous frame (true motion (-4, 0) on it). A flat object moving in
    its own plane keeps every pixel's depth and world position: only colour shows the move
    inside it; its edges show in the geometry."""
    def layer(x0):
        depth = torch.full((1, 1, H, W), 10.0)
        ids = torch.ones((1, 1, H, W), dtype=torch.int32)
        depth[..., 16:32, x0:x0 + 16] = 5.0
        ids[..., 16:32, x0:x0 + 16] = 2
        return depth, ids
    wall = _texture(1)
    sq = _texture(2)
    d0, i0 = layer(16)
    d1, i1 = layer(20)
    c0 = torch.where(i0 == 2, torch.roll(sq, 16, dims=-1), wall)  # square texture moves with it
    c1 = torch.where(i1 == 2, torch.roll(sq, 20, dims=-1), wall)
    motion = torch.zeros((1, 2, H, W))
    motion[:, 0:1][i1 == 2] = -4.0
    prev = _frame(0, depth=d0, ids=i0, color=c0)
    cur = _frame(1, depth=d1, ids=i1, color=c1, motion=motion)
    prior = motion if prior_true else torch.zeros_like(motion)
    return cur, prev, prior


def test_credibility_flags_missing_object_motion_and_disocclusion_only():
    cur, prev, prior = _square_scene(prior_true=False)  # the engine missed the square's motion
    c = credibility(cur, prev, prior)[0, 0]
    inside = c[18:30, 23:34]  # inside the square, away from its edges
    assert float(inside.max()) < 0.5, "missing object motion inside the moving square must not be credible"
    uncovered = c[18:30, 16:19]  # wall the square uncovered
    assert float(uncovered.max()) < 0.5
    assert float(occluded_in_prev(cur, prev, prior)[0, 0, 18:30, 16:19].min()) == 1.0
    far = c[:, 44:]  # static wall far from the square
    assert float(far.min()) > 0.99
    # with the true motion, the square's interior is credible
    c_true = credibility(cur, prev, cur.motion)[0, 0]
    assert float(c_true[18:30, 23:34].min()) > 0.99


def test_mirror_materials_lower_credibility():
    tex = _texture(3)
    prev = _frame(0, color=tex)
    cur = _frame(1, color=tex, metallic=1.0, roughness=0.05)
    c = credibility(cur, prev, torch.zeros((1, 2, H, W)))
    assert torch.allclose(c, torch.full_like(c, 0.5))


def test_tile_mask_and_region():
    cred = torch.ones((1, 1, H, W))
    cred[..., 20, 40] = 0.0
    tiles = tile_mask(cred, tile=16)
    assert tiles.shape == (1, 1, 3, 4)
    assert tiles.sum() == 1 and bool(tiles[0, 0, 1, 2])
    assert tile_region(tiles, 16, (W, H), margin=4) == (28, 12, 52, 36)
    assert tile_region(torch.zeros_like(tiles), 16, (W, H), margin=4) is None


def test_tier1_recovers_a_known_translation():
    """A texture sliding (3, -2) px over a static plane (a video texture: geometry cannot see
    it, colour can): the engine's zero motion is flagged by the photometric test and DIS,
    started from it, recovers the translation."""
    true = torch.tensor([3.0, -2.0]).view(1, 2, 1, 1)
    prev = _frame(0, color=_texture(4))
    cur = _frame(1, color=_texture(4, shift=(3.0, -2.0)), motion=true.expand(1, 2, H, W).clone())
    zero = torch.zeros((1, 2, H, W))
    r0 = MotionEstimator(0).estimate(cur, prev, zero)
    r1 = MotionEstimator(1).estimate(cur, prev, zero)
    interior = (slice(None), slice(None), slice(8, H - 8), slice(8, W - 8))
    epe0 = float((r0.flow - true).norm(dim=1)[interior[0], interior[2], interior[3]].mean())
    epe1 = float((r1.flow - true).norm(dim=1)[interior[0], interior[2], interior[3]].mean())
    assert float(r0.credibility[interior].mean()) < 0.2  # the zero prior is flagged
    assert epe0 > 3.5 and epe1 < 0.5, (epe0, epe1)
    assert r1.tiles_estimated > 0.5
    assert torch.allclose(r1.camera, zero, atol=1e-4)  # static camera: all of it is object motion
    assert torch.allclose(r1.object, r1.flow, atol=1e-4)


def test_tier1_leaves_credible_motion_alone():
    cur, prev, _ = _square_scene(prior_true=True)
    r = MotionEstimator(1).estimate(cur, prev, cur.motion)
    far = (slice(None), slice(None), slice(None), slice(44, None))
    assert torch.equal(r.flow[far], cur.motion[far])


def test_end_point_error():
    a = torch.zeros((1, 2, 2, 2))
    b = torch.zeros((1, 2, 2, 2))
    b[:, 0] = 3.0
    b[:, 1] = 4.0
    s, n = end_point_error(a, b)
    assert (s, n) == (20.0, 4)
    mask = torch.tensor([[[[True, False], [False, False]]]])
    assert end_point_error(a, b, mask) == (5.0, 1)


def test_bad_input_is_named():
    tex = _texture(0)
    prev = _frame(0, color=tex)
    cur = _frame(1, color=tex)
    with pytest.raises(MotionInputError, match="tier"):
        MotionEstimator(3)
    with pytest.raises(MotionInputError, match=r"prior: expected shape \(1, 2, 48, 64\)"):
        MotionEstimator(0).estimate(cur, prev, torch.zeros((1, 2, 8, 8)))
    with pytest.raises(MotionInputError, match="prior: expected finite"):
        MotionEstimator(0).estimate(cur, prev, torch.full((1, 2, H, W), float("nan")))
    with pytest.raises(MotionInputError, match="prior"):
        MotionEstimator(0).estimate(cur, prev, "guess")
    unshaded = _frame(0)
    with pytest.raises(MotionInputError, match=r"prev.color"):
        MotionEstimator(1).estimate(cur, unshaded, "camera")
    with pytest.raises(ValueError, match="preset"):
        DisFlow("slowest")


def test_evaluate_reports_motion_tiers(tiny_dump, tmp_path):
    out_json = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "stss_runtime", "evaluate", "--data", str(tiny_dump),
                        "--methods", "bilinear", "--motion-tiers", "0,1", "--warmup", "4",
                        "--json", str(out_json), "--no-progress", "--threads", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "motion pass" in r.stdout and "tier1" in r.stdout
    res = json.loads(out_json.read_text())
    m = res["motion"]
    assert m["pairs"] == 10 and m["prior"] == "camera"
    for t in ("tier0", "tier1"):
        assert m[t]["epe"] >= 0 and np.isfinite(m[t]["epe"])
        assert set(m[t]) >= {"epe", "epe_credible", "epe_noncredible", "epe_moving", "ms"}
    # the camera prior misses the cars' motion: moving pixels have a large error under tier 0
    assert m["tier0"]["epe_moving"] > 0.5
    bad = subprocess.run([sys.executable, "-m", "stss_runtime", "evaluate", "--data", str(tiny_dump),
                          "--motion-tiers", "0,5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--motion-tiers" in bad.stderr


def test_fusion_keeps_a_right_prior_and_takes_a_right_estimate():
    """Where credibility flags a pixel, the estimate replaces the prior only where it
    explains the colour clearly better (a prior worth defending), or always (margin None)."""
    from stss_runtime.motion.estimator import fusion_mask

    true = torch.tensor([3.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, H, W).clone()
    zero = torch.zeros((1, 2, H, W))
    prev = _frame(0, color=_texture(4))
    cur = _frame(1, color=_texture(4, shift=(3.0, -2.0)), motion=true)
    flagged = torch.zeros((1, 1, H, W))  # every pixel "not credible"
    interior = (Ellipsis, slice(8, H - 8), slice(8, W - 8))
    take_right = fusion_mask(cur, prev, zero, true, flagged)
    keep_right = fusion_mask(cur, prev, true, zero, flagged)
    assert float(take_right[interior].float().mean()) > 0.95
    assert float(keep_right[interior].float().mean()) < 0.05
    assert bool(fusion_mask(cur, prev, true, zero, flagged, margin=None)[interior].all())
    assert not bool(fusion_mask(cur, prev, zero, true, torch.ones_like(flagged)).any())  # credible: prior


def test_budget_controller_moves_r_towards_the_frame_time_budget():
    from stss_runtime.motion import BudgetController

    c = BudgetController(100.0)
    assert c.update(400.0) == pytest.approx(0.5)  # 4x over budget: r * (1/4) ** 0.5
    assert c.update(400.0) == pytest.approx(0.25)
    assert c.update(25.0) == pytest.approx(0.5)  # 4x under: back up
    assert c.update(1.0) == 1.0  # never above 1
    for _ in range(20):
        c.update(1e6)
    assert c.r == pytest.approx(0.05)  # a budget below the floor: r_min, not 0
    for bad in (dict(budget_ms=0.0), dict(budget_ms=float("nan")), dict(budget_ms=10.0, gain=2.0),
                dict(budget_ms=10.0, r=0.0)):
        with pytest.raises(MotionInputError, match=next(iter(k for k in bad if k != "budget_ms"), "budget_ms")):
            BudgetController(**bad)


class _SlowRefiner:
    """A stand-in tier 2 whose time grows with r (a sleep of r * 40 ms), recording each r."""

    def __init__(self):
        self.rs = []

    def __call__(self, cur, prev, prior, *, r, max_iters, use_policy, tiles):
        import time

        from stss_runtime.motion.flow_network import FlowResult

        self.rs.append(r)
        time.sleep(0.04 * r)
        n = torch.ones((1, 1, -(-H // 16), -(-W // 16)))
        return FlowResult(flow=prior.clone(), iterations_mean=1.0, iterations_max=1, iterations_per_tile=n)


def test_estimator_sets_r_from_the_frame_time_budget():
    prev = _frame(0, color=_texture(4))
    cur = _frame(1, color=_texture(4, shift=(3.0, -2.0)))
    slow = _SlowRefiner()
    est = MotionEstimator(2, refiner=slow, use_policy=True, max_iters=4, budget_ms=10.0)
    results = [est.estimate(cur, prev, "zero") for _ in range(6)]
    assert slow.rs[0] == 1.0 and results[0].r == 1.0 and results[0].tier2_ms >= 40.0
    assert all(b < a for a, b in zip(slow.rs, slow.rs[1:]))  # over budget every frame: r keeps dropping
    assert slow.rs[-1] < 0.5 and results[-1].r == slow.rs[-1]
    roomy = _SlowRefiner()
    est = MotionEstimator(2, refiner=roomy, use_policy=True, budget_ms=1e6)
    for _ in range(3):
        est.estimate(cur, prev, "zero")
    assert roomy.rs == [1.0, 1.0, 1.0]
    fixed = MotionEstimator(2, refiner=_SlowRefiner()).estimate(cur, prev, "zero")
    assert fixed.r is None and fixed.tier2_ms > 0.0
    with pytest.raises(MotionInputError, match="budget_ms.*use_policy=True"):
        MotionEstimator(2, refiner=slow, budget_ms=10.0)
    with pytest.raises(MotionInputError, match="budget_ms.*tier=2"):
        MotionEstimator(1, budget_ms=10.0)
