"""An exportable graph of the per-frame work: the backward warps of the stored frames and
the STSS network, so a compiled back-end runs both (ONNX ``GridSample``, no custom ops).

The runtime's :class:`~stss_runtime.history.History` decides *what* to warp (chained
motion fields, jitter offsets, hole tests on depth/ids/normals); this module performs the
warps and the network on the tensors it hands over:

- ``last``: (1, 3, h, w) the last shaded frame's encoded colour; ``last_offset`` (1, 2, h, w)
  where each pixel reads it (pixels); ``last_valid`` (1, 1, h, w) its hole mask;
  ``bg_offset`` the background-motion offsets used to fill the holes;
- ``stored``: (1, 9, h, w) three stored frames' colours, oldest first; ``stored_offset``
  (1, 6, h, w); ``stored_valid`` (1, 3, h, w);
- ``feature``: (1, 9, h, w) G-buffer features; ``shaded``: (1, 1, 1, 1) 1 for a rendered
  frame, whose ``current`` colour (1, 3, h, w) is then used instead of the warped one.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

INPUT_NAMES = ("current", "shaded", "last", "last_offset", "last_valid", "bg_offset",
               "stored", "stored_offset", "stored_valid", "feature")


def warp_in_graph(src: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Bilinear backward warp (border clamp), as :func:`stss_runtime.warp.sample`, written
    with shape-derived grids so it traces for any size."""
    n, _, h, w = offset.shape
    ys = (torch.arange(h, device=offset.device, dtype=offset.dtype) + 0.5).view(1, h, 1)
    xs = (torch.arange(w, device=offset.device, dtype=offset.dtype) + 0.5).view(1, 1, w)
    gx = (xs + offset[:, 0]) * (2.0 / w) - 1.0
    gy = (ys + offset[:, 1]) * (2.0 / h) - 1.0
    return F.grid_sample(src, torch.stack([gx, gy], dim=-1), mode="bilinear",
                         padding_mode="border", align_corners=False)


class WarpAndStss(nn.Module):
    """Warps + STSS in one graph; output (1, 3, 2h, 2w) encoded colour."""

    def __init__(self, stss: nn.Module):
        super().__init__()
        self.stss = stss

    def forward(self, current, shaded, last, last_offset, last_valid, bg_offset,
                stored, stored_offset, stored_valid, feature):
        plain = warp_in_graph(last, last_offset)
        filled = last_valid * plain + (1.0 - last_valid) * warp_in_graph(last, bg_offset)
        x = shaded * torch.cat([current, current], 1) + (1.0 - shaded) * torch.cat([filled, plain], 1)
        mask = shaded + (1.0 - shaded) * last_valid
        hist = []
        for k in range(3):
            c = warp_in_graph(stored[:, 3 * k:3 * k + 3], stored_offset[:, 2 * k:2 * k + 2])
            hist += [c * stored_valid[:, k:k + 1], stored_valid[:, k:k + 1]]
        return self.stss(x, feature, mask, torch.cat(hist, 1))

    @staticmethod
    def example_inputs(h: int, w: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(0)
        r = lambda c: torch.rand((1, c, h, w), generator=g)  # noqa: E731
        off = lambda c: (torch.rand((1, c, h, w), generator=g) - 0.5) * 6  # noqa: E731
        valid = lambda c: (torch.rand((1, c, h, w), generator=g) > 0.2).float()  # noqa: E731
        return (r(3), torch.zeros((1, 1, 1, 1)), r(3), off(2), valid(1), off(2), r(9), off(6),
                valid(3), r(9))


def export_onnx(model: nn.Module, path: str | Path, h: int, w: int, opset: int = 17) -> Path:
    """Write ``WarpAndStss(model)`` as ONNX (legacy exporter, dynamic height/width)."""
    path = Path(path)
    graph = WarpAndStss(model).eval()
    dyn = {name: {2: "h", 3: "w"} for name in INPUT_NAMES if name != "shaded"}
    dyn["output"] = {2: "H", 3: "W"}
    with torch.no_grad():
        torch.onnx.export(graph, WarpAndStss.example_inputs(h, w), str(path), opset_version=opset,
                          input_names=list(INPUT_NAMES), output_names=["output"],
                          dynamic_axes=dyn, dynamo=False)
    return path
