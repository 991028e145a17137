"""Frame-time profiling for the demo: a ring buffer of per-frame records and deferred GL timers.

No imgui here (``demo_renderer/overlay.py`` draws these numbers); matplotlib is imported only
by :meth:`FrameProfiler.plot_png`.

Typical render loop (one display frame)::

    prof = FrameProfiler(capacity=1024, budget_ms=4.0)
    timer = DeferredGpuTimer(ctx, latency=2, profiler=prof)   # feeds prof itself

    prof.begin_frame(display_index, "rendered")        # or "generated" / "native"
    with timer.scope("gbuffer"):  ...                   # GL work; CPU + GPU time
    with timer.scope("shading"):  ...
    prof.add("stss.upscale", cpu_ms=3.1)                # any CPU-only measurement
    timer.end_frame()                                   # GPU results of frame-2 -> prof
    prof.end_frame()                                    # present_ms measured (or pass it)
    window.swap_buffers()

Without ``profiler=`` the timer returns :class:`GpuTimings` from ``end_frame`` and the caller
hands them to :meth:`FrameProfiler.add_gpu_results`.
"""

from __future__ import annotations

import csv
import math
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

#: Frame kinds, in the order of their integer codes in the ring buffer.
KINDS = ("rendered", "generated", "native")
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}

#: ``Application`` of every row of :meth:`FrameProfiler.to_csv` (PresentMon: the process name).
APPLICATION = "stss_demo"
#: The PresentMon 2 columns :meth:`FrameProfiler.to_csv` writes first, in this order; then
#: ``Frame`` (the display frame index) and the per-pass ``<pass>_cpu_ms`` / ``<pass>_gpu_ms``.
PRESENTMON_COLUMNS = ("Application", "FrameType", "TimeInSeconds", "MsBetweenPresents", "MsBetweenDisplayChange",
                      "MsCPUBusy", "MsGPUBusy", "MsAnimationError", "AnimationTime")
#: The tail fractions behind the percentiles and lows of :meth:`FrameProfiler.stats`.
PERCENTILES = {"p50_ms": 0.5, "p95_ms": 0.05, "p99_ms": 0.01}
LOWS = {"low_1pct_fps": 0.01, "low_0_1pct_fps": 0.001}


def frame_type(kind: str, distance: int = 0) -> str:
    """PresentMon's ``FrameType`` of a frame: ``Application`` for a frame the renderer drew
    (rendered or native), ``STSS_FG<k>`` for the generated frame ``k`` display frames after
    its rendered frame (frame generation's own name, as a driver's ``AMD_AFMF`` is)."""
    return f"STSS_FG{max(1, int(distance))}" if kind == "generated" else "Application"


def slowest(frame_times_desc: np.ndarray, fraction: float) -> float:
    """MangoHud's rule (``fps_metrics.h``): of the frame times sorted slowest first, the one
    at index ``floor(fraction * n) - 1`` (at least the first): the frame time that
    ``fraction`` of the frames reach or exceed. Its 1 % low (``fraction`` 0.01) is
    ``1000 /`` that time; the p99 frame time is the same frame."""
    n = len(frame_times_desc)
    return float(frame_times_desc[max(0, math.floor(fraction * n + 1e-9) - 1)])


class FrameProfiler:
    """A fixed-size ring buffer of per-frame records.

    Each record holds the display frame index, the frame kind (``"rendered"``: the renderer
    drew it and STSS upscaled it; ``"generated"``: STSS extrapolated it, no scene render;
    ``"native"``: rendered at display resolution without STSS), the wall time between this
    present and the previous one (``MsBetweenPresents``, ms), the present's time stamp (s),
    and per named pass a CPU time and a GPU time (ms, NaN where not measured). Pass names are
    dynamic: a new name adds a column (a rare reallocation); frames recorded before it have
    NaN there.

    Storage is preallocated numpy arrays written in place (no per-frame allocation). Every
    value is written twice, at ``slot`` and ``slot + capacity`` (a "mirrored" ring), so the
    newest ``n <= capacity`` frames are always one contiguous slice: :meth:`history`,
    :meth:`frame_times` etc. return **read-only views, no copies**. A view aliases the ring:
    its contents change as frames are added, so copy it to keep it.

    API: :meth:`begin_frame` (index, kind) -> any number of :meth:`add` (pass, cpu_ms,
    gpu_ms; repeated names in one frame are summed) -> :meth:`end_frame` (present_ms).
    GPU times that arrive frames later (:class:`DeferredGpuTimer`) go in with
    :meth:`add_gpu_results`, matched by display frame index. Only ended frames count in
    :meth:`stats`, :meth:`history`, :meth:`to_csv` and :meth:`plot_png`.
    """

    def __init__(self, capacity: int = 1024, budget_ms: float = 4.0):
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = int(capacity)
        self.budget_ms = float(budget_ms)
        c2 = 2 * self.capacity
        self._index = np.zeros(c2, np.int64)
        self._kind = np.zeros(c2, np.int8)
        self._distance = np.zeros(c2, np.int8)  # generated frames: display frames after the rendered one
        self._anim = np.full(c2, np.nan)  # the animation (scene) time the frame shows, seconds
        self._present = np.full(c2, np.nan)
        self._time = np.full(c2, np.nan)
        self._pass_names: list[str] = []
        self._pass_col: dict[str, int] = {}
        self._cpu = np.full((8, c2), np.nan)  # (pass, mirrored slot): one pass is contiguous
        self._gpu = np.full((8, c2), np.nan)
        self._count = 0          # frames ended so far (ever)
        self._open = False
        self._last_index: int | None = None
        self._last_present_t: float | None = None
        self._begin_t = 0.0
        self._clock = 0.0        # TimeInSeconds of the newest ended frame

    # ------------------------------------------------------------------ recording
    @property
    def pass_names(self) -> list[str]:
        """Pass names in the order they were first seen (a copy)."""
        return list(self._pass_names)

    @property
    def frame_count(self) -> int:
        """Frames recorded so far (ended), including those the ring has dropped."""
        return self._count

    def __len__(self) -> int:
        """Frames currently held (ended ones; at most ``capacity``, ``capacity - 1`` while a
        frame is open on a full ring, since the open frame reuses the oldest slot)."""
        return min(self._count, self.capacity - (1 if self._open else 0))

    @property
    def current_index(self) -> int | None:
        """The display index of the open frame, else of the last one begun."""
        return self._last_index

    def _slot(self) -> int:
        return self._count % self.capacity

    def begin_frame(self, index: int, kind: str = "rendered", distance: int = 0,
                    animation_s: float | None = None) -> None:
        """Start the record of display frame ``index`` of kind ``"rendered"``, ``"generated"``
        or ``"native"``; ``distance``: a generated frame's display frames after its rendered
        frame (1 to 3); ``animation_s``: the scene time it shows (``AnimationTime``, for
        ``MsAnimationError``). A frame still open is ended first (with a measured present time)."""
        if kind not in _KIND_CODE:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if self._open:
            self.end_frame()
        s = self._slot()
        for s_ in (s, s + self.capacity):
            self._index[s_] = index
            self._kind[s_] = _KIND_CODE[kind]
            self._distance[s_] = int(distance)
            self._anim[s_] = np.nan if animation_s is None else float(animation_s)
            self._present[s_] = np.nan
            self._time[s_] = np.nan
        self._cpu[:, s] = np.nan
        self._cpu[:, s + self.capacity] = np.nan
        self._gpu[:, s] = np.nan
        self._gpu[:, s + self.capacity] = np.nan
        self._open = True
        self._last_index = int(index)
        self._begin_t = time.perf_counter()

    def _col(self, name: str) -> int:
        col = self._pass_col.get(name)
        if col is None:
            col = len(self._pass_names)
            if col == self._cpu.shape[0]:  # grow the pass axis (rare)
                grow = np.full((col, 2 * self.capacity), np.nan)
                self._cpu = np.concatenate([self._cpu, grow])
                self._gpu = np.concatenate([self._gpu, grow.copy()])
            self._pass_names.append(name)
            self._pass_col[name] = col
        return col

    @staticmethod
    def _accumulate(arr: np.ndarray, col: int, slots: tuple[int, int], ms: float) -> None:
        old = arr[col, slots[0]]
        v = ms if math.isnan(old) else old + ms
        arr[col, slots[0]] = v
        arr[col, slots[1]] = v

    def add(self, pass_name: str, cpu_ms: float | None = None, gpu_ms: float | None = None) -> None:
        """Add a pass's CPU and/or GPU time (ms) to the open frame; called twice with one
        name in one frame, the times are summed. Ignored when no frame is open."""
        if not self._open:
            return
        col = self._col(pass_name)
        s = self._slot()
        slots = (s, s + self.capacity)
        if cpu_ms is not None:
            self._accumulate(self._cpu, col, slots, float(cpu_ms))
        if gpu_ms is not None:
            self._accumulate(self._gpu, col, slots, float(gpu_ms))

    def end_frame(self, present_ms: float | None = None, time_s: float | None = None) -> None:
        """End the open frame. ``present_ms``: wall time since the previous present (ms); by
        default measured with ``time.perf_counter`` between ``end_frame`` calls (the first
        frame: since its ``begin_frame``). ``time_s``: the present's time stamp in seconds
        from the start of the recording (``TimeInSeconds``); by default the previous one plus
        ``present_ms``."""
        if not self._open:
            raise RuntimeError("end_frame() without begin_frame()")
        now = time.perf_counter()
        if present_ms is None:
            ref = self._last_present_t if self._last_present_t is not None else self._begin_t
            present_ms = (now - ref) * 1000.0
        self._last_present_t = now
        self._clock = float(time_s) if time_s is not None else self._clock + present_ms / 1000.0
        s = self._slot()
        for s_ in (s, s + self.capacity):
            self._present[s_] = present_ms
            self._time[s_] = self._clock
        self._count += 1
        self._open = False

    def add_gpu_results(self, results) -> int:
        """Store GPU times that arrived late: ``results`` is a :class:`GpuTimings`, a list of
        them, or ``(frame_index, {pass: gpu_ms})``. Each is matched to the newest held frame
        (ended or open) with that display index; frames the ring no longer holds are
        skipped. Returns the number of frames updated."""
        if isinstance(results, GpuTimings):
            results = [results]
        elif isinstance(results, tuple) and len(results) == 2 and isinstance(results[1], dict):
            results = [GpuTimings(int(results[0]), dict(results[1]))]
        done = 0
        for r in results:
            s = self._find(r.frame)
            if s is None:
                continue
            for name, ms in r.gpu_ms.items():
                col = self._col(name)
                self._gpu[col, s] = ms
                self._gpu[col, s + self.capacity] = ms
            done += 1
        return done

    def _find(self, frame_index: int) -> int | None:
        if self._open and self._index[self._slot()] == frame_index:
            return self._slot()
        n = len(self)
        if n == 0:
            return None
        a, b = self._span(n)
        hits = np.flatnonzero(self._index[a:b] == frame_index)
        if hits.size == 0:
            return None
        return (a + int(hits[-1])) % self.capacity

    def clear(self) -> None:
        """Forget every frame (pass names are kept)."""
        self._count = 0
        self._open = False
        self._clock = 0.0
        self._last_present_t = None

    # ------------------------------------------------------------------ reading
    def _span(self, n: int) -> tuple[int, int]:
        """[a, b) of the newest ``n`` ended frames in the mirrored arrays."""
        newest = (self._count - 1) % self.capacity + self.capacity
        return newest - n + 1, newest + 1

    def _n(self, last: int | None = None, window_s: float | None = None) -> int:
        n = len(self)
        if last is not None:
            n = max(0, min(n, int(last)))
        if window_s is not None and n > 0:
            a, b = self._span(n)
            t = self._time[a:b]
            n = int(np.count_nonzero(t >= t[-1] - window_s))  # times ascend: a suffix
        return n

    def _view(self, arr: np.ndarray, n: int) -> np.ndarray:
        a, b = self._span(n) if n else (0, 0)
        v = arr[..., a:b]
        v.flags.writeable = False
        return v

    def frame_indices(self, last: int | None = None, window_s: float | None = None) -> np.ndarray:
        """Display frame indices of the held frames, oldest first (a read-only view)."""
        return self._view(self._index, self._n(last, window_s))

    def frame_times(self, last: int | None = None, window_s: float | None = None) -> np.ndarray:
        """``MsBetweenPresents`` of the held frames, oldest first (a read-only view)."""
        return self._view(self._present, self._n(last, window_s))

    def times_s(self, last: int | None = None, window_s: float | None = None) -> np.ndarray:
        """``TimeInSeconds`` of the held frames, oldest first (a read-only view)."""
        return self._view(self._time, self._n(last, window_s))

    def kinds(self, last: int | None = None, window_s: float | None = None) -> np.ndarray:
        """Kind codes (index into :data:`KINDS`) of the held frames (a read-only view)."""
        return self._view(self._kind, self._n(last, window_s))

    def distances(self, last: int | None = None, window_s: float | None = None) -> np.ndarray:
        """Per held frame: a generated frame's distance from its rendered frame (1..3), else 0."""
        return self._view(self._distance, self._n(last, window_s))

    def animation_times(self, last: int | None = None, window_s: float | None = None) -> np.ndarray:
        """``AnimationTime`` (seconds) of the held frames, NaN where not given (a read-only view)."""
        return self._view(self._anim, self._n(last, window_s))

    def history(self, pass_name: str, gpu: bool = True, last: int | None = None,
                window_s: float | None = None) -> np.ndarray:
        """Per-frame GPU (or CPU) ms of one pass, oldest first, NaN where not measured.
        Returns a **read-only view** into the ring (no copy, contiguous float64): it changes as
        frames are added. An unknown pass gives an all-NaN array (a new one)."""
        n = self._n(last, window_s)
        col = self._pass_col.get(pass_name)
        if col is None:
            return np.full(n, np.nan)
        return self._view((self._gpu if gpu else self._cpu)[col], n)

    def last_frame(self) -> dict:
        """The newest ended frame: ``{"index", "kind", "present_ms", "cpu_ms": {pass: ms},
        "gpu_ms": {pass: ms}}`` (passes not measured in it are left out)."""
        if len(self) == 0:
            return {"index": None, "kind": None, "present_ms": math.nan, "cpu_ms": {}, "gpu_ms": {}}
        s = (self._count - 1) % self.capacity
        cpu = {p: float(self._cpu[c, s]) for p, c in self._pass_col.items() if not math.isnan(self._cpu[c, s])}
        gpu = {p: float(self._gpu[c, s]) for p, c in self._pass_col.items() if not math.isnan(self._gpu[c, s])}
        return {"index": int(self._index[s]), "kind": KINDS[self._kind[s]],
                "present_ms": float(self._present[s]), "cpu_ms": cpu, "gpu_ms": gpu}

    def stats(self, window_s: float | None = None, last: int | None = None) -> dict:
        """Statistics over the held frames, or the newest ``last`` frames, or those presented
        within the last ``window_s`` seconds (of ``TimeInSeconds``; both limits may apply).

        Frame time is ``MsBetweenPresents``. Keys:

        - ``frames``: frames counted; ``rendered`` / ``generated`` / ``native``: per kind.
        - ``min_ms``, ``mean_ms``, ``max_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms`` and the lows,
          all MangoHud's way (:func:`slowest`, as its ``fps_metrics``): the frame times sorted
          slowest first, ``pXX`` is the one at index ``floor((1 - XX/100) n) - 1`` (at least
          0), always a recorded frame time (p99 of 100 frames: the slowest; of 200: the 2nd
          slowest).
        - ``fps_mean``: ``1000 / mean_ms`` (= frames / elapsed present time; MangoHud's AVG).
        - ``low_1pct_fps`` ("1 % low"): ``1000 / p99_ms``, MangoHud's "1%"; ``low_0_1pct_fps``
          ("0.1 % low"): ``1000 /`` the frame time at index ``floor(n / 1000) - 1`` of the
          slowest first (the slowest frame below 2000 frames).
        - ``presented_fps``: presented frames per second = ``frames / sum(frame times)``;
          ``render_fps``: frames the renderer drew (``rendered`` + ``native``) per second over
          the same time, so ``multiplier = presented_fps / render_fps`` is the
          frame-generation ratio; ``generated_by_distance``: generated frames per distance
          from their rendered frame (``{1: .., 2: .., 3: ..}``).
        - ``over_budget``: frames longer than ``budget_ms``; ``budget_ms``.
        - ``passes``: ``{name: {"cpu_ms_mean", "gpu_ms_mean", "cpu_ms_last", "gpu_ms_last",
          "cpu_frames", "gpu_frames"}}`` means over the frames in which it was measured (NaN
          if none), ``_last``: in the newest frame (NaN if not measured there).
        """
        n = self._n(last, window_s)
        ft = self.frame_times(n)
        kinds = self.kinds(n)
        out: dict = {"frames": n, "budget_ms": self.budget_ms}
        for i, k in enumerate(KINDS):
            out[k] = int(np.count_nonzero(kinds == i))
        if n == 0:
            for k in ("min_ms", "mean_ms", "max_ms", *PERCENTILES, "fps_mean", *LOWS, "presented_fps", "render_fps",
                      "multiplier"):
                out[k] = math.nan
            out["over_budget"] = 0
        else:
            desc = np.sort(ft)[::-1]  # slowest first
            total_ms = float(desc.sum())
            mean = total_ms / n
            out.update(min_ms=float(desc[-1]), mean_ms=mean, max_ms=float(desc[0]),
                       fps_mean=1000.0 / mean if mean > 0 else math.inf,
                       over_budget=int(np.count_nonzero(ft > self.budget_ms)))
            out.update({k: slowest(desc, f) for k, f in PERCENTILES.items()})
            for k, f in LOWS.items():
                ms = slowest(desc, f)
                out[k] = 1000.0 / ms if ms > 0 else math.inf
            secs = total_ms / 1000.0
            out["presented_fps"] = n / secs if secs > 0 else math.inf
            out["render_fps"] = (out["rendered"] + out["native"]) / secs if secs > 0 else math.inf
            drawn = out["rendered"] + out["native"]
            out["multiplier"] = n / drawn if drawn else math.nan
        dist = self.distances(n)
        out["generated_by_distance"] = {d: int(np.count_nonzero((kinds == _KIND_CODE["generated"]) & (dist == d)))
                                        for d in (1, 2, 3)}
        passes = {}
        for name, col in self._pass_col.items():
            d = {}
            for tag, arr in (("cpu", self._cpu), ("gpu", self._gpu)):
                h = self._view(arr[col], n)
                m = ~np.isnan(h)
                cnt = int(np.count_nonzero(m))
                d[f"{tag}_ms_mean"] = float(h[m].mean()) if cnt else math.nan
                d[f"{tag}_ms_last"] = float(h[-1]) if n else math.nan
                d[f"{tag}_frames"] = cnt
            passes[name] = d
        out["passes"] = passes
        return out

    def per_frame_ms(self, last: int | None = None, window_s: float | None = None) -> dict[str, dict[str, float]]:
        """``{pass: {"cpu": ms, "gpu": ms}}``: each pass's time summed over the held frames
        (or the newest ``last`` / those within ``window_s``) divided by the number of frames,
        a pass counting 0 in frames that did not run it (NaN if it never did). Unlike the
        means in :meth:`stats` (over the frames that measured a pass) these add up: with
        frame generation the plugin pass runs on rendered frames only, the present on every
        frame, and their sum is the frame time minus what no pass timed."""
        n = self._n(last, window_s)
        out = {}
        for name in self._pass_names:
            row = {}
            for tag in ("cpu", "gpu"):
                h = self.history(name, gpu=tag == "gpu", last=n)
                row[tag] = float(np.nansum(h)) / n if n and not np.isnan(h).all() else math.nan
            out[name] = row
        return out

    # ------------------------------------------------------------------ export
    def to_csv(self, path) -> Path:
        """One row per held frame, oldest first, in PresentMon 2's columns
        (:data:`PRESENTMON_COLUMNS`), so PresentMon tooling reads it:

        - ``Application``: :data:`APPLICATION`; ``FrameType``: ``Application`` for a frame
          the renderer drew, ``STSS_FG<k>`` for a generated one (:func:`frame_type`);
        - ``TimeInSeconds``: the present's time stamp since the recording started;
          ``MsBetweenPresents``: ms since the previous present; ``MsBetweenDisplayChange``:
          the same (the demo sees no display: every present is taken as displayed at once);
        - ``MsCPUBusy`` / ``MsGPUBusy``: the frame's CPU / GPU ms summed over its passes
          (GPU empty where none was measured);
        - ``MsAnimationError``: the frame's step in animation time less its step in present
          time, ms (``(AnimationTime - previous) - MsBetweenDisplayChange``, PresentMon's
          sign: positive, the scene moved on more than the display did); ``AnimationTime``:
          the scene time the frame shows, ms since the first held frame's (empty where the
          frame gave none);

        then ``Frame`` (the display frame index) and ``<pass>_cpu_ms``, ``<pass>_gpu_ms`` for
        every pass (empty where not measured). Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        n = len(self)
        idx, t, ft, kinds = (self.frame_indices(n), self.times_s(n), self.frame_times(n), self.kinds(n))
        dist, anim = self.distances(n), self.animation_times(n)
        cols = [(self.history(p, gpu=False, last=n), self.history(p, gpu=True, last=n))
                for p in self._pass_names]
        cpu_busy = np.nansum([c for c, _ in cols], axis=0) if cols else np.zeros(n)
        gpus = np.array([g for _, g in cols]) if cols else np.full((1, n), np.nan)
        gpu_busy = np.where(np.isnan(gpus).all(0), np.nan, np.nansum(gpus, axis=0))
        anim_ms = (anim - anim[np.isfinite(anim)][0]) * 1000.0 if np.isfinite(anim).any() else anim
        anim_error = np.full(n, np.nan)
        anim_error[1:] = np.diff(anim_ms) - ft[1:]

        def fmt(v: float) -> str:
            return "" if math.isnan(v) else f"{v:.4f}"

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            header = [*PRESENTMON_COLUMNS, "Frame"]
            for p in self._pass_names:
                header += [f"{p}_cpu_ms", f"{p}_gpu_ms"]
            w.writerow(header)
            for i in range(n):
                row = [APPLICATION, frame_type(KINDS[kinds[i]], int(dist[i])), f"{t[i]:.6f}", fmt(ft[i]), fmt(ft[i]),
                       fmt(cpu_busy[i]), fmt(gpu_busy[i]), fmt(anim_error[i]), fmt(anim_ms[i]), int(idx[i])]
                for c, g in cols:
                    row += [fmt(c[i]), fmt(g[i])]
                w.writerow(row)
        return path

    def plot_png(self, path, title: str | None = None, dpi: int = 110) -> Path:
        """A PNG: frame time per frame (rendered / generated / native frames marked apart) with
        the budget line and p99, and a stacked bar of the mean per-pass CPU and GPU ms.
        Uses matplotlib's Agg canvas directly (no pyplot, no global backend change)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        st = self.stats()
        n = st["frames"]
        fig = Figure(figsize=(11, 6.2), dpi=dpi)
        FigureCanvasAgg(fig)
        gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1.0], wspace=0.28)
        ax = fig.add_subplot(gs[0, 0])
        idx = np.asarray(self.frame_indices(n), float)
        ft = np.asarray(self.frame_times(n))
        kinds = np.asarray(self.kinds(n))
        ax.plot(idx, ft, color="0.6", lw=0.8, zorder=1)
        styles = {"rendered": ("o", "tab:blue"), "generated": ("^", "tab:orange"),
                  "native": ("s", "tab:green")}
        ms = 14 if n <= 300 else 5
        for i, k in enumerate(KINDS):
            m = kinds == i
            if m.any():
                mk, col = styles[k]
                ax.scatter(idx[m], ft[m], s=ms, marker=mk, color=col, zorder=2,
                           label=f"{k} ({int(m.sum())})")
        ax.axhline(self.budget_ms, color="tab:red", ls="--", lw=1.5,
                   label=f"budget {self.budget_ms:g} ms ({1000 / self.budget_ms:.0f} FPS)")
        if n:
            ax.axhline(st["p99_ms"], color="0.3", ls=":", lw=1, label=f"p99 {st['p99_ms']:.2f} ms")
        ax.set_xlabel("display frame")
        ax.set_ylabel("frame time (ms between presents)")
        top = max(self.budget_ms * 1.5, float(np.nanmax(ft)) * 1.08 if n else 1.0)
        if top > 20 * self.budget_ms:  # slow frames (a CPU): a log axis keeps the budget line in sight
            ax.set_yscale("log")
            ax.set_ylim(bottom=min(self.budget_ms / 2, float(np.nanmin(ft)) / 1.5), top=top * 1.5)
        else:
            ax.set_ylim(bottom=0, top=top)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
        if n:
            summ = (f"{n} frames  min {st['min_ms']:.2f}  mean {st['mean_ms']:.2f}  "
                    f"p95 {st['p95_ms']:.2f}  p99 {st['p99_ms']:.2f} ms  |  "
                    f"1% low {st['low_1pct_fps']:.1f} FPS  |  presented {st['presented_fps']:.1f} "
                    f"/ rendered {st['render_fps']:.1f} FPS")
        else:
            summ = "no frames recorded"
        ax.set_title(summ, fontsize=8.5)

        bx = fig.add_subplot(gs[0, 1])
        passes = self.per_frame_ms()
        names = list(passes)
        palette = [c for c in (f"C{i}" for i in range(10)) if c != "C3"]  # C3 red: the budget
        cmap = [palette[i % len(palette)] for i in range(len(names))]
        for j, tag in enumerate(("cpu", "gpu")):
            bottom = 0.0
            for i, p in enumerate(names):
                v = passes[p][tag]
                if math.isnan(v) or v <= 0:
                    continue
                bx.bar(j, v, bottom=bottom, color=cmap[i], edgecolor="white", width=0.6,
                       label=p if j == 0 or math.isnan(passes[p]["cpu"]) else None)
                if v > 0.04 * max(self.budget_ms, 1e-6):
                    bx.text(j, bottom + v / 2, f"{v:.2f}", ha="center", va="center", fontsize=7)
                bottom += v
        bx.axhline(self.budget_ms, color="tab:red", ls="--", lw=1.5)
        bx.set_xticks([0, 1], ["CPU", "GPU"])
        bx.set_xlim(-0.6, 1.6)
        bx.set_ylabel("ms per displayed frame, stacked by pass")
        bx.set_title("per-pass cost per frame", fontsize=9)
        bx.grid(axis="y", alpha=0.3)
        if names:
            handles, labels = bx.get_legend_handles_labels()
            seen = {}
            for h, lab in zip(handles, labels):
                seen.setdefault(lab, h)
            bx.legend(list(seen.values()), list(seen), fontsize=7, loc="upper right", framealpha=0.9)
        fig.suptitle(title or "STSS demo frame times", fontsize=11)
        fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.1)
        fig.savefig(path)
        return path


@dataclass
class GpuTimings:
    """The timings of one finished frame from :class:`DeferredGpuTimer`: the frame index it
    was tagged with, ``{pass: gpu_ms}`` (absurd values dropped) and ``{pass: cpu_ms}``."""

    frame: int
    gpu_ms: dict[str, float] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)


class DeferredGpuTimer:
    """GL timer queries per named pass, read ``latency`` frames later so reading never
    stalls the current frame (by then the GPU has finished them).

    ``with timer.scope("gbuffer"): ...`` brackets the GL work with a ``GL_TIME_ELAPSED`` query
    (moderngl ``ctx.query(time=True)``) and the CPU side with ``time.perf_counter``, and, where
    the driver supports KHR_debug, with a debug group of that name (RenderDoc and Nsight
    show it). Queries come from a small free pool per pass (about ``latency + 1`` each,
    grown on demand, reused). GL time queries cannot nest: a scope opened inside another
    records CPU time only (its GPU time is part of the outer one).

    :meth:`end_frame` closes the frame and returns the :class:`GpuTimings` of the frame that
    ended ``latency`` frames before (none for the first ``latency`` frames). Given
    ``profiler=``, the timer also feeds it: scopes add their CPU ms to the open frame at once,
    and ``end_frame`` stores the late GPU ms with :meth:`FrameProfiler.add_gpu_results`.

    Absurd results are discarded (counted in :attr:`discarded`): Mesa returns garbage for the
    first timer query of a context (measured on llvmpipe: ``4294967295`` ns = 0xFFFFFFFF, i.e.
    4.29 s, *below* a 10 s threshold, so that exact value is rejected too), and any result
    above ``max_valid_ms`` (10 s) or below zero is dropped.
    """

    SENTINEL_NS = 0xFFFFFFFF

    def __init__(self, ctx, latency: int = 2, profiler: FrameProfiler | None = None,
                 debug_groups: bool = True, max_valid_ms: float = 10_000.0):
        if latency < 1:
            raise ValueError("latency must be >= 1 (0 would stall on every read)")
        self.ctx = ctx
        self.latency = int(latency)
        self.profiler = profiler
        self.max_valid_ms = float(max_valid_ms)
        self.debug_groups = bool(debug_groups) and bool(getattr(ctx, "supports_debug_scopes", False))
        self.discarded = 0
        self.cpu_ms: dict[str, float] = {}        # the open frame so far
        self.last_cpu_ms: dict[str, float] = {}   # the frame last ended
        self._free: dict[str, list] = {}
        self._current: list[tuple[str, object]] = []
        self._inflight: deque[tuple[int, list, dict]] = deque()
        self._frame = 0
        self._gpu_active = False

    def _take(self, name: str):
        pool = self._free.setdefault(name, [])
        return pool.pop() if pool else self.ctx.query(time=True)

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Time the enclosed GL work (GPU, unless nested) and Python code (CPU) as ``name``."""
        dbg = self.ctx.debug_scope(name) if self.debug_groups else None
        if dbg is not None:
            dbg.__enter__()
        q = None
        if not self._gpu_active:
            q = self._take(name)
            q.mglo.begin()
            self._gpu_active = True
        t0 = time.perf_counter()
        try:
            yield
        finally:
            cpu = (time.perf_counter() - t0) * 1000.0
            if q is not None:
                q.mglo.end()
                self._gpu_active = False
                self._current.append((name, q))
            if dbg is not None:
                dbg.__exit__(None, None, None)
            self.cpu_ms[name] = self.cpu_ms.get(name, 0.0) + cpu
            if self.profiler is not None:
                self.profiler.add(name, cpu_ms=cpu)

    def _read(self, frame: int, queries: list, cpu: dict) -> GpuTimings:
        gpu: dict[str, float] = {}
        for name, q in queries:
            ns = q.elapsed  # ready: issued `latency` frames ago
            self._free.setdefault(name, []).append(q)
            ms = ns / 1e6
            if ns == self.SENTINEL_NS or ns < 0 or ms > self.max_valid_ms:
                self.discarded += 1
                continue
            gpu[name] = gpu.get(name, 0.0) + ms
        return GpuTimings(frame, gpu, cpu)

    def end_frame(self, frame_index: int | None = None) -> list[GpuTimings]:
        """Close the current frame, tagging it with ``frame_index`` (default: the profiler's
        current frame if a profiler was given, else a counter from 0), and return the
        timings of frames ended ``latency`` frames ago (a list of 0 or 1 item normally)."""
        if frame_index is None:
            if self.profiler is not None and self.profiler.current_index is not None:
                frame_index = self.profiler.current_index
            else:
                frame_index = self._frame
        self._frame = int(frame_index) + 1
        self.last_cpu_ms = self.cpu_ms
        self._inflight.append((int(frame_index), self._current, self.cpu_ms))
        self._current, self.cpu_ms = [], {}
        out = []
        while len(self._inflight) > self.latency:
            out.append(self._read(*self._inflight.popleft()))
        if out and self.profiler is not None:
            self.profiler.add_gpu_results(out)
        return out

    def flush(self) -> list[GpuTimings]:
        """Read every frame still in flight (this may wait for the GPU): at shutdown or in
        tests. The open frame's scopes, if any, are ended as a frame first."""
        if self._current or self.cpu_ms:
            self._inflight.append((self._frame, self._current, self.cpu_ms))
            self._frame += 1
            self._current, self.cpu_ms = [], {}
        out = [self._read(*self._inflight.popleft()) for _ in range(len(self._inflight))]
        if out and self.profiler is not None:
            self.profiler.add_gpu_results(out)
        return out

    def release(self) -> None:
        """Release every GL query object (in flight ones are dropped unread)."""
        for _, qs, _ in self._inflight:
            for _, q in qs:
                _release(q)
        for qs in self._free.values():
            for q in qs:
                _release(q)
        self._inflight.clear()
        self._free.clear()


def _release(q) -> None:
    rel = getattr(q.mglo, "release", None)
    if rel is not None:
        rel()
