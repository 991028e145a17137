"""Renderer timings: per built-in scene and size, the GPU time of each pass (GL timer
queries; median of repeated frames after warm-up) and the ground truth's wall time.

On our CPU machines "GPU" is Mesa's llvmpipe software rasteriser: the figures say where the
renderer's time goes and what the test suite can afford, not what a real GPU would take.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from stss_runtime.conventions import jitter_offset, mip_bias

from .gl import create_headless_context, describe
from .renderer import Renderer
from .scenes import BUILTIN_SCENES


def run_bench(scenes: list[str], sizes: list[tuple[int, int]], *, repeats: int = 15,
              warmup: int = 3, gt_samples: int = 16, gt_repeats: int = 3,
              print_fn=print) -> list[dict]:
    """Time each (scene, size); ``size`` is the render size for the G-buffer and shading
    passes (LOD bias of a 2x upscale) and the display size for the ground truth."""
    ctx = create_headless_context()
    print_fn(f"renderer bench on {describe(ctx)}, {platform.processor() or platform.machine()}; "
             f"median of {repeats} frames after {warmup} warm-up, ground truth {gt_samples} "
             f"samples, median of {gt_repeats}")
    header = (f"{'scene':9s} {'size':>9s} {'tris':>6s} {'shadow ms':>9s} {'gbuffer ms':>10s} "
              f"{'shading ms':>10s} {'frame ms':>9s} {'gt ms':>8s}")
    print_fn(header)
    print_fn("-" * len(header))
    rows = []
    for name in scenes:
        scene = BUILTIN_SCENES[name]()
        r = Renderer(ctx, scene)
        for w, h in sizes:
            bias = mip_bias(w, 2 * w)
            gpu: dict[str, list[float]] = {}
            wall = []
            for i in range(warmup + repeats):
                t = 1.0 + i / 60.0
                t0 = time.perf_counter()
                r.render(t, t - 1 / 60.0, (w, h), jitter_offset(i, 32), bias)
                ctx.finish()
                dt = (time.perf_counter() - t0) * 1e3
                if i >= warmup:
                    wall.append(dt)
                    for k, v in r.last_times.gpu_ms.items():
                        gpu.setdefault(k, []).append(v)
            gt = []
            for i in range(gt_repeats + 1):
                r.render_ground_truth(1.0 + i / 60.0, (w, h), gt_samples)
                if i:  # first one warms up the display-size targets
                    gt.append(r.last_gt_ms)
            row = {"scene": name, "size": [w, h], "triangles": scene.triangle_count,
                   **{f"{k}_gpu_ms": float(np.median(v)) for k, v in gpu.items()},
                   "frame_wall_ms": float(np.median(wall)), "gt_wall_ms": float(np.median(gt)),
                   "gt_samples": gt_samples, "device": describe(ctx)}
            rows.append(row)
            print_fn(f"{name:9s} {f'{w}x{h}':>9s} {scene.triangle_count:6d} "
                     f"{row['shadow_gpu_ms']:9.1f} {row['gbuffer_gpu_ms']:10.1f} "
                     f"{row['shading_gpu_ms']:10.1f} {row['frame_wall_ms']:9.1f} {row['gt_wall_ms']:8.0f}")
    return rows
