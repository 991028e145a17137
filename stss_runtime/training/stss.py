"""Train STSS, or one of the two-stage baseline's networks, on frame dumps.

    python -m stss_runtime train stss --data data/fence_a data/gallery_a --out runs/stss --steps 3000

Samples are random crops of the runtime's own network inputs (cached beside each dump by
:mod:`.stss_data`), with Random Reshading Masking; the loss (:mod:`.loss`) is scored after the
network's output is moved onto the display grid, as the runtime does. The loop, resume,
logs and DDP (``torchrun --nproc_per_node N``: each process draws its own crops) are
:mod:`.loop`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..graphs import to_display_grid
from ..models import MODEL_PRESETS, STSS, ExtraNet, SupersamplingNet, build_model
from .loop import (
    RunConfig,
    RunResult,
    TrainingRun,
    check_data_folders,
    config_dict,
    distributed_setup,
    expect_at_least,
    expect_one_of,
)
from .loss import stss_loss
from .plots import plot_curves
from .stss_data import CropDataset, ExtraNetCropDataset, build_cache

#: the image models this trainer knows (the flow and VFI networks have their own trainers)
TRAINABLE = sorted(k for k, (cls, _) in MODEL_PRESETS.items() if cls in (STSS, SupersamplingNet, ExtraNet))


@dataclass(frozen=True)
class StssTrainConfig:
    """What an STSS (or two-stage network) run trains on and how its batches are drawn."""

    data: tuple[Path, ...]  # frame dump folders
    model: str = "stss"  # preset (:data:`TRAINABLE`)
    batch: int = 8  # crops per step and process
    crop: int = 128  # crop side, render pixels, multiple of 8
    augment: bool = False  # mirror crops horizontally and permute colour channels (each p=1/2)
    rrm: bool = True  # Random Reshading Masking
    workers: int = 1  # data loader worker processes
    device: str = "cpu"  # cpu or cuda

    def __post_init__(self):
        expect_one_of("model", self.model, TRAINABLE)
        if self.crop % 8 or self.crop < 16:
            raise ValueError(f"crop: expected a multiple of 8 and >= 16, got {self.crop}")
        expect_at_least(1, batch=self.batch)


#: display pixels left out of the loss at each crop border: the display-grid shift reads up
#: to 1 + 2 pixels over (bicubic), which a crop cannot supply, so the border is clamped
LOSS_BORDER = 4


def _forward(model, batch):
    """Prediction (on the display grid) and the target and mask it is scored against."""
    bare = model.module if hasattr(model, "module") else model
    if isinstance(bare, ExtraNet):  # works at display resolution, on the display grid
        return model(batch["x"], batch["feature"], batch["mask"], batch["history"]), batch["target"], batch["mask"]
    if isinstance(bare, SupersamplingNet):
        out = model(batch["x"][:, :3], batch["feature"], batch["history"])
    else:
        out = model(batch["x"], batch["feature"], batch["mask"], batch["history"])
    # the network works on the render's jittered grid: move its output onto the display grid
    # as the runtime does, and score the interior the shift could read fully
    out = to_display_grid(out, batch["jitter"].view(-1, 2, 1, 1).to(out.dtype))
    b, lb = LOSS_BORDER, LOSS_BORDER // 2
    return out[..., b:-b, b:-b], batch["target"][..., b:-b, b:-b], batch["mask"][..., lb:-lb, lb:-lb]


def plot_losses(csv_path: Path, png_path: Path) -> None:
    plot_curves(csv_path, png_path, ("loss", "l1", "hole"), "loss (encoded colour)",
                f"training loss: {csv_path.parent.name}")


def train(run_cfg: RunConfig, cfg: StssTrainConfig) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data``; resumes ``run_cfg.out`` when it holds a checkpoint."""
    check_data_folders(cfg.data)
    rank, world = distributed_setup(cfg.device)
    device = torch.device(f"cuda:{rank % max(torch.cuda.device_count(), 1)}"
                          if cfg.device.startswith("cuda") else "cpu")
    torch.manual_seed(run_cfg.seed + rank)
    model = build_model(cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=run_cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    run = TrainingRun(run_cfg, prog="train stss", model_name=cfg.model, model=model, optimizer=opt,
                      columns=("loss", "l1", "hole", "grad"), plot=plot_losses, scaler=scaler,
                      info={"data": [str(d) for d in cfg.data]}, config=config_dict(run_cfg, cfg),
                      rank=rank, world=world, device=device)
    if world > 1:  # one process fills the input caches; the others wait and then only read them
        if rank == 0:
            for folder in cfg.data:
                build_cache(folder, progress=run_cfg.progress)
        dist.barrier()
    ds_cls = ExtraNetCropDataset if isinstance(model, ExtraNet) else CropDataset
    ds = ds_cls(list(cfg.data), crop=cfg.crop, rrm=cfg.rrm, seed=run_cfg.seed * 1000 + rank,
                progress=rank == 0 and run_cfg.progress, augment=cfg.augment)
    if isinstance(model, SupersamplingNet):  # the supersampler only ever sees rendered frames
        ds.items = [it for it in ds.items if it[1] % 2 == 0]

    def batches():
        epoch = run.step // max(len(ds) // cfg.batch, 1)
        while True:
            ds.epoch = epoch
            g = torch.Generator().manual_seed(run_cfg.seed * 7919 + epoch * 131 + rank)
            loader = torch.utils.data.DataLoader(
                ds, batch_size=cfg.batch, sampler=torch.utils.data.RandomSampler(ds, generator=g),
                num_workers=cfg.workers, drop_last=True, persistent_workers=False)
            yield from loader
            epoch += 1

    stream = batches()

    def step_fn(step: int) -> dict:
        batch = {k: v.to(device, non_blocking=True) for k, v in next(stream).items()}
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            pred, target, mask = _forward(run.net, batch)
            return stss_loss(pred.float(), target, mask)

    return run.run(step_fn)
