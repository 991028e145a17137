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
from ..history import History


class PassError(ValueError):
    """A pass was used wrongly (not set up, wrong frame size)."""


class PassOptionError(PassError):
    """A pass cannot run with a runtime option it was given (a back-end, precision or device
    it does not support): ``option``, ``expected`` and ``actual`` name it."""

    def __init__(self, pass_name: str, option: str, expected: str, actual: object):
        self.option, self.expected, self.actual = option, expected, actual
        super().__init__(f"{pass_name}: {option}: expected {expected}, got {actual!r}")


def torch_only(pass_name: str, backend: str, precision: str, why: str) -> None:
    """``PassOptionError`` unless the pass is asked to run on torch in fp32 (a pass whose
    network runs in eager torch only; ``why`` says why)."""
    if backend != "torch":
        raise PassOptionError(pass_name, "backend", f"'torch' ({why})", backend)
    if precision != "fp32":
        raise PassOptionError(pass_name, "precision", f"'fp32' ({why})", precision)


class Pass(ABC):
    """``execute(frame)`` returns the display-resolution frame, linear colour (1, 3, H, W)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: G-buffers read besides colour and motion (documentation and validation).
    inputs: ClassVar[tuple[str, ...]] = ("color", "motion")
    #: Display frames of delay the pass adds (interpolation: 1; STSS extrapolation: 0).
    latency_frames: ClassVar[int] = 0
    #: A learned model runs in the pass (evaluation keeps it out of the "best baseline").
    neural: ClassVar[bool] = False
    #: The constructor takes ``device``, ``backend``, ``precision`` and ``max_render_size``
    #: to place and compile its network (the plugin hands them over); every neural pass
    #: does, and honours them or raises :class:`PassOptionError` naming the option.
    runtime_options: ClassVar[bool] = False

    @property
    def fixed_scale(self) -> int | None:
        """The display/render ratio the pass only works at (the network's pixel-shuffle
        factor), or ``None`` when any display size works. Callers wanting another display size
        set the pass up at this ratio and resample its output (the plugin does)."""
        return None

    #: The runtime history the pass keeps (warps, hole marking), when it keeps one: set by
    #: ``reset()``. Callers read what it knows through :meth:`debug_outputs`.
    history: History | None = None
    #: Per-frame statistics of the last ``execute`` (numbers), for evaluation reports.
    last_stats: dict | None = None

    def __init__(self):
        self.render_size: tuple[int, int] | None = None
        self.display_size: tuple[int, int] | None = None

    def debug_outputs(self) -> dict[str, torch.Tensor]:
        """What the pass exposes for debug views after its last ``execute``, by name:
        ``"hole_valid"`` (1, 1, h, w) render resolution, 1 where the last shaded frame's warp
        to the current frame is valid, 0 at disocclusions (passes keeping a history). Passes
        add their own (``stss_flow``: ``"motion"``, the motion it estimated)."""
        out: dict[str, torch.Tensor] = {}
        if self.history is not None and self.history.previous_valid is not None:
            out["hole_valid"] = self.history.previous_valid
        return out

    def setup(self, render_size: tuple[int, int], display_size: tuple[int, int]) -> None:
        """Size-dependent setup; resets the history. ``PassError`` if the pass has a
        :attr:`fixed_scale` and the sizes are not at that ratio."""
        render = (int(render_size[0]), int(render_size[1]))
        display = (int(display_size[0]), int(display_size[1]))
        s = self.fixed_scale
        if s is not None and display != (s * render[0], s * render[1]):
            raise PassError(f"{self.name}: display_size: expected {s}x the render size {render[0]}x{render[1]} = "
                            f"{s * render[0]}x{s * render[1]} (the network's fixed scale; resample its output "
                            f"for other sizes, as the plugin does), got {display[0]}x{display[1]}")
        self.render_size, self.display_size = render, display
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
