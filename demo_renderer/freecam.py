"""The demo's free-flying camera (WASD + mouse), a function of the display frame index.

The demo renders the G-buffers of a generated frame together with the rendered frame before
it, and motion vectors need the camera of the previous display frame, so the camera must
answer "where was / will it be at display frame k" consistently. It is therefore piecewise
linear in the display frame index: :meth:`FreeCamera.steer` starts a new piece at frame k
(position continuous, the look direction turned by the mouse at once, a new velocity from
the keys); earlier frames keep their poses. The demo steers only before frames it has not
rendered yet.

Keyed by display frame, not scene time, it keeps flying while the scene is paused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .scene import look_at

#: Pitch is kept this far from straight up / down (radians), so "up" stays defined.
PITCH_LIMIT = math.radians(89.0)


class FreeCameraError(ValueError):
    """A bad free-camera setting: names the field, what was expected and what was given."""


@dataclass(frozen=True)
class _Piece:
    start: int  # first display frame of the piece
    eye: np.ndarray  # position at ``start`` (world)
    yaw: float  # radians, 0 = looking down -z, positive turns left (towards -x)
    pitch: float  # radians, positive looks up
    velocity: np.ndarray  # world metres per display frame


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise FreeCameraError(f"FreeCamera.{name}: expected a finite number > 0, got {value!r}")
    return v


class FreeCamera:
    """A fly camera starting at ``eye`` looking at ``target``.

    ``speed``: metres per second of scene time at ``fps`` display frames per second
    (``fast`` multiplies it by ``fast_factor``); ``look_rad_per_px``: turn per pixel of
    mouse motion.
    """

    def __init__(self, eye, target, fps: float = 60.0, speed: float = 4.0, fast_factor: float = 4.0,
                 look_rad_per_px: float = 0.004, start: int = 0):
        eye = np.asarray(eye, dtype=np.float64).reshape(3)
        fwd = np.asarray(target, dtype=np.float64).reshape(3) - eye
        if not np.isfinite(eye).all() or not np.isfinite(fwd).all() or np.linalg.norm(fwd) < 1e-9:
            raise FreeCameraError(f"FreeCamera(eye, target): expected finite, distinct points, got eye {eye.tolist()} "
                                  f"and target {(eye + fwd).tolist()}")
        self.fps = _positive("fps", fps)
        self.speed = _positive("speed", speed)
        self.fast_factor = _positive("fast_factor", fast_factor)
        self.look_rad_per_px = _positive("look_rad_per_px", look_rad_per_px)
        fwd /= np.linalg.norm(fwd)
        yaw = math.atan2(-fwd[0], -fwd[2])
        pitch = min(max(math.asin(max(-1.0, min(1.0, fwd[1]))), -PITCH_LIMIT), PITCH_LIMIT)
        self._pieces = [_Piece(int(start), eye, yaw, pitch, np.zeros(3))]

    @staticmethod
    def forward(yaw: float, pitch: float) -> np.ndarray:
        cp = math.cos(pitch)
        return np.array([-math.sin(yaw) * cp, math.sin(pitch), -math.cos(yaw) * cp])

    def _piece(self, index: float) -> _Piece:
        for p in reversed(self._pieces):
            if p.start <= index:
                return p
        return self._pieces[0]  # before the first piece: extrapolated backwards

    def eye_target(self, index: float) -> tuple[np.ndarray, np.ndarray]:
        """Eye and look-at point at display frame ``index``."""
        p = self._piece(index)
        eye = p.eye + p.velocity * (index - p.start)
        return eye, eye + self.forward(p.yaw, p.pitch)

    def view(self, index: float) -> np.ndarray:
        """The 4x4 view matrix at display frame ``index``."""
        eye, target = self.eye_target(index)
        return look_at(eye, target)

    def steer(self, index: int, move=(0.0, 0.0, 0.0), look_px=(0.0, 0.0), fast: bool = False) -> None:
        """From display frame ``index`` on: turn by ``look_px`` (mouse dx right, dy down, pixels)
        and fly with ``move`` = (right, up, forward), each in -1..1 (keys: D-A, E-Q, W-S),
        relative to the new look direction. Frames before ``index`` keep their poses."""
        mv = np.asarray(move, dtype=np.float64).reshape(3)
        lk = np.asarray(look_px, dtype=np.float64).reshape(2)
        if not np.isfinite(mv).all() or not np.isfinite(lk).all():
            raise FreeCameraError(f"FreeCamera.steer: expected finite move and look_px, got {mv.tolist()} and "
                                  f"{lk.tolist()}")
        index = int(index)
        cur = self._piece(index)
        eye, _ = self.eye_target(index)
        yaw = cur.yaw - lk[0] * self.look_rad_per_px
        pitch = min(max(cur.pitch - lk[1] * self.look_rad_per_px, -PITCH_LIMIT), PITCH_LIMIT)
        fwd = self.forward(yaw, pitch)
        right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
        direction = mv[0] * right + mv[1] * np.array([0.0, 1.0, 0.0]) + mv[2] * fwd
        norm = np.linalg.norm(direction)
        per_frame = self.speed * (self.fast_factor if fast else 1.0) / self.fps
        velocity = direction / norm * per_frame if norm > 1e-9 else np.zeros(3)
        self._pieces = [p for p in self._pieces if p.start < index]
        self._pieces.append(_Piece(index, eye, yaw, pitch, velocity))
        # keep a few pieces for the previous frames' poses (motion vectors look one back)
        while len(self._pieces) > 2 and self._pieces[1].start < index - 8:
            self._pieces.pop(0)

    @property
    def moving(self) -> bool:
        return bool(np.linalg.norm(self._pieces[-1].velocity) > 0)
