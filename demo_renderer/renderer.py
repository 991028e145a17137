"""The deferred renderer: shadow map, G-buffer pass, shading pass, ground truth.

Data leaves GL only in :meth:`Renderer.read_frame` / :meth:`Renderer.read_color`, which
flip rows once so row 0 is the top of the image (CONVENTIONS.md).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import moderngl
import numpy as np

from stss_runtime.conventions import halton, jittered_projection

from .scene import Material, Scene, look_at, orthographic, perspective
from .shaderlib import ShaderLibrary

GL_SRGB8_ALPHA8 = 0x8C43
SHADOW_MAP_SIZE = 2048
MAX_POINT_LIGHTS = 8


def _mat(m: np.ndarray) -> bytes:
    """A 4x4 (or 3x3) float64 matrix as GLSL column-major float32 bytes."""
    return np.asarray(m, dtype=np.float32).T.tobytes()


class GBuffer:
    """Render targets of one size: the G-buffers, a depth buffer and the shaded colour."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int]):
        self.size = size
        self.albedo_roughness = ctx.texture(size, 4, dtype="f2")
        self.normal_metallic = ctx.texture(size, 4, dtype="f2")
        self.motion = ctx.texture(size, 2, dtype="f4")
        self.depth_id = ctx.texture(size, 2, dtype="f4")
        self.depth = ctx.depth_texture(size)
        self.color = ctx.texture(size, 4, dtype="f2")
        for t in (self.albedo_roughness, self.normal_metallic, self.motion, self.depth_id,
                  self.color):
            t.filter = (moderngl.NEAREST, moderngl.NEAREST)
            t.repeat_x = t.repeat_y = False
        self.gbuffer_fbo = ctx.framebuffer(
            color_attachments=[self.albedo_roughness, self.normal_metallic, self.motion,
                               self.depth_id],
            depth_attachment=self.depth)
        self.color_fbo = ctx.framebuffer(color_attachments=[self.color])

    def release(self):
        for o in (self.gbuffer_fbo, self.color_fbo, self.albedo_roughness, self.normal_metallic,
                  self.motion, self.depth_id, self.depth, self.color):
            o.release()


@dataclass
class FrameCamera:
    """Unjittered camera matrices of one instant and the one before it (float64)."""

    view: np.ndarray
    proj: np.ndarray
    prev_view: np.ndarray
    prev_proj: np.ndarray


@dataclass
class PassTimes:
    """GPU times (GL timer queries) and CPU wall times of the last frame, milliseconds."""

    gpu_ms: dict[str, float] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)


class _Timer:
    """A GL timer query + CPU clock around one pass, reusing one query object per pass name.
    Reading the GPU time waits for the pass to finish."""

    def __init__(self, query: moderngl.Query | None):
        self.query = query

    def __enter__(self):
        self.t0 = time.perf_counter()
        if self.query is not None:
            self.query.__enter__()
        return self

    def __exit__(self, *exc):
        if self.query is not None:
            self.query.__exit__(*exc)
        self.cpu_ms = (time.perf_counter() - self.t0) * 1e3

    @property
    def gpu_ms(self) -> float:
        """GPU time in ms; NaN when timers are off or the driver had no result (Mesa answers
        0xFFFFFFFF ns for the very first query of a context)."""
        if self.query is None:
            return float("nan")
        ns = self.query.elapsed
        return float("nan") if ns < 0 or ns >= 0xFFFFFFFF else ns / 1e6


class _GpuMesh:
    def __init__(self, ctx, mesh, prog_gbuffer, prog_shadow):
        data = np.hstack([mesh.positions, mesh.normals, mesh.uvs]).astype(np.float32)
        self.vbo = ctx.buffer(data.tobytes())
        self.ibo = ctx.buffer(mesh.indices.astype(np.uint32).tobytes())
        self.vao = ctx.vertex_array(
            prog_gbuffer, [(self.vbo, "3f 3f 2f", "in_position", "in_normal", "in_uv")],
            index_buffer=self.ibo, index_element_size=4)
        self.shadow_vao = ctx.vertex_array(
            prog_shadow, [(self.vbo, "3f 12x 2f", "in_position", "in_uv")],
            index_buffer=self.ibo, index_element_size=4)


class Renderer:
    """Renders one :class:`Scene` at any size: G-buffers, shaded colour and ground truth."""

    def __init__(self, ctx: moderngl.Context, scene: Scene, shaders: ShaderLibrary | None = None,
                 timers: bool = True, anisotropy: float = 1.0, shadow_map_size: int = SHADOW_MAP_SIZE):
        """``anisotropy``: texture anisotropic filtering level (1 = trilinear only; on Mesa's
        software rasteriser 16x makes the G-buffer pass about 10x slower). ``shadow_map_size``:
        the sun's shadow map, pixels per side (frame dumps and ground truth keep the default;
        the demo's CPU preset halves it: on a software rasteriser it is the costliest pass)."""
        self.ctx = ctx
        self.anisotropy = float(anisotropy)
        self.scene = scene
        self.shaders = shaders or ShaderLibrary(ctx)
        self.timers = timers
        self.last_times = PassTimes()
        self.p_gbuffer = self.shaders.get("gbuffer.glsl")
        self.p_sky = self.shaders.get("sky_gbuffer.glsl")
        self.p_shadow = self.shaders.get("shadow.glsl")
        self.p_shading = self.shaders.get("shading.glsl")
        self.p_accumulate = self.shaders.get("accumulate.glsl")
        self.empty_vao = ctx.vertex_array(self.p_shading, [])
        self.sky_vao = ctx.vertex_array(self.p_sky, [])
        self.accum_vao = ctx.vertex_array(self.p_accumulate, [])

        self.meshes = [_GpuMesh(ctx, o.mesh, self.p_gbuffer, self.p_shadow) for o in scene.objects]
        self._textures: dict[int, moderngl.Texture] = {}
        self.white = ctx.texture((1, 1), 4, bytes([255, 255, 255, 255]))
        self.shadow_size = int(shadow_map_size)
        self.shadow_map = ctx.depth_texture((self.shadow_size, self.shadow_size))
        self.shadow_map.compare_func = "<="
        self.shadow_map.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.shadow_fbo = ctx.framebuffer(depth_attachment=self.shadow_map)
        self._shadow_time: float | None = None
        self._targets: dict[tuple[int, int], GBuffer] = {}
        self._accum: dict[tuple[int, int], tuple[moderngl.Texture, moderngl.Framebuffer]] = {}
        self._queries: dict[str, moderngl.Query] = {}
        #: Optional ``name -> context manager`` wrapped around each pass (the demo's
        #: deferred timers, which read GPU times frames later instead of stalling here).
        self.pass_scope: Callable[[str], ContextManager] | None = None
        self._setup_shadow_projection()

    # ------------------------------------------------------------------ resources
    def release(self) -> None:
        """Free every GL object this renderer made (meshes, textures, the shadow map, targets,
        queries); the shared shader programs stay. The renderer is unusable afterwards."""
        ours = {id(o) for o in [self.shadow_fbo] + [t.gbuffer_fbo for t in self._targets.values()]
                + [t.color_fbo for t in self._targets.values()] + [f for _, f in self._accum.values()]}
        if id(self.ctx.fbo) in ours:  # moderngl re-binds the current framebuffer after making one
            (self.ctx.screen or self.ctx.detect_framebuffer(0)).use()
        for gm in self.meshes:
            for o in (gm.vao, gm.shadow_vao, gm.vbo, gm.ibo):
                o.release()
        for o in (*self._textures.values(), self.white, self.shadow_fbo, self.shadow_map,
                  self.empty_vao, self.sky_vao, self.accum_vao):
            o.release()
        for target in self._targets.values():
            target.release()
        for tex, fbo in self._accum.values():
            fbo.release()
            tex.release()
        for q in self._queries.values():
            rel = getattr(q.mglo, "release", None)
            if rel is not None:
                rel()
        self.meshes, self._textures, self._targets, self._accum, self._queries = [], {}, {}, {}, {}

    def _scope(self, name: str) -> ContextManager:
        return self.pass_scope(name) if self.pass_scope is not None else contextlib.nullcontext()

    def _timer(self, name: str, timed: bool) -> _Timer:
        if not (timed and self.timers):
            return _Timer(None)
        q = self._queries.get(name)
        if q is None:
            q = self._queries[name] = self.ctx.query(time=True)
        return _Timer(q)

    def _texture(self, material: Material) -> moderngl.Texture:
        if material.base_color_texture is None:
            return self.white
        key = id(material.base_color_texture)
        tex = self._textures.get(key)
        if tex is None:
            img = np.ascontiguousarray(material.base_color_texture, dtype=np.uint8)
            if img.ndim != 3 or img.shape[2] != 4:
                raise ValueError(f"material texture must be (h, w, 4) uint8, got {img.shape}")
            h, w = img.shape[:2]
            # Rows go up top-first: GL's first uploaded row is texture v = 0, so uv (0, 0)
            # samples the image's top-left (glTF's convention), with no flip.
            tex = self.ctx.texture((w, h), 4, img.tobytes(), internal_format=GL_SRGB8_ALPHA8)
            tex.build_mipmaps()
            tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
            tex.anisotropy = self.anisotropy
            self._textures[key] = tex
        return tex

    def target(self, size: tuple[int, int]) -> GBuffer:
        size = (int(size[0]), int(size[1]))
        t = self._targets.get(size)
        if t is None:
            t = self._targets[size] = GBuffer(self.ctx, size)
        return t

    def _setup_shadow_projection(self):
        lo, hi = self.scene.bounds(0.0)
        centre = (lo + hi) / 2
        radius = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
        sun = np.asarray(self.scene.sun.direction, dtype=np.float64)
        sun /= np.linalg.norm(sun)
        up = (0, 1, 0) if abs(sun[1]) < 0.99 else (0, 0, 1)
        self.light_view = look_at(centre + sun * radius * 2, centre, up)
        self.light_proj = orthographic(-radius, radius, -radius, radius, radius * 0.5, radius * 3.5)
        bias = np.array([[0.5, 0, 0, 0.5], [0, 0.5, 0, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0, 1]])
        self.shadow_matrix = bias @ self.light_proj @ self.light_view

    # ------------------------------------------------------------------ cameras
    def camera(self, t: float, prev_t: float, size: tuple[int, int],
               views: tuple[np.ndarray, np.ndarray] | None = None) -> FrameCamera:
        """The scene camera at ``t`` and ``prev_t``; ``views``: (view, previous view) to use
        instead of the scripted camera's (a free-flying camera), same projection."""
        cam = self.scene.camera
        aspect = size[0] / size[1]
        proj = perspective(cam.fov_y_deg, aspect, cam.near, cam.far)
        if views is not None:
            view, prev_view = (np.asarray(v, dtype=np.float64).reshape(4, 4) for v in views)
            return FrameCamera(view=view, proj=proj, prev_view=prev_view, prev_proj=proj)
        return FrameCamera(view=cam.view(t), proj=proj, prev_view=cam.view(prev_t), prev_proj=proj)

    # ------------------------------------------------------------------ passes
    def _shadow_pass(self, t: float):
        if self._shadow_time == t:
            return
        ctx = self.ctx
        self.shadow_fbo.use()
        ctx.viewport = (0, 0, self.shadow_size, self.shadow_size)
        self.shadow_fbo.clear(depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        p = self.p_shadow
        light_vp = self.light_proj @ self.light_view
        for obj, gm in zip(self.scene.objects, self.meshes):
            if not obj.casts_shadow:
                continue
            m = obj.material
            p["u_light_mvp"].write(_mat(light_vp @ obj.transform(t)))
            p["u_uv_scale"].value = tuple(m.uv_scale)
            p["u_has_texture"].value = m.base_color_texture is not None
            p["u_alpha"].value = float(m.base_color[3])
            p["u_alpha_cutoff"].value = -1.0 if m.alpha_cutoff is None else float(m.alpha_cutoff)
            self._texture(m).use(0)
            p["u_albedo_tex"].value = 0
            gm.shadow_vao.render(moderngl.TRIANGLES)
        self._shadow_time = t

    def _gbuffer_pass(self, target: GBuffer, t: float, prev_t: float, cam: FrameCamera,
                      jitter_px: tuple[float, float], lod_bias: float):
        ctx = self.ctx
        w, h = target.size
        target.gbuffer_fbo.use()
        ctx.viewport = (0, 0, w, h)
        target.gbuffer_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.depth_func = "<"
        ctx.disable(moderngl.BLEND)
        p = self.p_gbuffer
        p["u_view"].write(_mat(cam.view))
        p["u_prev_view"].write(_mat(cam.prev_view))
        p["u_proj"].write(_mat(cam.proj))
        p["u_prev_proj"].write(_mat(cam.prev_proj))
        p["u_jitter_ndc"].value = (2.0 * jitter_px[0] / w, -2.0 * jitter_px[1] / h)
        p["u_size"].value = (float(w), float(h))
        p["u_lod_bias"].value = float(lod_bias)
        p["u_albedo_tex"].value = 0
        for i, (obj, gm) in enumerate(zip(self.scene.objects, self.meshes)):
            m = obj.material
            model = np.asarray(obj.transform(t), dtype=np.float64)
            prev_model = np.asarray(obj.transform(prev_t), dtype=np.float64) if obj.animated else model
            normal_matrix = np.linalg.inv((cam.view @ model)[:3, :3]).T
            p["u_model"].write(_mat(model))
            p["u_prev_model"].write(_mat(prev_model))
            p["u_normal_matrix"].write(_mat(normal_matrix))
            p["u_uv_scale"].value = tuple(m.uv_scale)
            p["u_base_color"].value = tuple(float(c) for c in m.base_color)
            p["u_has_texture"].value = m.base_color_texture is not None
            p["u_roughness"].value = float(m.roughness)
            p["u_metallic"].value = float(m.metallic)
            p["u_alpha_cutoff"].value = -1.0 if m.alpha_cutoff is None else float(m.alpha_cutoff)
            p["u_object_id"].value = float(i + 1)
            self._texture(m).use(0)
            if m.double_sided or m.alpha_cutoff is not None:
                ctx.disable(moderngl.CULL_FACE)
            else:
                ctx.enable(moderngl.CULL_FACE)
            gm.vao.render(moderngl.TRIANGLES)
        ctx.disable(moderngl.CULL_FACE)
        # background: a far-plane triangle where no object was drawn
        ctx.depth_func = "<="
        s = self.p_sky
        s["u_inv_jittered_proj"].write(_mat(np.linalg.inv(jittered_projection(cam.proj, jitter_px, (w, h)))))
        s["u_view"].write(_mat(cam.view))
        s["u_prev_view"].write(_mat(cam.prev_view))
        s["u_proj"].write(_mat(cam.proj))
        s["u_prev_proj"].write(_mat(cam.prev_proj))
        s["u_size"].value = (float(w), float(h))
        s["u_far"].value = float(self.scene.camera.far)
        self.sky_vao.render(moderngl.TRIANGLES, vertices=3)
        ctx.depth_func = "<"

    def _shading_pass(self, target: GBuffer, cam: FrameCamera, jitter_px):
        ctx = self.ctx
        w, h = target.size
        target.color_fbo.use()
        ctx.viewport = (0, 0, w, h)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND | moderngl.CULL_FACE)
        p = self.p_shading
        sc = self.scene
        target.albedo_roughness.use(0)
        target.normal_metallic.use(1)
        target.depth_id.use(2)
        self.shadow_map.use(3)
        p["u_albedo_roughness"].value = 0
        p["u_normal_metallic"].value = 1
        p["u_depth_id"].value = 2
        p["u_shadow_map"].value = 3
        p["u_inv_jittered_proj"].write(_mat(np.linalg.inv(jittered_projection(cam.proj, jitter_px, (w, h)))))
        inv_view = np.linalg.inv(cam.view)
        p["u_inv_view"].write(_mat(inv_view))
        p["u_shadow_matrix"].write(_mat(self.shadow_matrix))
        p["u_shadow_texel"].value = 1.0 / self.shadow_size
        p["u_size"].value = (float(w), float(h))
        sun = np.asarray(sc.sun.direction, dtype=np.float64)
        sun /= np.linalg.norm(sun)
        p["u_sun_dir_view"].value = tuple(cam.view[:3, :3] @ sun)
        p["u_sun_dir_world"].value = tuple(sun)
        p["u_sun_radiance"].value = tuple(np.asarray(sc.sun.color) * sc.sun.intensity)
        p["u_sky_zenith"].value = tuple(sc.sky.zenith)
        p["u_sky_horizon"].value = tuple(sc.sky.horizon)
        p["u_sky_ground"].value = tuple(sc.sky.ground)
        lights = sc.point_lights[:MAX_POINT_LIGHTS]
        p["u_point_count"].value = len(lights)
        if lights:
            pos = [tuple((cam.view @ np.array([*l.position, 1.0]))[:3]) for l in lights]
            rad = [tuple(np.asarray(l.color) * l.intensity) for l in lights]
            pad = MAX_POINT_LIGHTS - len(lights)
            p["u_point_pos_view"].value = pos + [(0.0, 0.0, 0.0)] * pad
            p["u_point_radiance"].value = rad + [(0.0, 0.0, 0.0)] * pad
            p["u_point_radius"].value = [float(l.radius) for l in lights] + [1.0] * pad
        self.empty_vao.render(moderngl.TRIANGLES, vertices=3)

    # ------------------------------------------------------------------ public API
    def render(self, t: float, prev_t: float, size: tuple[int, int],
               jitter_px: tuple[float, float] = (0.0, 0.0), lod_bias: float = 0.0,
               shade: bool = True, timed: bool = True,
               views: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[GBuffer, FrameCamera]:
        """Shadow (only when shading: the G-buffers do not need it), G-buffer and (when
        ``shade``) shading passes for time ``t``.

        ``prev_t`` is the previous frame's time (for motion vectors); ``jitter_px`` the
        sub-pixel offset in pixels of ``size``. With ``timed`` (and timers enabled), the
        passes' times land in :attr:`last_times`. Targets are kept per size, so one renderer
        serves several sizes; the shadow map is drawn once per distinct ``t``. ``views``:
        (view, previous view) instead of the scene camera's (see :meth:`camera`).
        """
        target = self.target(size)
        cam = self.camera(t, prev_t, target.size, views)
        timers = {}
        if shade:
            with self._timer("shadow", timed) as ts, self._scope("shadow"):
                self._shadow_pass(t)
            timers["shadow"] = ts
        with self._timer("gbuffer", timed) as tg, self._scope("gbuffer"):
            self._gbuffer_pass(target, t, prev_t, cam, jitter_px, lod_bias)
        timers["gbuffer"] = tg
        if shade:
            with self._timer("shading", timed) as tsh, self._scope("shading"):
                self._shading_pass(target, cam, jitter_px)
            timers["shading"] = tsh
        if timed:
            self.last_times = PassTimes(gpu_ms={k: v.gpu_ms for k, v in timers.items()},
                                        cpu_ms={k: v.cpu_ms for k, v in timers.items()})
        return target, cam

    def render_ground_truth(self, t: float, size: tuple[int, int], samples: int = 16,
                            first_sample: int = 1) -> moderngl.Texture:
        """Average of ``samples`` jittered renders at ``size`` (Halton 2,3 offsets over the
        pixel, texture LOD bias 0): a converged anti-aliased reference, linear RGB.

        Returns the RGBA32F accumulation texture (read it with :meth:`read_color`).
        """
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        size = (int(size[0]), int(size[1]))
        accum = self._accum.get(size)
        if accum is None:
            tex = self.ctx.texture(size, 4, dtype="f4")
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
            accum = self._accum[size] = (tex, self.ctx.framebuffer(color_attachments=[tex]))
        tex, fbo = accum
        fbo.clear(0.0, 0.0, 0.0, 0.0)
        t0 = time.perf_counter()
        for s in range(first_sample, first_sample + samples):
            jitter = (halton(s, 2) - 0.5, halton(s, 3) - 0.5)
            target, _ = self.render(t, t, size, jitter, 0.0, timed=False)
            fbo.use()
            self.ctx.viewport = (0, 0, *size)
            self.ctx.enable(moderngl.BLEND)
            self.ctx.blend_func = moderngl.ONE, moderngl.ONE
            self.ctx.blend_equation = moderngl.FUNC_ADD
            target.color.use(0)
            self.p_accumulate["u_source"].value = 0
            self.p_accumulate["u_weight"].value = 1.0 / samples
            self.accum_vao.render(moderngl.TRIANGLES, vertices=3)
            self.ctx.disable(moderngl.BLEND)
        self.ctx.finish()
        self.last_gt_ms = (time.perf_counter() - t0) * 1e3
        return tex

    # ------------------------------------------------------------------ read-back
    @staticmethod
    def read_color(tex: moderngl.Texture) -> np.ndarray:
        """(h, w, 3) float32 linear RGB, row 0 = top."""
        w, h = tex.size
        dtype = {"f2": np.float16, "f4": np.float32}[tex.dtype]
        a = np.frombuffer(tex.read(), dtype=dtype).reshape(h, w, tex.components)
        return np.ascontiguousarray(a[::-1, :, :3], dtype=np.float32)

    def read_frame(self, target: GBuffer) -> dict[str, np.ndarray]:
        """Every buffer of ``target`` as numpy arrays in the frame dump's dtypes, row 0 = top."""
        w, h = target.size

        def read(tex, dtype, comps):
            a = np.frombuffer(tex.read(), dtype=dtype).reshape(h, w, comps)
            return a[::-1]

        ar = read(target.albedo_roughness, np.float16, 4)
        nm = read(target.normal_metallic, np.float16, 4)
        mo = read(target.motion, np.float32, 2)
        di = read(target.depth_id, np.float32, 2)
        col = read(target.color, np.float16, 4)
        return {
            "color": np.ascontiguousarray(col[..., :3]),
            "albedo": np.ascontiguousarray(ar[..., :3]),
            "roughness": np.ascontiguousarray(ar[..., 3]),
            "normal": np.ascontiguousarray(nm[..., :3]),
            "metallic": np.ascontiguousarray(nm[..., 3]),
            "motion": np.ascontiguousarray(mo),
            "depth": np.ascontiguousarray(di[..., 0]),
            "object_id": np.rint(di[..., 1]).astype(np.int32),
        }
