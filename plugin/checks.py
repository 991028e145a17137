"""The value checks of one dispatch, read back to the host together, once.

Checking an input's values (finite? in range? how many pixels to warn about?) needs a
number on the host. Read one at a time (``float(color.min())``, ``bool(bad.any())``), each
check is a host synchronisation on CUDA: about twenty per frame. Here every check
registers the device tensors it needs and a *verdict*; :meth:`ValueChecks.run` stacks all
of them, copies them to the host in one transfer and runs the verdicts in the order they
were registered. A verdict raises to refuse the frame (the first failing one wins, so a
frame with one mistake gets the same message as when each check read its own values) or
queues a warning. On the CPU the transfer is a copy of a few dozen numbers.
"""

from __future__ import annotations

from typing import Callable

import torch

Verdict = Callable[..., None]


class ValueChecks:
    """Collects ``(verdict, values)``; :meth:`run` reads every value back at once."""

    def __init__(self) -> None:
        self._values: list[torch.Tensor] = []
        self._verdicts: list[tuple[int, int, Verdict]] = []
        #: host reads made by :meth:`run` (0 or 1 per call; tests count them)
        self.reads = 0

    def __len__(self) -> int:
        return len(self._verdicts)

    def add(self, verdict: Verdict, *values: torch.Tensor) -> None:
        """``verdict(*floats)`` runs in :meth:`run` with ``values`` (0-d tensors on any one
        device: reductions such as ``t.min()`` or ``(t < 0).sum()``) read back as floats."""
        start = len(self._values)
        self._values.extend(v.detach().reshape(()).to(torch.float64) for v in values)
        self._verdicts.append((start, len(values), verdict))

    def run(self) -> None:
        """Read every value registered so far in one device-to-host copy, then run the
        verdicts in order (the first that raises stops the rest). Empties the list."""
        values, verdicts = self._values, self._verdicts
        self._values, self._verdicts = [], []
        host: list[float] = []
        if values:
            host = torch.stack(values).cpu().tolist()  # the one host read
            self.reads += 1
        for start, n, verdict in verdicts:
            verdict(*host[start:start + n])
