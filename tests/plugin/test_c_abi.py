"""The C ABI (``plugin/include/stss_plugin.h``, ``libstss_plugin.so``): built once per
session into a temporary folder; the C example engine compiled with gcc and run as an
engine would; then the table of malformed calls (``c_abi_table.py``), run in a process of
its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugin import c_abi
from plugin.errors import Result

from .. import installed

pytestmark = pytest.mark.usefixtures("c_buildable")  # what make setup installs: missing, the tests fail

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "plugin" / "examples" / "engine.c"
RW, RH, DW, DH = 64, 40, 128, 80
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]

#: The environment an engine process starts with: nothing for our Python, and PYTHON*
#: variables meant for another one, which the library ignores.
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "OMP_NUM_THREADS": "2",
             "PYTHONHOME": "/nonexistent/python", "PYTHONPATH": "/nonexistent/site-packages"}

OK, INVALID_ARGUMENT, INVALID_STATE = int(Result.OK), int(Result.INVALID_ARGUMENT), int(Result.INVALID_STATE)
UNSUPPORTED, BACKEND_UNAVAILABLE, NULL_POINTER = (int(Result.UNSUPPORTED), int(Result.BACKEND_UNAVAILABLE),
                                                  int(Result.NULL_POINTER))


@pytest.fixture(scope="session")
def c_library(tmp_path_factory) -> Path:
    return c_abi.build(tmp_path_factory.mktemp("c_abi"))


def _compile(source: Path, out: Path, library: Path, extra: tuple[str, ...] = ()) -> Path:
    cmd = ["gcc", *CFLAGS, str(source), f"-I{c_abi.HEADER.parent}", *extra, "-lm", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def engine(c_library) -> Path:
    lib_dir = c_library.parent
    return _compile(ENGINE, lib_dir / "engine", c_library,
                    (f"-L{lib_dir}", "-lstss_plugin", f"-Wl,-rpath,{lib_dir}"))


# -- the library as built ----------------------------------------------------------------------

def test_library_exports_the_header_functions_and_bakes_this_checkout(c_library):
    nm = subprocess.run([installed.program("nm", "binutils, with gcc"), "-D", "--defined-only", str(c_library)],
                        capture_output=True, text=True)
    assert nm.returncode == 0, nm.stderr
    exported = {line.split()[-1] for line in nm.stdout.splitlines() if " T " in line}
    code = re.sub(r"/\*.*?\*/", "", c_abi.header_declarations(), flags=re.S)
    declared = set(re.findall(r"\b(stss_\w+)\s*\(", code))
    assert declared and declared <= exported, sorted(declared - exported)
    source = (c_library.parent / f"{c_abi.MODULE_NAME}.c").read_text()
    config = (c_library.parent / c_abi.BUILD_CONFIG).read_text()
    assert str(ROOT) in source and f'"{sys.executable}"' in config  # tied to this checkout and venv
    assert "Py_InitializeFromConfig" not in source  # the C side is compiled from plugin/c, not generated


# -- the C engine ---------------------------------------------------------------------------

ENGINE_CHECKS = ("jitter", "capabilities", "create", "reset", "dispatch", "finite", "upscaled_vs_reference",
                 "generated_vs_reference", "present_time", "next_generated_frames", "moves", "reset_flag",
                 "validation_warning",
                 "frame_time_in_seconds", "frame_index_gap", "gpu_handle_refused", "release_gpu_resources", "destroy",
                 "dispatch_after_destroy", "destroy_twice")


def test_c_engine_runs_the_stss_pass_and_every_check_passes(engine):
    proc = subprocess.run([str(engine), "stss"], capture_output=True, text=True, timeout=300, env=CLEAN_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ENGINE_CHECKS:
        assert f"PASS {name}:" in proc.stdout, (name, proc.stdout)
    assert "FAIL" not in proc.stdout
    assert "ALL PASSED" in proc.stdout
    assert proc.stderr == "", proc.stderr  # the library prints nothing, not even Python's start


RTLD_LOCAL_HOST = r"""
#include <dlfcn.h>
#include <stdio.h>
#include "stss_plugin.h"
int main(int argc, char** argv)
{
    if (argc < 2) return 2;
    void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("dlopen: %s\n", dlerror()); return 3; }
    int32_t (*query)(char*, size_t, size_t*) = (int32_t (*)(char*, size_t, size_t*))dlsym(h, "stss_query_capabilities");
    const char* (*last_error)(void) = (const char* (*)(void))dlsym(h, "stss_last_error");
    size_t needed = 0;
    int32_t r = query(NULL, 0, &needed);
    printf("result %d needed %zu error '%s'\n", (int)r, needed, last_error());
    return r == 0 && needed > 2 ? 0 : 1;
}
"""


def test_engine_that_dlopens_the_library_rtld_local(c_library, tmp_path):
    """numpy and torch load although the host keeps the library (and libpython) local."""
    src = tmp_path / "host.c"
    src.write_text(RTLD_LOCAL_HOST)
    host = _compile(src, tmp_path / "host", c_library, ("-ldl",))
    proc = subprocess.run([str(host), str(c_library)], capture_output=True, text=True, timeout=120, env=CLEAN_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_a_python_side_that_fails_to_load_is_reported_not_printed(tmp_path, monkeypatch):
    """The init code cannot import the plugin: every call says why, nothing on stderr."""
    monkeypatch.setattr(c_abi, "_INIT_CODE", c_abi._INIT_CODE.replace("from plugin import c_abi as",
                                                                      "from plugin import no_such_module as"))
    library = c_abi.build(tmp_path / "broken")
    src = tmp_path / "host.c"
    src.write_text(RTLD_LOCAL_HOST)
    host = _compile(src, tmp_path / "host", library, ("-ldl",))
    proc = subprocess.run([str(host), str(library)], capture_output=True, text=True, timeout=120, env=CLEAN_ENV)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"result {BACKEND_UNAVAILABLE} " in proc.stdout
    assert "failed to load" in proc.stdout and "no_such_module" in proc.stdout
    assert proc.stderr == ""


# -- the malformed-call table, in a process of its own -------------------------------------------


def test_the_malformed_call_table(c_table):
    """``c_abi_table.py`` (cffi ABI mode, in-process loads of the library, each malformed call
    in a forked child), run in its own pytest process by the ``c_table`` fixture: every case
    there must pass."""
    proc, records = c_table
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 150 and "failed" not in summary and "error" not in summary, summary
    assert len(records) >= 130, len(records)  # one record per malformed call executed


def test_cuda_pointer_images_are_described_without_a_copy():
    """What a CUDA-memory stss_image becomes (``__cuda_array_interface__``), without a GPU:
    padded rows keep their pitch; bottom-up rows (negative pitch) start at the lowest row."""
    import numpy as np

    cai = c_abi.cuda_array_interface(0x10000, 1040, 64, 40, 4, np.float32)
    assert cai == {"shape": (40, 64, 4), "typestr": "<f4", "data": (0x10000, False), "strides": (1040, 16, 4),
                   "version": 3, "stream": None}
    up = c_abi.cuda_array_interface(0x10000 + 39 * 256, -256, 64, 40, 1, np.float32)
    assert up["data"] == (0x10000, False) and up["strides"] == (256, 4, 4)
    assert c_abi.cuda_array_interface(0x20000, 128, 64, 1, 1, np.float16)["typestr"] == "<f2"
