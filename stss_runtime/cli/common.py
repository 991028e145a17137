"""What every verb of the command line shares: size parsing, the training options every
family has, turning parsed options into the library's config dataclasses, and the one
error type that becomes "one line on stderr, exit status 2"."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

import torch


class UsageError(Exception):
    """A command-line mistake: one line on stderr, exit status 2."""


def parse_size(text: str) -> tuple[int, int]:
    """``"480x270"`` -> ``(480, 270)``; an ``argparse`` type (a clear error otherwise)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size: expected WIDTHxHEIGHT such as 480x270, got {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size: expected at least 8x8, got {text!r}")
    return w, h


def config(cls: type, ns: argparse.Namespace, **override) -> Any:
    """``cls`` (a config dataclass) from the options of the same names; a ``ValueError`` of
    its checks becomes a :class:`UsageError` naming the option."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in override:
            values[f.name] = override[f.name]
        elif hasattr(ns, f.name):
            v = getattr(ns, f.name)
            values[f.name] = tuple(v) if isinstance(v, list) else v
    try:
        return cls(**values)
    except ValueError as e:
        raise UsageError(as_option_message(str(e), ns)) from None


def as_option_message(message: str, ns: argparse.Namespace) -> str:
    """A library error naming a field (``"crop: expected ..."``, ``"init: ..."``) as the
    command-line option of that name (``"--crop: expected ..."``)."""
    names, sep, rest = message.partition(": ")
    fields = [n.strip() for n in names.split("/")]
    if sep and fields and all(f.isidentifier() and hasattr(ns, f) for f in fields):
        return " / ".join("--" + f.replace("_", "-") for f in fields) + ": " + rest
    return message


def add_run_options(p: argparse.ArgumentParser, *, steps: int, lr: float, min_lr: float | None,
                    schedule: str = "cosine",
                    checkpoint_every: int = 100, lr_help: str = "learning rate") -> None:
    """The options of :class:`stss_runtime.training.loop.RunConfig`, with a family's defaults."""
    g = p.add_argument_group("the run (shared by every model family)")
    g.add_argument("--out", required=True, type=Path,
                   help="run folder: checkpoint.pt, weights.pt, loss.csv, loss.png; re-running the same "
                        "command resumes from its checkpoint")
    g.add_argument("--steps", type=int, default=steps, help=f"total optimisation steps (default {steps})")
    g.add_argument("--lr", type=float, default=lr, help=f"{lr_help} at step 0 (default {lr:g})")
    g.add_argument("--lr-schedule", dest="schedule", default=schedule, choices=("constant", "cosine"),
                   help="constant, or cosine decay from --lr at step 0 to --min-lr at --steps (a function of "
                        f"the step alone, so a resumed run follows the same curve; default {schedule})")
    g.add_argument("--min-lr", type=float, default=min_lr,
                   help="final learning rate of the cosine schedule (default "
                        + (f"{min_lr:g})" if min_lr is not None else "--lr / 100)"))
    g.add_argument("--init", type=Path, default=None,
                   help="start a new run from these weights (a weights.pt of the same model) instead of a "
                        "random initialisation; ignored when the run folder has a checkpoint")
    g.add_argument("--checkpoint-every", type=int, default=checkpoint_every,
                   help=f"steps between checkpoints (default {checkpoint_every}; also on Ctrl-C)")
    g.add_argument("--log-every", type=int, default=10, help="steps between loss.csv rows (default 10)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_config(ns: argparse.Namespace):
    from ..training.loop import RunConfig

    if ns.init is not None and not ns.init.exists():
        raise UsageError(f"--init {ns.init}: no such file")
    return config(RunConfig, ns, progress=not ns.no_progress)


def check_folders(folders, option: str = "--data") -> None:
    for d in folders:
        if not (Path(d) / "meta.json").exists():
            raise UsageError(f"{option} {d}: not a frame dump folder (no meta.json)")


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


Handler = Callable[[argparse.Namespace], int]
