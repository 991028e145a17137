"""User scenes from files: a glTF 2.0 or OBJ mesh, with an optional JSON scene config.

Accepted paths
--------------
- ``model.glb`` / ``model.gltf`` (with its ``.bin`` and texture files) or ``model.obj``
  (with its ``.mtl`` and textures). A ``model.json`` beside it, if present, is its config.
- ``scene.json``: a config whose ``"mesh"`` key names the mesh file, relative to the
  config's folder.

What is loaded
--------------
Every triangle mesh instance in the file's scene graph becomes one
:class:`~demo_renderer.scene.SceneObject` named after its scene-graph node, with the node's
world transform as its (static) model matrix; instances of one mesh share one
:class:`~demo_renderer.scene.Mesh`. Objects are sorted by name (trimesh does not keep the
file's node order); object id = index + 1.

- Geometry: positions, vertex normals (from the file, else computed), the first UV set
  (zeros when absent) in the glTF convention: uv (0, 0) is the texture's top-left texel.
- glTF materials (metallic-roughness): ``baseColorFactor`` (linear), ``baseColorTexture``
  (kept sRGB-encoded), ``roughnessFactor``, ``metallicFactor`` (glTF's defaults of 1.0
  when only one is given; a ``metallicRoughnessTexture`` scales them by its mean green /
  blue channel; roughness 0.6 and metallic 0.0 when the material gives none of these),
  ``alphaMode`` ``MASK`` (cut-out at ``alphaCutoff``, default 0.5) and ``BLEND`` (no
  blending here: cut-out at 0.5), ``doubleSided``. Normal, occlusion and emissive maps,
  texture transforms and vertex colours are ignored. A texture file that is missing or
  undecodable is dropped by trimesh without an error: the material keeps its factors.
- OBJ materials: ``Kd`` (sRGB, converted to linear), ``map_Kd``, and roughness from the
  specular exponent ``Ns`` as ``(2 / (Ns + 2)) ** 0.25`` (0.6 without ``Ns``); metallic 0.

Config (JSON; every key optional, unknown keys are an error)
------------------------------------------------------------
::

    {"mesh": "house.glb",
     "camera": {"fov_y_deg": 60, "near": 0.1, "far": 200,
                "path": [{"t": 0, "eye": [0, 2, 8], "target": [0, 1, 0]},
                         {"t": 5, "eye": [6, 3, 4], "target": [0, 1, 0]}]},
     "animation": [{"object": "door",
                    "rotate": {"axis": [0, 1, 0], "deg_per_s": 90, "pivot": [1, 0, 2]},
                    "translate": {"velocity": [0.5, 0, 0]},
                    "oscillate": {"axis": [0, 1, 0], "amplitude": 0.2, "period_s": 2.0}}],
     "duration_s": 10,
     "lights": "default"}

- ``mesh``: the mesh file, relative to the config's folder. Required when the config is
  the path given; when the config sits beside a mesh it may only name that mesh.
- ``camera.path``: keyframes with strictly increasing ``t`` (seconds); the eye and the
  target each follow a Catmull-Rom spline through the keys, easing in and out at the
  first and last keys and holding still before the first and after the last (so
  ``t < 0`` is defined). One key gives a fixed camera. Without a path the camera orbits
  the scene (below).
- ``camera.fov_y_deg`` (default 60), ``near`` and ``far`` (default from the scene's size).
- ``animation``: motions for objects. ``object`` is a node name (or a mesh name, which
  moves every instance of that mesh) or a 0-based index into the objects (sorted by
  name). Each entry may combine ``rotate`` (``deg_per_s`` about ``axis``, default +y,
  through ``pivot``, a world-space point, default the object's bounding-box centre at t = 0),
  ``translate`` (constant ``velocity``, units/s) and ``oscillate`` (``amplitude`` *
  sin(2 pi t / ``period_s``) along the unit ``axis``). All are in world space and act
  after the node transform: model(t) = T(velocity t + oscillation(t)) @ R_pivot(t) @ node,
  so an object spins about its own pivot as it moves. Several entries for one object
  compose in order. At t = 0 every motion is the identity.
- ``duration_s``: length of the sequence (default: the last camera key's time if it is
  positive, else 10 s).
- ``lights``: only ``"default"`` (the shared rig of
  :func:`~demo_renderer.scenes.lighting.default_lighting` around the scene's bounds).

Default camera
--------------
With extent = half the bounding-box diagonal: it looks at the bounds' centre from
``1.6 * extent`` away at ``0.25 * extent`` above the centre, starting on the +z side and
orbiting counter-clockwise seen from above once per 40 s; fov 60 degrees,
near = max(0.01, 0.01 * extent), far = 20 * extent (grown to cover a long camera path).

Every problem with the files raises :class:`SceneFileError`, whose one-line message names
the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import trimesh
from trimesh.visual.material import PBRMaterial, SimpleMaterial

from ..scene import Camera, Material, Mesh, Scene, SceneObject, Transform, rotate, static, translate
from .lighting import default_lighting

MESH_SUFFIXES = (".glb", ".gltf", ".obj")
ORBIT_PERIOD_S = 40.0
DEFAULT_DURATION_S = 10.0
DEFAULT_ROUGHNESS = 0.6
DEFAULT_METALLIC = 0.0


class SceneFileError(ValueError):
    """A scene file is missing, unreadable or invalid; the message is one line naming it."""


def _error(path: str | os.PathLike, problem: str) -> SceneFileError:
    return SceneFileError(f"scene file '{path}': {' '.join(str(problem).split())}")


class _Invalid(Exception):
    """A config problem (its message names the key); reported as a SceneFileError."""


# --------------------------------------------------------------------------- public API

def load_scene_file(path: str | os.PathLike) -> Scene:
    """The scene in a ``.glb``/``.gltf``/``.obj`` mesh file or a ``.json`` config.

    See the module docstring for what is read and for the config format.
    Raises :class:`SceneFileError` for every problem with the files.
    """
    path = Path(path)
    if not path.exists():
        raise _error(path, "file not found")
    if not path.is_file():
        raise _error(path, "not a file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        config_path: Path | None = path
    elif suffix in MESH_SUFFIXES:
        beside = path.with_suffix(".json")
        config_path = beside if beside.is_file() else None
    else:
        raise _error(path, f"unsupported extension {path.suffix!r} "
                           "(expected .glb, .gltf, .obj or .json)")

    config = _Config()
    if config_path is not None:
        try:
            config = _parse_config(_read_json(config_path))
        except _Invalid as exc:
            raise _error(config_path, str(exc)) from None
    mesh_path = _mesh_path(path, config_path, config)

    objects, mesh_names = _load_objects(mesh_path)
    lo, hi = _bounds(objects)
    if config.animation:
        try:
            _animate(objects, mesh_names, config.animation)
        except _Invalid as exc:
            raise _error(config_path, str(exc)) from None

    sun, point_lights, sky = default_lighting(lo, hi)
    return Scene(
        name=path.stem,
        description=f"scene file {path}",
        objects=objects,
        camera=_camera(config.camera, lo, hi),
        sun=sun,
        point_lights=point_lights,
        sky=sky,
        duration_s=_duration(config),
        stresses=("user scene",),
    )


# --------------------------------------------------------------------------- config

@dataclass(frozen=True)
class _Key:
    t: float
    eye: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class _CameraConfig:
    fov_y_deg: float = 60.0
    near: float | None = None
    far: float | None = None
    path: tuple[_Key, ...] = ()


@dataclass(frozen=True)
class _Motion:
    object: str | int
    where: str  # the entry's key path, for messages
    rotate_axis: np.ndarray | None = None
    rotate_deg_per_s: float = 0.0
    rotate_pivot: np.ndarray | None = None
    velocity: np.ndarray | None = None
    oscillate_axis: np.ndarray | None = None  # unit
    oscillate_amplitude: float = 0.0
    oscillate_period_s: float = 1.0


@dataclass(frozen=True)
class _Config:
    mesh: str | None = None
    camera: _CameraConfig = _CameraConfig()
    animation: tuple[_Motion, ...] = ()
    duration_s: float | None = None


def _read_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(path, f"cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(path, f"malformed JSON: {exc}") from None


def _parse_config(raw: object) -> _Config:
    top = _mapping(raw, "the config", {"mesh", "camera", "animation", "duration_s", "lights"})
    mesh = top.get("mesh")
    if mesh is not None and (not isinstance(mesh, str) or not mesh):
        raise _Invalid("mesh must be a non-empty string (the mesh file name)")
    lights = top.get("lights", "default")
    if lights != "default":
        raise _Invalid(f'lights must be "default", got {lights!r}')
    duration = top.get("duration_s")
    camera = _parse_camera(top["camera"]) if "camera" in top else _CameraConfig()
    anims = _array(top.get("animation", []), "animation")
    return _Config(
        mesh=mesh,
        camera=camera,
        animation=tuple(_parse_motion(a, f"animation[{i}]") for i, a in enumerate(anims)),
        duration_s=None if duration is None else _number(duration, "duration_s", positive=True),
    )


def _parse_camera(raw: object) -> _CameraConfig:
    cam = _mapping(raw, "camera", {"fov_y_deg", "near", "far", "path"})
    fov = _number(cam.get("fov_y_deg", 60.0), "camera.fov_y_deg", positive=True)
    if fov >= 180.0:
        raise _Invalid(f"camera.fov_y_deg must be below 180, got {fov}")
    near = None if "near" not in cam else _number(cam["near"], "camera.near", positive=True)
    far = None if "far" not in cam else _number(cam["far"], "camera.far", positive=True)
    if near is not None and far is not None and far <= near:
        raise _Invalid(f"camera.far ({far}) must exceed camera.near ({near})")
    keys = []
    for i, k in enumerate(_array(cam.get("path", []), "camera.path")):
        where = f"camera.path[{i}]"
        key = _mapping(k, where, {"t", "eye", "target"}, required=("t", "eye", "target"))
        eye, target = _vec3(key["eye"], f"{where}.eye"), _vec3(key["target"], f"{where}.target")
        if np.allclose(eye, target):
            raise _Invalid(f"{where}: eye and target must differ")
        keys.append(_Key(_number(key["t"], f"{where}.t"), eye, target))
    for i in range(1, len(keys)):
        if keys[i].t <= keys[i - 1].t:
            raise _Invalid(f"camera.path[{i}].t must be greater than the previous key's t")
    return _CameraConfig(fov, near, far, tuple(keys))


def _parse_motion(raw: object, where: str) -> _Motion:
    entry = _mapping(raw, where, {"object", "rotate", "translate", "oscillate"}, required=("object",))
    obj = entry["object"]
    if isinstance(obj, bool) or not isinstance(obj, (str, int)):
        raise _Invalid(f"{where}.object must be an object name or index, got {_json_type(obj)}")
    if not {"rotate", "translate", "oscillate"} & entry.keys():
        raise _Invalid(f'{where} needs at least one of "rotate", "translate", "oscillate"')
    fields: dict = {}
    if "rotate" in entry:
        w = f"{where}.rotate"
        rot = _mapping(entry["rotate"], w, {"axis", "deg_per_s", "pivot"}, required=("deg_per_s",))
        fields["rotate_axis"] = _unit(rot.get("axis", [0, 1, 0]), f"{w}.axis")
        fields["rotate_deg_per_s"] = _number(rot["deg_per_s"], f"{w}.deg_per_s")
        if "pivot" in rot:
            fields["rotate_pivot"] = _vec3(rot["pivot"], f"{w}.pivot")
    if "translate" in entry:
        w = f"{where}.translate"
        tr = _mapping(entry["translate"], w, {"velocity"}, required=("velocity",))
        fields["velocity"] = _vec3(tr["velocity"], f"{w}.velocity")
    if "oscillate" in entry:
        w = f"{where}.oscillate"
        osc = _mapping(entry["oscillate"], w, {"axis", "amplitude", "period_s"},
                       required=("axis", "amplitude", "period_s"))
        fields["oscillate_axis"] = _unit(osc["axis"], f"{w}.axis")
        fields["oscillate_amplitude"] = _number(osc["amplitude"], f"{w}.amplitude")
        fields["oscillate_period_s"] = _number(osc["period_s"], f"{w}.period_s", positive=True)
    return _Motion(object=obj, where=where, **fields)


def _mapping(raw: object, where: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(raw, dict):
        raise _Invalid(f"{where} must be a JSON object, got {_json_type(raw)}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _Invalid(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
    for key in required:
        if key not in raw:
            raise _Invalid(f'{where}: missing key "{key}"')
    return raw


def _array(raw: object, where: str) -> list:
    if not isinstance(raw, list):
        raise _Invalid(f"{where} must be a JSON array, got {_json_type(raw)}")
    return raw


def _number(raw: object, where: str, positive: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise _Invalid(f"{where} must be a number, got {_json_type(raw)}")
    if positive and raw <= 0:
        raise _Invalid(f"{where} must be positive, got {raw}")
    return float(raw)


def _vec3(raw: object, where: str) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) != 3:
        raise _Invalid(f"{where} must be an array of 3 numbers, got {_json_type(raw)}")
    return np.array([_number(v, where) for v in raw])


def _unit(raw: object, where: str) -> np.ndarray:
    v = _vec3(raw, where)
    n = float(np.linalg.norm(v))
    if n < 1e-12:
        raise _Invalid(f"{where} must not be the zero vector")
    return v / n


def _json_type(raw: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return f"{names.get(type(raw), type(raw).__name__)} ({json.dumps(raw)[:40]})"


def _mesh_path(path: Path, config_path: Path | None, config: _Config) -> Path:
    """The mesh file: ``path`` itself, or the one the config at ``path`` names."""
    if config_path != path:  # a mesh file, maybe with a config beside it
        if config.mesh is not None and config_path is not None:
            named = config_path.parent / config.mesh
            if not (named.is_file() and named.samefile(path)):
                raise _error(config_path, f"mesh names {config.mesh!r}, but the config "
                                          f"sits beside {path.name!r}: name that file or remove the key")
        return path
    if config.mesh is None:
        raise _error(path, 'no "mesh" key naming the mesh file')
    mesh = path.parent / config.mesh
    if mesh.suffix.lower() not in MESH_SUFFIXES:
        raise _error(path, f"mesh {config.mesh!r}: unsupported extension "
                           "(expected .glb, .gltf or .obj)")
    if not mesh.is_file():
        raise _error(path, f"mesh {config.mesh!r}: file not found ({mesh})")
    return mesh


def _duration(config: _Config) -> float:
    if config.duration_s is not None:
        return config.duration_s
    path = config.camera.path
    if path and path[-1].t > 0:
        return path[-1].t
    return DEFAULT_DURATION_S


# --------------------------------------------------------------------------- meshes

def _load_objects(mesh_path: Path) -> tuple[list[SceneObject], list[str]]:
    """One SceneObject per triangle-mesh instance in the file's scene graph, and the name
    of each one's mesh."""
    if mesh_path.suffix.lower() == ".gltf":
        _read_json(mesh_path)  # trimesh reports bad JSON as a missing "model.gltf"
    try:
        # process=False: keep the file's vertices (order, UV seams, normals) untouched
        tm = trimesh.load(str(mesh_path), force="scene", process=False)
    except Exception as exc:  # trimesh raises anything from KeyError to struct.error
        raise _error(mesh_path, f"cannot parse: {type(exc).__name__}: {exc}") from None

    meshes: dict[str, Mesh] = {}
    materials: dict[int, Material] = {}
    textures: dict[int, np.ndarray] = {}
    objects, mesh_names = [], []
    for node in sorted(tm.graph.nodes_geometry, key=str):
        matrix, geom_name = tm.graph[node]
        geom = tm.geometry.get(geom_name)
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue  # point clouds, paths, empty meshes
        if geom_name not in meshes:
            meshes[geom_name] = _mesh(geom)
        mesh = meshes[geom_name]
        if np.linalg.det(matrix[:3, :3]) < 0:  # mirrored instance: keep faces front-facing
            mesh = Mesh(mesh.positions, mesh.normals, mesh.uvs, mesh.indices[:, ::-1])
        material = getattr(geom.visual, "material", None)
        if id(material) not in materials:
            try:
                materials[id(material)] = _material(material, textures)
            except (OSError, ValueError) as exc:  # PIL cannot decode a texture
                raise _error(mesh_path, f"cannot read a texture of {geom_name!r}: {exc}") from None
        objects.append(SceneObject(str(node), mesh, materials[id(material)],
                                   transform=static(np.array(matrix, dtype=np.float64))))
        mesh_names.append(str(geom_name))
    if not objects:
        raise _error(mesh_path, "no triangles")
    return objects, mesh_names


def _mesh(geom: trimesh.Trimesh) -> Mesh:
    n = len(geom.vertices)
    normals = np.asarray(geom.vertex_normals, dtype=np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 1.0, 0.0])
    uv = getattr(geom.visual, "uv", None)
    if uv is None or len(uv) != n:
        uvs = np.zeros((n, 2))
    else:
        # trimesh stores UVs with v = 0 at the image's bottom (it flips glTF's v on load
        # and keeps OBJ's as written); flip back to glTF's v = 0 at the top.
        uvs = np.nan_to_num(np.array(uv[:, :2], dtype=np.float64))
        uvs[:, 1] = 1.0 - uvs[:, 1]
    return Mesh(geom.vertices, normals, uvs, geom.faces)


def _material(mat: object, textures: dict[int, np.ndarray]) -> Material:
    """Our Material for a trimesh material (the default one for anything else)."""
    if isinstance(mat, PBRMaterial):
        return _pbr_material(mat, textures)
    if isinstance(mat, SimpleMaterial):
        return _simple_material(mat, textures)
    return Material()


def _pbr_material(mat: PBRMaterial, textures: dict[int, np.ndarray]) -> Material:
    # trimesh keeps baseColorFactor as uint8 RGBA: the linear factor quantised to 1/255
    factor = mat.baseColorFactor
    base = (1.0, 1.0, 1.0, 1.0) if factor is None else tuple(float(c) / 255.0 for c in factor)
    rough, metal, mr_tex = mat.roughnessFactor, mat.metallicFactor, mat.metallicRoughnessTexture
    if rough is None and metal is None and mr_tex is None:
        roughness, metallic = DEFAULT_ROUGHNESS, DEFAULT_METALLIC
    else:
        roughness = 1.0 if rough is None else float(rough)
        metallic = 1.0 if metal is None else float(metal)
        if mr_tex is not None:  # green = roughness, blue = metallic (linear data)
            gb = np.asarray(mr_tex.convert("RGB"), dtype=np.float64)[..., 1:] / 255.0
            roughness *= float(gb[..., 0].mean())
            metallic *= float(gb[..., 1].mean())
    cutoff = None
    if mat.alphaMode == "MASK":
        cutoff = 0.5 if mat.alphaCutoff is None else float(mat.alphaCutoff)
    elif mat.alphaMode == "BLEND":
        cutoff = 0.5
    return Material(
        base_color=base,
        base_color_texture=_texture(mat.baseColorTexture, textures),
        roughness=float(np.clip(roughness, 0.0, 1.0)),
        metallic=float(np.clip(metallic, 0.0, 1.0)),
        alpha_cutoff=cutoff,
        double_sided=bool(mat.doubleSided),
    )


def _simple_material(mat: SimpleMaterial, textures: dict[int, np.ndarray]) -> Material:
    rgba = np.asarray(mat.diffuse, dtype=np.float64).reshape(-1)[:4] / 255.0
    base = (*(float(c) for c in _srgb_to_linear(rgba[:3])), float(rgba[3]))
    # trimesh's `glossiness` reads 1.0 when the MTL has no Ns; the raw value sits in kwargs
    ns = mat.kwargs.get("ns")
    roughness = DEFAULT_ROUGHNESS
    if isinstance(ns, (int, float)):
        roughness = float(np.clip((2.0 / (max(float(ns), 0.0) + 2.0)) ** 0.25, 0.0, 1.0))
    return Material(base_color=base, base_color_texture=_texture(mat.image, textures),
                    roughness=roughness, metallic=0.0)


def _texture(image: PIL.Image.Image | None, textures: dict[int, np.ndarray]) -> np.ndarray | None:
    """(h, w, 4) uint8 RGBA rows top-first, as stored; one array per image (shared)."""
    if image is None:
        return None
    if id(image) not in textures:
        textures[id(image)] = np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8))
    return textures[id(image)]


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _bounds(objects: list[SceneObject]) -> tuple[np.ndarray, np.ndarray]:
    """World-space bounding box of the objects at t = 0."""
    corners = np.concatenate([_corners(o) for o in objects])
    return corners.min(axis=0), corners.max(axis=0)


def _corners(obj: SceneObject) -> np.ndarray:
    lo, hi = obj.mesh.bounds()
    box = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                    for z in (lo[2], hi[2])])
    return (box @ np.asarray(obj.transform(0.0)).T)[:, :3]


# --------------------------------------------------------------------------- animation

def _animate(objects: list[SceneObject], mesh_names: list[str],
             motions: tuple[_Motion, ...]) -> None:
    """Compose each motion onto the objects it names (in place)."""
    for motion in motions:
        for obj in _select(objects, mesh_names, motion):
            pivot = motion.rotate_pivot
            if pivot is None:
                corners = _corners(obj)
                pivot = (corners.min(axis=0) + corners.max(axis=0)) / 2
            obj.transform = _moving(obj.transform, motion, pivot)
            obj.animated = True


def _select(objects: list[SceneObject], mesh_names: list[str],
            motion: _Motion) -> list[SceneObject]:
    """The objects a motion names: by index, by node name, else by mesh name."""
    key = motion.object
    if isinstance(key, int):
        if not 0 <= key < len(objects):
            raise _Invalid(f"{motion.where}.object: index {key} out of range "
                           f"(the scene has {len(objects)} objects)")
        return [objects[key]]
    chosen = [o for o in objects if o.name == key]
    if not chosen:  # a mesh name: every instance of that mesh
        chosen = [o for o, mesh in zip(objects, mesh_names) if mesh == key]
    if not chosen:
        names = ", ".join(repr(o.name) for o in objects[:8]) + (", ..." if len(objects) > 8 else "")
        raise _Invalid(f"{motion.where}.object: no object named {key!r} (objects: {names})")
    return chosen


def _moving(base: Transform, motion: _Motion, pivot: np.ndarray) -> Transform:
    """``base`` followed by ``motion`` in world space (see the module docstring)."""
    to_pivot, from_pivot = translate(*pivot), translate(*-pivot)

    def transform(t: float) -> np.ndarray:
        m = np.asarray(base(t), dtype=np.float64)
        if motion.rotate_axis is not None:
            spin = rotate(motion.rotate_axis, math.radians(motion.rotate_deg_per_s * t))
            m = to_pivot @ spin @ from_pivot @ m
        offset = np.zeros(3)
        if motion.velocity is not None:
            offset += motion.velocity * t
        if motion.oscillate_axis is not None:
            phase = 2.0 * math.pi * t / motion.oscillate_period_s
            offset += motion.oscillate_axis * motion.oscillate_amplitude * math.sin(phase)
        return translate(*offset) @ m

    return transform


# --------------------------------------------------------------------------- camera

def _camera(cfg: _CameraConfig, lo: np.ndarray, hi: np.ndarray) -> Camera:
    centre = (lo + hi) / 2
    extent = max(float(np.linalg.norm(hi - lo)) / 2, 1e-3)
    far = 20.0 * extent
    if cfg.path:
        eye_target = _keyframed(cfg.path)
        reach = max(float(np.linalg.norm(k.eye - centre)) for k in cfg.path) + extent
        far = max(far, 1.5 * reach)
    else:
        eye_target = _orbit(centre, extent)
    return Camera(eye_target, fov_y_deg=cfg.fov_y_deg,
                  near=cfg.near if cfg.near is not None else max(0.01, 0.01 * extent),
                  far=cfg.far if cfg.far is not None else far)


def _orbit(centre: np.ndarray, extent: float) -> Callable[[float], tuple[np.ndarray, np.ndarray]]:
    radius, height = 1.6 * extent, 0.25 * extent

    def eye_target(t: float) -> tuple[np.ndarray, np.ndarray]:
        a = 2.0 * math.pi * t / ORBIT_PERIOD_S
        eye = centre + np.array([radius * math.sin(a), height, radius * math.cos(a)])
        return eye, centre.copy()

    return eye_target


def _keyframed(keys: tuple[_Key, ...]) -> Callable[[float], tuple[np.ndarray, np.ndarray]]:
    times = np.array([k.t for k in keys])
    eye = _spline(times, np.array([k.eye for k in keys]))
    target = _spline(times, np.array([k.target for k in keys]))
    return lambda t: (eye(t), target(t))


def _spline(times: np.ndarray, points: np.ndarray) -> Callable[[float], np.ndarray]:
    """Catmull-Rom through ``points`` at ``times`` (non-uniform), zero velocity at the end
    keys, constant before the first and after the last: continuous in value and velocity."""
    tangents = np.zeros_like(points)
    tangents[1:-1] = (points[2:] - points[:-2]) / (times[2:] - times[:-2])[:, None]

    def at(t: float) -> np.ndarray:
        if t <= times[0]:
            return points[0].copy()
        if t >= times[-1]:
            return points[-1].copy()
        i = int(np.searchsorted(times, t, side="right")) - 1
        h = times[i + 1] - times[i]
        s = (t - times[i]) / h
        s2, s3 = s * s, s * s * s
        return ((2 * s3 - 3 * s2 + 1) * points[i] + (s3 - 2 * s2 + s) * h * tangents[i]
                + (-2 * s3 + 3 * s2) * points[i + 1] + (s3 - s2) * h * tangents[i + 1])

    return at
