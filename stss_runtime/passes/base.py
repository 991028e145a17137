"""The pass interface every post-process pass implements (STSS, baselines, alternatives).

A pass declares what it reads, is set up for a (render, display) size pair, executes one
display frame at a time and can be reset (camera cut). It keeps whatever history it needs;
the caller hands over each display frame in order, shaded or not (``Frame.color``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from ..frame import Frame


class PassError(ValueError):
    """A pass was used wrongly (not set up, wrong frame size)."""


class Pass(ABC):
    """``execute(frame)`` returns the display-resolution frame, linear colour (1, 3, H, W)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: G-buffers read besides colour and motion (documentation and validation).
    inputs: ClassVar[tuple[str, ...]] = ("color", "motion")
    #: Display frames of delay the pass adds (interpolation: 1; STSS extrapolation: 0).
    latency_frames: ClassVar[int] = 0

    def __init__(self):
        self.render_size: tuple[int, int] | None = None
        self.display_size: tuple[int, int] | None = None

    def setup(self, render_size: tuple[int, int], display_size: tuple[int, int]) -> None:
        """Size-dependent setup; resets the history."""
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.display_size = (int(display_size[0]), int(display_size[1]))
        self.reset()

    def reset(self) -> None:
        """Forget all history (camera cut, resolution change)."""

    def _check(self, frame: Frame) -> None:
        if self.display_size is None:
            raise PassError(f"{self.name}: call setup(render_size, display_size) before execute()")
        if frame.size != self.render_size:
            raise PassError(f"{self.name}: frame {frame.index} has render size {frame.size}, "
                            f"the pass was set up for {self.render_size}")

    @abstractmethod
    def execute(self, frame: Frame) -> torch.Tensor:
        ...

    def __call__(self, frame: Frame) -> torch.Tensor:
        self._check(frame)
        with torch.inference_mode():
            return self.execute(frame)
