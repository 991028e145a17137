"""Speed of the joint STSS pass and of the two-stage pipeline on every back-end.

    python -m stss_runtime bench                       # CPU defaults: 320x180, 480x270 -> 2x
    python -m stss_runtime bench --device cuda         # GPU defaults: 960x540, 1280x720, 1920x1080
    python -m stss_runtime bench --json out/bench.json --plot out/bench.png
    python -m stss_runtime bench --pipelines joint,joint_taa,two_stage   # + STSS with accumulation
    python -m stss_runtime bench --pipelines joint,joint_fused --model stss_small   # the CPU preset's

Each (back-end, precision) runs in its own process (one library's idle threads must not
slow another's), with both pipelines in that process so their ratio is measured under the
same conditions. Per output frame (rendered and extrapolated frames alternate, as the
display sees them): median and p95 of the whole pass, and the median of each stage —
``prepare`` (history: motion chaining, hole masks; two-stage: its display-resolution
warps), ``backend`` (the graph on the back-end: colour warps, jitter correction and network
for the joint pass; the network for the two-stage one), ``output`` (crop, decode to linear
colour; ``joint_taa``: also the display-resolution accumulation of pass ``stss_taa``).
``joint_recurrent`` is the default pass (``stss_recurrent``: STSS and its learned
display-resolution accumulation in one graph). ``joint_fused`` is the joint pass with the
history's per-frame work inside the graph too
(:mod:`stss_runtime.history_graph`: what the plugin runs on OpenVINO and ONNX Runtime), so
its ``prepare`` stage only gathers the stored frames; a back-end and precision it does not
take (fp16 files, CUDA) are left out of it, saying why on stderr. On
CUDA every stage boundary is synchronised. Frames are synthetic G-buffers (smooth colour,
depth and motion): the cost does not depend on the picture; each is made on the host and
moved to the device when it is used, and CUDA's peak memory counts from the first timed frame.

The ceiling each row is held against is a matrix product in the row's own arithmetic,
timed in the same process: fp16, or fp32 as the row computes it (IEEE, or TF32 for the
``tf32`` variants; see :mod:`stss_runtime.backends.torch_backend`). "Achieved TFLOP/s" is
2 x the networks' multiply-adds over the back-end stage's time.
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

from ..passes.base import PassOptionError
from ..synthetic import iter_synthetic_frames

DEFAULT_SIZES = {"cpu": ["320x180", "480x270"], "cuda": ["960x540", "1280x720", "1920x1080"]}
PIPELINES = ("joint", "joint_taa", "two_stage", "joint_fused", "joint_recurrent")
JOINT = ("joint", "joint_taa", "joint_fused", "joint_recurrent")  # the pipelines of one network


def _network_preset(pipeline: str, model: str) -> str:
    """The network preset a joint pipeline builds for STSS preset ``model`` (``stss_small`` ->
    ``stss_recurrent_small`` for the recurrent pass)."""
    return model.replace("stss", "stss_recurrent", 1) if pipeline == "joint_recurrent" else model
PRECISIONS = ("fp32", "fp16")


class BenchError(RuntimeError):
    """The benchmark cannot run as asked (no GPU for device cuda)."""


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.split("x"))
    return w, h


def ceiling_math(device: str, precision: str, tf32: bool = False) -> str:
    """The arithmetic of a row's ceiling: "fp16", "tf32" or "fp32" (IEEE)."""
    if precision == "fp16" and device == "cuda":
        return "fp16"
    return "tf32" if tf32 and device == "cuda" else "fp32"


def device_gmacs_per_s(device: str, precision: str, seconds: float = 1.0, tf32: bool = False) -> float:
    """Measured multiply-add throughput of a large matrix product: the ceiling the
    networks' convolutions are compared with, in the arithmetic they use
    (:func:`ceiling_math`: an fp32 row without TF32 is held against an IEEE fp32 product,
    a TF32 one against a TF32 product, which is several times faster on a GPU)."""
    math = ceiling_math(device, precision, tf32)
    dtype = torch.float16 if math == "fp16" else torch.float32
    n = 8192 if device == "cuda" else 1024
    a = torch.randn((n, n), device=device, dtype=dtype)
    b = torch.randn((n, n), device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = math == "tf32"
    try:
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
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


def _reset_peak(device: str) -> None:
    """Start counting peak memory now (CUDA; the CPU's peak resident set cannot be reset)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _build_pass(pipeline: str, backend: str, precision: str, device: str, size, cache_dir, options=None,
                model: str = "stss"):
    from ..models import build_model
    from ..passes import StssPass, StssRecurrentPass, StssTaaPass, TwoStagePass
    from ..passes.stss_fused import StssFusedPass

    opts = {"backend": backend, "precision": precision, "device": device, **(options or {})}
    if backend != "torch":
        opts["cache_dir"] = cache_dir
    if pipeline in JOINT:
        torch.manual_seed(0)
        cls = {"joint": StssPass, "joint_taa": StssTaaPass, "joint_fused": StssFusedPass,
               "joint_recurrent": StssRecurrentPass}[pipeline]
        p = cls(model=build_model(_network_preset(pipeline, model)), **opts)
    else:
        torch.manual_seed(0)
        p = TwoStagePass(supersampler=build_model("supersampling"), extrapolator=build_model("extranet"), **opts)
    p.setup(size, (2 * size[0], 2 * size[1]))
    return p


def _gmacs(pipeline: str, size, model: str = "stss") -> float:
    """Network multiply-adds per output frame (rendered and extrapolated frames averaged)."""
    from ..models import build_model, count_macs
    from ..passes.stss import padded_size

    w, h = padded_size(size)
    if pipeline in JOINT:
        return count_macs(build_model(_network_preset(pipeline, model)), h, w) / 1e9
    sf = count_macs(build_model("supersampling"), h, w)
    ef = count_macs(build_model("extranet"), 2 * h, 2 * w)
    return (sf + ef) / 2 / 1e9


def measure(pipeline: str, backend: str, precision: str, device: str, size, frames: int, warmup: int,
            cache_dir, options: dict | None = None, variant: str = "", model: str = "stss") -> dict:
    """One row: timings of ``frames`` output frames after ``warmup`` frames (both rounded
    up to even: rendered and extrapolated frames alternate, and the time per output frame
    is the mean of each such pair; median and p95 are over pairs). ``options`` go to the
    back-end's runner; ``variant`` names them in the row; ``model``: the STSS network preset
    of the joint pipelines."""
    frames, warmup = frames + frames % 2, warmup + warmup % 2
    p = _build_pass(pipeline, backend, precision, device, size, cache_dir, options, model)
    seq = iter_synthetic_frames(size, warmup + frames, "cpu")  # one at a time, moved when used
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    totals, stages = [], {"prepare": [], "backend": [], "output": []}
    with torch.inference_mode():
        for i, f in enumerate(seq):
            if i == warmup:  # the pass's buffers and graphs exist by now; earlier frames are gone
                _reset_peak(device)
            f = f.to(device)
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
    runners = [getattr(p, "runner", None), *getattr(p, "runners", {}).values()]
    fallbacks = sorted({why for r in runners if r is not None for why in getattr(r, "fallbacks", {}).values()})
    return {"backend": backend, "variant": variant, "precision": precision, "device": device, "render_size": [w, h],
            "display_size": [2 * w, 2 * h], "pipeline": pipeline,
            "median_ms": float(np.median(pairs)), "p95_ms": float(np.percentile(pairs, 95)),
            "p99_ms": float(np.percentile(pairs, 99)), "graph_fallbacks": fallbacks,
            "rendered_ms": float(np.median(totals[::2])), "extrapolated_ms": float(np.median(totals[1::2])),
            "gmacs": round(_gmacs(pipeline, size, model), 3), "model": model, "peak_mem_mb": round(peak, 1),
            "stages_ms": {k: float(np.mean(v)) for k, v in stages.items()}, "frames": frames}


def _worker(config: dict) -> list[dict]:
    if config.get("threads"):
        torch.set_num_threads(config["threads"])
        if config["backend"] in ("onnxruntime", "openvino") and config["device"] == "cpu":  # their own pools too
            config = {**config, "options": {"threads": config["threads"], **(config.get("options") or {})}}
    rows = []
    tf32 = bool((config.get("options") or {}).get("tf32"))
    throughput = device_gmacs_per_s(config["device"], config["precision"], tf32=tf32)
    for size in config["sizes"]:
        for pipeline in config["pipelines"]:
            try:
                row = measure(pipeline, config["backend"], config["precision"], config["device"], tuple(size),
                              config["frames"], config["warmup"], config["cache_dir"], config.get("options"),
                              config.get("variant", ""), config.get("model", "stss"))
            except PassOptionError as e:  # joint_fused on a back-end / precision it does not take
                print(f"bench: {pipeline} left out: {e}", file=sys.stderr)
                continue
            row["device_gmacs_per_s"] = round(throughput, 1)
            row["ceiling_math"] = ceiling_math(config["device"], config["precision"], tf32)
            backend_s = row["stages_ms"]["backend"] / 1e3
            row["achieved_tflops"] = round(2 * row["gmacs"] / backend_s / 1e3, 4) if backend_s > 0 else None
            row["ceiling_tflops"] = round(2 * throughput / 1e3, 4)
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
    head = ("| back-end | precision | render -> display | pipeline | median ms | p95 / p99 ms | rendered / "
            "extrapolated ms | prepare | back-end | output | GMACs | achieved GMAC/s (% of ceiling) | peak MB | "
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
        digits = 2 if r["median_ms"] < 10 else 1  # GPU rows are a few ms
        tail = f" / {r['p99_ms']:.{digits}f}" if "p99_ms" in r else ""
        achieved = r["gmacs"] / (s["backend"] / 1e3)
        share = f" ({100 * achieved / r['device_gmacs_per_s']:.0f}%)" if r.get("device_gmacs_per_s") else ""
        lines.append(f"| {name} | {r['precision']} | {size} | {r['pipeline']} | {r['median_ms']:.{digits}f} | "
                     f"{r['p95_ms']:.{digits}f}{tail} | {r['rendered_ms']:.{digits}f} / {r['extrapolated_ms']:.{digits}f} | "
                     f"{s['prepare']:.{digits}f} | {s['backend']:.{digits}f} | {s['output']:.{digits}f} | "
                     f"{r['gmacs']:.1f} | {achieved:.0f}{share} | {r['peak_mem_mb']:.0f} | {ratio} |")
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


#: The torch runner variants timed on CUDA (name -> runner options), in table order.
CUDA_VARIANTS = {
    "eager nchw": {"channels_last": False, "cuda_graph": False},
    "channels-last": {"channels_last": True, "cuda_graph": False},
    "cuda graph": {"channels_last": True, "cuda_graph": True},
    "cuda graph tf32": {"channels_last": True, "cuda_graph": True, "tf32": True},  # fp32 rows only
    "torch.compile": {"channels_last": True, "cuda_graph": False, "compile": True},
    "torch.compile + cuda graph": {"channels_last": True, "cuda_graph": True, "compile": True},
}
CPU_VARIANTS = {"eager nchw": {"channels_last": False}, "channels-last": {"channels_last": True}}


def _variants(backend: str, device: str, precision: str = "fp32",
              only: tuple[str, ...] | None = None) -> list[tuple[str, dict]]:
    """Runner options timed apart: for torch, plain eager NCHW (the reference every
    speed-up is quoted against) and channels-last; on CUDA also CUDA graphs, TF32 (fp32
    only) and ``torch.compile`` (Triton kernels). ``only``: these torch variant names. On the
    CPU, ONNX Runtime and OpenVINO in fp32 also with int8 convolutions; OpenVINO's fp16 is
    named by the 16-bit type it computes in (bf16 on CPUs with AMX)."""
    if backend == "openvino":
        if precision == "fp16":
            from ..backends.openvino_backend import sixteen_bit_type

            return [(sixteen_bit_type() or "f16 emulated", {})]
        return [("", {}), ("int8", {"int8": True})]
    if backend == "onnxruntime" and device == "cpu" and precision == "fp32":
        return [("", {}), ("int8", {"int8": True})]
    if backend != "torch":
        return [("", {})]
    table = CPU_VARIANTS if device == "cpu" else CUDA_VARIANTS
    out = [(name, dict(opts)) for name, opts in table.items()
           if not (opts.get("tf32") and precision != "fp32")]
    return [v for v in out if only is None or v[0] in only]


@dataclass(frozen=True)
class BenchConfig:
    """Which rows to time; the fields mean what the ``bench`` options of the same names say."""

    device: str = "cpu"
    backends: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt", "openvino")
    precisions: tuple[str, ...] = ("fp32", "fp16")
    sizes: tuple[tuple[int, int], ...] | None = None  # render sizes (display is 2x); None: per device
    pipelines: tuple[str, ...] = ("joint", "two_stage")
    frames: int | None = None  # None: cpu 12, cuda 200
    warmup: int | None = None  # None: cpu 2, cuda 20
    threads: int | None = None
    cpu_fp16: bool = False
    cache_dir: Path | None = None
    progress: bool = True
    variants: tuple[str, ...] | None = None  # torch runner variants by name; None: every one for the device
    worker_timeout: float | None = None  # seconds per (back-end, variant, precision) process; None: no limit
    model: str = "stss"  # the STSS network preset of the joint pipelines

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
        if self.variants is not None:
            known = {*CPU_VARIANTS, *CUDA_VARIANTS}
            bad = [v for v in self.variants if v not in known]
            if bad or not self.variants:
                raise ValueError(f"variants: expected some of {', '.join(known)}, got {', '.join(bad) or 'nothing'}")


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
        if b == "openvino" and cfg.device == "cuda":
            ok, why = False, "the OpenVINO runner runs on the CPU only (use --device cpu)"
        if b == "onnxruntime" and cfg.device == "cuda" and ok and "CUDAExecutionProvider" not in why:
            ok, why = False, (f"no CUDAExecutionProvider ({why}): needs onnxruntime-gpu, whose wheel (over "
                              f"200 MB) cannot be carried to a machine without network access")
        for p in cfg.precisions:
            if not ok:
                skipped.append(f"{b} {p}: {why}")
            elif b == "torch" and p == "fp16" and cfg.device == "cpu" and not cfg.cpu_fp16:
                skipped.append("torch fp16 on the CPU: PyTorch has no fast fp16 CPU kernels (5x slower "
                               "than fp32 channels-last, 40x in NCHW); --cpu-fp16 times it anyway")
            else:
                for variant, options in _variants(b, cfg.device, p, cfg.variants):
                    configs.append({"backend": b, "precision": p, "device": cfg.device, "sizes": sizes,
                                    "model": cfg.model,
                                    "pipelines": list(cfg.pipelines), "frames": frames, "warmup": warmup,
                                    "threads": cfg.threads, "variant": variant, "options": options,
                                    "cache_dir": str(cfg.cache_dir) if cfg.cache_dir else None})
    from tqdm import tqdm

    rows: list[dict] = []
    for c in tqdm(configs, desc="bench", unit="config", dynamic_ncols=True, disable=not cfg.progress):
        tqdm.write(f"bench: {c['backend']} {c['variant']} {c['precision']} on {c['device']}, sizes "
                   f"{', '.join(f'{w}x{h}' for w, h in sizes)}")
        try:
            r = subprocess.run([sys.executable, "-m", "stss_runtime", "bench", "--worker", json.dumps(c)],
                               capture_output=True, text=True, env={**os.environ}, timeout=cfg.worker_timeout)
        except subprocess.TimeoutExpired:
            skipped.append(f"{c['backend']} {c['variant']} {c['precision']}: timed out after {cfg.worker_timeout:g} s")
            continue
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
            ceiling.setdefault(r.get("ceiling_math", r["precision"]), []).append(r["device_gmacs_per_s"])
        lines.append("\nmatrix-product throughput, the ceiling for 'achieved GMAC/s': "
                     + ", ".join(f"{p} {np.median(v):.0f} GMAC/s ({2 * np.median(v) / 1e3:.3g} TFLOP/s)"
                                 for p, v in ceiling.items()))
        fell_back = sorted({f"{r['backend']} {r.get('variant', '')} {r['precision']}: {why}" for r in res.rows
                            for why in r.get("graph_fallbacks", [])})
        lines += [f"CUDA graph capture failed, ran eagerly: {f}" for f in fell_back]
    lines += [f"skipped: {s}" for s in res.skipped]
    return "\n".join(lines)
