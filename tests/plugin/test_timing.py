"""Per-stage dispatch timings: host clocks, and GPU times from events read only once complete."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.timing import StageTimer


class FakeGpu:
    """A stream whose events complete when the test says so; event k sits at time ``times[k]`` ms."""

    def __init__(self):
        self.events, self.done = [], 0

    def event(self):
        gpu = self

        class Event:
            def record(self):
                self.k = len(gpu.events)
                gpu.events.append(self)

            def query(self):
                return self.k < gpu.done

            def elapsed_time(self, end):
                assert self.query() and end.query(), "read before the GPU got there: that would stall"
                return float(10 * (end.k - self.k) + end.k % 3)

        return Event()


def _dispatch(timer, frame, clock):
    timer.begin()
    for stage in ("inputs", "upscale", "generate", "ui"):
        clock[0] += 0.002
        timer.mark(stage)
    return timer.end(frame)


def test_host_times_per_stage_and_total():
    clock = [100.0]
    timer = StageTimer(None, clock=lambda: clock[0])
    host = _dispatch(timer, 0, clock)
    assert set(host) == {"inputs", "upscale", "generate", "ui", "total"}
    assert host["upscale"] == pytest.approx(2.0) and host["total"] == pytest.approx(8.0)
    assert timer.poll() == (None, {}) and not timer.gpu  # no GPU times on the CPU


def test_gpu_times_arrive_late_and_never_wait():
    gpu, clock = FakeGpu(), [0.0]
    timer = StageTimer(gpu.event, clock=lambda: clock[0])
    _dispatch(timer, 7, clock)
    assert timer.poll() == (None, {})  # the GPU has not reached the dispatch's last mark: not read
    _dispatch(timer, 8, clock)
    gpu.done = 5  # the first dispatch's five events are complete, the second's are not
    frame, ms = timer.poll()
    assert frame == 7 and set(ms) == {"inputs", "upscale", "generate", "ui", "total"}
    assert ms["inputs"] == 10 + 1 % 3 and ms["total"] == 40 + 4 % 3
    assert timer.poll() == (None, {})
    gpu.done = 10
    assert timer.poll()[0] == 8


def test_a_gpu_far_behind_drops_the_oldest_instead_of_waiting():
    gpu, clock = FakeGpu(), [0.0]
    timer = StageTimer(gpu.event, clock=lambda: clock[0])
    for f in range(StageTimer.max_pending + 3):
        _dispatch(timer, f, clock)
    assert timer.dropped == 3
    gpu.done = len(gpu.events)
    assert timer.poll()[0] == 3  # frames 0-2 were given up on


def test_a_refused_dispatch_leaves_nothing_pending():
    gpu, clock = FakeGpu(), [0.0]
    timer = StageTimer(gpu.event, clock=lambda: clock[0])
    timer.begin()
    timer.mark("inputs")  # ... and the dispatch raised: no end()
    _dispatch(timer, 1, clock)
    gpu.done = len(gpu.events)
    frame, ms = timer.poll()
    assert frame == 1 and timer.poll() == (None, {})
    with pytest.raises(RuntimeError):
        StageTimer().mark("inputs")


def test_a_cpu_context_reports_host_timings_and_no_gpu_timings():
    import plugin

    ctx = plugin.Context(plugin.ContextDescription(max_render_size=(32, 16), display_size=(64, 32),
                                                   pass_name="bilinear", generated_frames=0))
    rng = np.random.default_rng(0)
    r = ctx.dispatch(plugin.FrameDescription(
        frame_index=0, color=rng.random((16, 32, 3), dtype=np.float32), depth=np.full((16, 32), 5.0, np.float32),
        motion=np.zeros((16, 32, 2), np.float32), jitter_px=(0.25, -0.25), frame_time_ms=16.7, near=0.1, far=100.0,
        fov_y_rad=1.0, view=np.eye(4), proj=np.eye(4)))
    assert r.timings_ms["total"] >= r.timings_ms["upscale"] > 0
    assert r.gpu_timings_ms == {} and r.gpu_timings_frame is None
    ctx.destroy()
