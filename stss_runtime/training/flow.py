"""Train the motion pass's tier 2: the residual flow network, then its iteration policy.

    # stage 1: the flow network (sequence loss over iterations)
    python -m stss_runtime train flow --data data/fence_a data/gallery_a --out runs/flow --steps 1500
    # stage 2: an iteration policy reading the network's hidden state, the flow network frozen
    python -m stss_runtime train flow --stage policy --flow-weights runs/flow/weights.pt \\
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

The crops of step s depend on (seed, s) only, so a resumed run draws what an uninterrupted
one would. The loop, resume and logs are :mod:`.loop`'s. (The shipped iteration policy reads
scene-independent signals instead and is trained by :mod:`.policy`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import WeightsError, load_weights
from ..models.flownet import PAD, VOLUME_RADIUS, IterationPolicy, ResidualFlowNet
from .flow_data import MOVING_PX, PairData, epe_stats, policy_labels, tile_epe
from .loop import (
    RunConfig,
    RunResult,
    TrainingError,
    TrainingRun,
    check_data_folders,
    config_dict,
    expect_at_least,
    expect_one_of,
)
from .plots import plot_curves

STAGES = ("flow", "policy")


@dataclass(frozen=True)
class FlowTrainConfig:
    """The flow network's (or, stage ``policy``, its hidden-state policy's) data and losses;
    the fields mean what the ``train flow`` options of the same names say."""

    data: tuple[Path, ...]
    stage: str = "flow"
    flow_weights: Path | None = None  # stage policy: the trained flow network (frozen)
    batch: int = 4
    crop: int = 96
    iters: int = 6
    gamma: float = 0.8
    moving_weight: float = 4.0
    zero_prior: float = 0.25
    stride2: float = 0.25
    match_weight: float = 0.3
    match_steps: int = 0
    perturb: float = 0.5
    perturb_px: float = 8.0
    focus: float = 0.5
    thr_min: float = 0.01
    thr_max: float = 0.1
    pos_weight: float = 0.0

    def __post_init__(self):
        expect_one_of("stage", self.stage, STAGES)
        if self.crop % PAD or self.crop < 2 * PAD:
            raise ValueError(f"crop: expected a multiple of {PAD} and >= {2 * PAD}, got {self.crop}")
        expect_at_least(1, batch=self.batch, iters=self.iters)
        for name in ("zero_prior", "stride2", "focus", "perturb"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}")
        if self.stage == "policy" and self.flow_weights is None:
            raise ValueError("flow_weights: the policy stage needs the trained flow network, got None")


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


def plot_losses(keys):
    return lambda csv_path, png_path: plot_curves(csv_path, png_path, keys, "px (EPE) / loss",
                                                  f"training: {csv_path.parent.name}")


def train(run_cfg: RunConfig, cfg: FlowTrainConfig) -> RunResult:
    check_data_folders(cfg.data)
    torch.manual_seed(run_cfg.seed)
    model_name = "flow" if cfg.stage == "flow" else "flow_policy"
    flow_net = None
    if cfg.stage == "flow":
        model = ResidualFlowNet()
        keys = ["loss", "match", "epe", "epe_moving", "prior_epe_moving"]
    else:
        try:
            flow_net, _ = load_weights(cfg.flow_weights, expected_model="flow")
        except WeightsError as e:
            raise TrainingError(f"flow_weights: {e}") from None
        flow_net.eval().requires_grad_(False)
        model = IterationPolicy(stride=flow_net.stride)
        keys = ["loss", "accuracy", "positive_rate", "predicted_rate"]
    opt = torch.optim.AdamW(model.parameters(), lr=run_cfg.lr, weight_decay=1e-5)
    run = TrainingRun(run_cfg, prog="train flow", model_name=model_name, model=model, optimizer=opt,
                      columns=keys, plot=plot_losses(keys), info={"data": [str(d) for d in cfg.data]},
                      config=config_dict(run_cfg, cfg), grad_clip=1.0)
    data = PairData(cfg.data, progress=run_cfg.progress) if run.step < run_cfg.steps else None

    def step_fn(step: int) -> dict:
        rng = np.random.default_rng([run_cfg.seed, step])
        b = data.batch(rng, cfg.batch, crop=cfg.crop, zero_prior=cfg.zero_prior, stride2=cfg.stride2,
                       focus=cfg.focus, perturb=cfg.perturb, perturb_px=cfg.perturb_px)
        if cfg.stage == "flow" and step < cfg.match_steps:
            _, _, volumes, _ = model.prepare(b["match_cur"], b["match_prev"], b["context"], b["prior"],
                                             b["jitter_delta"])
            match = matching_loss(volumes[0], b["target"], b["prior"], b["valid"], model.stride, VOLUME_RADIUS)
            return {"loss": match, "match": match.item()}
        if cfg.stage == "flow":
            res = model.refine(b["match_cur"], b["match_prev"], b["context"], b["prior"], b["jitter_delta"],
                               cfg.iters)
            flows = res.flows
            match = matching_loss(res.volumes[0], b["target"], b["prior"], b["valid"], model.stride, VOLUME_RADIUS)
            loss = sequence_loss(flows, b["target"], b["prior"], b["valid"], cfg.gamma, cfg.moving_weight)
            with torch.no_grad():
                stats = epe_stats(flows[-1].detach(), b["target"], b["camera"], b["valid"])
                stats["prior_epe_moving"] = epe_stats(b["prior"], b["target"], b["camera"], b["valid"])["epe_moving"]
                stats["match"] = match.item()
            return {"loss": loss + cfg.match_weight * match, **stats}
        r = torch.from_numpy(1.0 - rng.random(cfg.batch)).float()  # (0, 1]
        with torch.no_grad():
            res = flow_net.refine(b["match_cur"], b["match_prev"], b["context"], b["prior"],
                                  b["jitter_delta"], cfg.iters, r=r, record=True)
            te = [tile_epe(f, b["target"], b["valid"]) for f in [b["prior"]] + res.flows]
            labels = policy_labels(te, r, cfg.thr_min, cfg.thr_max)
        logits = torch.stack([model.logits(f) for f in res.policy_inputs])
        if cfg.pos_weight > 0:
            pw = torch.tensor(cfg.pos_weight)
        else:
            rate = float(labels.mean())
            pw = torch.tensor(min(max((1.0 - rate) / max(rate, 1e-6), 1.0), 20.0))
        loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pw)
        with torch.no_grad():
            pred = (logits > 0).float()
            return {"loss": loss, "accuracy": float((pred == labels).float().mean()),
                    "positive_rate": float(labels.mean()), "predicted_rate": float(pred.mean())}

    return run.run(step_fn)
