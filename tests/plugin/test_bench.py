"""``python -m plugin.bench``: the API's own cost against the bare pass call."""

from __future__ import annotations

import subprocess
import sys

from plugin.bench import measure_overhead


def test_overhead_is_measured_on_the_same_frames(monkeypatch):
    """The context's pass and the bare pass must be handed the same frames in the same order
    (colour, depth, motion, jitter; rendered then generated) and give the same outputs: the
    overhead is only a difference of times if both did the same work."""
    import torch

    from stss_runtime.passes.base import Pass

    seen: dict[int, list] = {}
    call = Pass.__call__

    def spy(self, frame):
        out = call(self, frame)
        seen.setdefault(id(self), []).append((frame, out))
        return out

    monkeypatch.setattr(Pass, "__call__", spy)
    r = measure_overhead("bilinear", (40, 24), pairs=2, warmup=1)
    assert r["dispatch_ms"] > 0 and r["bare_ms"] > 0
    assert abs(r["overhead_ms"] - (r["dispatch_ms"] - r["bare_ms"])) < 1e-9
    assert r["display_size"] == [80, 48]
    assert len(seen) == 2, "one pass inside the context, one bare"
    api, bare = seen.values()
    assert len(api) == len(bare) == 2 * (2 + 1)  # (warm-up + timed pairs) x (rendered + generated)
    for (fa, oa), (fb, ob) in zip(api, bare):
        assert fa.shaded == fb.shaded and tuple(fa.jitter_px) == tuple(fb.jitter_px)
        for name in ("depth", "motion") + (("color",) if fa.shaded else ()):
            assert torch.equal(getattr(fa, name).float(), getattr(fb, name).float()), name
        assert torch.equal(oa, ob)
    assert not torch.equal(api[0][1], api[2][1])  # the frames differ from pair to pair


def test_cli_table_and_errors():
    r = subprocess.run([sys.executable, "-m", "plugin.bench", "--passes", "bilinear", "--sizes", "40x24",
                        "--pairs", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| bilinear | 40x24 -> 80x48 |" in r.stdout
    r = subprocess.run([sys.executable, "-m", "plugin.bench", "--passes", "dlss"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "--passes: expected some of" in r.stderr
