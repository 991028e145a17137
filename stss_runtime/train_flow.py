"""Train the motion pass's tier 2: the residual flow network, then its iteration policy.

    # stage 1: the flow network (sequence loss over iterations)
    python -m stss_runtime.train_flow --data data/fence_a data/gallery_a --out runs/flow --steps 1500
    # stage 2: the iteration policy, with the flow network frozen
    python -m stss_runtime.train_flow --stage policy --flow-weights runs/flow/weights.pt \\
        --data data/fence_a data/gallery_a --out runs/flow_policy --steps 400

Samples are pairs (frame i-k, frame i) of the frame dumps, k = 1 (or 2 with --stride2, the
target then the renderer's motion chained through frame i-1, pixels whose chain crosses
objects left out). The target is the renderer's exact motion of frame i. The prior the network
starts from is the camera-induced motion (``motion.decompose.camera_motion_between``: a
renderer whose motion vectors miss the object part) with probability 1 - --zero-prior, else
zero (an engine without motion vectors); with probability --perturb it is then made wrong on
purpose on one object (or the whole crop) by a random offset, so that there is something
to correct by matching. Random crops at render resolution, half of them
centred on pixels whose object motion exceeds 0.5 px (they are rare: 0.1-1% of pixels), and
random horizontal mirroring.

Stage flow: L1 sequence loss over --iters iterations (weights --gamma^(N-1-i)), pixels where
the prior is off by more than 0.5 px weighted (1 + --moving-weight), plus --match-weight times
a matching loss on the level-0 cost volume (cross-entropy of its softmax over offsets against
the true displacement relative to the prior), which trains the feature encoder directly.
Stage policy: the frozen network runs --iters dense iterations; a tile's label at iteration
t is 1 when the iterations still to come lower its mean EPE by more than
thr(r) = --thr-min + (--thr-max - --thr-min) * (1 - r), r drawn uniformly in (0, 1] per crop;
binary cross-entropy.

Resumable: re-running the same command continues from OUT/checkpoint.pt (written every
--checkpoint-every steps and on Ctrl-C). The crops of step s depend on (--seed, s) only, so a
resumed run draws what an uninterrupted one would. Writes OUT/loss.csv, OUT/loss.png and
OUT/weights.pt (the model alone, fp32, for ``checkpoint.load_weights``).
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
from . import warp as W
from .checkpoint import WeightsError, load_weights, save_weights
from .frame import frame_from_dump
from .history import depth_feature, encode_color
from .models.flownet import PAD, TILE, VOLUME_RADIUS, IterationPolicy, ResidualFlowNet, object_boundaries
from .motion.decompose import camera_motion_between
from .training.plots import plot_curves
from .training.runs import SignalStop, check_data_folders, end_run, resume_or_init

MOVING_PX = 0.5  # object motion above this: a "moving" pixel


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stss_runtime.train_flow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="frame dump folders to train on")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, loss.csv/png, weights.pt)")
    p.add_argument("--stage", default="flow", choices=("flow", "policy"),
                   help="flow: train the flow network; policy: train the iteration policy with the "
                        "flow network of --flow-weights frozen (default flow)")
    p.add_argument("--flow-weights", type=Path, default=None, help="stage policy: the trained flow network")
    p.add_argument("--steps", type=int, default=1500, help="total optimisation steps (default 1500)")
    p.add_argument("--batch", type=int, default=4, help="crops per step (default 4)")
    p.add_argument("--crop", type=int, default=96, help=f"crop side, render px, multiple of {PAD} (default 96)")
    p.add_argument("--iters", type=int, default=6, help="refinement iterations per sample (default 6)")
    p.add_argument("--gamma", type=float, default=0.8, help="sequence loss decay (default 0.8)")
    p.add_argument("--moving-weight", type=float, default=4.0,
                   help="extra loss weight of pixels where the prior is off by > 0.5 px (default 4)")
    p.add_argument("--zero-prior", type=float, default=0.25,
                   help="probability of a zero prior instead of the camera-induced motion (default 0.25)")
    p.add_argument("--stride2", type=float, default=0.25,
                   help="probability of a pair two frames apart (larger motion; default 0.25)")
    p.add_argument("--match-weight", type=float, default=0.3,
                   help="weight of the cost volume's matching loss (cross-entropy against the true "
                        "displacement; default 0.3)")
    p.add_argument("--match-steps", type=int, default=0,
                   help="stage flow: train the feature encoder alone on the matching loss for the "
                        "first N steps (cheap: no iterations), so that the recurrent part starts "
                        "from a cost volume that already peaks at the true displacement (default 0)")
    p.add_argument("--perturb", type=float, default=0.5,
                   help="probability that the prior of a crop is made wrong on purpose: a random "
                        "offset of up to --perturb-px added to one object of the crop (or, one time "
                        "in three, to the whole crop), so the net learns to correct a wrong prior by "
                        "matching; the renderer's own object motion is too thin (fence) or too small "
                        "(gallery) in the training scenes to teach that alone (default 0.5)")
    p.add_argument("--perturb-px", type=float, default=8.0, help="largest offset of --perturb (default 8)")
    p.add_argument("--focus", type=float, default=0.5,
                   help="probability that a crop is centred on a moving-object pixel (default 0.5)")
    p.add_argument("--thr-min", type=float, default=0.01, help="stage policy: EPE gain threshold at r = 1 (px)")
    p.add_argument("--thr-max", type=float, default=0.1, help="stage policy: EPE gain threshold as r -> 0 (px)")
    p.add_argument("--pos-weight", type=float, default=0.0,
                   help="stage policy: weight of the positive labels ('the next iteration is worth it') "
                        "in the BCE; 0 (default): balanced per batch, (negatives / positives) clamped "
                        "to [1, 20], so a rare positive class is not learned away")
    p.add_argument("--init", type=Path, default=None,
                   help="start a new run from these weights (same model) instead of from scratch; "
                        "ignored when the run folder already has a checkpoint (resume)")
    p.add_argument("--lr", type=float, default=4e-4, help="AdamW learning rate (default 4e-4)")
    p.add_argument("--min-lr", type=float, default=1e-5, help="cosine schedule's final learning rate")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
    p.add_argument("--log-every", type=int, default=10, help="steps between loss.csv rows (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.crop % PAD or args.crop < 2 * PAD:
        p.error(f"--crop must be a multiple of {PAD} and >= {2 * PAD}, got {args.crop}")
    check_data_folders(p, args.data)
    if args.steps < 1 or args.batch < 1 or args.iters < 1:
        p.error("--steps, --batch and --iters must be positive")
    for name in ("zero_prior", "stride2", "focus"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    if args.stage == "policy":
        if args.flow_weights is None:
            p.error("--stage policy needs --flow-weights (the trained flow network)")
        if not args.flow_weights.exists():
            p.error(f"--flow-weights {args.flow_weights}: no such file")
    return args


class PairData:
    """Every frame of the dumps in memory (float16 where it is an input), and random crops of
    (frame i-k, frame i) pairs."""

    def __init__(self, folders, progress: bool = True) -> None:
        self.scenes = []
        for folder in folders:
            meta = framedump.read_meta(folder)
            idx = framedump.existing_frames(folder)
            it = idx
            if progress:
                from tqdm import tqdm

                it = tqdm(idx, desc=f"loading {Path(folder).name}", unit="frame", leave=False)
            frames, prev_frames = [], []
            with torch.inference_mode():
                for i in it:
                    f = frame_from_dump(framedump.read_frame(folder, i), meta, i)
                    ec = encode_color(f.color)
                    rec = {
                        "match": torch.cat([ec, f.albedo.clamp(0, 1), f.normal], 1)[0].half(),
                        "depth": depth_feature(f.depth, f.near, f.far)[0].half(),
                        "edge": object_boundaries(f.object_id)[0].to(torch.uint8),
                        "id": f.object_id[0],
                        "motion": f.motion[0].float(),
                        "jitter": f.jitter_px,
                        "prior": {},
                    }
                    for k, pf in ((1, prev_frames[-1] if prev_frames else None),
                                  (2, prev_frames[-2] if len(prev_frames) > 1 else None)):
                        if pf is not None:
                            rec["prior"][k] = camera_motion_between(f, pf)[0].half()
                    if 1 in rec["prior"]:
                        obj = (f.motion[0] - rec["prior"][1].float()).norm(dim=0)
                        ys, xs = torch.nonzero(obj > MOVING_PX, as_tuple=True)
                        rec["moving"] = torch.stack([ys, xs], 1).to(torch.int16)
                    frames.append(rec)
                    prev_frames = (prev_frames + [f])[-2:]
            self.scenes.append(frames)
        self.pairs = [(s, i) for s, fr in enumerate(self.scenes) for i in range(1, len(fr))]

    def target(self, s: int, i: int, k: int):
        """(target motion (2, h, w), valid (1, h, w)) of frame i relative to frame i - k."""
        fr = self.scenes[s]
        m = fr[i]["motion"]
        if k == 1:
            return m, torch.ones_like(m[:1])
        m1 = fr[i - 1]["motion"]
        chained = W.compose_motion(m[None], m1[None])[0]
        id_cur = fr[i]["id"][None].float()
        ok1 = W.sample(fr[i - 1]["id"][None].float(), m[None], "nearest")[0] == id_cur[0]
        ok2 = W.sample(fr[i - 2]["id"][None].float(), chained[None], "nearest")[0] == id_cur[0]
        return chained, (ok1 & ok2).float()

    def sample(self, rng: np.random.Generator, crop: int, zero_prior: float, stride2: float,
               focus: float, perturb: float = 0.0, perturb_px: float = 8.0) -> dict:
        s, i = self.pairs[int(rng.integers(len(self.pairs)))]
        k = 2 if (i >= 2 and rng.random() < stride2) else 1
        cur, prev = self.scenes[s][i], self.scenes[s][i - k]
        _, h, w = cur["match"].shape
        moving = cur.get("moving")
        if moving is not None and len(moving) and rng.random() < focus:
            cy, cx = (int(v) for v in moving[int(rng.integers(len(moving)))])
            cy += int(rng.integers(-crop // 4, crop // 4 + 1))
            cx += int(rng.integers(-crop // 4, crop // 4 + 1))
            y0 = min(max(cy - crop // 2, 0), h - crop)
            x0 = min(max(cx - crop // 2, 0), w - crop)
        else:
            y0 = int(rng.integers(0, h - crop + 1))
            x0 = int(rng.integers(0, w - crop + 1))
        target, valid = self.target(s, i, k)
        cam = cur["prior"][k].float()
        prior = torch.zeros_like(cam) if rng.random() < zero_prior else cam
        sl = (slice(None), slice(y0, y0 + crop), slice(x0, x0 + crop))
        m_cur, m_prev = cur["match"][sl].float(), prev["match"][sl].float()
        ctx = torch.cat([m_cur[:3], m_cur[6:9], cur["depth"][sl].float(), cur["edge"][sl].float()], 0)
        jd = torch.tensor([prev["jitter"][0] - cur["jitter"][0], prev["jitter"][1] - cur["jitter"][1]])
        prior = prior[sl].clone()
        if rng.random() < perturb:
            ang, rad = rng.random() * 2 * math.pi, perturb_px * math.sqrt(rng.random())
            ids = cur["id"][0][sl[1:]]
            region = torch.ones_like(ids, dtype=torch.bool)
            if rng.random() < 2 / 3:
                present = torch.unique(ids)
                region = ids == present[int(rng.integers(len(present)))]
            prior[0][region] += rad * math.cos(ang)
            prior[1][region] += rad * math.sin(ang)
        out = {"match_cur": m_cur, "match_prev": m_prev, "context": ctx, "prior": prior,
               "target": target[sl].clone(), "valid": valid[sl].clone(), "camera": cam[sl].clone(),
               "jitter_delta": jd.view(2, 1, 1)}
        if rng.random() < 0.5:  # mirror: x flips sign for every vector; normals' x too
            out = {key: v.flip(-1) if v.shape[-1] == crop else v.clone() for key, v in out.items()}
            for key in ("prior", "target", "camera", "jitter_delta"):
                out[key][0] = -out[key][0]
            out["match_cur"][6] = -out["match_cur"][6]
            out["match_prev"][6] = -out["match_prev"][6]
            out["context"][3] = -out["context"][3]
        return out

    def batch(self, rng, n: int, **kw) -> dict:
        items = [self.sample(rng, **kw) for _ in range(n)]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def sequence_loss(flows, target, prior, valid, gamma: float, moving_weight: float):
    weight = valid * (1.0 + moving_weight * ((target - prior).norm(dim=1, keepdim=True) > MOVING_PX).float())
    total = 0.0
    n = len(flows)
    for t, f in enumerate(flows):
        err = (f - target).abs().sum(1, keepdim=True)
        total = total + gamma ** (n - 1 - t) * (weight * err).sum() / weight.sum().clamp_min(1.0)
    return total


def matching_loss(volume: torch.Tensor, target, prior, valid, stride: int, radius: int) -> torch.Tensor:
    """Cross-entropy of the level-0 cost volume's softmax over offsets against the true
    displacement relative to the prior (bilinearly split over the 4 nearest integer offsets),
    per cell whose displacement lies inside the volume. A dense signal that teaches the
    feature encoder to match from the first step, before the recurrent part has learned to
    read the volume."""
    off = F.avg_pool2d(target - prior, stride) / stride  # (N, 2, H, W) cells
    ok = (F.avg_pool2d(valid, stride) > 0.999) & (off.abs() < radius).all(1, keepdim=True)
    s = 2 * radius + 1
    x0, y0 = off[:, 0:1].floor(), off[:, 1:2].floor()
    fx, fy = off[:, 0:1] - x0, off[:, 1:2] - y0
    logp = F.log_softmax(volume, 1)
    ce = torch.zeros_like(fx)
    for dx, wx in ((0, 1 - fx), (1, fx)):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            ix = (x0 + dx + radius).clamp(0, s - 1)
            iy = (y0 + dy + radius).clamp(0, s - 1)
            idx = (iy * s + ix).long()
            ce = ce - wx * wy * torch.gather(logp, 1, idx)
    okf = ok.float()
    return (ce * okf).sum() / okf.sum().clamp_min(1.0)


def epe_stats(flow, target, camera, valid) -> dict:
    e = (flow - target).norm(dim=1, keepdim=True)
    mov = ((target - camera).norm(dim=1, keepdim=True) > MOVING_PX) & (valid > 0)
    v = valid > 0
    return {"epe": float(e[v].mean()) if v.any() else float("nan"),
            "epe_moving": float(e[mov].mean()) if mov.any() else float("nan")}


def tile_epe(flow, target, valid):
    e = (flow - target).norm(dim=1, keepdim=True) * valid
    return F.avg_pool2d(e, TILE) / F.avg_pool2d(valid, TILE).clamp_min(1e-3)


def policy_labels(tile_epes: list, r: torch.Tensor, thr_min: float, thr_max: float) -> torch.Tensor:
    """Labels (T, N, 1, th, tw): 1 where the iterations after t lower the tile's EPE by more
    than thr(r). ``tile_epes``: T + 1 maps (the prior, then after each iteration)."""
    e = torch.stack(tile_epes)  # (T+1, N, 1, th, tw)
    future_best = torch.flip(torch.cummin(torch.flip(e[1:], [0]), 0).values, [0])  # min over s > t
    thr = (thr_min + (thr_max - thr_min) * (1.0 - r)).view(1, -1, 1, 1, 1)
    return ((e[:-1] - future_best) > thr).float()


def plot_losses(csv_path: Path, png_path: Path, keys) -> None:
    plot_curves(csv_path, png_path, keys, "px (EPE) / loss", f"training: {csv_path.parent.name}")


def train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    model_name = "flow" if args.stage == "flow" else "flow_policy"
    flow_net = None
    if args.stage == "flow":
        model = ResidualFlowNet()
    else:
        try:
            flow_net, _ = load_weights(args.flow_weights, expected_model="flow")
        except WeightsError as e:
            print(f"train_flow: --flow-weights: {e}", file=sys.stderr)
            return 2
        flow_net.eval().requires_grad_(False)
        model = IterationPolicy(stride=flow_net.stride)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-5)
    ckpt_path = out / "checkpoint.pt"
    step = resume_or_init("train_flow", ckpt_path, model, opt, model_name, args.init)
    if step is None:
        return 2
    if step >= args.steps:
        print(f"train_flow: {out} is already at step {step} >= --steps {args.steps}; nothing to do")
        return 0

    data = PairData(args.data, progress=not args.no_progress)
    stop = SignalStop()
    if args.stage == "flow":
        keys = ["loss", "match", "epe", "epe_moving", "prior_epe_moving"]
    else:
        keys = ["loss", "accuracy", "positive_rate", "predicted_rate"]

    def save_checkpoint():
        tmp = out / "checkpoint.tmp.pt"
        torch.save({"model_name": model_name, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                           if k != "data"} | {"data": [str(d) for d in args.data]}}, tmp)
        os.replace(tmp, ckpt_path)
        save_weights(out / "weights.pt", model, model_name, steps=step, data=[str(d) for d in args.data])
        if (out / "loss.csv").exists():
            plot_losses(out / "loss.csv", out / "loss.png", keys)

    new = not (out / "loss.csv").exists()
    csv_file = (out / "loss.csv").open("a", newline="")
    writer = csv.writer(csv_file)
    if new:
        writer.writerow(["step"] + keys + ["lr", "seconds_per_step", "wall_time"])
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, unit="step", desc=f"train {model_name}", dynamic_ncols=True)
    model.train()
    acc: dict[str, float] = {}
    n_acc = 0
    t_last = time.perf_counter()
    try:
        while step < args.steps and not stop.now:
            progress = min(step / args.steps, 1.0)
            lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * progress))
            for g in opt.param_groups:
                g["lr"] = lr
            rng = np.random.default_rng([args.seed, step])
            b = data.batch(rng, args.batch, crop=args.crop, zero_prior=args.zero_prior,
                           stride2=args.stride2, focus=args.focus, perturb=args.perturb,
                           perturb_px=args.perturb_px)
            if args.stage == "flow" and step < args.match_steps:
                _, _, volumes, _ = model.prepare(b["match_cur"], b["match_prev"], b["context"], b["prior"],
                                                 b["jitter_delta"])
                match = matching_loss(volumes[0], b["target"], b["prior"], b["valid"], model.stride,
                                      VOLUME_RADIUS)
                loss = match
                stats = {"match": match.item()}
            elif args.stage == "flow":
                res = model.refine(b["match_cur"], b["match_prev"], b["context"], b["prior"], b["jitter_delta"],
                                   args.iters)
                flows = res.flows
                match = matching_loss(res.volumes[0], b["target"], b["prior"], b["valid"], model.stride,
                                      VOLUME_RADIUS)
                loss = sequence_loss(flows, b["target"], b["prior"], b["valid"], args.gamma, args.moving_weight)
                loss = loss + args.match_weight * match
                with torch.no_grad():
                    stats = epe_stats(flows[-1].detach(), b["target"], b["camera"], b["valid"])
                    stats["prior_epe_moving"] = epe_stats(b["prior"], b["target"], b["camera"], b["valid"])["epe_moving"]
                    stats["match"] = match.item()
            else:
                r = torch.from_numpy(1.0 - rng.random(args.batch)).float()  # (0, 1]
                with torch.no_grad():
                    res = flow_net.refine(b["match_cur"], b["match_prev"], b["context"], b["prior"],
                                          b["jitter_delta"], args.iters, r=r, record=True)
                    te = [tile_epe(f, b["target"], b["valid"]) for f in [b["prior"]] + res.flows]
                    labels = policy_labels(te, r, args.thr_min, args.thr_max)
                logits = torch.stack([model.logits(f) for f in res.policy_inputs])
                if args.pos_weight > 0:
                    pw = torch.tensor(args.pos_weight)
                else:
                    rate = float(labels.mean())
                    pw = torch.tensor(min(max((1.0 - rate) / max(rate, 1e-6), 1.0), 20.0))
                loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pw)
                with torch.no_grad():
                    pred = (logits > 0).float()
                    stats = {"accuracy": float((pred == labels).float().mean()),
                             "positive_rate": float(labels.mean()), "predicted_rate": float(pred.mean())}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}")
            stats["loss"] = loss.item()
            for k2, v in stats.items():
                if math.isfinite(v):
                    acc[k2] = acc.get(k2, 0.0) + v
                    acc[k2 + "#"] = acc.get(k2 + "#", 0) + 1
            n_acc += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"loss {loss.item():.4f}")
            if step % args.log_every == 0 or step == args.steps:
                now = time.perf_counter()
                writer.writerow([step] + [f"{acc.get(k2, float('nan')) / max(acc.get(k2 + '#', 0), 1):.5f}"
                                          for k2 in keys]
                                + [f"{lr:.2e}", f"{(now - t_last) / n_acc:.3f}", f"{time.time():.0f}"])
                csv_file.flush()
                acc, n_acc, t_last = {}, 0, now
            if step % args.checkpoint_every == 0:
                save_checkpoint()
    finally:
        end_run(save_checkpoint, csv_file, bar, stop)
    state = "interrupted" if stop.now else "done"
    print(f"train_flow: {state} at step {step}; weights {out / 'weights.pt'}, log {out / 'loss.csv'}, "
          f"plot {out / 'loss.png'}")
    return 130 if stop.now else 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
