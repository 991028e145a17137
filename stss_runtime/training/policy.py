"""Train tier 2's iteration policy on what the motion estimator keeps: whole frames, the tiles
tier 0 finds not credible, and labels from the FUSED end-point error.

    python -m stss_runtime train policy --flow-weights stss_runtime/weights/flow_refiner.pt \\
        --data data/plaza_a data/fence_a --out runs/policy_fused --steps 600

Why not ``train flow --stage policy``: that stage labels each tile by the network's raw output
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

Then calibrate the decision offset on training sequences with ``python -m stss_runtime
measure flow-policy --fused --calibrate`` (see ``docs/training/README.md``). The loop, resume
and logs are :mod:`.loop`'s; weights are model ``flow_policy``, or ``flow_policy_signals``
with ``inputs="signals"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import WeightsError, load_weights
from ..models.flownet import POLICY_INPUTS, IterationPolicy
from .flow_data import policy_labels
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
from .policy_data import gather

POLICY_MODEL_FOR = {"hidden": "flow_policy", "signals": "flow_policy_signals"}
KEYS = ["loss", "accuracy", "recall", "positive_rate", "predicted_rate"]


@dataclass(frozen=True)
class PolicyTrainConfig:
    """The policy's data, inputs and labels; the fields mean what the ``train policy``
    options of the same names say."""

    data: tuple[Path, ...]
    flow_weights: Path
    inputs: str = "hidden"
    prior: tuple[str, ...] = ("camera", "zero")
    every: int = 4
    iters: int = 4
    batch: int = 4
    thr_min: float = 0.01
    thr_max: float = 0.1
    max_pos_weight: float = 20.0

    def __post_init__(self):
        expect_one_of("inputs", self.inputs, POLICY_INPUTS)
        expect_at_least(1, every=self.every, iters=self.iters, batch=self.batch)
        if not 0.0 <= self.thr_min <= self.thr_max:
            raise ValueError(f"thr_min / thr_max: expected 0 <= thr_min <= thr_max, got {self.thr_min} / {self.thr_max}")


def train(run_cfg: RunConfig, cfg: PolicyTrainConfig) -> RunResult:
    check_data_folders(cfg.data)
    torch.manual_seed(run_cfg.seed)
    out = Path(run_cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        net, _ = load_weights(cfg.flow_weights, expected_model="flow")
    except WeightsError as e:
        raise TrainingError(f"flow_weights: {e}") from None
    net.eval().requires_grad_(False)
    try:
        paths = gather(cfg, net, out / "samples", progress=run_cfg.progress)
    except KeyboardInterrupt:
        print(f"train policy: interrupted while gathering; what was gathered is kept in {out / 'samples'}")
        return RunResult(0, True, out)
    if not paths:
        raise TrainingError("no frame had a refined tile; nothing to train on")
    samples = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    model = IterationPolicy(stride=net.stride, inputs=cfg.inputs)
    opt = torch.optim.AdamW(model.parameters(), lr=run_cfg.lr, weight_decay=1e-5)
    info = {"data": [str(d) for d in cfg.data], "labels": "fused", "prior": list(cfg.prior), "iters": cfg.iters,
            "samples": len(samples), "inputs": cfg.inputs}
    run = TrainingRun(run_cfg, prog="train policy", model_name=POLICY_MODEL_FOR[cfg.inputs], model=model,
                      optimizer=opt, columns=KEYS, info=info, config=config_dict(run_cfg, cfg), grad_clip=1.0,
                      plot=lambda c, p: plot_curves(c, p, KEYS, "BCE / rate", f"training: {out.name}"))
    model.offset.zero_()  # trained without an offset; calibration sets it

    def step_fn(step: int) -> dict:
        rng = np.random.default_rng([run_cfg.seed, step])
        pick = rng.choice(len(samples), size=min(cfg.batch, len(samples)), replace=False)
        r = torch.from_numpy(1.0 - rng.random(len(pick))).float()
        logits_all, labels_all = [], []
        for j, si in enumerate(pick):  # frames differ in size: one at a time
            s = samples[si]
            feats = s["features"].float().clone()
            feats[:, -1] = float(r[j])  # the resource-scalar channel
            lab = policy_labels(list(s["epe"].view(-1, 1, 1, *s["epe"].shape[-2:])), r[j:j + 1],
                                cfg.thr_min, cfg.thr_max)[:, 0]  # (T, 1, th, tw)
            lg = model.logits(feats)  # (T, 1, th, tw)
            m = s["active"].view(1, 1, *s["active"].shape).expand_as(lg)
            logits_all.append(lg[m])
            labels_all.append(lab[m])
        logits = torch.cat(logits_all)
        labels = torch.cat(labels_all)
        rate = float(labels.mean())
        pw = torch.tensor(min(max((1.0 - rate) / max(rate, 1e-6), 1.0), cfg.max_pos_weight))
        loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pw)
        with torch.no_grad():
            pred = (logits > 0).float()
            values = {"loss": loss, "accuracy": float((pred == labels).float().mean()),
                      "positive_rate": rate, "predicted_rate": float(pred.mean())}
            if labels.sum() > 0:
                values["recall"] = float((pred * labels).sum() / labels.sum())
        return values

    return run.run(step_fn)
