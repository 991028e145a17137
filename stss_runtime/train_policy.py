"""Train tier 2's iteration policy on what the motion estimator keeps: whole frames, the tiles
tier 0 finds not credible, and labels from the FUSED end-point error.

    python -m stss_runtime.train_policy --flow-weights stss_runtime/weights/flow_tier2.pt \\
        --data data/plaza_a data/fence_a --out runs/policy_fused --steps 600

Why not ``train_flow --stage policy``: that stage labels each tile by the network's raw output
on random crops, but the estimator replaces the prior only where the estimate explains the
colour clearly better (``motion.estimator.fusion_mask``). On the held-out sequences the fused
flow of 7 in 8 refined tiles is the prior, whatever the network does, so the iterations run
there are wasted; a policy that learns raw-output gains cannot see that.

Two phases:

1. Gather (once, cached under OUT/samples/, resumable pair by pair): for every --every-th
   pair of the dumps and each --prior, the estimator's tiles and fusion; the frozen network
   runs --iters iterations on those tiles with the policy's input features recorded before
   each iteration, and the fused mean EPE of every tile after 0..--iters iterations.
2. Train: a tile's label before iteration t is 1 when the iterations still to come lower its
   fused EPE by more than thr(r) = --thr-min + (--thr-max - --thr-min) * (1 - r), r drawn
   uniformly in (0, 1] per sample (the resource-scalar channel of the features is set to it);
   binary cross-entropy over the refined tiles, positives weighted to balance each batch.

Then calibrate the decision offset on training sequences with ``python -m
stss_runtime.motion.measure_tier2 --fused --calibrate`` (see stss_runtime/weights/README.md).
Resumable: re-running the same command continues from OUT/checkpoint.pt. Writes OUT/loss.csv,
OUT/loss.png and OUT/weights.pt (``checkpoint.load_weights``, model ``flow_policy``, or
``flow_policy_signals`` with ``--inputs signals``).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import framedump
from .checkpoint import WeightsError, load_weights, save_weights
from .frame import frame_from_dump
from .models.flownet import PAD, POLICY_INPUTS, TILE, IterationPolicy
from .motion.credibility import credibility, tile_mask
from .motion.decompose import camera_motion_between
from .motion.estimator import CREDIBLE_THRESHOLD, fusion_mask, margin_for
from .motion.tier2 import network_inputs, pad_to
from .train_flow import policy_labels
from .training.plots import plot_curves
from .training.runs import SignalStop, check_data_folders, end_run, resume_or_init

POLICY_MODEL_FOR = {"hidden": "flow_policy", "signals": "flow_policy_signals"}
KEYS = ["loss", "accuracy", "recall", "positive_rate", "predicted_rate"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stss_runtime.train_policy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="frame dump folders to train on")
    p.add_argument("--out", required=True, type=Path, help="run folder (samples/, checkpoint, loss.csv/png, weights.pt)")
    p.add_argument("--flow-weights", type=Path, required=True, help="the trained (frozen) flow network")
    p.add_argument("--init", type=Path, default=None,
                   help="start the policy from these weights instead of from scratch (ignored on resume)")
    p.add_argument("--inputs", choices=POLICY_INPUTS, default="hidden",
                   help="what the policy reads: 'hidden' (the GRU state, residual flow, last update; "
                        "model flow_policy) or 'signals' (photometric residuals, flow sizes, match "
                        "margins, no GRU state; model flow_policy_signals). Default: hidden")
    p.add_argument("--prior", nargs="+", default=["camera", "zero"], choices=("camera", "zero"),
                   help="priors to gather samples from, as the estimator starts (default: camera zero)")
    p.add_argument("--every", type=int, default=4, help="use every N-th pair of each dump (default 4)")
    p.add_argument("--iters", type=int, default=4, help="iterations of the recorded run (default 4)")
    p.add_argument("--steps", type=int, default=600, help="optimisation steps (default 600)")
    p.add_argument("--batch", type=int, default=4, help="frames per step (default 4)")
    p.add_argument("--thr-min", type=float, default=0.01, help="fused EPE gain threshold at r = 1 (px, tile mean)")
    p.add_argument("--thr-max", type=float, default=0.1, help="fused EPE gain threshold as r -> 0 (px, tile mean)")
    p.add_argument("--max-pos-weight", type=float, default=20.0,
                   help="cap of the per-batch positive weight (negatives / positives; default 20)")
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (default 2e-3)")
    p.add_argument("--min-lr", type=float, default=1e-5, help="cosine schedule's final learning rate")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    check_data_folders(p, a.data)
    if not a.flow_weights.exists():
        p.error(f"--flow-weights {a.flow_weights}: no such file")
    if a.init is not None and not a.init.exists():
        p.error(f"--init {a.init}: no such file")
    for name in ("every", "iters", "steps", "batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(a, name)}")
    if not 0.0 <= a.thr_min <= a.thr_max:
        p.error(f"need 0 <= --thr-min <= --thr-max, got {a.thr_min} and {a.thr_max}")
    return a


def fused_tile_epe(flow: torch.Tensor, target: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Mean end-point error per TILE x TILE tile (1, 1, th, tw); padding pixels do not count."""
    e = (flow - target).norm(dim=1, keepdim=True)
    h, w = e.shape[-2:]
    pad = (0, tw * TILE - w, 0, th * TILE - h)
    s = F.avg_pool2d(F.pad(e, pad), TILE, divisor_override=1)
    n = F.avg_pool2d(F.pad(torch.ones_like(e), pad), TILE, divisor_override=1)
    return s / n.clamp_min(1.0)


def gather_sample(net, cur, prev, prior_kind: str, iters: int, inputs: str = "hidden") -> dict | None:
    """One frame as the estimator runs tier 2 from ``prior_kind``: the policy's features before
    each iteration (padded size), the refined tiles and their fused EPE after 0..iters
    iterations; None when no tile is refined."""
    w, h = cur.size
    cam = camera_motion_between(cur, prev)
    prior = cam if prior_kind == "camera" else torch.zeros_like(cam)
    cred = credibility(cur, prev, prior, camera=cam)
    tiles = tile_mask(cred, threshold=CREDIBLE_THRESHOLD)
    if not bool(tiles.any()):
        return None
    ph, pw = -(-h // PAD) * PAD // TILE, -(-w // PAD) * PAD // TILE
    active = torch.zeros(1, 1, ph, pw, dtype=torch.bool)
    active[..., :tiles.shape[-2], :tiles.shape[-1]] = tiles
    m_cur, m_prev, ctx, jd = network_inputs(cur, prev)
    out = net.refine(pad_to(m_cur), pad_to(m_prev), pad_to(ctx), pad_to(prior), jd, iters,
                     record=True, active=active, record_inputs=inputs)
    margin = margin_for(prior_kind)
    epes = []
    for k in range(iters + 1):
        f = prior if k == 0 else out.flows[k - 1][..., :h, :w]
        f = torch.where(fusion_mask(cur, prev, prior, f, cred, margin=margin), f, prior)
        epes.append(fused_tile_epe(f, cur.motion.float(), ph, pw)[0, 0])
    return {"features": torch.cat(out.policy_inputs, 0).half(),  # (iters, C, H/4, W/4)
            "epe": torch.stack(epes).float(),  # (iters + 1, ph, pw)
            "active": active[0, 0].clone(), "prior": prior_kind}


def gather(args, net, sample_dir: Path) -> list[Path]:
    """Cache one file per (pair, prior) under ``sample_dir``; existing files are kept (resume)."""
    sample_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for folder in args.data:
        idx = framedump.existing_frames(folder)
        jobs += [(folder, i, kind) for i in idx[1::args.every] if i - 1 in idx for kind in args.prior]
    paths = []
    it = jobs
    if not args.no_progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="gather fused samples", unit="frame")
    meta_cache: dict = {}
    pair_key = cur = prev = None
    stop = SignalStop()
    try:
        with torch.inference_mode():
            for folder, i, kind in it:
                if stop.now:
                    break
                tag = "" if args.inputs == "hidden" else f"_{args.inputs}"
                path = sample_dir / f"{Path(folder).name}_{i:06d}_{kind}_it{args.iters}{tag}.pt"
                empty = path.with_suffix(".empty")
                if path.exists():
                    paths.append(path)
                    continue
                if empty.exists():
                    continue
                if pair_key != (folder, i):  # the priors of one pair are consecutive jobs: read it once
                    if folder not in meta_cache:
                        meta_cache[folder] = framedump.read_meta(folder)
                    meta = meta_cache[folder]
                    cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
                    prev = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
                    pair_key = (folder, i)
                s = gather_sample(net, cur, prev, kind, args.iters, args.inputs)
                if s is None:
                    empty.touch()
                    continue
                tmp = path.with_suffix(".tmp")
                torch.save(s, tmp)
                os.replace(tmp, path)
                paths.append(path)
    finally:
        stop.restore()
    if stop.now:
        raise KeyboardInterrupt
    return paths


def train(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        net, _ = load_weights(args.flow_weights, expected_model="flow")
    except WeightsError as e:
        print(f"train_policy: --flow-weights: {e}", file=sys.stderr)
        return 2
    net.eval().requires_grad_(False)
    try:
        paths = gather(args, net, out / "samples")
    except KeyboardInterrupt:
        print(f"train_policy: interrupted while gathering; what was gathered is kept in {out / 'samples'}")
        return 130
    if not paths:
        print("train_policy: no frame had a refined tile; nothing to train on", file=sys.stderr)
        return 2
    samples = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    model = IterationPolicy(stride=net.stride, inputs=args.inputs)
    model_name = POLICY_MODEL_FOR[args.inputs]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-5)
    ckpt_path = out / "checkpoint.pt"
    step = resume_or_init("train_policy", ckpt_path, model, opt, model_name, args.init)
    if step is None:
        return 2
    model.offset.zero_()  # trained without an offset; calibration sets it
    if step >= args.steps:
        print(f"train_policy: {out} is already at step {step} >= --steps {args.steps}; nothing to do")
        return 0
    info = {"steps": args.steps, "data": [str(d) for d in args.data], "labels": "fused",
            "prior": args.prior, "iters": args.iters, "samples": len(samples), "inputs": args.inputs}

    def save_checkpoint():
        tmp = out / "checkpoint.tmp.pt"
        torch.save({"model_name": model_name, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "step": step}, tmp)
        os.replace(tmp, ckpt_path)
        save_weights(out / "weights.pt", model, model_name, **(info | {"steps": step}))
        if (out / "loss.csv").exists():
            plot_curves(out / "loss.csv", out / "loss.png", KEYS, "BCE / rate", f"training: {out.name}")

    new = not (out / "loss.csv").exists()
    csv_file = (out / "loss.csv").open("a", newline="")
    writer = csv.writer(csv_file)
    if new:
        writer.writerow(["step"] + KEYS + ["lr", "seconds_per_step", "wall_time"])
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, unit="step", desc="train policy (fused labels)")
    stop = SignalStop()
    acc: dict[str, list[float]] = {k: [] for k in KEYS}
    t_last = time.perf_counter()
    model.train()
    try:
        while step < args.steps and not stop.now:
            lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * step / args.steps))
            for g in opt.param_groups:
                g["lr"] = lr
            rng = np.random.default_rng([args.seed, step])
            pick = rng.choice(len(samples), size=min(args.batch, len(samples)), replace=False)
            r = torch.from_numpy(1.0 - rng.random(len(pick))).float()
            logits_all, labels_all = [], []
            for j, si in enumerate(pick):  # frames differ in size: one at a time
                s = samples[si]
                feats = s["features"].float().clone()
                feats[:, -1] = float(r[j])  # the resource-scalar channel
                lab = policy_labels(list(s["epe"].view(-1, 1, 1, *s["epe"].shape[-2:])), r[j:j + 1],
                                    args.thr_min, args.thr_max)[:, 0]  # (T, 1, th, tw)
                lg = model.logits(feats)  # (T, 1, th, tw)
                m = s["active"].view(1, 1, *s["active"].shape).expand_as(lg)
                logits_all.append(lg[m])
                labels_all.append(lab[m])
            logits = torch.cat(logits_all)
            labels = torch.cat(labels_all)
            rate = float(labels.mean())
            pw = torch.tensor(min(max((1.0 - rate) / max(rate, 1e-6), 1.0), args.max_pos_weight))
            loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}")
            with torch.no_grad():
                pred = (logits > 0).float()
                acc["loss"].append(loss.item())
                acc["accuracy"].append(float((pred == labels).float().mean()))
                if labels.sum() > 0:
                    acc["recall"].append(float((pred * labels).sum() / labels.sum()))
                acc["positive_rate"].append(rate)
                acc["predicted_rate"].append(float(pred.mean()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"loss {loss.item():.4f}")
            if step % args.log_every == 0 or step == args.steps:
                now = time.perf_counter()
                n = max(len(acc["loss"]), 1)
                writer.writerow([step] + [f"{(sum(v) / len(v)) if v else float('nan'):.5f}" for v in acc.values()]
                                + [f"{lr:.2e}", f"{(now - t_last) / n:.3f}", f"{time.time():.0f}"])
                csv_file.flush()
                acc = {k: [] for k in KEYS}
                t_last = now
            if step % args.checkpoint_every == 0:
                save_checkpoint()
    finally:
        end_run(save_checkpoint, csv_file, bar, stop)
    state = "interrupted" if stop.now else "done"
    print(f"train_policy: {state} at step {step}; weights {out / 'weights.pt'}, log {out / 'loss.csv'}")
    return 130 if stop.now else 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
