"""What ``make setup`` installs, as the tests require it: a missing package or program is a
failure that says so and says to run ``make setup``, never a skip. Only the lack of a CUDA
GPU skips a test: a skip must not hide a broken install."""

from __future__ import annotations

import importlib
import shutil
from types import ModuleType
from typing import NoReturn

import pytest

SETUP = "`make setup` installs it (scripts/setup.sh, pyproject.toml): run it"


def missing(what: str, detail: str = "") -> NoReturn:
    """Fail the test: ``what`` is not installed (``detail``: why it was not found)."""
    pytest.fail(f"{what} is missing{f' ({detail})' if detail else ''}; {SETUP}", pytrace=False)


def module(name: str) -> ModuleType:
    """Python package ``name`` (a dependency in pyproject.toml), imported."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing(f"the Python package {name!r}", str(e))


def program(name: str, apt_package: str) -> str:
    """The path of program ``name`` (from the system package ``apt_package``)."""
    path = shutil.which(name)
    if path is None:
        missing(f"the program {name!r} (system package {apt_package})", "not on PATH")
    return path
