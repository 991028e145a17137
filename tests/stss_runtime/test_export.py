"""The per-frame graph (warps + STSS) exports to ONNX without custom operators and runs in
ONNX Runtime with the same result as torch; its warp equals the runtime's."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch

from stss_runtime import warp as W
from stss_runtime.export import INPUT_NAMES, WarpAndStss, export_onnx, warp_in_graph
from stss_runtime.models import build_model


def test_graph_warp_equals_runtime_warp():
    g = torch.Generator().manual_seed(1)
    src = torch.rand((1, 3, 24, 40), generator=g)
    off = (torch.rand((1, 2, 24, 40), generator=g) - 0.5) * 10
    assert torch.allclose(warp_in_graph(src, off), W.sample(src, off), atol=1e-6)


def test_warp_and_stss_exports_and_matches_onnx_runtime(tmp_path):
    torch.manual_seed(0)
    model = build_model("stss_tiny").eval()
    path = export_onnx(model, tmp_path / "stss_tiny.onnx", 32, 48)
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    ops = {n.op_type for n in m.graph.node}
    assert "GridSample" in ops
    assert all(n.domain in ("", "ai.onnx") for n in m.graph.node)  # standard operators only
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w, shaded in ((32, 48, 0.0), (24, 40, 1.0)):  # another size: dynamic axes work
        inputs = list(WarpAndStss.example_inputs(h, w))
        inputs[1] = torch.full((1, 1, 1, 1), shaded)
        with torch.no_grad():
            ref = WarpAndStss(model)(*inputs).numpy()
        got = sess.run(None, {n: t.numpy() for n, t in zip(INPUT_NAMES, inputs)})[0]
        assert got.shape == (1, 3, 2 * h, 2 * w)
        assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
