"""Command line: ``python -m demo_renderer {render,scenes,bench,demo} ...``.

Usage errors (a wrong scene name, a malformed size, an unreadable scene file, an unwritable
output folder) print one line, ``demo_renderer: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 2


class CliError(Exception):
    """A usage problem, reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise CliError(f"{message} (see --help)")


def parse_size(text: str) -> tuple[int, int]:
    """``'480x270'`` -> ``(480, 270)``."""
    parts = text.lower().split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        w, h = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed size {text!r}: expected WIDTHxHEIGHT, e.g. 480x270") from None
    if w < 1 or h < 1 or w > 16384 or h > 16384:
        raise argparse.ArgumentTypeError(f"size {text!r} out of range: each side must be 1..16384 pixels")
    return w, h


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def _load_scene(name: str):
    from .scenes import UnknownSceneError, load_scene

    try:
        return load_scene(name)
    except UnknownSceneError as e:
        raise CliError(str(e)) from None
    except ValueError as e:  # SceneFileError and friends: already one line naming the file
        raise CliError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m demo_renderer",
                description="The demo renderer: renders the built-in stress scenes or your own "
                            "glTF/OBJ scenes into G-buffers, shaded frames and ground truth "
                            "(frame dumps for training and evaluation), and runs the demo.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("render", help="render a sequence into a frame dump folder",
                       description="Render a scene into a frame dump folder (shared/CONVENTIONS.md): "
                                   "per display frame the low-resolution G-buffers and shaded "
                                   "colour (Halton-jittered), and a ground truth at display "
                                   "resolution averaged over --gt-samples jittered renders. "
                                   "Re-running resumes: frames already written are kept.")
    r.add_argument("--scene", required=True,
                   help="built-in scene name (see `scenes`) or a .gltf/.glb/.obj file, or a .json "
                        "scene config naming one")
    r.add_argument("--frames", type=_positive_int, default=60, help="display frames to render (default 60)")
    r.add_argument("--render-size", type=parse_size, default=(480, 270), metavar="WxH",
                   help="low-resolution render size (default 480x270)")
    r.add_argument("--display-size", type=parse_size, default=(960, 540), metavar="WxH",
                   help="display (output / ground truth) size, same aspect ratio (default 960x540)")
    r.add_argument("--out", required=True, type=Path, help="output folder (created; resumed if it exists)")
    r.add_argument("--fps", type=_positive_float, default=60.0,
                   help="display frame rate: frame i is at time i/fps seconds (default 60)")
    r.add_argument("--gt-samples", type=_positive_int, default=16,
                   help="jittered samples averaged for each ground-truth frame (default 16)")
    r.add_argument("--start-time", type=float, default=0.0, help="time of frame 0, seconds (default 0)")
    r.add_argument("--compress", action="store_true", help="zlib-compress the .npz files (smaller, slower)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("scenes", help="list the built-in scenes",
                   description="List the built-in scenes and what each stresses.")

    b = sub.add_parser("bench", help="time the render passes of each built-in scene",
                       description="GPU time (GL timer queries, median of repeated frames after "
                                   "warm-up) of the shadow, G-buffer and shading passes of each "
                                   "built-in scene at each size, and the ground truth's wall time.")
    b.add_argument("--scenes", default="all", help="comma-separated scene names, or 'all'")
    b.add_argument("--sizes", default="480x270,960x540", help="comma-separated WxH (default 480x270,960x540)")
    b.add_argument("--repeats", type=_positive_int, default=15, help="timed frames per case (default 15)")
    b.add_argument("--warmup", type=_positive_int, default=3, help="untimed frames first (default 3)")
    b.add_argument("--gt-samples", type=_positive_int, default=16, help="ground-truth samples (default 16)")
    b.add_argument("--gt-repeats", type=_positive_int, default=3, help="timed ground-truth frames (default 3)")
    b.add_argument("--json", type=Path, help="also write the rows as JSON here")

    d = sub.add_parser("demo", help="run the demo (window if a display exists, else headless)",
                       description="Native rendering against the bilinear upscale of the "
                                   "low-resolution render, split screen. In a window when a "
                                   "display exists (drag the divider with the mouse, space "
                                   "pauses, Esc quits); otherwise headless, writing PNG frames and "
                                   "an MP4 into --out.")
    d.add_argument("--scene", default="traffic", help="built-in scene name or scene file (default traffic)")
    d.add_argument("--frames", type=int, default=None,
                   help="frames to run (default: 120 headless; until closed in a window)")
    d.add_argument("--render-size", type=parse_size, default=(480, 270), metavar="WxH")
    d.add_argument("--display-size", type=parse_size, default=(960, 540), metavar="WxH")
    d.add_argument("--out", type=Path, default=Path("out/demo"), help="headless output folder (default out/demo)")
    mode = d.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="force headless even with a display")
    mode.add_argument("--window", action="store_true", help="force a window (fails without a display)")
    d.add_argument("--screenshot", type=Path, help="window mode: save the last frame here (PNG)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_scenes(args) -> int:
    from .scenes import BUILTIN_SCENES

    for name, make in BUILTIN_SCENES.items():
        sc = make()
        print(f"{name:10s} {sc.triangle_count:7d} triangles  {', '.join(sc.stresses)}")
        print(f"{'':10s} {sc.description}")
    return 0


def cmd_render(args) -> int:
    from .gl import create_headless_context
    from .sequence import SequenceError, SequenceSpec, render_sequence

    spec = SequenceSpec(scene=args.scene, frames=args.frames, render_size=args.render_size,
                        display_size=args.display_size, fps=args.fps, gt_samples=args.gt_samples,
                        start_time=args.start_time)
    try:
        spec.validate()
    except SequenceError as e:
        raise CliError(str(e)) from None
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise CliError(f"output folder '{out}' is not writable: it is a file")
    scene = _load_scene(args.scene)
    ctx = create_headless_context()
    try:
        report = render_sequence(spec, out, scene, ctx, progress=not args.no_progress,
                                 compress=args.compress)
    except SequenceError as e:
        raise CliError(str(e)) from None
    print(f"{out}: {len(report.written)} frames written, {len(report.skipped)} kept from before")
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    from .scenes import BUILTIN_SCENES

    names = list(BUILTIN_SCENES) if args.scenes == "all" else [s.strip() for s in args.scenes.split(",")]
    for n in names:
        if n not in BUILTIN_SCENES:
            raise CliError(f"unknown scene {n!r}: expected one of {', '.join(BUILTIN_SCENES)}")
    try:
        sizes = [parse_size(s.strip()) for s in args.sizes.split(",")]
    except argparse.ArgumentTypeError as e:
        raise CliError(str(e)) from None
    rows = run_bench(names, sizes, repeats=args.repeats, warmup=args.warmup,
                     gt_samples=args.gt_samples, gt_repeats=args.gt_repeats)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def cmd_demo(args) -> int:
    from .demo import DemoConfig, has_display, run_headless, run_window

    window = args.window or (not args.headless and has_display())
    frames = args.frames if args.frames is not None else (0 if window else 120)
    if frames < (0 if window else 1):
        raise CliError(f"--frames must be >= {0 if window else 1}, got {frames}")
    scene = _load_scene(args.scene)
    cfg = DemoConfig(scene=args.scene, frames=frames, render_size=args.render_size,
                     display_size=args.display_size)
    if window:
        summary = run_window(scene, cfg, args.screenshot)
        print(f"demo: {summary['frames']} frames, median frame time {summary['median_frame_ms']:.1f} ms")
        return 0
    from .gl import create_headless_context

    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"output folder '{out}' is not writable: {e.strerror or e}") from None
    print(f"demo: no display, running headless into {out}/ "
          f"(left: native {cfg.display_size[0]}x{cfg.display_size[1]}, right: bilinear from "
          f"{cfg.render_size[0]}x{cfg.render_size[1]})")
    summary = run_headless(scene, cfg, out, create_headless_context(), progress=not args.no_progress)
    print(f"demo: frames in {summary['frames']}/, video {summary['video']}")
    print("demo: median GPU ms per pass: " +
          ", ".join(f"{k} {v:.1f}" for k, v in summary["median_ms"].items()))
    return 0


COMMANDS = {"render": cmd_render, "scenes": cmd_scenes, "bench": cmd_bench, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except CliError as e:
        print(f"demo_renderer: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("demo_renderer: interrupted; frames written so far are kept (re-run to resume)",
              file=sys.stderr)
        return 130
