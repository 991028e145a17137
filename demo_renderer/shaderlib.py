"""Loads GLSL programs from ``shaders/``: one program per file, shared code by ``#include``.

A program file holds every stage, each in a ``#if defined VERTEX_SHADER`` /
``#elif defined FRAGMENT_SHADER`` section; the loader compiles the file once per stage
with the matching define. Programs are cached per context.
"""

from __future__ import annotations

import re
from pathlib import Path

import moderngl

SHADER_DIR = Path(__file__).resolve().parent.parent / "shaders"
GLSL_VERSION = "#version 430 core"
_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.MULTILINE)


class ShaderError(RuntimeError):
    """A shader file is missing, includes itself, or does not compile."""


def preprocess(name: str, root: Path = SHADER_DIR, _stack: tuple[str, ...] = ()) -> str:
    """Source of ``name`` (relative to ``root``) with ``#include "file"`` resolved recursively."""
    if name in _stack:
        raise ShaderError(f"shader include cycle: {' -> '.join(_stack + (name,))}")
    path = root / name
    try:
        text = path.read_text()
    except FileNotFoundError:
        where = f" (included from {_stack[-1]})" if _stack else ""
        raise ShaderError(f"shader file not found: {path}{where}") from None
    return _INCLUDE.sub(lambda m: preprocess(m.group(1), root, _stack + (name,)), text)


def stage_source(name: str, stage: str, root: Path = SHADER_DIR) -> str:
    """Full source of one stage (``VERTEX_SHADER`` or ``FRAGMENT_SHADER``) of program ``name``."""
    return f"{GLSL_VERSION}\n#define {stage}\n#line 1\n{preprocess(name, root)}"


class ShaderLibrary:
    """Compiles and caches the programs of ``shaders/`` for one moderngl context."""

    def __init__(self, ctx: moderngl.Context, root: Path = SHADER_DIR):
        self.ctx = ctx
        self.root = root
        self._cache: dict[str, moderngl.Program] = {}

    def get(self, name: str) -> moderngl.Program:
        prog = self._cache.get(name)
        if prog is None:
            try:
                prog = self.ctx.program(
                    vertex_shader=stage_source(name, "VERTEX_SHADER", self.root),
                    fragment_shader=stage_source(name, "FRAGMENT_SHADER", self.root))
            except moderngl.Error as e:
                raise ShaderError(f"{name}: {e}") from None
            self._cache[name] = prog
        return prog
