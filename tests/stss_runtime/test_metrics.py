"""Tests of stss_runtime.ops.metrics (the published evaluation protocol). Small images: fast."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stss_runtime.ops import metrics as M
from stss_runtime.ops.encoding import display_transform

Y_GAIN = (65.481 + 128.553 + 24.966) / 255.0   # Y change per 8-bit step on R = G = B


def gray(h: int, w: int, value: int) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def textured(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth-ish random colour image with values well inside (0, 255)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 190, size=(h // 8, w // 8, 3))
    img = np.kron(base, np.ones((8, 8, 1)))
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def square(h: int = 64, w: int = 64, lo: int = 30, hi: int = 220,
           box: tuple[int, int, int, int] = (20, 44, 20, 44)) -> np.ndarray:
    img = gray(h, w, lo)
    y0, y1, x0, x1 = box
    img[y0:y1, x0:x1] = hi
    return img


# --- colour ---------------------------------------------------------------------------

def test_network_encoding_is_the_display_transform_unquantised():
    """The networks' colour space (torch) and the display transform every metric uses (numpy)
    are the same curve: quantising the one gives the other, and decoding inverts encoding."""
    import torch

    from stss_runtime.ops.encoding import decode_color, encode_color

    lin = np.random.default_rng(1).uniform(0, 4, size=(4, 5, 3)).astype(np.float32)
    enc = encode_color(torch.from_numpy(lin)).numpy()
    assert np.abs(np.round(enc * 255.0) - display_transform(lin).astype(np.float64)).max() <= 1
    assert np.mean(np.round(enc * 255.0) == display_transform(lin)) > 0.99
    np.testing.assert_allclose(decode_color(torch.from_numpy(enc)).numpy(), lin, rtol=1e-3, atol=1e-4)


def test_rgb_to_y_known_values():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]],
                  dtype=np.uint8)
    y = M.rgb_to_y(px)
    assert y.dtype == np.float64 and y.shape == (1, 5)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966],
                               atol=1e-9)


# --- PSNR -----------------------------------------------------------------------------

def test_psnr_constant_offset_exact():
    ref, test = gray(16, 16, 100), gray(16, 16, 104)
    expected = 20 * math.log10(255.0 / (4 * Y_GAIN))
    assert M.psnr_y(ref, test) == pytest.approx(expected, abs=1e-9)


def test_psnr_known_noise_level():
    sigma = 10.0
    rng = np.random.default_rng(123)
    n = np.round(rng.normal(0.0, sigma, size=(256, 256)))
    assert np.abs(n).max() < 127 - 10            # no clipping at 0 / 255 around 128
    ref = gray(256, 256, 128)
    test = (128 + n[..., None] * np.ones(3)).astype(np.uint8)   # the same noise on R, G, B
    # Y noise = n * Y_GAIN; rounding to integers adds variance 1/12 (Sheppard).
    expected_mse = Y_GAIN ** 2 * (sigma ** 2 + 1.0 / 12.0)
    expected = 10 * math.log10(255.0 ** 2 / expected_mse)
    assert M.psnr_y(ref, test) == pytest.approx(expected, abs=0.1)


def test_psnr_identical_is_inf_and_mask_selects_pixels():
    ref = textured()
    assert M.psnr_y(ref, ref) == math.inf
    test = ref.copy()
    test[:, 32:] = 255 - test[:, 32:]                 # wrong only on the right half
    mask = np.zeros(ref.shape[:2], bool)
    mask[:, :32] = True
    assert M.psnr_y(ref, test, mask) == math.inf
    assert math.isfinite(M.psnr_y(ref, test, ~mask))
    assert math.isfinite(M.psnr_y(ref, test))
    assert math.isnan(M.psnr_y(ref, test, np.zeros_like(mask)))


# --- SSIM -----------------------------------------------------------------------------

def test_ssim_identical_is_one():
    ref = textured()
    assert M.ssim_y(ref, ref) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_images_by_hand():
    a, b = M.rgb_to_y(gray(1, 1, 90))[0, 0], M.rgb_to_y(gray(1, 1, 140))[0, 0]
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)   # no variance: contrast term = 1
    assert M.ssim_y(gray(24, 24, 90), gray(24, 24, 140)) == pytest.approx(expected, rel=1e-12)


def test_ssim_matches_skimage_reference():
    from skimage.metrics import structural_similarity

    ref = textured(seed=2)
    test = np.clip(ref.astype(int) + np.random.default_rng(3).integers(-20, 21, ref.shape),
                   0, 255).astype(np.uint8)
    y_ref, y_test = M.rgb_to_y(ref), M.rgb_to_y(test)
    mssim, smap = structural_similarity(y_ref, y_test, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=255,
                                        full=True)
    ours = M.ssim_map_y(ref, test)
    np.testing.assert_allclose(ours, smap, atol=1e-10)
    interior = np.zeros(ref.shape[:2], bool)
    interior[5:-5, 5:-5] = True                 # skimage crops the 11x11 window's radius
    assert M.ssim_y(ref, test, interior) == pytest.approx(mssim, abs=1e-10)


def test_ssim_decreases_with_noise():
    ref = textured(seed=4)
    rng = np.random.default_rng(5)
    values = []
    for sigma in (2, 8, 25):
        noisy = np.clip(np.round(ref + rng.normal(0, sigma, ref.shape)), 0, 255)
        values.append(M.ssim_y(ref, noisy.astype(np.uint8)))
    assert 1.0 > values[0] > values[1] > values[2]


# --- FLIP -----------------------------------------------------------------------------

def test_flip_identical_is_zero():
    ref = textured()
    assert M.flip(ref, ref) == 0.0


def test_flip_grows_with_corruption_and_masks():
    ref = textured(seed=6)
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, ref.shape)
    values = [M.flip(ref, np.clip(np.round(ref + s * noise), 0, 255).astype(np.uint8))
              for s in (3, 10, 30)]
    assert 0.0 < values[0] < values[1] < values[2] <= 1.0

    test = ref.copy()
    test[:, 40:] = 255 - test[:, 40:]
    left = np.zeros(ref.shape[:2], bool)
    left[:, :24] = True                        # far from the corrupted region
    assert M.flip(ref, test, left) < 0.02
    assert M.flip(ref, test, ~left) > 0.2
    assert math.isnan(M.flip(ref, test, np.zeros_like(left)))
    fmap = M.flip_map(ref, test)
    assert fmap.shape == ref.shape[:2]
    assert M.flip(ref, test, ~left) == pytest.approx(float(fmap[~left].mean()), rel=1e-6)


# --- edges ----------------------------------------------------------------------------

def test_edge_mask_finds_square_boundary_only():
    y0, y1, x0, x1 = 20, 44, 20, 44
    img = square(box=(y0, y1, x0, x1))
    edges = M.edge_mask(img)
    assert edges.dtype == bool and edges.shape == img.shape[:2]
    # distance (Chebyshev) of each pixel to the boundary between inside and outside
    yy, xx = np.mgrid[0:64, 0:64]
    inside = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
    from scipy.ndimage import distance_transform_cdt
    dist = np.minimum(distance_transform_cdt(inside, metric="chessboard"),
                      distance_transform_cdt(~inside, metric="chessboard"))
    # dist == 1: the pixels touching the boundary on either side
    assert not edges[dist >= 4].any()          # flat interior / exterior, image border
    # both sides of every straight boundary segment (away from corners) are edge pixels
    mid = slice(y0 + 3, y1 - 3)
    assert edges[mid, x0 - 1].all() and edges[mid, x0].all()
    assert edges[mid, x1 - 1].all() and edges[mid, x1].all()
    assert edges[y0 - 1, x0 + 3:x1 - 3].all() and edges[y0, x0 + 3:x1 - 3].all()


def test_edge_mask_thresholds():
    assert not M.edge_mask(gray(32, 32, 120)).any()
    weak = square(lo=120, hi=123)               # ~3 Y levels: not an edge
    strong = square(lo=120, hi=150)             # ~26 Y levels: an edge
    assert not M.edge_mask(weak).any()
    assert M.edge_mask(strong).any()


# --- evaluate_pair / accumulation -------------------------------------------------------

def test_evaluate_pair_keys_and_hole_nan():
    ref = square()
    test = np.clip(ref.astype(int) + 6, 0, 255).astype(np.uint8)
    res = M.evaluate_pair(ref, test)
    assert set(res) == {"all", "edge", "hole"}
    for region in res.values():
        assert set(region) == {"psnr", "ssim", "flip"}
        assert all(isinstance(v, float) for v in region.values())
    assert all(math.isnan(v) for v in res["hole"].values())
    assert all(math.isfinite(v) for v in res["all"].values())
    assert all(math.isfinite(v) for v in res["edge"].values())
    assert all(math.isnan(v)
               for v in M.evaluate_pair(ref, test, np.zeros((64, 64), bool))["hole"].values())
    # consistent with the single-metric functions
    assert res["all"]["psnr"] == pytest.approx(M.psnr_y(ref, test))
    assert res["all"]["ssim"] == pytest.approx(M.ssim_y(ref, test))
    assert res["all"]["flip"] == pytest.approx(M.flip(ref, test), rel=1e-6)
    edges = M.edge_mask(ref)
    assert res["edge"]["ssim"] == pytest.approx(M.ssim_y(ref, test, edges))


def test_evaluate_pair_hole_region():
    ref = textured(seed=8)
    test = ref.copy()
    hole = np.zeros(ref.shape[:2], bool)
    hole[10:20, 10:30] = True
    test[hole] = 0
    res = M.evaluate_pair(ref, test, hole)
    assert math.isfinite(res["hole"]["psnr"]) and res["hole"]["psnr"] < res["all"]["psnr"]
    assert res["hole"]["flip"] > res["all"]["flip"]
    assert res["hole"]["ssim"] < res["all"]["ssim"]


def test_evaluate_pair_rejects_bad_inputs():
    with pytest.raises(ValueError):
        M.evaluate_pair(gray(8, 8, 1), gray(8, 9, 1))
    with pytest.raises(TypeError):
        M.psnr_y(gray(8, 8, 1).astype(np.float32), gray(8, 8, 1))
    with pytest.raises(ValueError):
        M.psnr_y(gray(8, 8, 1), gray(8, 8, 1), np.ones((4, 4), bool))


def test_accumulator_ignores_nan_and_clamps_inf():
    acc = M.MetricAccumulator()
    nan3 = {"psnr": math.nan, "ssim": math.nan, "flip": math.nan}
    acc.add({"all": {"psnr": 30.0, "ssim": 0.9, "flip": 0.1}, "edge": nan3,
             "hole": {"psnr": 20.0, "ssim": 0.5, "flip": 0.3}})
    acc.add({"all": {"psnr": math.inf, "ssim": 1.0, "flip": 0.0}, "edge": nan3, "hole": nan3})
    mean = acc.mean()
    assert acc.frames == 2
    assert mean["all"]["psnr"] == pytest.approx((30.0 + M.PSNR_CLAMP_DB) / 2)
    assert mean["all"]["ssim"] == pytest.approx(0.95)
    assert mean["all"]["flip"] == pytest.approx(0.05)
    assert mean["hole"] == pytest.approx({"psnr": 20.0, "ssim": 0.5, "flip": 0.3})
    assert all(math.isnan(v) for v in mean["edge"].values())
    assert acc.count("hole", "psnr") == 1 and acc.count("all", "flip") == 2
    assert all(math.isnan(v) for v in M.MetricAccumulator().mean()["all"].values())


# --- table ----------------------------------------------------------------------------

def _region(psnr, ssim, flip_):
    return {"psnr": psnr, "ssim": ssim, "flip": flip_}


def test_format_table():
    nan = math.nan
    results = {
        "frames": {"sf": 10, "ef": 10},
        "methods": {
            "stss": {
                "sf": {"all": _region(31.25, 0.9123, 0.0712), "edge": _region(27.5, 0.81, 0.12),
                       "hole": _region(nan, nan, nan)},
                "ef": {"all": _region(28.0, 0.88, 0.09), "edge": _region(25.0, 0.77, 0.15),
                       "hole": _region(21.0, 0.61, 0.25)},
            },
            "bilinear": {
                "sf": {"all": _region(29.75, 0.8811, 0.0955), "edge": _region(26.0, 0.83, 0.14),
                       "hole": _region(nan, nan, nan)},
                "ef": {"all": _region(26.0, 0.85, 0.11), "edge": _region(23.0, 0.70, 0.18),
                       "hole": _region(19.0, 0.55, None)},
            },
        },
    }
    table = M.format_table(results)
    lines = table.splitlines()
    rows = {(ln.split()[0], ln.split()[1]): ln for ln in lines
            if ln.split() and ln.split()[0] in ("stss", "bilinear")}
    assert set(rows) == {("stss", "SF"), ("stss", "EF"), ("bilinear", "SF"), ("bilinear", "EF")}
    assert "SF 10" in table and "EF 10" in table
    # best per column within each frame kind
    assert "31.25*" in rows["stss", "SF"] and "29.75*" not in rows["bilinear", "SF"]
    assert "0.0712*" in rows["stss", "SF"]                       # lower FLIP is better
    assert "0.8300*" in rows["bilinear", "SF"]                   # edge SSIM: bilinear wins
    assert "0.8100*" not in rows["stss", "SF"]
    assert "28.00*" in rows["stss", "EF"] and "26.00*" not in rows["bilinear", "EF"]
    # NaN / None shown as '-', never marked
    sf_cells = rows["stss", "SF"].split("|")
    assert sf_cells[3].split() == ["-", "-", "-"]
    assert rows["bilinear", "EF"].split("|")[3].split() == ["19.00", "0.5500", "-"]
    assert "0.2500" in rows["stss", "EF"] and "0.2500*" not in rows["stss", "EF"]
    # fixed width: all table rows equally long
    assert len({len(r) for r in rows.values()}) == 1
    # pure: same input, same output; input untouched
    assert M.format_table(results) == table
    assert results["methods"]["stss"]["sf"]["all"]["psnr"] == 31.25


def test_format_table_single_method_no_marks():
    r = {"all": _region(30.0, 0.9, 0.1), "edge": _region(25.0, 0.8, 0.2),
         "hole": _region(math.nan, math.nan, math.nan)}
    table = M.format_table({"frames": {"sf": 1, "ef": 1},
                            "methods": {"only": {"sf": r, "ef": r}}})
    rows = [ln for ln in table.splitlines() if ln.startswith("only")]
    assert len(rows) == 2 and not any("*" in row for row in rows)
