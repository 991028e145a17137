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
    "MAX_IMAGE_DIMENSION",
}

FIELDS = {
    "ContextDescription": ["max_render_size", "display_size", "pass_name", "backend", "precision", "device",
                           "generated_frames", "hdr", "depth_format", "inverted_depth", "infinite_far",
                           "jittered_motion", "display_res_motion", "validation", "message_callback", "gl_interop",
                           "network", "target_display_hz"],
    "FrameDescription": ["frame_index", "color", "depth", "motion", "jitter_px", "frame_time_ms", "near", "far",
                         "fov_y_rad", "view", "proj", "albedo", "normal", "roughness", "metallic", "object_id",
                         "reactive", "transparency", "hudless", "ui", "motion_scale", "pre_exposure", "reset",
                         "render_size", "prev_view", "prev_proj", "generated", "render_time_ms"],
    "GeneratedFrameDescription": ["depth", "motion", "jitter_px", "view", "proj", "albedo", "normal", "roughness",
                                  "metallic", "object_id", "ui"],
    "DispatchResult": ["output", "generated", "status", "warnings", "timings_ms", "reset", "gpu_timings_ms",
                       "gpu_timings_frame", "generated_frames", "next_generated_frames"],
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


# -- the C ABI (stss_plugin.h): functions, constants and struct layouts -------------------------

C_FUNCTIONS = {"stss_version", "stss_abi_version", "stss_last_error", "stss_context_desc_init", "stss_frame_desc_init",
               "stss_generated_desc_init", "stss_format_bytes_per_pixel", "stss_jitter_phase_count",
               "stss_jitter_offset", "stss_query_capabilities", "stss_create", "stss_dispatch", "stss_reset",
               "stss_release_gpu_resources", "stss_destroy", "stss_next_generated_frames"}

#: Struct fields in order: the layout an engine compiled against the header relies on.
C_STRUCTS = {
    "stss_image": ["data", "pitch_bytes", "width", "height", "format", "memory", "gl_texture"],
    "stss_context_desc": ["max_render_width", "max_render_height", "display_width", "display_height", "pass_name",
                          "backend", "precision", "device", "generated_frames", "flags", "message_callback",
                          "message_user", "target_display_hz"],
    "stss_generated_desc": ["depth", "motion", "albedo", "normal", "roughness", "metallic", "object_id", "ui",
                            "jitter_x", "jitter_y", "view", "proj"],
    "stss_frame_desc": ["frame_index", "color", "depth", "motion", "albedo", "normal", "roughness", "metallic",
                        "object_id", "reactive", "transparency", "hudless", "ui", "jitter_x", "jitter_y",
                        "motion_scale_x", "motion_scale_y", "frame_time_ms", "near_plane", "far_plane", "fov_y_rad",
                        "pre_exposure", "reset", "render_width", "render_height", "view", "proj", "prev_view",
                        "prev_proj", "generated", "generated_count", "render_time_ms"],
    "stss_generated_output": ["color", "present_time_ms"],
    "stss_dispatch_output": ["color", "generated", "generated_count", "reset", "warning_count", "inputs_ms",
                             "upscale_ms", "generate_ms", "ui_ms", "total_ms", "generated_frames",
                             "next_generated_frames"],
}

C_CONSTANTS = {"STSS_ABI_VERSION": 3, "STSS_GENERATED_FRAMES_AUTO": -1, "STSS_MAX_GENERATED_FRAMES": 3, "STSS_MEMORY_HOST": 0, "STSS_MEMORY_CUDA": 1, "STSS_MEMORY_GL_TEXTURE": 2,
               "STSS_FLAG_HDR": 0x1, "STSS_FLAG_INVERTED_DEPTH": 0x2, "STSS_FLAG_INFINITE_FAR": 0x4,
               "STSS_FLAG_JITTERED_MOTION": 0x8, "STSS_FLAG_DISPLAY_RES_MOTION": 0x10,
               "STSS_FLAG_DEPTH_IS_DEVICE": 0x20, "STSS_FLAG_VALIDATION": 0x40, "STSS_SEVERITY_INFO": 0,
               "STSS_SEVERITY_WARNING": 1, "STSS_SEVERITY_ERROR": 2, "STSS_FORMAT_UNKNOWN": 0, "STSS_FORMAT_R32F": 1,
               "STSS_FORMAT_RG32F": 2, "STSS_FORMAT_RGB32F": 3, "STSS_FORMAT_RGBA32F": 4, "STSS_FORMAT_R16F": 5,
               "STSS_FORMAT_RG16F": 6, "STSS_FORMAT_RGBA16F": 7, "STSS_FORMAT_R32I": 8, "STSS_FORMAT_R32UI": 9,
               "STSS_FORMAT_R8_UNORM": 10, "STSS_FORMAT_RGBA8_UNORM": 11, "STSS_MAX_IMAGE_DIMENSION": 16384,
               "STSS_MAX_PITCH_BYTES": 1 << 20,
               **{f"STSS_RESULT_{name}": code for name, code in RESULT_CODES.items()}}


def test_c_header_surface():
    """The header as cffi parses it (no compiler, no library): every function, constant
    and struct field is still there, fields in their order (an engine's compiled layout)."""
    import re

    import cffi

    from plugin import c_abi

    decls = c_abi.header_declarations()
    code = re.sub(r"/\*.*?\*/", "", decls, flags=re.S)
    functions = set(re.findall(r"\b(stss_\w+)\s*\(", code))
    assert C_FUNCTIONS <= functions, sorted(C_FUNCTIONS - functions)
    ffi = cffi.FFI()
    ffi.cdef(decls)
    lib = ffi.dlopen(None)  # constants and types only; no function of the library is called
    for name, value in C_CONSTANTS.items():
        assert getattr(lib, name) == value, name
    for struct, fields in C_STRUCTS.items():
        assert [f for f, _ in ffi.typeof(struct).fields] == fields, f"{struct}: fields changed (ABI break)"


def test_the_limits_agree_between_python_and_the_header():
    """The largest size a context takes and the largest pitch: one value on each side."""
    import cffi

    from plugin import c_abi

    ffi = cffi.FFI()
    ffi.cdef(c_abi.header_declarations())
    lib = ffi.dlopen(None)
    assert lib.STSS_MAX_IMAGE_DIMENSION == plugin.MAX_IMAGE_DIMENSION
    assert lib.STSS_MAX_PITCH_BYTES == c_abi.MAX_PITCH_BYTES
