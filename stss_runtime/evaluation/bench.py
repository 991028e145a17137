"""Speed of the joint STSS pass and of the two-stage pipeline on every back-end.

    python -m stss_runtime bench                       # CPU defaults: 320x180, 480x270 -> 2x
    python -m stss_runtime bench --device cuda         # GPU defaults: 960x540, 1280x720, 1920x1080
    python -m stss_runtime bench --json out/bench.json --plot out/bench.png
    python -m stss_runtime bench --pipelines joint,joint_taa,two_stage   # + STSS with accumulation

Each (back-end, precision) runs in its own process (one library's idle threads must not
slow another's), with both pipelines in that process so their ratio is measured under the
same conditions. Per output frame (rendered and extrapolated frames alternate, as the
display sees them): median and p95 of the whole pass, and the median of each stage —
``prepare`` (history: motion chaining, hole masks; two-stage: its display-resolution
warps), ``backend`` (the graph on the back-end: colour warps, jitter correction and network
for the joint pass; the network for the two-stage one), ``output`` (crop, decode to linear
colour; ``joint_taa``: also the display-resolution accumulation of pass ``stss_taa``). On
CUDA every stage boundary is synchronised. Frames are synthetic G-buffers (smooth colour,
depth and motion): the cost does not depend on the picture.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..synthetic import synthetic_frames

DEFAULT_SIZES = {"cpu": ["320x180", "480x270"], "cuda": ["960x540", "1280x720", "1920x1080"]}
PIPELINES = ("joint", "joint_taa", "two_stage")
PRECISIONS = ("fp32", "fp16")


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (no GPU for device cuda)."""


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.split("x"))
    return w, h


def device_gmacs_per_s(device: str, precision: str, seconds: float = 1.0) -> float:
    """Measured multiply-add throughput of a large matrix product: the ceiling the
    networks' convolutions are compared with."""
    dtype = torch.float16 if precision == "fp16" and device == "cuda" else torch.float32
    n = 4096 if device == "cuda" else 1024
    a = torch.randn((n, n), device=device, dtype=dtype)
    b = torch.randn((n, n), device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if device == "cuda" and reps % 10 == 0:
            sync()
    sync()
    return n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def _build_pass(pipeline: str, backend: str, precision: str, device: str, size, cache_dir, options=None):
    from ..models import build_model
    from ..passes import StssPass, StssTaaPass, TwoStagePass

    opts = {"backend": backend, "precision": precision, "device": device, **(options or {})}
    if backend != "torch":
        opts["cache_dir"] = cache_dir
    if pipeline in ("joint", "joint_taa"):
        torch.manual_seed(0)
        p = (StssPass if pipeline == "joint" else StssTaaPass)(model=build_model("stss"), **opts)
    else:
        torch.manual_seed(0)
        p = TwoStagePass(supersampler=build_model("supersampling"), extrapolator=build_model("extranet"), **opts)
    p.setup(size, (2 * size[0], 2 * size[1]))
    return p


def _gmacs(pipeline: str, size) -> float:
    """Network multiply-adds per output frame (rendered and extrapolated frames averaged)."""
    from ..models import build_model, count_macs
    from ..passes.stss import padded_size

    w, h = padded_size(size)
    if pipeline in ("joint", "joint_taa"):
        return count_macs(build_model("stss"), h, w) / 1e9
    sf = count_macs(build_model("supersampling"), h, w)
    ef = count_macs(build_model("extranet"), 2 * h, 2 * w)
    return (sf + ef) / 2 / 1e9


def measure(pipeline: str, backend: str, precision: str, device: str, size, frames: int, warmup: int,
            cache_dir, options: dict | None = None, variant: str = "") -> dict:
    """One row: timings of ``frames`` output frames after ``warmup`` frames (both rounded
    up to even: rendered and extrapolated frames alternate, and the time per output frame
    is the mean of each such pair; median and p95 are over pairs). ``options`` go to the
    back-end's runner; ``variant`` names them in the row."""
    frames, warmup = frames + frames % 2, warmup + warmup % 2
    p = _build_pass(pipeline, backend, precision, device, size, cache_dir, options)
    seq = synthetic_frames(size, warmup + frames, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    totals, stages = [], {"prepare": [], "backend": [], "output": []}
    with torch.inference_mode():
        for i, f in enumerate(seq):
            sync()
            t0 = time.perf_counter()
            staged = p.prepare(f)
            sync()
            t1 = time.perf_counter()
            encoded = p.run(staged)
            sync()
            t2 = time.perf_counter()
            out = p.finish(encoded)
            sync()
            t3 = time.perf_counter()
            if not torch.isfinite(out).all():
                raise RuntimeError(f"{pipeline} on {backend} {precision}: non-finite output at frame {i}")
            if i >= warmup:
                totals.append((t3 - t0) * 1e3)
                for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2)):
                    stages[k].append(v * 1e3)
    pairs = [(a + b) / 2 for a, b in zip(totals[::2], totals[1::2])]
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:  # the process's peak resident set (libraries included)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w, h = size
    return {"backend": backend, "variant": variant, "precision": precision, "device": device, "render_size": [w, h],
            "display_size": [2 * w, 2 * h], "pipeline": pipeline,
            "median_ms": float(np.median(pairs)), "p95_ms": float(np.percentile(pairs, 95)),
            "rendered_ms": float(np.median(totals[::2])), "extrapolated_ms": float(np.median(totals[1::2])),
            "gmacs": round(_gmacs(pipeline, size), 3), "peak_mem_mb": round(peak, 1),
            "stages_ms": {k: float(np.mean(v)) for k, v in stages.items()}, "frames": frames}


def _worker(config: dict) -> list[dict]:
    if config.get("threads"):
        torch.set_num_threads(config["threads"])
    rows = []
    throughput = device_gmacs_per_s(config["device"], config["precision"])
    for size in config["sizes"]:
        for pipeline in config["pipelines"]:
            row = measure(pipeline, config["backend"], config["precision"], config["device"], tuple(size),
                          config["frames"], config["warmup"], config["cache_dir"], config.get("options"),
                          config.get("variant", ""))
            row["device_gmacs_per_s"] = round(throughput, 1)
            rows.append(row)
    return rows


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads"


def format_table(rows: list[dict]) -> str:
    head = ("| back-end | precision | render -> display | pipeline | median ms | p95 ms | rendered / "
            "extrapolated ms | prepare | back-end | output | GMACs | achieved GMAC/s | peak MB | "
            "joint / two-stage |")
    lines = [head, "|" + " --- |" * 14]
    for r in rows:
        twin = next((o for o in rows if o["pipeline"] == "two_stage" and o["backend"] == r["backend"]
                     and o.get("variant") == r.get("variant") and o["precision"] == r["precision"]
                     and o["render_size"] == r["render_size"]), None)
        ratio = f"{r['median_ms'] / twin['median_ms']:.2f}" if twin and r["pipeline"] == "joint" else ""
        s = r["stages_ms"]
        size = f"{r['render_size'][0]}x{r['render_size'][1]} -> {r['display_size'][0]}x{r['display_size'][1]}"
        name = r["backend"] + (f" ({r['variant']})" if r.get("variant") else "")
        lines.append(f"| {name} | {r['precision']} | {size} | {r['pipeline']} | {r['median_ms']:.1f} | "
                     f"{r['p95_ms']:.1f} | {r['rendered_ms']:.1f} / {r['extrapolated_ms']:.1f} | "
                     f"{s['prepare']:.1f} | {s['backend']:.1f} | {s['output']:.1f} | "
                     f"{r['gmacs']:.1f} | {r['gmacs'] / (s['backend'] / 1e3):.0f} | {r['peak_mem_mb']:.0f} | {ratio} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({tuple(r["render_size"]) for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        sel = [r for r in rows if tuple(r["render_size"]) == size]
        label = lambda r: "\n".join(v for v in (r["backend"], r.get("variant"), r["precision"]) if v)  # noqa: E731
        labels = sorted({label(r) for r in sel})
        x = np.arange(len(labels))
        shown = [q for q in PIPELINES if any(r["pipeline"] == q for r in sel)]
        bar = 0.8 / max(len(shown), 1)
        for k, pipeline in enumerate(shown):
            vals = [next((r["median_ms"] for r in sel if label(r) == lab
                          and r["pipeline"] == pipeline), np.nan) for lab in labels]
            ax.bar(x + (k - (len(shown) - 1) / 2) * bar, vals, bar, label=pipeline.replace("_", "-"))
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("ms per output frame (median)")
        ax.set_title(f"{size[0]}x{size[1]} -> {2 * size[0]}x{2 * size[1]}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _variants(backend: str, device: str) -> list[tuple[str, dict]]:
    """Runner options timed apart: for torch, plain eager NCHW (the reference every
    speed-up is quoted against) and channels-last; on CUDA also without / with CUDA graphs."""
    if backend != "torch":
        return [("", {})]
    if device == "cpu":
        return [("eager nchw", {"channels_last": False}), ("channels-last", {"channels_last": True})]
    return [("eager nchw", {"channels_last": False, "cuda_graph": False}),
            ("channels-last", {"channels_last": True, "cuda_graph": False}),
            ("cuda graph", {"channels_last": True, "cuda_graph": True})]


@dataclass(frozen=True)
class BenchConfig:
    """Which rows to time; the fields mean what the ``bench`` options of the same names say."""

    device: str = "cpu"
    backends: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")
    precisions: tuple[str, ...] = ("fp32", "fp16")
    sizes: tuple[tuple[int, int], ...] | None = None  # render sizes (display is 2x); None: per device
    pipelines: tuple[str, ...] = ("joint", "two_stage")
    frames: int | None = None  # None: cpu 12, cuda 200
    warmup: int | None = None  # None: cpu 2, cuda 20
    threads: int | None = None
    cpu_fp16: bool = False
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        from ..backends import BACKENDS

        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected cpu or cuda, got {self.device!r}")
        for name, values, valid in (("backends", self.backends, BACKENDS), ("precisions", self.precisions, PRECISIONS),
                                    ("pipelines", self.pipelines, PIPELINES)):
            bad = [v for v in values if v not in valid]
            if bad or not values:
                raise ValueError(f"{name}: expected some of {', '.join(valid)}, got {', '.join(bad) or 'nothing'}")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames: expected at least 1, got {self.frames}")
        if self.warmup is not None and self.warmup < 0:
            raise ValueError(f"warmup: expected at least 0, got {self.warmup}")


@dataclass
class BenchResult:
    rows: list[dict]
    skipped: list[str]
    info: dict
    frames: int
    warmup: int


def run_bench(cfg: BenchConfig) -> BenchResult:
    """Time every (back-end, variant, precision) of ``cfg``, each in its own process."""
    from ..backends import availability

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise BenchError("device cuda, but this PyTorch sees no CUDA GPU (CPU build or no driver)")
    sizes = [list(s) for s in (cfg.sizes or [_size(s) for s in DEFAULT_SIZES[cfg.device]])]
    frames = cfg.frames or (200 if cfg.device == "cuda" else 12)
    warmup = cfg.warmup if cfg.warmup is not None else (20 if cfg.device == "cuda" else 2)
    avail = availability()
    configs, skipped = [], []
    for b in cfg.backends:
        ok, why = avail[b]
        if b == "tensorrt" and cfg.device == "cpu":
            ok, why = False, "TensorRT runs on NVIDIA GPUs only (use --device cuda on a GPU machine)"
        for p in cfg.precisions:
            if not ok:
                skipped.append(f"{b} {p}: {why}")
            elif b == "torch" and p == "fp16" and cfg.device == "cpu" and not cfg.cpu_fp16:
                skipped.append("torch fp16 on the CPU: PyTorch has no fast fp16 CPU kernels (5x slower "
                               "than fp32 channels-last, 40x in NCHW); --cpu-fp16 times it anyway")
            else:
                for variant, options in _variants(b, cfg.device):
                    configs.append({"backend": b, "precision": p, "device": cfg.device, "sizes": sizes,
                                    "pipelines": list(cfg.pipelines), "frames": frames, "warmup": warmup,
                                    "threads": cfg.threads, "variant": variant, "options": options,
                                    "cache_dir": str(cfg.cache_dir) if cfg.cache_dir else None})
    from tqdm import tqdm

    rows: list[dict] = []
    for c in tqdm(configs, desc="bench", unit="config", dynamic_ncols=True, disable=not cfg.progress):
        tqdm.write(f"bench: {c['backend']} {c['variant']} {c['precision']} on {c['device']}, sizes "
                   f"{', '.join(f'{w}x{h}' for w, h in sizes)}")
        r = subprocess.run([sys.executable, "-m", "stss_runtime", "bench", "--worker", json.dumps(c)],
                           capture_output=True, text=True, env={**os.environ})
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            skipped.append(f"{c['backend']} {c['precision']}: failed: {tail}")
            continue
        rows += json.loads(r.stdout.strip().splitlines()[-1])
    info = {"device": device_name(cfg.device), "torch": torch.__version__, "python": platform.python_version()}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    for r in rows:  # every row says where it was measured
        r["device_name"] = info["device"]
        r["versions"] = {k: v for k, v in info.items() if k != "device"}
    return BenchResult(rows, skipped, info, frames, warmup)


def format_report(res: BenchResult) -> str:
    info = res.info
    lines = [f"\n{info['device']}; torch {info['torch']}"
             + (f", onnxruntime {info['onnxruntime']}" if "onnxruntime" in info else "")
             + f"; {res.frames} frames after {res.warmup} warm-up\n"]
    if res.rows:
        lines.append(format_table(res.rows))
        ceiling: dict[str, list] = {}
        for r in res.rows:
            ceiling.setdefault(r["precision"], []).append(r["device_gmacs_per_s"])
        lines.append("\nmatrix-product throughput, the ceiling for 'achieved GMAC/s': "
                     + ", ".join(f"{p} {np.median(v):.0f} GMAC/s" for p, v in ceiling.items()))
    lines += [f"skipped: {s}" for s in res.skipped]
    return "\n".join(lines)
