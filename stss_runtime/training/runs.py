"""What every trainer (``train``, ``train_flow``, ``train_vfi``) does around its loop: stop
cleanly on Ctrl-C / SIGTERM (finish the step, checkpoint, exit 130) and refuse data folders
that are not frame dumps."""

from __future__ import annotations

import signal


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


def check_data_folders(parser, folders) -> None:
    """``parser.error`` (exit 2) for a ``--data`` folder without ``meta.json``."""
    for d in folders:
        if not (d / "meta.json").exists():
            parser.error(f"--data {d}: not a frame dump folder (no meta.json)")
