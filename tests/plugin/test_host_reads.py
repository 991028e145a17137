"""Input checks cost one host read per dispatch. On CUDA every read of a device value
(``float(t.min())``, ``bool(t.any())``, ``.item()``, ``.cpu()``) is a host synchronisation;
the context reads all its checks' values back together, once (``plugin.checks``). Checked
here on the CPU: every call that would read a tensor's value back is counted while a
dispatch runs, outside the pass itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import plugin

from .campaign import SyntheticFrames

#: Tensor functions that read values back to the host (a synchronisation on CUDA).
READS = {"__bool__", "__float__", "__int__", "__index__", "__complex__", "item", "tolist", "numpy", "cpu", "equal",
         "allclose", "nonzero", "__format__", "__repr__", "__str__", "__array__", "unique", "masked_select"}


class HostReads(TorchFunctionMode):
    """Counts reads back to the host, except while ``paused``."""

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []
        self.paused = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if not self.paused and name in READS:  # (.to(device) is the context's device here: not counted)
            self.reads.append(name)
        return func(*args, **(kwargs or {}))


class _PausedPass:
    """The context's pass, with the counting paused while it runs (the pass is not the
    plugin's input checking)."""

    def __init__(self, inner, counter: HostReads):
        self._inner, self._counter = inner, counter

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __call__(self, frame):
        self._counter.paused = True
        try:
            return self._inner(frame)
        finally:
            self._counter.paused = False


def _every_input(frames: SyntheticFrames, n: int) -> plugin.FrameDescription:
    """Frame ``n`` with every optional image given, as CPU tensors (so that the outputs stay
    tensors too: a numpy output is a read back by design)."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    a, b = frames.arrays(2 * n), frames.arrays(2 * n + 1)
    h, w = a["depth"].shape
    W, H = frames.display_size
    images = {k: t(a[k]) for k in ("color", "depth", "motion", "albedo", "normal", "roughness", "metallic", "object_id")}
    generated = frames.generated(n, **{k: t(b[k]) for k in ("depth", "motion", "albedo", "normal", "roughness",
                                                            "metallic", "object_id")}, ui=torch.zeros(H, W, 4))
    return frames.frame(n, reactive=torch.full((h, w), 0.5), transparency=torch.zeros(h, w),
                        hudless=t(a["color"]), ui=torch.zeros(H, W, 4), prev_view=frames.arrays(2 * n - 1)["view"],
                        prev_proj=frames.arrays(2 * n - 1)["proj"], generated=[generated], **images)


@pytest.mark.parametrize("validation", [False, True], ids=["plain", "validation"])
def test_a_dispatch_reads_its_checks_back_once(monkeypatch, validation):
    import importlib

    runs = []
    counter = HostReads()
    try:
        checks = importlib.import_module("plugin.checks")
    except ImportError:  # a plugin without batched checks: every read is counted
        checks = None
    if checks is not None:
        real_run = checks.ValueChecks.run

        def run(self):  # the one read back: counted as one, whatever it calls inside
            paused, counter.paused = counter.paused, True
            try:
                runs.append(len(self))
                return real_run(self)
            finally:
                counter.paused = paused

        monkeypatch.setattr(checks.ValueChecks, "run", run)
    frames = SyntheticFrames()
    with plugin.Context(frames.desc(pass_name="bilinear", validation=validation)) as ctx:
        ctx.pass_ = _PausedPass(ctx.pass_, counter)
        for n in range(1, 4):
            runs.clear()
            with counter:
                r = ctx.dispatch(_every_input(frames, n))
            assert isinstance(r.output, torch.Tensor)
            assert counter.reads == [], f"dispatch {n}: reads outside the batched check: {counter.reads}"
            assert len(runs) == 1 and runs[0] >= 20, runs  # every image's checks, read back in one go


def test_checks_read_back_once_and_raise_the_first_failure_in_order():
    from plugin.checks import ValueChecks

    seen = []
    c = ValueChecks()
    c.add(lambda a, b: seen.append((a, b)), torch.tensor(1.0), torch.tensor([1, 2, 3]).sum())

    def fails(v):
        raise plugin.InvalidInputError("frame.x", "0", v)

    c.add(fails, torch.tensor(5.0))
    c.add(lambda v: seen.append("never"), torch.tensor(0.0))
    with pytest.raises(plugin.InvalidInputError, match="^frame.x: expected 0, got 5.0"):
        c.run()
    assert seen == [(1.0, 6.0)] and c.reads == 1 and len(c) == 0
