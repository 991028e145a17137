"""Train the recurrent network (``stss_recurrent``: STSS with a learned display-resolution
accumulation, :mod:`stss_runtime.models.recurrent`) on unrolled sequences.

    python -m stss_runtime train recurrent --data data/fence_a data/plaza_a ... \\
        --stss-weights stss_runtime/weights/stss_2x.pt --out runs/recurrent --steps 1500

Each sample is a run of ``burn_in + sequence`` consecutive display frames cropped at one
place (:mod:`.recurrent_data`), rendered and generated as at run time: each folder's
``generated_frames`` (1 to 3) after every rendered frame, so one network learns to
extrapolate 1 to 3 display frames ahead (a dump at 120 display frames per second with 3
generated is 4x at 30 rendered frames per second). The
first ``burn_in`` run without gradients: a pass that has run for a while holds an
accumulation of many samples, which a short sequence from an empty state never reaches (its
weight would stay a few samples), so what the parameters learn about long accumulation
comes from the frames after it. The network runs
frame by frame exactly as the frame graph does (:func:`stss_runtime.graphs.recurrent_step`),
its output and weight carried to the next frame (reprojected with the upsampled motion,
the runtime's hole mask deciding where the history may be used); the loss is taken on
every frame:

- L1 against the encoded ground truth (the crop's border, where the display-grid shift reads
  outside the crop, left out);
- ``stability_weight`` x the temporal-stability term: the change of (output - ground truth)
  from the previous frame to this one along the motion, where the history is valid (flicker
  the ground truth does not have; the measure ``evaluate`` reports).

The reconstruction starts from trained STSS weights (``stss_weights``) and the parameter head
from zero, so step 0 is the temporal upscaler's accumulation with STSS where the history is
invalid. ``freeze_trunk`` (default) trains the parameter head alone: the trunk's outputs are
then computed once per frame of the data and cached (:func:`.recurrent_data.build_trunk_cache`),
an order of magnitude cheaper on a CPU (no augmentation in that mode: the trunk's outputs of a
mirrored frame are not the mirrored outputs). Gradients flow through time, through the
carried output. The loop, resume and logs are :mod:`.loop`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import WeightsError, load_weights
from ..graphs import recurrent_step, warp_in_graph
from ..models import MODEL_PRESETS, STSS, RecurrentStss, build_model
from ..models.recurrent import network_bound
from ..ops import warp as W
from ..passes.stss_recurrent import KEEP_WINDOW
from .loop import RunConfig, RunResult, TrainingError, TrainingRun, check_data_folders, config_dict, expect_at_least
from .loop import expect_one_of
from .plots import plot_curves
from .recurrent_data import (FEATURE, HISTORY, MASK, MOTION, DEPTH, PREVIOUS_VALID_EF, PREVIOUS_VALID_SF, X,
                             SequenceDataset)

TRAINABLE = sorted(k for k, (cls, _) in MODEL_PRESETS.items() if cls is RecurrentStss)
#: Display pixels left out of the loss at each crop border (the display-grid shift reads two
#: pixels over).
LOSS_BORDER = 4


@dataclass(frozen=True)
class RecurrentTrainConfig:
    """The recurrent network's data, unrolling and loss; fields as the ``train recurrent`` options."""

    data: tuple[Path, ...]
    generated_frames: tuple[int, ...] = (1,)  # frames generated per rendered one: one for all data, or one per folder
    model: str = "stss_recurrent"
    stss_weights: Path | None = None  # the reconstruction's start (an STSS preset of the same width)
    sequence: int = 8  # display frames unrolled per sample with gradients, the loss on each
    burn_in: int = 0  # display frames run first without gradients, to bring the state to a running pass's
    batch: int = 2
    crop: int = 96  # render pixels, multiple of 8
    stability_weight: float = 0.5
    freeze_trunk: bool = True
    augment: bool = True
    workers: int = 0
    device: str = "cpu"

    def __post_init__(self):
        expect_one_of("model", self.model, TRAINABLE)
        if len(self.generated_frames) not in (1, len(self.data)) or any(n not in (1, 2, 3) for n in self.generated_frames):
            raise ValueError(f"generated_frames: expected one count from 1-3, or one per data folder, "
                             f"got {list(self.generated_frames)}")
        expect_at_least(2, sequence=self.sequence)
        expect_at_least(0, burn_in=self.burn_in)
        expect_at_least(1, batch=self.batch)
        if self.crop % 8 or self.crop < 32:
            raise ValueError(f"crop: expected a multiple of 8 and >= 32, got {self.crop}")


def unroll(net: RecurrentStss, item: dict[str, torch.Tensor], burn_in: int = 0) -> list[dict[str, torch.Tensor]]:
    """Run ``net`` over a batch of sequences (:class:`.recurrent_data.SequenceDataset` items
    stacked: ``inputs`` (B, T, 31, c, c), ...) frame by frame, carrying its state. Per frame
    after the first ``burn_in`` (run without gradients: they only bring the state to where a
    running pass has it): ``output`` (B, 3, 2c, 2c) encoded, ``valid`` (B, 1, 2c, 2c) where the
    history was used, ``offset`` the display-resolution reprojection to the previous frame."""
    inputs, jitter, shaded = item["inputs"], item["jitter"], item["shaded"]
    b, t_len, _, c, _ = inputs.shape
    size = (2 * c, 2 * c)
    accum = torch.zeros(b, 3, 2 * c, 2 * c, device=inputs.device)
    weight = torch.zeros(b, 1, 2 * c, 2 * c, device=inputs.device)
    ys = (torch.arange(2 * c, device=inputs.device) + 0.5).view(1, 2 * c, 1)
    xs = (torch.arange(2 * c, device=inputs.device) + 0.5).view(1, 1, 2 * c)
    steps = []
    for t in range(t_len):
        f = inputs[:, t]
        sh = shaded[:, t].float().view(b, 1, 1, 1)
        jit = jitter[:, t].view(b, 2, 1, 1)
        if t == 0:
            offset = torch.zeros(b, 2, 2 * c, 2 * c, device=f.device)
            valid = torch.zeros(b, 1, 2 * c, 2 * c, device=f.device)
        else:
            offset = W.upsample_motion(f[:, MOTION], f[:, DEPTH], size)
            hist = f[:, HISTORY]
            pv = sh * hist[:, PREVIOUS_VALID_SF:PREVIOUS_VALID_SF + 1] + \
                (1 - sh) * hist[:, PREVIOUS_VALID_EF:PREVIOUS_VALID_EF + 1]
            valid = W.upsample_mask(F.max_pool2d(pv, KEEP_WINDOW, 1, KEEP_WINDOW // 2), size)
            px, py = xs + offset[:, 0], ys + offset[:, 1]  # where the history is read: inside the crop?
            inside = ((px > 0) & (px < 2 * c) & (py > 0) & (py < 2 * c)).float().unsqueeze(1)
            valid = valid * inside
        x, hist = f[:, X], f[:, HISTORY]
        trunk = (item["recon"][:, t], item["features"][:, t]) if "features" in item else None
        with torch.set_grad_enabled(torch.is_grad_enabled() and t >= burn_in):
            y = recurrent_step(net, x, f[:, FEATURE], f[:, MASK], hist, x[:, :3], sh, jit, accum, weight, offset,
                               valid, network_bound(x, hist), trunk=trunk)
        accum, weight = y[:, :3], y[:, 3:4]
        if t >= burn_in:
            steps.append({"output": accum, "valid": valid, "offset": offset, "frame": t})
    return steps


def sequence_losses(steps: list[dict[str, torch.Tensor]], target: torch.Tensor,
                    stability_weight: float) -> dict[str, torch.Tensor]:
    """L1 and temporal-stability terms over every unrolled frame (module docstring)."""
    b = LOSS_BORDER
    l1, stab, n_stab = 0.0, 0.0, 0
    for k, s in enumerate(steps):
        t = s["frame"]
        out, gt = s["output"], target[:, t]
        l1 = l1 + (out - gt)[..., b:-b, b:-b].abs().mean()
        if k:
            prev_out = warp_in_graph(steps[k - 1]["output"], s["offset"])
            prev_gt = warp_in_graph(target[:, t - 1], s["offset"])
            change = ((out - prev_out) - (gt - prev_gt)).abs() * s["valid"]
            stab = stab + change[..., b:-b, b:-b].sum() / (s["valid"][..., b:-b, b:-b].sum() * 3).clamp_min(1.0)
            n_stab += 1
    l1 = l1 / len(steps)
    stab = stab / max(n_stab, 1)
    return {"loss": l1 + stability_weight * stab, "l1": l1, "stability": stab}


def plot_losses(csv_path: Path, png_path: Path) -> None:
    plot_curves(csv_path, png_path, ("loss", "l1", "stability"), "loss (encoded colour)",
                f"training loss: {csv_path.parent.name}")


def train(run_cfg: RunConfig, cfg: RecurrentTrainConfig) -> RunResult:
    """Train ``cfg.model`` on sequences of ``cfg.data``; resumes ``run_cfg.out`` when it holds
    a checkpoint, else starts the reconstruction from ``cfg.stss_weights``."""
    check_data_folders(cfg.data)
    device = torch.device(cfg.device)
    torch.manual_seed(run_cfg.seed)
    model = build_model(cfg.model)
    if cfg.stss_weights is not None:
        try:
            stss, _ = load_weights(cfg.stss_weights)
        except WeightsError as e:
            raise TrainingError(f"stss_weights: {e}") from None
        if not isinstance(stss, STSS) or stss.width != model.width:
            raise TrainingError(f"stss_weights: {cfg.stss_weights} is not an STSS network of width {model.width}")
        model.stss.load_state_dict(stss.state_dict())
    model.to(device)
    if cfg.freeze_trunk:
        model.stss.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=run_cfg.lr)
    run = TrainingRun(run_cfg, prog="train recurrent", model_name=cfg.model, model=model, optimizer=opt,
                      columns=("loss", "l1", "stability"), plot=plot_losses, config=config_dict(run_cfg, cfg),
                      info={"data": [str(d) for d in cfg.data], "sequence": cfg.sequence,
                            "generated_frames": list(cfg.generated_frames),
                            "stss_weights": str(cfg.stss_weights) if cfg.stss_weights else None},
                      device=device)
    # a frozen trunk runs once per frame of the data, its outputs cached, not once per sampled sequence
    ds = SequenceDataset(list(cfg.data), length=cfg.burn_in + cfg.sequence, crop=cfg.crop, seed=run_cfg.seed,
                         augment=cfg.augment, progress=run_cfg.progress, trunk=model if cfg.freeze_trunk else None,
                         generated=(cfg.generated_frames[0] if len(cfg.generated_frames) == 1
                                    else list(cfg.generated_frames)))

    def batches():
        epoch = run.step // max(len(ds) // cfg.batch, 1)
        while True:
            ds.epoch = epoch
            g = torch.Generator().manual_seed(run_cfg.seed * 7919 + epoch * 131)
            yield from torch.utils.data.DataLoader(ds, batch_size=cfg.batch, num_workers=cfg.workers, drop_last=True,
                                                   sampler=torch.utils.data.RandomSampler(ds, generator=g))
            epoch += 1

    stream = batches()

    def step_fn(step: int) -> dict:
        item = {k: v.to(device) for k, v in next(stream).items()}
        if cfg.freeze_trunk:
            model.stss.eval()
        return sequence_losses(unroll(model, item, cfg.burn_in), item["target"], cfg.stability_weight)

    return run.run(step_fn)
