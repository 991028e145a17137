"""Sequences for the recurrent network (:mod:`.recurrent`): runs of consecutive display frames
of a frame dump, cropped at one place, with what the network reads at each (the runtime's
own inputs, cached by :func:`.stss_data.build_cache`), the motion and depth that reproject
its state, and the encoded ground truth.

A crop stays at one place while the camera moves: content entering it from outside has no
history there, which the trainer treats like a disocclusion (the reconstruction stands in).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .stss_data import build_cache, shaded

#: Channels of a cached frame: x 6, feature 9, mask 1, history 12, motion 2, depth 1.
X, FEATURE, MASK, HISTORY, MOTION, DEPTH = (slice(0, 6), slice(6, 15), slice(15, 16), slice(16, 28),
                                            slice(28, 30), slice(30, 31))
#: History channels holding the hole mask of the newest shaded frame before the current one:
#: its slot is the middle one on rendered frames (the last three rendered frames, the
#: current one last) and the last on generated ones (the last three rendered frames).
PREVIOUS_VALID_SF, PREVIOUS_VALID_EF = 4 + 3, 8 + 3
NORMAL_X = 6  # channel of the view-space normal's x in a cached frame
ALBEDO = slice(12, 15)


def trunk_key(net) -> str:
    """A short hash of a recurrent network's trunk (STSS) weights: names its trunk cache."""
    h = hashlib.sha256()
    for k, v in net.stss.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def build_trunk_cache(folder: str | Path, net, progress: bool = True, generated: int = 1) -> Path:
    """The trunk's outputs for every frame of ``folder`` (:meth:`RecurrentStss.trunk` on the
    whole frame: the reconstruction (3, 2h, 2w) and the decoder's features (C, h, w), float16),
    beside the network inputs' cache, under a key of the trunk's weights. A frozen trunk then
    runs once per frame instead of once per frame of every sampled sequence. Resumable."""
    from ..graphs import pad_to_multiple

    cdir = build_cache(folder, progress=progress, generated=generated)
    out = cdir.parent / (f"trunk-{trunk_key(net)}" if generated == 1 else f"trunk-n{generated}-{trunk_key(net)}")
    out.mkdir(parents=True, exist_ok=True)
    n = json.loads((cdir / "cache.json").read_text())["frames"]
    todo = [i for i in range(n) if not (out / f"{i:06d}.features.npy").exists()]
    it = todo
    if progress and todo:
        from tqdm import tqdm

        it = tqdm(todo, desc=f"trunk {Path(folder).name}", unit="frame", leave=False)
    net.eval()
    with torch.inference_mode():
        for i in it:
            inp = torch.from_numpy(np.load(cdir / f"{i:06d}.in.npy").astype(np.float32))[None]
            h, w = inp.shape[-2:]
            x, feature, mask, history = (pad_to_multiple(inp[:, sl]) for sl in (X, FEATURE, MASK, HISTORY))
            recon, features = net.trunk(x, feature, mask, history)
            for name, t in (("recon", recon[0, :, :2 * h, :2 * w]), ("features", features[0, :, :h, :w])):
                tmp = out / f"{i:06d}.{name}.tmp.npy"
                np.save(tmp, t.numpy().astype(np.float16))
                tmp.replace(out / f"{i:06d}.{name}.npy")  # features last: marks the frame complete
    return out


class SequenceDataset(torch.utils.data.Dataset):
    """Random runs of ``length`` consecutive frames, each cropped at the same ``crop`` x
    ``crop`` render pixels. An item: ``inputs`` (T, 31, c, c), ``target`` (T, 3, 2c, 2c)
    encoded ground truth, ``jitter`` (T, 2), ``shaded`` (T,). ``augment``: mirror (every
    image, the normal's x, the motion's x and the jitter's x negated) and a colour-channel
    permutation, each with probability 1/2. ``trunk``: a network whose trunk outputs are
    cached (:func:`build_trunk_cache`) and returned as ``recon`` and ``features`` crops (no
    augmentation then: the trunk's outputs of a mirrored frame are not the mirrored outputs)."""

    def __init__(self, folders, length: int = 8, crop: int = 96, skip_first: int = 5, seed: int = 0,
                 augment: bool = True, progress: bool = True, trunk=None, generated=1):
        """``generated``: the frames generated per rendered one, for all ``folders`` or one
        per folder (a dump at 120 display frames per second with 3 serves 4x)."""
        if crop % 8:
            raise ValueError(f"crop: expected a multiple of 8, got {crop}")
        self.length, self.crop, self.seed = length, crop, seed
        self.augment = augment and trunk is None
        self.items: list[tuple[Path, int]] = []
        self.jitters: dict[Path, np.ndarray] = {}
        self.trunk_dirs: dict[Path, Path] = {}
        self.schedule: dict[Path, int] = {}
        schedules = [generated] * len(folders) if isinstance(generated, int) else list(generated)
        if len(schedules) != len(folders):
            raise ValueError(f"generated: expected one count or {len(folders)} (one per folder), got {len(schedules)}")
        for folder, n_gen in zip(folders, schedules):
            cdir = build_cache(folder, progress=progress, generated=n_gen)
            self.schedule[cdir] = n_gen
            if trunk is not None:
                self.trunk_dirs[cdir] = build_trunk_cache(folder, trunk, progress=progress, generated=n_gen)
            n = json.loads((cdir / "cache.json").read_text())["frames"]
            self.items += [(cdir, s) for s in range(skip_first, n - length + 1)]
            self.jitters[cdir] = np.stack([np.load(cdir / f"{i:06d}.jitter.npy") for i in range(n)])
        if not self.items:
            raise ValueError(f"no run of {length} frames after the first {skip_first} in {list(folders)}")
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, k, info.id if info else 0])
        cdir, start = self.items[k]
        c = self.crop
        first = np.load(cdir / f"{start:06d}.in.npy", mmap_mode="r")
        _, h, w = first.shape
        y0, x0 = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        frames = range(start, start + self.length)
        inputs = np.stack([np.asarray(np.load(cdir / f"{i:06d}.in.npy", mmap_mode="r")[:, y0:y0 + c, x0:x0 + c],
                                      np.float32) for i in frames])
        target = np.stack([np.asarray(np.load(cdir / f"{i:06d}.gt.npy", mmap_mode="r")
                                      [:, 2 * y0:2 * (y0 + c), 2 * x0:2 * (x0 + c)], np.float32) for i in frames])
        item = {"inputs": torch.from_numpy(inputs), "target": torch.from_numpy(target),
                "jitter": torch.from_numpy(self.jitters[cdir][start:start + self.length].astype(np.float32)),
                "shaded": torch.tensor([shaded(i, self.schedule[cdir]) for i in frames])}
        if cdir in self.trunk_dirs:
            tdir = self.trunk_dirs[cdir]
            item["recon"] = torch.from_numpy(np.stack([np.asarray(np.load(tdir / f"{i:06d}.recon.npy", mmap_mode="r")
                                                                  [:, 2 * y0:2 * (y0 + c), 2 * x0:2 * (x0 + c)],
                                                                  np.float32) for i in frames]))
            item["features"] = torch.from_numpy(np.stack([np.asarray(np.load(tdir / f"{i:06d}.features.npy",
                                                                             mmap_mode="r")[:, y0:y0 + c, x0:x0 + c],
                                                                     np.float32) for i in frames]))
        return augment(item, rng) if self.augment else item


def augment(item: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Mirror and colour permutation of a sequence (each p = 1/2), consistent across frames."""
    if rng.random() < 0.5:
        item["inputs"] = item["inputs"].flip(-1)
        item["target"] = item["target"].flip(-1)
        item["inputs"][:, NORMAL_X] = -item["inputs"][:, NORMAL_X]
        item["inputs"][:, MOTION.start] = -item["inputs"][:, MOTION.start]
        item["jitter"] = item["jitter"] * torch.tensor([-1.0, 1.0])
    if rng.random() < 0.5:
        perm = torch.from_numpy(rng.permutation(3))
        idx = torch.arange(item["inputs"].shape[1])
        for base in (0, 3, HISTORY.start, HISTORY.start + 4, HISTORY.start + 8, ALBEDO.start):
            idx[base:base + 3] = base + perm
        item["inputs"] = item["inputs"][:, idx]
        item["target"] = item["target"][:, perm]
    return item
