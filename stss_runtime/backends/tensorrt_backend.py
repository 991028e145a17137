"""TensorRT back-end: ONNX -> serialized engine (cached on disk) -> a :class:`Runner`.

Two libraries are accepted, imported lazily (never at module import) by
:func:`load_tensorrt`: NVIDIA's standard ``tensorrt`` (10.x; from NVIDIA's package index, on
a machine with a GPU) and ``tensorrt_rtx`` (TensorRT for RTX, ``pip install tensorrt-rtx``
from PyPI). The Python APIs are the same for everything used here; the differences:

- **Building.** TensorRT-RTX builds engines *without a GPU* (CPU-only ahead-of-time
  compilation, portable to the GPUs it supports: compute capability 7.5, 8.6, 8.9 and 12.0,
  that is Turing, Ampere and Ada GeForce/RTX, and Blackwell; kernels are specialised
  just-in-time when the engine first runs). It does **not** support compute capability 9.0
  (H100 / H200, data-centre Hopper), nor 8.0 (A100): there an engine needs standard TensorRT
  (:data:`RTX_UNSUPPORTED` says so where it matters). Standard TensorRT needs
  the GPU it builds for. Both get a ``STRONGLY_TYPED`` network (the only kind TensorRT-RTX
  supports): the precision is the one written in the ONNX file
  (:func:`stss_runtime.export.export_onnx`, whose fp16 graphs are float16 inside and float32
  at their inputs and outputs), so no precision flag is set on the builder.
- **Timing cache** (standard TensorRT only). A file per library, version and GPU in the cache
  directory (:func:`timing_cache_path`) is loaded before a build (an unreadable one is
  reported through ``log`` and replaced by an empty cache) and saved atomically after it.
  In TensorRT-RTX the timing-cache calls exist but are deprecated no-ops (and before 1.2 they
  forced a GPU query, defeating CPU-only builds), so they are not called there.
- **Runtime cache** (TensorRT-RTX only): the kernels TensorRT-RTX compiles just-in-time at
  inference can be kept in a file (:func:`runtime_cache_path`); :class:`TensorRTRunner`
  loads it when it creates its execution context and saves it after each new input size.

Engines are cached in :func:`engine_cache_dir` under :func:`cache_key` (model bytes,
precision, shapes, library and version, GPU): ``<key>.engine`` and ``<key>.json``; see
:func:`build_engine` for how an entry is checked before it is trusted.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from .base import BackendError, BackendUnavailable, check_inputs, check_precision

#: Bumped when the way engines are built changes, so older cache entries stop matching.
BUILD_FORMAT = 1

Shape = tuple[int, ...]
#: input name -> (min shape, opt shape, max shape) of the engine's optimization profile
ShapeProfile = dict[str, tuple[Shape, Shape, Shape]]
Log = Callable[[str], None]

#: Compute capabilities TensorRT for RTX 1.x runs engines on (its support matrix).
RTX_CAPABILITIES = ((7, 5), (8, 6), (8, 9), (12, 0))
#: Why TensorRT cannot run on an H100 / H200 machine without network access.
RTX_UNSUPPORTED = (
    "TensorRT for RTX (tensorrt-rtx) does not support compute capability {cc} ({gpu}): it runs on "
    "7.5, 8.6, 8.9 and 12.0 only (Turing, Ampere and Ada RTX, Blackwell), not 9.0 (H100 / H200) nor "
    "8.0 (A100). Standard TensorRT (`tensorrt`, from NVIDIA's package index) runs there, but it must be "
    "installed on that machine: its libraries (over 1 GB, and TensorRT for RTX's 228 MB) cannot be "
    "carried to a machine without network access in 64 MiB. Time the torch back-end there instead "
    "(eager, CUDA graphs, torch.compile)")

_INSTALL_HINT = (
    "`pip install tensorrt-rtx` (TensorRT for RTX) installs from PyPI and builds engines "
    "without a GPU; the standard `tensorrt` package needs NVIDIA's package index "
    "(pip install --extra-index-url https://pypi.nvidia.com tensorrt) on a machine with an "
    "NVIDIA GPU")


# ---------------------------------------------------------------------------------------
# Library and machine


@functools.cache
def load_tensorrt():
    """The TensorRT module: ``tensorrt`` if it imports, else ``tensorrt_rtx``;
    :class:`BackendUnavailable` naming both (and how to install them) when neither does.
    A success is cached (``load_tensorrt.cache_clear()`` forgets it); a failure is not."""
    errors = []
    for name in ("tensorrt", "tensorrt_rtx"):
        try:
            return importlib.import_module(name)
        except Exception as e:  # ImportError, or OSError from a missing shared library
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise BackendUnavailable("TensorRT back-end: neither `tensorrt` nor `tensorrt_rtx` imports ("
                             + "; ".join(errors) + "). " + _INSTALL_HINT + ".")


def library_info() -> dict[str, str]:
    """``{"library": "tensorrt" | "tensorrt_rtx", "version": "..."}`` of :func:`load_tensorrt`."""
    trt = load_tensorrt()
    name = trt.__name__.split(".")[0]
    return {"library": name, "version": str(getattr(trt, "__version__", "unknown"))}


def _is_rtx(info: Mapping[str, str] | None = None) -> bool:
    return (info or library_info())["library"] == "tensorrt_rtx"


def gpu_identity() -> str:
    """The current CUDA device as ``"<name> (sm_<major><minor>)"``, or ``"no-gpu"``."""
    if not torch.cuda.is_available():
        return "no-gpu"
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return f"{torch.cuda.get_device_name(index)} (sm_{major}{minor})"


def rtx_supports_this_gpu() -> tuple[bool, str]:
    """(whether TensorRT for RTX can run engines on the current CUDA device, why not)."""
    if not torch.cuda.is_available():
        return False, "no CUDA GPU"
    cc = torch.cuda.get_device_capability(torch.cuda.current_device())
    if tuple(cc) in RTX_CAPABILITIES or cc[0] > 12:
        return True, ""
    return False, RTX_UNSUPPORTED.format(cc=f"{cc[0]}.{cc[1]}", gpu=gpu_identity())


def _check_rtx_gpu() -> None:
    """BackendUnavailable when the library is TensorRT for RTX and this GPU is not one it runs on."""
    if _is_rtx():
        ok, why = rtx_supports_this_gpu()
        if not ok:
            raise BackendUnavailable(why)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


# ---------------------------------------------------------------------------------------
# Shapes


def profile_for(spec, min_hw: tuple[int, int], opt_hw: tuple[int, int],
                max_hw: tuple[int, int]) -> ShapeProfile:
    """The optimization profile of graph ``spec`` (:class:`stss_runtime.graphs.GraphSpec`)
    for render sizes from ``min_hw`` to ``max_hw`` (each (h, w), multiples of 8), tuned for
    ``opt_hw``. Inputs whose shape does not follow the frame size (``spec.fixed_inputs``,
    e.g. ``shaded`` (1, 1, 1, 1)) get the same shape three times either way."""
    sizes = [tuple(int(v) for v in hw) for hw in (min_hw, opt_hw, max_hw)]
    for axis in (0, 1):
        if not sizes[0][axis] <= sizes[1][axis] <= sizes[2][axis]:
            raise ValueError(f"profile_for: expected min <= opt <= max per axis, got "
                             f"min {sizes[0]}, opt {sizes[1]}, max {sizes[2]}")
    profile: ShapeProfile = {}
    for name in spec.input_names:
        shapes = tuple(tuple(spec.input_shape(name, h, w)) for h, w in sizes)
        profile[name] = (shapes[1],) * 3 if name in spec.fixed_inputs else shapes
    return profile


def fixed_profile(spec, h: int, w: int) -> ShapeProfile:
    """A profile of one render size (min = opt = max): an engine for exactly h x w."""
    return profile_for(spec, (h, w), (h, w), (h, w))


def _normalise_shapes(shapes: Mapping[str, Sequence[Sequence[int]]]) -> ShapeProfile:
    out: ShapeProfile = {}
    for name, triple in shapes.items():
        triple = tuple(tuple(int(d) for d in s) for s in triple)
        if len(triple) != 3 or len({len(s) for s in triple}) != 1:
            raise ValueError(f"shapes[{name!r}]: expected (min, opt, max) shapes of one rank, "
                             f"got {triple}")
        if not all(a <= b <= c for a, b, c in zip(*triple)):
            raise ValueError(f"shapes[{name!r}]: expected min <= opt <= max per axis, got {triple}")
        out[name] = triple
    return out


# ---------------------------------------------------------------------------------------
# Cache


def engine_cache_dir() -> Path:
    """``engines/`` in the runtime's cache (``$STSS_CACHE``, else ``~/.cache/stss_runtime``)."""
    from . import cache_root

    return cache_root().expanduser() / "engines"


def _key_fields(onnx_sha256: str, precision: str, shapes: ShapeProfile,
                info: Mapping[str, str], gpu: str) -> dict:
    return {"build_format": BUILD_FORMAT, "onnx_sha256": onnx_sha256, "precision": precision,
            "shapes": {n: [list(s) for s in shapes[n]] for n in sorted(shapes)},
            "library": info["library"], "version": info["version"], "gpu": gpu}


def cache_key(onnx_bytes: bytes, precision: str, shapes: Mapping[str, Sequence[Sequence[int]]],
              library_info: Mapping[str, str], gpu: str) -> str:
    """Hex sha256 over the model bytes, the precision, the profile shapes, the library name
    and version, the GPU identity (and :data:`BUILD_FORMAT`)."""
    return _key_of(_key_fields(hashlib.sha256(onnx_bytes).hexdigest(), precision,
                               _normalise_shapes(shapes), library_info, gpu))


def _key_of(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def timing_cache_path(cache_dir: str | Path | None = None) -> Path | None:
    """Where builds keep their timing cache (per library, version and GPU); ``None`` with
    TensorRT-RTX, whose timing cache is a no-op."""
    info = library_info()
    if _is_rtx(info):
        return None
    name = _slug(f"timing-{info['library']}-{info['version']}-{gpu_identity()}") + ".cache"
    return Path(cache_dir if cache_dir is not None else engine_cache_dir()) / name


def runtime_cache_path(cache_dir: str | Path | None = None) -> Path | None:
    """Where TensorRT-RTX keeps the kernels it compiles just-in-time (per version and GPU);
    ``None`` with standard TensorRT, which has no runtime cache."""
    info = library_info()
    if not _is_rtx(info):
        return None
    name = _slug(f"runtime-{info['library']}-{info['version']}-{gpu_identity()}") + ".cache"
    return Path(cache_dir if cache_dir is not None else engine_cache_dir()) / name


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer, so concurrent builds of one key never share a temp file
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _cached_entry_problem(engine_path: Path, meta_path: Path, fields: dict, key: str) -> str | None:
    """``None`` when the entry can be trusted, otherwise why not."""
    if not engine_path.is_file():
        return "no engine file"
    if not meta_path.is_file():
        return "no metadata file"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        return f"unreadable metadata ({e})"
    if not isinstance(meta, dict):
        return "metadata is not a JSON object"
    expected = dict(fields, key=key)
    stale = [k for k, v in expected.items() if meta.get(k) != v]
    if stale:
        return "stale metadata (" + ", ".join(f"{k}: {meta.get(k)!r} != {expected[k]!r}"
                                              for k in stale) + ")"
    try:
        data = engine_path.read_bytes()
    except OSError as e:
        return f"unreadable engine ({e})"
    if meta.get("engine_bytes") != len(data):
        return f"engine is {len(data)} bytes, metadata says {meta.get('engine_bytes')}"
    if hashlib.sha256(data).hexdigest() != meta.get("engine_sha256"):
        return "engine sha256 does not match its metadata (corrupt file)"
    return None


# ---------------------------------------------------------------------------------------
# Build


def _make_logger(trt, sink: Log | None):
    """A TensorRT logger passing warnings and errors to ``sink`` and remembering errors."""

    class _Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):  # called by TensorRT
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(msg)
            if sink is not None and severity in (trt.ILogger.Severity.ERROR,
                                                 trt.ILogger.Severity.INTERNAL_ERROR,
                                                 trt.ILogger.Severity.WARNING):
                sink(f"[TensorRT {severity.name}] {msg}")

    return _Logger()


@dataclass(frozen=True)
class EngineBuild:
    """An engine file on disk: where, under which cache key, whether this call built it
    (``False``: served from the cache), how long that took (seconds; the lookup time on a
    hit) and its size."""

    path: Path
    key: str
    built: bool
    seconds: float
    size_bytes: int


def build_engine(onnx_path: str | Path, shapes: Mapping[str, Sequence[Sequence[int]]],
                 precision: str = "fp32", cache_dir: str | Path | None = None,
                 log: Log | None = None) -> EngineBuild:
    """The engine of the ONNX file at ``onnx_path`` for the profile ``shapes`` (every input
    of the graph: (min, opt, max) shapes, :func:`profile_for`), from the cache when a valid
    entry exists, else built (a ``STRONGLY_TYPED`` network: ``precision`` is the one the file
    was exported at, and is part of the cache key) and cached.

    A cache entry ``<key>.engine`` + ``<key>.json`` is used only when the metadata parses, its
    fields match this call's (model sha256, precision, shapes, library, version, GPU) and the
    engine file's size and sha256 match it; anything else is reported through ``log`` and the
    entry rebuilt and overwritten. Files are written atomically, the metadata last.

    ``ValueError`` for an unknown precision or malformed shapes; :class:`BackendError` for a
    missing file, an ONNX parse error (the parser's errors listed), shapes that do not cover
    the graph's inputs, or a failed build (TensorRT's errors quoted);
    :class:`BackendUnavailable` without TensorRT."""
    check_precision(precision)
    shapes = _normalise_shapes(shapes)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise BackendError(f"TensorRT build: ONNX file {str(onnx_path)!r} does not exist")
    onnx_bytes = onnx_path.read_bytes()
    trt = load_tensorrt()
    info = library_info()
    gpu = gpu_identity()
    cache_dir = Path(cache_dir) if cache_dir is not None else engine_cache_dir()
    fields = _key_fields(hashlib.sha256(onnx_bytes).hexdigest(), precision, shapes, info, gpu)
    key = _key_of(fields)
    engine_path, meta_path = cache_dir / f"{key}.engine", cache_dir / f"{key}.json"

    start = time.perf_counter()
    problem = _cached_entry_problem(engine_path, meta_path, fields, key)
    if problem is None:
        if log:
            log(f"TensorRT engine cache hit: {engine_path}")
        return EngineBuild(engine_path, key, False, time.perf_counter() - start,
                           engine_path.stat().st_size)
    if log and problem not in ("no engine file",):
        log(f"TensorRT engine cache entry {key[:16]}... not usable: {problem}; rebuilding")

    logger = _make_logger(trt, log)
    try:
        builder = trt.Builder(logger)
    except Exception as e:  # standard TensorRT without a usable GPU
        logger.errors.append(f"{type(e).__name__}: {e}")
        builder = None
    if builder is None:
        raise BackendUnavailable(f"{info['library']} {info['version']}: could not create a builder"
                                 + (f": {'; '.join(logger.errors)}" if logger.errors else "")
                                 + ". Standard TensorRT builds only on a machine with an NVIDIA "
                                   "GPU; TensorRT for RTX (`pip install tensorrt-rtx`) builds "
                                   "without one")
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes, str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendError(f"TensorRT could not parse {str(onnx_path)!r}: " + "; ".join(errors))

    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    missing = [n for n in inputs if n not in shapes]
    extra = [n for n in shapes if n not in inputs]
    if missing or extra:
        raise BackendError(f"TensorRT build: the graph's inputs are {inputs}; shapes lack "
                           f"{missing}, and name unknown inputs {extra}")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for name in inputs:
        profile.set_shape(name, *shapes[name])
    if config.add_optimization_profile(profile) < 0:
        raise BackendError(f"TensorRT build: invalid optimization profile {shapes}: "
                           + "; ".join(logger.errors))

    timing_path = timing_cache_path(cache_dir)
    timing_cache = None
    if timing_path is not None:
        timing_cache = _load_timing_cache(config, timing_path, log)

    if log:
        log(f"building TensorRT engine ({info['library']} {info['version']}, {precision}, "
            f"{gpu}) from {onnx_path}")
    logger.errors.clear()
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise BackendError(f"TensorRT ({info['library']} {info['version']}) failed to build an "
                           f"engine from {str(onnx_path)!r} at {precision}"
                           + (": " + "; ".join(logger.errors) if logger.errors
                              else " (build_serialized_network returned None)"))
    data = bytes(serialized)

    if timing_cache is not None:
        try:
            _atomic_write(timing_path, bytes(timing_cache.serialize()))
        except Exception as e:  # a cache that cannot be saved costs time, not correctness
            if log:
                log(f"TensorRT timing cache not saved to {timing_path}: {e}")

    meta = dict(fields, key=key, engine_sha256=hashlib.sha256(data).hexdigest(),
                engine_bytes=len(data), build_seconds=round(seconds, 3),
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), onnx_path=str(onnx_path))
    _atomic_write(engine_path, data)
    _atomic_write(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
    if log:
        log(f"TensorRT engine built in {seconds:.2f} s ({len(data)} bytes): {engine_path}")
    return EngineBuild(engine_path, key, True, seconds, len(data))


def _load_timing_cache(config, path: Path, log: Log | None):
    """Attach the timing cache stored at ``path`` (or an empty one) to ``config``."""
    data = b""
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as e:
            if log:
                log(f"TensorRT timing cache {path} unreadable ({e}); starting empty")
    cache = None
    try:
        cache = config.create_timing_cache(data)
    except Exception as e:
        if log:
            log(f"TensorRT timing cache {path} not loadable ({e}); starting empty")
    if cache is None or not config.set_timing_cache(cache, False):
        if data and log:
            log(f"TensorRT timing cache {path} rejected; starting empty")
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


# ---------------------------------------------------------------------------------------
# Inference


def _require_gpu() -> None:
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "TensorRT inference needs an NVIDIA GPU with CUDA; this machine has none (building "
            "engines works without one: build_engine() with TensorRT for RTX, "
            "`pip install tensorrt-rtx`, writes an engine that runs on an RTX GPU later)")


class TensorRTRunner:
    """Runs a serialized TensorRT engine on CUDA tensors (the :class:`~.base.Runner` protocol).

    Inputs are float32 CUDA tensors; the engine's float32 outputs are written into CUDA
    tensors this runner keeps and reuses while the output shape does not change (valid until
    the next call). Work is enqueued on a CUDA stream of the runner's own, ordered after
    torch's current stream (inputs) and before it (outputs) through events: on the legacy
    default stream TensorRT synchronises the device after every enqueue. ``runtime_cache``: a file for TensorRT-RTX's
    just-in-time kernels (:func:`runtime_cache_path`; ignored by standard TensorRT).
    """

    backend = "tensorrt"

    def __init__(self, engine_path: str | Path, input_names: Sequence[str],
                 output_names: Sequence[str], precision: str, device: str | torch.device = "cuda",
                 runtime_cache: str | Path | None = None, log: Log | None = None):
        _require_gpu()
        self.precision = check_precision(precision)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if self.device.type != "cuda":
            raise BackendError(f"TensorRT runner: device must be a CUDA device, got {self.device}")
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.engine_path = Path(engine_path)
        self._log = log
        trt = self._trt = load_tensorrt()
        self._logger = _make_logger(trt, log)
        with torch.cuda.device(self.device):
            _check_rtx_gpu()
            self.stream = torch.cuda.Stream(self.device)
            self._runtime = trt.Runtime(self._logger)
            self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self.engine is None:
                raise BackendError(f"TensorRT could not load engine {str(self.engine_path)!r} "
                                   f"(built by another TensorRT version or for another GPU? delete "
                                   f"it to rebuild): " + "; ".join(self._logger.errors))
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            modes = {n: self.engine.get_tensor_mode(n) for n in names}
            ins = [n for n in names if modes[n] == trt.TensorIOMode.INPUT]
            outs = [n for n in names if modes[n] == trt.TensorIOMode.OUTPUT]
            if sorted(ins) != sorted(self.input_names) or sorted(outs) != sorted(self.output_names):
                raise BackendError(f"TensorRT engine {str(self.engine_path)!r} has inputs {ins} and "
                                   f"outputs {outs}; expected {list(self.input_names)} and "
                                   f"{list(self.output_names)}")
            for n in names:
                if self.engine.get_tensor_dtype(n) != trt.float32:
                    raise BackendError(f"TensorRT engine tensor {n!r} is "
                                       f"{self.engine.get_tensor_dtype(n)}; expected float32")
            self._runtime_cache = self._runtime_cache_path = None
            if runtime_cache is not None and _is_rtx():
                self.context = self._context_with_runtime_cache(Path(runtime_cache))
            else:
                self.context = self.engine.create_execution_context()
            if self.context is None:
                raise BackendError("TensorRT could not create an execution context: "
                                   + "; ".join(self._logger.errors))
        self._outputs: dict[str, torch.Tensor] = {}
        self._input_shapes: dict[str, tuple[int, ...]] = {}
        self._seen_shapes: set[tuple] = set()

    def _context_with_runtime_cache(self, path: Path):
        config = self.engine.create_runtime_config()
        cache = config.create_runtime_cache()
        if path.is_file():
            try:
                loaded = cache.deserialize(path.read_bytes())
            except Exception as e:
                loaded = False
                if self._log:
                    self._log(f"TensorRT-RTX runtime cache {path} unreadable: {e}")
            if not loaded and self._log:
                self._log(f"TensorRT-RTX runtime cache {path} not compatible; starting empty")
        config.set_runtime_cache(cache)
        self._runtime_cache, self._runtime_cache_path = cache, path
        return self.engine.create_execution_context(config)

    def save_runtime_cache(self) -> None:
        """Write the TensorRT-RTX just-in-time kernel cache to its file (no-op without one)."""
        if self._runtime_cache is not None:
            try:
                _atomic_write(self._runtime_cache_path, bytes(self._runtime_cache.serialize()))
            except Exception as e:
                if self._log:
                    self._log(f"TensorRT-RTX runtime cache not saved to {self._runtime_cache_path}: {e}")

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_inputs(self, inputs)
        ctx = self.context
        with torch.cuda.device(self.device):
            tensors = {n: inputs[n].contiguous() for n in self.input_names}
            for name, t in tensors.items():
                shape = tuple(t.shape)
                if self._input_shapes.get(name) != shape:
                    if not ctx.set_input_shape(name, shape):
                        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                        raise BackendError(f"input {name!r}: shape {shape} is outside the "
                                           f"engine's profile {tuple(lo)} .. {tuple(hi)}")
                    self._input_shapes[name] = shape
                ctx.set_tensor_address(name, t.data_ptr())
            for name in self.output_names:
                shape = tuple(ctx.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise BackendError(f"output {name!r}: TensorRT could not infer its shape "
                                       f"({shape}) from the input shapes")
                out = self._outputs.get(name)
                if out is None or tuple(out.shape) != shape:
                    out = self._outputs[name] = torch.empty(shape, dtype=torch.float32,
                                                            device=self.device)
                ctx.set_tensor_address(name, out.data_ptr())
            caller = torch.cuda.current_stream(self.device)
            self.stream.wait_stream(caller)  # the inputs were written on the caller's stream
            for t in tensors.values():  # their memory must outlive the work queued on our stream
                t.record_stream(self.stream)
            if not ctx.execute_async_v3(self.stream.cuda_stream):
                raise BackendError("TensorRT execute_async_v3 failed: " + "; ".join(self._logger.errors))
            caller.wait_stream(self.stream)  # later torch work reads the outputs
        signature = tuple(sorted(self._input_shapes.items()))
        if signature not in self._seen_shapes:  # new sizes: new just-in-time kernels to keep
            self._seen_shapes.add(signature)
            self.save_runtime_cache()
        return dict(self._outputs)

    @classmethod
    def from_spec(cls, spec, onnx_path: str | Path, precision: str, min_hw: tuple[int, int],
                  opt_hw: tuple[int, int], max_hw: tuple[int, int],
                  cache_dir: str | Path | None = None, device: str | torch.device = "cuda",
                  log: Log | None = None) -> "TensorRTRunner":
        """A runner for graph ``spec`` at ``precision`` and render sizes ``min_hw`` ..
        ``max_hw``: the ONNX file at ``onnx_path`` (exported there at ``opt_hw`` first when
        it does not exist) built through the engine cache (:func:`build_engine`)."""
        _require_gpu()
        check_precision(precision)
        with torch.cuda.device(torch.device(device)):
            _check_rtx_gpu()  # before an engine is built for a GPU it cannot run on
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            from ..export import export_onnx
            export_onnx(spec, onnx_path, *opt_hw, precision=precision)
        build = build_engine(onnx_path, profile_for(spec, min_hw, opt_hw, max_hw), precision,
                             cache_dir=cache_dir, log=log)
        return cls(build.path, spec.input_names, spec.output_names, precision, device,
                   runtime_cache=runtime_cache_path(cache_dir), log=log)


__all__ = [
    "BUILD_FORMAT", "EngineBuild", "ShapeProfile", "TensorRTRunner", "build_engine", "cache_key",
    "engine_cache_dir", "fixed_profile", "gpu_identity", "library_info", "load_tensorrt",
    "profile_for", "RTX_CAPABILITIES", "RTX_UNSUPPORTED", "rtx_supports_this_gpu", "runtime_cache_path",
    "timing_cache_path",
]
