"""The demo picks where the plugin runs for the hardware at hand and says why: on this
machine (no GPU) ``--device auto`` picks the CPU, the CPU preset in a window and the
unchanged defaults headless; with a GPU (simulated: the CUDA branch itself runs in the GPU
check) it picks CUDA, with CUDA-OpenGL interop only under an NVIDIA OpenGL context."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from demo_renderer.hardware import CPU_PRESET_DISPLAY, ChoiceError, RuntimeChoice, choose

NO_GPU = (False, "PyTorch sees no CUDA GPU: this PyTorch (2.13.0+cpu) is a CPU build")
GPU = (True, "PyTorch sees a CUDA GPU (NVIDIA H100)")
ALL = {b: (True, "") for b in ("torch", "onnxruntime", "openvino")} | {"tensorrt": (False, "no TensorRT")}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the choice on a machine without a GPU")
def test_auto_picks_the_cpu_here_and_says_why():
    win = choose(window=True)
    assert win.device == "cpu" and win.preset == "cpu"
    assert "device cpu (auto): PyTorch sees no CUDA GPU" in win.reasons[0]
    assert win.display_size == CPU_PRESET_DISPLAY and win.compare == "off" and win.backend != "tensorrt"
    assert win.headline().startswith("cpu preset: ")
    head = choose(window=False)  # headless: what the demo always ran (make demo unchanged)
    assert (head.device, head.backend, head.precision, head.network, head.display_size, head.compare) == (
        "cpu", "torch", "fp32", "stss", (960, 540), "wipe")
    assert head.shadow_map_size == 2048 and head.torch_threads is None
    assert any("headless" in r for r in head.reasons)
    with pytest.raises(ChoiceError, match="--device cuda: PyTorch sees no CUDA GPU"):
        choose(device="cuda")


def test_cpu_preset_takes_the_fastest_cpu_backend_and_the_small_network():
    c = choose(cuda=NO_GPU, backends=ALL, networks=("stss", "stss_small"))
    assert (c.device, c.backend, c.network, c.preset) == ("cpu", "openvino", "stss_small", "cpu")
    assert c.shadow_map_size == 1024 and c.torch_threads == 1
    assert any("stss_small" in r for r in c.reasons) and any("openvino" in r for r in c.reasons)
    without = choose(cuda=NO_GPU, backends={**ALL, "openvino": (False, "not installed")}, networks=("stss",))
    assert (without.backend, without.network) == ("onnxruntime", "stss")
    assert any("no shipped weights" in r for r in without.reasons)
    # explicit options win over the preset
    c = choose(backend="torch", network="stss", display_size=(320, 180), compare="wipe", cuda=NO_GPU,
               backends=ALL, networks=("stss", "stss_small"))
    assert (c.backend, c.network, c.display_size, c.compare, c.precision) == ("torch", "stss", (320, 180), "wipe", "fp32")


def test_a_gpu_is_used_when_pytorch_sees_one_with_interop_only_on_nvidia_gl():
    c = choose(cuda=GPU, backends=ALL, networks=("stss",))
    assert (c.device, c.backend, c.preset, c.display_size) == ("cuda", "torch", "default", (960, 540))
    assert "device cuda (auto): PyTorch sees a CUDA GPU" in c.reasons[0]
    nv = c.with_gl("NVIDIA Corporation", "NVIDIA H100 80GB HBM3/PCIe/SSE2")
    assert nv.gl_textures and "interop" in nv.reasons[-1] and "CUDA-OpenGL interop" in nv.headline()
    mesa = c.with_gl("Mesa", "llvmpipe (LLVM 15.0.6, 256 bits)")
    assert not mesa.gl_textures and "not NVIDIA's" in mesa.reasons[-1]
    assert RuntimeChoice().with_gl("NVIDIA Corporation").gl_textures is False  # a CPU run never maps textures
    with pytest.raises(ChoiceError, match="openvino: it runs on the CPU"):
        choose(device="cuda", backend="openvino", cuda=GPU, backends=ALL, networks=("stss",))
    with pytest.raises(ChoiceError, match="--preset cpu"):
        choose(device="cuda", preset="cpu", cuda=GPU, backends=ALL, networks=("stss",))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the summary on a machine without a GPU")
def test_headless_summary_says_what_ran_and_why(tmp_path):
    r = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "2", "--mode",
                        "bilinear", "--display-size", "64x32", "--sheet-frames", "0", "--out", str(tmp_path),
                        "--no-progress"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "demo: default preset: bilinear on cpu / torch (fp32), 64x32, compare wipe" in r.stdout  # the pass
    assert "demo:   device cpu (auto): PyTorch sees no CUDA GPU" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--device", "cuda",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--device cuda: PyTorch sees no CUDA GPU" in bad.stderr
