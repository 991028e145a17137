"""What an engine hands the plugin (a context description once, a frame description per
rendered frame) and what it gets back. Every field documents its units.

Images are (height, width[, channels]) arrays or tensors, row 0 at the top (moderngl
textures are read bottom-up and flipped). Render-resolution resources may be larger than
the frame's ``render_size``: the top-left ``render_size`` rectangle is used (dynamic
resolution inside one allocation); of an OpenGL texture, the rectangle at GL's origin
(GL rows 0 .. h-1, where ``glViewport(0, 0, w, h)`` draws), the picture's top-left once
flipped.

Types are checked, not coerced: flags are ``bool`` (``"no"`` is refused, not read as
True), numbers are real numbers (``int``, ``float``, numpy scalars; not strings or bools),
sizes and the frame index are integers, names are strings, ``generated`` is a list or tuple.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

#: The largest width or height, in pixels, of any size a context takes (render, display,
#: a resource's declared size in the C ABI): STSS_MAX_IMAGE_DIMENSION in stss_plugin.h. A
#: larger context could never dispatch (a 16384x16384 float RGB image alone is 3 GiB).
MAX_IMAGE_DIMENSION = 16384
#: The pass a context runs when none is named (Python and C): STSS with its learned
#: display-resolution accumulation, the best zero-latency pass on the held-out scenes
#: (docs/RESULTS.md).
DEFAULT_PASS = "stss_recurrent"

#: Anything the plugin reads as an image: numpy array, torch tensor (CPU or CUDA), an object
#: with ``__dlpack__`` or ``__cuda_array_interface__``, or a moderngl texture.
Resource = Any


class Severity(enum.IntEnum):
    """Of a message sent to the context's ``message_callback``."""

    INFO = 0
    WARNING = 1
    ERROR = 2


class QualityMode(enum.Enum):
    """Per-axis display / render ratio (FSR 2 / DLSS / XeSS names)."""

    NATIVE_AA = 1.0
    QUALITY = 1.5
    BALANCED = 1.7
    PERFORMANCE = 2.0
    ULTRA_PERFORMANCE = 3.0


@dataclass(frozen=True)
class ContextDescription:
    """How a context is set up; fixed for its lifetime (create another to change it)."""

    max_render_size: tuple[int, int]  # (width, height) pixels: the largest render a frame may have (8 to
    #                                   MAX_IMAGE_DIMENSION each)
    # (width, height) pixels of the output; any ratio: the 2x networks' output is resampled
    display_size: tuple[int, int]
    pass_name: str = DEFAULT_PASS  # "stss_recurrent" (the default) or any pass of plugin.capabilities()["passes"]
    backend: str = "torch"  # "torch", "onnxruntime", "tensorrt", "openvino" (CPU only) (neural passes)
    precision: str = "fp32"  # "fp32" or "fp16" (openvino on a CPU with AMX or AVX512-BF16: bfloat16)
    device: str = "cpu"  # "cpu" or "cuda": where the pass runs
    # frames extrapolated per rendered frame: 0 (upscale only), 1, 2 or 3 (2x, 3x, 4x the rendered frame rate),
    # or "auto": 0 to 3 chosen after every frame from the render times measured, so that the presented rate
    # tracks target_display_hz (plugin.pacing; Context.next_generated_frames says how many the next frame takes)
    generated_frames: int | str = 1
    hdr: bool = True  # colour is linear HDR (any >= 0); False: linear LDR, checked to be in [0, 1]
    depth_format: str = "linear"  # "linear" view depth (scene units) or "device" OpenGL depth [0, 1]
    inverted_depth: bool = False  # device depth is reversed-Z (1 = near plane)
    infinite_far: bool = False  # the projection has no far plane (device depth conversion)
    jittered_motion: bool = False  # motion vectors include the jitter (the plugin removes it)
    display_res_motion: bool = False  # motion vectors are at display resolution, in display pixels
    validation: bool = False  # extra checks that warn about suspicious input (costs time)
    message_callback: Callable[[Severity, str], None] | None = field(default=None, compare=False)
    gl_interop: str = "auto"  # moderngl textures: "auto" (CUDA-OpenGL interop on a CUDA context where it works,
    #                           else through host memory), "host" (always host memory), "cuda" (interop or an error)
    network: str = "stss"  # the STSS network of passes stss, stss_taa and stss_flow: "stss" (417k parameters) or
    #                        a smaller preset with shipped weights, "stss_small" (110k: the CPU preset's); see
    #                        plugin.capabilities()["networks"]. Other passes take "stss" (their networks are fixed)
    target_display_hz: float | None = None  # generated_frames="auto" only: presented frames per second to track


@dataclass(frozen=True)
class GeneratedFrameDescription:
    """The cheap G-buffers of one extrapolated display frame (no shading): generated frame
    ``k`` (0-based) of ``n`` is the instant ``(k + 1) / (n + 1)`` of a frame time after the
    rendered frame. Motion vectors point to the previous *display* frame (the rendered one
    for the first, generated frame ``k - 1`` for the others)."""

    depth: Resource  # (h, w) render resolution, see ContextDescription.depth_format
    motion: Resource  # (h, w, 2) pixels, previous minus current, +y down, jitter excluded
    jitter_px: tuple[float, float]  # this G-buffer render's sub-pixel jitter, render pixels
    view: Any  # (4, 4) unjittered view matrix, column vectors, OpenGL conventions
    proj: Any  # (4, 4) unjittered projection
    albedo: Resource | None = None  # (h, w, 3) linear base colour in [0, 1]
    normal: Resource | None = None  # (h, w, 3) unit view-space normal
    roughness: Resource | None = None  # (h, w) in [0, 1]
    metallic: Resource | None = None  # (h, w) in [0, 1]
    object_id: Resource | None = None  # (h, w) integer ids, 0 = background
    ui: Resource | None = None  # (H, W, 4) display resolution, premultiplied RGBA; else the rendered frame's


@dataclass(frozen=True)
class FrameDescription:
    """One rendered frame, and the G-buffers of the frames to extrapolate after it."""

    frame_index: int  # int64; grows by exactly 1 per dispatch: any other step (a gap) is refused unless reset=True
    color: Resource  # (h, w, 3 or 4) linear colour at render resolution (alpha ignored)
    depth: Resource  # (h, w)
    motion: Resource  # (h, w, 2) render pixels (display pixels with display_res_motion), to the previous
    #                   *display* frame: with n generated frames that is the last generated frame, 1/(n+1) of
    #                   a frame time back, not the previous rendered frame
    jitter_px: tuple[float, float]  # sub-pixel jitter of this render, each in [-0.5, 0.5] render pixels
    frame_time_ms: float  # time since the previous rendered frame, milliseconds
    near: float  # near plane distance, scene units
    far: float  # far plane distance (ignored with infinite_far)
    fov_y_rad: float  # vertical field of view, radians
    view: Any  # (4, 4) unjittered view matrix, column vectors, OpenGL conventions
    proj: Any  # (4, 4) unjittered projection matrix
    albedo: Resource | None = None  # G-buffers STSS reads (see plugin.required_inputs)
    normal: Resource | None = None
    roughness: Resource | None = None
    metallic: Resource | None = None
    object_id: Resource | None = None
    reactive: Resource | None = None  # (h, w) in [0, 1]: how much to trust the new colour (particles)
    transparency: Resource | None = None  # (h, w) in [0, 1]: transparent / composited surfaces
    hudless: Resource | None = None  # (h, w, 3): colour before the HUD was drawn
    ui: Resource | None = None  # (H, W, 4) display resolution premultiplied RGBA, composited last
    motion_scale: tuple[float, float] = (1.0, 1.0)  # multiplies motion before use (e.g. UV -> pixels)
    pre_exposure: float = 1.0  # colour was multiplied by this; the history is kept without it, outputs carry it
    #                            (they are multiplied by it, like the input: show them as you show the colour)
    reset: bool = False  # camera cut: drop the history
    render_size: tuple[int, int] | None = None  # (width, height) actually rendered; default: the resources' size
    prev_view: Any = None  # (4, 4) the previous display frame's view; checked in validation mode
    prev_proj: Any = None  # (4, 4) the previous display frame's projection; checked in validation mode
    generated: Sequence[GeneratedFrameDescription] = ()  # as many as Context.next_generated_frames (the
    #                                                       fixed ContextDescription.generated_frames), in order
    render_time_ms: float | None = None  # what rendering this frame cost (ms, the engine's CPU or GPU time,
    #                                      whichever is longer); generated_frames="auto" follows it. None: frame_time_ms


@dataclass
class GeneratedFrame:
    color: Any  # (H, W, 3) linear colour, same kind (numpy / torch) as the frame's colour input
    present_time_ms: float  # when to show it, after the rendered frame's present: frame k of n at
    #                         (k + 1) / (n + 1) x frame_time_ms


@dataclass
class DispatchResult:
    output: Any  # (H, W, 3) the upscaled rendered frame, linear colour: numpy for numpy colour (and moderngl
    #              colour on a CPU context), else a torch tensor on the context's device
    generated: list[GeneratedFrame]  # the extrapolated frames, in display order
    status: int  # Result.OK (0), warnings are still OK
    warnings: list[str]  # what validation noticed (also sent to the message callback)
    timings_ms: dict[str, float]  # host ms per stage: "inputs", "upscale", "generate", "ui", "total" (on
    #                               CUDA: the time to validate and enqueue; the context never synchronises)
    reset: bool  # the history was dropped before this frame
    gpu_timings_ms: dict[str, float] = field(default_factory=dict)  # CUDA only: GPU ms per stage (same keys)
    #   of an *earlier* dispatch, from CUDA events read once complete (never waited for); {} when none is ready
    gpu_timings_frame: int | None = None  # the frame_index those GPU times belong to
    generated_frames: int = 0  # the frames this dispatch generated (len(generated)): with "auto", its choice
    next_generated_frames: int = 0  # the generated-frame descriptions the next dispatch takes
