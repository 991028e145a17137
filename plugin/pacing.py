"""The dynamic frame multiplier of ``ContextDescription(generated_frames="auto")``: how many
frames to extrapolate after each rendered one so that the presented frame rate tracks a
target display rate, from the render times the engine measures.

With a render time of ``r`` ms the engine renders ``1000 / r`` frames per second and
presents ``(n + 1)`` times as many with ``n`` generated frames per rendered one. The
multiplier keeps the smallest ``n`` (0 to :data:`MAX_GENERATED`) whose presented rate
reaches the target, on a smoothed render time (an exponential average, so that one slow
frame does not change it), and with a margin (:attr:`FrameMultiplier.margin`) on either side
of each step, so that a render time near a boundary does not make ``n`` flap:

- it goes up as soon as the current ``n`` falls short of the target by more than the margin;
- it goes down only to an ``n`` that reaches the target with the margin to spare.

It never waits: the choice made after a frame applies to the next one, which is when an
engine renders that frame's G-buffers. The first frame, before any measurement, takes
:attr:`FrameMultiplier.initial` (1: twice the rendered rate).
"""

from __future__ import annotations

import math

#: The most frames extrapolated per rendered frame (4x the rendered frame rate).
MAX_GENERATED = 3


class FrameMultiplier:
    """Chooses the generated frames per rendered frame from measured render times."""

    def __init__(self, target_hz: float, max_generated: int = MAX_GENERATED, initial: int = 1,
                 smoothing: float = 0.25, margin: float = 0.05):
        """``target_hz``: the presented frames per second to track; ``smoothing``: the
        weight of a new render time in the average; ``margin``: the fraction of the target
        by which the presented rate may miss it (going up) or must beat it (going down)."""
        if not (isinstance(target_hz, (int, float)) and math.isfinite(target_hz) and target_hz > 0):
            raise ValueError(f"target_hz: expected a positive finite rate, got {target_hz!r}")
        self.target_hz = float(target_hz)
        self.max_generated = int(max_generated)
        self.smoothing, self.margin = float(smoothing), float(margin)
        self.n = min(max(int(initial), 0), self.max_generated)
        self.render_ms: float | None = None  # the smoothed render time

    def presented_hz(self, n: int | None = None) -> float:
        """Presented frames per second with ``n`` generated frames (default: the current
        choice) at the smoothed render time; NaN before the first measurement."""
        if self.render_ms is None:
            return math.nan
        return (self.n if n is None else n) * 1000.0 / self.render_ms + 1000.0 / self.render_ms

    def update(self, render_ms: float) -> int:
        """Take the render time (ms) of the frame just rendered; return the count for the next."""
        if not (math.isfinite(render_ms) and render_ms > 0):
            raise ValueError(f"render_ms: expected a positive finite time in ms, got {render_ms!r}")
        self.render_ms = render_ms if self.render_ms is None else \
            self.render_ms + self.smoothing * (render_ms - self.render_ms)
        low, high = self.target_hz * (1.0 - self.margin), self.target_hz * (1.0 + self.margin)
        if self.presented_hz() < low:  # short of the target: the smallest n that reaches it
            self.n = next((n for n in range(self.n + 1, self.max_generated + 1) if self.presented_hz(n) >= low),
                          self.max_generated)
        else:  # down only where a smaller n beats the target with the margin to spare
            self.n = next((n for n in range(self.n) if self.presented_hz(n) >= high), self.n)
        return self.n
