"""The built-in scenes, each a stress case for supersampling and extrapolation.

- ``fence``: thin geometry (a picket fence, power-line wires, alpha-tested foliage cards,
  a spinning thin-bladed windmill) over fine grass, with a sideways camera dolly.
- ``gallery``: fine high-frequency textures (photographs, text, brick, checker floor) and
  glossy highlights under coloured point lights, with an orbiting camera.
- ``traffic``: fast motion and disocclusions: cars crossing at speed, spinning signs, a
  whip-panning camera moving down a street of windowed facades.
- ``plaza``: large textured objects in fast motion (sliding crates, a rolling ball, a
  carousel, a sliding screen, a pendulum) passing behind and in front of textured pillars,
  with a dollying, panning camera: big moving regions and their disocclusions, the data
  the motion and frame-interpolation networks need to learn object motion (traffic stays
  held out).
"""

from __future__ import annotations

import numpy as np

from ..scene import (
    Camera,
    Material,
    PointLight,
    Scene,
    SceneObject,
    Sky,
    Sun,
    look_at,
    rotate,
    scale,
    static,
    translate,
)
from . import primitives as P
from . import textures as T


def _smooth(t: float, period: float) -> float:
    return np.sin(2 * np.pi * t / period)


# --------------------------------------------------------------------------- fence

def fence() -> Scene:
    objs: list[SceneObject] = []
    grass = Material(base_color_texture=T.photo("grass", (0.55, 0.9, 0.45)), roughness=0.9,
                     uv_scale=(14.0, 14.0))
    objs.append(SceneObject("ground", P.plane(60, 60), grass))

    # picket fence along x at z = 0: 121 pickets 6 cm wide, 10 cm gaps, two rails
    pickets = [(P.box(0.06, 1.0, 0.025), translate(x, 0.5, 0.0))
               for x in np.arange(-9.6, 9.6 + 1e-6, 0.16)]
    rails = [(P.box(19.4, 0.06, 0.03), translate(0.0, h, -0.03)) for h in (0.3, 0.8)]
    paint = Material(base_color=(0.85, 0.85, 0.82, 1.0), roughness=0.45)
    objs.append(SceneObject("fence", P.merge(pickets + rails), paint))

    # power line: poles and three sagging 1.5 cm wires
    pole_x = [-12.0, -4.0, 4.0, 12.0]
    poles = [(P.cylinder(0.09, 6.0, 12), translate(x, 0, -5.0)) for x in pole_x]
    arms = [(P.box(1.6, 0.07, 0.07), translate(x, 5.7, -5.0)) for x in pole_x]
    wood = Material(base_color=(0.35, 0.25, 0.18, 1.0), roughness=0.8)
    objs.append(SceneObject("poles", P.merge(poles + arms), wood))
    wires = []
    for a, b in zip(pole_x[:-1], pole_x[1:]):
        for dx in (-0.7, 0.0, 0.7):
            xs = np.linspace(a, b, 17)
            s = (xs - a) / (b - a)
            ys = 5.75 - 0.6 * 4 * s * (1 - s)
            pts = np.stack([xs + dx * 0, ys, np.full_like(xs, -5.0 + dx * 0.3)], 1)
            wires += [(P.segment(p0, p1, 0.0075, 5), None) for p0, p1 in zip(pts[:-1], pts[1:])]
    metal = Material(base_color=(0.6, 0.6, 0.62, 1.0), roughness=0.25, metallic=1.0)
    objs.append(SceneObject("wires", P.merge(wires), metal))

    # alpha-tested foliage: bushes of crossed cards behind and in front of the fence
    rng = np.random.default_rng(11)
    cards = []
    for i in range(16):
        cx = -9.0 + i * 1.2 + rng.uniform(-0.3, 0.3)
        cz = rng.choice([-1.4, -2.2, 1.6])
        hgt = rng.uniform(1.2, 2.2)
        for k in range(3):
            ang = k * np.pi / 3 + rng.uniform(0, 0.5)
            cards.append((P.quad(hgt * 0.9, hgt), translate(cx, 0, cz) @ rotate((0, 1, 0), ang)))
    leaves = Material(base_color_texture=T.foliage(), roughness=0.7, alpha_cutoff=0.5,
                      double_sided=True)
    objs.append(SceneObject("foliage", P.merge(cards), leaves, casts_shadow=True))

    chrome = Material(base_color=(0.95, 0.93, 0.88, 1.0), roughness=0.08, metallic=1.0)
    objs.append(SceneObject("chrome_ball", P.sphere(0.6), chrome, static(translate(2.5, 0.6, 2.2))))

    # a windmill with thin blades spinning at 1.5 rev/s (animated thin geometry)
    tower = P.merge([(P.cylinder(0.06, 2.4, 10), None), (P.box(0.25, 0.25, 0.35), translate(0, 2.4, 0))])
    objs.append(SceneObject("windmill_tower", tower, wood, static(translate(0.5, 0, -3.0))))
    blades = P.merge([(P.box(0.05, 1.3, 0.01), rotate((0, 0, 1), k * np.pi / 2) @ translate(0, 0.65, 0))
                      for k in range(4)])

    def blade_tf(t: float) -> np.ndarray:
        return translate(0.5, 2.4, -2.78) @ rotate((0, 0, 1), -2 * np.pi * 1.5 * t)

    objs.append(SceneObject("windmill_blades", blades, paint, blade_tf, animated=True))

    def cam(t: float):
        x = -6.0 + 0.9 * t
        eye = np.array([x, 1.3 + 0.15 * _smooth(t, 7.0), 6.0])
        return eye, eye + np.array([0.35 * _smooth(t, 11.0), -0.12, -1.0])

    return Scene("fence", "picket fence, power-line wires, foliage cards and a spinning "
                 "windmill over fine grass; sideways dolly", objs,
                 Camera(cam, fov_y_deg=55.0, near=0.1, far=120.0),
                 sun=Sun(direction=(0.5, 0.7, 0.45), intensity=3.2),
                 point_lights=[PointLight((2.0, 2.0, 4.0), (1.0, 0.8, 0.6), 8.0, 10.0)],
                 duration_s=12.0, stresses=("thin geometry", "alpha-tested foliage", "fine texture"))


# --------------------------------------------------------------------------- gallery

def gallery() -> Scene:
    objs: list[SceneObject] = []
    floor = Material(base_color_texture=T.checker(512, 64), roughness=0.35, uv_scale=(6.0, 6.0))
    objs.append(SceneObject("floor", P.plane(16, 16), floor))
    brick = Material(base_color_texture=T.photo("brick", (1.0, 0.7, 0.55)), roughness=0.85)
    walls = [(P.box(16, 4, 0.3, uv_per_unit=0.5), translate(0, 2, -8)),
             (P.box(0.3, 4, 16, uv_per_unit=0.5), translate(-8, 2, 0)),
             (P.box(0.3, 4, 16, uv_per_unit=0.5), translate(8, 2, 0)),
             (P.box(6, 4, 0.3, uv_per_unit=0.5), translate(-5, 2, 8))]
    objs.append(SceneObject("walls", P.merge(walls), brick))

    pictures = [("astronaut", (-4.5, 1.0, -7.84), 0.0), ("chelsea", (-0.5, 1.0, -7.84), 0.0),
                ("coffee", (3.5, 1.0, -7.84), 0.0), ("rocket", (-7.84, 1.0, -3.0), np.pi / 2),
                ("hubble_deep_field", (-7.84, 1.0, 2.0), np.pi / 2),
                ("text", (7.84, 1.1, -2.5), -np.pi / 2), ("page", (7.84, 1.0, 2.5), -np.pi / 2)]
    for name, pos, yaw in pictures:
        img = T.photo(name)
        aspect = img.shape[1] / img.shape[0]
        hgt = 2.0
        objs.append(SceneObject(f"picture_{name}", P.quad(hgt * aspect, hgt),
                                Material(base_color_texture=img, roughness=0.3),
                                static(translate(*pos) @ rotate((0, 1, 0), yaw))))

    marble = Material(base_color=(0.9, 0.9, 0.88, 1.0), roughness=0.5)
    pedestals = P.merge([(P.box(0.8, 1.0, 0.8), translate(x, 0.5, z))
                         for x, z in ((-2.5, -1.5), (0.0, 1.5), (2.5, -1.5))])
    objs.append(SceneObject("pedestals", pedestals, marble))
    objs.append(SceneObject("gold_sphere", P.sphere(0.4, 64, 32),
                            Material(base_color=(1.0, 0.78, 0.34, 1.0), roughness=0.15, metallic=1.0),
                            static(translate(-2.5, 1.4, -1.5))))
    objs.append(SceneObject("red_glossy_sphere", P.sphere(0.4, 64, 32),
                            Material(base_color=(0.7, 0.05, 0.04, 1.0), roughness=0.06),
                            static(translate(2.5, 1.4, -1.5))))

    def spin(t: float) -> np.ndarray:
        return translate(0.0, 1.45, 1.5) @ rotate((0.3, 1.0, 0.2), 1.2 * t) @ rotate((1, 0, 0), 0.6)

    objs.append(SceneObject("spinning_cube", P.box(0.6, 0.6, 0.6, uv_per_unit=1.0),
                            Material(base_color_texture=T.checker(256, 16, (240, 200, 60), (30, 30, 120)),
                                     roughness=0.25, metallic=0.3), spin, animated=True))

    def cam(t: float):
        a = 2 * np.pi * t / 24.0 + 0.3
        eye = np.array([5.2 * np.sin(a), 1.7 + 0.2 * _smooth(t, 9.0), 5.2 * np.cos(a)])
        return eye, np.array([0.0, 1.2, -0.5])

    lights = [PointLight((-3.0, 3.2, -3.0), (1.0, 0.6, 0.35), 14.0, 12.0),
              PointLight((3.0, 3.2, -3.0), (0.4, 0.6, 1.0), 14.0, 12.0),
              PointLight((0.0, 3.0, 3.5), (1.0, 1.0, 1.0), 10.0, 12.0)]
    return Scene("gallery", "photographs, text, brick and a fine checker floor; glossy "
                 "spheres under coloured lights; orbiting camera", objs,
                 Camera(cam, fov_y_deg=60.0, near=0.05, far=60.0),
                 sun=Sun(direction=(0.3, 0.85, 0.4), intensity=2.5), point_lights=lights,
                 duration_s=24.0, stresses=("fine texture", "text", "glossy highlights"))


# --------------------------------------------------------------------------- traffic

_CAR_COLOURS = [(0.7, 0.05, 0.05), (0.05, 0.2, 0.6), (0.9, 0.75, 0.1), (0.1, 0.1, 0.1),
                (0.85, 0.85, 0.85), (0.1, 0.45, 0.15)]


def _car() -> P.Mesh:
    body = (P.box(4.2, 0.7, 1.8), translate(0, 0.55, 0))
    cabin = (P.box(2.2, 0.6, 1.6), translate(-0.2, 1.2, 0))
    wheels = [(P.cylinder(0.33, 0.2, 16), translate(x, 0.33, z) @ rotate((1, 0, 0), np.pi / 2) @ translate(0, -0.1, 0))
              for x in (-1.3, 1.3) for z in (-0.9, 0.9)]
    return P.merge([body, cabin] + wheels)


def traffic() -> Scene:
    objs: list[SceneObject] = []
    asphalt = Material(base_color_texture=T.photo("gravel", (0.35, 0.35, 0.37)), roughness=0.85,
                       uv_scale=(40.0, 4.0))
    objs.append(SceneObject("road", P.plane(200, 12), asphalt))
    pavement = Material(base_color_texture=T.checker(256, 16, (170, 165, 160), (120, 118, 115)),
                        roughness=0.7, uv_scale=(100.0, 3.0))
    objs.append(SceneObject("pavements", P.merge([(P.plane(200, 6), translate(0, 0.12, z)) for z in (-9, 9)]),
                            pavement))
    marks = [(P.box(2.0, 0.01, 0.12), translate(x, 0.005, 0)) for x in np.arange(-98, 98, 4.0)]
    objs.append(SceneObject("lane_marks", P.merge(marks),
                            Material(base_color=(0.9, 0.9, 0.85, 1.0), roughness=0.5)))

    rng = np.random.default_rng(5)
    for side, z in (("north", -16.0), ("south", 16.0)):
        blocks = []
        x = -100.0
        while x < 100.0:
            w = rng.uniform(8, 16)
            h = rng.uniform(8, 24)
            blocks.append((P.box(w - 0.6, h, 12, uv_per_unit=1 / 6), translate(x + w / 2, h / 2, z)))
            x += w
        wall = tuple(int(c) for c in rng.integers(90, 190, 3))
        objs.append(SceneObject(f"buildings_{side}", P.merge(blocks),
                                Material(base_color_texture=T.facade(512, seed=len(objs), wall=wall),
                                         roughness=0.6)))

    posts = [(P.cylinder(0.08, 5.0, 10), translate(x, 0, -6.3)) for x in np.arange(-60, 61, 15.0)]
    objs.append(SceneObject("lamp_posts", P.merge(posts),
                            Material(base_color=(0.2, 0.2, 0.22, 1.0), roughness=0.35, metallic=1.0)))

    car_mesh = _car()
    span = 160.0  # cars loop over [-80, 80], far outside the view at the wrap

    for k in range(6):
        lane_z = -2.5 if k % 2 == 0 else 2.5
        direction = 1.0 if k % 2 == 0 else -1.0
        speed = 9.0 + 2.0 * k
        x0 = -70.0 + k * 27.0

        def car_tf(t, x0=x0, speed=speed, direction=direction, lane_z=lane_z):
            x = (x0 + direction * speed * t + 80.0) % span - 80.0
            return translate(x, 0.0, lane_z) @ rotate((0, 1, 0), 0.0 if direction > 0 else np.pi)

        colour = _CAR_COLOURS[k % len(_CAR_COLOURS)]
        objs.append(SceneObject(f"car_{k}", car_mesh,
                                Material(base_color=(*colour, 1.0), roughness=0.2, metallic=0.6),
                                car_tf, animated=True))

    sign = P.merge([(P.cylinder(0.05, 3.0, 8), None), (P.box(1.4, 0.9, 0.05), translate(0, 3.2, 0))])
    sign_mat = Material(base_color_texture=T.checker(128, 8, (250, 250, 250), (200, 20, 20)), roughness=0.3)
    for k, x in enumerate((-8.0, 6.0, 20.0)):
        def sign_tf(t, x=x, k=k):
            return translate(x, 0.12, -7.0) @ rotate((0, 1, 0), (2.0 + k) * t)
        objs.append(SceneObject(f"spinning_sign_{k}", sign, sign_mat, sign_tf, animated=True))

    def ball_tf(t):
        h = abs(np.sin(np.pi * t / 0.9)) * 2.5
        return translate(-3.0 + 4.0 * np.sin(0.7 * t), 0.45 + h, 5.0)

    objs.append(SceneObject("bouncing_ball", P.sphere(0.45),
                            Material(base_color=(0.1, 0.7, 0.9, 1.0), roughness=0.1), ball_tf, animated=True))

    def cam(t: float):
        eye = np.array([-10.0 + 3.0 * t, 1.8, 7.5])
        yaw = 0.6 * _smooth(t, 4.0)  # whip pan, up to ~0.95 rad/s
        fwd = np.array([np.sin(yaw) * 1.0 + 0.3, -0.08, -np.cos(yaw)])
        return eye, eye + fwd

    lights = [PointLight((x, 5.0, -5.8), (1.0, 0.8, 0.5), 20.0, 14.0) for x in (-15.0, 0.0, 15.0)]
    return Scene("traffic", "cars crossing at speed, spinning signs, a bouncing ball and a "
                 "whip-panning camera in a street of windowed facades", objs,
                 Camera(cam, fov_y_deg=65.0, near=0.1, far=250.0),
                 sun=Sun(direction=(-0.35, 0.75, 0.55), intensity=3.0), point_lights=lights,
                 sky=Sky(zenith=(0.2, 0.4, 0.85)), duration_s=10.0,
                 stresses=("fast motion", "disocclusions", "animated objects"))


# --------------------------------------------------------------------------- plaza

def plaza() -> Scene:
    objs: list[SceneObject] = []
    # (textures chosen apart from traffic's gravel road and window facades, so that the
    # held-out scene stays unseen in its materials too)
    paving = Material(base_color_texture=T.cobbles(), roughness=0.8, uv_scale=(12.0, 12.0))
    objs.append(SceneObject("paving", P.plane(60, 60), paving))
    deck = Material(base_color_texture=T.planks(), roughness=0.55, uv_scale=(4.0, 4.0))
    objs.append(SceneObject("deck", P.plane(10, 6), deck, static(translate(0.0, 0.01, -1.0))))

    # a back wall of facade texture and textured pillars in front of it (occluders)
    objs.append(SceneObject("back_wall", P.box(7, 40, 0.4, uv_per_unit=1 / 7),
                            Material(base_color_texture=T.planks(512, 24, seed=8), roughness=0.6),
                            static(translate(0, 3.5, -9.0) @ rotate((0, 0, 1), np.pi / 2))))
    brick = Material(base_color_texture=T.photo("brick", (0.95, 0.75, 0.6)), roughness=0.85)
    pillars = [(P.box(0.7, 4.0, 0.7, uv_per_unit=0.6), translate(x, 2.0, z))
               for x, z in ((-6.0, -3.5), (-2.0, -5.0), (2.5, -3.0), (6.5, -4.5), (-4.0, 1.5), (4.5, 1.0))]
    objs.append(SceneObject("pillars", P.merge(pillars), brick))

    # two crates sliding back and forth at speed, turning as they go
    for k, (tex, z, speed, amp, phase) in enumerate(((T.photo("coffee"), -1.5, 2.0, 7.0, 0.0),
                                                     (T.checker(256, 8, (230, 120, 40), (40, 60, 140)), 0.0, 2.8, 6.0, 1.3))):
        def crate_tf(t, z=z, speed=speed, amp=amp, phase=phase):
            x = amp * np.sin(speed * t + phase)
            return translate(x, 0.75, z) @ rotate((0, 1, 0), 0.8 * np.sin(0.9 * t + phase))
        objs.append(SceneObject(f"crate_{k}", P.box(1.5, 1.5, 1.5), Material(base_color_texture=tex, roughness=0.5),
                                crate_tf, animated=True))

    # a textured ball rolling across the plaza on a loop (rolls without slipping)
    radius = 0.8

    def ball_tf(t):
        x = 9.0 * np.sin(1.2 * t)  # also the arc length rolled from x = 0
        return translate(x, radius, 2.0) @ rotate((0, 0, 1), -x / radius)

    objs.append(SceneObject("rolling_ball", P.sphere(radius, 48, 24),
                            Material(base_color_texture=T.photo("astronaut"), roughness=0.35), ball_tf,
                            animated=True))

    # a carousel: a disc with four picture panels turning at 0.4 rev/s
    panels = [(P.quad(1.4, 1.6), rotate((0, 1, 0), a) @ translate(0, 0.3, 1.6))
              for a in np.arange(4) * np.pi / 2]
    disc = [(P.cylinder(2.0, 0.3, 32), None), (P.cylinder(0.12, 2.2, 10), None)]

    def carousel_tf(t):
        return translate(-5.0, 0.0, -6.5) @ rotate((0, 1, 0), 2 * np.pi * 0.4 * t)

    objs.append(SceneObject("carousel_base", P.merge(disc),
                            Material(base_color=(0.8, 0.2, 0.25, 1.0), roughness=0.4), carousel_tf, animated=True))
    objs.append(SceneObject("carousel_panels", P.merge(panels),
                            Material(base_color_texture=T.photo("chelsea"), roughness=0.4, double_sided=True),
                            carousel_tf, animated=True))

    # a screen of text sliding along the back wall (a large disocclusion behind it)
    def screen_tf(t):
        return translate(4.0 * np.sin(1.1 * t) + 3.0, 0.2, -7.5)

    objs.append(SceneObject("sliding_screen", P.quad(3.2, 2.4),
                            Material(base_color_texture=T.photo("page"), roughness=0.5, double_sided=True),
                            screen_tf, animated=True))

    # a pendulum: a textured block on a rod swinging across the view
    def pendulum_tf(t):
        return translate(1.0, 4.5, -1.0) @ rotate((0, 0, 1), 0.9 * np.sin(2.2 * t))

    bob = P.merge([(P.cylinder(0.03, 3.0, 8), translate(0, -3.0, 0)),
                   (P.box(0.8, 0.8, 0.8, uv_per_unit=1.2), translate(0, -3.2, 0))])
    objs.append(SceneObject("pendulum", bob,
                            Material(base_color_texture=T.checker(128, 8, (250, 250, 250), (20, 140, 60)),
                                     roughness=0.3, metallic=0.2), pendulum_tf, animated=True))

    def cam(t: float):
        eye = np.array([6.0 * np.sin(0.25 * t), 2.0 + 0.3 * _smooth(t, 6.0), 9.0 - 1.5 * _smooth(t, 9.0)])
        target = np.array([1.5 * np.sin(0.6 * t), 1.1, -2.0])
        return eye, target

    lights = [PointLight((-3.0, 3.5, 0.5), (1.0, 0.75, 0.5), 12.0, 12.0),
              PointLight((4.0, 3.5, -2.0), (0.5, 0.7, 1.0), 12.0, 12.0)]
    return Scene("plaza", "large textured crates, a rolling ball, a carousel, a sliding screen "
                 "and a pendulum moving fast among pillars; dollying, panning camera", objs,
                 Camera(cam, fov_y_deg=60.0, near=0.1, far=120.0),
                 sun=Sun(direction=(0.4, 0.8, 0.3), intensity=3.0), point_lights=lights,
                 sky=Sky(zenith=(0.25, 0.45, 0.8)), duration_s=24.0,
                 stresses=("large moving objects", "disocclusions", "fine texture"))


BUILTIN_SCENES = {"fence": fence, "gallery": gallery, "traffic": traffic, "plaza": plaza}
