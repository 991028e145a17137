"""The malformed-call campaign's machinery (not collected: helpers of ``test_bad_input.py``,
``c_abi_table.py`` and ``test_campaign.py``).

Every case makes one malformed call and checks three things: the error (its type or C
result code), a message that names the field and says what was expected and what came, and
that the context did not change: the next correct frames give bit for bit the outputs (and
warnings) of a context that never saw the bad call. Each executed case leaves a record;
``test_campaign.py`` counts the records, not the tables.

Frames are synthetic (no renderer needed): a moving striped pattern at 64x40 -> 128x80
with constant depth, motion vectors, G-buffers, a perspective camera and Halton jitter.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import plugin

RW, RH, DW, DH = 64, 40, 128, 80
GBUFFERS = ("albedo", "normal", "roughness", "metallic", "object_id")


def perspective(fov_y: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(fov_y / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0], [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                     [0, 0, -1, 0]], np.float64)


class SyntheticFrames:
    """The frame source of the campaign, with :class:`~tests.plugin.conftest.DumpFrames`'s
    interface (``arrays``, ``desc``, ``frame``, ``generated``): each rendered display frame
    is followed by its generated ones, one by default (even display frames rendered, odd
    ones generated). ``device_depth``: OpenGL device depth (for contexts with
    ``depth_format="device"``) instead of linear depth. ``generated_frames``: the count per
    rendered frame (also the contexts' ``desc.generated_frames``), or ``"auto"`` with
    ``target_display_hz`` and ``schedule``: the counts such a context asks for, frame by
    frame (the last repeats; the frame time and the render time are ``frame_time_ms``)."""

    render_size = (RW, RH)
    display_size = (DW, DH)
    frame_time_ms = 33.3
    meta = {"near": 0.1, "far": 100.0, "fov_y_deg": 60.0}

    def __init__(self, device_depth: bool = False, generated_frames: int | str = 1,
                 target_display_hz: float | None = None, schedule: tuple[int, ...] = ()):
        self.device_depth = device_depth
        self.generated_frames, self.target_display_hz = generated_frames, target_display_hz
        self.schedule = schedule or (generated_frames,)
        self._cache: dict[int, dict] = {}

    def count(self, n: int) -> int:
        """Generated frames after rendered frame ``n``."""
        return self.schedule[min(n, len(self.schedule) - 1)]

    def display_index(self, n: int, k: int = -1) -> int:
        """The display frame of rendered frame ``n`` (``k = -1``) or of its generated frame ``k``."""
        return sum(self.count(m) + 1 for m in range(n)) + k + 1

    def arrays(self, i: int) -> dict:
        """Display frame ``i``; the pattern moves 0.5 render px per display frame."""
        if i not in self._cache:
            t = 0.5 * i
            x = (np.arange(RW) + 0.5)[None, :] - t
            y = (np.arange(RH) + 0.5)[:, None]
            rgb = np.stack([0.5 + 0.3 * np.sin(x / 2.5) + 0 * y, 0.5 + 0.3 * np.sin(y / 2) + 0 * x,
                            0.4 + 0.2 * np.cos((x + y) / 3)], -1).astype(np.float32)
            motion = np.zeros((RH, RW, 2), np.float32)
            motion[..., 0] = -0.5
            normal = np.zeros((RH, RW, 3), np.float32)
            normal[..., 2] = 1
            view = np.eye(4)
            view[:3, 3] = (-0.01 * i, 0.0, -5.0)
            self._cache[i] = {
                "color": rgb, "albedo": rgb.copy(), "normal": normal, "motion": motion,
                "depth": np.full((RH, RW), 0.9 if self.device_depth else 5.0, np.float32),
                "roughness": np.full((RH, RW), 0.5, np.float32), "metallic": np.zeros((RH, RW), np.float32),
                "object_id": np.ones((RH, RW), np.int32), "view": view,
                "proj": perspective(math.radians(self.meta["fov_y_deg"]), RW / RH, self.meta["near"], self.meta["far"]),
                "jitter": np.array(plugin.jitter_offset(i, 32), np.float32)}
        return self._cache[i]

    def desc(self, **overrides) -> plugin.ContextDescription:
        kw = {"max_render_size": self.render_size, "display_size": self.display_size,
              "generated_frames": self.generated_frames, "target_display_hz": self.target_display_hz}
        kw.update(overrides)
        return plugin.ContextDescription(**kw)

    def generated(self, n: int, k: int = 0, **overrides) -> plugin.GeneratedFrameDescription:
        b = self.arrays(self.display_index(n, k))
        kw = {"depth": b["depth"], "motion": b["motion"], "jitter_px": tuple(float(v) for v in b["jitter"]),
              "view": b["view"], "proj": b["proj"], **{k: b[k] for k in GBUFFERS}}
        kw.update(overrides)
        return plugin.GeneratedFrameDescription(**kw)

    def frame(self, n: int, with_generated: bool = True, **overrides) -> plugin.FrameDescription:
        a = self.arrays(self.display_index(n))
        kw = {"frame_index": n, "color": a["color"], "depth": a["depth"], "motion": a["motion"],
              "jitter_px": tuple(float(v) for v in a["jitter"]), "frame_time_ms": self.frame_time_ms,
              "near": self.meta["near"], "far": self.meta["far"], "fov_y_rad": math.radians(self.meta["fov_y_deg"]),
              "view": a["view"], "proj": a["proj"],
              "generated": [self.generated(n, k) for k in range(self.count(n))] if with_generated else [],
              **{k: a[k] for k in GBUFFERS}}
        kw.update(overrides)
        return plugin.FrameDescription(**kw)


# -- Python cases ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One malformed Python call.

    ``kind`` "frame": ``bad(frames)`` gives the overrides of frame 1 (dispatched after a
    correct frame 0); "desc": the overrides of the context description (the context is
    then never created). ``desc``: the context description both contexts use; ``source``:
    :class:`SyntheticFrames` options."""

    id: str
    bad: Callable[[SyntheticFrames], dict]
    error: type
    field: str
    words: tuple[str, ...] = ()
    kind: str = "frame"
    desc: tuple = ()  # (name, value) pairs
    pass_name: str = "bilinear"
    source: tuple = ()


def _outputs(result) -> tuple:
    """What must be bit-identical: the pictures (bytes), warnings and reset flag."""
    as_bytes = lambda a: np.ascontiguousarray(a.cpu().numpy() if hasattr(a, "cpu") else a).tobytes()  # noqa: E731
    return (as_bytes(result.output), tuple(as_bytes(g.color) for g in result.generated), tuple(result.warnings),
            result.reset)


_REFERENCES: dict[tuple, list] = {}


def reference(case: Case) -> list:
    """Frames 1 and 2 of a context that only ever saw correct frames 0, 1, 2."""
    key = (case.pass_name, case.desc, case.source)
    if key not in _REFERENCES:
        frames = SyntheticFrames(**dict(case.source))
        with plugin.Context(frames.desc(**{"pass_name": case.pass_name, **dict(case.desc)})) as ctx:
            _REFERENCES[key] = [_outputs(ctx.dispatch(frames.frame(n))) for n in range(3)][1:]
    return _REFERENCES[key]


def named(message: str, field: str, words: tuple[str, ...] = ()) -> bool:
    """The message starts with the field, says what was expected and what came, and holds ``words``."""
    return (message.startswith(field + ":") and "expected" in message and "got" in message
            and all(w in message for w in words))


#: Every Python case executed in this process: id -> record (see :func:`run_case`).
RECORDS: dict[str, dict] = {}


def run_case(case: Case) -> dict:
    """Make the malformed call, then the correct ones; record and return what happened:
    ``error`` (the exception's type name or None), ``code``, ``message``, ``named`` and
    ``state_changed`` (the next correct frames differ from :func:`reference`)."""
    frames = SyntheticFrames(**dict(case.source))
    desc = {"pass_name": case.pass_name, **dict(case.desc)}
    err: BaseException | None = None
    if case.kind == "desc":
        try:
            plugin.Context(frames.desc(**{**desc, **case.bad(frames)})).destroy()
        except Exception as e:  # noqa: BLE001 - recorded and judged by the caller
            err = e
        with plugin.Context(frames.desc(**desc)) as ctx:
            after = [_outputs(ctx.dispatch(frames.frame(n))) for n in range(3)][1:]
    else:
        with plugin.Context(frames.desc(**desc)) as ctx:
            ctx.dispatch(frames.frame(0))
            try:
                ctx.dispatch(frames.frame(1, **case.bad(frames)))
            except Exception as e:  # noqa: BLE001
                err = e
            try:
                after = [_outputs(ctx.dispatch(frames.frame(n))) for n in (1, 2)]
            except plugin.PluginError as e:  # the correct frame is refused: the bad call changed the context
                after = [f"{type(e).__name__}: {e}"]
    message = str(err) if err is not None else ""
    if err is not None and not isinstance(err, plugin.PluginError):  # a raw error: show where it came from
        message = f"{message} [{type(err).__module__}.{type(err).__name__}]"
    record = {"id": case.id, "interface": "python", "error": type(err).__name__ if err is not None else None,
              "typed": isinstance(err, case.error), "code": int(getattr(err, "code", -1)) if err is not None else 0,
              "message": message, "named": err is not None and named(message, case.field, case.words),
              "state_changed": after != reference(case), "crashed": False}
    RECORDS[case.id] = record
    return record


# -- the C cases' records (written by c_abi_table.py in its own process) ----------------------

#: Where c_abi_table.py writes one JSON record per C case executed (the path is passed in
#: the environment by test_c_abi.py / test_campaign.py).
C_RECORDS_ENV = "STSS_CAMPAIGN_C_RECORDS"


def write_c_record(record: dict) -> None:
    path = os.environ.get(C_RECORDS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_c_records(path: str | Path) -> list[dict]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


@dataclass
class Summary:
    cases: int = 0
    named_errors: int = 0
    crashes: int = 0
    state_changes: int = 0
    internal: int = 0
    by_interface: dict = field(default_factory=dict)

    @classmethod
    def of(cls, records: list[dict]) -> "Summary":
        s = cls()
        for r in records:
            s.cases += 1
            s.by_interface[r["interface"]] = s.by_interface.get(r["interface"], 0) + 1
            s.named_errors += bool(r["named"])
            s.crashes += bool(r["crashed"])
            s.state_changes += bool(r["state_changed"])
            s.internal += r.get("code") == int(plugin.Result.INTERNAL)
        return s

    def line(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.by_interface.items()))
        return (f"{self.cases} malformed calls ({parts}): {self.named_errors} clear errors naming the field, "
                f"{self.crashes} crashes, {self.state_changes} state changes, {self.internal} INTERNAL")
