"""Post-process passes behind one interface (:class:`~stss_runtime.passes.base.Pass`)."""

from __future__ import annotations

from .base import Pass, PassError
from .baselines import BASELINES, BicubicUpsample, SpatialUpsample, TemporalUpscaler, WarpFill
from .estimated_motion import EstimatedMotionStssPass
from .stss_pass import StssPass, StssTemporalPass
from .two_stage import TwoStagePass
from .vfi import VFI_PASSES, VfiDensePass, VfiPass

#: Every pass by name.
PASSES: dict[str, type[Pass]] = {"stss": StssPass, "stss_taa": StssTemporalPass, **BASELINES, "two_stage": TwoStagePass,
                               "stss_flow": EstimatedMotionStssPass,
                               **VFI_PASSES}


def create_pass(name: str, **kwargs) -> Pass:
    """A pass by name; ``ValueError`` listing the valid names otherwise."""
    try:
        cls = PASSES[name]
    except KeyError:
        raise ValueError(f"unknown pass {name!r}; valid: {', '.join(PASSES)}") from None
    return cls(**kwargs)


__all__ = ["BASELINES", "PASSES", "BicubicUpsample", "EstimatedMotionStssPass", "Pass", "PassError", "SpatialUpsample",
           "StssPass", "StssTemporalPass", "TemporalUpscaler", "TwoStagePass", "VfiDensePass", "VfiPass", "WarpFill",
           "create_pass"]
