#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, and nothing twice:
#   1. system packages (Mesa's EGL/GL for headless rendering, Xvfb for windowed tests, a C
#      compiler for the plugin's C ABI, and a system Python's headers and shared library,
#      which the C ABI embeds), installed with apt-get only when missing;
#   2. a virtual environment in .venv with the project and its Python dependencies,
#      reinstalled only when pyproject.toml changes.
# Idempotent: the second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglx-mesa0 libgles2 xvfb xauth gcc libc6-dev"

missing=()
for pkg in $SYSTEM_PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get not found; install these packages with your package manager: ${missing[*]}" >&2
    exit 1
  fi
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then
  echo "setup: Python >= 3.11 is required ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
# The plugin's C ABI embeds this Python: it is built against its headers (Python.h) and a
# shared libpython. A Debian/Ubuntu system Python has both in its pythonX.Y-dev package.
if ! "$PYTHON" - <<'PY'
import pathlib, sys, sysconfig
inc = pathlib.Path(sysconfig.get_paths()["include"]) / "Python.h"
so = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY") or ""
lib = pathlib.Path(sysconfig.get_config_var("LIBDIR") or "") / so
sys.exit(0 if inc.is_file() and ".so" in so and lib.exists() else 1)
PY
then
  dev="python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev"
  if [[ $("$PYTHON" -c 'import sys; print(sys.base_prefix)') == /usr ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing $dev (the C ABI is built against this Python's headers and shared library)"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$dev" >/dev/null
  else
    echo "setup: $PYTHON lacks Python.h or a shared libpython, which the C ABI is built with" \
         "(install its headers, or use a Python built with --enable-shared); its tests will fail" >&2
  fi
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [[ ! -f $stamp ]]; then
  echo "setup: installing Python packages into .venv (about a minute the first time)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  rm -f .venv/.installed-*
  touch "$stamp"
fi
