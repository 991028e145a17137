"""A soak test of a plugin context: dispatch many frames and report how resident memory grows
once warmed up (a leak in the history, a cache, a timer or the conversions shows as steady
growth). Not part of CI: it takes minutes.

    OMP_NUM_THREADS=1 .venv/bin/python -m plugin.soak --pass bilinear --frames 10000
    OMP_NUM_THREADS=1 .venv/bin/python -m plugin.soak --pass stss --frames 1500 --render 160x90 --display 320x180

Frames are synthetic (a moving striped pattern with depth, motion vectors, G-buffers, a
camera and Halton jitter, plus one generated frame's G-buffers), a cycle of 16 kept like an
engine's buffers, dispatched with a growing frame index. Resident memory (``VmRSS``) is
sampled every ``--every`` frames. After the warm-up (``--warmup`` frames, default a tenth)
the growth is the median of the last tenth of the samples against the median of the first
tenth (single samples move by a few MiB as the allocator reuses memory), and the trend is
the slope of a line fitted to all of them, over the measured frames. Exit status 1 when the
growth exceeds ``--max-growth`` percent.

With glibc, resident memory may step up once by a few MiB while malloc's dynamic mmap
threshold settles (frames of a few hundred KiB move from mmap to the heap); that is not a
leak: with ``MALLOC_MMAP_THRESHOLD_=131072`` the same run stays flat.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import (
    Context,
    ContextDescription,
    FrameDescription,
    GeneratedFrameDescription,
    jitter_offset,
    jitter_phase_count,
)

MIB = 1024 * 1024
CYCLE = 16


def resident_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/status`` VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"expected at least 8x8, got {text!r}")
    return w, h


def _perspective(fov_y: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(fov_y / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])


def synthetic_cycle(render: tuple[int, int], display: tuple[int, int]) -> list[dict]:
    """:data:`CYCLE` display-frame pairs (rendered, generated): the arrays an engine would
    hand over, moving 0.5 render pixels per display frame."""
    w, h = render
    phases = jitter_phase_count(w, display[0])
    proj = _perspective(1.0, w / h, 0.1, 100.0)
    frames = []
    for i in range(2 * CYCLE):
        x = (np.arange(w) + 0.5)[None, :] - 0.5 * i
        y = (np.arange(h) + 0.5)[:, None]
        rgb = np.stack([0.5 + 0.3 * np.sin(x / 3) + 0 * y, 0.5 + 0.3 * np.sin(y / 2.5) + 0 * x,
                        0.4 + 0.2 * np.cos((x + y) / 4)], -1).astype(np.float32)
        motion = np.zeros((h, w, 2), np.float32)
        motion[..., 0] = -0.5
        normal = np.zeros((h, w, 3), np.float32)
        normal[..., 2] = 1
        view = np.eye(4)
        view[:3, 3] = (-0.01 * i, 0.0, -5.0)
        frames.append({"color": rgb, "depth": np.full((h, w), 5.0, np.float32), "motion": motion, "albedo": rgb,
                       "normal": normal, "roughness": np.full((h, w), 0.5, np.float32),
                       "metallic": np.zeros((h, w), np.float32), "object_id": np.ones((h, w), np.int32),
                       "view": view, "proj": proj, "jitter_px": jitter_offset(i, phases)})
    return [(frames[2 * k], frames[2 * k + 1]) for k in range(CYCLE)]


def _frame(n: int, pair: tuple[dict, dict], generated: int) -> FrameDescription:
    a, b = pair
    gb = ("albedo", "normal", "roughness", "metallic", "object_id")
    gen = [GeneratedFrameDescription(depth=b["depth"], motion=b["motion"], jitter_px=b["jitter_px"], view=b["view"],
                                     proj=b["proj"], **{k: b[k] for k in gb})] if generated else []
    return FrameDescription(frame_index=n, color=a["color"], depth=a["depth"], motion=a["motion"],
                            jitter_px=a["jitter_px"], frame_time_ms=33.3, near=0.1, far=100.0, fov_y_rad=1.0,
                            view=a["view"], proj=a["proj"], generated=gen, **{k: a[k] for k in gb})


def soak(pass_name: str = "bilinear", frames: int = 10_000, render: tuple[int, int] = (160, 90),
         display: tuple[int, int] = (320, 180), warmup: int | None = None, every: int | None = None,
         backend: str = "torch", device: str = "cpu", generated: int = 1, progress=None) -> dict:
    """Dispatch ``frames`` frames through one context; the samples and the growth figures."""
    warmup = max(1, frames // 10) if warmup is None else warmup
    every = every or max(1, frames // 100)
    if not 0 < warmup < frames:
        raise ValueError(f"warmup: expected 1 .. {frames - 1} frames, got {warmup}")
    cycle = synthetic_cycle(render, display)
    desc = ContextDescription(max_render_size=render, display_size=display, pass_name=pass_name, backend=backend,
                              device=device, generated_frames=generated)
    samples: list[tuple[int, int]] = [(0, resident_bytes())]
    t0 = time.perf_counter()
    with Context(desc) as ctx:
        for n in range(frames):
            ctx.dispatch(_frame(n, cycle[n % CYCLE], generated))
            done = n + 1
            if done % every == 0 or done == warmup or done == frames:
                samples.append((done, resident_bytes()))
                if progress is not None:
                    progress(done, samples[-1][1])
    seconds = time.perf_counter() - t0
    after = [(n, rss) for n, rss in samples if n >= warmup]
    tenth = max(1, len(after) // 10)
    start = float(np.median([rss for _, rss in after[:tenth]]))
    end = float(np.median([rss for _, rss in after[-tenth:]]))
    xs = np.array([n for n, _ in after], np.float64)
    ys = np.array([rss for _, rss in after], np.float64)
    slope = float(np.polyfit(xs, ys, 1)[0]) if len(after) >= 3 else float("nan")  # bytes per frame
    return {"pass": pass_name, "render": list(render), "display": list(display), "backend": backend, "device": device,
            "generated_frames": generated, "frames": frames, "warmup": warmup, "seconds": seconds,
            "ms_per_frame": 1e3 * seconds / frames, "rss_start_bytes": samples[0][1], "rss_warm_bytes": start,
            "rss_end_bytes": end, "rss_peak_bytes": max(r for _, r in samples),
            "growth_percent": 100.0 * (end - start) / start,
            "trend_percent": 100.0 * slope * (frames - warmup) / start,
            "slope_bytes_per_1000_frames": 1000.0 * slope, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugin.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pass", dest="pass_name", default="bilinear", help="the pass (default: bilinear)")
    parser.add_argument("--frames", type=int, default=10_000, help="rendered frames to dispatch (default 10000)")
    parser.add_argument("--render", type=_size, default=(160, 90), help="render size WxH (default 160x90)")
    parser.add_argument("--display", type=_size, default=(320, 180), help="display size WxH (default 320x180)")
    parser.add_argument("--warmup", type=int, default=None, help="frames before growth is measured (default: a tenth)")
    parser.add_argument("--every", type=int, default=None, help="sample memory every N frames (default: 1%%)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--generated-frames", type=int, default=1, choices=(0, 1))
    parser.add_argument("--max-growth", type=float, default=1.0, help="exit 1 above this growth, %% (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures and samples here")
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error(f"--frames: expected at least 2, got {args.frames}")

    def progress(done: int, rss: int) -> None:
        if done % max(1, args.frames // 10) == 0 or done == args.frames:
            print(f"  {done:>7} frames  RSS {rss / MIB:8.1f} MiB", flush=True)

    print(f"soak: {args.pass_name}, {args.render[0]}x{args.render[1]} -> {args.display[0]}x{args.display[1]}, "
          f"{args.frames} frames ({args.backend}, {args.device})", flush=True)
    try:
        r = soak(args.pass_name, args.frames, args.render, args.display, args.warmup, args.every, args.backend,
                 args.device, args.generated_frames, progress)
    except (ValueError, RuntimeError) as e:  # plugin errors are ValueError / RuntimeError subclasses
        print(f"python -m plugin.soak: error: {e}", file=sys.stderr)
        return 2
    print(f"{r['frames']} frames in {r['seconds']:.0f} s ({r['ms_per_frame']:.1f} ms each). Resident memory: "
          f"{r['rss_start_bytes'] / MIB:.1f} MiB before the context, {r['rss_warm_bytes'] / MIB:.1f} MiB after "
          f"{r['warmup']} warm-up frames, {r['rss_end_bytes'] / MIB:.1f} MiB at the end (medians of a tenth of the "
          f"samples; peak {r['rss_peak_bytes'] / MIB:.1f}): growth after warm-up {r['growth_percent']:+.2f}%, "
          f"trend {r['trend_percent']:+.2f}% ({r['slope_bytes_per_1000_frames'] / 1024:+.1f} KiB per 1000 frames; "
          f"goal < {args.max_growth:g}%)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    return 0 if r["growth_percent"] < args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
