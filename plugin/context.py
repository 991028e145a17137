"""The plugin context: created from a :class:`ContextDescription`, fed one
:class:`FrameDescription` per rendered frame, closed when done.

    with plugin.Context(plugin.ContextDescription((960, 540), (1920, 1080))) as ctx:
        result = ctx.dispatch(frame)       # result.output, result.generated[0].color

Per dispatch: validate and convert the inputs, upscale the rendered frame, extrapolate the
generated frame(s) from their G-buffers and the history, composite the UI last (never
warped), and time every stage. The runtime keeps the history; a reset flag or a
render-size change drops it (a frame-index gap is refused unless the frame sets ``reset``).

Every input is checked before the context's state changes, so a refused frame leaves the
context exactly as it was: its messages are not sent, it does not enter the jitter history,
and the corrected frame gives the output it would have given. Value checks (finite, in
range) are computed where the inputs live and read back once per dispatch
(:mod:`plugin.checks`): on CUDA one host synchronisation, not one per check.
"""

from __future__ import annotations

import math
import numbers
import weakref
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from stss_runtime.backends import BACKENDS, BackendError, BackendUnavailable
from stss_runtime.frame import Frame
from stss_runtime.ops.encoding import decode_color, encode_color
from stss_runtime.passes import PASSES, PassOptionError, create_pass
from stss_runtime.passes.stss_fused import StssFusedPass, fused_applies

from . import gl_interop
from .checks import ValueChecks
from .descriptions import (
    MAX_IMAGE_DIMENSION,
    ContextDescription,
    DispatchResult,
    FrameDescription,
    GeneratedFrame,
    GeneratedFrameDescription,
    Severity,
)
from .errors import BackendUnavailableError, ContextStateError, InvalidInputError, Result, UnsupportedError
from .helpers import NETWORK_PASSES, network_names
from .pacing import MAX_GENERATED, FrameMultiplier
from .resources import image_shape, kind_of, layout_hint, matrix, to_output, to_tensor
from .timing import StageTimer

#: Motion vectors beyond this many frame sizes off-screen are clamped (with a warning).
MOTION_LIMIT_FRAMES = 2.0
#: Frames of jitter history looked at for "sequence too short" (validation mode).
JITTER_WINDOW = 16

_DEFAULTS = {"albedo": (3, 0.5), "normal": (3, None), "roughness": (1, 0.5), "metallic": (1, 0.0),
             "object_id": (1, 1)}


#: The C ABI's frame_index is an int64_t.
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _got(value: Any) -> str:
    """A value and its type, for a message about a wrong type (``'33.3' (a str)``)."""
    return f"{value!r} (a {type(value).__name__})"


def _size_pair(value: Any, name: str, minimum: int = 8) -> tuple[int, int]:
    try:
        w, h = value
    except (TypeError, ValueError):
        raise InvalidInputError(name, "(width, height) integers", repr(value)) from None
    if not all(_integer(v) for v in (w, h)):
        raise InvalidInputError(name, "(width, height) integers", repr(value))
    w, h = int(w), int(h)
    if w < minimum or h < minimum:
        raise InvalidInputError(name, f"at least {minimum}x{minimum}", f"{w}x{h}")
    if w > MAX_IMAGE_DIMENSION or h > MAX_IMAGE_DIMENSION:
        raise InvalidInputError(name, f"at most {MAX_IMAGE_DIMENSION}x{MAX_IMAGE_DIMENSION} "
                                "(plugin.MAX_IMAGE_DIMENSION)", f"{w}x{h}")
    return w, h


def _is_number(value: Any) -> bool:
    """A real number: int, float, a numpy scalar or 0-d array; not a bool or a string."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu"


def _finite(value: Any, name: str, expected: str = "a finite number") -> float:
    if not _is_number(value):
        raise InvalidInputError(name, expected, _got(value))
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInputError(name, expected, repr(value))
    return v


def _flag(value: Any, name: str) -> bool:
    """A bool (or numpy bool): a string such as "no" is refused, not read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(name, "True or False", _got(value))
    return bool(value)


def _name(value: Any, name: str, choices, what: str) -> str:
    """A string among ``choices``: UnsupportedError for another string, InvalidInputError
    for another type (a list, None, ...)."""
    expected = f"{what}: one of {', '.join(map(repr, choices))}"
    if not isinstance(value, str):
        raise InvalidInputError(name, expected, _got(value))
    if value not in choices:
        raise UnsupportedError(name, expected, repr(value))
    return value


def _probe_backend(desc: ContextDescription) -> None:
    """Refuse now a back-end that cannot run here, as ``plugin.capabilities()`` reports it:
    a pass creates its runner at its first dispatch, too late to say so."""
    if desc.backend == "torch":
        return  # the device was checked already
    from stss_runtime.backends import availability

    ok, why = availability().get(desc.backend, (False, "unknown back-end"))
    if ok and desc.backend == "onnxruntime" and desc.device == "cuda":
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        if "CUDAExecutionProvider" not in providers:
            ok, why = False, f"this onnxruntime has no CUDAExecutionProvider (only {providers}); install onnxruntime-gpu"
    if not ok:
        raise BackendUnavailableError(f"desc.backend: expected a back-end that runs on this machine "
                                      f"(plugin.capabilities()['backends']), got {desc.backend!r}: {why}")
    if desc.backend == "tensorrt" and desc.device != "cuda":
        raise UnsupportedError("desc.device", "'cuda' with backend='tensorrt' (TensorRT runs on NVIDIA GPUs)",
                               repr(desc.device))
    if desc.backend == "openvino" and desc.device != "cpu":
        raise UnsupportedError("desc.device", "'cpu' with backend='openvino' (the OpenVINO back-end runs on the CPU)",
                               repr(desc.device))


def _pair(value: Any, name: str, expected: str) -> tuple[float, float]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise InvalidInputError(name, expected, repr(value)) from None
    return _finite(a, name, expected), _finite(b, name, expected)


def _in_unit_range(name: str, expected: str = "values in [0, 1]"):
    """A verdict on (minimum, maximum) of an image that must lie in [0, 1]."""
    def verdict(lo: float, hi: float) -> None:
        if lo < 0 or hi > 1:
            raise InvalidInputError(name, expected, f"[{lo:.3g}, {hi:.3g}]")
    return verdict


class Context:
    """One upscaling / frame-generation context (FSR 2's ``FfxFsr2Context`` shape)."""

    def __init__(self, desc: ContextDescription):
        self.desc = self._check_description(desc)
        self.display_size = self.desc.display_size
        self.device = torch.device(self.desc.device)
        kwargs = {}
        if PASSES[self.desc.pass_name].runtime_options:
            kwargs = {"device": self.device, "backend": self.desc.backend, "precision": self.desc.precision}
            w, h = self.desc.max_render_size
            kwargs["max_render_size"] = (w, h)
            if self.desc.pass_name in NETWORK_PASSES and self.desc.network != "stss":
                kwargs["model_name"] = self.desc.network
        if PASSES[self.desc.pass_name].latency_frames:  # interpolation: the frames between two rendered ones
            kwargs["generated_frames"] = max(1, self.desc.generated_frames)
        try:
            if self.desc.pass_name == "stss" and fused_applies(self.desc.backend, self.desc.precision, self.device):
                # the CPU back-ends run the history's per-frame work inside their graph too
                self.pass_ = StssFusedPass(**kwargs)
            else:
                self.pass_ = create_pass(self.desc.pass_name, **kwargs)
        except BackendUnavailable as e:
            raise BackendUnavailableError(str(e)) from e
        except PassOptionError as e:  # a neural pass that cannot run with this back-end / precision
            raise UnsupportedError(f"desc.{e.option}", f"{e.expected} for pass {self.desc.pass_name!r}",
                                   repr(e.actual)) from e
        self._destroyed = False
        # generated_frames="auto": the multiplier that chooses each frame's count (plugin.pacing)
        self._multiplier = FrameMultiplier(self.desc.target_display_hz) if self.desc.generated_frames == "auto" \
            else None
        self._render_size: tuple[int, int] | None = None
        self._last_index: int | None = None
        self._display_index = 0
        self._prev_jitter: tuple[float, float] | None = None
        self._prev_view: np.ndarray | None = None  # the previous display frame's camera (validation)
        self._prev_proj: np.ndarray | None = None
        self._jitters: list[tuple[float, float]] = []
        self.last_frames: list[Frame] = []  # the last dispatch's frames (debug views)
        self.last_outputs: list[torch.Tensor] = []
        # moderngl textures: None = not decided yet (decided on the first texture, so that a
        # context that never sees one never imports cuda-python), then a GLInterop or False
        self._gl: gl_interop.GLInterop | bool | None = None if self.desc.gl_interop != "host" else False
        self._gl_handles: gl_interop.GLInterop | None = None  # for GL names handed over explicitly (C ABI)
        self._gl_host_only: weakref.WeakSet = weakref.WeakSet()  # textures interop cannot map as they say
        self._gl_notes: set[str] = set()  # INFO messages about the host path, once each
        # while a frame's inputs are checked: its messages (sent once it is accepted) and value checks
        self._queue: list[tuple[Severity, str]] | None = None
        self._checks: ValueChecks | None = None
        self._timer = StageTimer.for_device(self.device)  # host clocks; CUDA events read late on a GPU

    # -- description ------------------------------------------------------------------

    @staticmethod
    def _check_description(desc: ContextDescription) -> ContextDescription:
        if not isinstance(desc, ContextDescription):
            raise InvalidInputError("desc", "a plugin.ContextDescription", f"a {type(desc).__name__}")
        mw, mh = _size_pair(desc.max_render_size, "desc.max_render_size")
        dw, dh = _size_pair(desc.display_size, "desc.display_size")
        if mw > dw or mh > dh:
            raise InvalidInputError("desc.max_render_size", f"at most the display size {dw}x{dh}", f"{mw}x{mh}")
        _name(desc.pass_name, "desc.pass_name", tuple(PASSES), "a pass name")
        _name(desc.backend, "desc.backend", BACKENDS, "a back-end")
        _name(desc.precision, "desc.precision", ("fp32", "fp16"), "a precision")
        _name(desc.device, "desc.device", ("cpu", "cuda"), "a device")
        if desc.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("desc.device: expected a CUDA GPU, got none on this machine "
                                          "(a CPU build of PyTorch, or no NVIDIA driver); use device='cpu'")
        counts = f"0 to {MAX_GENERATED} (an integer) or 'auto'"
        if isinstance(desc.generated_frames, str):
            if desc.generated_frames != "auto":
                raise InvalidInputError("desc.generated_frames", counts, _got(desc.generated_frames))
        elif not _integer(desc.generated_frames):
            raise InvalidInputError("desc.generated_frames", counts, _got(desc.generated_frames))
        elif not 0 <= desc.generated_frames <= MAX_GENERATED:
            raise UnsupportedError("desc.generated_frames", f"0 to {MAX_GENERATED} (at most {MAX_GENERATED} frames "
                                   f"extrapolated per rendered frame: {MAX_GENERATED + 1}x the rendered rate) or 'auto'",
                                   repr(desc.generated_frames))
        auto = desc.generated_frames == "auto"
        if auto:
            _finite(desc.target_display_hz, "desc.target_display_hz",
                    "a positive rate in Hz (presented frames per second) with generated_frames='auto'")
            if not 0 < desc.target_display_hz <= 10_000:
                raise InvalidInputError("desc.target_display_hz", "a rate in Hz, above 0 and at most 10000 "
                                        "(presented frames per second)", repr(desc.target_display_hz))
            if PASSES[desc.pass_name].latency_frames:
                raise UnsupportedError("desc.generated_frames", f"a fixed count for pass {desc.pass_name!r} "
                                       "(interpolation holds each rendered frame back by its count of frames)",
                                       repr(desc.generated_frames))
        elif desc.target_display_hz is not None:
            raise InvalidInputError("desc.target_display_hz", "None unless generated_frames='auto' (a fixed count "
                                    "does not track a rate)", repr(desc.target_display_hz))
        if not isinstance(desc.depth_format, str) or desc.depth_format not in ("linear", "device"):
            raise InvalidInputError("desc.depth_format", "'linear' or 'device'", repr(desc.depth_format))
        flags = {name: _flag(getattr(desc, name), f"desc.{name}") for name in
                 ("hdr", "inverted_depth", "infinite_far", "jittered_motion", "display_res_motion", "validation")}
        if desc.message_callback is not None and not callable(desc.message_callback):
            raise InvalidInputError("desc.message_callback", "a callable (severity, message) or None",
                                    f"a {type(desc.message_callback).__name__}")
        # 'cuda' that cannot be served is refused now, saying what is missing
        if not isinstance(desc.gl_interop, str):
            raise InvalidInputError("desc.gl_interop", "'auto', 'host' or 'cuda'", _got(desc.gl_interop))
        gl_interop.decide(desc.gl_interop, torch.device(desc.device),
                          probe=gl_interop.availability if desc.gl_interop == "cuda" else (lambda: (True, "")))
        if not isinstance(desc.network, str):
            raise InvalidInputError("desc.network", "an STSS network preset name (a str)", _got(desc.network))
        if desc.pass_name in NETWORK_PASSES:
            _name(desc.network, "desc.network", network_names(), "an STSS network with shipped weights")
        elif desc.network != "stss":
            raise UnsupportedError("desc.network", f"'stss' for pass {desc.pass_name!r} (its networks are fixed; "
                                   f"passes {', '.join(NETWORK_PASSES)} take another)", repr(desc.network))
        if PASSES[desc.pass_name].runtime_options:  # a neural pass: its back-end must run here
            _probe_backend(desc)
        return replace(desc, max_render_size=(mw, mh), display_size=(dw, dh),
                       generated_frames="auto" if auto else int(desc.generated_frames),
                       target_display_hz=float(desc.target_display_hz) if auto else None, **flags)

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def destroy(self) -> None:
        """Release the pass and its history, and unregister the GL textures interop
        registered (call it with their GL context current); later calls raise
        ContextStateError. Idempotent."""
        self._destroyed = True
        self.pass_ = None
        self.last_frames, self.last_outputs = [], []
        self._release_gl()

    close = destroy

    def _release_gl(self) -> None:
        for interop in (self._gl, self._gl_handles):
            if isinstance(interop, gl_interop.GLInterop):
                interop.release()

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    def _alive(self, call: str) -> None:
        if self._destroyed:
            raise ContextStateError(f"context.{call}: the context was destroyed; create a new one")

    @property
    def next_generated_frames(self) -> int:
        """How many generated-frame descriptions the next dispatch takes: the fixed
        ``desc.generated_frames``, or with ``"auto"`` the multiplier's choice after the last
        frame (1 before the first). Render that many frames' G-buffers, at the instants
        ``(k + 1) / (n + 1)`` of a frame time after the rendered frame."""
        self._alive("next_generated_frames")
        return self._multiplier.n if self._multiplier is not None else self.desc.generated_frames

    def reset(self) -> None:
        """Drop the history now (as ``reset=True`` on the next frame does)."""
        self._alive("reset")
        self._last_index = None

    def debug_outputs(self) -> dict[str, torch.Tensor]:
        """What the pass exposes for debug views after the last dispatch (its last frame),
        by name: ``"hole_valid"`` for passes keeping a history, ``"motion"`` for
        ``stss_flow`` (:meth:`stss_runtime.passes.Pass.debug_outputs`). Empty before the
        first dispatch."""
        self._alive("debug_outputs")
        return self.pass_.debug_outputs() if self.last_frames else {}

    def release_gpu_resources(self) -> None:
        """Unregister the GL textures CUDA-OpenGL interop registered (they are registered
        again when next used). Call it, with their GL context current, before deleting or
        re-creating a GL texture that was handed over by its GL name (the C ABI); moderngl
        texture objects are tracked by the context itself."""
        self._alive("release_gpu_resources")
        self._release_gl()

    @property
    def gl_interop_active(self) -> bool | None:
        """Whether moderngl textures reach the pass through CUDA-OpenGL interop: None until
        the first texture is seen, then True or False (the host path)."""
        return None if self._gl is None else isinstance(self._gl, gl_interop.GLInterop)

    def interop(self) -> gl_interop.GLInterop:
        """This context's interop object (created on first use); raises
        :class:`~plugin.errors.BackendUnavailableError` / :class:`~plugin.errors.UnsupportedError`
        saying what is missing where interop cannot run (a CPU context, no CUDA GPU, no
        cuda-python). For GPU handles of the C ABI."""
        self._alive("interop")
        if isinstance(self._gl, gl_interop.GLInterop):
            return self._gl
        if self._gl_handles is None:
            gl_interop.decide("cuda", self.device)
            self._gl_handles = gl_interop.GLInterop(self.device)
        return self._gl_handles

    def _gl_note(self, key: str, severity: Severity, text: str) -> None:
        if key not in self._gl_notes:
            self._gl_notes.add(key)
            self._message(severity, text)

    def _read_gl(self, texture: Any, name: str, rect: tuple[int, int] | None) -> torch.Tensor | None:
        """A moderngl texture through CUDA-OpenGL interop, or None for the host path."""
        forced = self.desc.gl_interop == "cuda"
        if self._gl is None:
            try:
                on = gl_interop.decide(self.desc.gl_interop, self.device)
                self._gl = gl_interop.GLInterop(self.device) if on else False
            except gl_interop.GLInteropError as e:  # cuda-python vanished since the probe
                if forced:
                    raise
                self._gl = False
                self._gl_note("unavailable", Severity.WARNING, f"{e}; reading GL textures through host memory")
            if self._gl is False and self.device.type == "cuda":
                self._gl_note("unavailable", Severity.INFO, "GL textures are read through host memory: "
                              f"CUDA-OpenGL interop is off ({gl_interop.availability()[1]})"
                              if self.desc.gl_interop == "auto" else "GL textures are read through host memory "
                              "(gl_interop='host')")
        if self._gl is False or texture in self._gl_host_only:
            return None
        fmt, why = gl_interop.moderngl_format(texture)
        if fmt is None:
            if forced:
                raise UnsupportedError(name, "a texture CUDA-OpenGL interop can map (1, 2 or 4 channels of f1, f2, "
                                       "f4, u1, u2, u4 or i4; gl_interop='cuda')", why)
            self._gl_note(f"format:{name}", Severity.INFO, f"{name}: read through host memory: {why}")
            return None
        try:
            return self._gl.read(texture.glo, texture.size, fmt, name, rect=rect, owner=texture)
        except UnsupportedError as e:  # CUDA maps it otherwise than moderngl describes it (a packed format)
            if forced:
                raise
            self._gl_host_only.add(texture)
            self._gl_note(f"format:{name}", Severity.INFO, f"{e}; this texture is read through host memory")
            return None
        except gl_interop.GLInteropError as e:
            if forced:
                raise
            self._gl.release()
            self._gl = False
            self._gl_note("failed", Severity.WARNING, f"{e}; reading GL textures through host memory from now on")
            return None

    def _tensor(self, res, name, size, channels, integer=False, allow_larger=True) -> torch.Tensor:
        return to_tensor(res, name, size, channels, self.device, integer=integer, allow_larger=allow_larger,
                         gl_reader=self._read_gl, checks=self._checks)

    def _check(self, verdict, *values: torch.Tensor) -> None:
        """``verdict(*floats)`` on ``values`` (device reductions), read back with the frame's others."""
        self._checks.add(verdict, *values)

    def _message(self, severity: Severity, text: str, warnings: list[str] | None = None) -> None:
        """Send a message (WARNING and above also into ``warnings``); while a frame's inputs
        are checked it is queued instead, and sent only if the frame is accepted."""
        if self._queue is not None:
            self._queue.append((severity, text))
            return
        if severity >= Severity.WARNING and warnings is not None:
            warnings.append(text)
        cb = self.desc.message_callback
        if cb is not None:
            try:
                cb(severity, text)
            except Exception:  # a broken callback must not break the frame
                pass

    # -- per frame ----------------------------------------------------------------------

    def _pass_display(self, render: tuple[int, int]) -> tuple[int, int]:
        """The display size the pass is set up for: its fixed scale if it has one (its output
        is then resampled to the context's display size), else the context's."""
        s = self.pass_.fixed_scale
        return (s * render[0], s * render[1]) if s is not None else self.display_size

    def _frame_render_size(self, frame: FrameDescription) -> tuple[int, int]:
        if frame.render_size is not None:
            w, h = _size_pair(frame.render_size, "frame.render_size")
            field = "frame.render_size"
        else:
            shape = image_shape(frame.color, "frame.color")
            hint = layout_hint(shape, (3, 4))
            if hint:
                raise InvalidInputError("frame.color", "shape (height, width, 3 or 4 channels)", f"shape {shape}", hint)
            h, w = shape[:2]
            field = "frame.color"  # the render size comes from the colour image
        mw, mh = self.desc.max_render_size
        if w > mw or h > mh or w < 8 or h < 8:
            raise InvalidInputError(field, f"a render size of 8x8 .. {mw}x{mh} (desc.max_render_size)", f"{w}x{h}")
        return w, h

    def _scalars(self, frame: FrameDescription) -> dict:
        if not isinstance(frame, FrameDescription):
            raise InvalidInputError("frame", "a plugin.FrameDescription", f"a {type(frame).__name__}")
        if not _integer(frame.frame_index):
            raise InvalidInputError("frame.frame_index", "an integer", repr(frame.frame_index))
        index = int(frame.frame_index)
        if not _INT64[0] <= index <= _INT64[1]:
            raise InvalidInputError("frame.frame_index", "an integer that fits in 64 bits (the C ABI's int64_t)",
                                    index)
        reset = _flag(frame.reset, "frame.reset")
        if self._last_index is not None and index != self._last_index + 1 and not reset:
            raise InvalidInputError("frame.frame_index", f"{self._last_index + 1} (the previous + 1), or reset=True "
                                    f"after a skip", index)
        jx, jy = _pair(frame.jitter_px, "frame.jitter_px", "(x, y) finite render pixels")
        if abs(jx) > 0.5 or abs(jy) > 0.5:
            raise InvalidInputError("frame.jitter_px", "each in [-0.5, 0.5] render pixels", f"({jx}, {jy})",
                                    "see plugin.jitter_offset")
        ft = _finite(frame.frame_time_ms, "frame.frame_time_ms", "finite milliseconds")
        if ft <= 0:
            raise InvalidInputError("frame.frame_time_ms", "a positive time in milliseconds", ft)
        if ft < 1.0:
            raise InvalidInputError("frame.frame_time_ms", "milliseconds (>= 1)", ft,
                                    f"{ft} looks like seconds: pass {ft * 1000:g}")
        near = _finite(frame.near, "frame.near", "a positive finite distance")
        if near <= 0:
            raise InvalidInputError("frame.near", "a positive distance (scene units)", near)
        far = math.inf if self.desc.infinite_far else _finite(frame.far, "frame.far", "a finite distance")
        if far <= near:
            raise InvalidInputError("frame.far", f"greater than near ({near})", far)
        fov = _finite(frame.fov_y_rad, "frame.fov_y_rad", "radians")
        if not 0 < fov < math.pi:
            raise InvalidInputError("frame.fov_y_rad", "a vertical field of view in (0, pi) radians", fov,
                                    "degrees?" if fov >= math.pi else "")
        exposure = _finite(frame.pre_exposure, "frame.pre_exposure", "a positive finite number")
        if exposure <= 0:
            raise InvalidInputError("frame.pre_exposure", "a positive number", exposure)
        scale = _pair(frame.motion_scale, "frame.motion_scale", "(x, y) finite factors")
        if not isinstance(frame.generated, (list, tuple)):
            raise InvalidInputError("frame.generated", "a list or tuple of plugin.GeneratedFrameDescription",
                                    "None" if frame.generated is None else f"a {type(frame.generated).__name__}")
        n, expected = len(frame.generated), self.next_generated_frames
        if n != expected:
            why = "desc.generated_frames" if self._multiplier is None else (
                f"Context.next_generated_frames: chosen for {self.desc.target_display_hz:g} Hz from a render time of "
                f"{self._multiplier.render_ms:.1f} ms" if self._multiplier.render_ms is not None else
                "Context.next_generated_frames: the first frame's, before any render time was measured")
            raise InvalidInputError("frame.generated", f"{expected} generated-frame description(s) ({why})", f"{n}")
        render_ms = None
        if frame.render_time_ms is not None:
            render_ms = _finite(frame.render_time_ms, "frame.render_time_ms", "a positive finite time in milliseconds "
                                "or None")
            if render_ms <= 0:
                raise InvalidInputError("frame.render_time_ms", "a positive time in milliseconds, or None", render_ms)
        jitters = self._jitters  # the window this frame enters once it is accepted
        if self.desc.validation:
            if (jx, jy) == (0.0, 0.0):
                self._message(Severity.WARNING, "frame.jitter_px is (0, 0): without sub-pixel jitter the "
                              "upscaler cannot recover detail (use plugin.jitter_offset)")
            jitters = (jitters + [(jx, jy)])[-JITTER_WINDOW:]
            distinct = len(set(jitters))
            if len(jitters) == JITTER_WINDOW and distinct < 8:
                self._message(Severity.WARNING, f"frame.jitter_px: only {distinct} distinct jitter values in the "
                              f"last {JITTER_WINDOW} frames; the recommended sequence has "
                              f"plugin.jitter_phase_count(...) phases")
        return {"index": index, "reset": reset, "jitter": (jx, jy), "frame_time_ms": ft, "near": near, "far": far,
                "exposure": exposure, "motion_scale": scale, "jitters": jitters,
                "render_ms": ft if render_ms is None else render_ms}

    def _depth(self, res, name, size, near, far) -> torch.Tensor:
        d = self._tensor(res, name, size, 1)
        if self.desc.depth_format == "device":
            def device_depth(lo: float, hi: float) -> None:
                if lo < 0 or hi > 1:
                    raise InvalidInputError(name, "OpenGL device depth in [0, 1] (depth_format='device')",
                                            f"values in [{lo:.3g}, {hi:.3g}]")
            self._check(device_depth, d.min(), d.max())
            dd = 1.0 - d if self.desc.inverted_depth else d
            z = 2.0 * dd.double() - 1.0
            if math.isinf(far):
                d = (2.0 * near / (1.0 - z).clamp_min(1e-12)).float()
            else:
                d = (2.0 * near * far / (far + near - z * (far - near))).float()
        else:
            def linear_depth(lo: float) -> None:
                if lo <= 0:
                    raise InvalidInputError(name, "positive linear view depth in scene units (depth_format='linear')",
                                            f"minimum {lo:.3g}", "device depth? set depth_format='device'")
            self._check(linear_depth, d.min())
        return d.clamp_max(far if math.isfinite(far) else 1e30)

    def _motion(self, res, name, size, scale, jitter, prev_jitter) -> torch.Tensor:
        w, h = size
        if self.desc.display_res_motion:
            dw, dh = self.display_size
            m = self._tensor(res, name, (dw, dh), 2)
            m = torch.nn.functional.interpolate(m, size=(h, w), mode="nearest")
            m = m * torch.tensor([w / dw, h / dh], device=self.device).view(1, 2, 1, 1)
        else:
            m = self._tensor(res, name, size, 2)
        m = m * torch.tensor(scale, device=self.device, dtype=torch.float32).view(1, 2, 1, 1)
        if self.desc.jittered_motion and prev_jitter is not None:
            # jittered motion = (prev + j_prev) - (cur + j_cur): take the jitter difference out
            d = torch.tensor([prev_jitter[0] - jitter[0], prev_jitter[1] - jitter[1]],
                             device=self.device).view(1, 2, 1, 1)
            m = m - d
        lim = torch.tensor([MOTION_LIMIT_FRAMES * w, MOTION_LIMIT_FRAMES * h], device=self.device).view(1, 2, 1, 1)
        def far_off(n: float, largest: float) -> None:
            if n:
                self._message(Severity.WARNING, f"{name}: {int(n)} pixel(s) move more than {MOTION_LIMIT_FRAMES:g} "
                              f"frame sizes (largest {largest:.0f} px); clamped. Motion vectors are in pixels, "
                              f"not NDC or UV (see motion_scale)")
        self._check(far_off, (m.abs() > lim).any(dim=1).sum(), m.abs().max())
        return torch.maximum(torch.minimum(m, lim), -lim)  # unchanged where nothing is beyond

    def _motion_or_none(self, res, name, size, scale, jitter, prev_jitter) -> torch.Tensor:
        """Motion vectors; zeros when the engine has none and the pass estimates them itself
        (``stss_flow``: the motion pass), an error naming the field when the pass needs them."""
        if res is None and "motion" not in self.pass_.inputs:
            w, h = size
            return torch.zeros((1, 2, h, w), device=self.device)
        if res is None:
            raise InvalidInputError(name, f"an image (the {self.desc.pass_name} pass reads motion vectors; "
                                    f"engines without them: pass_name='stss_flow')", "None")
        return self._motion(res, name, size, scale, jitter, prev_jitter)

    def _gbuffers(self, src, prefix: str, size) -> dict[str, torch.Tensor]:
        out = {}
        required = self.pass_.inputs
        for name, (channels, default) in _DEFAULTS.items():
            res = getattr(src, name)
            field = f"{prefix}.{name}"
            if res is None:
                if name in required:
                    raise InvalidInputError(field, f"an image (the {self.desc.pass_name} pass reads {name})", "None")
                w, h = size
                if name == "normal":
                    t = torch.zeros((1, 3, h, w), device=self.device)
                    t[:, 2] = 1.0
                elif name == "object_id":
                    t = torch.ones((1, 1, h, w), dtype=torch.int32, device=self.device)
                else:
                    t = torch.full((1, channels, h, w), float(default), device=self.device)
                out[name] = t
            else:
                out[name] = self._tensor(res, field, size, channels, integer=name == "object_id")
        return out

    def _ui(self, res, name) -> torch.Tensor | None:
        if res is None:
            return None
        ui = self._tensor(res, name, self.display_size, 4, allow_larger=False)
        self._check(_in_unit_range(name, "alpha in [0, 1] (premultiplied RGBA)"), ui[:, 3:4].min(), ui[:, 3:4].max())
        return ui

    def _finish(self, out: torch.Tensor, exposure: float, ui: torch.Tensor | None) -> torch.Tensor:
        """Pass output -> display size, back in the input's exposure, UI composited over it
        (never warped)."""
        dw, dh = self.display_size
        if out.shape[-2:] != (dh, dw):  # a 2x pass at another ratio: resample in the encoded space
            out = decode_color(torch.nn.functional.interpolate(encode_color(out), size=(dh, dw), mode="bicubic",
                                                               align_corners=False).clamp(0, 1))
        out = out * exposure
        if ui is not None:
            out = ui[:, :3] + (1.0 - ui[:, 3:4]) * out
        return out

    def _inputs(self, frame: FrameDescription) -> dict:
        """Every input of ``frame`` checked and converted; the context's state is only read.
        Shape, type and size checks raise at once, value checks when ``self._checks`` runs
        at the end (the first failing one, in input order)."""
        s = self._scalars(frame)
        size = self._frame_render_size(frame)
        view, proj = matrix(frame.view, "frame.view"), matrix(frame.proj, "frame.proj")
        prev = {name: matrix(getattr(frame, name), f"frame.{name}") for name in ("prev_view", "prev_proj")
                if getattr(frame, name) is not None}  # checked whenever given, compared in validation mode
        if self.desc.validation and self._prev_view is not None and not s["reset"]:
            for name, known in (("prev_view", self._prev_view), ("prev_proj", self._prev_proj)):
                if name in prev and not np.allclose(prev[name], known, atol=1e-4):
                    self._message(Severity.WARNING, f"frame.{name} differs from the previous display frame's "
                                  f"{name[5:]} (the last generated frame's, when frames are generated): camera "
                                  f"matrices out of step with the frames?")
        raw = self._tensor(frame.color, "frame.color", size, (3, 4))
        color = raw.clamp_min(0)  # unchanged unless negative (warned about below)
        hdr, exposure = self.desc.hdr, s["exposure"]

        def colour_values(negative: float, maximum: float, beyond: float) -> None:
            if negative:
                self._message(Severity.WARNING, f"frame.color: {int(negative)} negative value(s) clamped to 0 "
                              "(linear colour)")
            if not hdr and maximum > 1.0 * exposure + 1e-3:
                raise InvalidInputError("frame.color", "linear LDR colour in [0, 1] (desc.hdr=False)",
                                        f"maximum {maximum:.3g}", "HDR input? set hdr=True")
            if beyond:
                raise InvalidInputError("frame.pre_exposure", "a factor that keeps colour / pre_exposure finite",
                                        exposure, f"{int(beyond)} value(s) overflow")
        color = color / exposure
        self._check(colour_values, (raw < 0).sum(), raw.max().clamp_min(0), (~torch.isfinite(color)).sum())
        depth = self._depth(frame.depth, "frame.depth", size, s["near"], s["far"])
        reset = s["reset"] or self._last_index is None or size != self._render_size
        prev_jitter = None if reset else self._prev_jitter
        motion = self._motion_or_none(frame.motion, "frame.motion", size, s["motion_scale"], s["jitter"], prev_jitter)
        gb = self._gbuffers(frame, "frame", size)
        for name in ("reactive", "transparency"):
            res = getattr(frame, name)
            if res is not None:
                m = self._tensor(res, f"frame.{name}", size, 1)
                self._check(_in_unit_range(f"frame.{name}"), m.min(), m.max())
        if frame.hudless is not None:
            self._tensor(frame.hudless, "frame.hudless", size, (3, 4))
        ui = self._ui(frame.ui, "frame.ui")
        generated = []
        prev_jitter = s["jitter"]
        for k, g in enumerate(frame.generated):
            name = f"frame.generated[{k}]"
            if not isinstance(g, GeneratedFrameDescription):
                raise InvalidInputError(name, "a plugin.GeneratedFrameDescription", f"a {type(g).__name__}")
            gj = _pair(g.jitter_px, f"{name}.jitter_px", "(x, y) finite render pixels")
            if abs(gj[0]) > 0.5 or abs(gj[1]) > 0.5:
                raise InvalidInputError(f"{name}.jitter_px", "each in [-0.5, 0.5] render pixels", f"({gj[0]}, {gj[1]})")
            generated.append({
                "jitter": gj, "view": matrix(g.view, f"{name}.view"), "proj": matrix(g.proj, f"{name}.proj"),
                "depth": self._depth(g.depth, f"{name}.depth", size, s["near"], s["far"]),
                "motion": self._motion_or_none(g.motion, f"{name}.motion", size, s["motion_scale"], gj, prev_jitter),
                "gb": self._gbuffers(g, name, size), "ui": self._ui(g.ui, f"{name}.ui")})
            prev_jitter = gj
        self._checks.run()  # the one read back of every value check (one host synchronisation on CUDA)
        return {"s": s, "size": size, "view": view, "proj": proj, "color": color, "depth": depth, "motion": motion,
                "gb": gb, "ui": ui, "reset": reset, "generated": generated}

    def dispatch(self, frame: FrameDescription) -> DispatchResult:
        """Upscale ``frame`` and extrapolate its generated frame(s); see :class:`DispatchResult`.

        Raises :class:`~plugin.errors.InvalidInputError` naming the field for bad input
        (the context's state is then unchanged: fix the frame and dispatch it again), and
        :class:`~plugin.errors.BackendUnavailableError` when the back-end fails to start."""
        self._alive("dispatch")
        self._timer.begin()
        notes = set(self._gl_notes)
        self._queue, self._checks = [], ValueChecks()
        try:
            x = self._inputs(frame)
            size = x["size"]
            if size != self._render_size:  # the pass's runner may start here: a failure refuses the frame
                try:
                    self.pass_.setup(size, self._pass_display(size))
                except (BackendUnavailable, BackendError) as e:
                    raise BackendUnavailableError(f"desc.backend: expected the {self.desc.backend!r} back-end to "
                                                  f"start, got {type(e).__name__}: {e}") from e
        except BaseException:
            self._gl_notes = notes  # a refused frame's notes are sent with the next one
            raise
        finally:
            queued, self._queue, self._checks = self._queue, None, None
        # every input is valid: from here on the context's state changes
        self._render_size = size
        warnings: list[str] = []
        for severity, text in queued:
            self._message(severity, text, warnings)
        s, reset, ui = x["s"], x["reset"], x["ui"]
        self._jitters = s["jitters"]
        self._timer.mark("inputs")
        # an infinite far plane: the depth features' log scale spans 10^4 near distances
        far = s["far"] if math.isfinite(s["far"]) else s["near"] * 1e4
        f = Frame(index=self._display_index, motion=x["motion"], depth=x["depth"], view=x["view"], proj=x["proj"],
                  jitter_px=s["jitter"], near=s["near"], far=far, color=x["color"], reset=reset, **x["gb"])
        self._display_index += 1
        out = self.pass_(f)
        self._timer.mark("upscale")
        frames, outs = [f], [out]
        self._prev_jitter = s["jitter"]
        generated = []
        for k, g in enumerate(x["generated"]):
            gf = Frame(index=self._display_index, motion=g["motion"], depth=g["depth"], view=g["view"], proj=g["proj"],
                       jitter_px=g["jitter"], near=s["near"], far=f.far, color=None, **g["gb"])
            self._display_index += 1
            self._prev_jitter = g["jitter"]
            gout = self.pass_(gf)
            frames.append(gf)
            outs.append(gout)
            generated.append((gout, g["ui"] if g["ui"] is not None else ui,
                              s["frame_time_ms"] * (k + 1) / (len(x["generated"]) + 1)))
        self._timer.mark("generate")
        like = kind_of(frame.color)
        result_out = to_output(self._finish(out, s["exposure"], ui), like)
        gen = [GeneratedFrame(to_output(self._finish(o, s["exposure"], u), like), t) for o, u, t in generated]
        self._timer.mark("ui")
        timings = self._timer.end(s["index"])
        gpu_frame, gpu_timings = self._timer.poll()
        self._last_index = s["index"]
        self._prev_view, self._prev_proj = frames[-1].view, frames[-1].proj
        self.last_frames, self.last_outputs = frames, outs
        if self._multiplier is not None:  # the next frame's count, from this frame's render time
            self._multiplier.update(s["render_ms"])
        return DispatchResult(output=result_out, generated=gen, status=int(Result.OK), warnings=warnings,
                              timings_ms=timings, reset=reset, gpu_timings_ms=gpu_timings,
                              gpu_timings_frame=gpu_frame, generated_frames=len(gen),
                              next_generated_frames=self.next_generated_frames)
