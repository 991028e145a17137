"""The public API is frozen: a public name, a description field, a result code or a
parameter cannot disappear or change unnoticed. Adding is fine (add it here too);
removing or renaming breaks integrations and must be a deliberate, documented change."""

from __future__ import annotations

import dataclasses
import inspect

import plugin

PUBLIC_NAMES = {
    "BackendUnavailableError", "Context", "ContextDescription", "ContextStateError", "DispatchResult",
    "FrameDescription", "GeneratedFrame", "GeneratedFrameDescription", "InvalidInputError", "PluginError",
    "QualityMode", "Result", "Severity", "UnsupportedError", "capabilities", "jitter_offset",
    "jitter_phase_count", "memory_estimate", "mip_bias", "optional_inputs", "render_size", "required_inputs",
    "MotionDiagnosis", "SelfTestReport", "debug_views", "diagnose_motion", "save_debug_sheet", "self_test",
}

FIELDS = {
    "ContextDescription": ["max_render_size", "display_size", "pass_name", "backend", "precision", "device",
                           "generated_frames", "hdr", "depth_format", "inverted_depth", "infinite_far",
                           "jittered_motion", "display_res_motion", "validation", "message_callback", "gl_interop"],
    "FrameDescription": ["frame_index", "color", "depth", "motion", "jitter_px", "frame_time_ms", "near", "far",
                         "fov_y_rad", "view", "proj", "albedo", "normal", "roughness", "metallic", "object_id",
                         "reactive", "transparency", "hudless", "ui", "motion_scale", "pre_exposure", "reset",
                         "render_size", "prev_view", "prev_proj", "generated"],
    "GeneratedFrameDescription": ["depth", "motion", "jitter_px", "view", "proj", "albedo", "normal", "roughness",
                                  "metallic", "object_id", "ui"],
    "DispatchResult": ["output", "generated", "status", "warnings", "timings_ms", "reset"],
    "GeneratedFrame": ["color", "present_time_ms"],
}

RESULT_CODES = {"OK": 0, "INVALID_ARGUMENT": 1, "INVALID_STATE": 2, "UNSUPPORTED": 3, "BACKEND_UNAVAILABLE": 4,
                "INTERNAL": 5, "NULL_POINTER": 6}

SIGNATURES = {
    "Context.__init__": ["self", "desc"],
    "Context.dispatch": ["self", "frame"],
    "Context.reset": ["self"],
    "Context.destroy": ["self"],
    "Context.release_gpu_resources": ["self"],
    "Context.interop": ["self"],
    "render_size": ["display_size", "mode", "pass_name"],
    "jitter_offset": ["index", "phase_count"],
    "jitter_phase_count": ["render_width", "display_width"],
    "mip_bias": ["render_width", "display_width"],
    "required_inputs": ["pass_name"],
    "optional_inputs": ["pass_name"],
    "capabilities": [],
    "memory_estimate": ["desc"],
    "diagnose_motion": ["previous_color", "color", "motion", "jitter_px", "previous_jitter_px"],
    "self_test": ["pass_name", "backend", "device", "size"],
    "debug_views": ["ctx"],
}


def test_public_names_are_all_there():
    missing = PUBLIC_NAMES - set(plugin.__all__)
    assert not missing, f"public names removed: {sorted(missing)}"
    for name in plugin.__all__:
        assert hasattr(plugin, name), name


def test_description_fields_keep_their_order_and_names():
    for cls, fields in FIELDS.items():
        have = [f.name for f in dataclasses.fields(getattr(plugin, cls))]
        assert have[: len(fields)] == fields, f"{cls}: fields changed (new ones go at the end)"


def test_result_codes_are_stable():
    assert {r.name: int(r) for r in plugin.Result} == RESULT_CODES


def test_signatures():
    for path, params in SIGNATURES.items():
        obj = plugin
        for part in path.split("."):
            obj = getattr(obj, part)
        assert list(inspect.signature(obj).parameters)[: len(params)] == params, path


def test_context_properties():
    for name in ("destroyed", "gl_interop_active"):
        assert isinstance(getattr(plugin.Context, name), property), name


def test_capabilities_keys():
    assert {"passes", "backends", "precisions", "devices", "gpu", "tensorrt", "generated_frames", "quality_modes",
            "trained_ratio", "gl_interop"} <= set(plugin.capabilities())


def test_context_is_a_context_manager():
    assert hasattr(plugin.Context, "__enter__") and hasattr(plugin.Context, "__exit__")
