"""Write the held-out scenes: content no network of this project is trained or tuned on.

    .venv/bin/python scripts/make_heldout_scenes.py --out data/heldout_scenes

One glTF file (``reading_room.glb``: a room whose every texture is made here, procedurally,
from a fixed seed: terrazzo floor, fine wallpaper motifs, shelves of books whose spines carry
printed words, a woven rug, a slatted fence, thin pillars, wires, a desk fan, a sliding crate
with a printed label, a pendulum lamp) and two scene configs beside it:

- ``heldout_static.json``: nothing moves but the camera, which drifts slowly (about 5 cm and
  a few tenths of a degree per frame at 60 fps) across the shelves, the fence and the rug: the
  case where a temporal upscaler is at its best;
- ``heldout_closeup.json``: a close-up camera path along the fence, the pillars and the shelf,
  with the fan spinning, the crate sliding and the lamp swinging: thin geometry, fine
  texture and moving objects at once.

None of the training scenes' textures (scikit-image photographs, checkers, bricks, planks,
cobbles) is used. Render them like any scene file::

    R=".venv/bin/python -m demo_renderer render --render-size 480x270 --display-size 960x540"
    $R --scene data/heldout_scenes/heldout_static.json  --frames 40 --out data/heldout_static
    $R --scene data/heldout_scenes/heldout_closeup.json --frames 40 --out data/heldout_closeup
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import trimesh
from trimesh.visual.material import PBRMaterial
from trimesh.visual.texture import TextureVisuals

SEED = 20261206
WORDS = ("lumen", "quartz", "harbour", "violet", "meridian", "atlas", "cobalt", "fable", "orbit", "tundra",
         "saffron", "nimbus", "ember", "glyph", "zephyr", "onyx", "kelp", "prism", "delta", "sonnet")


def _img(a: np.ndarray) -> PIL.Image.Image:
    return PIL.Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8))


def terrazzo(rng, size=512) -> PIL.Image.Image:
    base = np.ones((size, size, 3)) * np.array([0.78, 0.76, 0.72])
    yy, xx = np.mgrid[:size, :size]
    for _ in range(1400):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.0, 5.0)
        col = rng.choice([[0.25, 0.3, 0.35], [0.7, 0.45, 0.3], [0.95, 0.95, 0.92], [0.2, 0.2, 0.2], [0.5, 0.55, 0.4]])
        d = (np.minimum(np.abs(xx - cx), size - np.abs(xx - cx)) ** 2 + (yy - cy) ** 2) < r * r
        base[d] = col
    return _img(base)


def wallpaper(rng, size=512) -> PIL.Image.Image:
    yy, xx = np.mgrid[:size, :size] / size
    stripes = 0.5 + 0.5 * np.sign(np.sin(2 * math.pi * 48 * (xx + 0.35 * yy)))
    dots = ((np.sin(2 * math.pi * 32 * xx) * np.sin(2 * math.pi * 32 * yy)) > 0.85).astype(float)
    a = np.stack([0.55 + 0.25 * stripes - 0.3 * dots, 0.42 + 0.15 * stripes - 0.2 * dots,
                  0.30 + 0.10 * stripes + 0.2 * dots], -1)
    return _img(a)


def book_spines(rng, w=512, h=256) -> PIL.Image.Image:
    im = PIL.Image.new("RGB", (w, h), (40, 30, 25))
    d = PIL.ImageDraw.Draw(im)
    x = 0
    while x < w:
        bw = int(rng.integers(14, 30))
        col = tuple(int(c) for c in rng.integers(30, 220, 3))
        d.rectangle([x, 8, x + bw - 2, h - 4], fill=col)
        word = WORDS[int(rng.integers(len(WORDS)))]
        for k, ch in enumerate(word[: (h - 30) // 11]):
            d.text((x + bw // 2 - 3, 16 + 11 * k), ch.upper(), fill=(250, 240, 200))
        d.line([x + 2, 12, x + bw - 4, 12], fill=(230, 200, 90), width=1)
        x += bw
    return im


def rug(rng, size=512) -> PIL.Image.Image:
    yy, xx = np.mgrid[:size, :size] / size
    weave = 0.5 + 0.5 * np.sin(2 * math.pi * 96 * xx) * np.sin(2 * math.pi * 96 * yy)
    band = (np.abs(((xx * 8) % 1) - 0.5) < 0.08) | (np.abs(((yy * 8) % 1) - 0.5) < 0.08)
    a = np.stack([0.45 + 0.25 * weave, 0.12 + 0.1 * weave, 0.15 + 0.05 * weave], -1)
    a[band] = [0.85, 0.75, 0.35]
    return _img(a)


def label(text: str, w=256, h=128) -> PIL.Image.Image:
    im = PIL.Image.new("RGB", (w, h), (210, 190, 140))
    d = PIL.ImageDraw.Draw(im)
    for k in range(7):
        d.text((8, 6 + 17 * k), (text + " ") * 4, fill=(30, 30, 30))
    d.rectangle([2, 2, w - 3, h - 3], outline=(120, 40, 20), width=3)
    return im


def material(image: PIL.Image.Image | None = None, color=(1.0, 1.0, 1.0), roughness=0.6, metallic=0.0):
    kw = {"baseColorTexture": image} if image is not None else {}
    return PBRMaterial(baseColorFactor=[*color, 1.0], roughnessFactor=roughness, metallicFactor=metallic, **kw)


def box(size, center, mat, uv_scale=1.0) -> trimesh.Trimesh:
    m = trimesh.creation.box(extents=size)
    m.unmerge_vertices()  # per-face UVs
    v = m.vertices
    n = m.face_normals.repeat(3, 0)
    # planar UVs on the dominant axis of each face, in metres times uv_scale
    ax = np.abs(n).argmax(1)
    uv = np.where(ax[:, None] == 0, v[:, [2, 1]], np.where(ax[:, None] == 1, v[:, [0, 2]], v[:, [0, 1]]))
    uv = (uv - uv.min(0)) * uv_scale
    m.apply_translation(center)
    m.visual = TextureVisuals(uv=uv, material=mat)
    return m


def cylinder(radius, height, center, mat, sections=12) -> trimesh.Trimesh:
    m = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    m.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [1, 0, 0]))  # along +y
    m.apply_translation(center)
    m.visual = TextureVisuals(uv=np.zeros((len(m.vertices), 2)), material=mat)
    return m


def build(rng) -> trimesh.Scene:
    s = trimesh.Scene()
    add = lambda name, mesh: s.add_geometry(mesh, node_name=name, geom_name=name)  # noqa: E731
    floor_m = material(terrazzo(rng), roughness=0.4)
    wall_m = material(wallpaper(rng), roughness=0.8)
    add("floor", box((12, 0.1, 12), (0, -0.05, 0), floor_m, uv_scale=0.5))
    add("wall_back", box((12, 4, 0.1), (0, 2, -6), wall_m, uv_scale=0.5))
    add("wall_left", box((0.1, 4, 12), (-6, 2, 0), wall_m, uv_scale=0.5))
    add("rug", box((4, 0.02, 3), (0.5, 0.01, 0.5), material(rug(rng)), uv_scale=0.25))
    shelf_m = material(color=(0.35, 0.22, 0.12), roughness=0.5)
    for k in range(4):  # shelves of books along the back wall
        y = 0.45 + 0.7 * k
        add(f"shelf_{k}", box((5, 0.04, 0.5), (-1.5, y - 0.02, -5.6), shelf_m))
        add(f"books_{k}", box((4.8, 0.55, 0.35), (-1.5, y + 0.28, -5.6), material(book_spines(rng)),
                              uv_scale=0.21))
    slat_m = material(color=(0.85, 0.85, 0.8), roughness=0.5)
    for k in range(28):  # a slatted fence: 3 cm slats, 4 cm gaps
        add(f"slat_{k:02d}", box((0.03, 1.2, 0.02), (1.2 + 0.07 * k, 0.6, 1.8), slat_m))
    add("fence_rail", box((2.0, 0.05, 0.03), (2.15, 1.0, 1.78), slat_m))
    pillar_m = material(color=(0.6, 0.62, 0.66), roughness=0.3, metallic=0.8)
    for k in range(6):  # thin pillars, 2 cm
        add(f"pillar_{k}", cylinder(0.02, 3.8, (-3.5 + 1.1 * k, 1.9, -2.5), pillar_m, sections=8))
    wire_m = material(color=(0.1, 0.1, 0.1), roughness=0.6)
    add("wire_a", box((8, 0.008, 0.008), (0, 3.2, -2.5), wire_m))
    add("wire_b", box((0.008, 0.008, 8), (3.0, 3.0, 0), wire_m))
    add("desk", box((1.6, 0.05, 0.8), (-3.5, 0.75, 1.5), shelf_m))
    add("crate", box((0.6, 0.4, 0.4), (-3.8, 0.98, 1.5), material(label("HOLD OUT")), uv_scale=1.6))
    blade_m = material(color=(0.9, 0.3, 0.2), roughness=0.4)
    fan = trimesh.util.concatenate([box((0.02, 0.5, 0.005), (0, 0.25, 0), blade_m),
                                    box((0.02, 0.5, 0.005), (0, -0.25, 0), blade_m),
                                    box((0.5, 0.02, 0.005), (0.25, 0, 0), blade_m),
                                    box((0.5, 0.02, 0.005), (-0.25, 0, 0), blade_m)])
    fan.apply_translation((-2.9, 1.35, 1.5))
    add("fan", fan)
    add("lamp", trimesh.util.concatenate([box((0.01, 1.0, 0.01), (1.0, 2.9, -1.0), wire_m),
                                          box((0.3, 0.2, 0.3), (1.0, 2.3, -1.0), material(color=(0.95, 0.9, 0.6)))]))
    return s


def configs(out: Path) -> None:
    static = {"mesh": "reading_room.glb", "duration_s": 40, "camera": {"fov_y_deg": 55, "path": [
        {"t": 0, "eye": [3.0, 1.6, 2.6], "target": [-1.0, 1.3, -5.0]},
        {"t": 20, "eye": [1.2, 1.5, 1.6], "target": [-2.0, 1.2, -5.0]},
        {"t": 40, "eye": [-0.6, 1.4, 1.2], "target": [-2.5, 1.0, -3.0]}]}}
    closeup = {
        "mesh": "reading_room.glb",
        "camera": {"fov_y_deg": 55, "path": [
            {"t": 0, "eye": [3.6, 1.1, 3.4], "target": [2.0, 0.8, 1.8]},
            {"t": 3, "eye": [1.0, 1.3, 3.0], "target": [0.0, 1.0, 0.0]},
            {"t": 6, "eye": [-2.0, 1.6, 3.2], "target": [-3.3, 1.1, 1.5]},
            {"t": 9, "eye": [-3.0, 1.8, 0.2], "target": [-2.0, 1.8, -5.6]}]},
        "animation": [
            {"object": "fan", "rotate": {"axis": [0, 0, 1], "deg_per_s": 120}},
            {"object": "crate", "oscillate": {"axis": [1, 0, 0], "amplitude": 0.45, "period_s": 3.0}},
            {"object": "lamp", "rotate": {"axis": [0, 0, 1], "deg_per_s": 0},
             "oscillate": {"axis": [1, 0, 0], "amplitude": 0.3, "period_s": 2.2}}],
        "duration_s": 9}
    (out / "heldout_static.json").write_text(json.dumps(static, indent=1) + "\n")
    (out / "heldout_closeup.json").write_text(json.dumps(closeup, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/heldout_scenes"), help="folder to write (created)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    build(np.random.default_rng(SEED)).export(a.out / "reading_room.glb")
    configs(a.out)
    print(f"wrote {a.out / 'reading_room.glb'}, {a.out / 'heldout_static.json'}, {a.out / 'heldout_closeup.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
