"""TensorRT back-end: the ONNX -> engine build and its on-disk cache (runs without a GPU with
TensorRT for RTX), the errors without TensorRT or without a GPU, and (GPU only) parity with
torch.

The cache tests build the small ``supersampling_tiny`` graph (the cache logic does not
depend on the graph); ``test_stss_graph_builds`` builds the joint ``stss`` graph.
"""

from __future__ import annotations

import builtins
import json
import sys

import pytest
import torch

from stss_runtime.backends.base import BackendError, BackendUnavailable
from stss_runtime.backends.tensorrt_backend import (
    EngineBuild,
    TensorRTRunner,
    build_engine,
    cache_key,
    engine_cache_dir,
    fixed_profile,
    gpu_identity,
    library_info,
    load_tensorrt,
    profile_for,
    timing_cache_path,
)
from stss_runtime.export import export_onnx
from stss_runtime.graphs import stss_graph, supersampling_graph
from stss_runtime.models import build_model

from .. import installed

H, W = 16, 24  # render size traced; profile 8x8 .. 32x48
MIN_HW, OPT_HW, MAX_HW = (8, 8), (H, W), (32, 48)
NO_GPU = "TensorRT inference needs a CUDA GPU; none on this machine"


def _trt_missing() -> str | None:
    try:
        load_tensorrt()
    except BackendUnavailable as e:
        return str(e)
    return None


_MISSING = _trt_missing()


@pytest.fixture
def _tensorrt_installed():
    """TensorRT for RTX is a test dependency (``tensorrt-rtx`` in pyproject.toml's dev
    extra): where neither TensorRT imports, the install is broken and the test fails."""
    if _MISSING is not None:
        installed.missing("TensorRT (for RTX: the pip package tensorrt-rtx)", _MISSING)


needs_trt = pytest.mark.usefixtures("_tensorrt_installed")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    return supersampling_graph(build_model("supersampling_tiny").eval())


@pytest.fixture(scope="module")
def onnx_files(spec, tmp_path_factory):
    """The graph exported once per precision: {"fp32": path, "fp16": path}."""
    d = tmp_path_factory.mktemp("onnx")
    return {p: export_onnx(spec, d / f"ss_tiny_{p}.onnx", H, W, p) for p in ("fp32", "fp16")}


@pytest.fixture(scope="module")
def shapes(spec):
    return profile_for(spec, MIN_HW, OPT_HW, MAX_HW)


@pytest.fixture(scope="module")
def built(onnx_files, shapes, tmp_path_factory):
    """One fp32 build in a module cache dir: (cache_dir, EngineBuild, engine bytes)."""
    cache = tmp_path_factory.mktemp("engines")
    b = build_engine(onnx_files["fp32"], shapes, "fp32", cache_dir=cache)
    return cache, b, b.path.read_bytes()


# --------------------------------------------------------------------------------------
# Pure helpers (no TensorRT needed)


def test_profile_for_fixed_inputs_and_frame_inputs():
    g = stss_graph(build_model("stss_tiny").eval())
    prof = profile_for(g, MIN_HW, OPT_HW, MAX_HW)
    assert set(prof) == set(g.input_names)
    assert prof["shaded"] == ((1, 1, 1, 1),) * 3
    assert prof["jitter"] == ((1, 2, 1, 1),) * 3
    assert prof["stored"] == ((1, 9, 8, 8), (1, 9, 16, 24), (1, 9, 32, 48))
    fixed = fixed_profile(g, H, W)
    assert all(lo == opt == hi for lo, opt, hi in fixed.values())
    with pytest.raises(ValueError):
        profile_for(g, (32, 32), (16, 16), (64, 64))


def test_cache_key_covers_every_field(shapes):
    info = {"library": "tensorrt_rtx", "version": "1.7.1"}
    base = cache_key(b"model", "fp32", shapes, info, "no-gpu")
    assert len(base) == 64 and base == cache_key(b"model", "fp32", dict(shapes), dict(info), "no-gpu")
    other_shapes = dict(shapes, color=((1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 64, 64)))
    variants = [cache_key(b"model!", "fp32", shapes, info, "no-gpu"),
                cache_key(b"model", "fp16", shapes, info, "no-gpu"),
                cache_key(b"model", "fp32", other_shapes, info, "no-gpu"),
                cache_key(b"model", "fp32", shapes, dict(info, version="1.7.2"), "no-gpu"),
                cache_key(b"model", "fp32", shapes, dict(info, library="tensorrt"), "no-gpu"),
                cache_key(b"model", "fp32", shapes, info, "NVIDIA GeForce RTX 4090 (sm_89)")]
    assert len({base, *variants}) == len(variants) + 1


def test_engine_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STSS_CACHE", str(tmp_path / "x"))
    assert engine_cache_dir() == tmp_path / "x" / "engines"
    monkeypatch.delenv("STSS_CACHE")
    assert engine_cache_dir().parts[-3:] == (".cache", "stss_runtime", "engines")


def test_gpu_identity():
    ident = gpu_identity()
    assert ident == "no-gpu" if not torch.cuda.is_available() else "sm_" in ident


def test_load_tensorrt_without_either_library(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.split(".")[0] in ("tensorrt", "tensorrt_rtx"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    load_tensorrt.cache_clear()
    try:
        with pytest.raises(BackendUnavailable) as info:
            load_tensorrt()
        msg = str(info.value)
        assert "tensorrt-rtx" in msg and "`tensorrt`" in msg and "GPU" in msg
        with pytest.raises(BackendUnavailable):
            build_engine(__file__, {}, "fp32")
    finally:
        load_tensorrt.cache_clear()  # the failure is not cached; the real module comes back


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_runner_without_gpu(spec, tmp_path):
    with pytest.raises(BackendUnavailable, match="GPU"):
        TensorRTRunner(tmp_path / "none.engine", spec.input_names, spec.output_names, "fp32")
    with pytest.raises(BackendUnavailable, match="GPU"):  # refused before building anything
        TensorRTRunner.from_spec(spec, tmp_path / "m.onnx", "fp32", MIN_HW, OPT_HW, MAX_HW,
                                 cache_dir=tmp_path)
    assert not (tmp_path / "m.onnx").exists()


# --------------------------------------------------------------------------------------
# Builds (TensorRT or TensorRT-RTX; no GPU needed with TensorRT-RTX)


@needs_trt
def test_library_info():
    info = library_info()
    assert info["library"] in ("tensorrt", "tensorrt_rtx") and info["version"]


@needs_trt
def test_build_fp32_and_fp16(onnx_files, shapes, built, tmp_path):
    cache, b32, data32 = built
    assert isinstance(b32, EngineBuild) and b32.built and b32.size_bytes == len(data32) > 0
    assert b32.path == cache / f"{b32.key}.engine"
    assert b32.key == cache_key(onnx_files["fp32"].read_bytes(), "fp32", shapes, library_info(),
                                gpu_identity())
    meta = json.loads((cache / f"{b32.key}.json").read_text())
    assert meta["key"] == b32.key and meta["precision"] == "fp32"
    assert meta["library"] == library_info()["library"] and meta["gpu"] == gpu_identity()
    b16 = build_engine(onnx_files["fp16"], shapes, "fp16", cache_dir=cache)
    assert b16.built and b16.size_bytes > 0 and b16.key != b32.key
    assert b16.path.read_bytes() != data32


@needs_trt
def test_second_build_is_a_cache_hit(onnx_files, shapes, built):
    cache, first, data = built
    logs = []
    again = build_engine(onnx_files["fp32"], shapes, "fp32", cache_dir=cache, log=logs.append)
    assert not again.built and again.key == first.key and again.path == first.path
    assert again.path.read_bytes() == data
    assert any("cache hit" in m for m in logs)


@needs_trt
def test_timing_cache_written(onnx_files, shapes, built, tmp_path, monkeypatch):
    """A build saves its timing cache where :func:`timing_cache_path` says. TensorRT-RTX keeps
    none (its timing-cache calls are no-ops): no path, and the module's build left no timing
    file. The saving itself is checked on every library by naming a path, which even the
    TensorRT-RTX builder serialises its (empty) cache into."""
    import warnings

    import stss_runtime.backends.tensorrt_backend as tb

    cache, _, _ = built
    path = timing_cache_path(cache)
    if library_info()["library"] == "tensorrt_rtx":
        assert path is None and not list(cache.glob("timing-*"))
    else:
        assert path.is_file() and path.stat().st_size > 0
    named = tmp_path / "timing.cache"
    monkeypatch.setattr(tb, "timing_cache_path", lambda cache_dir=None: named)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TensorRT-RTX: deprecated no-ops
        b = build_engine(onnx_files["fp32"], shapes, "fp32", cache_dir=tmp_path / "engines")
    assert b.built and named.is_file() and named.stat().st_size > 0


def test_cache_file_names_per_library(monkeypatch, tmp_path):
    import stss_runtime.backends.tensorrt_backend as tb
    monkeypatch.setattr(tb, "library_info", lambda: {"library": "tensorrt", "version": "10.9.0.34"})
    path = tb.timing_cache_path(tmp_path)
    assert path.parent == tmp_path and "tensorrt-10.9.0.34" in path.name
    assert tb.runtime_cache_path(tmp_path) is None  # standard TensorRT has no runtime cache
    monkeypatch.setattr(tb, "library_info", lambda: {"library": "tensorrt_rtx", "version": "1.7.1"})
    assert tb.timing_cache_path(tmp_path) is None  # a no-op in TensorRT-RTX
    assert "tensorrt_rtx-1.7.1" in tb.runtime_cache_path(tmp_path).name


@needs_trt
def test_unloadable_timing_cache_starts_empty(tmp_path):
    import warnings

    from stss_runtime.backends.tensorrt_backend import _load_timing_cache, _make_logger
    trt = load_tensorrt()
    logs = []
    config = trt.Builder(_make_logger(trt, logs.append)).create_builder_config()
    path = tmp_path / "timing.cache"
    path.write_bytes(b"\x00garbage" * 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TensorRT-RTX: deprecated no-ops
        assert _load_timing_cache(config, path, logs.append) is not None


def _fresh(onnx_files, shapes, cache, log=None):
    return build_engine(onnx_files["fp32"], shapes, "fp32", cache_dir=cache, log=log)


@needs_trt
@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_engine_is_rebuilt(onnx_files, shapes, tmp_path, damage):
    first = _fresh(onnx_files, shapes, tmp_path)
    data = bytearray(first.path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
    else:
        data = b""
    first.path.write_bytes(bytes(data))
    logs = []
    again = _fresh(onnx_files, shapes, tmp_path, logs.append)
    assert again.built and again.key == first.key and again.path.stat().st_size == first.size_bytes
    assert any("rebuilding" in m for m in logs)
    assert not _fresh(onnx_files, shapes, tmp_path).built  # the entry is valid again


@needs_trt
@pytest.mark.parametrize("damage", ["missing", "garbage", "stale_version", "stale_sha", "not_object"])
def test_bad_metadata_is_rebuilt(onnx_files, shapes, tmp_path, damage):
    first = _fresh(onnx_files, shapes, tmp_path)
    meta_path = tmp_path / f"{first.key}.json"
    meta = json.loads(meta_path.read_text())
    if damage == "missing":
        meta_path.unlink()
    elif damage == "garbage":
        meta_path.write_text('{"key": ')
    elif damage == "stale_version":
        meta_path.write_text(json.dumps(dict(meta, version="0.0.1")))
    elif damage == "stale_sha":
        meta_path.write_text(json.dumps(dict(meta, engine_sha256="0" * 64)))
    else:
        meta_path.write_text("[1, 2]")
    again = _fresh(onnx_files, shapes, tmp_path)
    assert again.built and json.loads(meta_path.read_text())["version"] == library_info()["version"]
    assert not _fresh(onnx_files, shapes, tmp_path).built


@needs_trt
def test_other_shapes_and_other_model_get_other_keys(spec, onnx_files, shapes, built, tmp_path):
    cache, first, _ = built
    fixed = build_engine(onnx_files["fp32"], fixed_profile(spec, H, W), "fp32", cache_dir=cache)
    assert fixed.built and fixed.key != first.key
    torch.manual_seed(1)
    other = export_onnx(supersampling_graph(build_model("supersampling_tiny").eval()),
                        tmp_path / "other.onnx", H, W, "fp32")
    assert other.read_bytes() != onnx_files["fp32"].read_bytes()
    assert build_engine(other, shapes, "fp32", cache_dir=cache).key not in (first.key, fixed.key)


@needs_trt
def test_build_errors(onnx_files, shapes, tmp_path):
    with pytest.raises(ValueError, match="precision"):
        build_engine(onnx_files["fp32"], shapes, "int8", cache_dir=tmp_path)
    with pytest.raises(BackendError, match="nothere.onnx"):
        build_engine(tmp_path / "nothere.onnx", shapes, "fp32", cache_dir=tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(onnx_files["fp32"].read_bytes()[:3000])  # truncated protobuf
    with pytest.raises(BackendError, match="parse"):
        build_engine(bad, shapes, "fp32", cache_dir=tmp_path)
    partial = {k: v for k, v in shapes.items() if k != "history"}
    with pytest.raises(BackendError, match="history"):
        build_engine(onnx_files["fp32"], partial, "fp32", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.engine"))


@needs_trt
def test_stss_graph_builds(tmp_path):
    torch.manual_seed(0)
    g = stss_graph(build_model("stss_tiny").eval())
    path = export_onnx(g, tmp_path / "stss_tiny.onnx", H, W, "fp32")
    b = build_engine(path, profile_for(g, MIN_HW, OPT_HW, MAX_HW), "fp32", cache_dir=tmp_path)
    assert b.built and b.size_bytes > 0


# --------------------------------------------------------------------------------------
# Inference (GPU only)


@needs_trt
@needs_gpu
@pytest.mark.parametrize("model", ["supersampling_tiny", "stss_tiny"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_inference_matches_torch(model, precision, tmp_path):
    torch.manual_seed(0)
    net = build_model(model).eval()
    g = stss_graph(net) if model.startswith("stss") else supersampling_graph(net)
    runner = TensorRTRunner.from_spec(g, tmp_path / "m.onnx", precision, MIN_HW, OPT_HW, MAX_HW,
                                      cache_dir=tmp_path)
    tol = 1e-4 if precision == "fp32" else 1e-2
    for h, w in [(H, W), (32, 48), (8, 8), (H, W)]:
        inputs = g.example_inputs(h, w, device="cuda")
        with torch.no_grad():
            ref = g.module.cuda()(*(inputs[n] for n in g.input_names))
        out = runner(inputs)["output"]
        torch.cuda.synchronize()
        assert out.shape == ref.shape == g.output_shape(h, w)
        err = (out - ref).abs().max().item()
        assert err <= tol * max(1.0, ref.abs().max().item()), (h, w, err)
