"""Train the frame-interpolation refiner and its uncertainty head (``vfi`` passes).

    python -m stss_runtime.train_vfi --data data/fence_a data/gallery_a --out runs/vfi --steps 3000 --threads 1

Samples are triplets of display frames (a = k-1, m = k, b = k+1, k odd, as at run time);
the target is m's ground truth. Two kinds of inputs (``--inputs``):

  * ``gt``: the cheap interpolation (:func:`stss_runtime.passes.vfi.cheap_interpolate`)
    built from the CLEAN ground-truth frames of a and b (display resolution, encoded
    colour) with the renderer's motion composed b -> m -> a and both renders' depth: the
    refiner learns to fix interpolation errors alone (``.cache/vfi-v2/``);
  * ``upscaled``: the run-time inputs: the sequence goes through the cheap ``vfi`` pass as
    at run time (even frames rendered and upscaled by ``--inner`` at half rate), so a and b
    carry the upscaler's errors too (``.cache/vfi-v2-up-INNER/``).

Inputs are cached once per folder beside the dump (float16) and random crops are drawn
from them (optionally mirrored; half of them centred on high cheap-path error).

Loss per step, in encoded colour (:func:`stss_runtime.history.encode_color`):
  * L1 of the PRUNED output: the cheap result, with the tiles whose predicted uncertainty is
    in the crop batch's top ``--train-fraction`` replaced by the refiner's output (because
    the refiner's halo covers its receptive field, that is exactly what the run-time
    gather/refine/scatter gives; the tests check it);
  * L1 of the DENSE auxiliary branch (the refiner over the whole crop), weight ``--dense-weight``;
  * the uncertainty head's L1 regression to the MEASURED error of the cheap path:
    log10(mean squared error + 1e-5) per 8x8 cell, weight ``--uncertainty-weight``.

After the last step the pruning threshold is CALIBRATED on training frames (whole frames,
the first folders' cached triplets): the largest predicted-uncertainty threshold whose
pruned output's mean Y-PSNR (8-bit display transform) is within ``--calibrate-tolerance``
dB of the dense refiner's. It is stored in ``OUT/weights.pt`` (``threshold``, ``tile``,
``calibration``) and read by the pass.

Resumable: re-running the same command continues from ``OUT/checkpoint.pt`` (written every
``--checkpoint-every`` steps and on Ctrl-C). Writes ``OUT/loss.csv``, ``OUT/loss.png`` and
``OUT/weights.pt``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import framedump
from .checkpoint import save_weights
from .frame import frame_from_dump, gt_tensor
from .history import encode_color
from .models import build_model
from .models.vfi import CELL, FLOW_SCALE, INPUT_CHANNELS, VFI_PRESETS, VfiRefiner
from .passes.vfi import TILE, PrunedRefiner, cheap_interpolate, tile_scores
from .training.plots import pyplot, read_log, save_figure
from .training.runs import SignalStop, check_data_folders, end_run
from .warp import compose_motion

CACHE_VERSION = "vfi-v2"  # v2: disocclusions filled from b's background motion
CHANNELS = INPUT_CHANNELS + 3  # refiner inputs + encoded ground truth of the middle frame
ERROR_EPS = 1e-5


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


def build_upscaled_cache(folder: str | Path, inner: str = "temporal", progress: bool = True) -> list[Path]:
    """Cache the RUN-TIME inputs of every interpolated frame of ``folder``: the sequence goes
    through the cheap ``vfi`` pass exactly as at run time (even frames rendered and
    upscaled by ``inner`` at half rate, odd frames handing over their motion only), and
    the refiner's inputs it builds for each middle frame m are stored with m's ground truth."""
    from .passes.vfi import VfiCheapPass

    folder = Path(folder)
    meta = framedump.read_meta(folder)
    frames = framedump.existing_frames(folder)
    out = upscaled_cache_dir(folder, inner)
    out.mkdir(parents=True, exist_ok=True)
    ks = [k for k in triplet_middles(len(frames))]
    paths = [out / f"{k:06d}.npy" for k in ks]
    if all(p.exists() for p in paths):
        return paths
    p = VfiCheapPass(inner=inner)
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


def cell_error(cheap: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Measured log10 MSE (encoded colour) of the cheap path per 8x8 cell: (B, 1, H/8, W/8)."""
    return torch.log10(F.avg_pool2d(((cheap - gt) ** 2).mean(1, keepdim=True), CELL) + ERROR_EPS)


def losses_of(model: VfiRefiner, batch: torch.Tensor, fraction: float, args) -> dict[str, torch.Tensor]:
    x, gt = batch[:, :INPUT_CHANNELS], batch[:, INPUT_CHANNELS:]
    cheap = x[:, :3]
    dense, unc = model(x)
    target = cell_error(cheap, gt)
    # pruned branch: tiles with the highest predicted uncertainty (over the batch)
    scores = F.max_pool2d(unc.detach(), TILE // CELL, ceil_mode=True)
    k = max(1, int(round(fraction * scores.numel())))
    thr = scores.flatten().topk(k).values[-1]
    mask = F.interpolate((scores >= thr).float(), scale_factor=TILE, mode="nearest")[..., :x.shape[2], :x.shape[3]]
    pruned = torch.where(mask > 0.5, dense, cheap)
    l_pruned = (pruned - gt).abs().mean()
    l_dense = (dense - gt).abs().mean()
    l_unc = (unc - target).abs().mean()
    loss = l_pruned + args.dense_weight * l_dense + args.uncertainty_weight * l_unc
    return {"loss": loss, "pruned": l_pruned, "dense": l_dense, "uncertainty": l_unc,
            "cheap": (cheap - gt).abs().mean()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stss_runtime.train_vfi", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="training frame dump folders")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, logs, weights)")
    p.add_argument("--inputs", default="gt", choices=("gt", "upscaled"),
                   help="gt: cheap path built from the clean ground truth of a and b; upscaled: "
                        "the run-time inputs, a and b upscaled by --inner from the renders at "
                        "half rate (default gt)")
    p.add_argument("--inner", default="temporal", help="upscaler for --inputs upscaled (default temporal)")
    p.add_argument("--init", type=Path, default=None,
                   help="start from these refiner weights (ignored when OUT has a checkpoint)")
    p.add_argument("--model", default="vfi_refiner", choices=sorted(VFI_PRESETS),
                   help="refiner preset (default vfi_refiner)")
    p.add_argument("--steps", type=int, default=3000, help="optimisation steps (default 3000)")
    p.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    p.add_argument("--crop", type=int, default=96, help="crop side, display px, multiple of 16 (default 96)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed to --lr/100")
    p.add_argument("--train-fraction", type=float, default=0.3,
                   help="fraction of tiles the pruned branch refines in training (default 0.3)")
    p.add_argument("--dense-weight", type=float, default=1.0, help="weight of the dense branch's L1")
    p.add_argument("--uncertainty-weight", type=float, default=0.05,
                   help="weight of the uncertainty regression (log10 units)")
    p.add_argument("--no-flip", action="store_true", help="no horizontal mirroring of crops")
    p.add_argument("--hard-crops", type=float, default=0.5,
                   help="fraction of crops centred on high cheap-path error (default 0.5)")
    p.add_argument("--calibrate-frames", type=int, default=3,
                   help="whole training frames per folder for the threshold calibration (default 3)")
    p.add_argument("--calibrate-tolerance", type=float, default=0.05,
                   help="allowed mean PSNR loss (dB) of pruned vs dense in the calibration")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.crop % TILE or args.crop < 2 * TILE:
        p.error(f"--crop must be a multiple of {TILE} and >= {2 * TILE}, got {args.crop}")
    check_data_folders(p, args.data)
    if args.steps < 1 or args.batch < 1:
        p.error("--steps and --batch must be positive")
    if not 0 < args.train_fraction <= 1:
        p.error(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
    return args


def learning_rate(args, step: int) -> float:
    lo = args.lr / 100
    return lo + 0.5 * (args.lr - lo) * (1 + math.cos(math.pi * min(step / args.steps, 1.0)))


def plot_losses(csv_path: Path, png_path: Path) -> None:
    steps, rows = read_log(csv_path)
    if not rows:
        return
    fig, ax = pyplot().subplots(1, 3, figsize=(14, 4), dpi=100)
    for key in ("cheap", "dense", "pruned"):
        ax[0].plot(steps, [float(r[key]) for r in rows], label=f"L1 {key}")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("L1 vs middle ground truth (encoded colour)")
    ax[0].legend()
    ax[0].grid(alpha=0.3)
    cheap = np.array([float(r["cheap"]) for r in rows])
    k = max(1, len(rows) // 25)  # moving average over ~4% of the run
    smooth = lambda v: np.convolve(v, np.ones(k) / k, mode="valid")  # noqa: E731
    for key in ("dense", "pruned"):
        ratio = np.array([float(r[key]) for r in rows]) / cheap
        ax[1].plot(steps[k - 1:], smooth(ratio), label=f"{key} / cheap")
    ax[1].axhline(1.0, color="k", lw=0.8)
    ax[1].set_xlabel("step")
    ax[1].set_ylabel(f"L1 relative to the cheap path ({k}-row mean)")
    ax[1].legend()
    ax[1].grid(alpha=0.3)
    ax[2].plot(steps, [float(r["uncertainty"]) for r in rows], color="C3")
    ax[2].set_xlabel("step")
    ax[2].set_ylabel("uncertainty head L1 (log10 MSE units)")
    ax[2].grid(alpha=0.3)
    fig.suptitle(f"VFI refiner training: {csv_path.parent.name if csv_path.name == 'loss.csv' else csv_path.stem}")
    fig.tight_layout()
    save_figure(fig, png_path)


@torch.inference_mode()
def calibrate(model: VfiRefiner, caches: list[Path], per_folder: int, tolerance: float,
              tile: int = TILE, progress: bool = True) -> dict:
    """Choose the pruning threshold on whole training frames (see the module docstring)."""
    from . import metrics
    from .history import decode_color

    model.eval()
    refiner = PrunedRefiner(model, tile)
    rows = []
    items = []
    for folder in caches:  # cache folders
        paths = sorted(Path(folder).glob("[0-9]*[0-9].npy"))
        if not paths:
            continue
        pick = np.linspace(0, len(paths) - 1, per_folder).round().astype(int)
        items += [paths[i] for i in sorted(set(pick.tolist()))]
    it = items
    if progress:
        from tqdm import tqdm

        it = tqdm(items, desc="calibrating threshold", unit="frame", leave=False)
    to8 = lambda e: metrics.to_display(decode_color(e)[0].permute(1, 2, 0).numpy())  # noqa: E731
    for p in it:
        s = torch.from_numpy(np.load(p).astype(np.float32))[None]
        x, gt = s[:, :INPUT_CHANNELS], s[:, INPUT_CHANNELS:]
        dense, scores = refiner.dense(x)
        ref = to8(gt)
        rows.append({"scores": scores, "dense": dense, "cheap": x[:, :3], "ref": ref,
                     "psnr_dense": metrics.psnr_y(ref, to8(dense)),
                     "psnr_cheap": metrics.psnr_y(ref, to8(x[:, :3]))})
    all_scores = torch.cat([r["scores"].flatten() for r in rows])
    candidates = sorted(set(torch.quantile(all_scores, torch.linspace(0, 1, 41)).tolist()), reverse=True)
    dense_mean = float(np.mean([r["psnr_dense"] for r in rows]))
    table = []
    chosen = None
    for thr in candidates:
        psnrs, fracs = [], []
        for r in rows:
            sel = r["scores"] > thr
            h, w = r["dense"].shape[-2:]
            mask = sel.repeat_interleave(tile, 0).repeat_interleave(tile, 1)[:h, :w]
            out = torch.where(mask, r["dense"], r["cheap"])
            psnrs.append(metrics.psnr_y(r["ref"], to8(out)))
            fracs.append(float(sel.float().mean()))
        row = {"threshold": thr, "fraction": float(np.mean(fracs)), "psnr": float(np.mean(psnrs))}
        table.append(row)
        if chosen is None and row["psnr"] >= dense_mean - tolerance:
            chosen = row
    if chosen is None:
        chosen = table[-1]
    model.train()
    return {"threshold": chosen["threshold"], "fraction": chosen["fraction"],
            "psnr_pruned": chosen["psnr"], "psnr_dense": dense_mean,
            "psnr_cheap": float(np.mean([r["psnr_cheap"] for r in rows])),
            "frames": [str(p) for p in items], "tolerance_db": tolerance, "table": table}


def train(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for folder in args.data:
        if args.inputs == "gt":
            paths += build_cache(folder, progress=not args.no_progress)
        else:
            paths += build_upscaled_cache(folder, args.inner, progress=not args.no_progress)
    model = build_model(args.model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["model_name"] != args.model:
            print(f"train_vfi: {ckpt_path} is a {ck['model_name']} run, not {args.model}", file=sys.stderr)
            return 2
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
        print(f"train_vfi: resuming {out} at step {step}")
    elif args.init is not None:
        from .checkpoint import load_weights

        init_model, init_info = load_weights(args.init, expected_model=args.model)
        model.load_state_dict(init_model.state_dict())
        print(f"train_vfi: starting from {args.init} ({init_info.get('steps', '?')} steps)")
    crops = Crops(paths, args.crop, seed=args.seed * 1000 + step, flip=not args.no_flip,
                  hard=args.hard_crops)
    stop = SignalStop()
    info = {"data": [str(d) for d in args.data], "tile": TILE,
            "inputs": ("cheap interpolation of the ground-truth frames a, b (display res)"
                       if args.inputs == "gt" else
                       f"run-time inputs: a, b upscaled by {args.inner} at half rate"),
            "init": str(args.init) if args.init else None}

    def save_checkpoint():
        tmp = out / "checkpoint.tmp.pt"
        torch.save({"model_name": args.model, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "args": vars(args) | {"data": [str(d) for d in args.data], "out": str(out)}}, tmp)
        os.replace(tmp, ckpt_path)
        save_weights(out / "weights.pt", model, args.model, steps=step, **info)
        if (out / "loss.csv").exists():
            plot_losses(out / "loss.csv", out / "loss.png")

    keys = ("loss", "pruned", "dense", "uncertainty", "cheap")
    new = not (out / "loss.csv").exists()
    csv_file = (out / "loss.csv").open("a", newline="")
    writer = csv.writer(csv_file)
    if new:
        writer.writerow(["step", *keys, "lr", "seconds_per_step", "wall_time"])
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=args.steps, initial=step, unit="step", desc=f"train {args.model}", dynamic_ncols=True)
    model.train()
    acc: dict[str, float] = {}
    n_acc, t_last = 0, time.perf_counter()
    try:
        while step < args.steps and not stop.now:
            lr = learning_rate(args, step)
            for g in opt.param_groups:
                g["lr"] = lr
            losses = losses_of(model, crops.batch(args.batch), args.train_fraction, args)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            step += 1
            if not math.isfinite(losses["loss"].item()):
                raise FloatingPointError(f"loss became {losses['loss'].item()} at step {step}")
            for k in keys:
                acc[k] = acc.get(k, 0.0) + losses[k].item()
            n_acc += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"pruned {losses['pruned'].item():.4f} cheap {losses['cheap'].item():.4f}")
            if step % args.log_every == 0 or step == args.steps:
                now = time.perf_counter()
                writer.writerow([step] + [f"{acc[k] / n_acc:.6f}" for k in keys]
                                + [f"{lr:.2e}", f"{(now - t_last) / n_acc:.3f}", f"{time.time():.0f}"])
                csv_file.flush()
                acc, n_acc, t_last = {}, 0, now
            if step % args.checkpoint_every == 0:
                save_checkpoint()
    finally:
        end_run(save_checkpoint, csv_file, bar, stop)
    if stop.now:
        print(f"train_vfi: interrupted at step {step}; re-run the same command to resume")
        return 130
    cal_dirs = [cache_dir(d) if args.inputs == "gt" else upscaled_cache_dir(d, args.inner) for d in args.data]
    cal = calibrate(model, cal_dirs, args.calibrate_frames, args.calibrate_tolerance,
                    progress=not args.no_progress)
    (out / "calibration.json").write_text(json.dumps(cal, indent=1) + "\n")
    save_weights(out / "weights.pt", model, args.model, steps=step, threshold=cal["threshold"],
                 calibration={k: v for k, v in cal.items() if k not in ("table", "frames")}, **info)
    print(f"train_vfi: done at step {step}; threshold {cal['threshold']:.3f} (refines "
          f"{100 * cal['fraction']:.1f}% of tiles on the calibration frames; PSNR cheap "
          f"{cal['psnr_cheap']:.2f}, dense {cal['psnr_dense']:.2f}, pruned {cal['psnr_pruned']:.2f} dB); "
          f"weights {out / 'weights.pt'}, log {out / 'loss.csv'}, plot {out / 'loss.png'}")
    return 0


def main(argv=None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
