"""The plugin's self-test and the motion-vector diagnosis: does an integration hand over
motion vectors in the conventions of ``shared/CONVENTIONS.md``, and does a pass work here?

- :func:`diagnose_motion` takes two consecutive frames of an engine and the current
  frame's motion vectors, warps the previous colour by the vectors as given and by the
  usual mistakes (a flipped axis, current minus previous, swapped axes, NDC / UV units,
  the wrong resolution, jitter left in), and says which one reproduces the current frame:
  "your motion vectors look flipped in y (error 0.0149 as flipped in y vs 0.075 as given,
  over the 2065 pixels where they differ): negate motion y ...".
- :func:`self_test` needs no engine: it translates a known pattern (a textured background
  and a foreground square moving another way), dispatches it through a
  :class:`plugin.Context` and checks the outputs, the upscaling quality, the timing of the
  generated frame and the motion diagnosis itself.

    python -m plugin.selftest --pass bilinear          # prints the report, exit status 0 / 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from stss_runtime.ops import warp as W
from stss_runtime.ops.encoding import display_transform, encode_color
from stss_runtime.ops.metrics import psnr_y

from .errors import InvalidInputError

# ---------------------------------------------------------------------------------------
# Motion-vector diagnosis
# ---------------------------------------------------------------------------------------

#: What :func:`diagnose_motion` tries, in order: the vectors as given, then each mistake.
HYPOTHESES = ("as given", "flipped in x", "flipped in y", "flipped in x and y", "x and y swapped", "zero",
              "NDC units", "NDC units, y up", "UV units", "UV units, y up", "half length", "double length",
              "jitter included")

#: "your motion vectors ..." and what to do about it, per mistake.
_ADVICE = {
    "flipped in x": ("look flipped in x", "negate motion x (+x is right)"),
    "flipped in y": ("look flipped in y", "negate motion y: +y is down, row 0 at the top (OpenGL reads bottom-up)"),
    "flipped in x and y": ("look reversed (current minus previous)",
                           "negate them: motion = previous position - current position"),
    "x and y swapped": ("look swapped (x and y)", "motion[..., 0] is x (columns), motion[..., 1] is y (rows)"),
    "zero": ("look wrong: the frames match better without any warp",
             "a static scene with non-zero vectors, or vectors of another frame?"),
    "NDC units": ("look like NDC units", "multiply by (width / 2, height / 2): motion_scale=(w / 2, h / 2)"),
    "NDC units, y up": ("look like NDC units with +y up",
                        "multiply by (width / 2, -height / 2): motion_scale=(w / 2, -h / 2)"),
    "UV units": ("look like UV units", "multiply by (width, height): motion_scale=(w, h)"),
    "UV units, y up": ("look like UV units with +y up", "multiply by (width, -height): motion_scale=(w, -h)"),
    "half length": ("look half as long as they should be",
                    "vectors of a half-resolution buffer, or previous_color is not the frame they point to "
                    "(with generated frames they point to the previous *display* frame)"),
    "double length": ("look twice as long as they should be",
                      "display-resolution vectors? set display_res_motion=True"),
    "jitter included": ("seem to include the jitter",
                        "set jittered_motion=True, or compute them from unjittered matrices"),
}

#: Another hypothesis beats the given vectors when its error ``e`` and theirs ``b`` over the
#: pixels where they differ satisfy ``e * (1 + OK_REL_MARGIN) + OK_ABS_MARGIN < b``. Measured on
#: the demo renderer's scenes (160x90, 20 and 60 fps): with correct vectors no other hypothesis
#: had ``b / e`` above 1.02 (and that in a scene too slow to tell), injected mistakes mostly 1.05
#: to 3 (those below 1.1 go unnoticed); on the synthetic pattern of :func:`self_test`, 1.9 to 10.
OK_REL_MARGIN = 0.1
OK_ABS_MARGIN = 0.0005  # encoded colour (display-referred [0, 1])
#: A hypothesis is compared with the given vectors where their warps differ by more than this (pixels)...
DIFFER_PX = 0.3
#: ... on at least this fraction of the frame (and 16 pixels); else it cannot be told apart.
MIN_PIXELS = 0.002
#: ... and wins on more than this fraction of those pixels (a few outliers do not make a diagnosis).
MIN_WINS = 0.45


@dataclass
class MotionDiagnosis:
    """What :func:`diagnose_motion` found (errors: mean absolute error of display-encoded
    colour in [0, 1] between the warped previous frame and the current one).

    ``errors[h]``: hypothesis ``h``'s error over the pixels where its warp differs from the
    given vectors' by more than ``DIFFER_PX`` (both on screen); ``baseline[h]``: the given
    vectors' error over those same pixels; ``pixels[h]``: how many there are. Hypotheses
    with too few such pixels cannot be told apart here and are left out.
    ``wins[h]``: the fraction of those pixels where ``h`` has the lower error.
    ``errors["as given"]``: the given vectors' error over every pixel warped on screen.
    ``best``: the hypothesis that explains the frames best, "as given" unless another beats
    it by the margin."""

    ok: bool
    best: str
    errors: dict[str, float]
    message: str
    baseline: dict[str, float] = field(default_factory=dict)
    pixels: dict[str, int] = field(default_factory=dict)
    wins: dict[str, float] = field(default_factory=dict)
    #: False when the frames cannot tell the conventions apart (zero vectors, nothing moving
    #: over textured content): ``ok`` is then True, as there is nothing to blame.
    conclusive: bool = True

    def __str__(self) -> str:
        return self.message


def _hwc(value: Any, name: str, channels: tuple[int, ...], device=None) -> torch.Tensor:
    """(h, w, C) numpy / torch -> (1, C, h, w) float32 torch."""
    if isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        raise InvalidInputError(name, "a numpy array or torch tensor (h, w, C)", f"a {type(value).__name__}")
    if t.dim() != 3 or t.shape[2] not in channels:
        raise InvalidInputError(name, f"shape (h, w, {' or '.join(map(str, channels))})", f"shape {tuple(t.shape)}")
    t = t[..., : min(channels)].float()
    if device is not None:
        t = t.to(device)
    if not bool(torch.isfinite(t).all()):
        raise InvalidInputError(name, "finite values", "NaN or Inf")
    return t.permute(2, 0, 1).unsqueeze(0).contiguous()


def _offsets(m: torch.Tensor, size: tuple[int, int], jd: torch.Tensor, jitter_differs: bool) -> dict:
    """Sampling offset into the previous frame per hypothesis, for given vectors ``m``."""
    w, h = size

    def s(ax: float, ay: float) -> torch.Tensor:
        return m * torch.tensor([ax, ay], dtype=m.dtype, device=m.device).view(1, 2, 1, 1)

    true = {
        "as given": m,
        "flipped in x": s(-1, 1),
        "flipped in y": s(1, -1),
        "flipped in x and y": -m,
        "x and y swapped": m.flip(1),
        "zero": torch.zeros_like(m),
        "NDC units": s(w / 2, h / 2),
        "NDC units, y up": s(w / 2, -h / 2),
        "UV units": s(w, h),
        "UV units, y up": s(w, -h),
        "half length": 2 * m,
        "double length": 0.5 * m,
    }
    # the current pixel shows the unjittered position c - j, which was at c - j + motion,
    # i.e. at c + motion + (j_prev - j) in the previous (jittered) image
    out = {k: v + jd for k, v in true.items()}
    if jitter_differs:
        out["jitter included"] = m  # the vectors already hold the jitter difference
    return out


def diagnose_motion(previous_color: Any, color: Any, motion: Any, jitter_px=(0.0, 0.0),
                    previous_jitter_px=(0.0, 0.0)) -> MotionDiagnosis:
    """Which motion-vector convention makes ``previous_color`` warp into ``color``?

    ``previous_color``, ``color``: (h, w, 3 or 4) linear colour (numpy or torch) of two
    consecutive frames: ``previous_color`` must be the frame the vectors point to (with
    frame generation on, the previous *display* frame; simplest: test with
    ``generated_frames=0``). ``motion``: (h, w, 2) the current frame's vectors, supposedly
    in render pixels, previous minus current, +y down, jitter excluded (CONVENTIONS.md).
    ``jitter_px`` / ``previous_jitter_px``: the two renders' jitter in pixels.

    The previous colour is warped (bilinear) by each hypothesis of :data:`HYPOTHESES` and
    compared with the current colour in the display-encoded space (Reinhard + sRGB, [0, 1]).
    Each hypothesis is judged against the given vectors on the pixels where their warps
    differ by more than ``DIFFER_PX`` and both stay on screen (so a mistake that only shows
    where things move vertically is not drowned by the rest of the frame): it wins when
    its mean absolute error there is below the given vectors' by more than ``OK_REL_MARGIN``
    and ``OK_ABS_MARGIN`` and it is better on more than ``MIN_WINS`` of them; the strongest
    winner (lowest error ratio) is ``best``, and with none the vectors are ``ok``. Vectors
    that send (almost) every pixel off screen are not ok (units?). A scene where nothing
    moves, or where the motion is over flat content, is ok and not
    :attr:`~MotionDiagnosis.conclusive`: the message says the test needs motion.
    """
    cur = _hwc(color, "color", (3, 4))
    prev = _hwc(previous_color, "previous_color", (3, 4), cur.device)
    m = _hwc(motion, "motion", (2,), cur.device)
    if prev.shape != cur.shape:
        raise InvalidInputError("previous_color", f"the shape of color {tuple(color.shape)}",
                                f"shape {tuple(previous_color.shape)}")
    h, w = cur.shape[-2:]
    if m.shape[-2:] != (h, w):
        raise InvalidInputError("motion", f"shape ({h}, {w}, 2): the colour's resolution",
                                f"shape {tuple(motion.shape)}")
    jx, jy = (float(v) for v in jitter_px)
    pjx, pjy = (float(v) for v in previous_jitter_px)
    jd = torch.tensor([pjx - jx, pjy - jy], device=cur.device).view(1, 2, 1, 1)
    jitter_differs = max(abs(pjx - jx), abs(pjy - jy)) > DIFFER_PX
    prev_e, cur_e = encode_color(prev.clamp_min(0)), encode_color(cur.clamp_min(0))
    all_zero = float(m.abs().max()) < 1e-6
    base = W._base_grid(h, w, str(cur.device), torch.float32)
    min_pixels = max(16, int(MIN_PIXELS * h * w))

    offsets = _offsets(m, (w, h), jd, jitter_differs)
    on, err = {}, {}
    for name, off in offsets.items():
        pos = base + off
        on[name] = ((pos[:, 0:1] >= 0.5) & (pos[:, 0:1] <= w - 0.5) & (pos[:, 1:2] >= 0.5)
                    & (pos[:, 1:2] <= h - 0.5))
        err[name] = (W.sample(prev_e, off) - cur_e).abs().mean(dim=1, keepdim=True)
    given_on = on["as given"]
    if int(given_on.sum()) < max(min_pixels, 0.1 * h * w):
        errors = {"as given": math.inf}
        msg = (f"your motion vectors send {100 * (1 - float(given_on.float().mean())):.0f} % of the pixels off "
               f"screen (largest {float(m.abs().max()):.3g}): they must be in pixels of the buffer's resolution "
               f"(NDC, UV or other units? see motion_scale)")
        return MotionDiagnosis(False, "as given", errors, msg, {}, {"as given": int(given_on.sum())}, {})
    errors = {"as given": float(err["as given"][given_on].mean()) if bool(given_on.any()) else math.inf}
    baseline, pixels = {"as given": errors["as given"]}, {"as given": int(given_on.sum())}
    wins: dict[str, float] = {}
    for name, off in offsets.items():
        if name == "as given":
            continue
        differ = (off - offsets["as given"]).abs().amax(dim=1, keepdim=True) > DIFFER_PX
        sel = differ & on[name] & given_on  # off screen, either warp reads a clamped border
        n = int(sel.sum())
        if n < min_pixels:
            continue
        eh, eg = err[name][sel], err["as given"][sel]
        errors[name], baseline[name], pixels[name] = float(eh.mean()), float(eg.mean()), n
        wins[name] = float((eh < eg).float().mean())

    def beats(name: str) -> bool:
        return (errors[name] * (1 + OK_REL_MARGIN) + OK_ABS_MARGIN < baseline[name]
                and wins[name] > MIN_WINS)

    better = [k for k in errors if k != "as given" and beats(k)]
    if better:
        best = min(better, key=lambda k: (errors[k] + 1e-4) / (baseline[k] + 1e-4))
        look, fix = _ADVICE[best]
        e, b, n = errors[best], baseline[best], pixels[best]
        how = "unwarped" if best == "zero" else f"as {best}"
        msg = (f"your motion vectors {look} (error {e:.3g} {how} vs {b:.3g} as given, over the {n} pixels "
               f"where they differ): {fix}")
        return MotionDiagnosis(False, best, errors, msg, baseline, pixels, wins)
    given = errors["as given"]
    if all_zero:
        msg = (f"the motion vectors are zero everywhere: if nothing moves that is right, but the test needs "
               f"motion to check their convention (error {given:.3g}"
               + (": the frames differ, is something moving?)" if given > 0.02 else ")"))
        return MotionDiagnosis(True, "as given", errors, msg, baseline, pixels, wins, conclusive=False)
    if "zero" not in errors or not (baseline["zero"] * (1 + OK_REL_MARGIN) + OK_ABS_MARGIN < errors["zero"]):
        detail = (f"only {int((m.abs().amax(1) > DIFFER_PX).sum())} pixel(s) move by more than {DIFFER_PX} px"
                  if "zero" not in errors else
                  f"warping by them (error {baseline['zero']:.3g}) is no better than not warping (error "
                  f"{errors['zero']:.3g}) where they move")
        msg = f"cannot tell: {detail}; the test needs motion of a few pixels or more over textured content"
        return MotionDiagnosis(True, "as given", errors, msg, baseline, pixels, wins, conclusive=False)
    ratios = {k: errors[k] / max(baseline[k], 1e-6) for k in errors if k != "as given"}
    runner_up = min(ratios, key=ratios.get)
    msg = (f"motion vectors match the current frame (error {given:.3g} as given; the closest other "
           f"convention, {runner_up!r}, has error {errors[runner_up]:.3g} vs {baseline[runner_up]:.3g} as given "
           f"where they differ)")
    return MotionDiagnosis(True, "as given", errors, msg, baseline, pixels, wins)


def apply_mistake(motion: np.ndarray, mistake: str | None, jitter_px=(0.0, 0.0),
                  previous_jitter_px=(0.0, 0.0)) -> np.ndarray:
    """Correct (h, w, 2) vectors as an engine making ``mistake`` (one of :data:`HYPOTHESES`)
    would hand them over: the inverse of the correction :func:`diagnose_motion` tries."""
    m = np.array(motion, dtype=np.float32, copy=True)
    if mistake in (None, "as given"):
        return m
    h, w = m.shape[:2]
    scale = {"flipped in x": (-1, 1), "flipped in y": (1, -1), "flipped in x and y": (-1, -1), "zero": (0, 0),
             "NDC units": (2 / w, 2 / h), "NDC units, y up": (2 / w, -2 / h), "UV units": (1 / w, 1 / h),
             "UV units, y up": (1 / w, -1 / h), "half length": (0.5, 0.5), "double length": (2, 2)}
    if mistake in scale:
        return m * np.asarray(scale[mistake], np.float32)
    if mistake == "x and y swapped":
        return np.ascontiguousarray(m[..., ::-1])
    if mistake == "jitter included":
        return m + np.asarray([previous_jitter_px[0] - jitter_px[0], previous_jitter_px[1] - jitter_px[1]],
                              np.float32)
    raise InvalidInputError("mistake", f"one of {', '.join(HYPOTHESES)}", repr(mistake))


# ---------------------------------------------------------------------------------------
# The known pattern
# ---------------------------------------------------------------------------------------

def perspective(fov_y_rad: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL perspective projection (column vectors)."""
    f = 1.0 / math.tan(fov_y_rad / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]],
                    np.float64)


class PatternScene:
    """A 2-D scene with known motion, in render-pixel units (x right, y down):

    - a background (depth ``BG_DEPTH``, id 1): fine sinusoidal texture (periods 4-6 px),
      an 8 px checkerboard and a lattice of bright (HDR) discs, translating by
      ``bg_velocity`` render pixels per rendered frame;
    - a foreground square (depth ``FG_DEPTH``, id 2) with HDR stripes, translating by
      ``fg_velocity``: it uncovers background behind it (disocclusions).

    Images are box-filtered (``ss`` x ``ss`` samples per pixel); G-buffers are read at the
    pixel centres; jittered renders show the unjittered position ``c - jitter`` at pixel
    centre ``c`` (CONVENTIONS.md). Time ``t`` is in rendered frames.
    """

    BG_DEPTH = 5.0
    FG_DEPTH = 3.0

    def __init__(self, render_size=(64, 40), display_size=None, bg_velocity=(4.0, 2.0),
                 fg_velocity=(-4.0, 2.0), fg_rect=None, ss: int = 4):
        self.render_size = (int(render_size[0]), int(render_size[1]))
        w, h = self.render_size
        self.display_size = tuple(display_size) if display_size is not None else (2 * w, 2 * h)
        self.bg_velocity = tuple(float(v) for v in bg_velocity)
        self.fg_velocity = tuple(float(v) for v in fg_velocity)
        side = max(6.0, round(0.25 * h))
        self.fg_rect = fg_rect if fg_rect is not None else (round(0.6 * w), round(0.25 * h), side, side)
        self.ss = ss

    # -- continuous scene ----------------------------------------------------------------

    @staticmethod
    def _background(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        a = 0.5 + 0.5 * np.sin(2 * np.pi * (0.21 * u + 0.07 * v))
        b = 0.5 + 0.5 * np.sin(2 * np.pi * (-0.05 * u + 0.17 * v))
        check = ((np.floor(u / 8) + np.floor(v / 8)) % 2).astype(np.float32)
        rgb = np.stack([0.10 + 0.35 * a + 0.30 * check, 0.12 + 0.35 * b + 0.12 * check,
                        0.20 + 0.25 * a * b + 0.30 * (1 - check)], axis=-1)
        disc = ((np.mod(u, 32) - 16) ** 2 + (np.mod(v, 24) - 12) ** 2) < 25
        rgb[disc] = (1.6, 1.1, 0.25)
        return rgb

    def _foreground(self, u: np.ndarray, v: np.ndarray, t: float):
        x0, y0, sw, sh = self.fg_rect
        lu = u - (x0 + self.fg_velocity[0] * t)
        lv = v - (y0 + self.fg_velocity[1] * t)
        inside = (lu >= 0) & (lu < sw) & (lv >= 0) & (lv < sh)
        stripe = (np.floor((lu + lv) / 3) % 2).astype(np.float32)[..., None]
        rgb = stripe * np.array([2.0, 0.3, 0.35]) + (1 - stripe) * np.array([0.15, 0.1, 0.6])
        return inside, rgb

    def _shade(self, u: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
        bx, by = self.bg_velocity
        rgb = self._background(u - bx * t, v - by * t)
        inside, fg = self._foreground(u, v, t)
        return np.where(inside[..., None], fg, rgb).astype(np.float32)

    def _grid(self, out_size, jitter, samples: int):
        """Unjittered render-pixel positions of ``samples`` x ``samples`` points per pixel."""
        ow, oh = out_size
        sx, sy = self.render_size[0] / ow, self.render_size[1] / oh
        sub = (np.arange(samples) + 0.5) / samples
        xs = ((np.arange(ow)[:, None] + sub[None, :]).reshape(-1)) * sx - float(jitter[0])
        ys = ((np.arange(oh)[:, None] + sub[None, :]).reshape(-1)) * sy - float(jitter[1])
        return np.meshgrid(xs, ys)

    # -- images --------------------------------------------------------------------------

    def color(self, t: float, jitter=(0.0, 0.0), display: bool = False) -> np.ndarray:
        """(h, w, 3) float32 linear colour at time ``t``: the jittered render, or
        (``display``) the unjittered display-resolution reference."""
        size = self.display_size if display else self.render_size
        u, v = self._grid(size, (0.0, 0.0) if display else jitter, self.ss)
        rgb = self._shade(u, v, t)
        ow, oh = size
        return rgb.reshape(oh, self.ss, ow, self.ss, 3).mean(axis=(1, 3)).astype(np.float32)

    def gbuffers(self, t: float, jitter=(0.0, 0.0), dt: float = 1.0) -> dict[str, np.ndarray]:
        """Render-resolution G-buffers at time ``t``; ``motion`` points ``dt`` frames back."""
        u, v = self._grid(self.render_size, jitter, 1)
        inside, _ = self._foreground(u, v, t)
        w, h = self.render_size
        bg = np.broadcast_to(np.asarray(self.bg_velocity, np.float32), (h, w, 2))
        fg = np.broadcast_to(np.asarray(self.fg_velocity, np.float32), (h, w, 2))
        motion = -dt * np.where(inside[..., None], fg, bg)
        normal = np.zeros((h, w, 3), np.float32)
        normal[..., 2] = 1.0
        return {
            "depth": np.where(inside, self.FG_DEPTH, self.BG_DEPTH).astype(np.float32),
            "motion": np.ascontiguousarray(motion, dtype=np.float32),
            "albedo": np.clip(self.color(t, jitter), 0.0, 1.0),
            "normal": normal,
            "roughness": np.full((h, w), 0.5, np.float32),
            "metallic": np.zeros((h, w), np.float32),
            "object_id": np.where(inside, 2, 1).astype(np.int32),
        }


# ---------------------------------------------------------------------------------------
# The self-test
# ---------------------------------------------------------------------------------------

#: Lowest acceptable PSNR (dB, Y channel, display transform) of the upscaled output against
#: the display-resolution pattern, per pass, for the default 64x40 -> 128x80 scenario.
#: Calibrated on a CPU run, about 3 dB below what each pass measured there: bilinear 35.1,
#: bicubic 36.5, warp_fill 36.5, temporal 30.5, stss 35.2, two_stage 34.8.
PSNR_THRESHOLDS = {"bilinear": 32.0, "bicubic": 33.0, "warp_fill": 33.0, "temporal": 27.0, "stss": 32.0,
                   "two_stage": 31.0}
DEFAULT_PSNR_THRESHOLD = 25.0
FRAME_TIME_MS = 33.3
BORDER_PX = 4  # display pixels left out of the comparisons (the pattern enters at the edges)


@dataclass
class Check:
    name: str
    passed: bool | None  # None: skipped
    figure: float  # the number the check is about (dB, an error ...), nan if none
    detail: str

    @property
    def status(self) -> str:
        return "SKIP" if self.passed is None else ("PASS" if self.passed else "FAIL")


@dataclass
class SelfTestReport:
    pass_name: str
    backend: str
    device: str
    render_size: tuple[int, int]
    display_size: tuple[int, int]
    frames: int
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    mistake: str | None = None
    generated_frames: int = 3

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed is not False for c in self.checks)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __str__(self) -> str:
        (w, h), (dw, dh) = self.render_size, self.display_size
        head = (f"STSS plugin self-test: pass {self.pass_name}, {self.backend} on {self.device}, "
                f"{w}x{h} -> {dw}x{dh}, {self.frames} rendered frames, {self.generated_frames} generated per "
                f"rendered one ({self.seconds:.2f} s)")
        if self.mistake:
            head += f"\n  simulated engine mistake: motion vectors {self.mistake!r}"
        width = max([len(c.name) for c in self.checks] + [5])
        lines = [head, f"  {'check':<{width}}  result  detail", f"  {'-' * width}  ------  ------"]
        for c in self.checks:
            lines.append(f"  {c.name:<{width}}  {c.status:<6}  {c.detail}")
        lines.append(f"self-test {'PASSED' if self.ok else 'FAILED'}")
        return "\n".join(lines)


@dataclass
class Scenario:
    """What :func:`run_scenario` dispatched: the live context and per rendered frame the
    time, jitter, inputs and results."""

    ctx: Any
    scene: PatternScene
    records: list[dict]
    generated_frames: int


def _u8(linear) -> np.ndarray:
    a = linear.detach().cpu().numpy() if isinstance(linear, torch.Tensor) else np.asarray(linear)
    return display_transform(a)


def _border_mask(size: tuple[int, int], border: int = BORDER_PX) -> np.ndarray:
    w, h = size
    m = np.zeros((h, w), bool)
    m[border:h - border, border:w - border] = True
    return m


def run_scenario(pass_name: str = "bilinear", backend: str = "torch", device: str = "cpu",
                 size=(64, 40), frames: int = 6, generated_frames: int = 1, mistake: str | None = None,
                 display_size=None) -> Scenario:
    """Dispatch ``frames`` rendered frames of :class:`PatternScene` through a new
    :class:`plugin.Context` (left open: the caller destroys ``scenario.ctx``).

    ``mistake``: hand the motion vectors over as an engine making that mistake would (one
    of :data:`HYPOTHESES`). Rendered frame ``k`` is at time ``k``; its generated frame ``g``
    (0-based) of ``n`` at ``k + (g + 1) / (n + 1)``; display frame indices (jitter) count
    both; motion vectors point to the previous display frame."""
    from . import Context, ContextDescription, FrameDescription, GeneratedFrameDescription
    from .helpers import jitter_offset, jitter_phase_count

    w, h = int(size[0]), int(size[1])
    dsize = tuple(display_size) if display_size is not None else (2 * w, 2 * h)
    scene = PatternScene((w, h), dsize)
    phases = jitter_phase_count(w, dsize[0])
    near, far, fov = 0.1, 100.0, math.radians(60.0)
    proj = perspective(fov, w / h, near, far)
    view = np.eye(4)
    dt = 1.0 / (generated_frames + 1)
    ctx = Context(ContextDescription(max_render_size=(w, h), display_size=dsize, pass_name=pass_name,
                                     backend=backend, device=device, generated_frames=generated_frames))
    records = []
    prev_jitter = (0.0, 0.0)
    try:
        for k in range(frames):
            d = k * (generated_frames + 1)
            jit = jitter_offset(d, phases)
            gb = scene.gbuffers(float(k), jit, dt)
            true_motion = gb["motion"]
            gb["motion"] = apply_mistake(true_motion, mistake, jit, prev_jitter)
            color = scene.color(float(k), jit)
            generated, gen_jitters = [], []
            gj_prev = jit
            for g in range(generated_frames):
                gt = k + (g + 1) * dt
                gj = jitter_offset(d + g + 1, phases)
                ggb = scene.gbuffers(gt, gj, dt)
                ggb["motion"] = apply_mistake(ggb["motion"], mistake, gj, gj_prev)
                generated.append(GeneratedFrameDescription(view=view, proj=proj, jitter_px=gj, **ggb))
                gen_jitters.append(gj)
                gj_prev = gj
            frame = FrameDescription(frame_index=k, color=color, jitter_px=jit, frame_time_ms=FRAME_TIME_MS,
                                     near=near, far=far, fov_y_rad=fov, view=view, proj=proj,
                                     generated=generated, **gb)
            result = ctx.dispatch(frame)
            records.append({"t": float(k), "jitter": jit, "previous_jitter": prev_jitter, "color": color,
                            "motion": gb["motion"], "true_motion": true_motion, "result": result,
                            "generated_jitters": gen_jitters})
            prev_jitter = gen_jitters[-1] if gen_jitters else jit
    except BaseException:
        ctx.destroy()
        raise
    return Scenario(ctx=ctx, scene=scene, records=records, generated_frames=generated_frames)


def self_test(pass_name: str = "bilinear", backend: str = "torch", device: str = "cpu", size=(64, 40),
              frames: int = 6, generated_frames: int = 3, mistake: str | None = None) -> SelfTestReport:
    """Run the known pattern through a context with ``pass_name`` and check it; no engine needed.

    Checks: outputs finite and of display size; the last upscaled frame against the
    display-resolution pattern (PSNR on Y >= :data:`PSNR_THRESHOLDS`); each of the last
    rendered frame's ``generated_frames`` generated frames (3 by default: 4x) is closest to
    the pattern at its own instant, ``(k + 1) / (n + 1)`` of a frame after it (not at the
    rendered frames, nor at its neighbours' instants);
    :func:`diagnose_motion` accepts the motion vectors the (simulated) engine handed over;
    and it recognises deliberately y-flipped vectors. ``mistake`` simulates an engine bug
    (see :func:`run_scenario`)."""
    w, h = int(size[0]), int(size[1])
    report = SelfTestReport(pass_name, backend, device, (w, h), (2 * w, 2 * h), frames, mistake=mistake,
                            generated_frames=generated_frames)
    t0 = time.perf_counter()
    try:
        sc = run_scenario(pass_name, backend, device, (w, h), frames, generated_frames, mistake)
    except Exception as e:  # noqa: BLE001 - the report says what went wrong
        report.checks.append(Check("dispatch", False, math.nan, f"{type(e).__name__}: {e}"))
        report.seconds = time.perf_counter() - t0
        return report
    try:
        _checks(report, sc)
    finally:
        sc.ctx.destroy()
    report.seconds = time.perf_counter() - t0
    return report


def _checks(report: SelfTestReport, sc: Scenario) -> None:
    scene, recs = sc.scene, sc.records
    dw, dh = scene.display_size
    mask = _border_mask((dw, dh))

    # 1. outputs finite, display size
    images = [r["result"].output for r in recs] + [g.color for r in recs for g in r["result"].generated]
    shapes_ok = all(tuple(im.shape) == (dh, dw, 3) for im in images)
    finite = all(bool(np.isfinite(np.asarray(im)).all()) for im in images)
    bad = [tuple(im.shape) for im in images if tuple(im.shape) != (dh, dw, 3)]
    report.checks.append(Check("outputs finite, display size", shapes_ok and finite, float(len(images)),
                               f"{len(images)} images of {dw}x{dh}" if shapes_ok and finite else
                               f"{'non-finite values; ' if not finite else ''}"
                               f"{'shapes ' + str(bad[:3]) if bad else ''}"))

    # 2. upscaling quality of the last rendered frame (a pass with latency, interpolation,
    # shows every instant that many display frames late: a rendered frame's time less)
    last = recs[-1]
    n = sc.generated_frames
    late = getattr(sc.ctx.pass_, "latency_frames", 0) / (n + 1) if n else 0.0
    truth = _u8(scene.color(last["t"] - late, display=True))
    psnr = psnr_y(truth, _u8(last["result"].output), mask)
    thr = PSNR_THRESHOLDS.get(report.pass_name, DEFAULT_PSNR_THRESHOLD)
    report.checks.append(Check("upscaled vs display pattern", bool(psnr >= thr), psnr,
                               f"PSNR {psnr:.2f} dB (threshold {thr:.1f})"))

    # 3. each generated frame shows its own instant: t + (k + 1) / (n + 1)
    if n:
        cands = {"t" if j == 0 else "t+1" if j == n + 1 else f"t+{j}/{n + 1}": j / (n + 1) for j in range(n + 2)}
        truths = {k: _u8(scene.color(last["t"] - late + v, display=True)) for k, v in cands.items()}
        worst, wrong, details = math.inf, [], []
        for k, g in enumerate(last["result"].generated):
            gen = _u8(g.color)
            scores = {c: psnr_y(truth, gen, mask) for c, truth in truths.items()}
            expected = list(cands)[k + 1]
            won = max(scores, key=scores.get)
            worst = min(worst, scores[expected])
            details.append(f"{scores[expected]:.1f} dB at {expected}" + ("" if won == expected else
                                                                          f" (looks like {won}, {scores[won]:.1f})"))
            if won != expected:
                wrong.append(k)
        report.checks.append(Check("generated frames at their instants", not wrong, worst,
                                   f"{n} generated: " + ", ".join(details)))
    else:
        report.checks.append(Check("generated frames at their instants", None, math.nan, "generated_frames=0"))

    # 4. the engine-side motion vectors, and 5. the diagnosis itself
    dt = 1.0 / (sc.generated_frames + 1)
    prev_color = scene.color(last["t"] - dt, last["previous_jitter"])
    diag = diagnose_motion(prev_color, last["color"], last["motion"], last["jitter"], last["previous_jitter"])
    # the pattern moves: "cannot tell" (e.g. zero vectors) is a failure here
    report.checks.append(Check("engine motion vectors", diag.ok and diag.conclusive, diag.errors["as given"],
                               diag.message))
    flipped = apply_mistake(last["true_motion"], "flipped in y")
    d2 = diagnose_motion(prev_color, last["color"], flipped, last["jitter"], last["previous_jitter"])
    fy, given = d2.errors.get("flipped in y", math.nan), d2.baseline.get("flipped in y", math.nan)
    report.checks.append(Check("diagnosis detects flipped y", d2.best == "flipped in y", fy,
                               f"best: {d2.best} (error {fy:.3g} as flipped in y vs {given:.3g} as given)"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plugin.selftest",
                                description="Run the plugin's self-test (no engine needed): a known pattern "
                                            "through a context, with a table of checks. Exit status 0 if all "
                                            "pass, 1 otherwise.")
    p.add_argument("--pass", dest="pass_name", default="bilinear", help="pass to test (default: bilinear)")
    p.add_argument("--backend", default="torch", help="torch, onnxruntime or tensorrt (neural passes)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--size", default="64x40", help="render size WxH (display is twice it; default 64x40)")
    p.add_argument("--frames", type=int, default=6, help="rendered frames (default 6)")
    p.add_argument("--generated-frames", type=int, default=3, choices=(0, 1, 2, 3),
                   help="frames extrapolated per rendered frame (default 3: 4x the rendered rate)")
    p.add_argument("--mistake", choices=HYPOTHESES[1:], default=None, metavar="MISTAKE",
                   help="simulate an engine handing over motion vectors with this mistake, one of: "
                        + ", ".join(repr(h) for h in HYPOTHESES[1:]))
    a = p.parse_args(argv)
    try:
        w, h = (int(v) for v in a.size.lower().split("x"))
    except ValueError:
        p.error(f"--size: expected WxH, e.g. 64x40, got {a.size!r}")
    report = self_test(a.pass_name, a.backend, a.device, (w, h), frames=a.frames,
                       generated_frames=a.generated_frames, mistake=a.mistake)
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
