"""Dynamic resolution with OpenGL textures: a GL engine draws a smaller frame into a larger
allocation with ``glViewport(0, 0, w, h)``, which fills GL rows 0 .. h-1 -- the *bottom* of
the texture in GL's row order. The plugin reads that rectangle (the picture's top-left once
flipped), through host memory and through CUDA-OpenGL interop alike, checked here against
the demo's own renderer drawing into a larger target."""

from __future__ import annotations

import pytest
import torch

from plugin import gl_interop
from plugin.resources import to_tensor

from .test_gl_interop import _interop

pytestmark = pytest.mark.gl

SMALL, BIG = (48, 32), (80, 56)


@pytest.fixture(scope="module")
def renders(gl_ctx):
    """(the demo renderer's G-buffers at exactly SMALL, the same frame drawn at SMALL into
    BIG-sized textures with the renderer's glViewport(0, 0, w, h))."""
    from demo_renderer.renderer import GBuffer, Renderer
    from demo_renderer.scenes import load_scene

    renderer = Renderer(gl_ctx, load_scene("traffic"))
    exact, _ = renderer.render(1.0, 0.95, SMALL, (0.25, -0.125))
    big = GBuffer(gl_ctx, BIG)
    big.size = SMALL  # the renderer sets its viewport (and shader sizes) from this
    renderer._targets[SMALL] = big
    drawn, _ = renderer.render(1.0, 0.95, SMALL, (0.25, -0.125))
    assert drawn is big and big.color.size == BIG
    gl_ctx.finish()
    assert gl_ctx.error == "GL_NO_ERROR"
    return exact, big


TEXTURES = ("color", "motion", "depth_id", "albedo_roughness")


@pytest.mark.parametrize("name", TEXTURES)
def test_the_host_path_reads_the_viewport_of_a_larger_texture(renders, name):
    exact, big = renders
    comps = getattr(exact, name).components
    want = to_tensor(getattr(exact, name), "frame.x", SMALL, comps, torch.device("cpu"))
    got = to_tensor(getattr(big, name), "frame.x", SMALL, comps, torch.device("cpu"))
    assert want.abs().sum() > 0 and torch.equal(got, want), name


@pytest.mark.parametrize("name", TEXTURES)
def test_interop_reads_the_same_rectangle(renders, name):
    """The interop copy (against the host-memory stand-in runtime) takes GL rows 0 .. h-1."""
    exact, big = renders
    tex = getattr(big, name)
    interop, rt = _interop({tex.glo: tex})
    fmt, why = gl_interop.moderngl_format(tex)
    assert fmt is not None, why
    got = interop.read(tex.glo, tex.size, fmt, "frame.x", rect=SMALL, owner=tex)
    want = to_tensor(getattr(exact, name), "frame.x", SMALL, tex.components, torch.device("cpu"))
    assert torch.equal(got.permute(2, 0, 1).unsqueeze(0).to(want.dtype), want), name
    interop.release()


def test_a_normalised_rgba8_texture_mapped_as_unorm_is_accepted(gl):
    """The driver may describe a GL_RGBA8 texture's array as UnsignedNormalized8X4 (kind 7)
    rather than Unsigned (1): both are an RGBA8 texture."""
    import numpy as np

    data = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(4, 6, 4)
    tex = gl.texture((6, 4), 4, data.tobytes(), dtype="f1")
    interop, rt = _interop({tex.glo: tex})
    fmt, _ = gl_interop.moderngl_format(tex)
    rt.KINDS = {**rt.KINDS, "unsigned": gl_interop.UNORM_KINDS[(8, 4)]}
    got = interop.read(tex.glo, tex.size, fmt, "frame.color", owner=tex)
    assert torch.equal(got, torch.from_numpy(data[::-1].copy()))
    u1 = gl_interop.gl_format("u1", 4)[0]  # an integer RGBA8UI is not normalised: refused as kind 7
    assert not u1.accepts(gl_interop.UNORM_KINDS[(8, 4)], [8, 8, 8, 8]) and fmt.accepts(7, [0, 0, 0, 0])
    interop.release()
    tex.release()
