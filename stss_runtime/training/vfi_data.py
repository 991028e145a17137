"""Samples for the interpolation refiner (:mod:`.vfi`): triplets of display frames cached beside
each dump (float16, one file per middle frame), and random crops of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import framedump
from ..frame import frame_from_dump, gt_tensor
from ..models.vfi import INPUT_CHANNELS, TILE
from ..ops.encoding import encode_color
from ..ops.interpolate import cheap_interpolate
from ..ops.warp import compose_motion

CACHE_VERSION = "vfi-v2"  # v2: disocclusions filled from b's background motion
CHANNELS = INPUT_CHANNELS + 3  # refiner inputs + encoded ground truth of the middle frame


def cache_dir(folder: Path) -> Path:
    return Path(folder) / ".cache" / CACHE_VERSION


def triplet_middles(n_frames: int) -> list[int]:
    """Middle frames k (odd, with k-1 and k+1 present)."""
    return [k for k in range(1, n_frames - 1, 2)]


@torch.inference_mode()
def make_sample(folder: Path, meta: dict, k: int, arrays=None) -> np.ndarray:
    """(17, H, W) float32: the refiner's inputs for middle frame k from the ground truth of
    k-1 and k+1, then k's encoded ground truth."""
    fa, fm, fb = arrays or [framedump.read_frame(folder, i) for i in (k - 1, k, k + 1)]
    a, m, b = (frame_from_dump(x, meta, i, shaded=False) for x, i in zip((fa, fm, fb), (k - 1, k, k + 1)))
    motion = compose_motion(b.motion, m.motion)
    res = cheap_interpolate(encode_color(gt_tensor(fa)), encode_color(gt_tensor(fb)), motion,
                            a.depth, b.depth, a.jitter_px, b.jitter_px)
    x = res.features(b.near, b.far)
    return torch.cat([x, encode_color(gt_tensor(fm))], 1)[0].numpy()


def build_cache(folder: str | Path, progress: bool = True) -> list[Path]:
    """Cache every triplet of ``folder``; returns the sample files."""
    folder = Path(folder)
    meta = framedump.read_meta(folder)
    frames = framedump.existing_frames(folder)
    out = cache_dir(folder)
    out.mkdir(parents=True, exist_ok=True)
    ks = triplet_middles(len(frames))
    paths = [out / f"{k:06d}.npy" for k in ks]
    todo = [(k, p) for k, p in zip(ks, paths) if not p.exists()]
    it = todo
    if progress and todo:
        from tqdm import tqdm

        it = tqdm(todo, desc=f"caching {folder.name}", unit="triplet", leave=False)
    for k, p in it:
        tmp = p.with_name(p.stem + ".tmp.npy")
        np.save(tmp, make_sample(folder, meta, k).astype(np.float16))
        os.replace(tmp, p)
    return paths


def upscaled_cache_dir(folder: Path, inner: str) -> Path:
    return Path(folder) / ".cache" / f"{CACHE_VERSION}-up-{inner}"


def build_upscaled_cache(folder: str | Path, interpolator: Callable[[str], Any], inner: str = "temporal",
                         progress: bool = True) -> list[Path]:
    """Cache the RUN-TIME inputs of every interpolated frame of ``folder``: the sequence goes
    through the cheap interpolation pass exactly as at run time (even frames rendered and
    upscaled by ``inner`` at half rate, odd frames handing over their motion only), and
    the refiner's inputs it builds for each middle frame m are stored with m's ground truth.
    ``interpolator(inner)`` makes that pass (the ``vfi_cheap`` pass: training does not
    import passes, its caller hands one over)."""
    folder = Path(folder)
    meta = framedump.read_meta(folder)
    frames = framedump.existing_frames(folder)
    out = upscaled_cache_dir(folder, inner)
    out.mkdir(parents=True, exist_ok=True)
    ks = [k for k in triplet_middles(len(frames))]
    paths = [out / f"{k:06d}.npy" for k in ks]
    if all(p.exists() for p in paths):
        return paths
    p = interpolator(inner)
    p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
    it = frames[: ks[-1] + 2]
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"caching {folder.name} ({inner} upscaled)", unit="frame", leave=False)
    with torch.inference_mode():
        for i in it:
            arrays = framedump.read_frame(folder, i)
            p(frame_from_dump(arrays, meta, i, shaded=(i % 2 == 0)))
            if not p.last_stats.get("interpolated"):
                continue
            m = i - 1
            path = out / f"{m:06d}.npy"
            gt = encode_color(gt_tensor(framedump.read_frame(folder, m)))
            sample = torch.cat([p.last_features, gt], 1)[0].numpy().astype(np.float16)
            tmp = path.with_name(path.stem + ".tmp.npy")
            np.save(tmp, sample)
            os.replace(tmp, path)
    return [q for q in paths if q.exists()]


class Crops:
    """Random crops from cached samples (memory-mapped). A fraction ``hard`` of the crops is
    centred on a 16x16 block drawn with probability proportional to the cheap path's
    squared error there (most of a frame is easy; uniform crops alone teach little)."""

    def __init__(self, paths: list[Path], crop: int, seed: int, flip: bool, hard: float = 0.5):
        self.paths, self.crop, self.flip, self.hard = paths, crop, flip, hard
        self.maps = [np.load(p, mmap_mode="r") for p in paths]
        self.rng = np.random.default_rng(seed)
        self.error = [self._block_error(m) for m in self.maps] if hard > 0 else None

    @staticmethod
    def _block_error(arr) -> np.ndarray:
        """(H/16, W/16) cumulative distribution of the cheap path's squared error."""
        d = (np.asarray(arr[0:3], np.float32) - np.asarray(arr[INPUT_CHANNELS:INPUT_CHANNELS + 3], np.float32))
        e = (d * d).mean(0)
        h, w = e.shape[0] // TILE * TILE, e.shape[1] // TILE * TILE
        blocks = e[:h, :w].reshape(h // TILE, TILE, w // TILE, TILE).mean((1, 3))
        return blocks

    def batch(self, n: int) -> torch.Tensor:
        out = []
        for _ in range(n):
            j = int(self.rng.integers(len(self.maps)))
            arr = self.maps[j]
            _, h, w = arr.shape
            if self.error is not None and self.rng.random() < self.hard:
                e = self.error[j]
                flat = e.ravel() / e.sum()
                b = int(self.rng.choice(flat.size, p=flat))
                cy, cx = (b // e.shape[1]) * TILE + TILE // 2, (b % e.shape[1]) * TILE + TILE // 2
                y = int(np.clip(cy - self.crop // 2 + self.rng.integers(-TILE, TILE + 1), 0, h - self.crop))
                x = int(np.clip(cx - self.crop // 2 + self.rng.integers(-TILE, TILE + 1), 0, w - self.crop))
            else:
                y = int(self.rng.integers(0, h - self.crop + 1))
                x = int(self.rng.integers(0, w - self.crop + 1))
            c = torch.from_numpy(np.array(arr[:, y:y + self.crop, x:x + self.crop], np.float32))
            if self.flip and self.rng.random() < 0.5:
                c = c.flip(-1)
                c[11] = -c[11]  # flow x
            out.append(c)
        return torch.stack(out)
