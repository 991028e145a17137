"""Renders a scene into a frame dump folder (``CONVENTIONS.md``), resumably.

Frame ``i`` is the display frame at time ``start_time + i / fps``: its low-resolution render
(G-buffers and shaded colour, jittered with the Halton sequence) and its ground truth at
display resolution. Every frame depends only on its time, so an interrupted run resumes by
rendering the frames whose files are missing; frames are written atomically.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import moderngl
import numpy as np

from stss_runtime import framedump
from stss_runtime.conventions import jitter_offset, jitter_phase_count, mip_bias

from .renderer import Renderer
from .scene import Scene


class SequenceError(ValueError):
    """The requested sequence or its output folder is unusable (message: one line)."""


@dataclass(frozen=True)
class SequenceSpec:
    scene: str  # built-in scene name or scene file path
    frames: int
    render_size: tuple[int, int] = (480, 270)
    display_size: tuple[int, int] = (960, 540)
    fps: float = 60.0  # display frame rate
    gt_samples: int = 16
    start_time: float = 0.0  # seconds

    def validate(self) -> None:
        rw, rh = self.render_size
        dw, dh = self.display_size
        if self.frames < 1:
            raise SequenceError(f"frames must be >= 1, got {self.frames}")
        if min(rw, rh, dw, dh) < 1:
            raise SequenceError(f"sizes must be positive, got render {rw}x{rh}, display {dw}x{dh}")
        if dw < rw or dh < rh:
            raise SequenceError(f"display size {dw}x{dh} must not be smaller than render size {rw}x{rh}")
        if abs(rw / rh - dw / dh) > 0.01 * dw / dh:
            raise SequenceError(f"render size {rw}x{rh} and display size {dw}x{dh} must have the "
                                f"same aspect ratio")
        if self.fps <= 0:
            raise SequenceError(f"fps must be positive, got {self.fps}")
        if self.gt_samples < 1:
            raise SequenceError(f"gt-samples must be >= 1, got {self.gt_samples}")

    def frame_time(self, index: int) -> float:
        return self.start_time + index / self.fps


@dataclass
class SequenceReport:
    out: Path
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    times_ms: dict[str, list[float]] = field(default_factory=dict)  # per pass, per written frame


_RESUME_KEYS = ("scene", "render_size", "display_size", "fps", "gt_samples", "start_time",
                "conventions")


def _prepare_folder(out: Path, spec: SequenceSpec, scene: Scene) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SequenceError(f"output folder '{out}' is not writable: {e.strerror or e}") from None
    meta = framedump.make_meta(
        scene=spec.scene, render_size=spec.render_size, display_size=spec.display_size,
        fps=spec.fps, frames=spec.frames, near=scene.camera.near, far=scene.camera.far,
        fov_y_deg=scene.camera.fov_y_deg, gt_samples=spec.gt_samples,
        start_time=spec.start_time, background_depth="far",
        jitter_phase_count=jitter_phase_count(spec.render_size[0], spec.display_size[0]))
    meta_path = out / "meta.json"
    if meta_path.exists():
        try:
            old = framedump.read_meta(out)
        except framedump.FrameDumpError as e:
            raise SequenceError(str(e)) from None
        for k in _RESUME_KEYS:
            if old.get(k) != meta.get(k):
                raise SequenceError(
                    f"output folder '{out}' holds a different sequence ({k}: {old.get(k)!r} there, "
                    f"{meta.get(k)!r} asked); choose another --out or delete it")
        meta["frames"] = max(int(old["frames"]), spec.frames)
    framedump.write_meta(out, meta)


def render_frame(renderer: Renderer, spec: SequenceSpec,
                 index: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """All arrays of display frame ``index`` in the frame dump's keys and dtypes, and the GPU
    times (ms) of its low-resolution passes plus the ground truth's wall time (``gt``)."""
    t = spec.frame_time(index)
    dt = 1.0 / spec.fps
    phases = jitter_phase_count(spec.render_size[0], spec.display_size[0])
    jitter = jitter_offset(index, phases)
    bias = mip_bias(spec.render_size[0], spec.display_size[0])
    target, cam = renderer.render(t, t - dt, spec.render_size, jitter, bias)
    times = dict(renderer.last_times.gpu_ms)
    arrays = renderer.read_frame(target)
    gt = renderer.render_ground_truth(t, spec.display_size, spec.gt_samples)
    arrays["gt"] = renderer.read_color(gt).astype(np.float16)
    arrays["view"] = cam.view.astype(np.float64)
    arrays["proj"] = cam.proj.astype(np.float64)
    arrays["jitter"] = np.asarray(jitter, dtype=np.float32)
    arrays["time"] = np.float64(t)
    times["gt"] = renderer.last_gt_ms
    return arrays, times


def render_sequence(spec: SequenceSpec, out: str | os.PathLike, scene: Scene,
                    ctx: moderngl.Context, *, progress: bool = True,
                    compress: bool = False) -> SequenceReport:
    """Render ``spec`` into ``out``; frames already there are kept (resume)."""
    spec.validate()
    out = Path(out)
    _prepare_folder(out, spec, scene)
    framedump.remove_stale_temporaries(out)
    have = set(framedump.existing_frames(out))
    todo = [i for i in range(spec.frames) if i not in have]
    report = SequenceReport(out=out, skipped=sorted(have & set(range(spec.frames))))
    renderer = Renderer(ctx, scene)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=spec.frames, initial=len(report.skipped), unit="frame",
                   desc=f"{scene.name} {spec.render_size[0]}x{spec.render_size[1]}"
                        f"->{spec.display_size[0]}x{spec.display_size[1]}", dynamic_ncols=True)
    try:
        for i in todo:
            t0 = time.perf_counter()
            arrays, times = render_frame(renderer, spec, i)
            framedump.write_frame(out, i, arrays, render_size=spec.render_size,
                                  display_size=spec.display_size, compress=compress)
            report.written.append(i)
            for k, v in times.items():
                report.times_ms.setdefault(k, []).append(v)
            if bar is not None:
                bar.set_postfix_str(f"{(time.perf_counter() - t0):.2f}s/frame")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return report

