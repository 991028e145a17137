"""User scene files (glTF / OBJ + JSON config): geometry, materials, UV orientation, camera
paths, animation, the default orbit and error messages. Pure numpy: no OpenGL context.

Every asset is built in ``tmp_path`` by the test itself (trimesh exports, or hand-written
files where the test must not depend on trimesh's own conventions).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import trimesh
from trimesh.visual import TextureVisuals
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from demo_renderer.scene import Mesh, look_at, translate
from demo_renderer.scenes import primitives as P
from demo_renderer.scenes.files import SceneFileError, load_scene_file

RED, GREEN, BLUE, WHITE = (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255), (255, 255, 255, 255)


def _image() -> PIL.Image.Image:
    """2x2 RGBA, rows top-first: red green / blue white."""
    return PIL.Image.fromarray(np.array([[RED, GREEN], [BLUE, WHITE]], np.uint8), "RGBA")


def _sample(texture: np.ndarray, uv) -> tuple[int, ...]:
    """Nearest texel at ``uv`` the way the renderer samples: v = 0 is row 0 (the top)."""
    h, w = texture.shape[:2]
    col = min(int(uv[0] * w), w - 1)
    row = min(int(uv[1] * h), h - 1)
    return tuple(int(c) for c in texture[row, col])


def _srgb_to_linear(c):
    c = np.asarray(c, float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _box_trimesh(material) -> tuple[trimesh.Trimesh, Mesh]:
    """Our box primitive (glTF-convention uvs) as a textured trimesh (v = 0 at the bottom)."""
    box = P.box(1.0, 2.0, 3.0)
    uv = box.uvs.astype(float).copy()
    uv[:, 1] = 1.0 - uv[:, 1]
    mesh = trimesh.Trimesh(box.positions, box.indices, vertex_normals=box.normals,
                           visual=TextureVisuals(uv=uv, material=material), process=False)
    return mesh, box


def _rows(positions, uvs) -> set[tuple[float, ...]]:
    return {tuple(np.round(np.concatenate([p, t]), 4)) for p, t in zip(positions, uvs)}


def _export_glb(tmp_path: Path) -> Path:
    """Two instances of one textured box mesh: "spinner" at x = 3, "bobber" at the origin."""
    material = PBRMaterial(baseColorTexture=_image(), baseColorFactor=[0.5, 0.25, 1.0, 1.0])
    mesh, _ = _box_trimesh(material)
    scene = trimesh.Scene()
    scene.add_geometry(mesh, node_name="spinner", geom_name="box", transform=translate(3, 0, 0))
    scene.graph.update(frame_to="bobber", geometry="box")
    path = tmp_path / "box.glb"
    scene.export(path)
    return path


# --------------------------------------------------------------------------- meshes

def test_glb_textured_box_materials_and_uvs(tmp_path):
    material = PBRMaterial(baseColorTexture=_image(), baseColorFactor=[0.5, 0.25, 1.0, 1.0],
                           roughnessFactor=0.3, metallicFactor=0.1, alphaMode="MASK",
                           alphaCutoff=0.4, doubleSided=True)
    mesh, box = _box_trimesh(material)
    mesh.export(tmp_path / "box.glb")

    scene = load_scene_file(tmp_path / "box.glb")
    assert scene.name == "box" and scene.stresses == ("user scene",)
    assert len(scene.objects) == 1
    obj = scene.objects[0]
    assert obj.mesh.triangle_count == 12 and not obj.animated
    np.testing.assert_allclose(obj.transform(1.0), np.eye(4))
    assert _rows(obj.mesh.positions, obj.mesh.uvs) == _rows(box.positions, box.uvs)
    np.testing.assert_allclose(np.linalg.norm(obj.mesh.normals, axis=1), 1.0, atol=1e-5)

    m = obj.material
    np.testing.assert_allclose(m.base_color, (0.5, 0.25, 1.0, 1.0), atol=1 / 255)  # linear: as is
    assert m.roughness == pytest.approx(0.3) and m.metallic == pytest.approx(0.1)
    assert m.alpha_cutoff == pytest.approx(0.4) and m.double_sided
    tex = m.base_color_texture
    assert tex.shape == (2, 2, 4) and tex.dtype == np.uint8
    assert tuple(tex[0, 0]) == RED and tuple(tex[1, 0]) == BLUE  # rows top-first, as stored
    # the box's vertex with glTF uv (0, 0) shows the image's top-left texel
    corner = np.flatnonzero(np.all(obj.mesh.uvs == 0.0, axis=1))
    assert corner.size and all(_sample(tex, obj.mesh.uvs[i]) == RED for i in corner)


def _write_gltf(folder: Path) -> Path:
    """A hand-written glTF (external .bin and .png): a unit quad facing +z whose top-left
    corner (0, 1, 0) has TEXCOORD (0, 0), the image's top-left per the glTF spec; two nodes,
    one translated, one mirrored. The material gives a texture and nothing else."""
    positions = np.array([[0, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)
    normals = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    indices = np.array([0, 3, 2, 0, 2, 1], np.uint16)
    blob = positions.tobytes() + normals.tobytes() + uvs.tobytes() + indices.tobytes()
    (folder / "quad.bin").write_bytes(blob)
    _image().save(folder / "quad.png")
    views = [(0, 48), (48, 48), (96, 32), (128, 12)]
    gltf = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0, 1]}],
        "nodes": [{"name": "right", "mesh": 0, "translation": [2, 0, 0]},
                  {"name": "mirror", "mesh": 0, "scale": [-1, 1, 1]}],
        "meshes": [{"name": "quad", "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2},
            "indices": 3, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}],
        "images": [{"uri": "quad.png"}],
        "buffers": [{"uri": "quad.bin", "byteLength": len(blob)}],
        "bufferViews": [{"buffer": 0, "byteOffset": o, "byteLength": n} for o, n in views],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3",
             "min": [0, 0, 0], "max": [1, 1, 0]},
            {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 2, "componentType": 5126, "count": 4, "type": "VEC2"},
            {"bufferView": 3, "componentType": 5123, "count": 6, "type": "SCALAR"},
        ],
    }
    path = folder / "quad.gltf"
    path.write_text(json.dumps(gltf))
    return path


def test_gltf_uv_origin_is_image_top_left(tmp_path):
    scene = load_scene_file(_write_gltf(tmp_path))
    assert [o.name for o in scene.objects] == ["mirror", "right"]  # sorted by name
    mirror, right = scene.objects
    mesh, tex = right.mesh, right.material.base_color_texture
    top_left = int(np.flatnonzero(np.all(np.isclose(mesh.positions, [0, 1, 0]), axis=1))[0])
    bottom_right = int(np.flatnonzero(np.all(np.isclose(mesh.positions, [1, 0, 0]), axis=1))[0])
    np.testing.assert_allclose(mesh.uvs[top_left], (0, 0))
    assert _sample(tex, mesh.uvs[top_left]) == RED
    assert _sample(tex, mesh.uvs[bottom_right]) == WHITE
    # a material without roughness/metallic factors gets our defaults, not glTF's 1.0/1.0
    assert right.material.roughness == 0.6 and right.material.metallic == 0.0
    assert right.material.base_color == (1.0, 1.0, 1.0, 1.0)
    assert right.material.base_color_texture is mirror.material.base_color_texture
    # node transforms are the objects' model matrices; the mirrored one flips its winding
    np.testing.assert_allclose(right.transform(0.0), translate(2, 0, 0))
    np.testing.assert_allclose(mirror.transform(0.0), np.diag([-1.0, 1, 1, 1]))
    np.testing.assert_array_equal(mirror.mesh.indices, right.mesh.indices[:, ::-1])


def test_obj_hand_written_mtl(tmp_path):
    _image().save(tmp_path / "tex.png")
    (tmp_path / "quad.mtl").write_text("newmtl paint\nKd 1.0 0.5 0.25\nNs 100\nmap_Kd tex.png\n")
    # OBJ's vt has v = 0 at the image's bottom: the top-left corner is vt (0, 1)
    (tmp_path / "quad.obj").write_text(
        "mtllib quad.mtl\no quad\nv 0 1 0\nv 1 1 0\nv 1 0 0\nv 0 0 0\n"
        "vt 0 1\nvt 1 1\nvt 1 0\nvt 0 0\nusemtl paint\nf 1/1 4/4 3/3\nf 1/1 3/3 2/2\n")
    (obj,) = load_scene_file(tmp_path / "quad.obj").objects
    mesh, m = obj.mesh, obj.material
    top_left = int(np.flatnonzero(np.all(np.isclose(mesh.positions, [0, 1, 0]), axis=1))[0])
    np.testing.assert_allclose(mesh.uvs[top_left], (0, 0))
    assert _sample(m.base_color_texture, mesh.uvs[top_left]) == RED
    np.testing.assert_allclose(m.base_color[:3], _srgb_to_linear([1.0, 0.5, 0.25]), atol=0.005)
    assert m.base_color[3] == 1.0
    assert m.roughness == pytest.approx((2 / 102) ** 0.25) and m.metallic == 0.0


def test_obj_exported_by_trimesh(tmp_path):
    mesh, box = _box_trimesh(SimpleMaterial(image=_image(), diffuse=[200, 100, 50, 255]))
    (tmp_path / "obj").mkdir()
    mesh.export(tmp_path / "obj" / "box.obj")
    assert {p.suffix for p in (tmp_path / "obj").iterdir()} == {".obj", ".mtl", ".png"}

    (obj,) = load_scene_file(tmp_path / "obj" / "box.obj").objects
    assert obj.mesh.triangle_count == 12
    assert _rows(obj.mesh.positions, obj.mesh.uvs) == _rows(box.positions, box.uvs)
    tex = obj.material.base_color_texture
    assert tuple(tex[0, 0]) == RED
    np.testing.assert_allclose(obj.material.base_color[:3],
                               _srgb_to_linear(np.array([200, 100, 50]) / 255), atol=1e-6)


# --------------------------------------------------------------------------- config

def test_config_camera_path_and_animation(tmp_path):
    _export_glb(tmp_path)
    keys = [{"t": 0, "eye": [0, 2, 10], "target": [0, 0, 0]},
            {"t": 2, "eye": [8, 3, 6], "target": [1, 0, 0]},
            {"t": 5, "eye": [0, 4, -10], "target": [0, 1, 0]}]
    config = {"camera": {"fov_y_deg": 50, "near": 0.05, "far": 80, "path": keys},
              "animation": [{"object": "spinner", "rotate": {"axis": [0, 1, 0], "deg_per_s": 90}},
                            {"object": 0, "oscillate": {"axis": [0, 2, 0], "amplitude": 0.5,
                                                        "period_s": 2.0}}],
              "lights": "default"}
    (tmp_path / "box.json").write_text(json.dumps(config))
    scene = load_scene_file(tmp_path / "box.glb")

    cam = scene.camera
    assert (cam.fov_y_deg, cam.near, cam.far) == (50, 0.05, 80)
    assert scene.duration_s == 5.0
    for k in keys:
        eye, target = cam.eye_target(k["t"])
        np.testing.assert_allclose(eye, k["eye"], atol=1e-12)
        np.testing.assert_allclose(target, k["target"], atol=1e-12)
        np.testing.assert_allclose(cam.view(k["t"]), look_at(k["eye"], k["target"]), atol=1e-12)
    # defined (held) before the first key and after the last, continuous everywhere
    np.testing.assert_allclose(cam.eye_target(-1 / 60)[0], keys[0]["eye"])
    np.testing.assert_allclose(cam.eye_target(7.0)[0], keys[-1]["eye"])
    ts = np.linspace(-0.5, 5.5, 6001)
    eyes = np.array([cam.eye_target(t)[0] for t in ts])
    assert np.abs(np.diff(eyes, axis=0)).max() < 0.02
    assert not np.allclose(cam.eye_target(1.0)[0], keys[0]["eye"])

    bobber, spinner = scene.objects
    assert (bobber.name, spinner.name) == ("bobber", "spinner")  # sorted by name
    assert spinner.animated and bobber.animated
    assert spinner.mesh is bobber.mesh  # instances of one mesh share it
    np.testing.assert_allclose(spinner.transform(0.0), translate(3, 0, 0), atol=1e-12)
    # a quarter turn about +y after 1 s, about the box's own centre (3, 0, 0)
    m = spinner.transform(1.0)
    np.testing.assert_allclose(m @ [0, 0, 0, 1], [3, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(m @ [0.5, 0, 0, 1], [3, 0, -0.5, 1], atol=1e-12)
    # oscillation: peak amplitude along the unit axis a quarter period in
    np.testing.assert_allclose(bobber.transform(0.5), translate(0, 0.5, 0), atol=1e-12)
    np.testing.assert_allclose(bobber.transform(1.0), np.eye(4), atol=1e-12)


def test_json_config_names_the_mesh(tmp_path):
    (tmp_path / "assets").mkdir()
    _export_glb(tmp_path / "assets")
    (tmp_path / "walk.json").write_text(json.dumps({
        "mesh": "assets/box.glb", "duration_s": 3,
        "animation": [{"object": "box", "translate": {"velocity": [1, 0, 0]}}]}))
    scene = load_scene_file(str(tmp_path / "walk.json"))
    assert scene.name == "walk" and scene.duration_s == 3.0
    # a mesh name moves every instance of that mesh
    for obj, x in zip(scene.objects, (0, 3)):  # bobber, spinner
        assert obj.animated
        np.testing.assert_allclose(obj.transform(2.0), translate(x + 2, 0, 0), atol=1e-12)


def test_default_orbit_without_config(tmp_path):
    _export_glb(tmp_path)
    scene = load_scene_file(tmp_path / "box.glb")
    lo, hi = scene.bounds(0.0)
    centre, extent = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    eyes = []
    for t in (-1 / 60, 0.0, 7.3, 20.0, 39.9):
        eye, target = scene.camera.eye_target(t)
        np.testing.assert_allclose(target, centre)
        assert np.linalg.norm(eye - centre) == pytest.approx(np.hypot(1.6, 0.25) * extent)
        assert eye[1] == pytest.approx(centre[1] + 0.25 * extent)
        eyes.append(eye)
    assert np.linalg.norm(eyes[2] - eyes[1]) > 0.5 * extent  # it moves
    np.testing.assert_allclose(scene.camera.eye_target(40.0)[0], eyes[1], atol=1e-9)  # 40 s loop
    cam = scene.camera
    assert cam.fov_y_deg == 60.0
    assert cam.near == pytest.approx(max(0.01, 0.01 * extent))
    assert cam.far == pytest.approx(20 * extent)
    assert scene.duration_s == 10.0 and len(scene.point_lights) == 3
    assert not any(o.animated for o in scene.objects)


# --------------------------------------------------------------------------- errors

def _glb_with_config(config) -> Callable[[Path], tuple[Path, str]]:
    def make(tmp_path: Path) -> tuple[Path, str]:
        _export_glb(tmp_path)
        (tmp_path / "box.json").write_text(config if isinstance(config, str) else json.dumps(config))
        return tmp_path / "box.glb", "box.json"
    return make


def _file(name: str, data: bytes) -> Callable[[Path], tuple[Path, str]]:
    def make(tmp_path: Path) -> tuple[Path, str]:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name, name
    return make


def _config_only(config: dict) -> Callable[[Path], tuple[Path, str]]:
    def make(tmp_path: Path) -> tuple[Path, str]:
        _export_glb(tmp_path)
        (tmp_path / "cfg.json").write_text(json.dumps(config))
        return tmp_path / "cfg.json", "cfg.json"
    return make


def _gltf_without(name: str) -> Callable[[Path], tuple[Path, str]]:
    def make(tmp_path: Path) -> tuple[Path, str]:
        path = _write_gltf(tmp_path)
        (tmp_path / name).unlink()
        return path, "quad.gltf"
    return make


ERROR_CASES = {
    "missing file": (lambda tmp_path: (tmp_path / "nope.glb", "nope.glb"), "not found"),
    "unsupported extension": (_file("model.stl", b"solid x\nendsolid x\n"), "unsupported extension"),
    "garbage glb": (_file("bad.glb", b"glTF" + struct.pack("<II", 2, 99) + b"\x00" * 7), "cannot parse"),
    "malformed gltf": (_file("bad.gltf", b"{not json"), "malformed JSON"),
    "gltf missing its .bin": (_gltf_without("quad.bin"), "cannot parse"),
    "obj without faces": (_file("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"), "no triangles"),
    "malformed json": (_glb_with_config('{"camera": {'), "malformed JSON"),
    "json not an object": (_glb_with_config("[1, 2]"), "must be a JSON object"),
    "wrong type": (_glb_with_config({"camera": {"fov_y_deg": "wide"}}), "camera.fov_y_deg"),
    "bad vector": (_glb_with_config({"camera": {"path": [{"t": 0, "eye": [1, 2], "target": [0, 0, 0]}]}}),
                   "camera.path[0].eye"),
    "unsorted keys": (_glb_with_config({"camera": {"path": [
        {"t": 1, "eye": [1, 2, 3], "target": [0, 0, 0]},
        {"t": 1, "eye": [1, 2, 4], "target": [0, 0, 0]}]}}), "camera.path[1].t"),
    "unknown key": (_glb_with_config({"camra": {}}), "unknown key 'camra'"),
    "unknown object": (_glb_with_config({"animation": [
        {"object": "door", "rotate": {"deg_per_s": 10}}]}), "no object named 'door'"),
    "object index out of range": (_glb_with_config({"animation": [
        {"object": 5, "translate": {"velocity": [1, 0, 0]}}]}), "index 5 out of range"),
    "lights": (_glb_with_config({"lights": "studio"}), 'lights must be "default"'),
    "motion without a motion": (_glb_with_config({"animation": [{"object": 0}]}), "needs at least one"),
    "zero axis": (_glb_with_config({"animation": [
        {"object": 0, "oscillate": {"axis": [0, 0, 0], "amplitude": 1, "period_s": 1}}]}),
        "animation[0].oscillate.axis must not be the zero vector"),
    "config names another mesh": (_glb_with_config({"mesh": "other.glb"}), "other.glb"),
    "config without mesh": (_config_only({"duration_s": 2}), 'no "mesh" key'),
    "config names a missing mesh": (_config_only({"mesh": "gone.obj"}), "gone.obj"),
}


@pytest.mark.parametrize("case", ERROR_CASES, ids=list(ERROR_CASES))
def test_errors_name_the_file_in_one_line(tmp_path, case):
    make, problem = ERROR_CASES[case]
    path, file_name = make(tmp_path)
    with pytest.raises(SceneFileError) as info:
        load_scene_file(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert file_name in message and problem in message and "\n" not in message, message
    # no chained traceback from trimesh / json / PIL behind it
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__

