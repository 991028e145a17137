"""What the plugin API itself costs: ``Context.dispatch`` against the bare pass calls on the
same frames.

    python -m plugin.bench                          # stss and bilinear, 320x180 and 480x270 -> 2x
    python -m plugin.bench --passes stss --sizes 960x540 --device cuda

A dispatch validates every input (shapes, dtypes, NaN / Inf, ranges), converts the
engine's (H, W, C) numpy arrays to the runtime's tensors, runs the pass on the rendered
frame and on the generated one, composites the UI and converts the outputs back. The bare
call runs the same pass on the same frames already in the runtime's form. Overhead = the
difference, per rendered + generated pair; median over pairs after warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from stss_runtime.cli.common import parse_size
from stss_runtime.passes import PASSES, create_pass
from stss_runtime.synthetic import synthetic_frames

from .context import Context
from .descriptions import ContextDescription, FrameDescription, GeneratedFrameDescription

_GB = ("albedo", "normal", "roughness", "metallic", "object_id")


def _hwc(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].permute(1, 2, 0).cpu().numpy())


def descriptions(frames, frame_time_ms: float = 33.3):
    """Frame descriptions (numpy, as an engine hands them over) for synthetic frame pairs."""
    out = []
    for n in range(len(frames) // 2):
        a, b = frames[2 * n], frames[2 * n + 1]
        g = GeneratedFrameDescription(depth=_hwc(b.depth), motion=_hwc(b.motion), jitter_px=b.jitter_px,
                                      view=b.view, proj=b.proj, **{k: _hwc(getattr(b, k)) for k in _GB})
        out.append(FrameDescription(frame_index=n, color=_hwc(a.color), depth=_hwc(a.depth), motion=_hwc(a.motion),
                                    jitter_px=a.jitter_px, frame_time_ms=frame_time_ms, near=a.near, far=a.far,
                                    fov_y_rad=1.0, view=a.view, proj=a.proj, generated=[g],
                                    **{k: _hwc(getattr(a, k)) for k in _GB}))
    return out


def measure_overhead(pass_name: str, size: tuple[int, int], pairs: int = 6, warmup: int = 2,
                     device: str = "cpu") -> dict:
    w, h = size
    frames = synthetic_frames(size, 2 * (pairs + warmup), "cpu")
    descs = descriptions(frames)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ctx = Context(ContextDescription(max_render_size=size, display_size=(2 * w, 2 * h), pass_name=pass_name,
                                     device=device))
    kwargs = {"device": device} if PASSES[pass_name].runtime_options else {}
    bare = create_pass(pass_name, **kwargs)
    bare.setup(size, (2 * w, 2 * h))
    dev_frames = [f.to(device) for f in frames]
    api, raw = [], []
    for n, d in enumerate(descs):  # interleaved, so both see the same machine state
        sync()
        t0 = time.perf_counter()
        ctx.dispatch(d)
        sync()
        t1 = time.perf_counter()
        bare(dev_frames[2 * n])
        bare(dev_frames[2 * n + 1])
        sync()
        t2 = time.perf_counter()
        if n >= warmup:
            api.append((t1 - t0) * 1e3)
            raw.append((t2 - t1) * 1e3)
    ctx.destroy()
    api_ms, raw_ms = float(np.median(api)), float(np.median(raw))
    return {"pass": pass_name, "device": device, "render_size": [w, h], "display_size": [2 * w, 2 * h],
            "dispatch_ms": api_ms, "bare_ms": raw_ms, "overhead_ms": api_ms - raw_ms,
            "overhead_pct": 100.0 * (api_ms - raw_ms) / raw_ms, "pairs": pairs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m plugin.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", default="stss,bilinear", help="comma-separated pass names")
    ap.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")],
                    default=[(320, 180), (480, 270)], help="render sizes WxH (display 2x)")
    ap.add_argument("--pairs", type=int, default=6, help="timed rendered + generated pairs (default 6)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args(argv)
    if args.pairs < 1:
        ap.error(f"--pairs: expected at least 1, got {args.pairs}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("plugin.bench: --device cuda, but this PyTorch sees no CUDA GPU", file=sys.stderr)
        return 2
    from stss_runtime.passes import PASSES

    passes = [p.strip() for p in args.passes.split(",") if p.strip()]
    bad = [p for p in passes if p not in PASSES]
    if bad or not passes:
        print(f"plugin.bench: --passes: expected some of {', '.join(PASSES)}, got {', '.join(bad) or 'nothing'}",
              file=sys.stderr)
        return 2
    print("| pass | render -> display | dispatch ms | bare pass ms | API overhead ms | overhead % |")
    print("| --- | --- | --- | --- | --- | --- |")
    for p in passes:
        for size in args.sizes:
            r = measure_overhead(p, size, args.pairs, device=args.device)
            print(f"| {p} | {size[0]}x{size[1]} -> {2 * size[0]}x{2 * size[1]} | {r['dispatch_ms']:.1f} | "
                  f"{r['bare_ms']:.1f} | {r['overhead_ms']:.1f} | {r['overhead_pct']:.1f} |", flush=True)
    print("(per rendered + generated pair, median; overhead = validation, conversions, UI, output copies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
