"""Evaluate every method on a frame dump folder against its ground truth.

    python -m stss_runtime evaluate --data data/traffic_eval --json out/eval.json --crops out/crops

Each method runs over the sequence in display order (the runtime's schedule: with
``--generated-frames N``, display frame i is rendered when ``i % (N + 1) == 0`` and
extrapolated otherwise; N = 1, the default, alternates) and is scored on 8-bit
display-transformed frames: Y-channel PSNR and SSIM and FLIP, separately for SF and EF
frames, over all pixels, edge pixels (Canny edges of the ground truth) and hole pixels
(where the runtime's warp of the last shaded frame is invalid). With N > 1 each
extrapolation distance is also scored apart: ``ef1`` .. ``efN`` (frame k after a rendered
one, the instant k / (N + 1) of a render frame later), ``ef`` being all of them. A dump is
a sequence at the display rate, so one dump serves every N (render it at ``--fps`` =
(N + 1) x the render rate wanted: 120 for 4x at 30 rendered frames per second). A method
whose weights are missing is skipped with the reason.

Temporal stability (:class:`Stability`, in the JSON under ``"stability"``): how much each
output's error against the ground truth changes from one display frame to the next along
the renderer's motion: flicker a still image would not have. Lower is better.

Passes that add latency (frame interpolation: ``latency_frames = N``, one rendered frame)
return display frame i-N when handed frame i; they synthesise the N frames between two
rendered ones, and their outputs are scored against the frame they show, so every method is
compared on the same display frames. Passes that report per-frame statistics
(``last_stats``, e.g. the fraction of tiles refined) get their means in ``"pass_stats"``.

The motion pass (``--motion-tiers``) is scored on consecutive frame pairs against the
renderer's exact motion: end-point error (render pixels) over all pixels, credible and
non-credible pixels (tier 0's credibility mask) and pixels with object motion above
0.5 px, with the prior an engine without object motion vectors would hand over
(``--motion-prior camera``: the camera-induced motion from depth and the two cameras).
The dumps carry colour on every frame, so both frames of every pair have colour.
"""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import framedump
from ..checkpoint import WeightsError
from ..frame import frame_from_dump
from ..history import History
from ..ops import metrics
from ..ops import warp as W
from ..ops.encoding import display_transform
from ..passes import PASSES, PassError, StssPass, VfiPass, create_pass

DEFAULT_METHODS = ("stss", "stss_taa", "stss_recurrent", "bilinear", "bicubic", "temporal", "warp_fill", "two_stage", "vfi_cheap",
                   "vfi", "vfi_dense")
MOTION_PRIORS = ("camera", "zero")
#: Generated (extrapolated) display frames per rendered one the evaluation can schedule.
GENERATED_FRAMES = (1, 2, 3)


def frame_kind(index: int, generated_frames: int = 1) -> str:
    """``"sf"`` for a rendered display frame, else the extrapolated frame's kind: ``"ef"``
    with one generated frame per rendered one, ``"ef<k>"`` (k = its distance from the
    rendered frame, 1 .. N) with N > 1."""
    k = index % (generated_frames + 1)
    if k == 0:
        return "sf"
    return "ef" if generated_frames == 1 else f"ef{k}"


def frame_kinds(generated_frames: int = 1) -> tuple[str, ...]:
    """The kinds scored for N generated frames: ``sf``, ``ef`` and, with N > 1, ``ef1`` .. ``efN``."""
    return ("sf", "ef") + (tuple(f"ef{k}" for k in range(1, generated_frames + 1)) if generated_frames > 1 else ())


@dataclass(frozen=True)
class EvaluateConfig:
    """What to evaluate on which dump; the fields mean what the ``evaluate`` options of the
    same names say."""

    data: Path  # frame dump folder (any scene)
    methods: tuple[str, ...] = DEFAULT_METHODS
    weights: Path | None = None  # STSS weights for stss and stss_taa (default: the shipped ones)
    frames: int = 0  # evaluate only the first N frames (0: all)
    warmup: int = 6  # first frames run but not scored, so histories fill
    crops: Path | None = None  # write side-by-side PNG crops here
    motion_tiers: tuple[int, ...] = (0, 1, 2)
    motion_prior: str = "camera"
    progress: bool = True
    generated_frames: int = 1  # display frames extrapolated per rendered one: i is rendered when i % (N+1) == 0
    backend: str = "torch"  # the neural passes' back-end (see stss_runtime.backends)
    precision: str = "fp32"
    int8: bool = False  # int8 convolutions (onnxruntime, openvino)

    def __post_init__(self):
        bad = [m for m in self.methods if m not in PASSES]
        if bad or not self.methods:
            raise ValueError(f"methods: expected names from {', '.join(PASSES)}, got {', '.join(bad) or 'none'}")
        if any(t not in (0, 1, 2) for t in self.motion_tiers):
            raise ValueError(f"motion_tiers: expected tiers from 0,1,2, got {list(self.motion_tiers)}")
        if self.motion_prior not in MOTION_PRIORS:
            raise ValueError(f"motion_prior: expected one of {', '.join(MOTION_PRIORS)}, got {self.motion_prior!r}")
        if isinstance(self.generated_frames, bool) or self.generated_frames not in GENERATED_FRAMES:
            raise ValueError(f"generated_frames: expected one of {', '.join(map(str, GENERATED_FRAMES))}, "
                             f"got {self.generated_frames!r}")
        if self.frames < 0 or self.warmup < 0:
            raise ValueError(f"frames / warmup: expected >= 0, got {self.frames} / {self.warmup}")


def hole_masks(folder: Path, meta: dict, indices: list[int], generated_frames: int = 1) -> dict[int, np.ndarray]:
    """Display-resolution hole masks (True = hole) per frame from a reference runtime: for EF
    frames where the last shaded frame's warp is invalid, for SF frames where the previous
    shaded frame's is."""
    hist = History(frames=1)
    out = {}
    (dw, dh) = meta["display_size"]
    with torch.inference_mode():
        for i in indices:
            f = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % (generated_frames + 1) == 0))
            inp = hist.step(f, with_history=False)
            valid = inp.mask if not f.shaded else hist.previous_valid
            if valid is None:
                out[i] = np.zeros((dh, dw), bool)
                continue
            v = valid[0, 0].numpy() < 0.5
            out[i] = np.repeat(np.repeat(v, dh // v.shape[0], 0), dw // v.shape[1], 1)
    return out


def make_pass(name: str, weights: Path | None, backend: str = "torch", precision: str = "fp32",
              int8: bool = False, generated_frames: int = 1):
    """Pass ``name`` with ``weights`` (STSS passes) on ``backend`` / ``precision`` (neural
    passes; pass ``stss`` on the CPU back-ends as the plugin runs it, the history's work in
    the graph); ``int8``: int8 convolutions; ``generated_frames``: the frames an
    interpolation pass synthesises between two rendered ones."""
    if issubclass(PASSES[name], VfiPass):  # interpolation: torch fp32 only
        return create_pass(name, generated_frames=generated_frames)
    kwargs = {}
    if PASSES[name].runtime_options and (backend, precision, int8) != ("torch", "fp32", False):
        kwargs = {"backend": backend, "precision": precision, **({"int8": True} if int8 else {})}
    cls = PASSES[name]
    if name == "stss":
        from ..passes.stss_fused import StssFusedPass, fused_applies

        if fused_applies(backend, precision, "cpu"):
            cls = StssFusedPass
    if weights is not None and issubclass(PASSES[name], StssPass):
        from ..checkpoint import load_weights
        from ..models import STSS, RecurrentStss
        from ..passes.stss_recurrent import StssRecurrentPass

        model, info = load_weights(weights)
        want = RecurrentStss if issubclass(PASSES[name], StssRecurrentPass) else STSS
        if not isinstance(model, want):  # the recurrent network for its pass, STSS for the others
            raise WeightsError(f"--weights {weights} holds a {info.get('model')!r} model, not for pass {name}")
        return cls(model=model, **kwargs)
    return cls(**kwargs) if cls is not PASSES[name] else create_pass(name, **kwargs)


def consecutive_geometry(folder: Path, meta: dict, indices: list[int]) -> dict[int, tuple]:
    """Per frame i > first: (display-resolution offset to frame i-1 in display pixels,
    display-resolution mask of pixels whose frame-i-1 surface is the same, 1 = same), from
    the runtime's own hole test between consecutive display frames. Stored at render
    resolution (motion, depth, valid) and brought to display resolution when used."""
    hist = History(frames=1)
    out = {}
    with torch.inference_mode():
        for i in indices:
            f = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=True)  # dumps have colour
            hist.step(f, with_history=False)
            if hist.previous_valid is not None:
                out[i] = (f.motion, f.depth, hist.previous_valid)
    return out


class Stability:
    """Temporal stability of one method: the mean absolute change, between consecutive
    display frames, of the output's error against the ground truth, the previous frame's
    error warped to the current one by the renderer's motion (8-bit display levels, over the
    pixels whose surface the previous frame also shows). A still image that is wrong but
    steady scores 0; flicker, shimmering and crawling edges that the ground truth does not
    have score above 0. Lower is better."""

    def __init__(self, display_size: tuple[int, int], geometry: dict[int, tuple], generated_frames: int = 1):
        self.size, self.geometry, self.generated_frames = display_size, geometry, generated_frames
        self.prev: tuple[int, torch.Tensor] | None = None
        self.sums = {k: [0.0, 0] for k in frame_kinds(generated_frames)}

    def add(self, index: int, image_u8: np.ndarray, gt_u8: np.ndarray) -> None:
        err = torch.from_numpy(image_u8.astype(np.float32) - gt_u8.astype(np.float32)).permute(2, 0, 1)[None]
        if self.prev is not None and self.prev[0] == index - 1 and index in self.geometry:
            motion, depth, valid = self.geometry[index]
            offset = W.upsample_motion(motion, depth, self.size)
            keep = W.upsample_mask(valid, self.size)[0, 0] > 0.5
            change = (err - W.sample(self.prev[1], offset)).abs().mean(1)[0]
            if bool(keep.any()):
                kind = frame_kind(index, self.generated_frames)
                for k in {kind, "sf" if kind == "sf" else "ef"}:
                    self.sums[k][0] += float(change[keep].mean())
                    self.sums[k][1] += 1
        self.prev = (index, err)

    def mean(self) -> dict[str, float]:
        return {k: (s / n if n else float("nan")) for k, (s, n) in self.sums.items()}


def evaluate(cfg: EvaluateConfig) -> dict:
    """Every method of ``cfg`` over the dump: the results dict the JSON file holds."""
    folder: Path = cfg.data
    meta = framedump.read_meta(folder)
    indices = framedump.existing_frames(folder)
    if cfg.frames:
        indices = indices[: cfg.frames]
    if indices != list(range(len(indices))) or len(indices) <= cfg.warmup:
        raise framedump.FrameDumpError(f"{folder} needs frames 0..N-1 with N > the warm-up "
                                       f"({cfg.warmup}); found {len(indices)}")
    scored = [i for i in indices if i >= cfg.warmup]
    n_gen = cfg.generated_frames
    kinds = frame_kinds(n_gen)

    def kinds_of(i: int) -> tuple[str, ...]:  # what frame i is scored as: its kind, and "ef" for every EF
        k = frame_kind(i, n_gen)
        return (k,) if k in ("sf", "ef") else ("ef", k)

    holes = hole_masks(folder, meta, indices, n_gen)
    gts = {i: display_transform(framedump.read_frame(folder, i)["gt"].astype(np.float32)) for i in scored}
    results = {"data": str(folder), "scene": meta["scene"], "generated_frames": n_gen,
               "frames": {k: sum(k in kinds_of(i) for i in scored) for k in kinds},
               "methods": {}, "time_ms": {}, "skipped": {},
               "runtime": {"backend": cfg.backend, "precision": cfg.precision, "int8": cfg.int8}}
    outputs_for_crops: dict[str, dict[int, np.ndarray]] = {}
    crop_frames = _crop_frames(scored, n_gen)
    geometry = consecutive_geometry(folder, meta, indices)
    display_size = tuple(meta["display_size"])
    for name in cfg.methods:
        try:
            p = make_pass(name, cfg.weights, cfg.backend, cfg.precision, cfg.int8, n_gen)
            p.setup(tuple(meta["render_size"]), tuple(meta["display_size"]))
        except (WeightsError, PassError) as e:  # PassError: a fixed-scale network, a dump at another ratio
            results["skipped"][name] = str(e)
            print(f"evaluate: skipping {name}: {e}", file=sys.stderr)
            continue
        acc = {k: metrics.MetricAccumulator() for k in kinds}
        stability = Stability(display_size, geometry, n_gen)
        latency = p.latency_frames
        stats: dict[str, list[float]] = {}
        times = []
        times_by_kind: dict[str, list[float]] = {}  # by the kind of the frame handed over
        it = indices
        if cfg.progress:
            from tqdm import tqdm

            it = tqdm(indices, desc=f"evaluate {name}", unit="frame", leave=False)
        for i in it:
            frame = frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % (n_gen + 1) == 0))
            t0 = time.perf_counter()
            out = p(frame)
            times.append((time.perf_counter() - t0) * 1e3)
            times_by_kind.setdefault(frame_kind(i, n_gen), []).append(times[-1])
            shown = i - latency  # the display frame this output is
            if shown < cfg.warmup:
                continue
            for k, v in (p.last_stats or {}).items():
                if isinstance(v, (int, float)):
                    stats.setdefault(k, []).append(float(v))
            img = display_transform(out[0].permute(1, 2, 0).cpu().numpy())
            scores = metrics.evaluate_pair(gts[shown], img, holes[shown])
            for k in kinds_of(shown):
                acc[k].add(scores)
            stability.add(shown, img, gts[shown])
            if shown in crop_frames:
                outputs_for_crops.setdefault(name, {})[shown] = img
        results["methods"][name] = {k: a.mean() for k, a in acc.items()}
        results.setdefault("stability", {})[name] = stability.mean()
        results["time_ms"][name] = float(np.median(times[cfg.warmup:]))
        if n_gen > 1:  # per extrapolation distance: what each generated frame costs (the rendered one: sf)
            results.setdefault("time_ms_by_kind", {})[name] = {
                k: float(np.median(v[1:] if len(v) > 1 else v)) for k, v in sorted(times_by_kind.items())}
        if stats:
            results.setdefault("pass_stats", {})[name] = {k: float(np.mean(v)) for k, v in stats.items()}
    if cfg.motion_tiers:
        results["motion"] = evaluate_motion(folder, meta, indices, cfg)
    if cfg.crops:
        write_crops(cfg.crops, results, gts, outputs_for_crops, holes)
    return results


def evaluate_motion(folder: Path, meta: dict, indices: list[int], cfg: EvaluateConfig) -> dict:
    """End-point errors of each motion tier on the pairs (i-1, i), i >= max(1, warm-up)."""
    from ..motion import MotionEstimator, end_point_error

    out: dict = {"prior": cfg.motion_prior, "pairs": 0}
    estimators = {}
    for t in cfg.motion_tiers:
        try:
            estimators[t] = MotionEstimator(t)
        except WeightsError as e:
            out[f"tier{t}"] = {"skipped": str(e)}
            print(f"evaluate: skipping motion tier {t}: {e}", file=sys.stderr)
    regions = ("all", "credible", "noncredible", "moving")
    acc = {t: {r: [0.0, 0] for r in regions} for t in estimators}
    extra = {t: {"ms": [], "tiles_estimated": [], "iterations_mean": [], "iterations_max": []} for t in estimators}
    pairs = [i for i in indices if i >= max(1, cfg.warmup)]
    it = pairs
    if not not cfg.progress:
        from tqdm import tqdm

        it = tqdm(pairs, desc="evaluate motion", unit="pair", leave=False)
    prev = None
    for i in it:
        if prev is None or prev.index != i - 1:
            prev = frame_from_dump(framedump.read_frame(folder, i - 1), meta, i - 1)
        cur = frame_from_dump(framedump.read_frame(folder, i), meta, i)
        masks = None
        for t, est in estimators.items():
            t0 = time.perf_counter()
            res = est.estimate(cur, prev, cfg.motion_prior)
            extra[t]["ms"].append((time.perf_counter() - t0) * 1e3)
            if masks is None:  # the same split for every tier: tier 0's credibility
                credible = res.credibility >= 0.5
                moving = (cur.motion - res.camera).norm(dim=1, keepdim=True) > 0.5
                masks = {"all": None, "credible": credible, "noncredible": ~credible, "moving": moving}
            for r in regions:
                s_, n_ = end_point_error(res.flow, cur.motion, masks[r])
                acc[t][r][0] += s_
                acc[t][r][1] += n_
            extra[t]["tiles_estimated"].append(res.tiles_estimated)
            extra[t]["iterations_mean"].append(res.iterations_mean)
            extra[t]["iterations_max"].append(res.iterations_max)
        prev = cur
    out["pairs"] = len(pairs)
    for t in estimators:
        a = acc[t]
        row = {"epe": a["all"][0] / max(a["all"][1], 1)}
        for r in regions[1:]:
            row[f"epe_{r}"] = a[r][0] / a[r][1] if a[r][1] else float("nan")
        total = max(a["all"][1], 1)
        row["fraction_noncredible"] = a["noncredible"][1] / total
        row["fraction_moving"] = a["moving"][1] / total
        row["ms"] = float(np.median(extra[t]["ms"])) if extra[t]["ms"] else float("nan")
        if t >= 1:
            row["tiles_estimated"] = float(np.mean(extra[t]["tiles_estimated"]))
        if t == 2:
            row["iterations_mean"] = float(np.mean(extra[t]["iterations_mean"]))
            row["iterations_max"] = int(max(extra[t]["iterations_max"], default=0))
        out[f"tier{t}"] = row
    return out


def format_stability(stability: dict) -> str:
    """Temporal stability per method and frame kind (:class:`Stability`), best marked."""
    kinds = list(next(iter(stability.values()), {"sf": 0, "ef": 0}))
    best = {k: min((v[k] for v in stability.values() if not math.isnan(v.get(k, math.nan))), default=math.nan)
            for k in kinds}
    cell = lambda v, k: "-" if math.isnan(v) else f"{v:.3f}" + ("*" if f"{v:.3f}" == f"{best[k]:.3f}" else " ")  # noqa: E731
    w = max([len("method")] + [len(m) for m in stability]) + 1
    lines = ["temporal stability: mean |change of (output - ground truth)| between consecutive frames after "
             "the motion, 8-bit levels (lower is better; * best)",
             f"{'method':<{w}}" + "".join(f"{k.upper():>9}" for k in kinds)]
    lines += [f"{m:<{w}}" + "".join(f"{cell(v.get(k, math.nan), k):>9}" for k in kinds) for m, v in stability.items()]
    return "\n".join(lines)


def format_distances(results: dict) -> str:
    """With N > 1 generated frames: per method, PSNR / FLIP / stability at each
    extrapolation distance (``ef1`` .. ``efN``), their mean, and the rendered frames'; the
    interpolation passes (latency > 0) marked."""
    n = results.get("generated_frames", 1)
    if n < 2:
        return ""
    kinds = [f"ef{k}" for k in range(1, n + 1)]
    names = {m: m + (" (+latency)" if m in PASSES and PASSES[m].latency_frames else "") for m in results["methods"]}
    w = max([len("method")] + [len(v) for v in names.values()]) + 1
    head = f"{'method':<{w}}" + "".join(f"{k.upper() + ' PSNR/FLIP/stab':>24}" for k in kinds) + f"{'EF mean PSNR':>14}" \
        + f"{'SF PSNR':>9}"
    lines = [f"per extrapolation distance ({n} generated frames per rendered one; frame k at k/{n + 1} of a render "
             f"frame): Y-PSNR dB, FLIP, temporal stability (8-bit levels)", head]
    for m, r in results["methods"].items():
        st = results.get("stability", {}).get(m, {})
        cells = "".join(f"{r[k]['all']['psnr']:>10.2f} /{r[k]['all']['flip']:.4f} /{st.get(k, math.nan):.3f}"
                        for k in kinds)
        mean = float(np.mean([r[k]["all"]["psnr"] for k in kinds]))
        lines.append(f"{names[m]:<{w}}{cells}{mean:>14.2f}{r['sf']['all']['psnr']:>9.2f}")
    return "\n".join(lines)


def format_motion(motion: dict) -> str:
    """The motion section of the results as a small text table."""
    lines = [f"motion pass: end-point error (render px) against the renderer's motion, "
             f"{motion['pairs']} pairs, prior = {motion['prior']}",
             f"{'tier':<6}{'all':>8}{'credible':>10}{'non-cred':>10}{'moving':>9}{'ms':>8}  notes"]
    for t in (0, 1, 2):
        row = motion.get(f"tier{t}")
        if row is None:
            continue
        if "skipped" in row:
            lines.append(f"{'tier' + str(t):<6}skipped: {row['skipped']}")
            continue
        notes = []
        if "tiles_estimated" in row:
            notes.append(f"tiles estimated {row['tiles_estimated']:.0%}")
        if "iterations_mean" in row:
            notes.append(f"iterations mean {row['iterations_mean']:.2f}, max {row['iterations_max']}")
        lines.append(f"{'tier' + str(t):<6}{row['epe']:>8.3f}{row['epe_credible']:>10.3f}"
                     f"{row['epe_noncredible']:>10.3f}{row['epe_moving']:>9.3f}{row['ms']:>8.0f}  " + ", ".join(notes))
    t0 = motion.get("tier0", {})
    if "fraction_noncredible" in t0:
        lines.append(f"non-credible pixels: {t0['fraction_noncredible']:.1%}; pixels with object motion "
                     f"> 0.5 px: {t0['fraction_moving']:.1%}")
    return "\n".join(lines)


def _crop_kinds(generated_frames: int) -> tuple[str, ...]:
    """The frame kinds the crops show: SF and each extrapolation distance."""
    return ("sf",) + tuple(k for k in frame_kinds(generated_frames)[1:] if generated_frames == 1 or k != "ef")


def _crop_frames(scored: list[int], generated_frames: int = 1) -> set[int]:
    """The middle scored frame of each kind of :func:`_crop_kinds` (none unless every kind has one)."""
    by_kind = [[i for i in scored if frame_kind(i, generated_frames) == k] for k in _crop_kinds(generated_frames)]
    return {f[len(f) // 2] for f in by_kind} if all(by_kind) else set()


def is_baseline(method: str) -> bool:
    """A pass STSS must beat: no learned model, and no latency (interpolation sees the next
    rendered frame, so it is no extrapolation baseline)."""
    cls = PASSES.get(method)
    return cls is not None and not cls.neural and cls.latency_frames == 0


def best_baseline(results: dict, kind: str) -> str | None:
    cands = [(m, r[kind]["all"]["psnr"]) for m, r in results["methods"].items()
             if is_baseline(m) and not math.isnan(r[kind]["all"]["psnr"])]
    return max(cands, key=lambda c: c[1])[0] if cands else None


def crop_label(scene: str) -> str:
    """A file-name-safe label for a scene: its name, or a scene file's stem (a scene file's
    path must not be joined to the crops folder: that would write beside the scene)."""
    name = str(scene)
    if "/" in name or "\\" in name or name.endswith(".json"):
        name = Path(name.replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "scene"


# The neural passes the crops show, in this order, beside the ground truth and the best baseline.
CROP_PASSES = (("stss", "STSS"), ("stss_taa", "STSS + accumulation (stss_taa)"),
               ("stss_recurrent", "STSS + learned accumulation (stss_recurrent)"))


def write_crops(out_dir: Path, results, gts, outputs, holes, size: int = 192) -> list[Path]:
    """Ground truth | each evaluated STSS pass | best baseline, at the spot where the
    baseline errs most; one sheet per frame kind, written into ``out_dir``. Returns the
    files written."""
    from PIL import Image, ImageDraw

    out_dir.mkdir(parents=True, exist_ok=True)
    n_gen = results.get("generated_frames", 1)
    ours = [(m, label) for m, label in CROP_PASSES if m in outputs]
    written = []
    for name_by_kind in _crop_kinds(n_gen):
        base = best_baseline(results, name_by_kind)
        frames = [i for i in next(iter(outputs.values()), {}) if frame_kind(i, n_gen) == name_by_kind]
        if not frames or base is None or base not in outputs or not ours:
            continue
        i = frames[0]
        gt, theirs = gts[i], outputs[base][i]
        err = np.abs(theirs.astype(np.float32) - gt).mean(-1)
        h, w = err.shape
        s = min(size, h, w)
        tiles = err[: h // s * s, : w // s * s].reshape(h // s, s, w // s, s).mean((1, 3))
        ty, tx = np.unravel_index(np.argmax(tiles), tiles.shape)
        y0, x0 = ty * s, tx * s
        panels = [gt] + [outputs[m][i] for m, _ in ours] + [theirs]
        labels = ["ground truth"] + [label for _, label in ours] + [f"best baseline: {base}"]
        sheet = Image.new("RGB", (len(panels) * 2 * s, 2 * s + 16), (0, 0, 0))
        d = ImageDraw.Draw(sheet)
        for k, (img, label) in enumerate(zip(panels, labels)):
            crop = Image.fromarray(img[y0:y0 + s, x0:x0 + s]).resize((2 * s, 2 * s), Image.NEAREST)
            sheet.paste(crop, (k * 2 * s, 16))
            d.text((k * 2 * s + 4, 2), label, fill=(255, 255, 255))
        path = out_dir / f"{crop_label(results['scene'])}_{name_by_kind}_frame{i:06d}.png"
        sheet.save(path)
        written.append(path)
    return written


def format_report(results: dict, warmup: int) -> str:
    """The results as the text ``evaluate`` prints: the table, times, pass statistics, the
    motion pass, what was skipped."""
    rt = results.get("runtime", {})
    on = "" if rt.get("backend", "torch") == "torch" and rt.get("precision", "fp32") == "fp32" and not rt.get("int8") \
        else f"; neural passes on {rt['backend']} {rt['precision']}{' int8' if rt.get('int8') else ''}"
    n_gen = results.get("generated_frames", 1)
    per = "" if n_gen == 1 else " (" + ", ".join(f"{results['frames'][f'ef{k}']} {f'ef{k}'.upper()}"
                                                  for k in range(1, n_gen + 1)) + f"; {n_gen} generated per rendered)"
    lines = [f"{results['scene']} ({results['data']}): {results['frames']['sf']} SF + "
             f"{results['frames']['ef']} EF frames{per} scored after {warmup} warm-up frames{on}",
             metrics.format_table(results),
             "median time per frame (ms, this machine): " +
             ", ".join(f"{k} {v:.0f}" for k, v in results["time_ms"].items())]
    for k, v in results.get("pass_stats", {}).items():
        lines.append(f"{k}: " + ", ".join(f"{s} {x:.3g}" for s, x in v.items()))
    for k, v in results.get("time_ms_by_kind", {}).items():
        lines.append(f"{k}: median ms per frame handed over, by kind: " +
                     ", ".join(f"{kind} {ms:.0f}" for kind, ms in v.items()))
    if results.get("stability"):
        lines.append(format_stability(results["stability"]))
    if n_gen > 1 and results["methods"]:
        lines.append(format_distances(results))
    if "motion" in results:
        lines.append(format_motion(results["motion"]))
    lines += [f"skipped {k}: {v}" for k, v in results["skipped"].items()]
    return "\n".join(lines)
