"""Model contracts at tiny sizes: parameter budget, shapes, validation, ERM, residual, ONNX."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stss_runtime.models import (
    MODEL_PRESETS,
    PRESETS,
    STSS,
    EfficientReshadingModule,
    ExtraNet,
    SupersamplingNet,
    build_model,
    count_macs,
    local_attention,
    scale_channels,
)
from stss_runtime.models.blocks import GatedConv, HistoryEncoder

from .. import installed

SIZE = (32, 48)  # render size of the tiny tests (multiples of 8)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP's
    spin-waiting makes a 4 ms forward take over a second."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def stss_default() -> STSS:
    torch.manual_seed(0)
    return STSS().eval()


# ---------------------------------------------------------------------------- budget


def test_stss_parameter_budget_by_part(stss_default):
    m = stss_default
    assert n_params(m) == 417_241
    assert n_params(m.history_encoder) == 93_033
    assert n_params(m.encoder) == 77_184
    assert n_params(m.erm) == 118_656
    assert n_params(m.decoder) == 128_368
    assert n_params(m.decoder.head) == 24 * 12 + 12
    assert set(dict(m.named_children())) == {"history_encoder", "encoder", "erm", "decoder"}


def test_stss_macs_at_published_size(stss_default):
    macs = count_macs(stss_default, 544, 968)
    assert abs(macs - 31.5e9) / 31.5e9 < 0.10
    # MACs grow with the pixel count (convs only)
    assert count_macs(stss_default, 272, 488) == pytest.approx(macs / 4, rel=0.02)


@pytest.mark.parametrize("family", ["stss", "supersampling", "extranet"])
def test_presets_are_smaller_in_order(family):
    names = [family, f"{family}_small", f"{family}_tiny"]
    counts = [n_params(build_model(name)) for name in names]
    macs = [count_macs(build_model(name), *SIZE) for name in names]
    assert counts[0] > counts[1] > counts[2] > 0
    assert macs[0] > macs[1] > macs[2] > 0


def test_presets_and_build_model():
    assert PRESETS == {"stss": 1.0, "stss_small": 0.5, "stss_tiny": 0.25}
    assert isinstance(build_model("stss"), STSS)
    assert isinstance(build_model("supersampling"), SupersamplingNet)
    assert isinstance(build_model("extranet_tiny"), ExtraNet)
    assert build_model("stss_small").width == 0.5
    with pytest.raises(ValueError, match="unknown model 'stsss'.*stss_tiny"):
        build_model("stsss")


def test_two_stage_parameter_counts():
    # ExtraNet is ~262k in its paper; ours shares STSS's blocks and lands near it.
    assert n_params(ExtraNet()) == 278_704
    assert n_params(SupersamplingNet()) == 278_128


def test_scale_channels():
    assert [scale_channels(c, 1.0) for c in (24, 28, 32, 64)] == [24, 28, 32, 64]
    assert [scale_channels(c, 0.5) for c in (24, 28, 32, 64)] == [12, 16, 16, 32]
    assert [scale_channels(c, 0.25) for c in (24, 28, 32, 64)] == [8, 8, 8, 16]
    assert scale_channels(24, 0.01) == 4
    with pytest.raises(ValueError, match="width"):
        STSS(width=0.0)


# ---------------------------------------------------------------------------- contract


def _expected_shape(model: nn.Module, batch: int, size: tuple[int, int]) -> tuple[int, ...]:
    channels = getattr(model, "OUTPUT_CHANNELS", 3)  # the recurrent network adds its parameters
    return (batch, channels, size[0] * model.SCALE, size[1] * model.SCALE)


# image models only: the motion pass's flow network and policy have their own contract
# (tests/stss_runtime/test_flow_network.py), so has the VFI refiner (tests/stss_runtime/test_vfi.py)
@pytest.mark.parametrize("name", sorted(n for n in MODEL_PRESETS
                                        if n != "flow" and not n.startswith(("flow_policy", "vfi_"))))
def test_output_shape_and_determinism(name):
    model = build_model(name).eval()
    inputs = model.example_inputs(SIZE, batch=2)
    with torch.no_grad():
        out1 = model(*inputs)
        out2 = model(*inputs)
    assert isinstance(out1, torch.Tensor)
    assert out1.shape == _expected_shape(model, 2, SIZE)
    assert torch.isfinite(out1).all()
    assert torch.equal(out1, out2)


@pytest.mark.parametrize("name", ["stss_tiny", "supersampling_tiny", "extranet_tiny"])
def test_train_and_eval_give_the_same_output(name):
    model = build_model(name)
    inputs = model.example_inputs(SIZE)
    with torch.no_grad():
        train_out = model.train()(*inputs)
        eval_out = model.eval()(*inputs)
    assert torch.equal(train_out, eval_out)


def test_every_parameter_gets_a_gradient():
    model = build_model("stss_tiny")
    model(*model.example_inputs((16, 16))).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_batch_items_are_independent():
    model = build_model("stss_tiny").eval()
    inputs = model.example_inputs(SIZE, batch=2)
    with torch.no_grad():
        both = model(*inputs)
        second = model(*(t[1:] for t in inputs))
    torch.testing.assert_close(both[1:], second, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- validation


def _with(inputs, names, name, tensor):
    return tuple(tensor if n == name else t for n, t in zip(names, inputs))


@pytest.mark.parametrize("name", ["x", "feature", "mask", "history"])
@pytest.mark.parametrize("how", ["channels", "size", "batch", "ndim"])
def test_stss_rejects_bad_shapes(name, how):
    model = build_model("stss_tiny")
    names = list(model.INPUT_CHANNELS)
    inputs = model.example_inputs(SIZE, batch=2)
    t = inputs[names.index(name)]
    bad = {"channels": lambda: t[:, :-1] if t.shape[1] > 1 else torch.cat([t, t], 1),
           "size": lambda: t[:, :, :-8],
           "batch": lambda: t[:1],
           "ndim": lambda: t[0]}[how]()
    # x sets B, H and W: a bad batch or size of x shows up on the next argument
    blamed = "feature" if name == "x" and how in ("size", "batch") else name
    with pytest.raises(ValueError, match=rf"STSS\.forward: {blamed} must have shape") as info:
        model(*_with(inputs, names, name, bad))
    if blamed == name:
        assert str(tuple(bad.shape)) in str(info.value)


def test_stss_rejects_non_tensor():
    model = build_model("stss_tiny")
    x, feature, mask, history = model.example_inputs(SIZE)
    with pytest.raises(ValueError, match="mask must be a torch.Tensor"):
        model(x, feature, mask.numpy(), history)


@pytest.mark.parametrize("size", [(30, 48), (32, 44), (36, 36)])
@pytest.mark.parametrize("name", ["stss_tiny", "supersampling_tiny", "extranet_tiny"])
def test_sizes_must_be_multiples_of_8(name, size):
    model = build_model(name)
    with pytest.raises(ValueError, match=rf"multiples of 8, got H={size[0]}, W={size[1]}"):
        model(*model.example_inputs(size))


@pytest.mark.parametrize("name", ["supersampling_tiny", "extranet_tiny"])
def test_two_stage_rejects_bad_shapes(name):
    model = build_model(name)
    names = list(model.INPUT_CHANNELS)
    inputs = model.example_inputs(SIZE)
    bad = inputs[1][:, :8]  # feature with 8 channels
    owner = type(model).__name__
    with pytest.raises(ValueError, match=rf"{owner}\.forward: feature must have shape "
                                         rf"\(B, 9, H, W\) = \(1, 9, 32, 48\).*\(1, 8, 32, 48\)"):
        model(*_with(inputs, names, "feature", bad))


# ---------------------------------------------------------------------------- blocks


def test_gated_conv_is_feature_times_sigmoid_gate():
    conv = GatedConv(5, 7)
    x = torch.randn(2, 5, 8, 8)
    expected = F.relu(conv.feature(x)) * torch.sigmoid(conv.gate(x))
    torch.testing.assert_close(conv(x), expected)
    assert conv.gate.out_channels == 1


def test_history_encoder_shares_weights_and_keeps_frame_order():
    enc = HistoryEncoder(frame_channels=4, num_frames=3, stage_channels=(8, 8, 8),
                         out_channels=8)
    history = torch.rand(2, 12, 16, 24)
    per_frame = [enc.stages(history[:, 4 * k:4 * k + 4]) for k in range(3)]
    expected = enc.fuse(torch.cat(per_frame, dim=1))
    out = enc(history)
    assert out.shape == (2, 8, 2, 3)
    torch.testing.assert_close(out, expected)


# ---------------------------------------------------------------------------- ERM


def _equal_keys(b: int, h: int, w: int, c: int = 4) -> torch.Tensor:
    return F.normalize(torch.ones(b, c, h, w), dim=1)


def test_attention_with_equal_keys_is_a_box_average():
    values = torch.randn(2, 5, 9, 11)
    out = local_attention(_equal_keys(2, 9, 11), values, torch.ones(2, 1, 9, 11))
    # interior pixels: the plain 5x5 mean
    box = F.avg_pool2d(values, 5, stride=1)
    torch.testing.assert_close(out[:, :, 2:-2, 2:-2], box)
    # borders: outside the image the keys are zero, so w = 0: mean over in-image pixels
    torch.testing.assert_close(
        out, F.avg_pool2d(values, 5, stride=1, padding=2, count_include_pad=False))


def test_attention_ignores_masked_neighbours():
    h, w = 9, 9
    keys = _equal_keys(1, h, w)
    values = torch.randn(1, 3, h, w)
    mask = torch.ones(1, 1, h, w)
    mask[..., 4, 5] = 0.0
    out = local_attention(keys, values, mask)
    # pixel (4, 4): its 5x5 window without (4, 5)
    window = values[..., 2:7, 2:7].reshape(3, 25)
    keep = torch.ones(25, dtype=torch.bool)
    keep[2 * 5 + 3] = False
    torch.testing.assert_close(out[0, :, 4, 4], window[:, keep].mean(dim=1))
    # whatever V_j holds, it does not contribute anywhere
    values2 = values.clone()
    values2[..., 4, 5] = 100.0
    torch.testing.assert_close(local_attention(keys, values2, mask), out)


def test_attention_weights_follow_key_similarity():
    # two surfaces with opposite keys: each pixel averages only its own surface
    h, w = 6, 8
    keys = torch.zeros(1, 2, h, w)
    keys[:, 0, :, :4] = 1.0
    keys[:, 0, :, 4:] = -1.0
    values = torch.zeros(1, 1, h, w)
    values[..., :4] = 1.0
    values[..., 4:] = 5.0
    out = local_attention(keys, values, torch.ones(1, 1, h, w))
    torch.testing.assert_close(out, values)
    # a pixel whose neighbourhood is all holes gets 0, not NaN
    out = local_attention(keys, values, torch.zeros(1, 1, h, w))
    assert torch.equal(out, torch.zeros_like(out))


class _Const(nn.Module):
    """Ignores its input and returns a fixed tensor."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


def test_erm_module_masks_values_and_pools_to_one_eighth():
    erm = EfficientReshadingModule(in_channels=8, feature_channels=9, value_channels=6,
                                   key_channels=4)
    h, w = 7, 9  # 1/8 resolution
    v = torch.randn(1, 6, h, w)
    erm.enc_v = _Const(v)
    erm.enc_k = _Const(torch.ones(1, 4, h, w))  # all keys equal after normalisation
    x4 = torch.randn(1, 8, h, w)
    feature = torch.rand(1, 9, 8 * h, 8 * w)
    mask = torch.ones(1, 1, 8 * h, 8 * w)
    box = F.avg_pool2d(v, 5, stride=1, padding=2, count_include_pad=False)
    torch.testing.assert_close(erm(x4, feature, mask), box)
    # one 8x8 block of holes = one masked low-resolution pixel j = (3, 4)
    mask[..., 24:32, 32:40] = 0.0
    out = erm(x4, feature, mask)
    window = v[0, :, 1:6, 2:7].reshape(6, 25)
    keep = torch.ones(25, dtype=torch.bool)
    keep[12] = False  # the centre (3, 4) itself
    torch.testing.assert_close(out[0, :, 3, 4], window[:, keep].mean(dim=1))
    torch.testing.assert_close(out[0, :, 3, 5], v[0, :, 1:6, 3:8].reshape(6, 25)
                               [:, torch.arange(25) != 11].mean(dim=1))
    # a half-covered block weighs its neighbour by the fraction of valid pixels, twice
    # (mask on the key and on the value)
    mask = torch.ones(1, 1, 8 * h, 8 * w)
    mask[..., 24:32, 32:36] = 0.0
    out = erm(x4, feature, mask)
    weights = torch.ones(25)
    weights[12] = 0.5
    vals = v[0, :, 1:6, 2:7].reshape(6, 25).clone()
    vals[:, 12] *= 0.5
    torch.testing.assert_close(out[0, :, 3, 3 + 1],
                               (vals * weights).sum(1) / weights.sum(), rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------------------- residual


def _zero_head(model: nn.Module) -> None:
    with torch.no_grad():
        model.decoder.head.conv.weight.zero_()
        model.decoder.head.conv.bias.zero_()


def test_stss_residual_is_bilinear_upsample_of_x():
    model = build_model("stss_tiny").eval()
    _zero_head(model)
    inputs = model.example_inputs(SIZE)
    with torch.no_grad():
        out = model(*inputs)
    up = F.interpolate(inputs[0][:, :3], scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, up)


def test_two_stage_residuals():
    ss = build_model("supersampling_tiny").eval()
    en = build_model("extranet_tiny").eval()
    _zero_head(ss)
    _zero_head(en)
    color, feature, history = ss.example_inputs(SIZE)
    with torch.no_grad():
        torch.testing.assert_close(
            ss(color, feature, history),
            F.interpolate(color, scale_factor=2, mode="bilinear", align_corners=False))
        x, feature, mask, history = en.example_inputs(SIZE)
        torch.testing.assert_close(en(x, feature, mask, history), x)


# ---------------------------------------------------------------------------- ONNX


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", ["stss_tiny", "stss"])
def test_onnx_export_matches_torch(name, tmp_path):
    onnx = installed.module("onnx")
    ort = installed.module("onnxruntime")
    model = build_model(name).eval()
    names = list(model.INPUT_CHANNELS)
    path = tmp_path / f"{name}.onnx"
    dims = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(model, model.example_inputs(SIZE), str(path), opset_version=17,
                      dynamo=False, input_names=names, output_names=list(model.OUTPUT_NAMES),
                      dynamic_axes={n: dims for n in [*names, *model.OUTPUT_NAMES]})
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert all(node.domain in ("", "ai.onnx") for node in graph.graph.node)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size, batch in [(SIZE, 1), ((24, 40), 2)]:  # the export size and another one
        inputs = model.example_inputs(size, batch=batch)
        with torch.no_grad():
            expected = model(*inputs).numpy()
        (got,) = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
        assert got.shape == expected.shape
        assert abs(got - expected).max() <= 1e-4 * abs(expected).max()
