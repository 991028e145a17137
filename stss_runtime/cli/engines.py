"""``python -m stss_runtime {export,build-engine,backends}``: the graphs as ONNX, TensorRT
engines, and which back-ends run here."""

from __future__ import annotations

import time
from pathlib import Path

from .common import UsageError, parse_size

GRAPHS = ("stss", "supersampling", "extranet")


def _spec(args):
    from ..checkpoint import default_weights, load_weights
    from ..graphs import graph_for

    path = args.weights or default_weights(args.graph)
    model, info = load_weights(path, expected_model=None)
    spec = graph_for(model)
    if spec.name != args.graph:
        raise UsageError(f"--weights {path} holds a {spec.name} network, not {args.graph}")
    return spec, path, info


def cmd_export(args) -> int:
    import onnx

    from ..export import export_onnx

    spec, weights, info = _spec(args)
    out = args.out or Path(f"{args.graph}-{args.precision}.onnx")
    w, h = args.trace_size
    ph, pw = -(-h // 8) * 8, -(-w // 8) * 8
    t0 = time.perf_counter()
    export_onnx(spec, out, ph, pw, args.precision)
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"export: {out} ({out.stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes, "
          f"{time.perf_counter() - t0:.1f} s); the ONNX checker passes")
    print(f"  graph {spec.name}, weights {weights} ({info.get('steps', '?')} training steps), "
          f"precision {args.precision} inside, float32 inputs and outputs")
    print(f"  inputs: {', '.join(spec.input_names)} (height and width dynamic, multiples of 8)")
    print(f"  operators: {', '.join(ops)}")
    return 0


def cmd_build_engine(args) -> int:
    from ..backends import cache_root, onnx_for
    from ..backends.tensorrt_backend import build_engine, library_info, load_tensorrt, profile_for

    load_tensorrt()  # fail early, with the install hint, before exporting anything
    spec, weights, _ = _spec(args)
    cache = args.cache_dir or cache_root()
    onnx_path = args.onnx or onnx_for(spec, args.precision, cache / "onnx")
    sizes = [args.min_render_size, args.render_size, args.max_render_size or args.render_size]
    hw = [(-(-h // 8) * 8, -(-w // 8) * 8) for w, h in sizes]
    if not (hw[0][0] <= hw[1][0] <= hw[2][0] and hw[0][1] <= hw[1][1] <= hw[2][1]):
        raise UsageError(f"render sizes must grow: --min-render-size {sizes[0]} <= --render-size {sizes[1]} "
                         f"<= --max-render-size {sizes[2]}")
    lib = library_info()
    print(f"build-engine: {lib['library']} {lib['version']}, graph {spec.name} from {onnx_path}, {args.precision}, "
          f"render sizes {hw[0][1]}x{hw[0][0]} .. {hw[1][1]}x{hw[1][0]} (optimised) .. {hw[2][1]}x{hw[2][0]}")
    result = build_engine(onnx_path, profile_for(spec, *hw), args.precision, cache_dir=cache / "engines",
                          log=print)
    state = "built" if result.built else "served from the cache"
    print(f"build-engine: {state}: {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.seconds:.1f} s)")
    return 0


def cmd_backends(args) -> int:
    from ..backends import availability

    for name, (ok, why) in availability().items():
        print(f"{name:12s} {'yes' if ok else 'no ':3s}  {why}")
    return 0


def add_parsers(sub) -> None:

    def graph_args(p):
        p.add_argument("--graph", choices=GRAPHS, default="stss",
                       help="stss: the joint pass (warps + network); supersampling / extranet: the "
                            "two-stage pipeline's networks (default: stss)")
        p.add_argument("--weights", type=Path, help="weights file (default: the shipped weights of --graph)")
        p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                       help="precision of the network inside the graph (default fp32)")

    p = sub.add_parser("export", help="write a graph as ONNX (checked with the ONNX checker)",
                       description="Write a graph as ONNX, opset 17, standard operators only, dynamic "
                                   "height and width; the ONNX checker runs on the result.")
    graph_args(p)
    p.add_argument("--out", type=Path, help="output file (default: GRAPH-PRECISION.onnx)")
    p.add_argument("--trace-size", type=parse_size, default=(96, 64),
                   help="render size traced, WxH (the file runs at any size; default 96x64)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build-engine", help="build (or find in the cache) a TensorRT engine",
                       description="Export the graph (cached) and build a TensorRT engine for a range of "
                                   "render sizes, cached on disk under a key of the model bytes, precision, "
                                   "shapes, TensorRT version and GPU. Works with `tensorrt` and with "
                                   "`tensorrt-rtx` (which builds without a GPU).")
    graph_args(p)
    p.add_argument("--onnx", type=Path, help="an exported file to build from (default: export --graph)")
    p.add_argument("--render-size", type=parse_size, default=(960, 540), help="size to optimise for (default 960x540)")
    p.add_argument("--min-render-size", type=parse_size, default=(64, 64), help="smallest size admitted (default 64x64)")
    p.add_argument("--max-render-size", type=parse_size, help="largest size admitted (default: --render-size)")
    p.add_argument("--cache-dir", type=Path, help="cache folder (default $STSS_CACHE or ~/.cache/stss_runtime)")
    p.set_defaults(func=cmd_build_engine)

    p = sub.add_parser("backends", help="which back-ends work on this machine, and why not")
    p.set_defaults(func=cmd_backends)
