"""ONNX export of a graph (:mod:`stss_runtime.graphs`): standard operators only, dynamic
height and width, float32 inputs and outputs at either precision."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

from .graphs import GraphSpec, at_precision

OPSET = 17


def export_onnx(spec: GraphSpec, path: str | Path, h: int = 64, w: int = 96,
                precision: str = "fp32", opset: int = OPSET) -> Path:
    """Write ``spec``'s graph at ``precision`` to ``path`` as ONNX (legacy TorchScript
    exporter; every frame-sized axis dynamic). ``h`` x ``w``: the render size traced (any
    multiple of 8; the file runs at other sizes). The write is atomic.

    The graph is traced on a CPU copy of the module, whatever device the spec's module is
    on (a pass moves its network to its device first): the caller's module is not touched."""
    path = Path(path)
    spec = at_precision(spec, precision)
    module = copy.deepcopy(spec.module).cpu().eval()
    example = spec.example_inputs(h, w)
    # render-resolution axes are h x w, display-resolution ones (twice as large) H x W
    dyn = {name: ({2: "H", 3: "W"} if spec.input_shape(name, 1, 1)[2:] == (2, 2) else {2: "h", 3: "w"})
           for name in spec.input_names if name not in spec.fixed_inputs}
    dyn.update({name: {2: "H", 3: "W"} for name in spec.output_names})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and folding notes
        torch.onnx.export(module, tuple(example[n] for n in spec.input_names), str(tmp),
                          opset_version=opset, input_names=list(spec.input_names),
                          output_names=list(spec.output_names), dynamic_axes=dyn, dynamo=False)
    tmp.replace(path)
    return path
