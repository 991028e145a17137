"""Speed of the joint STSS pass and of the two-stage pipeline on every back-end.

    python -m stss_runtime.bench                       # CPU defaults: 320x180, 480x270 -> 2x
    python -m stss_runtime.bench --device cuda         # GPU defaults: 960x540, 1280x720, 1920x1080
    python -m stss_runtime.bench --json out/bench.json --plot out/bench.png
    python -m stss_runtime.bench --pipelines joint,joint_taa,two_stage   # + STSS with accumulation

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

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_SIZES = {"cpu": ["320x180", "480x270"], "cuda": ["960x540", "1280x720", "1920x1080"]}
PIPELINES = ("joint", "joint_taa", "two_stage")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size: expected WIDTHxHEIGHT such as 480x270, got {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size: expected at least 8x8, got {text!r}")
    return w, h


def _perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                     [0, 0, -1, 0]], dtype=np.float64)


def synthetic_frames(render_size: tuple[int, int], count: int, device: str = "cpu", seed: int = 0):
    """``count`` display frames (even = rendered, odd = extrapolated) of smooth synthetic
    G-buffers at ``render_size`` (width, height), panning a pixel per frame."""
    from .conventions import halton
    from .frame import Frame

    w, h = render_size
    g = torch.Generator().manual_seed(seed)

    def smooth(c, lo=0.0, hi=1.0):
        t = torch.rand((1, c, max(h // 8, 1), max(w // 8, 1)), generator=g)
        return lo + (hi - lo) * torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear")

    depth = smooth(1, 2.0, 30.0)
    normal = torch.nn.functional.normalize(smooth(3, -1, 1) + torch.tensor([0, 0, 1.5]).view(1, 3, 1, 1), dim=1)
    base = {"albedo": smooth(3), "normal": normal, "depth": depth, "roughness": smooth(1),
            "metallic": (smooth(1) > 0.8).float(),
            "object_id": (smooth(1, 0, 4)).floor().to(torch.int32)}
    motion = torch.zeros((1, 2, h, w))
    motion[:, 0] = -1.0  # the scene pans one pixel right per display frame
    frames = []
    for i in range(count):
        jitter = (halton(i + 1, 2) - 0.5, halton(i + 1, 3) - 0.5)
        color = smooth(3, 0, 2) if i % 2 == 0 else None
        f = Frame(index=i, motion=motion, view=np.eye(4), proj=_perspective(60, w / h, 0.1, 100.0),
                  jitter_px=jitter, near=0.1, far=100.0, color=color, **base)
        frames.append(f.to(device))
    return frames


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
    from .models import build_model
    from .passes import StssPass, StssTemporalPass, TwoStagePass

    opts = {"backend": backend, "precision": precision, "device": device, **(options or {})}
    if backend != "torch":
        opts["cache_dir"] = cache_dir
    if pipeline in ("joint", "joint_taa"):
        torch.manual_seed(0)
        p = (StssPass if pipeline == "joint" else StssTemporalPass)(model=build_model("stss"), **opts)
    else:
        torch.manual_seed(0)
        p = TwoStagePass(supersampler=build_model("supersampling"), extrapolator=build_model("extranet"), **opts)
    p.setup(size, (2 * size[0], 2 * size[1]))
    return p


def _gmacs(pipeline: str, size) -> float:
    """Network multiply-adds per output frame (rendered and extrapolated frames averaged)."""
    from .models import build_model, count_macs
    from .passes.stss_pass import padded_size

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


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m stss_runtime.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--backends", default="torch,onnxruntime,tensorrt",
                    help="comma-separated; unavailable ones are listed as skipped with the reason")
    ap.add_argument("--precisions", default="fp32,fp16", help="comma-separated: fp32, fp16")
    ap.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")], default=None,
                    help="render sizes WxH, comma-separated (display is 2x); default per device: "
                         "cpu 320x180,480x270; cuda 960x540,1280x720,1920x1080")
    ap.add_argument("--pipelines", default="joint,two_stage",
                    help="comma-separated from joint (STSS), joint_taa (STSS + display-resolution "
                         "accumulation, pass stss_taa: its accumulation is in the output stage), two_stage")
    ap.add_argument("--frames", type=int, default=None,
                    help="timed output frames per row, rendered and extrapolated alternating (default cpu 12, cuda 200)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed frames first (default cpu 2, cuda 20)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    ap.add_argument("--cpu-fp16", action="store_true",
                    help="also time torch fp16 on the CPU (no fast fp16 kernels there: 5-40x slower)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="ONNX / engine cache (default ~/.cache/stss_runtime)")
    ap.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    ap.add_argument("--plot", type=Path, help="write a bar chart (PNG) of the medians")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for name in ("frames", "warmup"):
        v = getattr(args, name)
        if v is not None and v < (1 if name == "frames" else 0):
            ap.error(f"--{name}: expected at least {1 if name == 'frames' else 0}, got {v}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:  # one (back-end, precision) in this process; rows as JSON on the last line
        rows = _worker(json.loads(args.worker))
        print(json.dumps(rows))
        return 0
    from .backends import BACKENDS, availability

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench: --device cuda, but this PyTorch sees no CUDA GPU (CPU build or no driver)", file=sys.stderr)
        return 2
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    for label, values, valid in (("--backends", backends, BACKENDS), ("--precisions", precisions, ("fp32", "fp16")),
                                 ("--pipelines", pipelines, PIPELINES)):
        bad = [v for v in values if v not in valid]
        if bad or not values:
            print(f"bench: {label}: expected some of {', '.join(valid)}, got {', '.join(bad) or 'nothing'}",
                  file=sys.stderr)
            return 2
    sizes = args.sizes or [parse_size(s) for s in DEFAULT_SIZES[args.device]]
    frames = args.frames or (200 if args.device == "cuda" else 12)
    warmup = args.warmup if args.warmup is not None else (20 if args.device == "cuda" else 2)
    avail = availability()
    configs, skipped = [], []
    for b in backends:
        ok, why = avail[b]
        if b == "tensorrt" and args.device == "cpu":
            ok, why = False, "TensorRT runs on NVIDIA GPUs only (use --device cuda on a GPU machine)"
        for p in precisions:
            if not ok:
                skipped.append(f"{b} {p}: {why}")
            elif b == "torch" and p == "fp16" and args.device == "cpu" and not args.cpu_fp16:
                skipped.append("torch fp16 on the CPU: PyTorch has no fast fp16 CPU kernels (5x slower "
                               "than fp32 channels-last, 40x in NCHW); --cpu-fp16 times it anyway")
            else:
                for variant, options in _variants(b, args.device):
                    configs.append({"backend": b, "precision": p, "device": args.device, "sizes": sizes,
                                    "pipelines": pipelines, "frames": frames, "warmup": warmup,
                                    "threads": args.threads, "variant": variant, "options": options,
                                    "cache_dir": str(args.cache_dir) if args.cache_dir else None})
    from tqdm import tqdm

    rows: list[dict] = []
    env = {**os.environ}
    for cfg in tqdm(configs, desc="bench", unit="config", dynamic_ncols=True):
        tqdm.write(f"bench: {cfg['backend']} {cfg['variant']} {cfg['precision']} on {cfg['device']}, sizes "
                   f"{', '.join(f'{w}x{h}' for w, h in sizes)}")
        r = subprocess.run([sys.executable, "-m", "stss_runtime.bench", "--worker", json.dumps(cfg)],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            skipped.append(f"{cfg['backend']} {cfg['precision']}: failed: {tail}")
            continue
        rows += json.loads(r.stdout.strip().splitlines()[-1])
    info = {"device": device_name(args.device), "torch": torch.__version__, "python": platform.python_version()}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    print(f"\n{info['device']}; torch {info['torch']}"
          + (f", onnxruntime {info['onnxruntime']}" if "onnxruntime" in info else "")
          + f"; {frames} frames after {warmup} warm-up\n")
    if rows:
        print(format_table(rows))
        ceiling = {}
        for r in rows:
            ceiling.setdefault(r["precision"], []).append(r["device_gmacs_per_s"])
        print("\nmatrix-product throughput, the ceiling for 'achieved GMAC/s': "
              + ", ".join(f"{p} {np.median(v):.0f} GMAC/s" for p, v in ceiling.items()))
    for s in skipped:
        print(f"skipped: {s}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for r in rows:  # every row says where it was measured
            r["device_name"] = info["device"]
            r["versions"] = {k: v for k, v in info.items() if k != "device"}
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot and rows:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
