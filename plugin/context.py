"""The plugin context: created from a :class:`ContextDescription`, fed one
:class:`FrameDescription` per rendered frame, closed when done.

    with plugin.Context(plugin.ContextDescription((960, 540), (1920, 1080))) as ctx:
        result = ctx.dispatch(frame)       # result.output, result.generated[0].color

Per dispatch: validate and convert the inputs, upscale the rendered frame, extrapolate the
generated frame(s) from their G-buffers and the history, composite the UI last (never
warped), and time every stage. The runtime keeps the history; a reset flag, an index jump
with ``reset=True`` or a render-size change drops it.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from stss_runtime.backends import BackendUnavailable
from stss_runtime.frame import Frame
from stss_runtime.history import decode_color, encode_color
from stss_runtime.passes import PASSES, create_pass

from .descriptions import (ContextDescription, DispatchResult, FrameDescription, GeneratedFrame,
                           GeneratedFrameDescription, Severity)
from .errors import (BackendUnavailableError, ContextStateError, InvalidInputError, Result,
                     UnsupportedError)
from . import gl_interop
from .resources import image_shape, kind_of, matrix, to_output, to_tensor
from .timing import StageTimer

#: Motion vectors beyond this many frame sizes off-screen are clamped (with a warning).
MOTION_LIMIT_FRAMES = 2.0
#: Frames of jitter history looked at for "sequence too short" (validation mode).
JITTER_WINDOW = 16

_DEFAULTS = {"albedo": (3, 0.5), "normal": (3, None), "roughness": (1, 0.5), "metallic": (1, 0.0),
             "object_id": (1, 1)}


def _size_pair(value: Any, name: str, minimum: int = 8) -> tuple[int, int]:
    try:
        w, h = value
    except (TypeError, ValueError):
        raise InvalidInputError(name, "(width, height) integers", repr(value)) from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (w, h)):
        raise InvalidInputError(name, "(width, height) integers", repr(value))
    w, h = int(w), int(h)
    if w < minimum or h < minimum:
        raise InvalidInputError(name, f"at least {minimum}x{minimum}", f"{w}x{h}")
    return w, h


def _finite(value: Any, name: str, expected: str = "a finite number") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(name, expected, repr(value)) from None
    if not math.isfinite(v):
        raise InvalidInputError(name, expected, repr(value))
    return v


def _pair(value: Any, name: str, expected: str) -> tuple[float, float]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise InvalidInputError(name, expected, repr(value)) from None
    return _finite(a, name, expected), _finite(b, name, expected)


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
        try:
            self.pass_ = create_pass(self.desc.pass_name, **kwargs)
        except BackendUnavailable as e:
            raise BackendUnavailableError(str(e)) from e
        self._destroyed = False
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
        self._warnings: list[str] = []  # the dispatch in progress's (for messages from the GL reader)
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
        if desc.pass_name not in PASSES:
            raise UnsupportedError("desc.pass_name", f"one of {', '.join(PASSES)}", repr(desc.pass_name))
        if desc.backend not in ("torch", "onnxruntime", "tensorrt"):
            raise UnsupportedError("desc.backend", "torch, onnxruntime or tensorrt", repr(desc.backend))
        if desc.precision not in ("fp32", "fp16"):
            raise UnsupportedError("desc.precision", "fp32 or fp16", repr(desc.precision))
        if desc.device not in ("cpu", "cuda"):
            raise UnsupportedError("desc.device", "'cpu' or 'cuda'", repr(desc.device))
        if desc.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("desc.device: expected a CUDA GPU, got none on this machine "
                                          "(a CPU build of PyTorch, or no NVIDIA driver); use device='cpu'")
        if desc.generated_frames not in (0, 1):
            raise UnsupportedError("desc.generated_frames", "0 or 1 (STSS extrapolates one frame per rendered frame)",
                                   repr(desc.generated_frames))
        if desc.depth_format not in ("linear", "device"):
            raise InvalidInputError("desc.depth_format", "'linear' or 'device'", repr(desc.depth_format))
        if desc.message_callback is not None and not callable(desc.message_callback):
            raise InvalidInputError("desc.message_callback", "a callable (severity, message) or None",
                                    f"a {type(desc.message_callback).__name__}")
        # 'cuda' that cannot be served is refused now, saying what is missing
        gl_interop.decide(desc.gl_interop, torch.device(desc.device),
                          probe=gl_interop.availability if desc.gl_interop == "cuda" else (lambda: (True, "")))
        return replace(desc, max_render_size=(mw, mh), display_size=(dw, dh))

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

    def reset(self) -> None:
        """Drop the history now (as ``reset=True`` on the next frame does)."""
        self._alive("reset")
        self._last_index = None

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
            self._message(severity, text, self._warnings)

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
                         gl_reader=self._read_gl)

    def _message(self, severity: Severity, text: str, warnings: list[str]) -> None:
        if severity >= Severity.WARNING:
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
            h, w = image_shape(frame.color, "frame.color")[:2]
            field = "frame.color"  # the render size comes from the colour image
        mw, mh = self.desc.max_render_size
        if w > mw or h > mh or w < 8 or h < 8:
            raise InvalidInputError(field, f"a render size of 8x8 .. {mw}x{mh} (desc.max_render_size)", f"{w}x{h}")
        return w, h

    def _scalars(self, frame: FrameDescription, warnings: list[str]) -> dict:
        if not isinstance(frame, FrameDescription):
            raise InvalidInputError("frame", "a plugin.FrameDescription", f"a {type(frame).__name__}")
        if isinstance(frame.frame_index, bool) or not isinstance(frame.frame_index, (int, np.integer)):
            raise InvalidInputError("frame.frame_index", "an integer", repr(frame.frame_index))
        index = int(frame.frame_index)
        if self._last_index is not None and index != self._last_index + 1 and not frame.reset:
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
        n = len(frame.generated)
        if n != self.desc.generated_frames:
            raise InvalidInputError("frame.generated", f"{self.desc.generated_frames} generated-frame description(s) "
                                    f"(desc.generated_frames)", f"{n}")
        if self.desc.validation:
            if (jx, jy) == (0.0, 0.0):
                self._message(Severity.WARNING, "frame.jitter_px is (0, 0): without sub-pixel jitter the "
                              "upscaler cannot recover detail (use plugin.jitter_offset)", warnings)
            self._jitters = (self._jitters + [(jx, jy)])[-JITTER_WINDOW:]
            distinct = len(set(self._jitters))
            if len(self._jitters) == JITTER_WINDOW and distinct < 8:
                self._message(Severity.WARNING, f"frame.jitter_px: only {distinct} distinct jitter values in the "
                              f"last {JITTER_WINDOW} frames; the recommended sequence has "
                              f"plugin.jitter_phase_count(...) phases", warnings)
        return {"index": index, "jitter": (jx, jy), "frame_time_ms": ft, "near": near, "far": far,
                "exposure": exposure, "motion_scale": scale}

    def _depth(self, res, name, size, near, far) -> torch.Tensor:
        d = self._tensor(res, name, size, 1)
        if self.desc.depth_format == "device":
            if float(d.min()) < 0 or float(d.max()) > 1:
                raise InvalidInputError(name, "OpenGL device depth in [0, 1] (depth_format='device')",
                                        f"values in [{float(d.min()):.3g}, {float(d.max()):.3g}]")
            dd = 1.0 - d if self.desc.inverted_depth else d
            z = 2.0 * dd.double() - 1.0
            if math.isinf(far):
                d = (2.0 * near / (1.0 - z).clamp_min(1e-12)).float()
            else:
                d = (2.0 * near * far / (far + near - z * (far - near))).float()
        elif float(d.min()) <= 0:
            raise InvalidInputError(name, "positive linear view depth in scene units (depth_format='linear')",
                                    f"minimum {float(d.min()):.3g}", "device depth? set depth_format='device'")
        return d.clamp_max(far if math.isfinite(far) else 1e30)

    def _motion(self, res, name, size, scale, jitter, prev_jitter, warnings) -> torch.Tensor:
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
        beyond = (m.abs() > lim)
        if bool(beyond.any()):
            n = int(beyond.any(dim=1).sum())
            self._message(Severity.WARNING, f"{name}: {n} pixel(s) move more than {MOTION_LIMIT_FRAMES:g} frame "
                          f"sizes (largest {float(m.abs().max()):.0f} px); clamped. Motion vectors are in pixels, "
                          f"not NDC or UV (see motion_scale)", warnings)
            m = torch.maximum(torch.minimum(m, lim), -lim)
        return m

    def _motion_or_none(self, res, name, size, scale, jitter, prev_jitter, warnings) -> torch.Tensor:
        """Motion vectors; zeros when the engine has none and the pass estimates them itself
        (``stss_flow``: the motion pass), an error naming the field when the pass needs them."""
        if res is None and "motion" not in self.pass_.inputs:
            w, h = size
            return torch.zeros((1, 2, h, w), device=self.device)
        if res is None:
            raise InvalidInputError(name, f"an image (the {self.desc.pass_name} pass reads motion vectors; "
                                    f"engines without them: pass_name='stss_flow')", "None")
        return self._motion(res, name, size, scale, jitter, prev_jitter, warnings)

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
        a = ui[:, 3:4]
        if float(a.min()) < 0 or float(a.max()) > 1:
            raise InvalidInputError(name, "alpha in [0, 1] (premultiplied RGBA)", f"[{float(a.min()):.3g}, {float(a.max()):.3g}]")
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

    def dispatch(self, frame: FrameDescription) -> DispatchResult:
        """Upscale ``frame`` and extrapolate its generated frame(s); see :class:`DispatchResult`.

        Raises :class:`~plugin.errors.InvalidInputError` naming the field for bad input
        (the context's state is then unchanged: fix the frame and dispatch it again)."""
        self._alive("dispatch")
        warnings: list[str] = []
        self._warnings = warnings
        self._timer.begin()
        s = self._scalars(frame, warnings)
        size = self._frame_render_size(frame)
        view, proj = matrix(frame.view, "frame.view"), matrix(frame.proj, "frame.proj")
        prev = {name: matrix(getattr(frame, name), f"frame.{name}") for name in ("prev_view", "prev_proj")
                if getattr(frame, name) is not None}  # checked whenever given, compared in validation mode
        if self.desc.validation and self._prev_view is not None and not frame.reset:
            for name, known in (("prev_view", self._prev_view), ("prev_proj", self._prev_proj)):
                if name in prev and not np.allclose(prev[name], known, atol=1e-4):
                    self._message(Severity.WARNING, f"frame.{name} differs from the previous display frame's "
                                  f"{name[5:]} (the last generated frame's, with generated_frames=1): camera "
                                  f"matrices out of step with the frames?", warnings)
        color = self._tensor(frame.color, "frame.color", size, (3, 4))
        if float(color.min()) < 0:
            n = int((color < 0).sum())
            self._message(Severity.WARNING, f"frame.color: {n} negative value(s) clamped to 0 (linear colour)", warnings)
            color = color.clamp_min(0)
        if not self.desc.hdr and float(color.max()) > 1.0 * s["exposure"] + 1e-3:
            raise InvalidInputError("frame.color", "linear LDR colour in [0, 1] (desc.hdr=False)",
                                    f"maximum {float(color.max()):.3g}", "HDR input? set hdr=True")
        color = color / s["exposure"]
        depth = self._depth(frame.depth, "frame.depth", size, s["near"], s["far"])
        reset = bool(frame.reset) or self._last_index is None or size != self._render_size
        prev_jitter = None if reset else self._prev_jitter
        motion = self._motion_or_none(frame.motion, "frame.motion", size, s["motion_scale"], s["jitter"],
                                      prev_jitter, warnings)
        gb = self._gbuffers(frame, "frame", size)
        for name in ("reactive", "transparency"):
            res = getattr(frame, name)
            if res is not None:
                m = self._tensor(res, f"frame.{name}", size, 1)
                if float(m.min()) < 0 or float(m.max()) > 1:
                    raise InvalidInputError(f"frame.{name}", "values in [0, 1]", f"[{float(m.min()):.3g}, {float(m.max()):.3g}]")
        if frame.hudless is not None:
            self._tensor(frame.hudless, "frame.hudless", size, (3, 4))
        ui = self._ui(frame.ui, "frame.ui")
        generated_inputs = []
        prev_jitter = s["jitter"]
        for k, g in enumerate(frame.generated):
            name = f"frame.generated[{k}]"
            if not isinstance(g, GeneratedFrameDescription):
                raise InvalidInputError(name, "a plugin.GeneratedFrameDescription", f"a {type(g).__name__}")
            gj = _pair(g.jitter_px, f"{name}.jitter_px", "(x, y) finite render pixels")
            if abs(gj[0]) > 0.5 or abs(gj[1]) > 0.5:
                raise InvalidInputError(f"{name}.jitter_px", "each in [-0.5, 0.5] render pixels", f"({gj[0]}, {gj[1]})")
            generated_inputs.append({
                "jitter": gj, "view": matrix(g.view, f"{name}.view"), "proj": matrix(g.proj, f"{name}.proj"),
                "depth": self._depth(g.depth, f"{name}.depth", size, s["near"], s["far"]),
                "motion": self._motion_or_none(g.motion, f"{name}.motion", size, s["motion_scale"], gj,
                                               prev_jitter, warnings),
                "gb": self._gbuffers(g, name, size), "ui": self._ui(g.ui, f"{name}.ui")})
            prev_jitter = gj
        # every input is valid: from here on the context's state changes
        if size != self._render_size:
            self.pass_.setup(size, self._pass_display(size))
            self._render_size = size
        self._timer.mark("inputs")
        # an infinite far plane: the depth features' log scale spans 10^4 near distances
        far = s["far"] if math.isfinite(s["far"]) else s["near"] * 1e4
        f = Frame(index=self._display_index, motion=motion, depth=depth, view=view, proj=proj,
                  jitter_px=s["jitter"], near=s["near"], far=far, color=color, reset=reset, **gb)
        self._display_index += 1
        out = self.pass_(f)
        self._timer.mark("upscale")
        frames, outs = [f], [out]
        self._prev_jitter = s["jitter"]
        generated = []
        for k, g in enumerate(generated_inputs):
            gf = Frame(index=self._display_index, motion=g["motion"], depth=g["depth"], view=g["view"], proj=g["proj"],
                       jitter_px=g["jitter"], near=s["near"], far=f.far, color=None, **g["gb"])
            self._display_index += 1
            self._prev_jitter = g["jitter"]
            gout = self.pass_(gf)
            frames.append(gf)
            outs.append(gout)
            generated.append((gout, g["ui"] if g["ui"] is not None else ui,
                              s["frame_time_ms"] * (k + 1) / (len(generated_inputs) + 1)))
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
        return DispatchResult(output=result_out, generated=gen, status=int(Result.OK), warnings=warnings,
                              timings_ms=timings, reset=reset, gpu_timings_ms=gpu_timings,
                              gpu_timings_frame=gpu_frame)
