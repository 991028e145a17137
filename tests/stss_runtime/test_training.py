"""Training on frame dumps: RRM statistics, the loss, a tiny run whose loss drops, resume,
two-process DistributedDataParallel (gloo), and the two-stage networks' samples."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from stss_runtime import framedump
from stss_runtime.training.loop import RunConfig, learning_rate
from stss_runtime.training.loss import stss_loss
from stss_runtime.training.stss_data import (
    CropDataset,
    ExtraNetCropDataset,
    augment,
    build_cache,
    random_reshading_mask,
)


def test_rrm_rectangles_follow_the_published_bounds():
    rng = np.random.default_rng(0)
    h, w = 272, 480
    rects = [random_reshading_mask(h, w, rng) for _ in range(4000)]
    ys, xs, hs, ws = map(np.array, zip(*rects))
    assert hs.min() >= 1 and hs.max() <= h // 4 and ws.max() <= w // 4
    assert (hs * ws).max() <= h * w / 16
    assert (ys + hs).max() <= h and (xs + ws).max() <= w and ys.min() == 0 and xs.min() == 0
    # uniform sizes: mean side about (1 + max) / 2
    assert abs(hs.mean() - (1 + h // 4) / 2) < 2.0 and abs(ws.mean() - (1 + w // 4) / 2) < 3.0
    assert hs.max() == h // 4 and ws.max() == w // 4


def test_rrm_changes_only_the_mask(tiny_dump):
    with_rrm = CropDataset([tiny_dump], crop=32, rrm=True, seed=3, progress=False)
    without = CropDataset([tiny_dump], crop=32, rrm=False, seed=3, progress=False)
    cut = 0
    for k in range(len(with_rrm)):
        a, b = with_rrm[k], without[k]
        for key in ("x", "feature", "history", "target"):
            assert torch.equal(a[key], b[key]), key  # same crop, same colour
        assert torch.all(a["mask"] <= b["mask"])
        cut += int((a["mask"] < b["mask"]).any())
    assert cut > 0  # some crops see the rectangle


def _sample(h=8, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(6, h, w, generator=g), "feature": torch.rand(9, h, w, generator=g) - 0.5,
            "mask": (torch.rand(1, h, w, generator=g) > 0.3).float(),
            "history": torch.rand(12, h, w, generator=g), "target": torch.rand(3, 2 * h, 2 * w, generator=g),
            "jitter": torch.tensor([0.3, -0.2])}


def test_augment_mirrors_and_permutes_consistently():
    seen = set()
    for seed in range(40):
        ref = _sample()
        out = augment({k: v.clone() for k, v in ref.items()}, np.random.default_rng(seed))
        flipped = not torch.equal(out["mask"], ref["mask"])
        r = {k: (v.flip(-1) if flipped and k != "jitter" else v) for k, v in ref.items()}
        if flipped:  # a mirrored scene has its normals' x and its jitter's x mirrored
            assert torch.equal(out["feature"][0], -r["feature"][0])
        assert torch.equal(out["jitter"], torch.tensor([-0.3 if flipped else 0.3, -0.2]))
        assert torch.equal(out["mask"], r["mask"]) and torch.equal(out["feature"][1:6], r["feature"][1:6])
        # one colour permutation, found from the target, explains every colour channel
        perm = [next(j for j in range(3) if torch.equal(out["target"][c], r["target"][j])) for c in range(3)]
        assert sorted(perm) == [0, 1, 2]
        for base in (0, 3):
            assert torch.equal(out["x"][base:base + 3], r["x"][base + torch.tensor(perm)])
        for base in (0, 4, 8):
            assert torch.equal(out["history"][base:base + 3], r["history"][base + torch.tensor(perm)])
            assert torch.equal(out["history"][base + 3], r["history"][base + 3])  # masks stay
        assert torch.equal(out["feature"][6:9], r["feature"][6 + torch.tensor(perm)])
        seen.add((flipped, tuple(perm)))
    assert {f for f, _ in seen} == {False, True} and len({p for _, p in seen}) > 2


def test_cosine_schedule_runs_from_lr_to_min_lr(tmp_path):
    args = RunConfig(out=tmp_path / "o", steps=100, lr=4e-4, min_lr=1e-5, schedule="cosine")
    lrs = [learning_rate(args, s) for s in range(101)]
    assert lrs[0] == pytest.approx(4e-4) and lrs[100] == pytest.approx(1e-5)
    assert lrs[50] == pytest.approx((4e-4 + 1e-5) / 2)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    constant = RunConfig(out=tmp_path / "o", steps=2000, lr=3e-4, schedule="constant")
    assert {learning_rate(constant, s) for s in (0, 500, 5000)} == {3e-4}


def test_cache_matches_the_runtime_and_is_reused(tiny_dump):
    cdir = build_cache(tiny_dump, progress=False)
    stamp = (cdir / "000003.in.npy").stat().st_mtime_ns
    assert build_cache(tiny_dump, progress=False) == cdir
    assert (cdir / "000003.in.npy").stat().st_mtime_ns == stamp  # not rebuilt
    a = np.load(cdir / "000003.in.npy")
    assert a.shape == (31, 40, 64) and a.dtype == np.float16
    assert a[15].min() < 1.0  # EF frame: a hole mask, not all ones
    assert np.load(cdir / "000002.in.npy")[15].min() == 1.0  # SF: all ones
    # each frame's jitter (the network works on the jittered grid; training undoes it on the output)
    for i in (2, 3):
        expected = framedump.read_frame(tiny_dump, i)["jitter"]
        assert np.allclose(np.load(cdir / f"{i:06d}.jitter.npy"), expected)


def test_loss_parts():
    out = torch.zeros((1, 3, 8, 8))
    target = torch.ones((1, 3, 8, 8))
    mask = torch.ones((1, 1, 4, 4))
    mask[..., :2, :] = 0  # half the (upsampled) pixels are holes
    parts = stss_loss(out, target, mask)
    assert parts["l1"].item() == pytest.approx(1.0)
    assert parts["hole"].item() == pytest.approx(1.0)  # normalised by the hole count
    assert parts["grad"].item() == pytest.approx(0.0)
    assert parts["loss"].item() == pytest.approx(2.0)


def _train(*args):
    return subprocess.run([sys.executable, "-m", "stss_runtime", "train", "stss", "--no-progress",
                           "--threads", "1", *args], capture_output=True, text=True, timeout=600)


def _losses(run):
    return [float(r["loss"]) for r in csv.DictReader((run / "loss.csv").open())]


def test_tiny_training_run_loss_drops_and_resumes(tiny_dump, tmp_path):
    run = tmp_path / "run"
    common = ["--data", str(tiny_dump), "--out", str(run), "--model", "stss_tiny", "--batch", "4",
              "--crop", "32", "--lr", "2e-3", "--log-every", "5", "--checkpoint-every", "20"]
    r = _train(*common, "--steps", "40")
    assert r.returncode == 0, r.stderr
    r = _train(*common, "--steps", "80")  # continues from the checkpoint at step 40
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stdout and "at step 40" in r.stdout
    losses = _losses(run)
    assert len(losses) == 16  # one row per 5 steps, none lost or repeated across the resume
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:2]), losses
    for name in ("weights.pt", "loss.png", "checkpoint.pt"):
        assert (run / name).exists()
    from stss_runtime.checkpoint import load_weights

    model, info = load_weights(run / "weights.pt", "stss_tiny")
    assert info["steps"] == 80


def test_fine_tuning_starts_from_init_weights(tiny_dump, tmp_path):
    from stss_runtime.checkpoint import load_weights, save_weights
    from stss_runtime.models import build_model

    torch.manual_seed(5)
    start = build_model("stss_tiny")
    save_weights(tmp_path / "start.pt", start, "stss_tiny", steps=123)
    run = tmp_path / "ft"
    r = _train("--data", str(tiny_dump), "--out", str(run), "--model", "stss_tiny", "--batch", "2",
               "--crop", "32", "--steps", "2", "--lr", "1e-9", "--min-lr", "0", "--lr-schedule", "cosine",
               "--augment", "--init", str(tmp_path / "start.pt"))
    assert r.returncode == 0, r.stderr
    assert "starting from" in r.stdout and "123 steps" in r.stdout
    tuned, _ = load_weights(run / "weights.pt", "stss_tiny")
    for k, v in start.state_dict().items():  # lr 1e-9: two steps barely move the start
        assert torch.allclose(tuned.state_dict()[k], v, atol=1e-6), k
    bad = _train("--data", str(tiny_dump), "--out", str(tmp_path / "bad"), "--model", "stss", "--steps", "1",
                 "--init", str(tmp_path / "start.pt"))
    assert bad.returncode == 2 and "expected 'stss'" in bad.stderr


def test_interrupted_training_keeps_its_progress(tiny_dump, tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "stss_runtime", "train", "stss", "--no-progress", "--threads", "1",
                             "--data", str(tiny_dump), "--out", str(run), "--model", "stss_tiny",
                             "--batch", "2", "--crop", "32", "--steps", "100000", "--log-every", "1",
                             "--checkpoint-every", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "loss.csv").exists() and len(_losses(run)) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at step" in out
    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ck["step"] >= 3  # the steps done before Ctrl-C are in the checkpoint


def test_two_process_ddp_on_gloo(tiny_dump, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        # --standalone: torchrun picks a free port itself (a fixed one can collide)
                        "--standalone", "-m", "stss_runtime", "train", "stss",
                        "--no-progress", "--threads", "1", "--data", str(tiny_dump), "--out", str(run),
                        "--model", "stss_tiny", "--batch", "2", "--crop", "32", "--steps", "4",
                        "--log-every", "2"], capture_output=True, text=True, timeout=600, env=env)
    rank0 = "\n".join(line for line in r.stderr.splitlines() if line.startswith("[rank0]"))
    assert r.returncode == 0, (rank0 or r.stderr)[-3000:]
    assert len(_losses(run)) == 2  # only rank 0 logs
    assert (run / "weights.pt").exists()


def test_extranet_samples_warp_the_previous_ground_truth(tiny_dump, monkeypatch):
    """The sample's input is the previous ground truth warped by the upsampled motion: over
    every sample, it must match the target clearly better than the same samples made with no
    warp (zero motion) or the warp the wrong way (motion negated). Measured on the traffic
    fixture, mean over the samples: 0.0044 warped, 0.0102 no warp, 0.0153 flipped."""
    from stss_runtime.ops import warp as W

    ds = ExtraNetCropDataset([tiny_dump], crop=16, rrm=False, progress=False)
    s = ds[0]
    assert s["x"].shape == (3, 32, 32) and s["feature"].shape == (9, 32, 32)
    assert s["mask"].shape == (1, 32, 32) and s["history"].shape == (12, 32, 32)
    assert all(i % 2 == 1 for _, i in ds.items)

    def mean_error() -> float:  # the same crops each time: a sample's draws depend on its index only
        errs = []
        for k in range(len(ds)):
            s = ds[k]
            valid = s["mask"][0] > 0.5
            errs.append(float((s["x"] - s["target"]).abs().mean(0)[valid].mean()))
        return float(np.mean(errs))

    upsample = W.upsample_motion
    warped = mean_error()
    monkeypatch.setattr(W, "upsample_motion", lambda m, d, size: upsample(m, d, size) * 0.0)
    no_warp = mean_error()
    monkeypatch.setattr(W, "upsample_motion", lambda m, d, size: -upsample(m, d, size))
    flipped = mean_error()
    print(f"extranet samples: mean |x - target| {warped:.4f} warped, {no_warp:.4f} no warp, {flipped:.4f} flipped")
    assert warped < 0.7 * no_warp and warped < 0.7 * flipped, (warped, no_warp, flipped)
