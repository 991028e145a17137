"""The engine-facing plugin API: STSS (joint supersampling + frame extrapolation) and the
alternative passes behind FSR 2-shaped calls, from Python and, through ``stss_plugin.h``,
from C.

    import plugin
    desc = plugin.ContextDescription(max_render_size=(960, 540), display_size=(1920, 1080))
    with plugin.Context(desc) as ctx:
        result = ctx.dispatch(plugin.FrameDescription(...))

See README.md ("The plugin API") for a complete example.
"""

from __future__ import annotations

from .context import Context
from .descriptions import (
    DEFAULT_PASS,
    MAX_IMAGE_DIMENSION,
    ContextDescription,
    DispatchResult,
    FrameDescription,
    GeneratedFrame,
    GeneratedFrameDescription,
    QualityMode,
    Severity,
)
from .errors import BackendUnavailableError, ContextStateError, InvalidInputError, PluginError, Result, UnsupportedError
from .helpers import (
    capabilities,
    jitter_offset,
    jitter_phase_count,
    memory_estimate,
    mip_bias,
    optional_inputs,
    render_size,
    required_inputs,
)

__all__ = [
    "DEFAULT_PASS", "BackendUnavailableError", "Context", "ContextDescription", "ContextStateError", "DispatchResult",
    "FrameDescription", "GeneratedFrame", "GeneratedFrameDescription", "InvalidInputError", "MAX_IMAGE_DIMENSION",
    "MotionDiagnosis", "PluginError", "QualityMode", "Result", "SelfTestReport", "Severity", "UnsupportedError", "capabilities",
    "debug_views", "diagnose_motion", "jitter_offset", "jitter_phase_count", "memory_estimate", "mip_bias",
    "optional_inputs", "render_size", "required_inputs", "save_debug_sheet", "self_test",
]

# loaded on first use: they are also entry points (python -m plugin.selftest / plugin.debug)
_LAZY = {"MotionDiagnosis": "selftest", "SelfTestReport": "selftest", "diagnose_motion": "selftest",
         "self_test": "selftest", "debug_views": "debug", "save_debug_sheet": "debug"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'plugin' has no attribute {name!r}")
