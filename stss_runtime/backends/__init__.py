"""Back-ends: one runner protocol (named float32 tensors in, named float32 tensors out, on
the device they live on) implemented by torch, ONNX Runtime, TensorRT and OpenVINO (CPU).

Passes ask for a runner by name through :func:`create_runner` and never import ONNX
Runtime, TensorRT or OpenVINO themselves; those load lazily, and a missing one raises
:class:`BackendUnavailable` saying what to install.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from ..graphs import GraphSpec
from .base import PRECISIONS, BackendError, BackendUnavailable, Runner, check_inputs, check_precision

BACKENDS = ("torch", "onnxruntime", "tensorrt", "openvino")


def cache_root() -> Path:
    """Where exported models and engines are cached: ``$STSS_CACHE`` or ``~/.cache/stss_runtime``."""
    return Path(os.environ.get("STSS_CACHE", Path.home() / ".cache" / "stss_runtime"))


def _graph_code_hash() -> str:
    """A hash of the source code a graph is traced from (the graphs, models and the ops they
    call): an exported file or engine of older code is never served for newer code."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for f in sorted([root / "graphs.py", root / "history_graph.py", *(root / "models").glob("*.py"),
                     *(root / "ops").glob("*.py")]):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def graph_fingerprint(spec: GraphSpec) -> str:
    """A hash of the graph's name, code, weights and the exporter's version."""
    from ..export import OPSET

    h = hashlib.sha256(f"{spec.name}|{torch.__version__}|opset{OPSET}|{_graph_code_hash()}".encode())
    for k, v in spec.module.state_dict().items():
        h.update(k.encode())
        buf = io.BytesIO()
        torch.save(v.detach().cpu(), buf)
        h.update(buf.getvalue())
    return h.hexdigest()


def onnx_for(spec: GraphSpec, precision: str = "fp32", cache_dir: str | Path | None = None) -> Path:
    """The ONNX file of ``spec`` at ``precision``, exported once into the cache."""
    from ..export import export_onnx

    check_precision(precision)
    folder = Path(cache_dir) if cache_dir else cache_root() / "onnx"
    path = folder / f"{spec.name}-{precision}-{graph_fingerprint(spec)[:16]}.onnx"
    if not path.exists():
        export_onnx(spec, path, precision=precision)
    return path


def create_runner(spec: GraphSpec, backend: str = "torch", precision: str = "fp32",
                  device: str | torch.device = "cpu", *, render_size: tuple[int, int] | None = None,
                  max_render_size: tuple[int, int] | None = None, onnx_path: str | Path | None = None,
                  cache_dir: str | Path | None = None, **options) -> Runner:
    """A runner of ``spec`` on ``backend`` at ``precision`` on ``device``.

    ``render_size`` / ``max_render_size`` (width, height, multiples of 8): the shapes a
    TensorRT engine is optimised for and admits (others ignore them). ``onnx_path``: an
    exported file to use instead of exporting ``spec`` into the cache. ``options`` go to the
    runner (``channels_last``, ``cuda_graph``, ``threads``, ...).
    """
    check_precision(precision)
    if backend == "torch":
        from .torch_backend import TorchRunner

        return TorchRunner(spec, precision, device, **options)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "openvino":  # reads the float32 file at every precision (it converts itself)
        from .openvino_backend import OpenVinoRunner

        fp32 = Path(onnx_path) if onnx_path else onnx_for(spec, "fp32", Path(cache_dir) / "onnx" if cache_dir else None)
        return OpenVinoRunner(spec, fp32, precision, device, **options)
    path = Path(onnx_path) if onnx_path else onnx_for(spec, precision, Path(cache_dir) / "onnx" if cache_dir else None)
    if backend == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeRunner

        return OnnxRuntimeRunner(spec, path, precision, device, **options)
    from .tensorrt_backend import TensorRTRunner

    if render_size is None:
        raise ValueError("tensorrt back-end: render_size (width, height) is needed to build the engine")
    opt_hw = (render_size[1], render_size[0])
    max_hw = (max_render_size[1], max_render_size[0]) if max_render_size else opt_hw
    return TensorRTRunner.from_spec(spec, path, precision, min_hw=(8, 8), opt_hw=opt_hw, max_hw=max_hw,
                                    cache_dir=(Path(cache_dir) if cache_dir else cache_root()) / "engines",
                                    device=device, **options)


def availability() -> dict[str, tuple[bool, str]]:
    """Per back-end: (usable on this machine, why not / on what)."""
    out = {"torch": (True, f"torch {torch.__version__}, CUDA {'yes' if torch.cuda.is_available() else 'no'}")}
    try:
        import onnxruntime as ort

        out["onnxruntime"] = (True, f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}")
    except ImportError as e:
        out["onnxruntime"] = (False, f"onnxruntime not importable: {e}")
    try:
        from .tensorrt_backend import library_info, load_tensorrt, rtx_supports_this_gpu

        load_tensorrt()
        info = library_info()
        gpu = torch.cuda.is_available()
        out["tensorrt"] = (gpu, f"{info['library']} {info['version']}: engine builds work"
                           + ("" if gpu else "; inference needs a CUDA GPU, none here"))
        if gpu and info["library"] == "tensorrt_rtx" and not rtx_supports_this_gpu()[0]:
            out["tensorrt"] = (False, rtx_supports_this_gpu()[1])
    except BackendUnavailable as e:
        out["tensorrt"] = (False, str(e))
    try:
        import openvino as ov

        from .openvino_backend import sixteen_bit_type

        out["openvino"] = (True, f"openvino {ov.__version__.split('-')[0]}, CPU only; fp16 computes in "
                           f"{sixteen_bit_type() or 'emulated 16-bit floats (slow)'} here")
    except ImportError as e:
        out["openvino"] = (False, f"openvino not importable: {e}; pip install openvino")
    return out


__all__ = ["BACKENDS", "PRECISIONS", "BackendError", "BackendUnavailable", "Runner", "availability",
           "cache_root", "check_inputs", "create_runner", "graph_fingerprint", "onnx_for"]
