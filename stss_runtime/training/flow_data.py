"""Samples for the flow network and its iteration policy: pairs (frame i-k, frame i) of frame
dumps held in memory, random crops of them with the renderer's exact motion as the target,
and the per-tile error statistics the policy is labelled with."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import framedump
from ..frame import frame_from_dump
from ..models.flownet import TILE, object_boundaries
from ..motion.decompose import camera_motion_between
from ..ops import warp as W
from ..ops.encoding import depth_feature, encode_color

MOVING_PX = 0.5  # object motion above this: a "moving" pixel


class PairData:
    """Every frame of the dumps in memory (float16 where it is an input), and random crops of
    (frame i-k, frame i) pairs."""

    def __init__(self, folders, progress: bool = True) -> None:
        self.scenes = []
        for folder in folders:
            meta = framedump.read_meta(folder)
            idx = framedump.existing_frames(folder)
            it = idx
            if progress:
                from tqdm import tqdm

                it = tqdm(idx, desc=f"loading {Path(folder).name}", unit="frame", leave=False)
            frames, prev_frames = [], []
            with torch.inference_mode():
                for i in it:
                    f = frame_from_dump(framedump.read_frame(folder, i), meta, i)
                    ec = encode_color(f.color)
                    rec = {
                        "match": torch.cat([ec, f.albedo.clamp(0, 1), f.normal], 1)[0].half(),
                        "depth": depth_feature(f.depth, f.near, f.far)[0].half(),
                        "edge": object_boundaries(f.object_id)[0].to(torch.uint8),
                        "id": f.object_id[0],
                        "motion": f.motion[0].float(),
                        "jitter": f.jitter_px,
                        "prior": {},
                    }
                    for k, pf in ((1, prev_frames[-1] if prev_frames else None),
                                  (2, prev_frames[-2] if len(prev_frames) > 1 else None)):
                        if pf is not None:
                            rec["prior"][k] = camera_motion_between(f, pf)[0].half()
                    if 1 in rec["prior"]:
                        obj = (f.motion[0] - rec["prior"][1].float()).norm(dim=0)
                        ys, xs = torch.nonzero(obj > MOVING_PX, as_tuple=True)
                        rec["moving"] = torch.stack([ys, xs], 1).to(torch.int16)
                    frames.append(rec)
                    prev_frames = (prev_frames + [f])[-2:]
            self.scenes.append(frames)
        self.pairs = [(s, i) for s, fr in enumerate(self.scenes) for i in range(1, len(fr))]

    def target(self, s: int, i: int, k: int):
        """(target motion (2, h, w), valid (1, h, w)) of frame i relative to frame i - k."""
        fr = self.scenes[s]
        m = fr[i]["motion"]
        if k == 1:
            return m, torch.ones_like(m[:1])
        m1 = fr[i - 1]["motion"]
        chained = W.compose_motion(m[None], m1[None])[0]
        id_cur = fr[i]["id"][None].float()
        ok1 = W.sample(fr[i - 1]["id"][None].float(), m[None], "nearest")[0] == id_cur[0]
        ok2 = W.sample(fr[i - 2]["id"][None].float(), chained[None], "nearest")[0] == id_cur[0]
        return chained, (ok1 & ok2).float()

    def sample(self, rng: np.random.Generator, crop: int, zero_prior: float, stride2: float,
               focus: float, perturb: float = 0.0, perturb_px: float = 8.0) -> dict:
        s, i = self.pairs[int(rng.integers(len(self.pairs)))]
        k = 2 if (i >= 2 and rng.random() < stride2) else 1
        cur, prev = self.scenes[s][i], self.scenes[s][i - k]
        _, h, w = cur["match"].shape
        moving = cur.get("moving")
        if moving is not None and len(moving) and rng.random() < focus:
            cy, cx = (int(v) for v in moving[int(rng.integers(len(moving)))])
            cy += int(rng.integers(-crop // 4, crop // 4 + 1))
            cx += int(rng.integers(-crop // 4, crop // 4 + 1))
            y0 = min(max(cy - crop // 2, 0), h - crop)
            x0 = min(max(cx - crop // 2, 0), w - crop)
        else:
            y0 = int(rng.integers(0, h - crop + 1))
            x0 = int(rng.integers(0, w - crop + 1))
        target, valid = self.target(s, i, k)
        cam = cur["prior"][k].float()
        prior = torch.zeros_like(cam) if rng.random() < zero_prior else cam
        sl = (slice(None), slice(y0, y0 + crop), slice(x0, x0 + crop))
        m_cur, m_prev = cur["match"][sl].float(), prev["match"][sl].float()
        ctx = torch.cat([m_cur[:3], m_cur[6:9], cur["depth"][sl].float(), cur["edge"][sl].float()], 0)
        jd = torch.tensor([prev["jitter"][0] - cur["jitter"][0], prev["jitter"][1] - cur["jitter"][1]])
        prior = prior[sl].clone()
        if rng.random() < perturb:
            ang, rad = rng.random() * 2 * math.pi, perturb_px * math.sqrt(rng.random())
            ids = cur["id"][0][sl[1:]]
            region = torch.ones_like(ids, dtype=torch.bool)
            if rng.random() < 2 / 3:
                present = torch.unique(ids)
                region = ids == present[int(rng.integers(len(present)))]
            prior[0][region] += rad * math.cos(ang)
            prior[1][region] += rad * math.sin(ang)
        out = {"match_cur": m_cur, "match_prev": m_prev, "context": ctx, "prior": prior,
               "target": target[sl].clone(), "valid": valid[sl].clone(), "camera": cam[sl].clone(),
               "jitter_delta": jd.view(2, 1, 1)}
        if rng.random() < 0.5:  # mirror: x flips sign for every vector; normals' x too
            out = {key: v.flip(-1) if v.shape[-1] == crop else v.clone() for key, v in out.items()}
            for key in ("prior", "target", "camera", "jitter_delta"):
                out[key][0] = -out[key][0]
            out["match_cur"][6] = -out["match_cur"][6]
            out["match_prev"][6] = -out["match_prev"][6]
            out["context"][3] = -out["context"][3]
        return out

    def batch(self, rng, n: int, **kw) -> dict:
        items = [self.sample(rng, **kw) for _ in range(n)]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def epe_stats(flow, target, camera, valid) -> dict:
    e = (flow - target).norm(dim=1, keepdim=True)
    mov = ((target - camera).norm(dim=1, keepdim=True) > MOVING_PX) & (valid > 0)
    v = valid > 0
    return {"epe": float(e[v].mean()) if v.any() else float("nan"),
            "epe_moving": float(e[mov].mean()) if mov.any() else float("nan")}


def tile_epe(flow, target, valid):
    e = (flow - target).norm(dim=1, keepdim=True) * valid
    return F.avg_pool2d(e, TILE) / F.avg_pool2d(valid, TILE).clamp_min(1e-3)


def policy_labels(tile_epes: list, r: torch.Tensor, thr_min: float, thr_max: float) -> torch.Tensor:
    """Labels (T, N, 1, th, tw): 1 where the iterations after t lower the tile's EPE by more
    than thr(r). ``tile_epes``: T + 1 maps (the prior, then after each iteration)."""
    e = torch.stack(tile_epes)  # (T+1, N, 1, th, tw)
    future_best = torch.flip(torch.cummin(torch.flip(e[1:], [0]), 0).values, [0])  # min over s > t
    thr = (thr_min + (thr_max - thr_min) * (1.0 - r)).view(1, -1, 1, 1, 1)
    return ((e[:-1] - future_best) > thr).float()
