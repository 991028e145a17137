"""STSS for engines without motion vectors: the motion pass estimates them, STSS runs on them.

Per display frame the motion is ``camera + object``:
- camera-induced motion from the frame's depth and the two cameras (exact for everything
  that does not move by itself), on every frame;
- object-induced motion from colour, on rendered frames only (extrapolated frames have no
  colour): the motion pass (tier 1 or 2) estimates the motion from this rendered frame to
  the last rendered one, started from their camera-induced motion; what the camera does
  not explain, divided by the display frames between them (constant velocity), is this
  frame's object motion. Extrapolated frames carry the last estimate along the camera
  motion.
The frame's own ``motion`` is never read (an engine without motion vectors passes none).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..frame import Frame
from ..motion import MotionEstimator, camera_motion_between
from ..ops import warp as W
from .base import Pass, torch_only
from .stss import StssPass


class StssFlowPass(Pass):
    name = "stss_flow"
    description = ("STSS fed by the motion pass: for engines without motion vectors (motion estimated "
                   "from colour and depth)")
    inputs = ("color", "depth", "normal", "albedo", "roughness", "metallic", "object_id")
    neural = True
    runtime_options = True  # handed to the default inner STSS pass

    def __init__(self, tier: int = 1, inner: Pass | None = None, estimator: MotionEstimator | None = None,
                 **stss_kwargs):
        """``tier``: the motion pass's tier for the object motion (1: OpenCV DIS, 2: the flow
        network); ``inner``: the pass to feed (default: STSS with ``stss_kwargs``: its
        ``device``, ``backend`` and ``precision`` place the STSS network). The motion is
        estimated on the CPU (OpenCV, or the flow network in eager torch fp32): tier 2 with
        another ``backend`` or ``precision`` raises :class:`PassOptionError`."""
        super().__init__()
        if tier not in (1, 2):
            raise ValueError(f"tier: expected 1 or 2 (tier 0 needs the engine's motion vectors), got {tier!r}")
        if tier == 2:
            torch_only(self.name, stss_kwargs.get("backend", "torch"), stss_kwargs.get("precision", "fp32"),
                       "the motion pass's flow network runs in eager torch on the CPU")
        self.inner = inner if inner is not None else StssPass(**stss_kwargs)
        self.estimator = estimator if estimator is not None else MotionEstimator(tier)
        self.last_stats: dict = {}

    @property
    def fixed_scale(self) -> int | None:
        return self.inner.fixed_scale

    def setup(self, render_size, display_size) -> None:
        super().setup(render_size, display_size)
        self.inner.setup(render_size, display_size)

    def reset(self) -> None:
        self.prev: Frame | None = None  # the previous display frame
        self.last_shaded: Frame | None = None
        self.object: torch.Tensor | None = None  # per-display-frame object motion at prev's pixels
        self.last_motion: torch.Tensor | None = None
        if self.inner.display_size is not None:
            self.inner.reset()

    def motion(self, frame: Frame) -> torch.Tensor:
        """The estimated motion of ``frame`` (render px, previous minus current); zeros on
        the first frame after a reset (nothing to move from)."""
        if frame.reset or self.prev is None or frame.index != self.prev.index + 1 or frame.size != self.prev.size:
            self.prev, self.last_shaded, self.object = None, None, None
            self.last_stats = {"estimated": 0.0}
            return torch.zeros_like(frame.motion)
        cam = camera_motion_between(frame, self.prev)
        obj = None if self.object is None else W.sample(self.object, cam)  # carried along
        self.last_stats = {"estimated": 0.0}
        if frame.shaded and self.last_shaded is not None:
            res = self.estimator.estimate(frame, self.last_shaded, "camera")
            obj = res.object / (frame.index - self.last_shaded.index)
            self.last_stats = {"estimated": 1.0, "tiles_estimated": res.tiles_estimated,
                               "iterations_mean": res.iterations_mean}
        self.object = obj
        return cam if obj is None else cam + obj

    def debug_outputs(self) -> dict[str, torch.Tensor]:
        """The inner pass's, and ``"motion"``: the motion estimated for the last frame."""
        out = self.inner.debug_outputs()
        if self.last_motion is not None:
            out["motion"] = self.last_motion
        return out

    def execute(self, frame: Frame) -> torch.Tensor:
        motion = self.last_motion = self.motion(frame)
        first = self.prev is None
        self.prev = frame
        if frame.shaded:
            self.last_shaded = frame
        return self.inner.execute(replace(frame, motion=motion, reset=frame.reset or first))
