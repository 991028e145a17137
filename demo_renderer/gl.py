"""OpenGL context creation: headless (EGL, no display needed) or a glfw window."""

from __future__ import annotations

import moderngl

REQUIRED_GL = 430


class GLContextError(RuntimeError):
    """No usable OpenGL context (missing EGL/Mesa, no display, too old a GL version)."""


def create_headless_context() -> moderngl.Context:
    """A standalone OpenGL context through EGL; works without a display (Mesa llvmpipe on CPU)."""
    try:
        ctx = moderngl.create_context(standalone=True, backend="egl", require=REQUIRED_GL)
    except Exception as e:  # moderngl raises plain Exception subclasses from glcontext
        raise GLContextError(
            f"cannot create a headless OpenGL {REQUIRED_GL // 100}.{REQUIRED_GL % 100 // 10} "
            f"context through EGL ({e}); install Mesa's EGL (make setup does: libegl1 "
            f"libegl-mesa0 libgl1-mesa-dri)") from None
    return ctx


def describe(ctx: moderngl.Context) -> str:
    return f"{ctx.info['GL_RENDERER']} (OpenGL {ctx.version_code // 100}.{ctx.version_code % 100 // 10})"
