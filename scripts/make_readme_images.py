"""Regenerates the README's pictures: python scripts/make_readme_images.py (needs Xvfb).

docs/images/scenes.jpg: each built-in scene, low-resolution render (480x270, bilinear to
960x540) against its 16-sample ground truth, with a 2x crop; docs/images/demo_window.png:
the demo window (native | bilinear split) under Xvfb; docs/images/scatter.jpg: eight generated
scenes (scatter:1..8, the first training frame of each seed's segment in
docs/training/README.md). ``--only scatter`` makes that one alone. ``--only demo4x``:
docs/images/demo_window_4x.png (the window at 4x: three generated frames per rendered one,
under Xvfb) and docs/images/demo_comparison_4x.png (the headless demo's comparison sheet at
4x, traffic).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT))


def scenes_sheet():
    from demo_renderer.gl import create_headless_context
    from demo_renderer.renderer import Renderer
    from demo_renderer.scenes import BUILTIN_SCENES
    from demo_renderer.sequence import SequenceSpec, render_frame
    from stss_runtime.ops.encoding import display_transform

    ctx = create_headless_context()
    rows = []
    for name, make in BUILTIN_SCENES.items():
        spec = SequenceSpec(scene=name, frames=1, start_time=2.0)
        arrays, _ = render_frame(Renderer(ctx, make()), spec, 0)
        low = Image.fromarray(display_transform(arrays["color"].astype(np.float32))).resize((960, 540), Image.BILINEAR)
        gt = Image.fromarray(display_transform(arrays["gt"].astype(np.float32)))
        half = [im.resize((480, 270), Image.LANCZOS) for im in (low, gt)]
        crops = [im.crop((280, 140, 520, 275)).resize((480, 270), Image.NEAREST) for im in (low, gt)]
        row = Image.new("RGB", (1920, 270))
        for i, im in enumerate([half[0], crops[0], half[1], crops[1]]):
            row.paste(im, (480 * i, 0))
        d = ImageDraw.Draw(row)
        for i, label in enumerate([f"{name}: 480x270 render (bilinear)", "crop, 2x", "ground truth 960x540 (16 spp)", "crop, 2x"]):
            d.rectangle((480 * i, 0, 480 * i + 8 + 6 * len(label), 14), fill=(0, 0, 0))
            d.text((480 * i + 4, 2), label, fill=(255, 255, 255))
        rows.append(row)
    sheet = Image.new("RGB", (1920, 270 * len(rows)))
    for i, r in enumerate(rows):
        sheet.paste(r, (0, 270 * i))
    sheet.save(OUT / "scenes.jpg", quality=88)


def scatter_sheet(seeds=range(1, 9)):
    from demo_renderer.gl import create_headless_context
    from demo_renderer.renderer import Renderer
    from demo_renderer.scenes import load_scene
    from demo_renderer.sequence import SequenceSpec, render_frame
    from stss_runtime.ops.encoding import display_transform

    ctx = create_headless_context()
    tiles = []
    for seed in seeds:
        name = f"scatter:{seed}"
        scene = load_scene(name)
        spec = SequenceSpec(scene=name, frames=1, start_time=float((seed * 3) % 20))
        arrays, _ = render_frame(Renderer(ctx, scene), spec, 0)
        tile = Image.fromarray(display_transform(arrays["gt"].astype(np.float32))).resize((480, 270), Image.LANCZOS)
        d = ImageDraw.Draw(tile)
        label = f"{name}: {scene.description.rsplit('; ', 1)[1]}"
        d.rectangle((0, 0, 8 + 6 * len(label), 14), fill=(0, 0, 0))
        d.text((4, 2), label, fill=(255, 255, 255))
        tiles.append(tile)
    cols = 4
    sheet = Image.new("RGB", (480 * cols, 270 * ((len(tiles) + cols - 1) // cols)))
    for i, t in enumerate(tiles):
        sheet.paste(t, (480 * (i % cols), 270 * (i // cols)))
    sheet.save(OUT / "scatter.jpg", quality=88)


def _window_demo(display: int, *args: str) -> None:
    """``demo --window ARGS`` on its own Xvfb display ``:display``."""
    xvfb = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
    try:
        time.sleep(1.0)
        subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--window", *args],
                       check=True, env={**os.environ, "DISPLAY": f":{display}"}, cwd=ROOT)
    finally:
        xvfb.terminate()


def window_shot():
    _window_demo(93, "--frames", "90", "--scene", "fence", "--screenshot", str(OUT / "demo_window.png"))


def demo_4x():
    """The demo at 4x: a window screenshot under Xvfb and the headless comparison sheet."""
    import shutil

    _window_demo(94, "--frames", "22", "--scene", "traffic", "--generated-frames", "3", "--preset", "default",
                 "--screenshot", str(OUT / "demo_window_4x.png"), "--out", tempfile.mkdtemp())
    out = Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "demo_renderer", "demo", "--headless", "--frames", "16", "--scene", "traffic",
                    "--generated-frames", "3", "--sheet-frames", "6", "--out", str(out), "--no-progress"],
                   check=True, cwd=ROOT)
    shutil.copy(out / "comparison.png", OUT / "demo_comparison_4x.png")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--only", "scatter"]:
        scatter_sheet()
        print(f"wrote {OUT}/scatter.jpg")
    elif sys.argv[1:] == ["--only", "demo4x"]:
        demo_4x()
        print(f"wrote {OUT}/demo_window_4x.png and {OUT}/demo_comparison_4x.png")
    elif sys.argv[1:]:
        sys.exit("usage: python scripts/make_readme_images.py [--only scatter|demo4x]")
    else:
        scenes_sheet()
        scatter_sheet()
        window_shot()
        print(f"wrote {OUT}/scenes.jpg, {OUT}/scatter.jpg and {OUT}/demo_window.png")
