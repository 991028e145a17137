"""The recurrent network (STSS with a learned display-resolution accumulation): its step 0 is
the temporal upscaler's rule with STSS where the history is invalid, no neural output is ever
brighter than its inputs, it learns through time, and its trainer runs and resumes."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from stss_runtime.checkpoint import default_weights, load_weights
from stss_runtime.conventions import jitter_offset
from stss_runtime.frame import Frame
from stss_runtime.models import build_model
from stss_runtime.models.recurrent import RecurrentStss
from stss_runtime.ops.encoding import encode_color
from stss_runtime.passes import StssPass, StssRecurrentPass, TemporalPass, create_pass
from stss_runtime.passes.stss_recurrent import history_valid
from stss_runtime.synthetic import synthetic_frames


def test_step_zero_is_the_temporal_rule_and_stss_where_the_history_is_invalid():
    """From the same state, the untrained parameter head gives exactly the temporal
    upscaler's step on every pixel whose history is valid, and STSS's own output elsewhere
    (sizes multiples of 8, so no padding intervenes)."""
    torch.manual_seed(0)
    stss = build_model("stss_tiny").eval()
    rec = StssRecurrentPass(model=RecurrentStss.from_stss(stss))
    temporal, plain = TemporalPass(), StssPass(model=stss)
    rs, ds = (96, 64), (192, 128)
    for p in (rec, temporal, plain):
        p.setup(rs, ds)
    checked = {"valid": 0, "invalid": 0}
    for i, f in enumerate(synthetic_frames(rs, 10)):
        if rec.accum is not None:  # the temporal upscaler starts from the recurrent pass's state
            temporal.accum, temporal.weight = rec.accum.clone(), rec.weight.clone()
        out_r, out_t, out_s = rec(f), temporal(f), plain(f)
        if i == 0:
            assert torch.allclose(out_r, out_s, atol=1e-6)  # nothing to accumulate: STSS
            continue
        valid = (history_valid(rec.history.previous_valid, ds) > 0.5)[0, 0]
        d_t = (encode_color(out_r) - encode_color(out_t)).abs().amax(1)[0]
        d_s = (encode_color(out_r) - encode_color(out_s)).abs().amax(1)[0]
        assert float(d_t[valid].max()) <= 1e-6, i
        if bool((~valid).any()):
            assert float(d_s[~valid].max()) <= 1e-6, i
        checked["valid"] += int(valid.sum())
        checked["invalid"] += int((~valid).sum())
        assert torch.equal(rec.weight[0, 0][valid], temporal.weight[0, 0][valid])
    assert checked["valid"] > 10_000 and checked["invalid"] > 1_000  # both cases really occur


def _perspective(fov: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1 / math.tan(fov / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0], [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                     [0, 0, -1, 0]])


def moving_square(n: int = 20, w: int = 64, h: int = 40) -> list[Frame]:
    """An unlit hand-made scene whose brightest value is 0.9: a striped square (0.9 / 0.1)
    moving one render pixel per display frame to the right over a grey checker (0.3 / 0.5),
    with exact motion, depth, ids and Halton jitter; every other display frame rendered."""
    proj = _perspective(math.radians(60), w / h, 0.1, 100.0)
    frames = []
    for i in range(n):
        jx, jy = jitter_offset(i, 32)
        ys, xs = np.mgrid[0:h, 0:w] + 0.5
        px, py = xs - jx, ys - jy  # the unjittered position each pixel shows
        x0 = 10 + i
        square = (px >= x0) & (px < x0 + 16) & (py >= 12) & (py < 28)
        checker = np.where(((np.floor(px / 4) + np.floor(py / 4)) % 2) == 0, 0.3, 0.5)
        col = np.where(square, np.where((np.floor(px - x0) % 4) < 2, 0.9, 0.1), checker)
        color = torch.from_numpy(np.repeat(col[None, None], 3, 1).astype(np.float32))
        motion = torch.zeros(1, 2, h, w)
        motion[0, 0][torch.from_numpy(square)] = -1.0
        frames.append(Frame(index=i, albedo=color.clone(), normal=torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, h, w).clone(),
                            depth=torch.from_numpy(np.where(square, 2.0, 5.0)[None, None].astype(np.float32)),
                            roughness=torch.full((1, 1, h, w), 0.5), metallic=torch.zeros(1, 1, h, w), motion=motion,
                            object_id=torch.from_numpy(np.where(square, 1, 2)[None, None].astype(np.int32)),
                            view=np.eye(4), proj=proj, jitter_px=(jx, jy), near=0.1, far=100.0,
                            color=color if i % 2 == 0 else None))
    return frames


@pytest.mark.parametrize("name", ["stss", "stss_taa", "stss_recurrent", "two_stage"])
def test_no_neural_output_is_brighter_than_its_inputs(name):
    """The shipped networks extrapolate the strip the square uncovers to values above any
    input (1.1-1.2 for STSS, a flash after the display transform's inverse); every neural
    pass bounds its output by the brightest colour its network reads."""
    kwargs = {}
    if name == "stss_recurrent":
        stss, _ = load_weights(default_weights("stss"), "stss")
        net = RecurrentStss.from_stss(stss)
        torch.nn.init.normal_(net.params.out.weight, std=0.5)  # any parameters: the bound must hold
        kwargs["model"] = net
    p = create_pass(name, **kwargs)
    p.setup((64, 40), (128, 80))
    peaks = [float(p(f).max()) for f in moving_square()]
    assert max(peaks) <= 0.9 + 1e-4, peaks
    assert min(peaks) > 0.8  # the bright stripes are still shown


def test_gradients_reach_the_parameter_head_through_time(tiny_dump):
    """Unrolled over a sequence, the loss of later frames reaches the parameter head through
    the carried state: the head's last layer (zero at the start) gets a gradient, and a
    frozen trunk none."""
    from stss_runtime.training.recurrent import sequence_losses, unroll
    from stss_runtime.training.recurrent_data import SequenceDataset

    torch.manual_seed(0)
    net = build_model("stss_recurrent_tiny")
    net.stss.requires_grad_(False)
    ds = SequenceDataset([tiny_dump], length=4, crop=32, augment=False, progress=False)
    item = {k: v[None] for k, v in ds[0].items()}
    steps = unroll(net, item)
    losses = sequence_losses(steps, item["target"], stability_weight=0.5)
    assert torch.isfinite(losses["loss"]) and float(losses["stability"]) > 0
    losses["loss"].backward()
    assert float(net.params.out.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in net.stss.parameters())
    assert all(float(s["valid"].mean()) > 0.3 for s in steps[1:])  # the history is used after frame 0
    assert float(steps[0]["valid"].max()) == 0.0
    # a burn-in runs the first frames without gradients; the loss starts after them, from their state
    net.params.out.weight.grad = None
    late = unroll(net, item, burn_in=2)
    assert [s["frame"] for s in late] == [2, 3] and float(late[0]["valid"].mean()) > 0.3
    sequence_losses(late, item["target"], stability_weight=0.5)["loss"].backward()
    assert float(net.params.out.weight.grad.abs().sum()) > 0


def test_training_cli_runs_resumes_and_its_weights_run_in_the_pass(tiny_dump, tmp_path):
    from stss_runtime.checkpoint import save_weights

    save_weights(tmp_path / "stss_tiny.pt", build_model("stss_tiny"), "stss_tiny")
    run = tmp_path / "run"
    common = [sys.executable, "-m", "stss_runtime", "train", "recurrent", "--data", str(tiny_dump), "--out", str(run),
              "--model", "stss_recurrent_tiny", "--stss-weights", str(tmp_path / "stss_tiny.pt"), "--sequence", "4",
              "--crop", "32", "--batch", "1", "--log-every", "1", "--threads", "1", "--no-progress"]
    r = subprocess.run(common + ["--steps", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(common + ["--steps", "3"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "resuming" in r.stdout, r.stderr
    rows = list(csv.DictReader((run / "loss.csv").open()))
    assert [int(x["step"]) for x in rows] == [1, 2, 3] and all(math.isfinite(float(x["loss"])) for x in rows)
    net, info = load_weights(run / "weights.pt", expected_model="stss_recurrent_tiny")
    assert info["steps"] == 3 and float(net.params.out.weight.abs().sum()) > 0  # the head moved
    p = StssRecurrentPass(model=net)
    p.setup((32, 24), (64, 48))
    for f in synthetic_frames((32, 24), 4):
        assert torch.isfinite(p(f)).all()
    bad = subprocess.run([sys.executable, "-m", "stss_runtime", "train", "recurrent", "--data", str(tiny_dump),
                          "--out", str(tmp_path / "bad"), "--model", "stss_recurrent", "--stss-weights",
                          str(tmp_path / "stss_tiny.pt"), "--steps", "1", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--stss-weights" in bad.stderr and "width" in bad.stderr


def test_sequences_follow_the_frame_generation_schedule(tiny_dump):
    """With three generated frames per rendered one, every fourth display frame is rendered
    and the runtime's inputs are made under that schedule (a generated frame three frames
    after its rendered one reads it warped three frames ahead)."""
    from stss_runtime.training.recurrent_data import MASK, SequenceDataset

    two = SequenceDataset([tiny_dump], length=8, crop=32, augment=False, progress=False)
    four = SequenceDataset([tiny_dump], length=8, crop=32, augment=False, progress=False, generated=3)
    for k in range(len(four)):
        start = four.items[k][1]
        assert four[k]["shaded"].tolist() == [(start + t) % 4 == 0 for t in range(8)]
        assert two[k]["shaded"].tolist() == [(start + t) % 2 == 0 for t in range(8)]
    # frame 7 is generated from frame 4 under the 4x schedule, from frame 6 under 2x: different
    # inputs; frame 8 is rendered under both: the same colour
    assert four.items[0] == (four.items[0][0], 5) and four.items[0][0] != two.items[0][0]  # one cache per schedule
    a, b = four[0]["inputs"], two[0]["inputs"]
    assert not torch.equal(a[2, :6], b[2, :6]) and torch.equal(a[3, :3], b[3, :3])
    assert float(a[2, MASK].mean()) < 1.0  # a generated frame: holes marked
