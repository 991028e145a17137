"""Where the demo runs the plugin and with what, for the hardware at hand: the device, the
back-end, the STSS network, the display size and the comparison view, each choice with the
reason it was made (``demo --device auto --preset auto``, the defaults).

- **A CUDA GPU that PyTorch sees**: the plugin runs on it (torch with CUDA graphs, the
  default network at 960x540); in a window whose OpenGL context is NVIDIA's, the frame's
  textures reach CUDA through CUDA-OpenGL interop instead of host memory.
- **No usable GPU, in a window**: the **CPU preset**, picked for frame rate: the small STSS
  network (``stss_small``, 110k parameters, when its weights are shipped), the fastest CPU
  back-end here (OpenVINO, computing in bfloat16 on CPUs with AMX / AVX512-BF16), 640x360
  and no comparison view (a wipe or side by side renders every frame a second time at full
  resolution). Its quality on held-out frames and its speed: docs/RESULTS.md.
- **No usable GPU, headless** (``make demo`` on a CI-class machine): what the demo always did
  there, the default network on torch at 960x540 with the wipe: a clip and a comparison
  sheet are about quality, not frame rate.

Every explicit option (``--device``, ``--backend``, ``--network``, ``--display-size``,
``--compare``) overrides what the preset would pick.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

DEVICES = ("auto", "cpu", "cuda")
PRESETS = ("auto", "cpu", "default")
#: What the CPU preset picks (back-end: the first of CPU_BACKENDS that runs here).
CPU_PRESET_NETWORK = "stss_small"
CPU_PRESET_DISPLAY = (640, 360)
CPU_PRESET_SHADOW_MAP = 1024
CPU_BACKENDS = ("openvino", "onnxruntime", "torch")  # fastest first (BENCHMARKS.md)
DEFAULT_DISPLAY = (960, 540)
#: torch's own thread count before the demo changes it
DEFAULT_TORCH_THREADS = torch.get_num_threads()


class ChoiceError(ValueError):
    """The options ask for something this machine cannot do (``--device cuda`` without a GPU,
    OpenVINO on CUDA); the message says what and why."""


@dataclass(frozen=True)
class RuntimeChoice:
    """What the demo runs, and why (``reasons``: one line per choice, in order)."""

    device: str = "cpu"
    backend: str = "torch"
    precision: str = "fp32"
    network: str = "stss"
    display_size: tuple[int, int] = DEFAULT_DISPLAY
    compare: str = "wipe"
    preset: str = "default"  # "cpu" or "default"
    gl_textures: bool = False  # GL textures handed to the plugin (CUDA-OpenGL interop)
    torch_threads: int | None = None  # torch's CPU threads for the demo process (None: torch's default)
    shadow_map_size: int = 2048  # the renderer's shadow map, pixels per side
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def compute(self) -> str:
        """What the network computes in: "fp32", "fp16", or "bf16" (OpenVINO's fp16 on AMX)."""
        if self.backend == "openvino" and self.precision == "fp16":
            from stss_runtime.backends.openvino_backend import sixteen_bit_type

            return sixteen_bit_type() or "fp16"
        return self.precision

    def apply_threads(self) -> None:
        """Set torch's CPU threads for this choice (the CPU preset: one; otherwise torch's default)."""
        torch.set_num_threads(self.torch_threads or DEFAULT_TORCH_THREADS)

    def headline(self, pass_name: str | None = None) -> str:
        """One line: ``cpu preset: stss_small on openvino (bf16), 640x360, compare off``: the
        STSS network for the passes that take one, else ``pass_name`` (the pass that runs)."""
        from plugin.helpers import NETWORK_PASSES

        w, h = self.display_size
        interop = ", CUDA-OpenGL interop" if self.gl_textures else ""
        what = self.network if pass_name is None or pass_name in NETWORK_PASSES else pass_name
        return (f"{self.preset} preset: {what} on {self.device} / {self.backend} ({self.compute}), "
                f"{w}x{h}, compare {self.compare}{interop}")

    def with_gl(self, vendor: str, renderer: str = "") -> "RuntimeChoice":
        """The choice once the window's OpenGL context is known: on CUDA, interop when the
        context is NVIDIA's (CUDA cannot map another driver's textures)."""
        if self.device != "cuda":
            return self
        if "nvidia" in vendor.lower():
            return replace(self, gl_textures=True, reasons=self.reasons + (
                f"CUDA-OpenGL interop: the window's OpenGL context is NVIDIA's ({renderer or vendor}), so the "
                "rendered colour and the generated frame's motion reach CUDA without a host copy",))
        return replace(self, gl_textures=False, reasons=self.reasons + (
            f"no CUDA-OpenGL interop: the window's OpenGL context is {vendor} {renderer}, not NVIDIA's "
            "(CUDA maps only the NVIDIA driver's textures): frames go through host memory",))


def cuda_status() -> tuple[bool, str]:
    """(PyTorch can run on a CUDA GPU here, why or why not)."""
    if torch.cuda.is_available():
        return True, f"PyTorch sees a CUDA GPU ({torch.cuda.get_device_name(0)})"
    if torch.version.cuda is None:
        return False, f"PyTorch sees no CUDA GPU: this PyTorch ({torch.__version__}) is a CPU build"
    return False, ("PyTorch sees no CUDA GPU: it is a CUDA build, but finds no NVIDIA GPU or driver "
                   "(or CUDA_VISIBLE_DEVICES hides it)")


def _backends() -> dict[str, tuple[bool, str]]:
    from stss_runtime.backends import availability

    return availability()


def _networks() -> tuple[str, ...]:
    from plugin.helpers import network_names

    return network_names()


def choose(device: str = "auto", backend: str = "auto", network: str = "auto", preset: str = "auto",
           display_size: tuple[int, int] | None = None, compare: str | None = None, window: bool = True,
           cuda: tuple[bool, str] | None = None, backends: dict[str, tuple[bool, str]] | None = None,
           networks: tuple[str, ...] | None = None) -> RuntimeChoice:
    """Resolve the demo's options for this machine. ``cuda``, ``backends`` and ``networks``:
    what :func:`cuda_status`, the back-ends' availability and the shipped networks say (given
    by tests). :class:`ChoiceError` when the options cannot be served here."""
    if device not in DEVICES:
        raise ChoiceError(f"--device: expected one of {', '.join(DEVICES)}, got {device!r}")
    if preset not in PRESETS:
        raise ChoiceError(f"--preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    cuda_ok, cuda_why = cuda if cuda is not None else cuda_status()
    reasons: list[str] = []
    if device == "auto":
        if preset == "cpu":
            device = "cpu"
            reasons.append("device cpu: the CPU preset was asked for")
        else:
            device = "cuda" if cuda_ok else "cpu"
            reasons.append(f"device {device} (auto): {cuda_why}")
    elif device == "cuda" and not cuda_ok:
        raise ChoiceError(f"--device cuda: {cuda_why}; use --device cpu or auto")
    else:
        reasons.append(f"device {device}: asked for")
    if preset == "auto":
        preset = "cpu" if device == "cpu" and window else "default"
        if device == "cuda":
            reasons.append("default preset: the network runs on the GPU")
        elif window:
            reasons.append("CPU preset (auto): no usable GPU and a window, so the network, back-end and size are "
                           "picked for frame rate")
        else:
            reasons.append("default preset (auto): headless, the clip and the comparison sheet are about quality, "
                           "not frame rate (--preset cpu for the CPU preset)")
    elif preset == "cpu" and device == "cuda":
        raise ChoiceError("--preset cpu: it runs on the CPU; leave --device cuda out, or use --preset default")
    avail = backends if backends is not None else _backends()
    shipped = networks if networks is not None else _networks()

    if network == "auto":
        if preset == "cpu" and CPU_PRESET_NETWORK in shipped:
            network = CPU_PRESET_NETWORK
            reasons.append(f"network {network}: the small STSS network, trained for the CPU preset")
        else:
            network = "stss"
            reasons.append("network stss: the default" + (
                f" ({CPU_PRESET_NETWORK} has no shipped weights)" if preset == "cpu" else ""))
    elif network not in shipped:
        raise ChoiceError(f"--network: expected one with shipped weights ({', '.join(shipped)}), got {network!r}")
    else:
        reasons.append(f"network {network}: asked for")

    precision = "fp32"
    if backend == "auto":
        if device == "cuda":
            backend = "torch"
            reasons.append("back-end torch: CUDA graphs (--backend tensorrt where TensorRT is installed)")
        elif preset == "cpu":
            backend = next(b for b in CPU_BACKENDS if avail.get(b, (b == "torch",))[0])
            reasons.append(f"back-end {backend}: the fastest CPU back-end that runs here (BENCHMARKS.md)")
        else:
            backend = "torch"
            reasons.append("back-end torch: the default")
    else:
        ok, why = avail.get(backend, (False, "unknown back-end"))
        if not ok:
            raise ChoiceError(f"--backend {backend}: {why}")
        if backend == "openvino" and device == "cuda":
            raise ChoiceError("--backend openvino: it runs on the CPU; use --device cpu")
        if backend == "tensorrt" and device != "cuda":
            raise ChoiceError("--backend tensorrt: it runs on NVIDIA GPUs; use --device cuda")
        reasons.append(f"back-end {backend}: asked for")
    if backend == "openvino" and preset == "cpu":
        from stss_runtime.backends.openvino_backend import sixteen_bit_type

        if sixteen_bit_type() == "bf16":
            precision = "fp16"
            reasons.append("precision: bfloat16 inside (this CPU computes it natively: AMX / AVX512-BF16)")

    torch_threads = None
    if preset == "cpu" and backend != "torch":
        torch_threads = 1
        reasons.append(f"torch threads 1: the network runs in {backend}'s own threads; torch's do the small "
                       "host-side work and would only spin against them on a busy CPU")
    shadow = 2048
    if preset == "cpu" and device == "cpu":
        shadow = CPU_PRESET_SHADOW_MAP
        reasons.append(f"shadow map {shadow}x{shadow} (default 2048): without a GPU, OpenGL runs on a software "
                       "rasteriser, where the shadow map is the costliest pass")
    if display_size is None:
        display_size = CPU_PRESET_DISPLAY if preset == "cpu" else DEFAULT_DISPLAY
        if preset == "cpu":
            reasons.append(f"display {display_size[0]}x{display_size[1]}: the CPU preset's size "
                           f"(render {display_size[0] // 2}x{display_size[1] // 2})")
    if compare is None:
        compare = "off" if preset == "cpu" else "wipe"
        if preset == "cpu":
            reasons.append("compare off: a wipe or side by side renders every frame again at full resolution "
                           "(choose one in the panel)")
    return RuntimeChoice(device=device, backend=backend, precision=precision, network=network,
                         display_size=tuple(display_size), compare=compare, preset=preset,
                         torch_threads=torch_threads, shadow_map_size=shadow, reasons=tuple(reasons))


def offered(device: str) -> tuple[list[str], list[str], list[str]]:
    """What the panel offers: (devices, the back-ends that run on ``device`` here, the STSS
    networks with shipped weights)."""
    devices = ["cpu"] + (["cuda"] if cuda_status()[0] else [])
    usable = {"cpu": ("torch", "onnxruntime", "openvino"), "cuda": ("torch", "onnxruntime", "tensorrt")}[device]
    avail = _backends()
    backends = [b for b in usable if avail.get(b, (False,))[0]]
    if device == "cuda" and "onnxruntime" in backends:
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            backends.remove("onnxruntime")
    return devices, backends, list(_networks())


__all__ = ["CPU_PRESET_DISPLAY", "CPU_PRESET_NETWORK", "ChoiceError", "DEVICES", "PRESETS", "RuntimeChoice",
           "choose", "cuda_status", "offered"]
