"""Procedural meshes for the built-in scenes. All return :class:`~demo_renderer.scene.Mesh`."""

from __future__ import annotations

import numpy as np

from ..scene import Mesh


def plane(width: float, depth: float, uv_repeat: tuple[float, float] = (1.0, 1.0)) -> Mesh:
    """A plane in xz facing +y, centred at the origin."""
    w, d = width / 2, depth / 2
    pos = np.array([[-w, 0, -d], [w, 0, -d], [w, 0, d], [-w, 0, d]], np.float32)
    nrm = np.tile([0, 1, 0], (4, 1))
    uv = np.array([[0, 0], [uv_repeat[0], 0], [uv_repeat[0], uv_repeat[1]], [0, uv_repeat[1]]])
    return Mesh(pos, nrm, uv, np.array([[0, 2, 1], [0, 3, 2]]))


def quad(width: float, height: float) -> Mesh:
    """A vertical quad in xy facing +z, bottom edge at y = 0 (for cards and pictures)."""
    w = width / 2
    pos = np.array([[-w, 0, 0], [w, 0, 0], [w, height, 0], [-w, height, 0]], np.float32)
    nrm = np.tile([0, 0, 1], (4, 1))
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]])  # v = 0 at the top of the image
    return Mesh(pos, nrm, uv, np.array([[0, 1, 2], [0, 2, 3]]))


def box(sx: float, sy: float, sz: float, uv_per_unit: float | None = None) -> Mesh:
    """An axis-aligned box centred at the origin; 24 vertices so faces have flat normals.

    ``uv_per_unit``: texture repeats per scene unit (world-scaled UVs), else 0..1 per face.
    """
    h = np.array([sx, sy, sz]) / 2
    faces = [  # normal, u axis, v axis
        ((1, 0, 0), (0, 0, -1), (0, -1, 0)), ((-1, 0, 0), (0, 0, 1), (0, -1, 0)),
        ((0, 1, 0), (1, 0, 0), (0, 0, 1)), ((0, -1, 0), (1, 0, 0), (0, 0, -1)),
        ((0, 0, 1), (1, 0, 0), (0, -1, 0)), ((0, 0, -1), (-1, 0, 0), (0, -1, 0)),
    ]
    pos, nrm, uv, idx = [], [], [], []
    for n, u, v in faces:
        n, u, v = (np.array(a, np.float64) for a in (n, u, v))
        centre = n * h
        eu, ev = u * h, v * h
        base = len(pos)
        for cu, cv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            pos.append(centre + cu * eu + cv * ev)
            nrm.append(n)
            if uv_per_unit:
                lu, lv = np.abs(eu).sum() * 2, np.abs(ev).sum() * 2
                uv.append(((cu + 1) / 2 * lu * uv_per_unit, (cv + 1) / 2 * lv * uv_per_unit))
            else:
                uv.append(((cu + 1) / 2, (cv + 1) / 2))
        # counter-clockwise seen from outside (n = u x v points... orient by test below)
        tri = [[base, base + 1, base + 2], [base, base + 2, base + 3]]
        a, b, c = (pos[i] for i in tri[0])
        if np.dot(np.cross(b - a, c - a), n) < 0:
            tri = [[t[0], t[2], t[1]] for t in tri]
        idx += tri
    return Mesh(np.array(pos), np.array(nrm), np.array(uv), np.array(idx))


def sphere(radius: float, segments: int = 48, rings: int = 24) -> Mesh:
    """A UV sphere centred at the origin."""
    theta = np.linspace(0, np.pi, rings + 1)
    phi = np.linspace(0, 2 * np.pi, segments + 1)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    n = np.stack([np.sin(th) * np.cos(ph), np.cos(th), -np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
    uv = np.stack([ph / (2 * np.pi), th / np.pi], -1).reshape(-1, 2)
    idx = []
    for r in range(rings):
        for s in range(segments):
            a = r * (segments + 1) + s
            b = a + segments + 1
            idx += [[a, b, a + 1], [a + 1, b, b + 1]]
    return Mesh(n * radius, n, uv, np.array(idx))


def cylinder(radius: float, height: float, segments: int = 16, caps: bool = True) -> Mesh:
    """A cylinder along +y from y = 0 to y = height."""
    ang = np.linspace(0, 2 * np.pi, segments + 1)
    ring = np.stack([np.cos(ang), np.zeros_like(ang), -np.sin(ang)], -1)
    pos = np.concatenate([ring * radius, ring * radius + [0, height, 0]])
    nrm = np.concatenate([ring, ring])
    uv = np.concatenate([np.stack([ang / (2 * np.pi), np.ones_like(ang)], -1),
                         np.stack([ang / (2 * np.pi), np.zeros_like(ang)], -1)])
    k = segments + 1
    idx = [[i, i + 1, k + i + 1] for i in range(segments)] + \
          [[i, k + i + 1, k + i] for i in range(segments)]
    mesh = Mesh(pos, nrm, uv, np.array(idx))
    if caps:
        top = _disc(radius, segments, height, up=True)
        bottom = _disc(radius, segments, 0.0, up=False)
        mesh = merge([(mesh, None), (top, None), (bottom, None)])
    return mesh


def _disc(radius, segments, y, up):
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rim = np.stack([np.cos(ang) * radius, np.full_like(ang, y), -np.sin(ang) * radius], -1)
    pos = np.concatenate([[[0, y, 0]], rim])
    nrm = np.tile([0, 1 if up else -1, 0], (segments + 1, 1))
    uv = np.concatenate([[[0.5, 0.5]], np.stack([np.cos(ang), np.sin(ang)], -1) * 0.5 + 0.5])
    idx = [[0, 1 + i, 1 + (i + 1) % segments] for i in range(segments)]
    if not up:
        idx = [[a, c, b] for a, b, c in idx]
    return Mesh(pos, nrm, uv, np.array(idx))


def segment(p0, p1, radius: float, segments: int = 6) -> Mesh:
    """A thin cylinder from ``p0`` to ``p1`` (wires, rails), without caps."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    d = p1 - p0
    length = float(np.linalg.norm(d))
    y = d / length
    x = np.cross(y, [0, 0, 1]) if abs(y[2]) < 0.9 else np.cross(y, [1, 0, 0])
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, p0
    return transformed(cylinder(radius, length, segments, caps=False), m)


def transformed(mesh: Mesh, matrix: np.ndarray) -> Mesh:
    """``mesh`` with ``matrix`` (4x4) applied to positions and (inverse-transpose) normals."""
    m = np.asarray(matrix, np.float64)
    pos = mesh.positions @ m[:3, :3].T + m[:3, 3]
    nm = np.linalg.inv(m[:3, :3]).T
    nrm = mesh.normals @ nm.T
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    idx = mesh.indices
    if np.linalg.det(m[:3, :3]) < 0:
        idx = idx[:, [0, 2, 1]]
    return Mesh(pos, nrm, mesh.uvs, idx)


def merge(parts: list[tuple[Mesh, np.ndarray | None]]) -> Mesh:
    """One mesh from several (mesh, optional 4x4 transform) parts: one draw call."""
    pos, nrm, uv, idx, base = [], [], [], [], 0
    for mesh, m in parts:
        if m is not None:
            mesh = transformed(mesh, m)
        pos.append(mesh.positions)
        nrm.append(mesh.normals)
        uv.append(mesh.uvs)
        idx.append(mesh.indices + base)
        base += len(mesh.positions)
    return Mesh(np.concatenate(pos), np.concatenate(nrm), np.concatenate(uv), np.concatenate(idx))
