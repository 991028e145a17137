"""The command line as a user runs it: listing, rendering, resuming, and one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stss_runtime import framedump

SMALL = ["--render-size", "64x36", "--display-size", "128x72", "--gt-samples", "4", "--no-progress"]


def run(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "demo_renderer", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def test_scenes_lists_the_builtin_scenes():
    r = run("scenes")
    assert r.returncode == 0, r.stderr
    for name in ("fence", "gallery", "traffic", "plaza"):
        assert name in r.stdout


def test_help_explains_every_render_option():
    r = run("render", "--help")
    assert r.returncode == 0
    for opt in ("--scene", "--frames", "--render-size", "--display-size", "--out", "--fps",
                "--gt-samples", "--start-time", "--compress", "--no-progress"):
        assert opt in r.stdout


def _one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("demo_renderer: error:")
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_scene(tmp_path):
    _one_line_error(run("render", "--scene", "nosuchscene", "--out", str(tmp_path / "o")),
                    "unknown scene 'nosuchscene'", "fence")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size", ["480", "480x", "x270", "axb", "0x270", "480x270x3", "-4x3"])
def test_malformed_size(tmp_path, size):
    _one_line_error(run("render", "--scene", "fence", f"--render-size={size}", "--out", str(tmp_path)),
                    "--render-size", size)


def test_mismatched_sizes(tmp_path):
    _one_line_error(run("render", "--scene", "fence", "--render-size", "64x36",
                        "--display-size", "128x128", "--out", str(tmp_path)), "aspect ratio")
    _one_line_error(run("render", "--scene", "fence", "--render-size", "128x72",
                        "--display-size", "64x36", "--out", str(tmp_path)), "smaller")


def test_unreadable_scene_files(tmp_path):
    missing = tmp_path / "missing.glb"
    _one_line_error(run("render", "--scene", str(missing), "--out", str(tmp_path / "o")), "missing.glb")
    garbage = tmp_path / "garbage.obj"
    garbage.write_bytes(b"\x00\x01 this is not an OBJ file \xff" * 10)
    _one_line_error(run("render", "--scene", str(garbage), "--out", str(tmp_path / "o")), "garbage.obj")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{ not json")
    _one_line_error(run("render", "--scene", str(bad_json), "--out", str(tmp_path / "o")), "bad.json")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _one_line_error(run("render", "--scene", "fence", "--frames", "1", *SMALL, "--out", str(blocker)),
                    "not writable", "a_file")
    _one_line_error(run("render", "--scene", "fence", "--frames", "1", *SMALL,
                        "--out", str(blocker / "sub")), "not writable")


def test_render_then_resume_keeps_existing_frames(tmp_path):
    out = tmp_path / "seq"
    r = run("render", "--scene", "traffic", "--frames", "2", *SMALL, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert framedump.existing_frames(out) == [0, 1]
    before = {i: (framedump.frame_path(out, i).stat().st_mtime_ns,
                  framedump.frame_path(out, i).read_bytes()) for i in (0, 1)}
    (out / "000002.npz.tmp").write_bytes(b"left by a killed run")
    r = run("render", "--scene", "traffic", "--frames", "3", *SMALL, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "1 frames written, 2 kept" in r.stdout
    assert framedump.existing_frames(out) == [0, 1, 2]
    assert not list(out.glob("*.tmp"))
    for i, (mtime, data) in before.items():
        p = framedump.frame_path(out, i)
        assert p.stat().st_mtime_ns == mtime and p.read_bytes() == data
    assert framedump.read_meta(out)["frames"] == 3
    # a different sequence is refused rather than mixed into the folder
    _one_line_error(run("render", "--scene", "fence", "--frames", "1", *SMALL, "--out", str(out)),
                    "different sequence", "scene")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_render_leaves_only_whole_frames_and_resumes(tmp_path, sig):
    out = tmp_path / "seq"
    args = [sys.executable, "-m", "demo_renderer", "render", "--scene", "fence", "--frames", "40",
            *SMALL, "--out", str(out)]
    # the child gets Ctrl-C as from a terminal even when the suite itself runs as a background
    # job, whose children inherit SIGINT ignored (Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while len(framedump.existing_frames(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
        assert not list(out.glob("*.tmp"))
    done = framedump.existing_frames(out)
    assert 2 <= len(done) < 40 and done == list(range(len(done)))
    for i in done:  # every frame on disk is whole
        framedump.validate_frame(framedump.read_frame(out, i), (64, 36), (128, 72))
    r = run("render", "--scene", "fence", "--frames", "40", *SMALL, "--out", str(out), timeout=300)
    assert r.returncode == 0, r.stderr
    assert framedump.existing_frames(out) == list(range(40))
    assert not list(out.glob("*.tmp"))


def test_render_a_user_gltf_scene_with_default_orbit(tmp_path):
    """A user's .glb without a config renders with the default orbit and lights."""
    import trimesh
    from PIL import Image

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    box.visual = trimesh.visual.TextureVisuals(
        uv=np.random.default_rng(1).random((len(box.vertices), 2)),
        material=trimesh.visual.material.PBRMaterial(baseColorTexture=img, roughnessFactor=0.5,
                                                     metallicFactor=0.0))
    ground = trimesh.creation.box(extents=(6.0, 0.1, 6.0))
    ground.apply_translation((0, -0.55, 0))
    scene = trimesh.Scene({"box": box, "ground": ground})
    path = tmp_path / "user.glb"
    scene.export(path)
    out = tmp_path / "seq"
    r = run("render", "--scene", str(path), "--frames", "2", *SMALL, "--out", str(out))
    assert r.returncode == 0, r.stderr
    f = framedump.read_frame(out, 1)
    ids = f["object_id"]
    assert set(np.unique(ids)) == {0, 1, 2}  # background, box, ground all in view
    assert np.abs(f["motion"]).max() > 0.01  # the orbit moves the camera
    assert framedump.read_meta(out)["scene"] == str(path)
