"""The context's choice of STSS network (``ContextDescription.network``) and the CPU-only
OpenVINO back-end: refused with a typed error naming the field where they cannot apply,
and the pass really runs the network and back-end asked for."""

from __future__ import annotations

import pytest
import torch

import plugin
from plugin.helpers import NETWORK_PASSES, network_names

from .. import installed


def _desc(**kw):
    return plugin.ContextDescription(max_render_size=(64, 40), display_size=(128, 80), **kw)


def test_networks_are_the_presets_with_shipped_weights():
    caps = plugin.capabilities()
    assert "stss" in caps["networks"] and set(caps["networks"]) == set(network_names())
    assert caps["networks"]["stss"]["parameters"] == 417_241
    assert set(NETWORK_PASSES) <= set(caps["passes"])


def test_a_network_without_weights_is_refused_naming_the_field():
    missing = next(n for n in ("stss_tiny", "stss_small") if n not in network_names())
    with pytest.raises(plugin.UnsupportedError, match="desc.network.*shipped weights"):
        plugin.Context(_desc(pass_name="stss", network=missing))
    with pytest.raises(plugin.InvalidInputError, match="desc.network"):
        plugin.Context(_desc(network=None))


def test_passes_with_fixed_networks_take_only_the_default():
    with pytest.raises(plugin.UnsupportedError, match="desc.network.*'stss' for pass 'bilinear'"):
        plugin.Context(_desc(pass_name="bilinear", network="stss_small"))
    plugin.Context(_desc(pass_name="bilinear")).destroy()


@pytest.mark.parametrize("name", network_names())  # every network with shipped weights
def test_the_pass_runs_the_network_asked_for(name):
    net = plugin.capabilities()["networks"][name]
    for pass_name in ("stss", "stss_taa"):
        with plugin.Context(_desc(pass_name=pass_name, network=name)) as ctx:
            model = ctx.pass_.model
            assert model.width == net["width"], pass_name
            assert sum(p.numel() for p in model.parameters()) == net["parameters"], pass_name


def test_openvino_is_cpu_only_and_runs_the_self_test():
    installed.module("openvino")  # a dependency: installed by make setup
    if not torch.cuda.is_available():  # no GPU: the device itself is refused first
        with pytest.raises(plugin.BackendUnavailableError, match="desc.device"):
            plugin.Context(_desc(backend="openvino", device="cuda"))
    report = plugin.self_test("stss", backend="openvino", size=(64, 40))
    assert report.ok, report
    for precision in ("fp32", "fp16"):
        with plugin.Context(_desc(backend="openvino", precision=precision)) as ctx:
            assert ctx.pass_.backend == "openvino" and ctx.pass_.precision == precision
