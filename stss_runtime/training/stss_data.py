"""Training samples from frame dump folders.

Each sequence is streamed once through the runtime's own :class:`~stss_runtime.history.History`
(even display frames shaded, odd ones extrapolated, exactly as at run time), and the network
inputs of every frame are cached beside the dump as float16 ``.npy`` files (resumable; memory-
mapped for cropping). Samples are random crops with Random Reshading Masking (STSS.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from .. import framedump
from ..frame import frame_from_dump, gt_tensor
from ..history import History
from ..ops.encoding import encode_color

CACHE_VERSION = "stss-inputs-v3"  # v3: inputs on the render's jittered grid, plus each frame's jitter
INPUT_CHANNELS = 6 + 9 + 1 + 12  # x, feature, mask, history
GEOMETRY_CHANNELS = 2 + 1  # motion (render px), linear depth: for display-resolution warps
SCALE = 2


def cache_dir(folder: Path, generated: int = 1) -> Path:
    """Where the network inputs of ``folder`` are cached under the schedule of ``generated``
    frames per rendered one."""
    return Path(folder) / ".cache" / (CACHE_VERSION if generated == 1 else f"{CACHE_VERSION}-n{generated}")


def shaded(index: int, generated: int = 1) -> bool:
    """Whether display frame ``index`` is rendered with ``generated`` frames after each
    rendered one (``shared/CONVENTIONS.md``, the frame generation schedule)."""
    return index % (generated + 1) == 0


def build_cache(folder: str | Path, progress: bool = True, generated: int = 1) -> Path:
    """Network inputs (on each frame's jittered render grid, as the runtime's ``History()``
    makes them under the schedule of ``generated`` generated frames per rendered one), the
    frame's jitter (render px) and the encoded ground truth of every frame of ``folder`` as
    .npy files."""
    folder = Path(folder)
    meta = framedump.read_meta(folder)
    frames = framedump.existing_frames(folder)
    if not frames or frames != list(range(len(frames))):
        raise framedump.FrameDumpError(f"{folder}: frames must be 0..N-1 without gaps, found {len(frames)}")
    out = cache_dir(folder, generated)
    out.mkdir(parents=True, exist_ok=True)
    (w, h), (dw, dh) = meta["render_size"], meta["display_size"]
    if (dw, dh) != (SCALE * w, SCALE * h):
        raise framedump.FrameDumpError(
            f"{folder}: display size {dw}x{dh} is not {SCALE}x the render size {w}x{h}")
    todo = [i for i in frames if not (out / f"{i:06d}.gt.npy").exists()]
    if todo:
        history = History()
        it = frames
        if progress:
            from tqdm import tqdm

            it = tqdm(frames, desc=f"caching {folder.name}", unit="frame", leave=False)
        with torch.inference_mode():
            for i in it:  # stream every frame: the history needs its predecessors
                arrays = framedump.read_frame(folder, i)
                inp = history.step(frame_from_dump(arrays, meta, i, shaded=shaded(i, generated)))
                if i not in todo:
                    continue
                f = frame_from_dump(arrays, meta, i, shaded=False)
                stack = torch.cat([*inp.as_tuple(), f.motion, f.depth], dim=1)[0].numpy().astype(np.float16)
                tmp = out / f"{i:06d}.in.tmp.npy"
                np.save(tmp, stack)
                tmp.replace(out / f"{i:06d}.in.npy")
                tmp = out / f"{i:06d}.jitter.tmp.npy"
                np.save(tmp, np.asarray(arrays["jitter"], dtype=np.float32).reshape(2))
                tmp.replace(out / f"{i:06d}.jitter.npy")
                gt = encode_color(gt_tensor(arrays))[0].numpy().astype(np.float16)
                tmp = out / f"{i:06d}.gt.tmp.npy"
                np.save(tmp, gt)
                tmp.replace(out / f"{i:06d}.gt.npy")  # written last: marks the frame complete
    index = json.dumps({"version": CACHE_VERSION, "frames": len(frames), "render_size": [w, h]}) + "\n"
    index_path = out / "cache.json"
    if not index_path.exists() or index_path.read_text() != index:
        tmp = out / f"cache.{os.getpid()}.tmp.json"
        tmp.write_text(index)
        tmp.replace(index_path)  # atomic: a concurrent reader never sees half a file
    return out


def random_reshading_mask(h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """One rectangle (y0, x0, rh, rw) to cut from the valid mask: height up to h/4, width up
    to w/4 (so its area is at most 1/16 of the frame), placed uniformly."""
    rh = int(rng.integers(1, max(h // 4, 1) + 1))
    rw = int(rng.integers(1, max(w // 4, 1) + 1))
    return int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1)), rh, rw


#: Channels of a sample's ``feature`` holding the view-space normal's x, and the albedo.
NORMAL_X, ALBEDO = 0, slice(6, 9)


def augment(sample: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Geometry-consistent augmentation of a finished sample (any resolution), in place:
    a horizontal mirror (every image flipped, the normal's x negated, as the mirrored
    scene would render, its jitter's x negated) and a permutation of the colour channels applied alike to every
    colour (inputs, history, albedo, target), each with probability 1/2. The published
    recipe uses none; with a handful of training scenes it keeps the network from
    learning their particular colours and layouts."""
    colours = ("x", "history", "target")
    if rng.random() < 0.5:
        for k in ("x", "feature", "mask", "history", "target"):
            sample[k] = sample[k].flip(-1)
        sample["feature"][NORMAL_X] = -sample["feature"][NORMAL_X]
        if "jitter" in sample:  # the mirrored render is jittered the other way along x
            sample["jitter"] = sample["jitter"] * torch.tensor([-1.0, 1.0])
    if rng.random() < 0.5:
        perm = torch.from_numpy(rng.permutation(3))
        for k in colours:
            t = sample[k]
            c = t.shape[0]
            idx = torch.arange(c)
            step = 4 if k == "history" else 3  # history: colour 3 + mask 1 per frame
            for base in range(0, c, step):
                idx[base:base + 3] = base + perm
            sample[k] = t[idx]
        f = sample["feature"]
        f[ALBEDO] = f[ALBEDO][perm]
    return sample


class CropDataset(torch.utils.data.Dataset):
    with_geometry = False  # also return the crop origin and motion/depth (ExtraNet samples)

    """Random ``crop`` x ``crop`` render-resolution crops (with their 2x targets) of every
    cached frame of ``folders``; each ``__getitem__`` draws a new crop position and RRM."""

    def __init__(self, folders: list[str | Path], crop: int = 128, rrm: bool = True,
                 skip_first: int = 5, seed: int = 0, progress: bool = True, augment: bool = False):
        if crop % 8:
            raise ValueError(f"crop must be a multiple of 8, got {crop}")
        self.crop, self.rrm, self.seed, self.augment = crop, rrm, seed, augment
        self.items: list[tuple[Path, int]] = []
        self.jitters: dict[tuple[Path, int], torch.Tensor] = {}  # read once, not per sample
        for folder in folders:
            cdir = build_cache(folder, progress=progress)
            n = json.loads((cdir / "cache.json").read_text())["frames"]
            self.items += [(cdir, i) for i in range(skip_first, n)]
            self.jitters.update({(cdir, i): torch.from_numpy(np.load(cdir / f"{i:06d}.jitter.npy"))
                                 for i in range(skip_first, n)})
        if not self.items:
            raise ValueError("no training frames")
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, k: int) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        return np.random.default_rng([self.seed, self.epoch, k, info.id if info else 0])

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        rng = self._rng(k)
        s = self._sample(k, rng)
        return augment(s, rng) if self.augment else s

    def _sample(self, k: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        cdir, i = self.items[k]
        inp = np.load(cdir / f"{i:06d}.in.npy", mmap_mode="r")
        gt = np.load(cdir / f"{i:06d}.gt.npy", mmap_mode="r")
        _, h, w = inp.shape
        c = self.crop
        if h < c or w < c:
            raise ValueError(f"{cdir}: frame {w}x{h} smaller than the crop {c}")
        y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        mask_full_cut = random_reshading_mask(h, w, rng) if self.rrm else None
        a = torch.from_numpy(np.array(inp[:, y0:y0 + c, x0:x0 + c], dtype=np.float32))
        t = torch.from_numpy(np.array(gt[:, 2 * y0:2 * (y0 + c), 2 * x0:2 * (x0 + c)], dtype=np.float32))
        mask = a[15:16].clone()
        if mask_full_cut is not None:  # cut in full-frame coordinates, then see it through the crop
            ry, rx, rh, rw = mask_full_cut
            yy0, yy1 = max(ry - y0, 0), min(ry + rh - y0, c)
            xx0, xx1 = max(rx - x0, 0), min(rx + rw - x0, c)
            if yy0 < yy1 and xx0 < xx1:
                mask[:, yy0:yy1, xx0:xx1] = 0.0
        out = {"x": a[0:6], "feature": a[6:15], "mask": mask, "history": a[16:28], "target": t,
               "shaded": torch.tensor(i % 2 == 0),
               "jitter": self.jitters[cdir, i].clone()}
        if self.with_geometry:
            out["origin"] = (y0, x0)
            out["geometry"] = a[28:31]
        return out


class ExtraNetCropDataset(CropDataset):
    """Display-resolution samples for the two-stage pipeline's extrapolation network, on
    extrapolated (odd) frames only: its ``x`` is the previous frame's ground truth (teacher
    forcing: at run time, the supersampler's output) warped by the upsampled motion; mask,
    G-buffer features and history are the runtime's, upsampled."""

    margin = 48  # display pixels of context around the crop for the warp
    with_geometry = True

    def __init__(self, folders, crop: int = 64, **kw):
        super().__init__(folders, crop=crop, **kw)
        self.items = [it for it in self.items if it[1] % 2 == 1]

    def _sample(self, k: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        from ..ops import warp as W

        s = super()._sample(k, rng)  # render-resolution crop, RRM applied to its mask
        cdir, i = self.items[k]
        c = self.crop
        y0, x0 = s.pop("origin")
        geo = s.pop("geometry")[None]
        motion, depth = geo[:, 0:2], geo[:, 2:3]
        d = 2 * c
        m = W.upsample_motion(motion, depth, (d, d))[0]  # display pixels
        prev = np.load(cdir / f"{i - 1:06d}.gt.npy", mmap_mode="r")
        _, hh, ww = prev.shape
        ry0, rx0 = max(2 * y0 - self.margin, 0), max(2 * x0 - self.margin, 0)
        ry1, rx1 = min(2 * y0 + d + self.margin, hh), min(2 * x0 + d + self.margin, ww)
        region = torch.from_numpy(np.array(prev[:, ry0:ry1, rx0:rx1], dtype=np.float32))[None]
        ys = torch.arange(d, dtype=torch.float32) + 0.5 + 2 * y0 - ry0
        xs = torch.arange(d, dtype=torch.float32) + 0.5 + 2 * x0 - rx0
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        px, py = gx + m[0], gy + m[1]
        grid = torch.stack([px * (2.0 / (rx1 - rx0)) - 1.0, py * (2.0 / (ry1 - ry0)) - 1.0], -1)[None]
        warped = torch.nn.functional.grid_sample(region, grid, mode="bilinear",
                                                 padding_mode="border", align_corners=False)[0]
        # on the display grid, as the pass upsamples them (extranet_inputs)
        jit = tuple(float(v) for v in s["jitter"])
        up = lambda t, mode: W.resample(t[None], (d, d), jit, mode=mode)[0]  # noqa: E731
        return {"x": warped, "feature": up(s["feature"], "nearest"), "mask": up(s["mask"], "nearest"),
                "history": up(s["history"], "bilinear"), "target": s["target"], "shaded": s["shaded"]}
