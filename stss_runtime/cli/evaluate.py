"""``python -m stss_runtime evaluate``: every method on a frame dump against its ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import UsageError, check_folders, config, set_threads


def _comma_ints(text: str) -> list[int]:
    try:
        return sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers from 0,1,2, got {text!r}") from None


def cmd_evaluate(ns) -> int:
    from ..evaluation.evaluate import EvaluateConfig, evaluate, format_report

    check_folders([ns.data])
    set_threads(ns.threads)
    methods = [m.strip() for m in ns.methods.split(",") if m.strip()]
    if ns.weights is not None and not ns.weights.exists():
        raise UsageError(f"--weights {ns.weights}: no such file")
    cfg = config(EvaluateConfig, ns, methods=tuple(methods), motion_tiers=tuple(ns.motion_tiers),
                 progress=not ns.no_progress)
    results = evaluate(cfg)
    print(format_report(results, cfg.warmup))
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
    return 0


def add_parsers(sub) -> None:
    from ..evaluation import evaluate as E
    from ..passes import PASSES

    p = sub.add_parser("evaluate", help="score every method on a frame dump against its ground truth",
                       description=E.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="frame dump folder (any scene)")
    p.add_argument("--methods", default=",".join(E.DEFAULT_METHODS),
                   help=f"comma-separated, from: {', '.join(PASSES)} (default: {','.join(E.DEFAULT_METHODS)})")
    p.add_argument("--weights", type=Path, help="STSS weights for stss and stss_taa (default: the shipped ones)")
    p.add_argument("--frames", type=int, default=0, help="evaluate only the first N frames (0: all)")
    p.add_argument("--warmup", type=int, default=6,
                   help="first frames run but not scored, so histories fill (default 6)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--crops", type=Path, help="write side-by-side PNG crops into this folder")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--motion-tiers", type=_comma_ints, default=[0, 1, 2],
                   help="motion pass tiers to score on consecutive frame pairs, comma-separated "
                        "from 0,1,2; empty: none (default 0,1,2; tier 2 needs its shipped weights)")
    p.add_argument("--motion-prior", default="camera", choices=E.MOTION_PRIORS,
                   help="what the engine hands the motion pass: camera = depth and cameras but no "
                        "object motion (default), zero = nothing")
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "openvino"],
                   help="the neural passes' back-end on the CPU (default torch; pass stss runs as the plugin runs it "
                        "there, the history's work in the graph)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"],
                   help="fp32 (default) or fp16 (openvino: bfloat16 on CPUs with AMX)")
    p.add_argument("--int8", action="store_true", help="int8 convolutions (onnxruntime, openvino)")
    p.add_argument("--generated-frames", type=int, default=1, choices=E.GENERATED_FRAMES,
                   help="extrapolated display frames per rendered one: frame i is rendered when i %% (N+1) == 0; "
                        "N > 1 scores each distance apart (ef1..efN), the interpolation passes synthesise the N "
                        "frames between rendered ones (default 1: every other frame). Render the dump at (N+1) x "
                        "the render rate: --fps 120 for 4x at 30 rendered frames per second")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)
