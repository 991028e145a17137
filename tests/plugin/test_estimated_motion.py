"""Engines without motion vectors: ``pass_name='stss_flow'`` estimates them (the motion pass)."""

from __future__ import annotations

import numpy as np
import pytest

import plugin
from stss_runtime.passes import PASSES


def test_required_inputs_drop_motion_only_for_the_estimating_pass():
    assert "motion" not in plugin.required_inputs("stss_flow")
    assert "motion" in plugin.required_inputs("stss")
    assert "stss_flow" in plugin.capabilities()["passes"]
    assert "motion" not in PASSES["stss_flow"].inputs


def test_stss_flow_runs_without_motion_vectors_and_stss_refuses(dump):
    no_mv = lambda n: dump.frame(n, motion=None, generated=[dump.generated(n, motion=None)])  # noqa: E731
    with plugin.Context(dump.desc(pass_name="stss_flow")) as ctx:
        results = [ctx.dispatch(no_mv(n)) for n in range(3)]
    for r in results:
        assert r.output.shape == (dump.display_size[1], dump.display_size[0], 3)
        assert np.isfinite(r.output).all() and np.isfinite(r.generated[0].color).all()
    # close to STSS fed the renderer's exact motion vectors (the estimate is not exact)
    with plugin.Context(dump.desc(pass_name="stss")) as ctx:
        exact = [ctx.dispatch(dump.frame(n)) for n in range(3)]
    diff = np.abs(results[-1].generated[0].color - exact[-1].generated[0].color).mean()
    scale = np.abs(exact[-1].generated[0].color).mean()
    assert diff < 0.2 * scale, (diff, scale)
    with plugin.Context(dump.desc(pass_name="stss")) as ctx:
        with pytest.raises(plugin.InvalidInputError, match="frame.motion.*stss_flow"):
            ctx.dispatch(no_mv(0))
