"""Frame descriptions built from a rendered frame dump (the ``tiny_dump`` fixture: traffic,
64x40 -> 128x80): even dump frames are the rendered ones, odd ones the generated ones."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import plugin
from stss_runtime import framedump

GBUFFERS = ("albedo", "normal", "roughness", "metallic", "object_id")


class DumpFrames:
    def __init__(self, folder):
        self.folder = folder
        self.meta = framedump.read_meta(folder)
        self.render_size = tuple(self.meta["render_size"])
        self.display_size = tuple(self.meta["display_size"])
        self.frame_time_ms = 2000.0 / self.meta["fps"]
        self._cache: dict[int, dict] = {}
        self.pass_name: str | None = None  # None: the context's default pass

    def with_pass(self, pass_name: str) -> "DumpFrames":
        """The same frames, whose :meth:`desc` names ``pass_name`` unless told otherwise."""
        other = copy.copy(self)  # shares the frame cache
        other.pass_name = pass_name
        return other

    def arrays(self, i: int) -> dict:
        if i not in self._cache:
            self._cache[i] = framedump.read_frame(self.folder, i)
        return self._cache[i]

    def desc(self, **overrides) -> plugin.ContextDescription:
        kw = {"max_render_size": self.render_size, "display_size": self.display_size}
        if self.pass_name is not None:
            kw["pass_name"] = self.pass_name
        kw.update(overrides)
        return plugin.ContextDescription(**kw)

    def generated(self, n: int, **overrides) -> plugin.GeneratedFrameDescription:
        b = self.arrays(2 * n + 1)
        kw = {"depth": b["depth"], "motion": b["motion"], "jitter_px": tuple(float(v) for v in b["jitter"]),
              "view": b["view"], "proj": b["proj"], **{k: b[k] for k in GBUFFERS}}
        kw.update(overrides)
        return plugin.GeneratedFrameDescription(**kw)

    def frame(self, n: int, with_generated: bool = True, **overrides) -> plugin.FrameDescription:
        """Rendered frame ``n`` (dump frame 2n) and, with ``with_generated``, dump frame 2n+1."""
        a = self.arrays(2 * n)
        kw = {"frame_index": n, "color": a["color"], "depth": a["depth"], "motion": a["motion"],
              "jitter_px": tuple(float(v) for v in a["jitter"]), "frame_time_ms": self.frame_time_ms,
              "near": float(self.meta["near"]), "far": float(self.meta["far"]),
              "fov_y_rad": math.radians(self.meta["fov_y_deg"]), "view": a["view"], "proj": a["proj"],
              "generated": [self.generated(n)] if with_generated else [], **{k: a[k] for k in GBUFFERS}}
        kw.update(overrides)
        return plugin.FrameDescription(**kw)


@pytest.fixture(scope="session")
def dump(tiny_dump):
    return DumpFrames(tiny_dump)


def as_nchw(hwc) -> np.ndarray:
    a = hwc.cpu().numpy() if hasattr(hwc, "cpu") else np.asarray(hwc)
    return a.transpose(2, 0, 1)[None]


def require_c_build() -> None:
    """What the C ABI library is built with (a C compiler, the Python headers and a shared
    libpython, all installed by ``make setup``): missing, the test fails naming it."""
    from plugin import c_abi

    from .. import installed

    missing = c_abi.build_missing()
    if missing:
        installed.missing("what the C ABI library is built with: " + "; ".join(missing))


@pytest.fixture
def c_buildable():
    require_c_build()


@pytest.fixture(scope="session")
def c_table(tmp_path_factory):
    """The C half of the malformed-call campaign (``c_abi_table.py``), run once per session
    in a process of its own (loading the library into this process would leave it fragile):
    (the finished pytest process, the records of the C cases it executed)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from . import campaign

    require_c_build()
    table = Path(__file__).with_name("c_abi_table.py")
    records = tmp_path_factory.mktemp("campaign") / "c_records.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", campaign.C_RECORDS_ENV: str(records)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(table)],
                          capture_output=True, text=True, timeout=900, cwd=table.parents[2], env=env)
    return proc, campaign.read_c_records(records)
