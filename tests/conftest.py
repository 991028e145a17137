"""Shared fixtures: one headless OpenGL (EGL) context per test process, GL-error checks."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def gl_ctx():
    """A standalone EGL context (Mesa llvmpipe on our machines). One per process: a second
    context type (a glfw window) must run in a subprocess.

    Without moderngl or a working EGL the GL tests skip, saying why (a GPU machine whose
    image lacks them); in CI (``CI`` set) a context that cannot be created is an error, so a
    broken setup cannot pass as skipped tests."""
    import os

    try:
        from demo_renderer.gl import create_headless_context
    except ImportError as e:
        pytest.skip(f"needs moderngl for an OpenGL context ({e})")
    try:
        ctx = create_headless_context()
    except Exception as e:  # GLContextError: no EGL library, no driver
        if os.environ.get("CI"):
            raise
        pytest.skip(f"needs a headless OpenGL (EGL) context: {e}")
    yield ctx
    ctx.release()


@pytest.fixture
def gl(gl_ctx):
    """The GL context, asserting there is no GL error before and after the test."""
    assert gl_ctx.error == "GL_NO_ERROR", "GL error left over before the test"
    yield gl_ctx
    assert gl_ctx.error == "GL_NO_ERROR", "the test left a GL error"


#: Small sequences rendered once per test session: (render, display) sizes and GT samples.
DUMP_RENDER_SIZE = (160, 90)
DUMP_DISPLAY_SIZE = (320, 180)
DUMP_FRAMES = 3
DUMP_GT_SAMPLES = 16
DUMP_FPS = 20.0  # low, so consecutive frames move by a few pixels even in slow scenes
#: The generated scene (demo_renderer/scenes/generated.py) checked beside the built-in ones:
#: a dolly camera and 16 moving objects (slides, spins about tilted axes, circles).
GENERATED_TEST_SCENE = "scatter:13"


@pytest.fixture(scope="session")
def scene_dumps(gl_ctx, tmp_path_factory):
    """{scene name: (folder, Scene)} for every built-in scene and one generated scene,
    rendered with the production sequence writer at a small size (frames start at t = 1 s)."""
    from demo_renderer.scenes import BUILTIN_SCENES, load_scene
    from demo_renderer.sequence import SequenceSpec, render_sequence

    out = {}
    root = tmp_path_factory.mktemp("dumps")
    for name in [*BUILTIN_SCENES, GENERATED_TEST_SCENE]:
        scene = load_scene(name)
        spec = SequenceSpec(scene=name, frames=DUMP_FRAMES, render_size=DUMP_RENDER_SIZE,
                            display_size=DUMP_DISPLAY_SIZE, gt_samples=DUMP_GT_SAMPLES,
                            fps=DUMP_FPS, start_time=1.0)
        render_sequence(spec, root / name.replace(":", "_"), scene, gl_ctx, progress=False)
        out[name] = (root / name.replace(":", "_"), scene)
    assert gl_ctx.error == "GL_NO_ERROR"
    return out


@pytest.fixture(scope="session")
def tiny_dump(gl_ctx, tmp_path_factory):
    """A 14-frame ``traffic`` sequence at 64x40 -> 128x80 (sizes multiples of 8), for
    training and evaluation tests."""
    from demo_renderer.scenes import load_scene
    from demo_renderer.sequence import SequenceSpec, render_sequence

    out = tmp_path_factory.mktemp("tiny") / "traffic"
    spec = SequenceSpec(scene="traffic", frames=14, render_size=(64, 40), display_size=(128, 80),
                        gt_samples=4, fps=30.0, start_time=1.0)
    render_sequence(spec, out, load_scene("traffic"), gl_ctx, progress=False)
    return out
