"""Train STSS (or the two-stage baseline's supersampling network) on frame dumps.

    python -m stss_runtime.train --data data/fence_a data/gallery_a --out runs/stss --steps 3000

Resumable: re-running the same command continues from ``OUT/checkpoint.pt`` (written every
``--checkpoint-every`` steps and on Ctrl-C). Writes ``OUT/loss.csv``, ``OUT/loss.png`` and
``OUT/weights.pt`` (the model alone, fp32). Under ``torchrun --nproc_per_node N`` it trains
with DistributedDataParallel (gloo on CPU, nccl on GPU), each process drawing its own crops.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .checkpoint import save_weights
from .graphs import to_display_grid
from .models import MODEL_PRESETS, STSS, ExtraNet, SupersamplingNet, build_model
from .training.dataset import CropDataset, ExtraNetCropDataset, build_cache
from .training.loss import stss_loss
from .training.plots import plot_curves
from .training.runs import SignalStop, check_data_folders, end_run

# the image models this trainer knows (the flow and VFI networks have their own trainers)
TRAINABLE = sorted(k for k, (cls, _) in MODEL_PRESETS.items() if cls in (STSS, SupersamplingNet, ExtraNet))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stss_runtime.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, type=Path,
                   help="frame dump folders (python -m demo_renderer render ...) to train on")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, logs, weights)")
    p.add_argument("--model", default="stss", choices=TRAINABLE, help="model preset (default stss)")
    p.add_argument("--steps", type=int, default=2000, help="total optimisation steps (default 2000)")
    p.add_argument("--batch", type=int, default=8, help="crops per step and process (default 8)")
    p.add_argument("--crop", type=int, default=128, help="crop side, render pixels, multiple of 8 (default 128)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    p.add_argument("--lr-schedule", default="constant", choices=("constant", "cosine"),
                   help="constant, or cosine decay from --lr at step 0 to --min-lr at --steps "
                        "(a function of the step alone, so a resumed run follows the same curve)")
    p.add_argument("--min-lr", type=float, default=1e-6, help="final learning rate of --lr-schedule cosine")
    p.add_argument("--init", type=Path, default=None,
                   help="start from these weights (a weights.pt of the same model) instead of a "
                        "random initialisation; ignored when the run folder has a checkpoint")
    p.add_argument("--augment", action="store_true",
                   help="mirror crops horizontally and permute colour channels (each p=1/2)")
    p.add_argument("--no-rrm", action="store_true", help="disable Random Reshading Masking")
    p.add_argument("--workers", type=int, default=1, help="data loader worker processes (default 1)")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    p.add_argument("--log-every", type=int, default=10, help="steps between loss.csv rows (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.crop % 8 or args.crop < 16:
        p.error(f"--crop must be a multiple of 8 and >= 16, got {args.crop}")
    check_data_folders(p, args.data)
    if args.steps < 1 or args.batch < 1:
        p.error("--steps and --batch must be positive")
    if not args.lr > 0 or not 0 <= args.min_lr <= args.lr:
        p.error(f"--lr must be > 0 and --min-lr in [0, --lr], got --lr {args.lr}, --min-lr {args.min_lr}")
    if args.init is not None and not args.init.exists():
        p.error(f"--init {args.init}: no such file")
    return args


def learning_rate(args: argparse.Namespace, step: int) -> float:
    """The learning rate of optimisation step ``step`` (0-based) under ``--lr-schedule``."""
    if args.lr_schedule == "constant":
        return args.lr
    progress = min(step / max(args.steps, 1), 1.0)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * progress))


def _dist_setup(device: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


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


def train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world = _dist_setup(args.device)
    device = torch.device(f"cuda:{rank % max(torch.cuda.device_count(), 1)}"
                          if args.device.startswith("cuda") else "cpu")
    torch.manual_seed(args.seed + rank)
    out: Path = args.out
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    model = build_model(args.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    step = 0
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck["model_name"] != args.model:
            print(f"train: {ckpt_path} is a {ck['model_name']} run, not {args.model}; "
                  f"choose another --out", file=sys.stderr)
            return 2
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        scaler.load_state_dict(ck["scaler"])
        step = int(ck["step"])
        if rank == 0:
            print(f"train: resuming {out} at step {step}")
    elif args.init is not None:
        from .checkpoint import WeightsError, load_weights
        try:
            init_model, info = load_weights(args.init, expected_model=args.model)
        except WeightsError as e:
            print(f"train: --init: {e}", file=sys.stderr)
            return 2
        model.load_state_dict(init_model.state_dict())
        if rank == 0:
            print(f"train: starting from {args.init} ({info.get('steps', '?')} steps)")
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    bare = model.module if world > 1 else model
    if world > 1:  # one process fills the input caches; the others wait and then only read them
        if rank == 0:
            for folder in args.data:
                build_cache(folder, progress=not args.no_progress)
        dist.barrier()
    ds_cls = ExtraNetCropDataset if isinstance(bare, ExtraNet) else CropDataset
    ds = ds_cls(args.data, crop=args.crop, rrm=not args.no_rrm, seed=args.seed * 1000 + rank,
                progress=rank == 0 and not args.no_progress, augment=args.augment)
    if isinstance(bare, SupersamplingNet):  # the supersampler only ever sees rendered frames
        ds.items = [it for it in ds.items if it[1] % 2 == 0]

    def batches():
        epoch = step // max(len(ds) // args.batch, 1)
        while True:
            ds.epoch = epoch
            g = torch.Generator().manual_seed(args.seed * 7919 + epoch * 131 + rank)
            loader = torch.utils.data.DataLoader(
                ds, batch_size=args.batch, sampler=torch.utils.data.RandomSampler(ds, generator=g),
                num_workers=args.workers, drop_last=True, persistent_workers=False)
            yield from loader
            epoch += 1

    stop = SignalStop()

    def save_checkpoint():
        if rank != 0:
            return
        m = model.module if world > 1 else model
        tmp = out / "checkpoint.tmp.pt"
        torch.save({"model_name": args.model, "model": m.state_dict(), "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict(), "step": step, "args": vars(args) | {"data": [str(d) for d in args.data], "out": str(out)}}, tmp)
        os.replace(tmp, ckpt_path)
        save_weights(out / "weights.pt", m, args.model, steps=step, data=[str(d) for d in args.data])
        if (out / "loss.csv").exists():
            plot_losses(out / "loss.csv", out / "loss.png")

    csv_file = None
    if rank == 0:
        new = not (out / "loss.csv").exists()
        csv_file = (out / "loss.csv").open("a", newline="")
        writer = csv.writer(csv_file)
        if new:
            writer.writerow(["step", "loss", "l1", "hole", "grad", "seconds_per_step", "wall_time"])
    bar = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, unit="step", desc=f"train {args.model}", dynamic_ncols=True)
    model.train()
    acc: dict[str, float] = {}
    t_last = time.perf_counter()
    n_acc = 0
    try:
        for batch in batches():
            if step >= args.steps or stop.now:
                break
            for group in opt.param_groups:
                group["lr"] = learning_rate(args, step)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                pred, target, mask = _forward(model, batch)
                losses = stss_loss(pred.float(), target, mask)
            opt.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            if not math.isfinite(losses["loss"].item()):
                raise FloatingPointError(f"loss became {losses['loss'].item()} at step {step}")
            for k, v in losses.items():
                acc[k] = acc.get(k, 0.0) + v.item()
            n_acc += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"loss {losses['loss'].item():.4f}")
            if rank == 0 and (step % args.log_every == 0 or step == args.steps):
                now = time.perf_counter()
                writer.writerow([step] + [f"{acc[k] / n_acc:.6f}" for k in ("loss", "l1", "hole", "grad")]
                                + [f"{(now - t_last) / n_acc:.3f}", f"{time.time():.0f}"])
                csv_file.flush()
                acc, n_acc, t_last = {}, 0, now
            if step % args.checkpoint_every == 0:
                save_checkpoint()
    finally:
        end_run(save_checkpoint, csv_file, bar, stop)
        if world > 1:
            dist.destroy_process_group()
    if rank == 0:
        state = "interrupted" if stop.now else "done"
        print(f"train: {state} at step {step}; weights {out / 'weights.pt'}, log {out / 'loss.csv'}, "
              f"plot {out / 'loss.png'}")
    return 130 if stop.now else 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
