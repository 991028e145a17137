"""The motion pass's estimator: tiers 0-2 behind one call.

``MotionEstimator(tier).estimate(cur, prev, prior)`` returns the motion of ``cur`` (render
px, previous minus current, jitter excluded: CONVENTIONS.md) with its credibility and its
camera / object decomposition:

- tier 0: the prior as it is (the renderer's motion vectors), plus the credibility mask;
- tier 1: OpenCV DIS, started from the prior, on the region of low-credibility tiles,
  fused with the prior by credibility;
- tier 2: the recurrent residual flow network (``stss_runtime.motion.flow_network``) started from
  the prior, on the low-credibility tiles only (two fixed iterations by default, or its
  iteration policy), fused the same way.

The prior: the engine's motion vectors when it has them; ``"camera"`` for an engine
without motion vectors that hands over depth and cameras (the motion a static world would
have, exact for everything that does not move by itself); ``"zero"`` for colour only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..frame import Frame
from ..ops.tiles import tile_region
from .classical import DisFlow
from .credibility import CredibilityConfig, credibility, occluded_in_prev, photometric_residual, tile_mask
from .decompose import camera_motion_between

TIERS = (0, 1, 2)
CREDIBLE_THRESHOLD = 0.5  # credibility below this: the prior is not trusted
PHOTOMETRIC_MARGIN = 0.2  # an estimate must explain the colour this much better than the prior


class MotionInputError(ValueError):
    """The motion pass was given frames or a prior it cannot use."""


def margin_for(prior: torch.Tensor | str | None, margin: float | None = PHOTOMETRIC_MARGIN) -> float | None:
    """The photometric margin :func:`fusion_mask` uses for this kind of prior: none for
    ``"zero"`` (see there), ``margin`` for every prior worth defending."""
    return None if isinstance(prior, str) and prior == "zero" else margin


def fusion_mask(cur: Frame, prev: Frame, prior: torch.Tensor, estimate: torch.Tensor, cred: torch.Tensor,
                threshold: float = CREDIBLE_THRESHOLD, margin: float | None = PHOTOMETRIC_MARGIN) -> torch.Tensor:
    """Where an estimate (tier 1 or 2) replaces the prior: (1, 1, h, w) bool.

    - only where the prior is not credible (``cred < threshold``);
    - not where the previous frame shows an occluder in front of the current surface: that
      surface was hidden (a disocclusion), no flow finds it, and the geometric prior is the
      better guess there;
    - with ``margin`` (a prior worth defending: the engine's or the camera's motion), only
      where the estimate explains the colour clearly better: its photometric residual is
      below (1 - margin) times the prior's. Credibility flags static pixels too (around
      disocclusions, thin geometry), where the prior is right and a flow estimate is noisy;
      on the held-out sequences this check turned tier 2 from worse than the camera prior
      everywhere but on moving objects into better or equal on every pixel class.
      ``None``: no check (a zero prior, wrong wherever anything moves, and in textureless
      regions the residual cannot tell the two apart).

    A hard choice per pixel: a blend of two motion hypotheses is neither."""
    use = (cred < threshold) & (occluded_in_prev(cur, prev, prior) < 0.5)
    if margin is not None and cur.color is not None and prev.color is not None:
        use = use & (photometric_residual(cur, prev, estimate) < (1.0 - margin) * photometric_residual(cur, prev, prior))
    return use


class BudgetController:
    """Sets tier 2's resource scalar ``r`` from a frame-time budget: after each frame whose
    tier 2 took ``ms``, ``r`` is multiplied by ``(budget_ms / ms) ** gain`` and clamped to
    ``[r_min, 1]`` (fewer tiles keep iterating as ``r`` drops; the encoders' time is a floor
    no ``r`` goes below, so a budget under it drives ``r`` to ``r_min``)."""

    def __init__(self, budget_ms: float, r: float = 1.0, gain: float = 0.5, r_min: float = 0.05) -> None:
        checks = (("budget_ms", budget_ms, budget_ms > 0, "> 0"), ("gain", gain, 0 < gain <= 1, "in (0, 1]"),
                  ("r_min", r_min, 0 < r_min <= 1, "in (0, 1]"), ("r", r, r_min <= r <= 1, f"in [{r_min}, 1]"))
        for name, value, ok, want in checks:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
                raise MotionInputError(f"BudgetController: {name} must be a finite number {want}, got {value!r}")
        self.budget_ms, self.r, self.gain, self.r_min = float(budget_ms), float(r), float(gain), float(r_min)

    def update(self, ms: float) -> float:
        """The ``r`` for the next frame, after one that took ``ms`` milliseconds."""
        self.r = min(1.0, max(self.r_min, self.r * (self.budget_ms / max(float(ms), 1e-3)) ** self.gain))
        return self.r


@dataclass
class MotionResult:
    flow: torch.Tensor  # (1, 2, h, w) render px, previous minus current
    credibility: torch.Tensor  # (1, 1, h, w) of the prior, 1 = trusted
    camera: torch.Tensor  # (1, 2, h, w) camera-induced part of ``flow``
    object: torch.Tensor  # (1, 2, h, w) the rest: ``flow - camera``
    tier: int
    tiles_estimated: float = 0.0  # fraction of tiles tiers 1/2 looked at (0 for tier 0)
    iterations_mean: float = 0.0  # tier 2: refinement iterations per tile it looked at, mean
    iterations_max: int = 0
    r: float | None = None  # tier 2 with the policy: the resource scalar this frame ran at
    tier2_ms: float = 0.0  # tier 2: time of the refinement (network and policy), ms


class MotionEstimator:
    """Tier 2's default is two refinement iterations on every low-credibility tile, without the
    iteration policy: two iterations come within 1% of the best fixed count's end-point error
    on every pixel class of the held-out sequences. ``use_policy=True`` (with ``max_iters`` as
    its cap, 4 in its calibration, and ``r`` its resource scalar) runs the policy instead: on
    the held-out sequences 62% fewer iterations per tile than two, lower error over all and
    non-credible pixels, 0.6% higher on moving ones, but on a CPU ~9% more time (the tiles it
    keeps are scattered; see docs/training/README.md). ``budget_ms`` (with the policy)
    sets ``r`` from a frame-time budget for tier 2, frame by frame (:class:`BudgetController`)."""

    def __init__(self, tier: int = 1, *, tile: int = 16, credible_threshold: float = CREDIBLE_THRESHOLD,
                 config: CredibilityConfig = CredibilityConfig(), dis_preset: str = "medium",
                 refiner=None, r: float = 1.0, max_iters: int = 2, use_policy: bool = False,
                 photometric_margin: float | None = PHOTOMETRIC_MARGIN, budget_ms: float | None = None):
        if tier not in TIERS:
            raise MotionInputError(f"MotionEstimator: tier must be one of {TIERS}, got {tier!r}")
        if budget_ms is not None and not (tier == 2 and use_policy):
            raise MotionInputError(f"MotionEstimator: budget_ms sets the iteration policy's resource scalar; "
                                   f"expected tier=2 and use_policy=True, got tier={tier!r}, use_policy={use_policy!r}")
        # tier 2 with a frame-time budget: r follows the measured time (see BudgetController)
        self.budget = BudgetController(budget_ms, r=r) if budget_ms is not None else None
        self.tier, self.tile, self.threshold, self.config = tier, tile, credible_threshold, config
        self.dis = DisFlow(dis_preset) if tier == 1 else None
        self.refiner = None
        if tier == 2:
            if refiner is None:
                from .flow_network import FlowRefiner

                refiner = FlowRefiner.from_weights()
            self.refiner = refiner
        self.r, self.max_iters, self.use_policy = r, max_iters, use_policy
        self.margin = photometric_margin

    def prior(self, cur: Frame, prev: Frame, prior: torch.Tensor | str | None,
              camera: torch.Tensor | None = None) -> torch.Tensor:
        """The starting motion: a tensor as given, ``"renderer"``/None: ``cur.motion``,
        ``"camera"``: camera-induced motion from depth (``camera`` when given), ``"zero"``: none."""
        h, w = cur.depth.shape[-2:]
        if prior is None or (isinstance(prior, str) and prior == "renderer"):
            return cur.motion.float()
        if isinstance(prior, str):
            if prior == "camera":
                return camera if camera is not None else camera_motion_between(cur, prev)
            if prior == "zero":
                return torch.zeros(1, 2, h, w, dtype=torch.float32, device=cur.depth.device)
            raise MotionInputError(f"prior: expected a tensor or one of 'renderer', 'camera', "
                                   f"'zero', got {prior!r}")
        if tuple(prior.shape) != (1, 2, h, w):
            raise MotionInputError(f"prior: expected shape (1, 2, {h}, {w}) (render px), got {tuple(prior.shape)}")
        if not bool(torch.isfinite(prior).all()):
            raise MotionInputError("prior: expected finite values, got NaN or Inf")
        return prior.float()

    def estimate(self, cur: Frame, prev: Frame, prior: torch.Tensor | str | None = None) -> MotionResult:
        if cur.size != prev.size:
            raise MotionInputError(f"prev: expected render size {cur.size} (that of cur), got {prev.size}")
        if self.tier >= 1:
            for name, f in (("cur", cur), ("prev", prev)):
                if f.color is None:
                    raise MotionInputError(f"{name}.color: tier {self.tier} estimates motion from colour; "
                                           f"expected a shaded frame, got None")
        with torch.inference_mode():
            cam = camera_motion_between(cur, prev)  # once: prior, credibility and decomposition
            p = self.prior(cur, prev, prior, camera=cam)
            cred = credibility(cur, prev, p, self.config, camera=cam)
            flow, tiles_frac, it_mean, it_max = p, 0.0, 0.0, 0
            r_used, tier2_ms = None, 0.0
            if self.tier >= 1:
                tiles = tile_mask(cred, self.tile, self.threshold)
                tiles_frac = float(tiles.float().mean())
                if self.tier == 1:
                    region = tile_region(tiles, self.tile, cur.size, margin=2 * self.tile)
                    est = p if region is None else self.dis(cur, prev, init=p, region=region)
                else:
                    r_used = self.budget.r if self.budget is not None else self.r
                    t0 = time.perf_counter()
                    res = self.refiner(cur, prev, p, r=r_used, max_iters=self.max_iters,
                                       use_policy=self.use_policy, tiles=tiles)
                    tier2_ms = 1000.0 * (time.perf_counter() - t0)
                    if self.budget is not None:
                        self.budget.update(tier2_ms)
                    # iterations per tile it looked at (the others run none)
                    it_mean = float(res.iterations_per_tile.sum()) / max(int(tiles.sum()), 1)
                    est, it_max = res.flow, int(res.iterations_max)
                use = fusion_mask(cur, prev, p, est, cred, self.threshold, margin_for(prior, self.margin))
                flow = torch.where(use, est, p)
        return MotionResult(flow=flow, credibility=cred, camera=cam, object=flow - cam, tier=self.tier,
                            tiles_estimated=tiles_frac, iterations_mean=it_mean, iterations_max=it_max,
                            r=r_used if self.use_policy else None, tier2_ms=tier2_ms)


def end_point_error(flow: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[float, int]:
    """(sum of per-pixel end-point errors, pixel count) over ``mask`` (bool (1, 1, h, w))."""
    e = (flow - target).norm(dim=1, keepdim=True)
    if mask is None:
        return float(e.sum()), int(e.numel())
    return float(e[mask].sum()), int(mask.sum())
