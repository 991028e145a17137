"""Fixtures of the demo tests: a private X server for the windowed tests."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from .. import installed


@pytest.fixture
def xvfb_display():
    """A private X server (Xvfb: installed by ``make setup``, so its absence fails the test).
    Each pytest-xdist worker scans its own range of display numbers, so two never collide."""
    exe = installed.program("Xvfb", "xvfb")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    base = 90 + 40 * int(worker[2:] or 0) if worker.startswith("gw") else 90
    for n in range(base, base + 40):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            break
    proc = subprocess.Popen([exe, f":{n}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not os.path.exists(f"/tmp/.X11-unix/X{n}"):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"Xvfb :{n} did not start")
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)
