"""Post-process passes behind one interface (:class:`~stss_runtime.passes.base.Pass`).

One file per pass (or family), named like the pass; each class is ``<Name>Pass``:

========================  =====================  ==========================================
pass                      class                  file
========================  =====================  ==========================================
``stss``                  ``StssPass``           ``stss.py``: the joint network (default)
``stss_taa``              ``StssTaaPass``        ``stss_taa.py``: STSS + display accumulation
``stss_recurrent``        ``StssRecurrentPass``  ``stss_recurrent.py``: STSS + learned accumulation
``stss_flow``             ``StssFlowPass``       ``stss_flow.py``: STSS on estimated motion
``two_stage``             ``TwoStagePass``       ``two_stage.py``: supersampling, then ExtraNet
``bilinear``/``bicubic``  ``BilinearPass``/...   ``upsample.py``: spatial upsampling
``temporal``              ``TemporalPass``       ``temporal.py``: FSR 2-like temporal upscaler
``warp_fill``             ``WarpFillPass``       ``warp_fill.py``: warp + background fill
``vfi_cheap``/``vfi``/    ``VfiCheapPass``/...   ``vfi.py``: frame interpolation (1 frame late)
``vfi_dense``
========================  =====================  ==========================================
"""

from __future__ import annotations

from .base import Pass, PassError, PassOptionError
from .stss import StssPass
from .stss_flow import StssFlowPass
from .stss_recurrent import StssRecurrentPass
from .stss_taa import StssTaaPass
from .temporal import TemporalPass
from .two_stage import TwoStagePass
from .upsample import BicubicPass, BilinearPass
from .vfi import VFI_PASSES, VfiCheapPass, VfiDensePass, VfiPass
from .warp_fill import WarpFillPass

#: The non-neural passes without latency that STSS must beat.
BASELINES: dict[str, type[Pass]] = {p.name: p for p in (BilinearPass, BicubicPass, WarpFillPass, TemporalPass)}

#: Every pass by name.
PASSES: dict[str, type[Pass]] = {"stss": StssPass, "stss_taa": StssTaaPass, "stss_recurrent": StssRecurrentPass,
                               **BASELINES, "two_stage": TwoStagePass,
                               "stss_flow": StssFlowPass, **VFI_PASSES}


def create_pass(name: str, **kwargs) -> Pass:
    """A pass by name; ``ValueError`` listing the valid names otherwise."""
    try:
        cls = PASSES[name]
    except KeyError:
        raise ValueError(f"unknown pass {name!r}; valid: {', '.join(PASSES)}") from None
    return cls(**kwargs)


__all__ = ["BASELINES", "PASSES", "BicubicPass", "BilinearPass", "Pass", "PassError", "PassOptionError", "StssFlowPass", "StssPass", "StssRecurrentPass",
           "StssTaaPass", "TemporalPass", "TwoStagePass", "VfiCheapPass", "VfiDensePass", "VfiPass", "WarpFillPass",
           "create_pass"]
