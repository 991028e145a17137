"""Command line: ``python -m demo_renderer {render,scenes,bench,demo} ...``.

Usage errors (a wrong scene name, a malformed size, an unreadable scene file, an unwritable
output folder) print one line, ``demo_renderer: error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
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
                   help="built-in scene name (see `scenes`), a generated random layout "
                        "scatter:SEED (any non-negative integer seed), or a .gltf/.glb/.obj file, or "
                        "a .json scene config naming one")
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

    from .pipeline import MODE_LABELS, MODES

    d = sub.add_parser("demo", help="run the demo (window if a display exists, else headless)",
                       description="The scene rendered at low resolution and brought to the display by "
                                   "--mode through the plugin API, compared with native rendering. In a "
                                   "window when a display exists: ImGui controls (scene or scene file, mode, "
                                   "quality, compare wipe / side by side, zoom loupe, debug views, free camera) "
                                   "and the frame-time overlay; Space pauses, Esc quits, F1 hides the overlay. "
                                   "Otherwise headless: a clip (PNG frames and an MP4), comparison.png (the "
                                   "passes against native and the ground truth), profile.csv and "
                                   "frame_times.png in --out, and a summary.")
    d.add_argument("--scene", default="traffic",
                   help="built-in scene name, scatter:SEED, or scene file (default traffic)")
    d.add_argument("--mode", default="auto", choices=["auto", *MODES],
                   help="what brings the render to the display (default auto: the plugin's default pass, "
                        "stss_recurrent; 2x frames): " + "; ".join(f"{k}: {v}" for k, v in MODE_LABELS.items()))
    d.add_argument("--generated-frames", default="1", choices=["1", "2", "3", "auto"],
                   help="frame-generation modes: frames generated per rendered frame, 1 to 3 (2x, 3x, 4x the "
                        "rendered frame rate; default 1), or auto: chosen by the plugin after every frame from the "
                        "measured render time so that the presented rate tracks --target-fps")
    d.add_argument("--target-fps", type=_positive_float, default=120.0,
                   help="--generated-frames auto: the presented frames per second to track (default 120)")
    d.add_argument("--quality", default="PERFORMANCE", type=str.upper,
                   choices=["NATIVE_AA", "QUALITY", "BALANCED", "PERFORMANCE", "ULTRA_PERFORMANCE"],
                   help="render scale per axis (default PERFORMANCE = 2x, what STSS is trained at)")
    d.add_argument("--compare", default=None, choices=["wipe", "side_by_side", "off"],
                   help="against native rendering: a split-screen wipe, side by side, or off (default: wipe; "
                        "off with the CPU preset)")
    d.add_argument("--frames", type=int, default=None,
                   help="display frames to run (default: 120 headless; until closed in a window)")
    d.add_argument("--display-size", type=parse_size, default=None, metavar="WxH",
                   help="default 960x540; 640x360 with the CPU preset")
    from .hardware import DEVICES, PRESETS

    d.add_argument("--device", default="auto", choices=DEVICES,
                   help="where the plugin runs: auto (default) = cuda when PyTorch sees a GPU, else cpu; the "
                        "choice and the reason are printed and shown in the panel")
    d.add_argument("--preset", default="auto", choices=PRESETS,
                   help="auto (default): the CPU preset in a window without a usable GPU (small network, fastest "
                        "CPU back-end, 640x360, no comparison view), else the default (network stss at 960x540); "
                        "cpu or default force one")
    d.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "openvino", "tensorrt"],
                   help="the neural passes' back-end (default auto: torch on CUDA and by default, the fastest CPU "
                        "back-end with the CPU preset)")
    d.add_argument("--network", default="auto",
                   help="the STSS network of the STSS modes: auto (default: stss_small with the CPU preset, else "
                        "stss), stss, or another preset with shipped weights")
    d.add_argument("--out", type=Path, default=Path("out/demo"),
                   help="output folder: headless results; in a window, the profile on exit / Export (default out/demo)")
    d.add_argument("--sheet-frames", type=int, default=8,
                   help="headless: display frames each pass runs for comparison.png (default 8; 0: no sheet)")
    mode = d.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="force headless even with a display")
    mode.add_argument("--window", action="store_true", help="force a window (fails without a display)")
    from .views import DEBUG_LABELS, DEBUG_VIEWS

    d.add_argument("--debug-view", default="none", choices=list(DEBUG_VIEWS),
                   help="show a debug view instead of the picture: " + "; ".join(
                       f"{k}: {v}" for k, v in DEBUG_LABELS.items() if k != "none"))
    d.add_argument("--loupe", action="store_true",
                   help="the zoom loupe (bottom right): at the mouse pointer in a window, the centre headless")
    d.add_argument("--free-camera", action="store_true",
                   help="window mode: start with the free-flying camera (WASD, Q/E, Shift, right-drag to look)")
    d.add_argument("--no-overlay", action="store_true", help="window mode: no ImGui controls and overlay")
    d.add_argument("--screenshot", type=Path, help="window mode: save the last frame here (PNG)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def cmd_scenes(args) -> int:
    from .scenes import BUILTIN_SCENES, GENERATED_SCENES

    for name, make in BUILTIN_SCENES.items():
        sc = make()
        print(f"{name:10s} {sc.triangle_count:7d} triangles  {', '.join(sc.stresses)}")
        print(f"{'':10s} {sc.description}")
    for name, make in GENERATED_SCENES.items():
        sc = make(0)
        print(f"{name + ':SEED':10s} {'':7s} generated: one random layout per seed, for training data")
        print(f"{'':10s} e.g. {sc.name}: {sc.description} ({sc.triangle_count} triangles)")
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
    from .pipeline import mode_pass

    window = args.window or (not args.headless and has_display())
    frames = args.frames if args.frames is not None else (0 if window else 120)
    if frames < (0 if window else 1):
        raise CliError(f"--frames must be >= {0 if window else 1}, got {frames}")
    if args.sheet_frames < 0:
        raise CliError(f"--sheet-frames must be >= 0, got {args.sheet_frames}")
    if args.free_camera and not window:
        raise CliError("--free-camera needs a window (a display, or --window); headless runs the scripted camera")
    from .hardware import ChoiceError, choose

    try:
        choice = choose(args.device, args.backend, args.network, args.preset, args.display_size, args.compare,
                        window=window)
    except ChoiceError as e:
        raise CliError(str(e)) from None
    choice.apply_threads()
    if args.mode == "auto":
        from plugin import DEFAULT_PASS

        args.mode = DEFAULT_PASS
        choice = replace(choice, reasons=choice.reasons + (
            f"mode {args.mode}: the plugin's default pass" + (
                " (plain STSS, --mode stss, is faster on a CPU but trails bilinear on rendered frames of "
                "scenes it never saw)" if choice.preset == "cpu" else ""),))
    scene = _load_scene(args.scene)
    cfg = DemoConfig(scene=args.scene, frames=frames, display_size=choice.display_size, mode=args.mode,
                     quality=args.quality, compare=choice.compare, sheet_frames=args.sheet_frames,
                     debug_view=args.debug_view, loupe=args.loupe, free_camera=args.free_camera, runtime=choice,
                     generated_frames="auto" if args.generated_frames == "auto" else int(args.generated_frames),
                     target_fps=args.target_fps)
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"output folder '{out}' is not writable: {e.strerror or e}") from None
    if window:
        summary = run_window(scene, cfg, args.screenshot, overlay=not args.no_overlay, profile_out=out)
        _print_choice(summary["runtime"], summary["pass_name"])
        print(f"demo: {summary['frames']} frames, median frame time {summary['median_frame_ms']:.1f} ms; "
              f"profile in {out}/profile.csv and {out}/frame_times.png")
        _print_stats(summary["stats"], summary)
        return 0
    from .gl import create_headless_context

    print(f"demo: no display, running headless into {out}/ ({args.mode}, {args.quality}; "
          f"left of the divider: native {cfg.display_size[0]}x{cfg.display_size[1]})")
    summary = run_headless(scene, cfg, out, create_headless_context(), progress=not args.no_progress)
    print(f"demo: clip in {summary['video']} (frames in {summary['frames']}/)")
    print(f"demo: profile in {summary['profile']}, plot in {summary['plot']}")
    _print_stats(summary["stats"], summary)
    _print_choice(choice, mode_pass(args.mode) or "native")
    if summary["sheet"] is not None:
        print(f"demo: comparison sheet in {summary['sheet']}")
        print(summary["table"])
    return 0


def _print_choice(choice, pass_name: str) -> None:
    """What the demo ran on (``pass_name``: the pass that ran last, or "native") and why
    (hardware.RuntimeChoice)."""
    print(f"demo: {choice.headline(pass_name)}")
    for why in choice.reasons:
        print(f"demo:   {why}")


def _print_stats(stats: dict, summary: dict | None = None) -> None:
    if stats.get("frames"):
        by = stats.get("generated_by_distance", {})
        at = ", ".join(f"{n} at +{d}" for d, n in by.items() if n)
        print(f"demo: {stats['frames']} frames ({stats['rendered']} rendered, {stats['generated']} generated"
              f"{f' ({at})' if at else ''}, {stats['native']} native): frame time ms min {stats['min_ms']:.1f}, "
              f"mean {stats['mean_ms']:.1f}, p95 {stats['p95_ms']:.1f}, p99 {stats['p99_ms']:.1f}; "
              f"1% low {stats['low_1pct_fps']:.1f} fps, 0.1% low {stats['low_0_1pct_fps']:.1f} fps (MangoHud's rule)")
        mult = "" if summary is None or summary.get("multiplier") is None else (
            f"; frame generation {summary['multiplier']}" + (f" (last: {summary['generated_frames']} per rendered "
                                                              f"frame)" if summary["multiplier"] == "auto" else ""))
        print(f"demo: presented {stats['presented_fps']:.2f} fps from {stats['render_fps']:.2f} rendered fps "
              f"({stats['multiplier']:.2f}x){mult}")
    passes = stats.get("passes", {})
    if passes:
        def ms(v: float) -> str:
            return "-" if v != v else f"{v:.1f}"  # NaN: not measured (CPU-only passes have no GPU time)

        print("demo: mean ms per pass (cpu / gpu): " + ", ".join(
            f"{k} {ms(v['cpu_ms_mean'])} / {ms(v['gpu_ms_mean'])}" for k, v in passes.items()))


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
