"""Per-stage timings of a dispatch: host clocks always, GPU times on CUDA.

A context times each stage of :meth:`plugin.Context.dispatch` (inputs, upscale, generate,
ui) twice:

- ``timings_ms``: host wall time of the stage. On the CPU that is the work itself; on CUDA
  it is the time to validate and enqueue (the context never synchronises just to time).
- ``gpu_timings_ms``: on CUDA only, the GPU time of each stage from CUDA events recorded
  on the current stream at the stage boundaries. Reading an event's time before the GPU
  has reached it would stall the frame, so the events of a dispatch are read only once
  they have completed, usually one or two dispatches later: a result carries the GPU times
  of an *earlier* dispatch, named by ``gpu_timings_frame`` (its ``frame_index``). When the
  GPU falls more than :attr:`StageTimer.max_pending` dispatches behind, the oldest
  pending events are dropped rather than waited for.
"""

from __future__ import annotations

import collections
import time
from typing import Callable, Protocol


class _Event(Protocol):  # torch.cuda.Event, or a stand-in in tests
    def record(self) -> None: ...
    def query(self) -> bool: ...
    def elapsed_time(self, end: "_Event") -> float: ...


class StageTimer:
    """Times the stages of one dispatch after another.

    ``event_factory``: makes a timing event (``torch.cuda.Event(enable_timing=True)`` on
    CUDA); None on the CPU, where there are no GPU times. Use::

        timer.begin()
        ...; timer.mark("inputs")
        ...; timer.mark("upscale")
        host_ms = timer.end(frame_index)           # {"inputs": .., "upscale": .., "total": ..}
        frame, gpu_ms = timer.poll()               # an earlier dispatch's GPU times, or (None, {})
    """

    max_pending = 4

    def __init__(self, event_factory: Callable[[], _Event] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self._make_event = event_factory
        self._clock = clock
        self._pending: collections.deque = collections.deque()
        self._open = False
        self._host: list[tuple[str, float]] = []
        self._events: list[tuple[str, _Event]] = []
        self.dropped = 0  # dispatches whose GPU times were given up on

    @classmethod
    def for_device(cls, device) -> "StageTimer":
        """A timer with CUDA events on a CUDA ``device`` (torch.device), host clocks only otherwise."""
        if getattr(device, "type", str(device)) == "cuda":
            import torch

            return cls(lambda: torch.cuda.Event(enable_timing=True))
        return cls(None)

    @property
    def gpu(self) -> bool:
        return self._make_event is not None

    def _record(self, name: str) -> None:
        self._host.append((name, self._clock()))
        if self._make_event is not None:
            e = self._make_event()
            e.record()
            self._events.append((name, e))

    def begin(self) -> None:
        """A dispatch starts (one left open by a refused dispatch is forgotten)."""
        self._open = True
        self._host, self._events = [], []
        self._record("begin")

    def mark(self, stage: str) -> None:
        """The stage named ``stage`` ends now (and the next one begins)."""
        if not self._open:
            raise RuntimeError("StageTimer.mark() before begin()")
        self._record(stage)

    def end(self, frame_index: int) -> dict[str, float]:
        """Close the dispatch of ``frame_index``; its host stage times in ms, plus ``total``."""
        if not self._open:
            raise RuntimeError("StageTimer.end() before begin()")
        out = {name: (t - t_prev) * 1e3 for (_, t_prev), (name, t) in zip(self._host, self._host[1:])}
        out["total"] = (self._host[-1][1] - self._host[0][1]) * 1e3
        if self._events:
            self._pending.append((frame_index, self._events))
            while len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
        self._open, self._host, self._events = False, [], []
        return out

    def poll(self) -> tuple[int | None, dict[str, float]]:
        """The GPU stage times (ms, plus ``total``) of the oldest dispatch whose events have
        all completed, and its frame index; ``(None, {})`` when none has. Never waits."""
        if not self._pending:
            return None, {}
        frame, events = self._pending[0]
        if not events[-1][1].query():  # the stream reached the last mark: so all before it
            return None, {}
        self._pending.popleft()
        out = {name: start.elapsed_time(end) for (_, start), (name, end) in zip(events, events[1:])}
        out["total"] = events[0][1].elapsed_time(events[-1][1])
        return frame, out
