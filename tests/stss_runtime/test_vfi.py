"""The frame-interpolation pass: latency contract, the cheap path on a hand-made scene, tile
pruning (gather/scatter, exactness, which tiles), the refiner's size, bad input. Synthetic,
no data/."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stss_runtime.frame import Frame
from stss_runtime.models import build_model, count_macs
from stss_runtime.models.vfi import CELL, INPUT_CHANNELS, PrunedRefiner, VfiRefiner
from stss_runtime.ops.encoding import decode_color, encode_color
from stss_runtime.ops.interpolate import VfiInputError, cheap_interpolate
from stss_runtime.ops.tiles import (
    gather_runs,
    gather_tiles,
    pad_for_tiles,
    scatter_runs,
    scatter_tiles,
    tile_grid,
    tile_runs,
)
from stss_runtime.passes import PASSES, PassError, create_pass
from stss_runtime.passes.vfi import VfiCheapPass, VfiDensePass, VfiPass

RW, RH = 24, 16  # render size
DW, DH = 48, 32  # display size


def _frame(i: int, colour=None, motion=None, depth=10.0, reset=False, poison=False) -> Frame:
    """A synthetic frame; ``poison`` fills every G-buffer but motion with NaN (a pass that
    reads them would produce NaN)."""
    z1 = torch.zeros(1, 1, RH, RW)
    fill = float("nan") if poison else 0.5
    return Frame(index=i, albedo=torch.full((1, 3, RH, RW), fill), normal=torch.full((1, 3, RH, RW), fill),
                 depth=torch.full_like(z1, float("nan") if poison else depth),
                 roughness=torch.full_like(z1, fill), metallic=torch.full_like(z1, fill),
                 motion=torch.zeros(1, 2, RH, RW) if motion is None else motion,
                 object_id=torch.zeros(1, 1, RH, RW, dtype=torch.int32),
                 view=np.eye(4), proj=np.eye(4),
                 jitter_px=(0.0, 0.0), near=0.1, far=100.0,
                 color=None if colour is None else torch.full((1, 3, RH, RW), float(colour)),
                 reset=reset)


def _colour(i: int) -> float:
    return 0.1 + 0.05 * i


def _mid(c0: float, c1: float) -> float:
    """The cheap path's blend of two constant frames with equal visibility (encoded space)."""
    e = (encode_color(torch.tensor(c0)) + encode_color(torch.tensor(c1))) / 2
    return float(decode_color(e))


def _run(p, frames):
    p.setup((RW, RH), (DW, DH))
    return [p(f) for f in frames]


def _schedule(n, reset_at=()):
    return [_frame(i, colour=_colour(i) if i % 2 == 0 else None, reset=i in reset_at,
                   poison=i % 2 == 1) for i in range(n)]


def _value(out: torch.Tensor) -> float:
    assert out.shape == (1, 3, DH, DW)
    assert torch.allclose(out, out.flatten()[0].expand_as(out), atol=1e-5), "not a constant frame"
    return float(out.flatten()[0])


def test_latency_contract_outputs_line_up():
    """Call i returns display frame i-1; the first call its own upscale; odd frames give the
    stored upscale of the frame before; even ones the interpolation between i-2 and i. Odd
    frames' G-buffers (NaN here) other than motion are never read."""
    assert VfiPass.latency_frames == 1 and VfiDensePass.latency_frames == 1
    for cls in (VfiPass, VfiDensePass):
        assert "one frame of latency" in cls.description.lower()
        assert "stss extrapolation stays the default" in cls.description.lower()
    p = VfiCheapPass(inner="bilinear")
    outs = [_value(o) for o in _run(p, _schedule(7))]
    assert outs[0] == pytest.approx(_colour(0), abs=1e-5)  # first call: its own upscale
    for i in range(1, 7):
        expect = _colour(i - 1) if (i - 1) % 2 == 0 else _mid(_colour(i - 2), _colour(i))
        assert outs[i] == pytest.approx(expect, abs=1e-4), i
    assert p.last_stats["interpolated"] and p.last_stats["tiles_refined"] == 0.0  # call 6


def test_latency_stats_and_refiner_runs():
    torch.manual_seed(0)
    p = VfiPass(inner="bilinear", model=build_model("vfi_refiner_tiny"), threshold=-1e9)
    p.setup((RW, RH), (DW, DH))
    frames = _schedule(4)
    p(frames[0])
    assert p.last_stats == {"interpolated": False}
    p(frames[1])
    assert p.last_stats == {"interpolated": False}
    out = p(frames[2])
    s = p.last_stats
    assert s["interpolated"] and s["tiles_refined"] == 1.0 and s["tiles"] == 2 * 3
    assert s["refine_ms"] > 0 and s["cheap_ms"] > 0
    assert torch.isfinite(out).all()


def test_reset_is_never_interpolated_across():
    p = VfiCheapPass(inner="bilinear")
    # cut at a rendered frame b=4: m=3 belongs to the old shot and shows a=2
    outs = [_value(o) for o in _run(p, _schedule(7, reset_at={4}))]
    assert outs[4] == pytest.approx(_colour(2), abs=1e-5)
    assert outs[5] == pytest.approx(_colour(4), abs=1e-5)
    assert outs[6] == pytest.approx(_mid(_colour(4), _colour(6)), abs=1e-4)
    # cut at an unrendered frame m=3: m belongs to the new shot and shows b=4
    outs = [_value(o) for o in _run(p, _schedule(7, reset_at={3}))]
    assert outs[3] == pytest.approx(_colour(2), abs=1e-5)
    assert outs[4] == pytest.approx(_colour(4), abs=1e-5)
    assert outs[6] == pytest.approx(_mid(_colour(4), _colour(6)), abs=1e-4)
    # reset(): the next call behaves like the first one
    frames = _schedule(4)
    p.reset()
    assert _value(p(frames[2])) == pytest.approx(_colour(2), abs=1e-5)
    p.reset()
    with pytest.raises(PassError, match="must be rendered"):
        p(frames[1])


def test_schedule_misuse_is_reported():
    p = VfiCheapPass(inner="bilinear")
    p.setup((RW, RH), (DW, DH))
    p(_frame(0, colour=0.2))
    p(_frame(1))
    with pytest.raises(PassError, match="2 unrendered frames in a row.*generated_frames=1"):
        p(_frame(2))
    for bad in (0, 4, True, 1.5):
        with pytest.raises(ValueError, match="generated_frames: expected an integer from 1 to 3"):
            VfiCheapPass(inner="bilinear", generated_frames=bad)
    with pytest.raises(ValueError, match="inner must be a zero-latency pass"):
        VfiCheapPass(inner="vfi")
    with pytest.raises(ValueError, match="inner must be"):
        VfiCheapPass(inner="nope")


def _schedule_n(count, n, reset_at=()):
    """Display frames 0..count-1 with one rendered in ``n + 1``; unrendered ones poisoned."""
    return [_frame(i, colour=_colour(i) if i % (n + 1) == 0 else None, reset=i in reset_at,
                   poison=i % (n + 1) != 0) for i in range(count)]


def _blend(c0: float, c1: float, t: float) -> float:
    """The cheap path's blend at the fraction ``t`` of two constant frames seen by both."""
    e = (1 - t) * encode_color(torch.tensor(c0)) + t * encode_color(torch.tensor(c1))
    return float(decode_color(e))


@pytest.mark.parametrize("n", [2, 3])
def test_n_frames_between_rendered_ones_are_n_display_frames_late(n):
    """At 3x and 4x: call i returns display frame i - n; frame k of n between rendered frames
    a and b is the blend at k / (n + 1); unrendered frames' G-buffers are never read."""
    p = VfiCheapPass(inner="bilinear", generated_frames=n)
    assert p.latency_frames == n and VfiCheapPass.latency_frames == 1
    count = 4 * (n + 1) + 1
    outs = [_value(o) for o in _run(p, _schedule_n(count, n))]
    assert outs[0] == pytest.approx(_colour(0), abs=1e-5)
    for i in range(n + 1, count):
        shown = i - n
        a = shown - shown % (n + 1)
        expect = _colour(a) if shown == a else _blend(_colour(a), _colour(a + n + 1), (shown - a) / (n + 1))
        assert outs[i] == pytest.approx(expect, abs=1e-4), (i, shown)
    with pytest.raises(PassError, match=f"{n + 1} unrendered frames in a row"):
        q = VfiCheapPass(inner="bilinear", generated_frames=n)
        _run(q, [_frame(0, colour=0.2)] + [_frame(i) for i in range(1, n + 2)])


def test_n_frames_a_cut_is_never_interpolated_across():
    """4x: a cut at an unrendered frame shows the old shot's last frame before it and the new
    shot's first rendered frame from it on; a cut at the rendered frame shows the old shot."""
    n = 3
    outs = [_value(o) for o in _run(VfiCheapPass(inner="bilinear", generated_frames=n),
                                    _schedule_n(13, n, reset_at={6}))]
    assert outs[8:12] == pytest.approx([_colour(4), _colour(8), _colour(8), _colour(8)], abs=1e-5)
    assert outs[12] == pytest.approx(_blend(_colour(8), _colour(12), 0.25), abs=1e-4)
    outs = [_value(o) for o in _run(VfiCheapPass(inner="bilinear", generated_frames=n),
                                    _schedule_n(13, n, reset_at={8}))]
    assert outs[8:12] == pytest.approx([_colour(4)] * 3 + [_colour(8)], abs=1e-5)


def _square_scene():
    """Static textured background (depth 10); a textured 8x8 display-px square (depth 2)
    at x 8..16 in a and x 24..32 in b (16 display px = 8 render px to the right)."""
    g = torch.Generator().manual_seed(1)
    bg = torch.rand(1, 3, DH, DW, generator=g) * 0.8 + 0.1
    sq = torch.rand(1, 3, 8, 8, generator=g) * 0.8 + 0.1

    def image(x0):
        img = bg.clone()
        img[:, :, 12:20, x0:x0 + 8] = sq
        return img

    def depth(x0):  # render resolution
        d = torch.full((1, 1, RH, RW), 10.0)
        d[:, :, 6:10, x0 // 2:x0 // 2 + 4] = 2.0
        return d

    motion_b = torch.zeros(1, 2, RH, RW)
    motion_b[:, 0, 6:10, 12:16] = -8.0  # render px: b's square pixels were 8 px left in a
    return bg, image, depth, motion_b


def test_cheap_path_moves_the_square_and_fills_from_the_frame_that_sees():
    bg, image, depth, motion_b = _square_scene()
    a, b, m = image(8), image(24), image(16)  # m: the true middle frame
    res = cheap_interpolate(a, b, motion_b, depth(8), depth(24))
    out = res.cheap
    # the square is where it belongs at t = 0.5 (exactly: the flow is whole pixels)
    assert torch.allclose(out[:, :, 12:20, 16:24], m[:, :, 12:20, 16:24], atol=1e-5)
    # background uncovered behind the square (x 8..14) is seen only by b, and the background
    # the square will cover (x 26..32) only by a: each comes from the frame that sees it.
    # (Two pixels next to the square take its dilated motion: FSR 2 style edge dilation.)
    assert torch.allclose(out[:, :, 12:20, 8:14], bg[:, :, 12:20, 8:14], atol=1e-5)
    assert torch.allclose(out[:, :, 12:20, 26:32], bg[:, :, 12:20, 26:32], atol=1e-5)
    assert float(res.visibility[0, 0, 12:20, 8:14].max()) < 1e-3  # a hides it
    assert float(res.visibility[0, 1, 12:20, 26:32].max()) < 1e-3  # b hides it
    # elsewhere the background is static and seen by both
    assert torch.allclose(out[:, :, :10], bg[:, :, :10], atol=1e-5)
    # the only wrong pixels are the two-pixel fringe around the square that its dilated
    # motion reaches (one render pixel)
    wrong = (out - m).abs().amax(1)[0] > 1e-4
    fringe = torch.zeros_like(wrong)
    fringe[10:22, 14:26] = True
    fringe[12:20, 16:24] = False
    assert wrong.any() and not (wrong & ~fringe).any()
    # a plain blend of a and b has no square where m has it
    assert bool((((a + b) / 2 - m)[:, :, 12:20, 16:24].abs().amax(1) > 1e-3).all())


def test_cheap_path_bad_input_names_the_field():
    bg, image, depth, motion_b = _square_scene()
    a = image(8)
    with pytest.raises(VfiInputError, match=r"color_b must have shape \(1, 3, 32, 48\), got \(1, 3, 32, 40\)"):
        cheap_interpolate(a, a[..., :40], motion_b, depth(8), depth(24))
    with pytest.raises(VfiInputError, match=r"depth_b must have shape \(1, 1, 16, 24\)"):
        cheap_interpolate(a, a, motion_b, depth(8), depth(24)[..., :8])
    bad = motion_b.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(VfiInputError, match="motion_ba contains NaN"):
        cheap_interpolate(a, a, bad, depth(8), depth(24))
    with pytest.raises(VfiInputError, match="t must be in"):
        cheap_interpolate(a, a, motion_b, depth(8), depth(24), t=1.0)
    with pytest.raises(VfiInputError, match="positive"):
        cheap_interpolate(a, a, motion_b, depth(8), -depth(24))


def _random_refiner(width=0.25, seed=0) -> VfiRefiner:
    torch.manual_seed(seed)
    m = VfiRefiner(width)
    torch.nn.init.normal_(m.r5.weight, std=0.2)  # a non-zero residual (fresh: identity)
    return m.eval()


def test_gather_scatter_round_trip():
    x = torch.rand(1, 5, 40, 56)
    tile, halo = 8, 4
    padded = pad_for_tiles(x, tile, halo)
    rows, cols = tile_grid((40, 56), tile)
    tiles = torch.tensor([[0, 0], [2, 3], [4, 6], [1, 5]])
    patches = gather_tiles(padded, tiles, tile, halo)
    assert patches.shape == (4, 5, tile + 2 * halo, tile + 2 * halo)
    for k, (r, c) in enumerate(tiles.tolist()):  # a patch is the tile and its halo
        assert torch.equal(patches[k], padded[0, :, r * tile:r * tile + 16, c * tile:c * tile + 16])
    canvas = torch.zeros(1, 5, rows * tile, cols * tile)
    scatter_tiles(canvas, patches, tiles, tile, halo)
    written = torch.zeros(rows, cols, dtype=torch.bool)
    written[tiles[:, 0], tiles[:, 1]] = True
    mask = written.repeat_interleave(tile, 0).repeat_interleave(tile, 1)
    assert torch.equal(canvas[0][:, mask], x[0][:, mask])
    assert not canvas[0][:, ~mask].any()


def test_runs_of_neighbouring_tiles():
    tiles = torch.tensor([[0, 0], [0, 1], [0, 2], [0, 4], [1, 4], [1, 5], [2, 0], [2, 1], [2, 2],
                          [2, 3], [2, 4]])
    runs = tile_runs(tiles, max_len=3)
    assert {k: v.tolist() for k, v in runs.items()} == {3: [[0, 0], [2, 0]], 1: [[0, 4]],
                                                        2: [[1, 4], [2, 3]]}
    assert {k: v.tolist() for k, v in tile_runs(tiles, 1).items()} == {1: tiles.tolist()}
    # gather/scatter round trip of runs
    x = torch.rand(1, 4, 48, 96)
    tile, halo = 16, 4
    padded = pad_for_tiles(x, tile, halo)
    canvas = torch.zeros(1, 4, 48, 96)
    for length, starts in runs.items():
        patches = gather_runs(padded, starts, length, tile, halo)
        assert patches.shape == (len(starts), 4, tile + 2 * halo, length * tile + 2 * halo)
        scatter_runs(canvas, patches, starts, length, tile, halo)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[tiles[:, 0], tiles[:, 1]] = True
    mask = mask.repeat_interleave(tile, 0).repeat_interleave(tile, 1)
    assert torch.equal(canvas[0][:, mask], x[0][:, mask]) and not canvas[0][:, ~mask].any()


@pytest.mark.parametrize("max_run", [1, 3])
def test_dense_equals_pruned_with_every_tile(max_run):
    model = _random_refiner()
    x = torch.rand(1, INPUT_CHANNELS, 40, 72)  # not a multiple of the tile: padded inside
    r = PrunedRefiner(model, tile=16, max_run=max_run)
    with torch.no_grad():
        dense, scores = r.dense(x)
        pruned, _, tiles = r.pruned(x, tiles=torch.nonzero(torch.ones_like(scores)))
    assert scores.shape == (3, 5) and len(tiles) == 15
    assert dense.shape == (1, 3, 40, 72)
    assert float((dense - x[:, :3]).abs().mean()) > 1e-3  # the refiner does change the frame
    assert torch.allclose(dense, pruned, atol=1e-5)


@pytest.mark.parametrize("max_run", [1, 8])
def test_tile_mask_skips_exactly_the_easy_tiles(monkeypatch, max_run):
    """With a given uncertainty map, exactly the tiles above the threshold are refined (and
    equal the dense refiner there); every other tile is bit-identical to the cheap path."""
    model = _random_refiner()
    h, w, tile = 48, 64, 16
    x = torch.rand(1, INPUT_CHANNELS, h, w)
    unc = torch.full((1, 1, h // CELL, w // CELL), -4.0)
    unc[0, 0, 0, 0] = -1.0  # tile (0, 0)
    unc[0, 0, 3, 5] = -2.0  # tile (1, 2)
    unc[0, 0, 5, 7] = -2.9  # tile (2, 3): below the threshold
    unc[0, 0, 3, 7] = -2.4  # tile (1, 3): a neighbour of (1, 2)
    real_context = model.context

    def fixed_context(inp):
        _, ctx = real_context(inp)
        return unc, ctx

    monkeypatch.setattr(model, "context", fixed_context)
    r = PrunedRefiner(model, tile=tile, threshold=-2.5, max_run=max_run)
    calls = []
    real_refine = model.refine
    monkeypatch.setattr(model, "refine", lambda a, c: calls.append(a.shape) or real_refine(a, c))
    with torch.no_grad():
        out, scores, tiles = r.pruned(x)
        pruned_calls = list(calls)  # the pruned run's refiner calls
        dense, _ = r.dense(x)
    assert sorted(map(tuple, tiles.tolist())) == [(0, 0), (1, 2), (1, 3)]
    p = tile + 2 * model.halo  # work skipped: only these patches reach the refiner
    if max_run == 1:
        assert pruned_calls == [(3, INPUT_CHANNELS, p, p)]
    else:  # (1, 2) and (1, 3) as one patch sharing their halo
        assert sorted(pruned_calls) == [(1, INPUT_CHANNELS, p, p), (1, INPUT_CHANNELS, p, p + tile)]
    refined = torch.zeros(h // tile, w // tile, dtype=torch.bool)
    refined[0, 0] = refined[1, 2] = refined[1, 3] = True
    mask = refined.repeat_interleave(tile, 0).repeat_interleave(tile, 1)
    assert torch.equal(out[0][:, ~mask], x[0, :3][:, ~mask])  # bit-identical to cheap
    assert torch.allclose(out[0][:, mask], dense[0][:, mask], atol=1e-5)
    assert not torch.equal(out[0][:, mask], x[0, :3][:, mask])


def test_refiner_size_and_contracts():
    m = build_model("vfi_refiner")
    n = sum(p.numel() for p in m.parameters())
    assert 50_000 < n < 3_000_000  # "a few million parameters at most"
    macs = count_macs(m, 64, 64)
    assert macs > 0
    with pytest.raises(ValueError, match=r"x must have shape \(B, 14, H, W\)"):
        m.context(torch.zeros(1, 13, 16, 16))
    with pytest.raises(ValueError, match="multiples of 8"):
        m.context(torch.zeros(1, 14, 20, 16))
    with pytest.raises(ValueError, match="ctx_half must have shape"):
        m.refine(torch.zeros(1, 14, 16, 16), torch.zeros(1, 1, 8, 8))
    with pytest.raises(VfiInputError, match="tile must be a positive multiple of 8"):
        PrunedRefiner(m, tile=12)


def test_registered_and_weights_errors(tmp_path):
    from stss_runtime.checkpoint import WeightsError, save_weights

    assert PASSES["vfi"] is VfiPass and PASSES["vfi_dense"] is VfiDensePass
    with pytest.raises(WeightsError, match="no weights"):
        VfiPass(weights=tmp_path / "missing.pt")
    save_weights(tmp_path / "other.pt", build_model("stss_tiny"), "stss_tiny")
    with pytest.raises(WeightsError, match="not a VFI refiner"):
        create_pass("vfi", weights=tmp_path / "other.pt")
    save_weights(tmp_path / "vfi.pt", _random_refiner(), "vfi_refiner_tiny", threshold=-2.0, tile=8)
    p = create_pass("vfi_dense", weights=tmp_path / "vfi.pt")
    assert p.refiner.threshold == -2.0 and p.refiner.tile == 8


def test_train_resume_calibrate_and_measure(tiny_dump, tmp_path):
    """The training CLI on a tiny rendered dump: runs, resumes, calibrates a threshold into
    the weights; the measurement CLI reads them and reports the three methods."""
    import csv
    import json

    from stss_runtime.checkpoint import load_weights
    from stss_runtime.cli import main as cli

    out = tmp_path / "run"
    base = ["--data", str(tiny_dump), "--out", str(out), "--batch", "2", "--crop", "32",
            "--calibrate-frames", "2", "--threads", "1", "--no-progress", "--log-every", "1",
            "--checkpoint-every", "2", "--model", "vfi_refiner_tiny"]
    assert cli(["train", "vfi"] + base + ["--steps", "2"]) == 0
    assert cli(["train", "vfi"] + base + ["--steps", "4"]) == 0  # resumes at step 2
    rows = list(csv.DictReader((out / "loss.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert (out / "loss.png").exists() and (out / "calibration.json").exists()
    model, info = load_weights(out / "weights.pt", expected_model="vfi_refiner_tiny")
    assert info["steps"] == 4 and info["tile"] == 16 and isinstance(info["threshold"], float)
    cal = json.loads((out / "calibration.json").read_text())
    assert 0.0 <= cal["fraction"] <= 1.0 and cal["psnr_pruned"] >= cal["psnr_dense"] - 0.05
    # run-time (upscaled) inputs
    up = tmp_path / "up"
    assert cli(["train", "vfi"] + base[:2] + ["--out", str(up)] + base[4:] +
                          ["--steps", "1", "--inputs", "upscaled", "--init", str(out / "weights.pt")]) == 0
    assert load_weights(up / "weights.pt")[1]["inputs"].startswith("run-time inputs")
    js = tmp_path / "m.json"
    assert cli(["measure", "vfi", "--data", str(tiny_dump), "--weights", str(out / "weights.pt"),
                             "--warmup", "2", "--threads", "1", "--no-progress", "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    s = res["summary"]
    assert s["frames_scored"] == len([m for m in range(3, 13, 2)])  # odd m >= 2 with a b after
    assert set(s["psnr_mean"]) == {"hold", "cheap", "vfi", "vfi_dense"}
    assert s["psnr_mean"]["cheap"] > s["psnr_mean"]["hold"]
    assert 0.0 <= s["tiles_refined"] <= 1.0 and s["refine_ms_dense"] > 0
