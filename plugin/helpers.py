"""Pure helpers, usable before any context exists (FSR 2's ``ffxFsr2Get*`` family)."""

from __future__ import annotations

import math

import torch

from stss_runtime import conventions
from stss_runtime.passes import PASSES

from .descriptions import DEFAULT_PASS, ContextDescription, QualityMode
from .errors import InvalidInputError, UnsupportedError

#: Optional inputs every pass accepts (validated; used where a pass can use them).
OPTIONAL_INPUTS = ("reactive", "transparency", "hudless", "ui")
#: The passes whose STSS network ``ContextDescription.network`` picks (the others' networks are fixed).
NETWORK_PASSES = ("stss", "stss_taa", "stss_flow")


def network_names() -> tuple[str, ...]:
    """The STSS network presets ``ContextDescription.network`` takes: those with shipped weights."""
    from stss_runtime.checkpoint import default_weights
    from stss_runtime.models import PRESETS

    return tuple(name for name in PRESETS if default_weights(name).is_file())


def networks() -> dict[str, dict]:
    """:func:`network_names` with their sizes: ``{name: {"parameters": n, "width": multiplier}}``."""
    from stss_runtime.models import PRESETS, build_model

    return {name: {"parameters": sum(p.numel() for p in build_model(name).parameters()), "width": PRESETS[name]}
            for name in network_names()}


def _mode(mode) -> QualityMode:
    if isinstance(mode, QualityMode):
        return mode
    try:
        return QualityMode[str(mode).upper()]
    except KeyError:
        raise InvalidInputError("mode", f"a QualityMode ({', '.join(m.name for m in QualityMode)})", repr(mode)) from None


def render_size(display_size: tuple[int, int], mode: QualityMode | str = QualityMode.PERFORMANCE,
                pass_name: str = DEFAULT_PASS) -> tuple[int, int]:
    """Render (width, height) for ``display_size`` at quality ``mode`` (rounded down).

    STSS and the two-stage pipeline are trained at 2x (PERFORMANCE); other modes work (the
    2x output is resampled to the display size) but are not what the networks learned."""
    m = _mode(mode)
    dw, dh = display_size
    if dw < 8 or dh < 8:
        raise InvalidInputError("display_size", "at least 8x8", f"{dw}x{dh}")
    return max(8, int(dw / m.value)), max(8, int(dh / m.value))


def jitter_phase_count(render_width: int, display_width: int) -> int:
    """Jitter phases for this scale (FSR 2): ``int(8 * (display / render) ** 2)``; 32 at 2x."""
    if render_width <= 0 or display_width <= 0:
        raise InvalidInputError("render_width / display_width", "positive widths", f"{render_width} / {display_width}")
    return conventions.jitter_phase_count(render_width, display_width)


def jitter_offset(index: int, phase_count: int) -> tuple[float, float]:
    """Sub-pixel jitter (x, y) in render pixels for display frame ``index``: Halton 2, 3."""
    if phase_count <= 0:
        raise InvalidInputError("phase_count", "a positive count", phase_count)
    return conventions.jitter_offset(index, phase_count)


def mip_bias(render_width: int, display_width: int) -> float:
    """Texture LOD bias for the low-resolution render: ``log2(render / display)`` (negative)."""
    if render_width <= 0 or display_width <= 0:
        raise InvalidInputError("render_width / display_width", "positive widths", f"{render_width} / {display_width}")
    return conventions.mip_bias(render_width, display_width)


def required_inputs(pass_name: str = DEFAULT_PASS) -> tuple[str, ...]:
    """Frame-description fields ``pass_name`` needs (besides the scalars and matrices)."""
    if pass_name not in PASSES:
        raise UnsupportedError("pass_name", f"one of {', '.join(PASSES)}", repr(pass_name))
    needed = PASSES[pass_name].inputs
    base = ("color", "depth") + (("motion",) if "motion" in needed else ())  # stss_flow estimates it
    return tuple(dict.fromkeys(base + tuple(needed)))


def optional_inputs(pass_name: str = DEFAULT_PASS) -> tuple[str, ...]:
    """Frame-description images ``pass_name`` accepts but does not need."""
    req = required_inputs(pass_name)
    gbuffers = ("albedo", "normal", "roughness", "metallic", "object_id")
    return tuple(n for n in gbuffers if n not in req) + OPTIONAL_INPUTS


def capabilities() -> dict:
    """What this installation can do: passes, back-ends (and why not), precisions, devices,
    GPU / TensorRT / CUDA-OpenGL interop present."""
    from stss_runtime.backends import availability

    from .gl_interop import availability as gl_interop_availability

    backends = availability()
    interop_ok, interop_why = gl_interop_availability()
    return {
        # per pass: what it is, the display frames of delay it adds (interpolation: 1 at 2x; n with n
        # generated frames, one rendered frame) and
        # whether a network runs in it
        "passes": {name: {"description": cls.description, "latency_frames": cls.latency_frames,
                          "neural": cls.neural} for name, cls in PASSES.items()},
        "backends": {name: {"available": ok, "detail": why} for name, (ok, why) in backends.items()},
        "precisions": ["fp32", "fp16"],
        "devices": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
        "gpu": torch.cuda.is_available(),
        "tensorrt": backends["tensorrt"][0],
        "generated_frames": [0, 1, 2, 3, "auto"],  # "auto": ContextDescription.target_display_hz
        "quality_modes": {m.name: m.value for m in QualityMode},
        "trained_ratio": 2.0,
        # CUDA-OpenGL interop for moderngl textures and the C ABI's GPU handles (needs device "cuda")
        "gl_interop": {"available": interop_ok, "detail": interop_why},
        # the STSS networks of passes NETWORK_PASSES (ContextDescription.network)
        "networks": networks(),
    }


def memory_estimate(desc: ContextDescription) -> dict[str, int]:
    """Bytes a context for ``desc`` keeps: history and per-frame working set (float32),
    from the sizes alone (weights: the shipped model's parameters)."""
    mw, mh = desc.max_render_size
    dw, dh = desc.display_size
    render_px, display_px = mw * mh, dw * dh
    f32 = 4
    # history: 3 stored frames x (colour 3 + depth 1 + normals 3 + id 1 + motion 2) at render size
    history = 3 * 10 * render_px * f32
    # one frame's graph inputs (44 channels) and the network's widest activations (~64 ch at
    # render size, ~32 at display size), output at display size
    working = 44 * render_px * f32 + 64 * render_px * f32 + 32 * display_px * f32 + 3 * display_px * f32
    weights = {"stss": 417_241, "stss_taa": 417_241, "stss_flow": 417_241,
               "stss_recurrent": 439_721}.get(desc.pass_name, 0) * f32
    if desc.pass_name == "stss_recurrent":  # its accumulation (colour + weight) at display size, state at render size
        from stss_runtime.models.recurrent import STATE_CHANNELS

        history += 4 * display_px * f32 + STATE_CHANNELS * render_px * f32
    return {"history_bytes": history, "working_bytes": working, "weights_bytes": weights,
            "total_bytes": history + working + weights}


def vertical_fov_from_proj(proj) -> float:
    """The vertical field of view (radians) of an OpenGL projection matrix."""
    return 2.0 * math.atan(1.0 / float(proj[1][1]))
