"""What a scene is: meshes, materials, animated objects, lights, and a scripted camera.

Everything animated is a pure function of time (seconds), so any frame, and the frame
before it (for motion vectors), can be rendered on its own: resuming a sequence needs no
state. Object ids are the 1-based index in ``Scene.objects``; 0 is the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Transform = Callable[[float], np.ndarray]  # time (s) -> 4x4 model matrix (column vectors)


@dataclass
class Mesh:
    """An indexed triangle mesh in object space."""

    positions: np.ndarray  # (n, 3) float32
    normals: np.ndarray  # (n, 3) float32, unit
    uvs: np.ndarray  # (n, 2) float32
    indices: np.ndarray  # (m, 3) uint32

    def __post_init__(self):
        self.positions = np.ascontiguousarray(self.positions, dtype=np.float32)
        self.normals = np.ascontiguousarray(self.normals, dtype=np.float32)
        self.uvs = np.ascontiguousarray(self.uvs, dtype=np.float32)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.uint32).reshape(-1, 3)
        n = len(self.positions)
        if self.normals.shape != (n, 3) or self.uvs.shape != (n, 2):
            raise ValueError(
                f"Mesh: normals {self.normals.shape} and uvs {self.uvs.shape} must match "
                f"positions ({n}, 3)")
        if self.indices.size and int(self.indices.max()) >= n:
            raise ValueError(f"Mesh: index {int(self.indices.max())} out of range for {n} vertices")

    @property
    def triangle_count(self) -> int:
        return len(self.indices)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.positions.min(axis=0), self.positions.max(axis=0)


@dataclass
class Material:
    """A metallic-roughness material (the glTF model)."""

    base_color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)  # linear RGBA
    base_color_texture: np.ndarray | None = None  # (h, w, 4) uint8, sRGB-encoded RGBA
    roughness: float = 0.6
    metallic: float = 0.0
    alpha_cutoff: float | None = None  # alpha-tested (cut-out) when set
    uv_scale: tuple[float, float] = (1.0, 1.0)
    double_sided: bool = False


def static(matrix: np.ndarray | None = None) -> Transform:
    m = np.eye(4) if matrix is None else np.asarray(matrix, dtype=np.float64)
    return lambda t: m


@dataclass
class SceneObject:
    name: str
    mesh: Mesh
    material: Material
    transform: Transform = field(default_factory=static)
    animated: bool = False  # True when transform(t) changes with t
    casts_shadow: bool = True


@dataclass
class PointLight:
    position: tuple[float, float, float]  # world space
    color: tuple[float, float, float]  # linear RGB
    intensity: float  # radiant intensity scale (W/sr-like, arbitrary units)
    radius: float = 20.0  # influence radius (smooth cut-off)


@dataclass
class Sun:
    direction: tuple[float, float, float]  # world-space direction *towards* the sun
    color: tuple[float, float, float] = (1.0, 0.95, 0.85)
    intensity: float = 3.0


@dataclass
class Sky:
    zenith: tuple[float, float, float] = (0.25, 0.45, 0.9)
    horizon: tuple[float, float, float] = (0.75, 0.8, 0.9)
    ground: tuple[float, float, float] = (0.25, 0.22, 0.2)


@dataclass
class Camera:
    """A scripted camera: ``eye_target(t)`` gives eye and look-at target in world space."""

    eye_target: Callable[[float], tuple[np.ndarray, np.ndarray]]
    fov_y_deg: float = 60.0
    near: float = 0.1
    far: float = 200.0
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def view(self, t: float) -> np.ndarray:
        eye, target = self.eye_target(t)
        return look_at(eye, target, self.up)


@dataclass
class Scene:
    name: str
    description: str
    objects: list[SceneObject]
    camera: Camera
    sun: Sun = field(default_factory=lambda: Sun(direction=(0.4, 0.8, 0.3)))
    point_lights: list[PointLight] = field(default_factory=list)
    sky: Sky = field(default_factory=Sky)
    duration_s: float = 10.0  # length of the scripted path (it may loop or go on)
    stresses: tuple[str, ...] = ()  # what the scene stresses, for `scenes` listing

    def bounds(self, t: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """World-space bounding box of all objects at time ``t``."""
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for obj in self.objects:
            mlo, mhi = obj.mesh.bounds()
            corners = np.array([[x, y, z, 1.0] for x in (mlo[0], mhi[0])
                                for y in (mlo[1], mhi[1]) for z in (mlo[2], mhi[2])])
            world = corners @ np.asarray(obj.transform(t)).T
            lo = np.minimum(lo, world[:, :3].min(axis=0))
            hi = np.maximum(hi, world[:, :3].max(axis=0))
        return lo, hi

    @property
    def triangle_count(self) -> int:
        return sum(o.mesh.triangle_count for o in self.objects)


# ---------------------------------------------------------------- matrices (float64)

def look_at(eye, target, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """Right-handed view matrix looking from ``eye`` at ``target`` (camera looks down -z)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    f = target - eye
    f /= np.linalg.norm(f)
    s = np.cross(f, up)
    if np.linalg.norm(s) < 1e-9:  # looking straight up/down: pick another up
        s = np.cross(f, np.array([0.0, 0.0, 1.0]))
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL perspective projection (clip z in [-w, w])."""
    f = 1.0 / np.tan(np.radians(fov_y_deg) / 2.0)
    m = np.zeros((4, 4))
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def orthographic(left, right, bottom, top, near, far) -> np.ndarray:
    m = np.eye(4)
    m[0, 0] = 2.0 / (right - left)
    m[1, 1] = 2.0 / (top - bottom)
    m[2, 2] = -2.0 / (far - near)
    m[0, 3] = -(right + left) / (right - left)
    m[1, 3] = -(top + bottom) / (top - bottom)
    m[2, 3] = -(far + near) / (far - near)
    return m


def translate(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def scale(x: float, y: float | None = None, z: float | None = None) -> np.ndarray:
    y = x if y is None else y
    z = x if z is None else z
    return np.diag([x, y, z, 1.0])


def rotate(axis, angle_rad: float) -> np.ndarray:
    """Rotation about ``axis`` (world units vector) by ``angle_rad`` (right-hand rule)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    x, y, z = a
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    C = 1.0 - c
    m = np.eye(4)
    m[:3, :3] = [[c + x * x * C, x * y * C - z * s, x * z * C + y * s],
                 [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
                 [z * x * C - y * s, z * y * C + x * s, c + z * z * C]]
    return m
