"""Tier 1 of the motion pass: a classical optical flow (OpenCV's DIS, no weights) started
from the prior motion, run only on the region of low-credibility tiles, and fused with the
prior by the credibility mask.
"""

from __future__ import annotations

import numpy as np
import torch

from ..frame import Frame
from ..ops.encoding import encode_color
from .credibility import jitter_delta

PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def _gray8(color: torch.Tensor) -> np.ndarray:
    """Linear colour (1, 3, h, w) -> 8-bit luma of the display-encoded colour (h, w)."""
    e = encode_color(color)[0]
    y = 0.2126 * e[0] + 0.7152 * e[1] + 0.0722 * e[2]
    return (y.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


class DisFlow:
    """OpenCV DIS optical flow between two frames' colours, in the motion convention."""

    def __init__(self, preset: str = "medium"):
        import cv2

        if preset not in PRESETS:
            raise ValueError(f"DisFlow: preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self._cv2 = cv2
        self.dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def __call__(self, cur: Frame, prev: Frame, init: torch.Tensor | None = None,
                 region: tuple[int, int, int, int] | None = None) -> torch.Tensor:
        """Motion (1, 2, h, w), render px, previous minus current, jitter excluded: DIS from
        ``cur``'s colour to ``prev``'s, started from ``init`` (motion convention) when given.
        Only ``region`` (x0, y0, x1, y1) is estimated; outside it the result is ``init``
        (or 0)."""
        for name, f in (("cur", cur), ("prev", prev)):
            if f.color is None:
                raise ValueError(f"DisFlow: {name}.color is None; tier 1 estimates motion from "
                                 f"colour, so both frames must be shaded")
        h, w = cur.depth.shape[-2:]
        delta = jitter_delta(cur, prev)
        base = init if init is not None else torch.zeros(1, 2, h, w, dtype=torch.float32, device=cur.depth.device)
        x0, y0, x1, y1 = region if region is not None else (0, 0, w, h)
        if x1 - x0 < 8 or y1 - y0 < 8:  # DIS needs a few pixels to work with
            return base.clone()
        a = np.ascontiguousarray(_gray8(cur.color)[y0:y1, x0:x1])
        b = np.ascontiguousarray(_gray8(prev.color)[y0:y1, x0:x1])
        # image flow between the jittered colours = motion + jitter delta
        flow0 = (base + delta)[0, :, y0:y1, x0:x1].permute(1, 2, 0).cpu().numpy().astype(np.float32)
        flow0 = np.ascontiguousarray(flow0)
        # DIS starts from the flow it is handed when that has the images' size (float32, 2 ch)
        flow = self.dis.calc(a, b, flow0 if init is not None else None)
        out = base.clone()
        est = torch.from_numpy(flow).permute(2, 0, 1).unsqueeze(0).to(out) - delta
        out[:, :, y0:y1, x0:x1] = est
        return out
