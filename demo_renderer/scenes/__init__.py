"""Scenes: the built-in stress cases and user scene files (glTF 2.0 / OBJ + optional JSON)."""

from __future__ import annotations

import os
from pathlib import Path

from ..scene import Scene
from .builtin import BUILTIN_SCENES
from .generated import GENERATED_SCENES, GeneratedSceneError, parse_generated


class UnknownSceneError(ValueError):
    """The scene argument is neither a built-in scene name nor a scene file."""


def load_scene(name_or_path: str | os.PathLike) -> Scene:
    """A built-in scene by name, a generated one (``scatter:SEED``), or a user scene from a
    ``.gltf``/``.glb``/``.obj``/``.json`` file."""
    key = str(name_or_path)
    if key in BUILTIN_SCENES:
        return BUILTIN_SCENES[key]()
    generated = parse_generated(key)
    if generated is not None:
        return generated
    suffix = Path(key).suffix.lower()
    if suffix in (".gltf", ".glb", ".obj", ".json"):
        from .files import load_scene_file

        return load_scene_file(key)
    raise UnknownSceneError(
        f"unknown scene {key!r}: expected one of {', '.join(BUILTIN_SCENES)}, a generated scene "
        f"({', '.join(n + ':SEED' for n in GENERATED_SCENES)}) or a .gltf/.glb/.obj/.json scene file")
