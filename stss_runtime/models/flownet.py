"""Tier 2 of the motion pass: a small recurrent residual flow network and its iteration policy.

:class:`ResidualFlowNet` (about 1M parameters, RAFT-small class) refines a PRIOR motion field
(render pixels, previous minus current, CONVENTIONS.md) instead of starting from zero:

- a feature encoder shared by both frames (encoded colour, albedo, normals) down to 1/``STRIDE``
  of the render resolution;
- a *local* cost volume per pyramid level, built once around the prior (previous frame's
  features warped by the prior, then dot products at integer offsets within +-``VOLUME_RADIUS``
  cells), and a bilinear lookup of it around the current estimate each iteration
  (``grid_sample`` on a per-cell (2R+1)^2 patch; no all-pairs volume);
- an object-aware context encoder reading the current frame's colour AND its G-buffers
  (normals, log depth, object-id boundaries) plus the photometric residual of the prior;
- a ConvGRU update block producing a residual flow update: a learned correction plus the
  soft-argmax of the level-0 lookup window (the expected offset of the match) under a learned
  per-cell gate, and a convex upsampling of the
  residual to render resolution (the prior itself is never resampled: where the residual is
  zero the output is the prior, exactly).

The sub-pixel jitter of both renders is handled where the previous frame is read: the image
displacement of a surface is ``motion + jitter_prev - jitter_cur``.

:class:`IterationPolicy` (about 20k parameters) outputs per ``TILE`` x ``TILE`` render-pixel
tile the probability that the next iteration is worth running, from an iteration embedding, a
resource scalar ``r`` in (0, 1], and either (``inputs="hidden"``) the GRU state, the current
residual flow and the last update, or (``inputs="signals"``) measurements that mean the same in
every scene: the photometric residual of the prior and of the current flow, the part of that
improvement the motion estimator's fusion would keep, the size of the residual flow and of
the last update, and the cost volumes' match margin (how much better than the prior's own
match the best one in reach is). Stopped tiles are frozen (their hidden state and output flow no longer change).
An iteration computes only a box around each cluster of tiles still running (widened by the
receptive field, ``HALO`` cells, so that the result inside them is exactly the dense one) and
the loop exits when every tile has stopped: skipped tiles save time in proportion to the
boxes' area, not to the tile count (an isolated tile costs a box ``2 * HALO`` cells wider).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..ops import warp as W
from .blocks import scale_channels

STRIDE = 4  # feature / GRU resolution: 1/STRIDE of the render resolution
TILE = 16  # policy decision tile, render pixels (a multiple of STRIDE)
PAD = 16  # inputs are padded to a multiple of this (pyramid level 1 and whole tiles)
LEVELS = 2  # cost-volume pyramid levels (1/STRIDE and 1/(2*STRIDE))
VOLUME_RADIUS = 4  # cost volume: integer offsets within +-R cells around the prior
LOOKUP_RADIUS = 3  # per iteration: a (2r+1)^2 bilinear lookup around the current estimate
MATCH_CHANNELS = 9  # encoded colour, albedo, normal
CONTEXT_CHANNELS = 3 + 3 + 1 + 1 + 1  # encoded colour, normal, log depth, id boundary, residual
EMBED_CHANNELS = 8  # iteration embedding of the policy
# the "signals" policy's inputs per cell (see IterationPolicy.signal_features): the prior's and
# the current estimate's photometric residual, the residual the estimator's fusion would gain,
# the size of the residual flow and of the last update, the cost volumes' match margin (2 levels)
SIGNAL_CHANNELS = 7
# the estimator keeps an estimate where its photometric residual is below this fraction of the
# prior's (1 - motion.estimator.PHOTOMETRIC_MARGIN); the signals policy measures that gain
ACCEPT_RATIO = 0.8
# receptive field of one iteration, in cells, from the inputs of ``step`` to the upsampled flow:
# motion encoder 5 (7x7 + 3x3 on the flow, 3x3 after), GRU 2, flow head 2, convex upsampling 1
HALO = 10


def object_boundaries(object_id: torch.Tensor) -> torch.Tensor:
    """1 where a pixel's object id differs from one of its 4 neighbours, else 0: (N, 1, h, w)."""
    ids = object_id.to(torch.int64)
    edge = torch.zeros_like(ids, dtype=torch.bool)
    edge[..., 1:, :] |= ids[..., 1:, :] != ids[..., :-1, :]
    edge[..., :-1, :] |= ids[..., 1:, :] != ids[..., :-1, :]
    edge[..., :, 1:] |= ids[..., :, 1:] != ids[..., :, :-1]
    edge[..., :, :-1] |= ids[..., :, 1:] != ids[..., :, :-1]
    return edge.float()


def match_input(color_encoded: torch.Tensor, albedo: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """What the shared feature encoder reads: (N, 9, h, w)."""
    return torch.cat([color_encoded, albedo.clamp(0, 1), normal], dim=1)


def context_input(color_encoded: torch.Tensor, normal: torch.Tensor, depth_feature: torch.Tensor,
                  object_id: torch.Tensor) -> torch.Tensor:
    """What the context encoder reads, less the prior's photometric residual (added inside
    the network): (N, 8, h, w)."""
    return torch.cat([color_encoded, normal, depth_feature, object_boundaries(object_id)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.b(F.relu(self.a(x))))


class Encoder(nn.Module):
    """Full resolution -> 1/STRIDE: strided 3x3 convolutions and residual blocks."""

    def __init__(self, cin: int, c1: int, c2: int, cout: int, stride: int = STRIDE) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, c1, 3, stride=2, padding=1), nn.ReLU(), ResBlock(c1)]
        c = c1
        s = 2
        while s < stride:
            layers += [nn.Conv2d(c, c2, 3, stride=2, padding=1), nn.ReLU(), ResBlock(c2)]
            c = c2
            s *= 2
        layers += [ResBlock(c), nn.Conv2d(c, cout, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def local_cost_volume(f1: torch.Tensor, f2: torch.Tensor, radius: int) -> torch.Tensor:
    """Correlation of ``f1`` (N, C, H, W) with ``f2`` shifted by every integer offset within
    +-``radius``: (N, (2R+1)^2, H, W), offset (dx, dy) at index (dy + R) * (2R + 1) + dx + R.
    Outside ``f2`` the correlation is 0."""
    n, c, h, w = f1.shape
    pad = F.pad(f2, (radius, radius, radius, radius))
    out = []
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out.append((f1 * pad[:, :, dy:dy + h, dx:dx + w]).sum(1))
    return torch.stack(out, 1) * (1.0 / math.sqrt(c))


def lookup(volume: torch.Tensor, offset: torch.Tensor, volume_radius: int, radius: int) -> torch.Tensor:
    """Bilinear read of each cell's (2R+1)^2 patch of ``volume`` at ``offset`` (N, 2, H, W;
    cells, relative to the patch centre) + every integer offset within +-``radius``:
    (N, (2r+1)^2, H, W). Reads past the patch are 0."""
    n, d, h, w = volume.shape
    s = 2 * volume_radius + 1
    patches = volume.permute(0, 2, 3, 1).reshape(n * h * w, 1, s, s)
    k = torch.arange(-radius, radius + 1, device=volume.device, dtype=volume.dtype)
    dy, dx = torch.meshgrid(k, k, indexing="ij")
    delta = torch.stack([dx, dy], -1).view(1, 2 * radius + 1, 2 * radius + 1, 2)
    pos = offset.permute(0, 2, 3, 1).reshape(n * h * w, 1, 1, 2) + delta
    grid = pos * (1.0 / volume_radius)  # align_corners=True: -1 / +1 = offsets -R / +R
    out = F.grid_sample(patches, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


class ConvGRU(nn.Module):
    def __init__(self, hidden: int, inp: int) -> None:
        super().__init__()
        self.zr = nn.Conv2d(hidden + inp, 2 * hidden, 3, padding=1)
        self.q = nn.Conv2d(hidden + inp, hidden, 3, padding=1)

    def forward(self, h, x):
        hx = torch.cat([h, x], 1)
        z, r = torch.sigmoid(self.zr(hx)).chunk(2, 1)
        q = torch.tanh(self.q(torch.cat([r * h, x], 1)))
        return (1 - z) * h + z * q


@dataclass
class RefineOutput:
    """What :meth:`ResidualFlowNet.refine` returns (padded size; the caller crops)."""

    flows: list[torch.Tensor]  # full-resolution flow after each iteration run (render px)
    flow: torch.Tensor  # (N, 2, H, W) the final flow
    iterations: torch.Tensor  # (N, 1, H/TILE, W/TILE) iterations run per tile
    policy_inputs: list[torch.Tensor]  # with record=True: policy features before each iteration
    volumes: list[torch.Tensor]  # the cost volumes (level 0 first), for the training's matching loss


class ResidualFlowNet(nn.Module):
    """Recurrent residual flow refinement from a prior (see the module docstring)."""

    STRIDE = STRIDE

    def __init__(self, width: float = 1.0, stride: int = STRIDE) -> None:
        super().__init__()
        if stride not in (4, 8):
            raise ValueError(f"stride must be 4 or 8, got {stride}")
        c = lambda n: scale_channels(n, width)  # noqa: E731
        self.stride = stride
        self.fdim = c(64)
        self.hidden = c(64)
        self.cdim = c(64)
        self.fnet = Encoder(MATCH_CHANNELS, c(32), c(64), self.fdim, stride)
        self.cnet = Encoder(CONTEXT_CHANNELS, c(32), c(64), self.hidden + self.cdim, stride)
        corr = LEVELS * (2 * LOOKUP_RADIUS + 1) ** 2
        self.m_corr = nn.Sequential(nn.Conv2d(corr, c(96), 1), nn.ReLU(),
                                    nn.Conv2d(c(96), c(64), 3, padding=1), nn.ReLU())
        self.m_flow = nn.Sequential(nn.Conv2d(2, c(32), 7, padding=3), nn.ReLU(),
                                    nn.Conv2d(c(32), c(16), 3, padding=1), nn.ReLU())
        self.m_out = nn.Sequential(nn.Conv2d(c(64) + c(16), c(64) - 2, 3, padding=1), nn.ReLU())
        self.gru = ConvGRU(self.hidden, self.cdim + c(64))
        self.flow_head = nn.Sequential(nn.Conv2d(self.hidden, c(96), 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(c(96), 2, 3, padding=1))
        self.mask_head = nn.Sequential(nn.Conv2d(self.hidden, c(96), 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(c(96), 9 * stride * stride, 1))
        # the soft-argmax path: the level-0 lookup's expected offset, gated per cell by the GRU
        self.gate_head = nn.Conv2d(self.hidden, 1, 3, padding=1)
        self.temperature = nn.Parameter(torch.tensor(1.0))
        # a small start: the first updates are near zero, so an untrained net keeps the prior
        nn.init.zeros_(self.flow_head[-1].bias)
        self.flow_head[-1].weight.data.mul_(0.1)

    # ---------------------------------------------------------------- pieces
    def active_boxes(self, active: torch.Tensor, cells_hw) -> list[tuple[tuple, tuple, torch.Tensor]]:
        """One box per cluster of ``active`` tiles (N, 1, th, tw): (cell slices, render-pixel
        slices, the cluster's tiles as a mask like ``active``). Tiles closer than two halos
        share a cluster (their boxes would mostly overlap); each box is :meth:`active_box`
        of its cluster."""
        reach = 2 * -(-HALO // (TILE // self.stride))  # tiles
        out = []
        for comp in tile_clusters(active.any(0)[0], reach):
            mask = active & comp.to(active.device)
            out.append((*self.active_box(mask, cells_hw), mask))
        return out

    def active_box(self, active: torch.Tensor, cells_hw) -> tuple[tuple, tuple]:
        """Slices (cells, render pixels) of the box around the ``active`` tiles (N, 1, th, tw),
        widened by HALO cells and clamped to the frame."""
        any_row = active.any(0).any(0).any(1).nonzero()
        any_col = active.any(0).any(0).any(0).nonzero()
        c = TILE // self.stride
        hc, wc = cells_hw
        y0, y1 = max(int(any_row[0]) * c - HALO, 0), min((int(any_row[-1]) + 1) * c + HALO, hc)
        x0, x1 = max(int(any_col[0]) * c - HALO, 0), min((int(any_col[-1]) + 1) * c + HALO, wc)
        s = self.stride
        return ((..., slice(y0, y1), slice(x0, x1)),
                (..., slice(y0 * s, y1 * s), slice(x0 * s, x1 * s)))

    def upsample(self, res_q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Convex upsampling of the residual (cells) to render pixels."""
        n, _, hh, ww = res_q.shape
        mask = self.mask_head(h).view(n, 1, 9, self.stride, self.stride, hh, ww).softmax(2)
        up = F.unfold(res_q * self.stride, 3, padding=1).view(n, 2, 9, 1, 1, hh, ww)
        out = (mask * up).sum(2)  # (n, 2, S, S, hh, ww)
        return out.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, hh * self.stride, ww * self.stride)

    def step(self, h, ctx, res_q, volumes):
        """One ConvGRU update: (new hidden, update in cells)."""
        looks = [lookup(v, res_q / (2 ** lvl), VOLUME_RADIUS, LOOKUP_RADIUS) for lvl, v in enumerate(volumes)]
        corr = torch.cat(looks, 1)
        mc = self.m_corr(corr)
        mf = self.m_flow(res_q)
        motion = torch.cat([self.m_out(torch.cat([mc, mf], 1)), res_q], 1)
        h = self.gru(h, torch.cat([ctx, motion], 1))
        # expected offset of the level-0 window (cells): where the match peaks, relative to now
        p = torch.softmax(looks[0] * self.temperature, 1)
        k = torch.arange(-LOOKUP_RADIUS, LOOKUP_RADIUS + 1, dtype=p.dtype, device=p.device)
        s = 2 * LOOKUP_RADIUS + 1
        pk = p.view(p.shape[0], s, s, *p.shape[-2:])
        argmax = torch.stack([(pk.sum(1) * k.view(1, s, 1, 1)).sum(1), (pk.sum(2) * k.view(1, s, 1, 1)).sum(1)], 1)
        gate = torch.sigmoid(self.gate_head(h))
        return h, gate * argmax + self.flow_head(h)

    @staticmethod
    def residual(match_cur, match_prev, flow, jitter_delta) -> torch.Tensor:
        """Photometric residual of ``flow`` (N, 1, H, W): mean absolute difference of the encoded
        colour and the previous frame's read where the flow points."""
        warped = W.sample(match_prev[:, :3], flow + jitter_delta)
        return (match_cur[:, :3] - warped).abs().mean(1, keepdim=True)

    def prepare(self, match_cur, match_prev, context, prior, jitter_delta):
        """Encoders and cost volumes: (hidden, context features, volumes, the prior's photometric
        residual (N, 1, H, W)).

        ``jitter_delta`` (N, 2, 1, 1): previous minus current jitter, render pixels."""
        disp = prior + jitter_delta  # where, in the previous image, each surface is
        resid = self.residual(match_cur, match_prev, prior, jitter_delta)
        f1 = self.fnet(match_cur)
        f2 = self.fnet(match_prev)
        cx = self.cnet(torch.cat([context, resid], 1))
        h = torch.tanh(cx[:, :self.hidden])
        ctx = F.relu(cx[:, self.hidden:])
        volumes = []
        for lvl in range(LEVELS):
            s = self.stride * 2 ** lvl
            if lvl:
                f1 = F.avg_pool2d(f1, 2)
                f2 = F.avg_pool2d(f2, 2)
            d = F.avg_pool2d(disp, s) / s
            vol = local_cost_volume(f1, W.sample(f2, d), VOLUME_RADIUS)
            if lvl:
                vol = F.interpolate(vol, scale_factor=2 ** lvl, mode="nearest")
            volumes.append(vol)
        return h, ctx, volumes, resid

    def refine(self, match_cur, match_prev, context, prior, jitter_delta, iters: int,
               policy: "IterationPolicy | None" = None, r: float | torch.Tensor | None = None,
               record: bool = False, timings: list | None = None,
               active: torch.Tensor | None = None, record_inputs: str = "hidden") -> RefineOutput:
        """Run up to ``iters`` iterations from ``prior`` (N, 2, H, W), H and W multiples of PAD.

        ``active`` (N, 1, H/TILE, W/TILE) bool: the tiles to refine at all (the others keep
        the prior and count 0 iterations); default every tile. With ``policy`` (and ``r``),
        tiles it stops are frozen from then on; the loop exits when no tile is left.
        ``record`` keeps the policy's inputs of every iteration
        (for training the policy; ``record_inputs``: which policy's, ``"hidden"`` or
        ``"signals"``; with ``policy``, that policy's); ``timings`` receives ``time.perf_counter()`` after the
        encoders and after each iteration (the cost of fixed iteration counts, measured)."""
        n, _, hh, ww = prior.shape
        if hh % PAD or ww % PAD:
            raise ValueError(f"refine: size must be a multiple of {PAD}, got {ww}x{hh}")
        h, ctx, volumes, resid0 = self.prepare(match_cur, match_prev, context, prior, jitter_delta)
        inputs = policy.inputs if policy is not None else record_inputs
        if inputs not in POLICY_INPUTS:
            raise ValueError(f"refine: record_inputs must be one of {POLICY_INPUTS}, got {inputs!r}")
        signals = (policy is not None or record) and inputs == "signals"
        margins = match_margins(volumes) if signals else None
        if timings is not None:
            timings.append(time.perf_counter())
        res_q = torch.zeros(n, 2, hh // self.stride, ww // self.stride, dtype=prior.dtype, device=prior.device)
        delta = torch.zeros_like(res_q)
        flow = prior
        flows: list[torch.Tensor] = []
        rec: list[torch.Tensor] = []
        tiles = torch.zeros(n, 1, hh // TILE, ww // TILE, dtype=prior.dtype, device=prior.device)
        if active is None:
            active = torch.ones_like(tiles, dtype=torch.bool)
            frozen_path = policy is not None
        else:
            if tuple(active.shape) != tuple(tiles.shape):
                raise ValueError(f"refine: active must have shape {tuple(tiles.shape)}, got {tuple(active.shape)}")
            active = active.to(device=prior.device, dtype=torch.bool)
            frozen_path = True
        for t in range(iters):
            if not bool(active.any()):
                break
            if policy is not None or record:
                rr = 1.0 if r is None else r
                if signals:
                    rt = resid0 if t == 0 else self.residual(match_cur, match_prev, flow, jitter_delta)
                    feats = IterationPolicy.signal_features(resid0, rt, res_q, delta, margins, t, rr, self.stride)
                else:
                    feats = IterationPolicy.features(h, res_q, delta, t, rr)
                if record:
                    rec.append(feats)
                if policy is not None:
                    active = active & (policy.logits(feats) > 0)
                    if not bool(active.any()):
                        break
            tiles = tiles + active.to(tiles.dtype)
            if not frozen_path:
                h_new, delta = self.step(h, ctx, res_q, volumes)
                h, res_q = h_new, res_q + delta
                flow = prior + self.upsample(res_q, h)
            else:
                # only a box around each cluster of active tiles, HALO cells wider, is
                # computed: exactly the dense result inside the tiles (see HALO), at the cost
                # of the boxes' area. Every box reads the state before this iteration.
                boxes = self.active_boxes(active, h.shape[-2:])
                h_next, delta = h.clone(), torch.zeros_like(res_q)
                for cs, _, mask in boxes:
                    cells = F.interpolate(mask.to(h.dtype), scale_factor=TILE // self.stride, mode="nearest")[cs] > 0
                    h_new, d = self.step(h[cs], ctx[cs], res_q[cs], [v[cs] for v in volumes])
                    delta[cs] = torch.where(cells, d, delta[cs])
                    h_next[cs] = torch.where(cells, h_new, h_next[cs])
                h, res_q = h_next, res_q + delta
                flow = flow.clone()
                for cs, cp, mask in boxes:
                    pix = F.interpolate(mask.to(h.dtype), scale_factor=TILE, mode="nearest")[cp] > 0
                    flow[cp] = torch.where(pix, prior[cp] + self.upsample(res_q[cs], h[cs]), flow[cp])
            flows.append(flow)
            if timings is not None:
                timings.append(time.perf_counter())
        return RefineOutput(flows=flows, flow=flow, iterations=tiles, policy_inputs=rec, volumes=volumes)

    def forward(self, match_cur, match_prev, context, prior, jitter_delta, iters: int = 8):
        """The flow after each of ``iters`` dense iterations (a list of (N, 2, H, W))."""
        return self.refine(match_cur, match_prev, context, prior, jitter_delta, iters).flows


def tile_clusters(active: torch.Tensor, reach: int) -> list[torch.Tensor]:
    """Clusters of the True tiles of ``active`` (th, tw): tiles within ``reach`` tiles of each
    other (Chebyshev distance) share one. Bool masks (th, tw), one per cluster."""
    grid = active.cpu().numpy()
    th, tw = grid.shape
    label = np.full((th, tw), -1, np.int64)
    masks = []
    for y0, x0 in zip(*np.nonzero(grid)):
        if label[y0, x0] >= 0:
            continue
        k = len(masks)
        label[y0, x0] = k
        todo = [(y0, x0)]
        while todo:
            y, x = todo.pop()
            ys, xs = slice(max(y - reach, 0), y + reach + 1), slice(max(x - reach, 0), x + reach + 1)
            for yy, xx in zip(*np.nonzero(grid[ys, xs] & (label[ys, xs] < 0))):
                yy, xx = yy + ys.start, xx + xs.start
                label[yy, xx] = k
                todo.append((yy, xx))
        masks.append(torch.from_numpy(label == k))
    return masks


def match_margins(volumes: list[torch.Tensor]) -> torch.Tensor:
    """How much better the best match in each cost volume window is than the prior's own
    (the window centre): (N, LEVELS, H, W). Large where the prior misses a clear match."""
    c = (2 * VOLUME_RADIUS + 1) ** 2 // 2
    return torch.cat([v.max(1, keepdim=True).values - v[:, c:c + 1] for v in volumes], 1)


def iteration_embedding(t: int, n: int, h: int, w: int, device, dtype) -> torch.Tensor:
    freqs = torch.tensor([1.0, 0.5, 0.25, 0.125], device=device, dtype=dtype)
    e = torch.cat([torch.sin(t * freqs), torch.cos(t * freqs)])
    return e.view(1, EMBED_CHANNELS, 1, 1).expand(n, -1, h, w)


POLICY_INPUTS = ("hidden", "signals")


class IterationPolicy(nn.Module):
    """Per-tile probability that the next iteration is worth running (see module docstring).

    ``inputs="hidden"``: reads (N, hidden + 2 + 2 + 8 + 1, H/STRIDE, W/STRIDE) features from
    :meth:`features` (the GRU state among them). ``inputs="signals"``: reads
    (N, SIGNAL_CHANNELS + 8 + 1, ...) from :meth:`signal_features`, measurements that mean the
    same in any scene (photometric residuals, flow sizes, match margins) and no GRU state.
    Returns logits (N, 1, H/TILE, W/TILE)."""

    def __init__(self, width: float = 1.0, hidden: int | None = None, stride: int = STRIDE,
                 inputs: str = "hidden") -> None:
        super().__init__()
        if inputs not in POLICY_INPUTS:
            raise ValueError(f"IterationPolicy: inputs must be one of {POLICY_INPUTS}, got {inputs!r}")
        self.stride = stride
        self.inputs = inputs
        c = lambda n: scale_channels(n, width)  # noqa: E731
        hidden = scale_channels(64, 1.0) if hidden is None else hidden
        cin = (hidden + 2 + 2 if inputs == "hidden" else SIGNAL_CHANNELS) + EMBED_CHANNELS + 1
        layers: list[nn.Module] = [nn.Conv2d(cin, c(32), 1), nn.ReLU()]
        s = stride
        while s < TILE:
            layers += [nn.Conv2d(c(32), c(32), 3, stride=2, padding=1), nn.ReLU()]
            s *= 2
        layers += [nn.Conv2d(c(32), c(16), 1), nn.ReLU(), nn.Conv2d(c(16), 1, 1)]
        self.net = nn.Sequential(*layers)
        nn.init.constant_(self.net[-1].bias, 2.0)  # untrained: keep iterating
        # the decision offset: a tile runs the next iteration where the net's logit exceeds
        # it. 0 while training; set afterwards by calibration on training sequences
        # (``measure flow-policy --calibrate``), stored with the weights
        self.register_buffer("offset", torch.zeros(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "offset", torch.zeros(()))  # weights written before the offset
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _with_step_and_r(x: torch.Tensor, t: int, r) -> torch.Tensor:
        """``x`` followed by the iteration embedding of ``t`` and the resource scalar ``r``."""
        n, _, hh, ww = x.shape
        if not torch.is_tensor(r):
            r = torch.full((n,), float(r), dtype=x.dtype, device=x.device)
        rmap = r.to(x.dtype).view(n, 1, 1, 1).expand(n, 1, hh, ww)
        return torch.cat([x, iteration_embedding(t, n, hh, ww, x.device, x.dtype), rmap], 1)

    @staticmethod
    def features(h, res_q, delta, t: int, r) -> torch.Tensor:
        return IterationPolicy._with_step_and_r(torch.cat([h, res_q, delta], 1), t, r)

    @staticmethod
    def signal_features(resid0, resid, res_q, delta, margins, t: int, r, stride: int = STRIDE) -> torch.Tensor:
        """The signals policy's input: ``resid0`` / ``resid`` (N, 1, H, W) photometric residual
        of the prior / of the current flow (render pixels), ``res_q`` / ``delta`` (N, 2, h, w)
        the residual flow and the last update (cells), ``margins`` from :func:`match_margins`."""
        gain = torch.where(resid < ACCEPT_RATIO * resid0, resid0 - resid, torch.zeros_like(resid))
        photo = F.avg_pool2d(torch.cat([resid0, resid, gain], 1), stride)
        sig = torch.cat([torch.log1p(50.0 * photo), torch.log1p(res_q.norm(dim=1, keepdim=True)),
                         torch.log1p(delta.norm(dim=1, keepdim=True)), margins], 1)
        return IterationPolicy._with_step_and_r(sig, t, r)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats) - self.offset

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(feats))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
