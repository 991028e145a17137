"""Train the frame-interpolation refiner and its uncertainty head (``vfi`` passes).

    python -m stss_runtime train vfi --data data/fence_a data/gallery_a --out runs/vfi --steps 3000 --threads 1

Samples are triplets of display frames (a = k-1, m = k, b = k+1, k odd, as at run time);
the target is m's ground truth. Two kinds of inputs (``--inputs``):

  * ``gt``: the cheap interpolation (:func:`stss_runtime.ops.interpolate.cheap_interpolate`)
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

The loop, resume and logs are :mod:`.loop`'s; the learning rate decays (cosine) to
``min_lr``, by default a hundredth of ``lr``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import save_weights
from ..models import build_model
from ..models.vfi import CELL, INPUT_CHANNELS, TILE, VFI_PRESETS, PrunedRefiner, VfiRefiner
from ..ops import metrics
from ..ops.encoding import decode_color, display_transform
from .loop import (
    RunConfig,
    RunResult,
    TrainingError,
    TrainingRun,
    check_data_folders,
    config_dict,
    expect_at_least,
    expect_one_of,
)
from .plots import pyplot, read_log, save_figure
from .vfi_data import Crops, build_cache, build_upscaled_cache, cache_dir, upscaled_cache_dir

ERROR_EPS = 1e-5
INPUTS = ("gt", "upscaled")


@dataclass(frozen=True)
class VfiTrainConfig:
    """The refiner's data, crops, losses and calibration; the fields mean what the ``train vfi``
    options of the same names say."""

    data: tuple[Path, ...]
    inputs: str = "gt"
    inner: str = "temporal"
    model: str = "vfi_refiner"
    batch: int = 8
    crop: int = 96
    train_fraction: float = 0.3
    dense_weight: float = 1.0
    uncertainty_weight: float = 0.05
    flip: bool = True
    hard_crops: float = 0.5
    calibrate_frames: int = 3
    calibrate_tolerance: float = 0.05

    def __post_init__(self):
        expect_one_of("inputs", self.inputs, INPUTS)
        expect_one_of("model", self.model, sorted(VFI_PRESETS))
        if self.crop % TILE or self.crop < 2 * TILE:
            raise ValueError(f"crop: expected a multiple of {TILE} and >= {2 * TILE}, got {self.crop}")
        expect_at_least(1, batch=self.batch)
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction: expected a fraction in (0, 1], got {self.train_fraction}")


def cell_error(cheap: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Measured log10 MSE (encoded colour) of the cheap path per 8x8 cell: (B, 1, H/8, W/8)."""
    return torch.log10(F.avg_pool2d(((cheap - gt) ** 2).mean(1, keepdim=True), CELL) + ERROR_EPS)


def losses_of(model: VfiRefiner, batch: torch.Tensor, fraction: float, dense_weight: float,
              uncertainty_weight: float) -> dict[str, torch.Tensor]:
    """The losses of one batch of cached samples (the module docstring says which)."""
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
    loss = l_pruned + dense_weight * l_dense + uncertainty_weight * l_unc
    return {"loss": loss, "pruned": l_pruned, "dense": l_dense, "uncertainty": l_unc,
            "cheap": (cheap - gt).abs().mean()}


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
    to8 = lambda e: display_transform(decode_color(e)[0].permute(1, 2, 0).numpy())  # noqa: E731
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


def train(run_cfg: RunConfig, cfg: VfiTrainConfig, interpolator: Callable[[str], Any] | None = None) -> RunResult:
    """Train, then calibrate the pruning threshold (stored with the weights). ``inputs
    "upscaled"`` needs ``interpolator(inner)``, the run-time cheap interpolation pass
    (:func:`.vfi_data.build_upscaled_cache`)."""
    check_data_folders(cfg.data)
    torch.manual_seed(run_cfg.seed)
    out = Path(run_cfg.out)
    paths = []
    for folder in cfg.data:
        if cfg.inputs == "gt":
            paths += build_cache(folder, progress=run_cfg.progress)
        else:
            if interpolator is None:
                raise TrainingError("inputs upscaled: give the run-time interpolation pass (interpolator=)")
            paths += build_upscaled_cache(folder, interpolator, cfg.inner, progress=run_cfg.progress)
    model = build_model(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=run_cfg.lr)
    info = {"data": [str(d) for d in cfg.data], "tile": TILE,
            "inputs": ("cheap interpolation of the ground-truth frames a, b (display res)"
                       if cfg.inputs == "gt" else
                       f"run-time inputs: a, b upscaled by {cfg.inner} at half rate"),
            "init": str(run_cfg.init) if run_cfg.init else None}
    keys = ("loss", "pruned", "dense", "uncertainty", "cheap")
    run = TrainingRun(run_cfg, prog="train vfi", model_name=cfg.model, model=model, optimizer=opt, columns=keys,
                      plot=plot_losses, info=info, config=config_dict(run_cfg, cfg), postfix=("pruned", "cheap"))
    crops = Crops(paths, cfg.crop, seed=run_cfg.seed * 1000 + run.step, flip=cfg.flip, hard=cfg.hard_crops)
    result = run.run(lambda step: losses_of(model, crops.batch(cfg.batch), cfg.train_fraction, cfg.dense_weight,
                                            cfg.uncertainty_weight))
    if result.interrupted:
        return result
    cal_dirs = [cache_dir(d) if cfg.inputs == "gt" else upscaled_cache_dir(d, cfg.inner) for d in cfg.data]
    cal = calibrate(model, cal_dirs, cfg.calibrate_frames, cfg.calibrate_tolerance, progress=run_cfg.progress)
    (out / "calibration.json").write_text(json.dumps(cal, indent=1) + "\n")
    save_weights(out / "weights.pt", model, cfg.model, threshold=cal["threshold"],
                 calibration={k: v for k, v in cal.items() if k not in ("table", "frames")}, **run.info())
    print(f"train vfi: threshold {cal['threshold']:.3f} (refines {100 * cal['fraction']:.1f}% of tiles on the "
          f"calibration frames; PSNR cheap {cal['psnr_cheap']:.2f}, dense {cal['psnr_dense']:.2f}, pruned "
          f"{cal['psnr_pruned']:.2f} dB)")
    result.extra["calibration"] = cal
    return result
