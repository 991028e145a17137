"""int8 quantisation of an exported graph's convolutions (ONNX Runtime's static
quantisation, QDQ format), for the CPU back-ends (``int8=True`` on the ``onnxruntime`` and
``openvino`` runners).

Weights are quantised per output channel (signed 8 bits), activations per tensor (unsigned
8 bits) with ranges measured on calibration frames: frames of the given frame dumps (use
training data, never the held-out dumps you will judge it on), or by default synthetic
frames (:mod:`stss_runtime.synthetic`) run through the runtime's history, so that the warps,
masks and colours have the ranges the graph sees at run time. Only ``Conv`` nodes are
quantised: the warps (``GridSample``), the attention and the output shift stay float.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .graphs import GraphSpec

#: Calibration frames per render size (even: rendered and extrapolated frames alternate).
CALIBRATION_FRAMES = 16
#: The render size calibration frames are made at when they are synthetic.
CALIBRATION_SIZE = (320, 184)
#: In the cached file's name: a change to how calibration inputs are made re-quantises.
CALIBRATION_VERSION = 2


def calibration_inputs(spec: GraphSpec, dumps: Sequence[str | Path] = (), frames: int = CALIBRATION_FRAMES,
                       size: tuple[int, int] = CALIBRATION_SIZE) -> list[dict[str, np.ndarray]]:
    """Graph inputs for calibration: for the ``stss`` graph (and ``stss_fused``, the history
    in the graph), what the pass hands its graph for ``frames`` display frames of each dump in
    ``dumps`` (or of synthetic frames of ``size`` (width, height) when none is given), the
    pass running on torch so the history moves on; for other graphs, their example inputs."""
    if spec.name not in ("stss", "stss_fused"):
        return [{k: v.numpy() for k, v in spec.example_inputs(size[1], size[0], seed=i).items()}
                for i in range(4)]
    from .passes.stss import StssPass
    from .passes.stss_fused import StssFusedPass

    p = StssPass(model=spec.module.stss) if spec.name == "stss" else StssFusedPass(model=spec.module.frame.stss)
    out = []
    for seq in _frame_sources(dumps, frames, size):
        seq = list(seq)
        p.setup(seq[0].size, (2 * seq[0].size[0], 2 * seq[0].size[1]))
        with torch.inference_mode():
            for f in seq:
                inputs = p.prepare(f)
                out.append({k: v.contiguous().numpy().copy() for k, v in inputs.items()})
                p.run(inputs)
    return out


def _frame_sources(dumps, frames, size) -> Iterable:
    if not dumps:
        from .synthetic import synthetic_frames

        yield synthetic_frames(size, frames)
        return
    from . import framedump
    from .frame import frame_from_dump

    for folder in dumps:
        meta = framedump.read_meta(folder)
        n = min(frames, len(framedump.existing_frames(folder)))
        yield (frame_from_dump(framedump.read_frame(folder, i), meta, i, shaded=(i % 2 == 0)) for i in range(n))


class _Reader:
    """ONNX Runtime's calibration data reader over a list of input dicts."""

    def __init__(self, samples):
        self._it = iter(samples)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # some ORT versions rewind between passes; one pass is all we use
        pass


def quantized_onnx(spec: GraphSpec, onnx_path: str | Path, dumps: Sequence[str | Path] = ()) -> Path:
    """The int8 (QDQ) version of ``onnx_path``, quantised once and cached beside it (the file
    name says which calibration data it used)."""
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as e:  # a dependency of record
        from .backends.base import BackendUnavailable

        raise BackendUnavailable(f"int8: needs onnxruntime's quantisation tools ({e}); pip install onnxruntime") from e
    onnx_path = Path(onnx_path)
    tag = "synthetic" if not dumps else hashlib.sha256(
        "|".join(str(Path(d).resolve()) for d in dumps).encode()).hexdigest()[:8]
    out = onnx_path.with_name(f"{onnx_path.stem}-int8-{tag}-c{CALIBRATION_VERSION}.onnx")
    if out.exists():
        return out
    pre = out.with_name(out.name + ".pre.onnx")
    tmp = out.with_name(out.name + ".tmp")
    try:
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(tmp), _Reader(calibration_inputs(spec, dumps)), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
        tmp.replace(out)
    finally:
        for f in (pre, tmp):
            f.unlink(missing_ok=True)
    return out
