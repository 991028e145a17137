"""Networks of the runtime: STSS and the two-stage (supersample, then extrapolate) baseline.

Plain ``nn.Module``s that know no back-end. ``build_model(name)`` builds any of them by
preset name (see :data:`MODEL_PRESETS`).
"""

from __future__ import annotations

from torch import nn

from .blocks import count_macs, scale_channels
from .flownet import IterationPolicy, ResidualFlowNet
from .recurrent import RecurrentStss
from .stss import PRESETS, STSS, EfficientReshadingModule, local_attention
from .two_stage import EXTRANET_PRESETS, SUPERSAMPLING_PRESETS, ExtraNet, SupersamplingNet
from .vfi import VFI_PRESETS, VfiRefiner

#: Every buildable model: preset name -> (class, width multiplier).
MODEL_PRESETS: dict[str, tuple[type[nn.Module], float]] = {
    **{name: (STSS, w) for name, w in PRESETS.items()},
    **{name: (SupersamplingNet, w) for name, w in SUPERSAMPLING_PRESETS.items()},
    **{name: (ExtraNet, w) for name, w in EXTRANET_PRESETS.items()},
    **{name: (VfiRefiner, w) for name, w in VFI_PRESETS.items()},
    "stss_recurrent": (RecurrentStss, 1.0),  # STSS + a learned display-resolution accumulation
    "stss_recurrent_small": (RecurrentStss, 0.5),
    "stss_recurrent_tiny": (RecurrentStss, 0.25),
    "flow": (ResidualFlowNet, 1.0),  # motion pass tier 2 (optical flow, not an image model)
    "flow_policy": (IterationPolicy, 1.0),  # its iteration policy (reads the GRU state)
    "flow_policy_signals": (IterationPolicy, 1.0),  # the same reading scene-independent signals
}
#: Constructor options of presets beyond the width multiplier.
PRESET_OPTIONS: dict[str, dict] = {"flow_policy_signals": {"inputs": "signals"}}
#: The presets of tier 2's iteration policy.
POLICY_MODELS = ("flow_policy", "flow_policy_signals")


def build_model(name: str) -> nn.Module:
    """A freshly initialised model for preset ``name`` (e.g. ``"stss"``, ``"stss_tiny"``,
    ``"supersampling"``, ``"extranet_small"``); ``ValueError`` listing the valid names
    otherwise."""
    try:
        cls, width = MODEL_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid names: "
                         f"{', '.join(sorted(MODEL_PRESETS))}") from None
    return cls(width=width, **PRESET_OPTIONS.get(name, {}))


__all__ = [
    "EXTRANET_PRESETS", "MODEL_PRESETS", "PRESETS", "SUPERSAMPLING_PRESETS",
    "POLICY_MODELS", "PRESET_OPTIONS", "RecurrentStss", "STSS", "EfficientReshadingModule", "ExtraNet", "IterationPolicy", "ResidualFlowNet", "SupersamplingNet", "VFI_PRESETS", "VfiRefiner",
    "build_model", "count_macs", "local_attention", "scale_channels",
]
