#!/usr/bin/env bash
# Downloads, on this machine (it has the package registries; the GPU machine has no network),
# what scripts/gpu_check.sh installs there, into the git-ignored folder .whl/:
#   - wheels for Python 3.12, manylinux x86_64, of the packages the GPU machine's image lacks
#     (it has PyTorch 2.11 + CUDA 13, Triton, ONNX, ONNX Runtime, cuda-python, OpenCV,
#     scikit-image, tqdm, matplotlib): moderngl and glcontext (headless OpenGL), trimesh (scene
#     loading), flip-evaluator (the FLIP metric of evaluate), cffi and pycparser (the C ABI),
#     pytest and its dependencies (the tests); imgui-bundle and glfw are not needed (window
#     mode only);
#   - the GL loader packages (.deb files in .whl/gl/): libglvnd's libEGL, libOpenGL, libGL,
#     libGLX, libGLES and libGLdispatch, which route to the NVIDIA driver's EGL there.
# Prints what it fetched and the sizes, and checks that the tree and .whl/ stay under the
# 64 MiB that can be carried. Idempotent (pip and apt-get skip what is there).
#
#   bash scripts/gpu_wheels.sh            # then: the run tool with carry [".whl"]
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.whl
LIMIT_MIB=64
PY_VERSION=3.12
PLATFORM=manylinux2014_x86_64
# pinned like pyproject.toml where it pins; the rest at the versions CI tests with
WHEELS=(
  "moderngl==5.13.*"
  "glcontext>=3.0"
  "trimesh>=4.0"
  "flip-evaluator>=1.6"
  "cffi>=1.17"
  "pycparser"
  "pytest>=8"  # and its dependencies: the GPU machine's image has no test runner
  "pluggy>=1.5"
  "iniconfig"
  "packaging"
  "pygments"
)
DEBS=(libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

mkdir -p "$DEST/gl"
echo "gpu_wheels: wheels for Python $PY_VERSION ($PLATFORM) into $DEST/"
# --no-deps: each dependency the image lacks is listed above; the rest (numpy, ...) is there
python3 -m pip download -q --disable-pip-version-check --only-binary=:all: --no-deps \
    --python-version "$PY_VERSION" --implementation cp --abi "cp${PY_VERSION/./}" \
    --platform "$PLATFORM" --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any -d "$DEST" "${WHEELS[@]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

echo "gpu_wheels: GL loader packages into $DEST/gl/"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "gpu_wheels: apt-get not found: fetch ${DEBS[*]} as .deb files into $DEST/gl/ yourself" >&2
  exit 1
fi
missing=()
for deb in "${DEBS[@]}"; do
  compgen -G "$DEST/gl/${deb}_*.deb" >/dev/null || missing+=("$deb")
done
if ((${#missing[@]})); then
  if ! (cd "$DEST/gl" && apt-get download -q "${missing[@]}" >/dev/null 2>&1); then
    apt-get update -qq >/dev/null  # the package lists may be missing or stale
    (cd "$DEST/gl" && apt-get download -q "${missing[@]}" >/dev/null)
  fi
fi

echo
echo "fetched:"
(cd "$DEST" && ls -1 ./*.whl gl/*.deb | while read -r f; do printf '  %-72s %6s KiB\n' "${f#./}" "$(( $(stat -c %s "$f") / 1024 ))"; done)
whl_bytes=$(find "$DEST" -type f \( -name '*.whl' -o -name '*.deb' \) -printf '%s\n' | awk '{s+=$1} END {print s+0}')
# the working tree as the run tool copies it: tracked files and untracked, not ignored ones
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
total=$((whl_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "size: $DEST $(mib "$whl_bytes") + tree $(mib "$tree_bytes") = $(mib "$total") (limit $LIMIT_MIB MiB)"
if ((total > LIMIT_MIB * 1048576)); then
  echo "gpu_wheels: over the $LIMIT_MIB MiB that can be carried" >&2
  exit 1
fi
