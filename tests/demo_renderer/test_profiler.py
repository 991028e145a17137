"""The frame-time profiler: ring buffer, statistics, CSV / PNG export, deferred GL timers."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image

from demo_renderer.profiler import DeferredGpuTimer, FrameProfiler, GpuTimings


def _fill(prof: FrameProfiler, frame_times, kinds=None, start=0):
    for i, ft in enumerate(frame_times):
        prof.begin_frame(start + i, kinds[i] if kinds else "rendered")
        prof.end_frame(float(ft))


def test_stats_hand_computed():
    prof = FrameProfiler(capacity=256, budget_ms=4.0)
    rng = np.random.default_rng(1)
    times = rng.permutation(np.arange(1, 101)).astype(float)  # 1..100 ms in random order
    kinds = ["rendered" if i % 4 == 0 else "generated" for i in range(100)]
    kinds[1] = "native"
    _fill(prof, times, kinds)
    s = prof.stats()
    assert s["frames"] == 100
    assert (s["rendered"], s["generated"], s["native"]) == (25, 74, 1)
    assert s["min_ms"] == 1.0 and s["max_ms"] == 100.0
    assert s["mean_ms"] == pytest.approx(50.5)
    # MangoHud's rule: slowest first, index floor(tail fraction * n) - 1
    assert (s["p50_ms"], s["p95_ms"], s["p99_ms"]) == (51.0, 96.0, 100.0)
    # 1 % and 0.1 % low of 100 frames: the single slowest frame (100 ms) -> 10 FPS
    assert s["low_1pct_fps"] == pytest.approx(10.0) and s["low_0_1pct_fps"] == pytest.approx(10.0)
    assert s["multiplier"] == pytest.approx(100 / 26)
    assert s["fps_mean"] == pytest.approx(1000 / 50.5)
    total_s = 5050 / 1000
    assert s["presented_fps"] == pytest.approx(100 / total_s)
    assert s["render_fps"] == pytest.approx(26 / total_s)  # rendered + native
    assert s["over_budget"] == 96  # 5..100 ms

    prof2 = FrameProfiler(capacity=512)
    _fill(prof2, np.arange(1, 201, dtype=float)[::-1])
    s2 = prof2.stats()
    # 200 frames: the 2nd slowest (199 ms) -> 1000 / 199; the 0.1 % low is still the slowest
    assert s2["low_1pct_fps"] == pytest.approx(1000 / 199) and s2["low_0_1pct_fps"] == pytest.approx(1000 / 200)
    assert s2["p95_ms"] == 191.0 and s2["p99_ms"] == 199.0
    # 2500 frames: the 1 % low is the 25th slowest, the 0.1 % low the 2nd
    prof5 = FrameProfiler(capacity=4096)
    _fill(prof5, np.arange(1, 2501, dtype=float))
    s5 = prof5.stats()
    assert s5["low_1pct_fps"] == pytest.approx(1000 / 2476) and s5["low_0_1pct_fps"] == pytest.approx(1000 / 2499)

    # the newest N frames, and a time window (TimeInSeconds is the running sum by default)
    s3 = prof2.stats(last=10)  # frames were added 200, 199, ... -> the last 10 are 10..1
    assert s3["frames"] == 10 and s3["max_ms"] == 10.0 and s3["mean_ms"] == pytest.approx(5.5)
    s4 = prof2.stats(window_s=0.006)  # 1 + 2 + 3 ms -> the last 4 frames are within 6 ms
    assert s4["frames"] == 4 and s4["max_ms"] == 4.0


def test_empty_stats_are_nan():
    s = FrameProfiler().stats()
    assert s["frames"] == 0 and math.isnan(s["mean_ms"]) and s["passes"] == {}


def test_per_pass_means_summing_and_late_gpu_results():
    prof = FrameProfiler(capacity=16)
    for i in range(4):
        prof.begin_frame(i, "rendered")
        prof.add("gbuffer", cpu_ms=1.0, gpu_ms=2.0 + i)
        prof.add("stss", cpu_ms=0.5)
        prof.add("stss", cpu_ms=0.25)  # summed within a frame
        if i >= 2:
            prof.add("shadow", gpu_ms=1.0)  # a pass that appears later
        prof.end_frame(4.0)
    s = prof.stats()
    assert s["passes"]["gbuffer"]["gpu_ms_mean"] == pytest.approx(3.5)
    assert s["passes"]["gbuffer"]["gpu_ms_last"] == 5.0
    assert s["passes"]["stss"]["cpu_ms_mean"] == pytest.approx(0.75)
    assert math.isnan(s["passes"]["stss"]["gpu_ms_mean"])
    assert s["passes"]["shadow"]["gpu_frames"] == 2
    np.testing.assert_array_equal(np.isnan(prof.history("shadow")), [True, True, False, False])
    assert prof.pass_names == ["gbuffer", "stss", "shadow"]
    # GPU times that arrive later are matched by display frame index
    assert prof.add_gpu_results([GpuTimings(1, {"stss": 7.0}), GpuTimings(99, {"stss": 1.0})]) == 1
    assert prof.add_gpu_results((2, {"stss": 9.0})) == 1
    np.testing.assert_array_equal(prof.history("stss", gpu=True)[1:3], [7.0, 9.0])
    last = prof.last_frame()
    assert last["index"] == 3 and last["gpu_ms"]["shadow"] == 1.0 and "stss" not in last["gpu_ms"]
    # many passes: the pass axis grows
    prof.begin_frame(4, "generated")
    for k in range(20):
        prof.add(f"p{k}", cpu_ms=k)
    prof.end_frame(4.0)
    assert prof.history("p19", gpu=False)[-1] == 19.0
    assert prof.history("gbuffer", gpu=True)[0] == 2.0  # old data kept through the growth


def test_ring_wraparound_keeps_newest_in_order():
    prof = FrameProfiler(capacity=8)
    for i in range(21):
        prof.begin_frame(100 + i, "rendered" if i % 2 else "generated")
        prof.add("gbuffer", cpu_ms=float(i), gpu_ms=float(10 * i))
        prof.end_frame(float(i + 1))
    assert len(prof) == 8 and prof.frame_count == 21
    np.testing.assert_array_equal(prof.frame_indices(), np.arange(113, 121))
    np.testing.assert_array_equal(prof.frame_times(), np.arange(14, 22, dtype=float))
    np.testing.assert_array_equal(prof.history("gbuffer", gpu=False), np.arange(13, 21, dtype=float))
    np.testing.assert_array_equal(prof.history("gbuffer"), 10 * np.arange(13, 21, dtype=float))
    assert np.all(np.diff(prof.times_s()) > 0)
    # views, not copies: read-only, contiguous, aliasing the ring
    h = prof.history("gbuffer")
    assert not h.flags.writeable and h.flags.c_contiguous and h.base is not None
    with pytest.raises(ValueError):
        h[0] = 1.0
    assert prof.stats(last=3)["mean_ms"] == pytest.approx(20.0)
    # an open frame on a full ring reuses the oldest slot: that frame is no longer counted
    prof.begin_frame(121, "rendered")
    assert len(prof) == 7
    np.testing.assert_array_equal(prof.frame_indices(), np.arange(114, 121))
    prof.end_frame(5.0)
    np.testing.assert_array_equal(prof.frame_indices(), np.arange(114, 122))


def test_end_frame_measures_wall_time_by_default():
    prof = FrameProfiler()
    for i in range(3):
        prof.begin_frame(i)
        prof.end_frame()
    ft = prof.frame_times()
    assert np.all(ft >= 0) and np.all(np.isfinite(ft))
    with pytest.raises(ValueError):
        prof.begin_frame(3, "bogus")
    with pytest.raises(RuntimeError):
        prof.end_frame()


def test_csv_one_row_per_frame(tmp_path):
    prof = FrameProfiler(capacity=16)
    for i in range(5):
        prof.begin_frame(i, "rendered" if i % 2 == 0 else "generated", distance=i % 2)
        prof.add("gbuffer", cpu_ms=0.5, gpu_ms=1.25)
        if i % 2 == 0:
            prof.add("stss", cpu_ms=3.0)
        prof.end_frame(4.0)
    path = prof.to_csv(tmp_path / "frames.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Application", "FrameType", "TimeInSeconds", "MsBetweenPresents", "MsBetweenDisplayChange",
                       "MsCPUBusy", "MsGPUBusy", "MsAnimationError", "AnimationTime", "Frame",
                       "gbuffer_cpu_ms", "gbuffer_gpu_ms", "stss_cpu_ms", "stss_gpu_ms"]
    assert len(rows) == 6
    assert [r[9] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert [r[1] for r in rows[1:]] == ["Application", "STSS_FG1", "Application", "STSS_FG1", "Application"]
    assert float(rows[3][2]) == pytest.approx(0.012) and float(rows[3][3]) == 4.0
    assert float(rows[1][11]) == 1.25 and rows[2][12] == "" and float(rows[1][12]) == 3.0 and rows[1][13] == ""
    assert float(rows[1][5]) == 3.5 and float(rows[2][5]) == 0.5 and float(rows[2][6]) == 1.25  # busy: summed
    assert rows[1][7] == rows[1][8] == ""  # no animation time given


def test_csv_reads_back_by_presentmon_names_at_4x(tmp_path):
    """A 4x stream (one rendered, three generated frames per 33.3 ms of scene time) presented
    8.33 ms apart, one present late: PresentMon's columns, by name, say so."""
    prof = FrameProfiler(capacity=64)
    dt = 1 / 120
    presents = [1000 * dt] * 12
    presents[6] = 20.0  # display frame 6 waited 11.67 ms longer
    for i, ms in enumerate(presents):
        k = i % 4
        prof.begin_frame(i, "rendered" if k == 0 else "generated", distance=k, animation_s=2.0 + i * dt)
        prof.add("stss" if k == 0 else "present", cpu_ms=1.0, gpu_ms=0.5 if k == 0 else None)
        prof.end_frame(ms)
    rows = list(csv.DictReader(prof.to_csv(tmp_path / "profile.csv").open(newline="")))
    assert [r["FrameType"] for r in rows[:4]] == ["Application", "STSS_FG1", "STSS_FG2", "STSS_FG3"]
    assert {r["Application"] for r in rows} == {"stss_demo"}
    assert float(rows[6]["MsBetweenPresents"]) == float(rows[6]["MsBetweenDisplayChange"]) == 20.0
    errors = [float(r["MsAnimationError"]) if r["MsAnimationError"] else None for r in rows]
    assert errors[0] is None and errors[6] == pytest.approx(1000 * dt - 20.0, abs=1e-3)
    assert all(abs(e) < 1e-3 for k, e in enumerate(errors) if k not in (0, 6))
    assert float(rows[5]["AnimationTime"]) == pytest.approx(5000 * dt, abs=1e-3)
    assert [r["MsGPUBusy"] for r in rows[:2]] == ["0.5000", ""] and float(rows[1]["MsCPUBusy"]) == 1.0
    s = prof.stats()
    assert s["generated_by_distance"] == {1: 3, 2: 3, 3: 3} and s["multiplier"] == pytest.approx(4.0)


def test_plot_png_written(tmp_path):
    prof = FrameProfiler(capacity=512, budget_ms=4.0)
    rng = np.random.default_rng(0)
    for i in range(300):
        prof.begin_frame(i, "rendered" if i % 2 == 0 else "generated")
        prof.add("gbuffer", cpu_ms=0.3, gpu_ms=1.0 + 0.2 * rng.random())
        prof.add("shading", cpu_ms=0.2, gpu_ms=0.7)
        prof.add("stss", cpu_ms=1.5 if i % 2 == 0 else 0.9)
        prof.end_frame(3.0 + 2.0 * rng.random())
    path = prof.plot_png(tmp_path / "frames.png")
    assert path.stat().st_size > 20_000
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert img.shape[0] >= 500 and img.shape[1] >= 1000
    assert img.std() > 20
    red = (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)  # the budget line
    orange = (img[..., 0] > 230) & (np.abs(img[..., 1] - 127) < 30) & (img[..., 2] < 60)
    assert red.sum() > 300 and orange.sum() > 300


# ------------------------------------------------------------------ DeferredGpuTimer
class _FakeQuery:
    def __init__(self, ns):
        self.elapsed = ns
        self.mglo = self
        self.active = False

    def begin(self):
        self.active = True

    def end(self):
        self.active = False


class _FakeCtx:
    supports_debug_scopes = False

    def __init__(self, values):
        self.values = list(values)
        self.made = 0

    def query(self, time):
        assert time
        self.made += 1
        return _FakeQuery(self.values.pop(0))


def test_deferred_timer_discards_absurd_values():
    # Mesa's first result: 0xFFFFFFFF ns (4.29 s); then > 10 s, negative, and a fine 1.5 ms
    ctx = _FakeCtx([0xFFFFFFFF, 20_000_000_000, -5, 1_500_000])
    timer = DeferredGpuTimer(ctx, latency=1)
    for name in ("a", "b", "c", "d"):
        with timer.scope(name):
            pass
    assert timer.end_frame(0) == []
    (res,) = timer.flush()
    assert res.frame == 0 and res.gpu_ms == {"d": 1.5}
    assert set(res.cpu_ms) == {"a", "b", "c", "d"} and all(v >= 0 for v in res.cpu_ms.values())
    assert timer.discarded == 3


def test_deferred_timer_pools_and_nesting():
    ctx = _FakeCtx([1_000_000] * 100)
    prof = FrameProfiler()
    timer = DeferredGpuTimer(ctx, latency=2, profiler=prof)
    for f in range(10):
        prof.begin_frame(f)
        with timer.scope("outer"):
            with timer.scope("inner"):  # nested: CPU time only
                pass
        with timer.scope("x"):
            pass
        with timer.scope("x"):  # twice in a frame: summed
            pass
        out = timer.end_frame()
        prof.end_frame(4.0)
        if f >= 2:
            assert [r.frame for r in out] == [f - 2]
            assert out[0].gpu_ms == {"outer": 1.0, "x": 2.0}
    assert ctx.made <= 3 * 4  # (latency + 1) frames x 3 queries in flight, reused after
    np.testing.assert_array_equal(prof.history("x")[:8], 2.0)
    assert np.isnan(prof.history("x")[8:]).all()  # the last 2 frames are still in flight
    assert np.isnan(prof.history("inner")).all() and not np.isnan(prof.history("inner", gpu=False)).any()
    timer.flush()
    assert not np.isnan(prof.history("x")).any()


_EGL_TIMER_SCRIPT = r"""
import moderngl
import numpy as np
from demo_renderer.profiler import DeferredGpuTimer, FrameProfiler

gl = moderngl.create_context(standalone=True, backend="egl")
fbo = gl.framebuffer(color_attachments=[gl.texture((256, 256), 4)])
prog = gl.program(
    vertex_shader="#version 330\nin vec2 p; void main() { gl_Position = vec4(p, 0, 1); }",
    fragment_shader="#version 330\nout vec4 c;\nvoid main() { float a = 0.0;\n"
                    "  for (int i = 0; i < 64; i++) a += sin(gl_FragCoord.x * float(i));\n"
                    "  c = vec4(a); }")
vbo = gl.buffer(np.array([-1, -1, 3, -1, -1, 3], "f4"))
vao = gl.vertex_array(prog, [(vbo, "2f", "p")])
prof = FrameProfiler()
timer = DeferredGpuTimer(gl, latency=2, profiler=prof, debug_groups=False)
fbo.use()
results = []
for f in range(6):
    prof.begin_frame(10 + f, "rendered")
    with timer.scope("gbuffer"):
        fbo.clear(0.0, 0.0, 0.0)
        vao.render()
    with timer.scope("shading"):
        vao.render()
    out = timer.end_frame()
    prof.end_frame(4.0)
    assert [r.frame for r in out] == ([10 + f - 2] if f >= 2 else [])
    results += out
results += timer.flush()
assert [r.frame for r in results] == list(range(10, 16))
gpu = [(r.frame, p, ms) for r in results for p, ms in r.gpu_ms.items()]
# every result is either positive and sane, or was discarded (Mesa's first one)
assert len(gpu) + timer.discarded == 12 and timer.discarded <= 1
assert all(0 < ms < 10_000 for _, _, ms in gpu)
assert all(v > 0 for r in results for v in r.cpu_ms.values())
timer.release()
for o in (vao, vbo, prog):  # leave the shared context clean
    o.release()
h = prof.history("shading")
assert np.all(h[1:] > 0)
timer.release()
vao.release()
vbo.release()
prog.release()
fbo.release()
print("ok")
"""


@pytest.mark.gl
def test_deferred_gpu_timer_on_egl():
    """Real GL timer queries, in a process of its own: the queries left the shared test
    context with a GL error for the next test's renderer."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _EGL_TIMER_SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr

def test_per_frame_costs_add_up_with_frame_generation():
    """The plugin pass runs on rendered frames only: per displayed frame it costs half its
    per-run time, and the passes sum to the frame time (the stacked bars of plot_png)."""
    prof = FrameProfiler()
    for i in range(10):
        prof.begin_frame(i, "rendered" if i % 2 == 0 else "generated")
        if i % 2 == 0:
            prof.add("stss", cpu_ms=6.0)
        prof.add("present", cpu_ms=1.0, gpu_ms=0.5)
        prof.end_frame(8.0 if i % 2 == 0 else 1.5)  # rendered: 6 + 1 + 1 untimed; generated: 1 + 0.5
    per = prof.per_frame_ms()
    assert per["stss"]["cpu"] == 3.0 and math.isnan(per["stss"]["gpu"])
    assert per["present"] == {"cpu": 1.0, "gpu": 0.5}
    assert prof.stats()["passes"]["stss"]["cpu_ms_mean"] == 6.0  # the mean over the frames that ran it
    assert per["stss"]["cpu"] + per["present"]["cpu"] == prof.stats()["mean_ms"] - 0.75  # all but the untimed
    assert math.isnan(prof.per_frame_ms(last=1)["stss"]["cpu"])  # the newest frame was generated: never ran
    assert prof.per_frame_ms(last=2)["stss"]["cpu"] == 3.0
