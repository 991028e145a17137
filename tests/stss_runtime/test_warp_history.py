"""Warping, hole marking and the runtime's history on hand-made frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demo_renderer.scene import perspective
from stss_runtime.frame import Frame
from stss_runtime.history import History, HistoryError
from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import decode_color, encode_color

H, Wd = 24, 32


def _frame(index, square_x0, *, shaded=True, color=None, reset=False, size=(Wd, H), jitter=(0.0, 0.0)):
    """A static camera looking at a background wall (depth 10, id 1) with a square
    (depth 5, id 2) whose left edge is at column ``square_x0``; it moved +4 px since the
    previous frame, so its motion is (-4, 0)."""
    w, h = size
    depth = torch.full((1, 1, h, w), 10.0)
    ids = torch.ones((1, 1, h, w), dtype=torch.int32)
    motion = torch.zeros((1, 2, h, w))
    depth[..., 8:16, square_x0:square_x0 + 10] = 5.0
    ids[..., 8:16, square_x0:square_x0 + 10] = 2
    motion[:, 0, 8:16, square_x0:square_x0 + 10] = -4.0
    normal = torch.zeros((1, 3, h, w))
    normal[:, 2] = 1.0
    if color is None and shaded:
        color = torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(index))
    return Frame(index=index, albedo=torch.full((1, 3, h, w), 0.5), normal=normal, depth=depth,
                 roughness=torch.full((1, 1, h, w), 0.5), metallic=torch.zeros((1, 1, h, w)),
                 motion=motion, object_id=ids, view=np.eye(4), proj=perspective(60, w / h, 0.1, 100),
                 jitter_px=jitter, near=0.1, far=100.0, color=color if shaded else None, reset=reset)


def test_integer_offset_sampling_is_an_exact_shift():
    img = torch.arange(H * Wd, dtype=torch.float32).reshape(1, 1, H, Wd)
    off = torch.zeros((1, 2, H, Wd))
    off[:, 0] = 3.0
    out = W.sample(img, off)
    assert torch.allclose(out[..., :, : Wd - 3], img[..., :, 3:], atol=1e-3)  # float rounding only


def test_motion_composes():
    a = torch.zeros((1, 2, H, Wd))
    a[:, 0] = 2.0
    b = torch.zeros((1, 2, H, Wd))
    b[:, 1] = -3.0
    c = W.compose_motion(a, b)
    assert torch.allclose(c[:, 0], torch.tensor(2.0)) and torch.allclose(c[:, 1], torch.tensor(-3.0))


def test_motion_chains_through_the_field_where_the_pixel_was():
    """A field that varies across the image: the older field must be read where the pixel
    was in the middle frame (x + motion), not at the pixel itself. By hand, for pixel
    (x=5, y=4): ``motion`` there is (+3, 0), so in frame i-1 it was at (8, 4); ``older`` at
    (8, 4) is (0, +8); chained: (3, 8). A plain sum would give (3, 5), ``older`` at (5, 4)."""
    motion = torch.zeros((1, 2, H, Wd))
    motion[:, 0, :, :10] = 3.0  # the left ten columns moved 3 px left since frame i-1
    older = torch.zeros((1, 2, H, Wd))
    older[:, 1] = torch.arange(Wd, dtype=torch.float32)  # each column's own vertical motion
    c = W.compose_motion(motion, older)
    assert c[0, :, 4, 5].tolist() == [3.0, 8.0]
    assert c[0, :, 4, 20].tolist() == [0.0, 20.0]  # no motion there: the older field in place
    # the meaning of the chain: reading an image through both fields in turn equals reading
    # it once through the chained field (integer offsets, nothing clamped at the borders)
    img = torch.rand((1, 3, H, Wd), generator=torch.Generator().manual_seed(0))
    older = torch.zeros((1, 2, H, Wd))
    older[:, 1, :, :] = torch.where(torch.arange(Wd) % 2 == 0, 1.0, -2.0)  # alternating columns
    inner = (slice(None), slice(None), slice(3, H - 3), slice(0, Wd - 3))
    twice = W.sample(W.sample(img, older), motion)
    once = W.sample(img, W.compose_motion(motion, older))
    assert torch.allclose(twice[inner], once[inner], atol=1e-5)


def test_background_motion_takes_the_farthest_neighbour():
    depth = torch.full((1, 1, 9, 9), 5.0)
    depth[..., 4, 6] = 50.0
    motion = torch.zeros((1, 2, 9, 9))
    motion[:, :, 4, 6] = torch.tensor([7.0, -1.0])
    bg = W.background_motion(motion, depth, window=5)
    assert bg[0, :, 4, 4].tolist() == [7.0, -1.0]  # within 2 px of the far pixel
    assert bg[0, :, 4, 0].tolist() == [0.0, 0.0]  # farther away: unaffected


def test_translated_square_leaves_a_hole_exactly_where_background_was_uncovered():
    h = History()
    h.step(_frame(0, 10))  # square at columns 10..19
    inp = h.step(_frame(1, 14, shaded=False))  # moved to 14..23: columns 10..13 uncovered
    mask = inp.mask[0, 0]
    expected = torch.ones((H, Wd))
    expected[8:16, 10:14] = 0.0
    assert torch.equal(mask, expected), mask


def test_hole_marking_tests_object_id_and_normals():
    h = History()
    h.step(_frame(0, 10))
    f1 = _frame(1, 10, shaded=False)  # same geometry, no motion...
    f1.motion.zero_()
    ids = f1.object_id.clone()
    ids[..., 0:4, 0:4] = 3  # ...but another object in one corner
    normal = f1.normal.clone()
    normal[..., 20:24, 28:32] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # and turned normals
    from dataclasses import replace

    mask = h.step(replace(f1, object_id=ids, normal=normal)).mask[0, 0]
    assert mask[0:4, 0:4].sum() == 0 and mask[20:24, 28:32].sum() == 0
    assert mask.sum() == H * Wd - 32


def test_sf_and_ef_inputs_follow_the_schedule():
    h = History()
    frames = [_frame(i, 10 + 4 * i, shaded=(i % 2 == 0)) for i in range(6)]
    for f in frames[:4]:
        inp = h.step(f)
    # frame 3 (EF): history = frames 0, 2 (and one empty slot), oldest first
    assert inp.history.shape == (1, 12, H, Wd)
    assert inp.history[0, 3].sum() == 0  # empty slot: zero colour and mask
    inp4 = h.step(frames[4])  # SF: x = current colour twice, mask all ones
    cur = encode_color(frames[4].color)
    assert torch.allclose(inp4.x[:, :3], cur) and torch.allclose(inp4.x[:, 3:], cur)
    assert inp4.mask.min() == 1
    assert torch.allclose(inp4.history[:, 8:11], cur)  # newest history slot = the frame itself
    assert inp4.x.shape == (1, 6, H, Wd) and inp4.feature.shape == (1, 9, H, Wd)
    inp5 = h.step(frames[5])  # EF: plain warp of frame 4 in x[3:], holes filled in x[:3]
    holes = inp5.mask[0, 0] < 0.5
    assert holes.any()
    assert torch.allclose(inp5.x[:, :3][:, :, ~holes], inp5.x[:, 3:][:, :, ~holes])


def test_reset_index_gap_and_resolution_change_clear_the_history():
    for make_next in (lambda: _frame(1, 10, shaded=False, reset=True),
                      lambda: _frame(5, 10, shaded=False),
                      lambda: _frame(1, 10, shaded=False, size=(40, 24))):
        h = History()
        h.step(_frame(0, 10))
        with pytest.raises(HistoryError, match="needs a shaded frame"):
            h.step(make_next())
    h = History()
    h.step(_frame(0, 10))
    inp = h.step(_frame(7, 10))  # a gap, but shaded: starts afresh
    assert len(h.entries) == 1 and inp.history[0, :8].abs().sum() == 0


def test_colour_encoding_round_trips():
    x = torch.tensor([0.0, 0.01, 0.5, 1.0, 4.0, 30.0])
    assert torch.allclose(decode_color(encode_color(x)), x, rtol=1e-3, atol=1e-5)
    assert encode_color(torch.tensor([1e6])).item() <= 1.0


def test_network_output_lands_on_the_display_grid():
    """A render jittered by j shows unjittered position p - j at pixel p. The inputs stay on
    that grid and the STSS pass shifts its output by 2j display pixels: with the network's
    learned part switched off (head weights zero: output = bilinear x2 of the colour), a
    horizontal ramp rendered with jitter +0.4 px comes out as the unjittered ramp, not 0.8
    display px off (0.004 here)."""
    from stss_runtime.models import build_model
    from stss_runtime.passes.stss import StssPass

    ramp = (0.1 + torch.arange(Wd, dtype=torch.float32) / 100.0).view(1, 1, 1, Wd).expand(1, 3, H, Wd)
    f = _frame(0, 10, color=decode_color(ramp), jitter=(0.4, 0.0))  # the encoded colour is the ramp
    assert torch.allclose(History().step(f).x[0, 0, 12, 4:-4], ramp[0, 0, 12, 4:-4], atol=1e-5)
    model = build_model("stss_tiny").eval()
    with torch.no_grad():
        model.decoder.head.conv.weight.zero_()
        model.decoder.head.conv.bias.zero_()
    p = StssPass(model=model)
    p.setup((Wd, H), (2 * Wd, 2 * H))
    out = encode_color(p(f))[0, 0, 24, 8:-8]
    # display pixel m sits at unjittered render position (m + 0.5) / 2; pixel k shows k + 0.5 - 0.4
    m = torch.arange(2 * Wd, dtype=torch.float32)[8:-8]
    expected = 0.1 + ((m + 0.5) / 2 - 0.5 + 0.4) / 100.0
    # Keys' cubic (a = -0.75) is not exact on ramps: 0.02 px of 0.01 per render pixel
    assert torch.allclose(out, expected, atol=3e-4)
