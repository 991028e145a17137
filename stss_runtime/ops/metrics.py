"""Image-quality metrics of the published evaluation protocol (``shared/STSS.md``, "Evaluation").

Every metric is computed on **display-referred 8-bit images**: linear colour goes through
:func:`~stss_runtime.ops.encoding.display_transform` (THE display transform of
``shared/CONVENTIONS.md``: Reinhard, sRGB, 8 bits) first. Three metrics, each over three pixel regions:

* **PSNR** and **SSIM** on the Y (luma) channel of YCbCr, see :func:`rgb_to_y`;
* **FLIP** (LDR, sRGB inputs), the perceptual error of ``flip-evaluator``;
* regions: ``"all"`` pixels, ``"edge"`` pixels (:func:`edge_mask`: Canny edges of the
  ground truth) and ``"hole"`` pixels (the extrapolation's disocclusion mask, when given).

Typical use::

    ref, test = display_transform(gt_linear), display_transform(output_linear)
    acc = MetricAccumulator()
    acc.add(evaluate_pair(ref, test, hole_mask))   # once per frame
    acc.mean()   # {"all": {"psnr": .., "ssim": .., "flip": ..}, "edge": {...}, "hole": {...}}

Conventions chosen here (all documented at the function that applies them):

* Y is BT.601 "studio swing" luma as in MATLAB's ``rgb2ycbcr`` (16..235), kept in float64
  (not re-quantised); PSNR uses a peak of 255 -- the usual super-resolution-paper setup.
* SSIM is the Wang et al. (2004) formulation: 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, L = 255, population (co)variances. The SSIM map is computed at every pixel
  (window reflected at the image border) so regions touching the border -- e.g.
  disocclusion holes at the screen edge -- are measured too; the mean over the interior
  (5-pixel border excluded) equals ``skimage.metrics.structural_similarity``.
* Averages over frames (:class:`MetricAccumulator`) are plain means of per-frame values;
  for PSNR that is the mean of per-frame dB values (not the PSNR of the mean MSE), with
  infinite PSNR (a frame identical on the region) clamped to :data:`PSNR_CLAMP_DB`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import scipy.ndimage as ndi

__all__ = [
    "REGIONS", "METRICS", "FRAME_KINDS", "PSNR_CLAMP_DB",
    "EDGE_SIGMA", "EDGE_LOW_STEP", "EDGE_HIGH_STEP",
    "rgb_to_y", "psnr_y", "ssim_y", "ssim_map_y", "flip", "flip_map",
    "edge_mask", "evaluate_pair", "MetricAccumulator", "format_table",
]

#: Pixel regions every metric is reported over.
REGIONS: tuple[str, ...] = ("all", "edge", "hole")
#: Metrics, in table order.
METRICS: tuple[str, ...] = ("psnr", "ssim", "flip")
#: Frame kinds of the STSS sequence: supersampled (even) and extrapolated (odd) frames.
FRAME_KINDS: tuple[str, ...] = ("sf", "ef")

#: PSNR (dB) an identical frame (infinite PSNR) counts as when averaging over frames.
PSNR_CLAMP_DB = 100.0

# SSIM constants (Wang et al. 2004).
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5           # 11x11 window: int(3.5 * 1.5 + 0.5) as in skimage / MATLAB
_SSIM_L = 255.0
_SSIM_C1 = (0.01 * _SSIM_L) ** 2
_SSIM_C2 = (0.03 * _SSIM_L) ** 2

#: Canny's Gaussian pre-smoothing (pixels) for :func:`edge_mask`.
EDGE_SIGMA = 1.0
#: Canny hysteresis thresholds of :func:`edge_mask`, expressed as the height (in Y levels,
#: 0..255 scale) of a sharp step edge whose gradient peak just reaches the threshold.
#: Edges weaker than ``EDGE_LOW_STEP`` are never edges; a connected edge chain is kept
#: only if somewhere it is at least as strong as an ``EDGE_HIGH_STEP`` step.
EDGE_LOW_STEP = 8.0
EDGE_HIGH_STEP = 20.0


# ---------------------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------------------

def rgb_to_y(img_u8: np.ndarray) -> np.ndarray:
    """Y (luma) of YCbCr from 8-bit RGB (..., 3), float64, in [16, 235].

    ITU-R BT.601 studio-swing luma exactly as MATLAB's ``rgb2ycbcr``:
    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1] (here
    ``R = r / 255`` for 8-bit ``r``), so black -> 16 and white -> 235. This is the usual
    convention of super-resolution papers ("PSNR on the Y channel"). The result is *not*
    re-quantised to 8 bits.
    """
    img = np.asarray(img_u8)
    if img.shape[-1:] != (3,):
        raise ValueError(f"rgb_to_y: expected (..., 3) RGB, got shape {img.shape}")
    rgb = img.astype(np.float64) / 255.0
    return 16.0 + rgb @ np.array([65.481, 128.553, 24.966])


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

def _check_pair(ref_u8: np.ndarray, test_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, test = np.asarray(ref_u8), np.asarray(test_u8)
    if ref.shape != test.shape or ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError(
            f"expected two (H, W, 3) images of the same shape, got {ref.shape} and {test.shape}")
    if ref.dtype != np.uint8 or test.dtype != np.uint8:
        raise TypeError(
            f"expected display-referred uint8 images (see ops.encoding.display_transform), got {ref.dtype} and "
            f"{test.dtype}")
    return ref, test


def _check_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} does not match the image's {shape}")
    return m.astype(bool, copy=False)


def _masked_mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Mean of a per-pixel map over ``mask`` (all pixels if None); NaN for an empty mask."""
    if mask is None:
        return float(values.mean(dtype=np.float64))
    n = int(np.count_nonzero(mask))
    if n == 0:
        return math.nan
    return float(values[mask].mean(dtype=np.float64))


def _psnr_from_sq_err(sq_err: np.ndarray, mask: np.ndarray | None) -> float:
    mse = _masked_mean(sq_err, mask)
    if math.isnan(mse):
        return math.nan
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0 ** 2 / mse)


def _gaussian_kernel_1d(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


_SSIM_KERNEL = _gaussian_kernel_1d(_SSIM_SIGMA, _SSIM_RADIUS)


def _ssim_map_from_y(y_ref: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two float64 Y images (Wang et al. 2004, see :func:`ssim_y`)."""
    # The five local moments in one stack, filtered separably along the two image axes.
    stack = np.stack([y_ref, y_test, y_ref * y_ref, y_test * y_test, y_ref * y_test])
    for axis in (1, 2):
        stack = ndi.correlate1d(stack, _SSIM_KERNEL, axis=axis, mode="reflect")
    mx, my, mxx, myy, mxy = stack
    vx = mxx - mx * mx
    vy = myy - my * my
    vxy = mxy - mx * my
    num = (2.0 * mx * my + _SSIM_C1) * (2.0 * vxy + _SSIM_C2)
    den = (mx * mx + my * my + _SSIM_C1) * (vx + vy + _SSIM_C2)
    return num / den


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------

def psnr_y(ref_u8: np.ndarray, test_u8: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR (dB) on Y (:func:`rgb_to_y`) over ``mask``'s pixels (all if None), peak 255.

    ``10 log10(255^2 / MSE)``. Identical pixels give ``math.inf``; an empty mask ``math.nan``.
    """
    ref, test = _check_pair(ref_u8, test_u8)
    m = _check_mask(mask, ref.shape[:2])
    d = rgb_to_y(ref) - rgb_to_y(test)
    return _psnr_from_sq_err(d * d, m)


def ssim_map_y(ref_u8: np.ndarray, test_u8: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM map (H, W), float64, on Y; see :func:`ssim_y` for the formulation."""
    ref, test = _check_pair(ref_u8, test_u8)
    return _ssim_map_from_y(rgb_to_y(ref), rgb_to_y(test))


def ssim_y(ref_u8: np.ndarray, test_u8: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM on Y (:func:`rgb_to_y`) over ``mask``'s pixels (all if None).

    Wang et al. (2004): 11x11 Gaussian window with sigma 1.5 (normalised), K1 = 0.01,
    K2 = 0.03, L = 255, population (not sample) (co)variances -- the same map as
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, full=True)``. The map is defined at every
    pixel (the window is reflected at the border) and averaged over the mask; skimage's
    scalar instead averages only the interior (5-pixel border cropped). Identical images
    give 1.0; an empty mask gives NaN.
    """
    ref, test = _check_pair(ref_u8, test_u8)
    m = _check_mask(mask, ref.shape[:2])
    return _masked_mean(_ssim_map_from_y(rgb_to_y(ref), rgb_to_y(test)), m)


def flip_map(ref_u8: np.ndarray, test_u8: np.ndarray) -> np.ndarray:
    """Per-pixel FLIP error (H, W), float32 in [0, 1]: LDR, sRGB inputs, default 67 PPD."""
    import flip_evaluator  # deferred: a compiled extension, only needed here

    ref, test = _check_pair(ref_u8, test_u8)
    r = np.ascontiguousarray(ref, dtype=np.float32) / np.float32(255.0)
    t = np.ascontiguousarray(test, dtype=np.float32) / np.float32(255.0)
    error_map, _, _ = flip_evaluator.evaluate(r, t, "LDR", inputsRGB=True, applyMagma=False,
                                              computeMeanError=False)
    return np.asarray(error_map).reshape(ref.shape[:2])


def flip(ref_u8: np.ndarray, test_u8: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean FLIP error (LDR, sRGB inputs in [0, 1]) over ``mask``'s pixels (all if None).

    The full-image FLIP map is computed (FLIP filters spatially, so pixels near the mask
    still influence it) and averaged over the mask. Identical images give 0.0; an empty
    mask gives NaN. Lower is better.
    """
    ref, test = _check_pair(ref_u8, test_u8)
    m = _check_mask(mask, ref.shape[:2])
    return _masked_mean(flip_map(ref, test), m)


# ---------------------------------------------------------------------------------------
# Edge pixels
# ---------------------------------------------------------------------------------------

def _canny_step_gain(sigma: float) -> float:
    """Peak gradient magnitude skimage's Canny reports for a unit sharp step.

    Canny smooths with a Gaussian (truncated at 4 sigma), then takes Sobel derivatives
    (``[1, 2, 1]`` across times ``[-1, 0, 1]`` along, unnormalised). Along a straight
    step between two pixel columns the peak is ``4 * (g[0] + g[1])`` with ``g`` the
    normalised discrete Gaussian (2.56 at sigma 1).
    """
    radius = int(4.0 * sigma + 0.5)
    g = _gaussian_kernel_1d(sigma, radius)
    return 4.0 * float(g[radius] + g[radius + 1])


def edge_mask(ref_u8: np.ndarray) -> np.ndarray:
    """Edge pixels of the ground truth (H, W) bool: Canny edges of its Y, dilated 3x3.

    ``skimage.feature.canny`` on :func:`rgb_to_y` (0..255 scale) with
    ``sigma = EDGE_SIGMA`` (1.0 px) and hysteresis thresholds equivalent to sharp luma
    steps of ``EDGE_LOW_STEP`` (8) and ``EDGE_HIGH_STEP`` (20) Y levels: geometric and
    texture edges of rendered (anti-aliased) images are found, smooth shading and
    residual sampling noise are not. Absolute thresholds (not quantiles) so that a flat
    frame has no edge pixels and a busy frame is not cut to a fixed fraction. The image
    border is handled by edge replication, so the frame's border is not an edge. Canny
    marks one pixel per edge; the 3x3 dilation makes the mask cover both sides of it.
    """
    from skimage.feature import canny  # deferred: importing skimage.feature is slow

    ref = np.asarray(ref_u8)
    if ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError(f"edge_mask: expected an (H, W, 3) image, got shape {ref.shape}")
    gain = _canny_step_gain(EDGE_SIGMA)
    edges = canny(rgb_to_y(ref), sigma=EDGE_SIGMA, low_threshold=EDGE_LOW_STEP * gain,
                  high_threshold=EDGE_HIGH_STEP * gain, mode="nearest")
    return ndi.binary_dilation(edges, structure=np.ones((3, 3), dtype=bool))


# ---------------------------------------------------------------------------------------
# One frame, all regions
# ---------------------------------------------------------------------------------------

def evaluate_pair(ref_u8: np.ndarray, test_u8: np.ndarray,
                  hole_mask: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """All metrics of one frame over all, edge and hole pixels.

    ``ref_u8`` is the ground truth, ``test_u8`` the method's output, both (H, W, 3) uint8
    at display resolution; ``hole_mask`` (H, W) bool, True = hole pixel. Returns
    ``{"all": {"psnr", "ssim", "flip"}, "edge": {...}, "hole": {...}}`` of floats; the
    "hole" values are NaN when ``hole_mask`` is None or empty, the "edge" values NaN when
    the ground truth has no edges. The Y images, the squared-error, SSIM and FLIP maps
    are computed once and averaged over each region.
    """
    ref, test = _check_pair(ref_u8, test_u8)
    hole = _check_mask(hole_mask, ref.shape[:2])
    y_ref, y_test = rgb_to_y(ref), rgb_to_y(test)
    d = y_ref - y_test
    sq_err = d * d
    ssim_map = _ssim_map_from_y(y_ref, y_test)
    fmap = flip_map(ref, test)
    edges = edge_mask(ref)

    regions: dict[str, np.ndarray | None] = {"all": None, "edge": edges, "hole": hole}
    out: dict[str, dict[str, float]] = {}
    for name, m in regions.items():
        if name == "hole" and (m is None or not m.any()):
            out[name] = {k: math.nan for k in METRICS}
            continue
        out[name] = {
            "psnr": _psnr_from_sq_err(sq_err, m),
            "ssim": _masked_mean(ssim_map, m),
            "flip": _masked_mean(fmap, m),
        }
    return out


# ---------------------------------------------------------------------------------------
# Averaging over frames
# ---------------------------------------------------------------------------------------

@dataclass
class MetricAccumulator:
    """Per-frame results of one method and frame kind; :meth:`mean` averages them.

    Each (region, metric) is averaged over the frames where it is defined: NaN values
    (e.g. a frame without holes) are skipped. PSNR is averaged as the mean of per-frame dB
    values (the usual convention of supersampling papers, not the PSNR of the pooled MSE);
    an infinite per-frame PSNR (the region is identical) counts as ``PSNR_CLAMP_DB``
    (100 dB) so one perfect frame does not make the mean infinite.
    """

    values: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {r: {k: [] for k in METRICS} for r in REGIONS})
    frames: int = 0

    def add(self, result: Mapping[str, Mapping[str, float]]) -> None:
        """Add one frame's :func:`evaluate_pair` result (missing entries count as NaN)."""
        for region in REGIONS:
            entry = result.get(region, {})
            for metric in METRICS:
                v = entry.get(metric, math.nan)
                v = math.nan if v is None else float(v)
                if metric == "psnr" and math.isinf(v) and v > 0:
                    v = PSNR_CLAMP_DB
                self.values[region][metric].append(v)
        self.frames += 1

    def count(self, region: str, metric: str) -> int:
        """Number of frames where ``region``/``metric`` is defined (not NaN)."""
        return sum(1 for v in self.values[region][metric] if not math.isnan(v))

    def mean(self) -> dict[str, dict[str, float]]:
        """``{region: {metric: mean over the non-NaN frames}}``; NaN where there are none."""
        out: dict[str, dict[str, float]] = {}
        for region in REGIONS:
            out[region] = {}
            for metric in METRICS:
                vals = [v for v in self.values[region][metric] if not math.isnan(v)]
                out[region][metric] = math.fsum(vals) / len(vals) if vals else math.nan
        return out


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------

_DECIMALS = {"psnr": 2, "ssim": 4, "flip": 4}
_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "flip": False}
_CELL = 9      # width of one value cell, including the best mark


def _as_float(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _fmt_value(v: float, metric: str) -> str:
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{_DECIMALS[metric]}f}"


def format_table(results: Mapping[str, Any]) -> str:
    """Render evaluation results as a fixed-width text table (pure function).

    ``results``: ``{"frames": {"sf": N, "ef": M}, "methods": {METHOD: {"sf": {"all":
    {"psnr", "ssim", "flip"}, "edge": {...}, "hole": {...}}, "ef": {...}}}}``. One row per
    method and frame kind (SF rows first, then EF; with more generated frames per rendered
    one, the kinds ``results["frames"]`` lists, e.g. ``ef1`` .. ``ef3``, in that order),
    columns PSNR / SSIM / FLIP over all,
    edge and hole pixels. NaN, None or missing values show as "-". In each column, the
    best value among the methods *of the same frame kind* (highest PSNR / SSIM, lowest
    FLIP, compared at the printed precision, ties all marked) is marked with '*' when at
    least two methods have a value there.
    """
    methods: Mapping[str, Any] = results.get("methods", {}) or {}
    frames: Mapping[str, Any] = results.get("frames", {}) or {}
    names = list(methods)
    kinds = tuple(frames) if frames and set(frames) - set(FRAME_KINDS) else FRAME_KINDS
    name_w = max([len("method")] + [len(str(n)) for n in names])
    columns = [(r, k) for r in REGIONS for k in METRICS]

    def value(method: str, kind: str, region: str, metric: str) -> float:
        per_kind = methods.get(method, {}) or {}
        per_region = (per_kind.get(kind, {}) or {}).get(region, {}) or {}
        return _as_float(per_region.get(metric))

    # best printed value per (kind, column)
    best: dict[tuple[str, str, str], str] = {}
    for kind in kinds:
        for region, metric in columns:
            vals = [value(n, kind, region, metric) for n in names]
            vals = [v for v in vals if not math.isnan(v)]
            if len(vals) < 2:
                continue
            pick = max(vals) if _HIGHER_IS_BETTER[metric] else min(vals)
            best[(kind, region, metric)] = _fmt_value(pick, metric)

    group_w = len(METRICS) * _CELL
    prefix_w = name_w + 2 + 4       # name, gap, kind
    head1 = " " * prefix_w + "".join(
        " | " + f"{region} pixels".center(group_w) for region in REGIONS)
    head2 = f"{'method':<{name_w}}  kind" + "".join(
        " | " + "".join(f"{m.upper():>{_CELL}}" for m in METRICS) for _ in REGIONS)
    rule = "-" * len(head2)

    lines = []
    counts = ", ".join(f"{k.upper()} {frames[k]}" for k in kinds if k in frames)
    if counts:
        lines.append(f"frames: {counts}")
    lines += [head1, head2, rule]
    for kind in kinds:
        for name in names:
            cells = []
            for region in REGIONS:
                group = ""
                for metric in METRICS:
                    text = _fmt_value(value(name, kind, region, metric), metric)
                    mark = "*" if text != "-" and best.get((kind, region, metric)) == text else " "
                    group += f"{text + mark:>{_CELL}}"
                cells.append(" | " + group)
            lines.append(f"{str(name):<{name_w}}  {kind.upper():<4}" + "".join(cells))
        if kind != kinds[-1] and names:
            lines.append(rule)
    lines.append("* best among methods for that frame kind (PSNR [dB], SSIM: higher is better;"
                 " FLIP: lower is better); - = not available")
    return "\n".join(lines)
