"""The one training loop every model family uses (STSS and the two-stage networks, the flow
network, its iteration policy, the interpolation refiner).

A family builds its model, optimiser and a ``step_fn(step) -> {name: value}`` that computes
one batch's losses (``"loss"`` must be a tensor to differentiate); :class:`TrainingRun` does
the rest, the same way for all of them:

- **schedule**: the learning rate is a function of the step alone (:func:`learning_rate`:
  constant, or cosine from ``lr`` to ``min_lr`` over ``steps``), so a resumed run follows the
  same curve;
- **checkpoint and resume**: ``OUT/checkpoint.pt`` (model, optimiser, gradient scaler,
  step) every ``checkpoint_every`` steps and when the run ends for any reason; re-running
  the same command resumes there; ``init`` starts a new run from given weights instead;
  ``OUT/weights.pt`` is the model alone (:func:`stss_runtime.checkpoint.save_weights`);
- **log and plot**: ``OUT/loss.csv`` (step, the family's columns, lr, seconds per step,
  wall time; means over the steps since the last row, non-finite values left out) and
  ``OUT/loss.png``, redrawn at every checkpoint;
- **progress bar** (tqdm) and **Ctrl-C / SIGTERM**: the step in flight finishes, the run
  checkpoints and :meth:`TrainingRun.run` reports ``interrupted`` (commands exit 130);
- **DistributedDataParallel** when started under ``torchrun`` (gloo on CPU, nccl on
  GPU): rank 0 alone writes files; the model the step function calls is
  :attr:`TrainingRun.net` (the DDP wrapper), the one saved is :attr:`TrainingRun.model`.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..checkpoint import WeightsError, load_weights, save_weights

SCHEDULES = ("constant", "cosine")


class TrainingError(RuntimeError):
    """A run cannot start or go on (a checkpoint of another model, unusable data, a loss
    that is no longer finite); the message says why."""


@dataclass(frozen=True)
class RunConfig:
    """What every training run shares. Families add their own dataclass beside it."""

    out: Path  # run folder: checkpoint.pt, weights.pt, loss.csv, loss.png
    steps: int  # total optimisation steps
    lr: float  # learning rate at step 0
    min_lr: float = 0.0  # final learning rate of the cosine schedule
    schedule: str = "cosine"  # "constant" or "cosine"
    checkpoint_every: int = 100  # steps between checkpoints
    log_every: int = 10  # steps between loss.csv rows
    seed: int = 0
    threads: int = 0  # torch CPU threads (0: torch's default)
    progress: bool = True  # tqdm progress bar
    init: Path | None = None  # weights of the same model to start a new run from

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps: expected >= 1, got {self.steps}")
        expect_one_of("schedule", self.schedule, SCHEDULES)
        if not self.lr > 0 or not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"lr / min_lr: expected lr > 0 and min_lr in [0, lr], got {self.lr} / {self.min_lr}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError(f"checkpoint_every / log_every: expected >= 1, got "
                             f"{self.checkpoint_every} / {self.log_every}")


def expect_one_of(name: str, value, choices) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is one of ``choices`` (config checks)."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(str, choices))}, got {value!r}")


def expect_at_least(minimum: int, **values: int) -> None:
    """``ValueError`` naming the first of ``values`` below ``minimum`` (config checks)."""
    for name, v in values.items():
        if v < minimum:
            raise ValueError(f"{name}: expected >= {minimum}, got {v}")


def learning_rate(cfg: RunConfig, step: int) -> float:
    """The learning rate of optimisation step ``step`` (0-based)."""
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(step / max(cfg.steps, 1), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


class SignalStop:
    """Installs SIGINT and SIGTERM handlers that only set :attr:`now`; :meth:`restore` puts
    the previous handlers back (call it in a ``finally``)."""

    def __init__(self):
        self.now = False
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, signum, _frame) -> None:
        self.now = True

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def check_data_folders(folders: Sequence[Path]) -> None:
    """``TrainingError`` for a data folder that is not a frame dump (no ``meta.json``)."""
    for d in folders:
        if not (Path(d) / "meta.json").exists():
            raise TrainingError(f"data {d}: not a frame dump folder (no meta.json)")


def distributed_setup(device: str) -> tuple[int, int]:
    """(rank, world size); initialises the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _plain(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def config_dict(*configs) -> dict:
    """The dataclasses of a run as plain values (paths as strings), for checkpoints."""
    out: dict = {}
    for c in configs:
        out.update(_plain(asdict(c)))
    return out


@dataclass
class RunResult:
    step: int
    interrupted: bool
    out: Path
    extra: dict = field(default_factory=dict)


class TrainingRun:
    """One run of one model: resume or init, then :meth:`run` the loop.

    ``columns``: the step function's values logged to ``loss.csv`` (``"loss"`` first);
    ``plot(csv_path, png_path)`` draws the log; ``info``: stored with the weights (a dict,
    or a callable returning one at save time); ``scaler``: a ``torch.amp.GradScaler``
    (mixed precision on CUDA); ``grad_clip``: the gradient norm is clipped to it (a
    family's recipe, not a knob); ``postfix``: values shown on the progress bar."""

    def __init__(self, cfg: RunConfig, *, prog: str, model_name: str, model: nn.Module,
                 optimizer: torch.optim.Optimizer, columns: Sequence[str],
                 plot: Callable[[Path, Path], None] | None = None,
                 info: Mapping | Callable[[], Mapping] | None = None, config: Mapping | None = None,
                 scaler: torch.amp.GradScaler | None = None, grad_clip: float | None = None,
                 postfix: Sequence[str] = ("loss",),
                 rank: int = 0, world: int = 1, device: torch.device | None = None):
        self.cfg, self.prog, self.model_name = cfg, prog, model_name
        self.model, self.opt, self.scaler, self.grad_clip = model, optimizer, scaler, grad_clip
        self.columns, self.plot, self.postfix = list(columns), plot, list(postfix)
        self._info, self.config = info, dict(config or config_dict(cfg))
        self.rank, self.world = rank, world
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.out)
        self.ckpt_path = self.out / "checkpoint.pt"
        if rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        self.step = self._resume_or_init(device)
        self.net: nn.Module = model
        if world > 1:
            ids = [device.index] if device is not None and device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def say(self, msg: str) -> None:
        if self.rank == 0:
            print(f"{self.prog}: {msg}")

    def _resume_or_init(self, device) -> int:
        if self.ckpt_path.exists():
            ck = torch.load(self.ckpt_path, map_location=device or "cpu", weights_only=False)
            if ck["model_name"] != self.model_name:
                raise TrainingError(f"{self.ckpt_path} is a {ck['model_name']} run, not {self.model_name}; "
                                    f"choose another run folder")
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            if self.scaler is not None and "scaler" in ck:
                self.scaler.load_state_dict(ck["scaler"])
            step = int(ck["step"])
            self.say(f"resuming {self.out} at step {step}")
            return step
        if self.cfg.init is not None:
            try:
                init_model, info = load_weights(self.cfg.init, expected_model=self.model_name)
            except WeightsError as e:
                raise TrainingError(f"init: {e}") from None
            self.model.load_state_dict(init_model.state_dict())
            self.say(f"starting from the weights {self.cfg.init} ({info.get('steps', '?')} steps)")
        return 0

    def info(self) -> dict:
        extra = self._info() if callable(self._info) else dict(self._info or {})
        return {"steps": self.step} | {k: _plain(v) for k, v in extra.items() if k != "steps"}

    def save(self) -> None:
        """Checkpoint, weights and plot (rank 0 only)."""
        if self.rank != 0:
            return
        tmp = self.out / "checkpoint.tmp.pt"
        state = {"model_name": self.model_name, "model": self.model.state_dict(),
                 "optimizer": self.opt.state_dict(), "step": self.step, "config": self.config}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_path)
        save_weights(self.out / "weights.pt", self.model, self.model_name, **self.info())
        if self.plot is not None and (self.out / "loss.csv").exists():
            self.plot(self.out / "loss.csv", self.out / "loss.png")

    def _optimise(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.grad_clip is not None:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.opt.step()

    def run(self, step_fn: Callable[[int], Mapping[str, Any]]) -> RunResult:
        """Train from :attr:`step` to ``cfg.steps``; ``step_fn(step)`` returns the batch's
        losses and statistics (tensors or floats), ``"loss"`` differentiable."""
        cfg = self.cfg
        if self.step >= cfg.steps:
            self.say(f"{self.out} is already at step {self.step} >= {cfg.steps} steps; nothing to do")
            return RunResult(self.step, False, self.out)
        csv_file = writer = bar = None
        if self.rank == 0:
            new = not (self.out / "loss.csv").exists()
            csv_file = (self.out / "loss.csv").open("a", newline="")
            writer = csv.writer(csv_file)
            if new:
                writer.writerow(["step", *self.columns, "lr", "seconds_per_step", "wall_time"])
            if cfg.progress:
                from tqdm import tqdm

                bar = tqdm(total=cfg.steps, initial=self.step, unit="step", desc=f"train {self.model_name}",
                           dynamic_ncols=True)
        stop = SignalStop()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        n_steps, t_last = 0, time.perf_counter()
        self.net.train()
        try:
            while self.step < cfg.steps and not stop.now:
                lr = learning_rate(cfg, self.step)
                for g in self.opt.param_groups:
                    g["lr"] = lr
                values = step_fn(self.step)
                loss = values["loss"]
                self._optimise(loss)
                self.step += 1
                loss_value = float(loss.item())
                if not math.isfinite(loss_value):
                    raise TrainingError(f"the loss became {loss_value} at step {self.step}")
                for k, v in values.items():
                    v = float(v.item()) if isinstance(v, torch.Tensor) else float(v)
                    if math.isfinite(v):
                        sums[k] = sums.get(k, 0.0) + v
                        counts[k] = counts.get(k, 0) + 1
                n_steps += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(" ".join(f"{k} {float(values[k]):.4f}" for k in self.postfix if k in values))
                if writer is not None and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                    now = time.perf_counter()
                    writer.writerow([self.step] + [f"{sums[k] / counts[k]:.6f}" if counts.get(k) else "nan"
                                                   for k in self.columns]
                                    + [f"{lr:.3e}", f"{(now - t_last) / n_steps:.3f}", f"{time.time():.0f}"])
                    csv_file.flush()
                    sums, counts, n_steps, t_last = {}, {}, 0, now
                if self.step % cfg.checkpoint_every == 0:
                    self.save()
        finally:
            self.save()
            if csv_file is not None:
                csv_file.close()
            if bar is not None:
                bar.close()
            stop.restore()
            if self.world > 1 and dist.is_initialized():
                dist.destroy_process_group()
        state = "interrupted" if stop.now else "done"
        self.say(f"{state} at step {self.step}; weights {self.out / 'weights.pt'}, log {self.out / 'loss.csv'}, "
                 f"plot {self.out / 'loss.png'}" + ("; re-run the same command to resume" if stop.now else ""))
        return RunResult(self.step, stop.now, self.out)
