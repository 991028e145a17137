"""Tier 2 of the motion pass behind one call: the recurrent residual flow network
(:class:`~stss_runtime.models.flownet.ResidualFlowNet`) started from a prior, with its
iteration policy (:class:`~stss_runtime.models.flownet.IterationPolicy`).

    refiner = FlowRefiner.from_weights()          # the shipped weights
    res = refiner(cur, prev, prior, r=0.5)        # cur, prev: shaded Frames; prior (1, 2, h, w)
    res.flow, res.iterations_mean, res.iterations_max, res.iterations_per_tile

Units follow CONVENTIONS.md: render pixels, previous minus current, +x right, +y down,
jitter excluded (both for ``prior`` and the result).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import WEIGHTS_DIR, WeightsError, load_weights
from ..frame import Frame
from ..models import POLICY_MODELS
from ..models.flownet import PAD, TILE, IterationPolicy, ResidualFlowNet, context_input, match_input
from ..ops.encoding import depth_feature, encode_color

FLOW_WEIGHTS = WEIGHTS_DIR / "flow_network.pt"
POLICY_WEIGHTS = WEIGHTS_DIR / "flow_policy.pt"


class FlowInputError(ValueError):
    """Tier 2 was given frames, a prior or settings it cannot use."""


@dataclass
class FlowResult:
    flow: torch.Tensor  # (1, 2, h, w) render px, previous minus current
    iterations_mean: float  # refinement iterations per tile, mean over tiles
    iterations_max: int
    iterations_per_tile: torch.Tensor  # (1, 1, ceil(h / TILE), ceil(w / TILE)) iterations run


def network_inputs(cur: Frame, prev: Frame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(match input of cur, match input of prev, context input of cur, jitter delta (1, 2, 1, 1))
    for :meth:`ResidualFlowNet.refine`, at render size (not padded)."""
    ec, ep = encode_color(cur.color.float()), encode_color(prev.color.float())
    m_cur = match_input(ec, cur.albedo.float(), cur.normal.float())
    m_prev = match_input(ep, prev.albedo.float(), prev.normal.float())
    ctx = context_input(ec, cur.normal.float(), depth_feature(cur.depth.float(), cur.near, cur.far),
                        cur.object_id)
    jd = torch.tensor([prev.jitter_px[0] - cur.jitter_px[0], prev.jitter_px[1] - cur.jitter_px[1]],
                      dtype=torch.float32, device=cur.depth.device).view(1, 2, 1, 1)
    return m_cur, m_prev, ctx, jd


def pad_to(x: torch.Tensor, multiple: int = PAD) -> torch.Tensor:
    """Replicate-pad right and bottom to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


class FlowRefiner:
    """Tier 2: refine a prior motion field with the flow network and its iteration policy."""

    def __init__(self, net: ResidualFlowNet, policy: IterationPolicy | None = None) -> None:
        self.net = net.eval()
        self.policy = policy.eval() if policy is not None else None

    @classmethod
    def from_weights(cls, path: str | os.PathLike | None = None,
                     policy_path: str | os.PathLike | None = None) -> "FlowRefiner":
        """The network from ``path`` (default: the shipped ``weights/flow_network.pt``) and the
        policy from ``policy_path`` (default: ``weights/flow_policy.pt``);
        :class:`~stss_runtime.checkpoint.WeightsError` if either is missing or for another model."""
        path = Path(path) if path is not None else FLOW_WEIGHTS
        policy_path = Path(policy_path) if policy_path is not None else POLICY_WEIGHTS
        for p, what in ((path, "flow network"), (policy_path, "iteration policy")):
            if not p.exists():
                raise WeightsError(f"no tier 2 {what} weights at {p}; train them with "
                                   f"`python -m stss_runtime train flow` (see docs/training/README.md)")
        net, _ = load_weights(path, expected_model="flow")
        policy, _ = load_weights(policy_path, expected_model=POLICY_MODELS)
        return cls(net, policy)

    def _check(self, cur, prev, prior, r, max_iters):
        for name, f in (("cur", cur), ("prev", prev)):
            if not isinstance(f, Frame):
                raise FlowInputError(f"{name}: expected a stss_runtime.frame.Frame, got {type(f).__name__}")
            if f.color is None:
                raise FlowInputError(f"{name}.color: expected a shaded frame (1, 3, h, w) linear colour, got None")
        w, h = cur.size
        if prev.size != cur.size:
            raise FlowInputError(f"prev: expected render size {w}x{h} (that of cur), got {prev.size[0]}x{prev.size[1]}")
        for name, f in (("cur", cur), ("prev", prev)):
            if tuple(f.color.shape) != (1, 3, h, w):
                raise FlowInputError(f"{name}.color: expected shape (1, 3, {h}, {w}), got {tuple(f.color.shape)}")
        if not torch.is_tensor(prior):
            raise FlowInputError(f"prior: expected a tensor (1, 2, {h}, {w}) render px, got {type(prior).__name__}")
        if tuple(prior.shape) != (1, 2, h, w):
            raise FlowInputError(f"prior: expected shape (1, 2, {h}, {w}) (render px), got {tuple(prior.shape)}")
        if not bool(torch.isfinite(prior).all()):
            raise FlowInputError("prior: expected finite values, got NaN or Inf")
        if r is not None:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or not 0.0 < r <= 1.0:
                raise FlowInputError(f"r: expected a number in (0, 1] or None, got {r!r}")
        if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 0:
            raise FlowInputError(f"max_iters: expected an int >= 0, got {max_iters!r}")

    def __call__(self, cur: Frame, prev: Frame, prior: torch.Tensor, *, r: float | None = 1.0,
                 max_iters: int = 8, use_policy: bool = True, timings: list | None = None,
                 tiles: torch.Tensor | None = None) -> FlowResult:
        """Refine ``prior`` (1, 2, h, w) for ``cur`` relative to ``prev`` (both shaded).

        ``r`` in (0, 1]: the resource scalar of the policy (1 = accuracy first); ``None`` or
        ``use_policy=False``: every tile runs ``max_iters`` iterations. ``timings``: a list
        that receives ``time.perf_counter()`` after the encoders and after each iteration.
        ``tiles`` (1, 1, ceil(h / TILE), ceil(w / TILE)) bool: refine only these tiles (the
        motion estimator hands the tiles holding non-credible pixels); the rest keep the prior."""
        self._check(cur, prev, prior, r, max_iters)
        w, h = cur.size
        th, tw = -(-h // TILE), -(-w // TILE)
        active = None
        if tiles is not None:
            if not torch.is_tensor(tiles) or tuple(tiles.shape) != (1, 1, th, tw):
                shape = tuple(tiles.shape) if torch.is_tensor(tiles) else type(tiles).__name__
                raise FlowInputError(f"tiles: expected a bool tensor of shape (1, 1, {th}, {tw}), got {shape}")
            ph, pw = -(-h // PAD) * PAD // TILE, -(-w // PAD) * PAD // TILE
            active = torch.zeros(1, 1, ph, pw, dtype=torch.bool, device=prior.device)
            active[..., :th, :tw] = tiles.to(device=prior.device, dtype=torch.bool)
        device = prior.device
        self.net.to(device)
        policy = self.policy if (use_policy and r is not None) else None
        if policy is not None:
            policy.to(device)
        with torch.inference_mode():
            m_cur, m_prev, ctx, jd = network_inputs(cur, prev)
            out = self.net.refine(pad_to(m_cur), pad_to(m_prev), pad_to(ctx), pad_to(prior.float()), jd,
                                  max_iters, policy=policy, r=r, timings=timings, active=active)
            tiles = out.iterations[..., :th, :tw].clone()
            flow = out.flow[..., :h, :w].clone()
        return FlowResult(flow=flow, iterations_mean=float(tiles.mean()), iterations_max=int(tiles.max()),
                          iterations_per_tile=tiles)
