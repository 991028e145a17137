"""Generated scenes: one random layout per seed, for training data beyond the hand-made scenes.

``scatter:SEED`` (``scatter`` alone is seed 0) scatters 24-40 random objects over a textured
ground inside a ring of 4-10 large textured blocks: boxes, slabs, spheres, poles, picket
rows, wires and alpha-tested foliage cards, with random textures (procedural checkers,
planks, cobbles, leaves and the scikit-image photos), random roughness and metalness.
About a third of them move: sliding at up to ~9 m/s, spinning, or circling. The camera
takes one of four random paths (dolly, orbit, whip pan, fly-through) at a random speed,
under a random sun, sky and up to three coloured lights.

Why: STSS trained on three hand-made scenes learned their look more than supersampling in
general (its learned part added nothing over its bilinear residual on the unseen ``traffic``
scene). Random layouts give any number of different scenes from the same renderer.

Kept apart from the built-in stress scenes (the demo menu, ``bench`` and the README sheet
list those) and from the held-out ``traffic`` scene's materials: no window facade, no gravel.
Same seed, same scene, on any machine (``numpy.random.default_rng``).
"""

from __future__ import annotations

import numpy as np

from ..scene import Camera, Material, PointLight, Scene, SceneObject, Sky, Sun, rotate, static, translate
from . import primitives as P
from . import textures as T

# photos allowed in generated scenes: traffic's gravel stays out (held-out materials)
_PHOTOS = ("astronaut", "brick", "chelsea", "coffee", "grass", "rocket", "hubble_deep_field",
           "text", "page", "camera")


class GeneratedSceneError(ValueError):
    """A generated scene's name is malformed (``scatter:SEED`` with SEED a non-negative integer)."""


def _colour(rng) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(10, 246, 3))


def _texture(rng) -> np.ndarray:
    kind = rng.choice(["checker", "checker", "planks", "cobbles", "photo", "photo", "photo"])
    if kind == "checker":
        return T.checker(256, int(rng.choice([4, 8, 16, 32, 64])), _colour(rng), _colour(rng))
    if kind == "planks":
        return T.planks(512, int(rng.integers(6, 32)), seed=int(rng.integers(0, 1000)))
    if kind == "cobbles":
        return T.cobbles(256, int(rng.integers(8, 24)), seed=int(rng.integers(0, 1000)))
    tint = tuple(round(float(v), 2) for v in rng.uniform(0.6, 1.0, 3))
    return T.photo(str(rng.choice(_PHOTOS)), tint)


def _material(rng, textured_p: float = 0.7) -> Material:
    rough = float(rng.uniform(0.05, 0.95))
    metal = float(rng.choice([0.0, 0.0, 0.0, 0.5, 1.0]))
    uv = float(rng.choice([1.0, 1.0, 2.0, 4.0]))
    if rng.random() < textured_p:
        return Material(base_color_texture=_texture(rng), roughness=rough, metallic=metal,
                        uv_scale=(uv, uv))
    c = np.asarray(_colour(rng)) / 255.0
    return Material(base_color=(*(c ** 2.2), 1.0), roughness=rough, metallic=metal)


def _motion(rng, base: np.ndarray):
    """A random animation around the static placement ``base``: slide, spin or circle."""
    kind = rng.choice(["slide", "spin", "circle"])
    speed = float(rng.uniform(0.4, 2.5))
    phase = float(rng.uniform(0, 2 * np.pi))
    if kind == "slide":
        amp = float(rng.uniform(1.0, 6.0))
        ang = float(rng.uniform(0, 2 * np.pi))
        d = np.array([np.cos(ang), 0.0, np.sin(ang)])
        return lambda t: translate(*(d * amp * np.sin(speed * t + phase))) @ base
    if kind == "spin":
        axis = rng.normal(size=3)
        axis[1] = abs(axis[1]) + 0.5
        rate = float(rng.uniform(0.8, 6.0)) * rng.choice([-1, 1])
        pos = base[:3, 3].copy()
        rest = base.copy()
        rest[:3, 3] = 0.0
        return lambda t: translate(*pos) @ rotate(axis, rate * t + phase) @ rest
    radius = float(rng.uniform(0.8, 3.0))
    return lambda t: translate(radius * np.cos(speed * t + phase), 0.0,
                               radius * np.sin(speed * t + phase)) @ base


def _thing(rng) -> tuple[P.Mesh, float, bool]:
    """A random mesh, its rest height (its centre above the ground) and whether it is a card."""
    kind = rng.choice(["box", "box", "slab", "sphere", "pole", "pickets", "wires", "cards"])
    if kind == "box":
        s = rng.uniform(0.3, 2.5, 3)
        return P.box(*s, uv_per_unit=float(rng.choice([0.5, 1.0, 2.0]))), s[1] / 2, False
    if kind == "slab":  # a thin panel standing on edge
        w, h = rng.uniform(0.8, 4.0), rng.uniform(0.8, 3.0)
        return P.box(w, h, float(rng.uniform(0.02, 0.08))), h / 2, False
    if kind == "sphere":
        r = float(rng.uniform(0.2, 1.2))
        return P.sphere(r, 40, 20), r, False
    if kind == "pole":
        h = float(rng.uniform(1.5, 6.0))
        return P.cylinder(float(rng.uniform(0.02, 0.12)), h, 10), 0.0, False
    if kind == "pickets":  # a short fence: thin repeated geometry
        n = int(rng.integers(8, 30))
        gap = float(rng.uniform(0.08, 0.3))
        width = float(rng.uniform(0.02, 0.08))
        h = float(rng.uniform(0.6, 1.6))
        parts = [(P.box(width, h, 0.025), translate((i - n / 2) * gap, h / 2, 0)) for i in range(n)]
        parts.append((P.box(n * gap, 0.05, 0.03), translate(-gap / 2, h * 0.7, -0.03)))
        return P.merge(parts), 0.0, False
    if kind == "wires":  # thin sagging wires between two posts
        span = float(rng.uniform(3.0, 9.0))
        top = float(rng.uniform(2.0, 5.0))
        parts = [(P.cylinder(0.05, top, 8), translate(x, 0, 0)) for x in (-span / 2, span / 2)]
        xs = np.linspace(-span / 2, span / 2, 13)
        for k in range(int(rng.integers(1, 4))):
            s = (xs + span / 2) / span
            ys = top - 0.1 - 0.25 * k - rng.uniform(0.2, 0.8) * 4 * s * (1 - s)
            pts = np.stack([xs, ys, np.full_like(xs, 0.06 * k)], 1)
            r = float(rng.uniform(0.005, 0.015))
            parts += [(P.segment(a, b, r, 5), None) for a, b in zip(pts[:-1], pts[1:])]
        return P.merge(parts), 0.0, False
    hgt = float(rng.uniform(0.8, 2.2))  # crossed foliage cards
    cards = [(P.quad(hgt * 0.9, hgt), rotate((0, 1, 0), k * np.pi / 3)) for k in range(3)]
    return P.merge(cards), 0.0, True


def _camera(rng, extent: float) -> tuple[Camera, str]:
    kind = str(rng.choice(["dolly", "orbit", "whip", "fly"]))
    h = float(rng.uniform(0.8, 3.5))
    phase = float(rng.uniform(0, 2 * np.pi))
    if kind == "dolly":  # sideways along a line, looking across the scene
        speed = float(rng.uniform(0.5, 4.0))
        dist = float(rng.uniform(4.0, 9.0))
        ang = float(rng.uniform(0, 2 * np.pi))
        side = np.array([np.cos(ang), 0.0, np.sin(ang)])
        back = np.array([-np.sin(ang), 0.0, np.cos(ang)])

        def cam(t):  # back and forth across the scene (no jump back at the end)
            u = (speed * t + extent) % (4 * extent)
            x = u - extent if u < 2 * extent else 3 * extent - u
            eye = side * x + back * dist + np.array([0, h, 0])
            return eye, eye - back + np.array([0.0, -0.15, 0.0]) + side * 0.3 * np.sin(0.4 * t + phase)
    elif kind == "orbit":
        rate = float(rng.uniform(0.1, 0.6)) * rng.choice([-1, 1])
        r = float(rng.uniform(5.0, 11.0))

        def cam(t):
            a = rate * t + phase
            eye = np.array([r * np.sin(a), h + 0.3 * np.sin(0.5 * t), r * np.cos(a)])
            return eye, np.array([0.0, 0.8, 0.0])
    elif kind == "whip":  # a standing camera panning back and forth fast
        amp = float(rng.uniform(0.3, 0.9))
        period = float(rng.uniform(2.0, 6.0))
        r = float(rng.uniform(6.0, 11.0))
        base = float(rng.uniform(0, 2 * np.pi))
        eye0 = np.array([r * np.sin(base), h, r * np.cos(base)])

        def cam(t):
            yaw = base + np.pi + amp * np.sin(2 * np.pi * t / period + phase)
            return eye0, eye0 + np.array([np.sin(yaw), -0.1, np.cos(yaw)])
    else:  # fly-through: a slow loop through the middle of the scene
        r = float(rng.uniform(2.0, 6.0))
        rate = float(rng.uniform(0.15, 0.4))

        def cam(t):
            a = rate * t + phase
            eye = np.array([r * np.cos(a), h, r * np.sin(1.3 * a)])
            ahead = np.array([r * np.cos(a + 0.4), h * 0.8, r * np.sin(1.3 * (a + 0.4))])
            return eye, ahead
    fov = float(rng.uniform(45.0, 75.0))
    return Camera(cam, fov_y_deg=fov, near=0.05, far=150.0), kind


def scatter(seed: int = 0) -> Scene:
    """A random scene from ``seed``: see the module docstring."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GeneratedSceneError(f"scatter: seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([0x5CA7, int(seed)])
    extent = float(rng.uniform(8.0, 14.0))
    objs: list[SceneObject] = []
    ground = _material(rng, textured_p=1.0)
    g_uv = float(rng.uniform(4.0, 24.0))
    ground.uv_scale = (g_uv, g_uv)
    ground.metallic = 0.0
    objs.append(SceneObject("ground", P.plane(4 * extent, 4 * extent), ground))

    n = int(rng.integers(24, 41))
    moving = 0
    for i in range(n):
        mesh, lift, card = _thing(rng)
        if card:
            mat = Material(base_color_texture=T.foliage(256, int(rng.integers(50, 120)),
                                                        seed=int(rng.integers(0, 1000))),
                           roughness=0.7, alpha_cutoff=0.5, double_sided=True)
        else:
            mat = _material(rng)
        x, z = rng.uniform(-extent, extent, 2)
        y = lift + (float(rng.uniform(0.0, 2.0)) if rng.random() < 0.15 else 0.0)
        base = translate(x, y, z) @ rotate((0, 1, 0), float(rng.uniform(0, 2 * np.pi)))
        if rng.random() < 0.35:
            objs.append(SceneObject(f"object_{i}", mesh, mat, _motion(rng, base), animated=True))
            moving += 1
        else:
            objs.append(SceneObject(f"object_{i}", mesh, mat, static(base)))

    # a ring of large textured blocks round the edge: distant fine texture and fewer sky pixels
    blocks = int(rng.integers(4, 11))
    for k in range(blocks):
        a = 2 * np.pi * (k + rng.uniform(-0.3, 0.3)) / blocks
        r = extent * float(rng.uniform(1.2, 1.8))
        w, h, d = rng.uniform(4.0, 14.0), rng.uniform(2.5, 12.0), rng.uniform(1.0, 6.0)
        mat = _material(rng, textured_p=0.9)
        mat.uv_scale = (1.0, 1.0)
        objs.append(SceneObject(f"block_{k}", P.box(w, h, d, uv_per_unit=float(rng.choice([0.15, 0.3, 0.6]))),
                                mat, static(translate(r * np.cos(a), h / 2, r * np.sin(a))
                                            @ rotate((0, 1, 0), np.pi / 2 - a))))

    camera, path = _camera(rng, extent)
    sun_dir = (float(rng.uniform(-0.8, 0.8)), float(rng.uniform(0.35, 0.95)), float(rng.uniform(-0.8, 0.8)))
    sun = Sun(direction=sun_dir, color=tuple(float(v) for v in rng.uniform(0.8, 1.0, 3)),
              intensity=float(rng.uniform(2.0, 3.6)))
    sky = Sky(zenith=tuple(float(v) for v in rng.uniform([0.1, 0.2, 0.5], [0.4, 0.55, 0.95])))
    lights = [PointLight((float(rng.uniform(-extent, extent) * 0.6), float(rng.uniform(1.5, 4.0)),
                          float(rng.uniform(-extent, extent) * 0.6)),
                         tuple(float(v) for v in rng.uniform(0.3, 1.0, 3)),
                         float(rng.uniform(6.0, 16.0)), 12.0)
              for _ in range(int(rng.integers(0, 4)))]
    return Scene(f"scatter:{int(seed)}",
                 f"{n} random objects ({moving} moving) and {blocks} blocks on a random ground; {path} camera",
                 objs, camera, sun=sun, point_lights=lights, sky=sky, duration_s=24.0,
                 stresses=("random layout", "random textures", "random motion"))


GENERATED_SCENES = {"scatter": scatter}


def parse_generated(name: str) -> Scene | None:
    """The generated scene ``name`` names (``scatter`` or ``scatter:SEED``), else None."""
    family, sep, seed = name.partition(":")
    if family not in GENERATED_SCENES:
        return None
    if not sep:
        return GENERATED_SCENES[family](0)
    if not seed.isdigit():
        raise GeneratedSceneError(
            f"scene {name!r}: expected {family}:SEED with SEED a non-negative integer, got {seed!r}")
    return GENERATED_SCENES[family](int(seed))
