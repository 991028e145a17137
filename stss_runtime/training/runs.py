"""What every trainer (``train``, ``train_flow``, ``train_vfi``, ``train_policy``) does around
its loop: stop cleanly on Ctrl-C / SIGTERM (finish the step, checkpoint, exit 130), refuse data
folders that are not frame dumps, and resume a run or start it from given weights."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import torch


class SignalStop:
    """Installs SIGINT and SIGTERM handlers that only set :attr:`now`; :meth:`restore`
    puts the previous handlers back (call it in a ``finally``)."""

    def __init__(self):
        self.now = False
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, signum, _frame) -> None:
        self.now = True

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def end_run(save_checkpoint, csv_file, bar, stop: SignalStop) -> None:
    """The ``finally`` of every training loop: checkpoint what was done, close the loss log
    (None on ranks that write none) and the progress bar, put the signal handlers back."""
    save_checkpoint()
    if csv_file is not None:
        csv_file.close()
    if bar is not None:
        bar.close()
    stop.restore()


def check_data_folders(parser, folders) -> None:
    """``parser.error`` (exit 2) for a ``--data`` folder without ``meta.json``."""
    for d in folders:
        if not (d / "meta.json").exists():
            parser.error(f"--data {d}: not a frame dump folder (no meta.json)")


def resume_or_init(prog: str, ckpt_path: Path, model, opt, model_name: str, init: Path | None) -> int | None:
    """Load ``ckpt_path`` (model, optimiser, step) when it exists, else the weights ``init``
    (model only) when given: the step to go on from, or None after printing why neither can
    be used (a checkpoint of another model, weights of another model)."""
    from ..checkpoint import WeightsError, load_weights

    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["model_name"] != model_name:
            print(f"{prog}: {ckpt_path} is a {ck['model_name']} run, not {model_name}; choose another --out",
                  file=sys.stderr)
            return None
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        print(f"{prog}: resuming {ckpt_path.parent} at step {int(ck['step'])}")
        return int(ck["step"])
    if init is not None:
        try:
            init_model, _ = load_weights(init, expected_model=model_name)
        except WeightsError as e:
            print(f"{prog}: --init: {e}", file=sys.stderr)
            return None
        model.load_state_dict(init_model.state_dict())
        print(f"{prog}: starting from the weights {init}")
    return 0
