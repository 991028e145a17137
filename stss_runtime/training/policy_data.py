"""Samples for the iteration policy (:mod:`.policy`): what the motion estimator keeps, gathered
once per (pair, prior) and cached as files."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import framedump
from ..frame import frame_from_dump
from ..models.flownet import PAD, TILE
from ..motion.credibility import credibility, tile_mask
from ..motion.decompose import camera_motion_between
from ..motion.estimator import CREDIBLE_THRESHOLD, fusion_mask, margin_for
from ..motion.flow_network import network_inputs, pad_to
from .loop import SignalStop


def fused_tile_epe(flow: torch.Tensor, target: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """Mean end-point error per TILE x TILE tile (1, 1, th, tw); padding pixels do not count."""
    e = (flow - target).norm(dim=1, keepdim=True)
    h, w = e.shape[-2:]
    pad = (0, tw * TILE - w, 0, th * TILE - h)
    s = F.avg_pool2d(F.pad(e, pad), TILE, divisor_override=1)
    n = F.avg_pool2d(F.pad(torch.ones_like(e), pad), TILE, divisor_override=1)
    return s / n.clamp_min(1.0)


def gather_sample(net, cur, prev, prior_kind: str, iters: int, inputs: str = "hidden") -> dict | None:
    """One frame as the estimator runs tier 2 from ``prior_kind``: the policy's features before
    each iteration (padded size), the refined tiles and their fused EPE after 0..iters
    iterations; None when no tile is refined."""
    w, h = cur.size
    cam = camera_motion_between(cur, prev)
    prior = cam if prior_kind == "camera" else torch.zeros_like(cam)
    cred = credibility(cur, prev, prior, camera=cam)
    tiles = tile_mask(cred, threshold=CREDIBLE_THRESHOLD)
    if not bool(tiles.any()):
        return None
    ph, pw = -(-h // PAD) * PAD // TILE, -(-w // PAD) * PAD // TILE
    active = torch.zeros(1, 1, ph, pw, dtype=torch.bool)
    active[..., :tiles.shape[-2], :tiles.shape[-1]] = tiles
    m_cur, m_prev, ctx, jd = network_inputs(cur, prev)
    out = net.refine(pad_to(m_cur), pad_to(m_prev), pad_to(ctx), pad_to(prior), jd, iters,
                     record=True, active=active, record_inputs=inputs)
    margin = margin_for(prior_kind)
    epes = []
    for k in range(iters + 1):
        f = prior if k == 0 else out.flows[k - 1][..., :h, :w]
        f = torch.where(fusion_mask(cur, prev, prior, f, cred, margin=margin), f, prior)
        epes.append(fused_tile_epe(f, cur.motion.float(), ph, pw)[0, 0])
    return {"features": torch.cat(out.policy_inputs, 0).half(),  # (iters, C, H/4, W/4)
            "epe": torch.stack(epes).float(),  # (iters + 1, ph, pw)
            "active": active[0, 0].clone(), "prior": prior_kind}


def gather(cfg, net, sample_dir: Path, progress: bool = True) -> list[Path]:
    """Cache one file per (pair, prior) under ``sample_dir``; existing files are kept (resume).
    ``KeyboardInterrupt`` after Ctrl-C / SIGTERM, with what was gathered kept."""
    sample_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for folder in cfg.data:
        idx = framedump.existing_frames(folder)
        jobs += [(folder, i, kind) for i in idx[1::cfg.every] if i - 1 in idx for kind in cfg.prior]
    paths = []
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="gather fused samples", unit="frame")
    meta_cache: dict = {}
    pair_key = cur = prev = None
    stop = SignalStop()
    try:
        with torch.inference_mode():
            for folder, i, kind in it:
                if stop.now:
                    break
                tag = "" if cfg.inputs == "hidden" else f"_{cfg.inputs}"
                path = sample_dir / f"{Path(folder).name}_{i:06d}_{kind}_it{cfg.iters}{tag}.pt"
                empty = path.with_suffix(".empty")
                if path.exists():
                    paths.append(path)
                    continue
                if empty.exists():
                    continue
                if pair_key != (folder, i):  # the priors of one pair are consecutive jobs: read it once
                    if folder not in meta_cache:
                        meta_cache[folder] = framedump.read_meta(folder)
                    meta = meta_cache[folder]
                    cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
                    prev = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
                    pair_key = (folder, i)
                s = gather_sample(net, cur, prev, kind, cfg.iters, cfg.inputs)
                if s is None:
                    empty.touch()
                    continue
                tmp = path.with_suffix(".tmp")
                torch.save(s, tmp)
                os.replace(tmp, path)
                paths.append(path)
    finally:
        stop.restore()
    if stop.now:
        raise KeyboardInterrupt
    return paths
