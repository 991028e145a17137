"""``python -m stss_runtime measure {vfi,flow-policy,flow-time}``: the measurements of the
alternative passes (interpolation pruning, the flow network's iteration policy, its time)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import UsageError, check_folders, config, set_threads

RAW = argparse.RawDescriptionHelpFormatter


def _write_json(path: Path | None, payload) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
        print(f"\nwrote {path}")


def cmd_vfi(ns) -> int:
    from ..evaluation import vfi as V

    check_folders(ns.data)
    set_threads(ns.threads)
    cfg = config(V.VfiMeasureConfig, ns, progress=not ns.no_progress)
    seqs = [V.measure_sequence(d, cfg) for d in cfg.data]
    summary = V.summarise(seqs)
    print(V.format_report(seqs, summary))
    _write_json(ns.json, {"sequences": seqs, "summary": summary,
                          "command": "python -m stss_runtime " + " ".join(sys.argv[1:])})
    return 0


def cmd_flow_policy(ns) -> int:
    from ..evaluation import flow_policy as P

    check_folders(ns.data)
    set_threads(ns.threads)
    if ns.calibrate is not None and not ns.offsets:
        raise UsageError("--calibrate needs --offsets (the candidates)")
    cfg = config(P.FlowPolicyConfig, ns, progress=not ns.no_progress)
    rep = P.measure(cfg)
    P.print_report(rep)
    if ns.calibrate is not None:
        cal = P.write_calibrated(rep, cfg, ns.calibrate)
        vs = ", ".join(f"{k} {cal['chosen'][k]:.4f} (best fixed {cal['best_fixed'][k]:.4f})" for k in cal["chosen"])
        print(f"\ncalibrated decision offset {cal['offset']:g}: {vs} px, {cal['iterations_mean']:.2f} "
              f"iterations per tile"
              f"{'' if cal['met'] else '; NO offset met the tolerance, the smallest was kept'}; "
              f"wrote {ns.calibrate}")
    _write_json(ns.json, rep)
    return 0


def cmd_flow_time(ns) -> int:
    from ..evaluation import flow_time as T
    from ..motion.flow_network import FlowRefiner

    check_folders(ns.data)
    cfg = config(T.FlowTimeConfig, ns, budgets=tuple(ns.budgets) if ns.budgets is not None else None,
                 progress=not ns.no_progress)
    set_threads(cfg.threads)
    ref = FlowRefiner.from_weights(cfg.weights, cfg.policy_weights)
    try:
        (T.bench_budgets if cfg.budgets is not None else T.bench_variants)(cfg, ref)
    except T.MeasureError as e:
        raise UsageError(str(e)) from None
    return 0


def add_parsers(sub) -> None:
    from ..evaluation import flow_policy, flow_time, vfi

    m = sub.add_parser("measure", help="measurements of the alternative passes (vfi, flow-policy, flow-time)",
                       description="Measurements of the alternative passes on held-out frame dumps.")
    verbs = m.add_subparsers(dest="what", required=True, metavar="{vfi,flow-policy,flow-time}")

    p = verbs.add_parser("vfi", help="the interpolation pass: cheap path, pruned and dense refiner",
                         description=vfi.__doc__, formatter_class=RAW)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="held-out frame dump folders")
    p.add_argument("--weights", type=Path, help="refiner weights (default: the shipped vfi_refiner.pt)")
    p.add_argument("--inner", default="temporal", help="upscaler of the rendered frames (default temporal)")
    p.add_argument("--threshold", type=float, help="override the weights' pruning threshold")
    p.add_argument("--warmup", type=int, default=6, help="frames run but not scored (default 6)")
    p.add_argument("--frames", type=int, default=0, help="only the first N frames (0: all)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_vfi)

    p = verbs.add_parser("flow-policy", help="the flow network's EPE at fixed iterations and under its policy",
                         description=flow_policy.__doc__, formatter_class=RAW)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="held-out frame dump folders")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--weights", type=Path, default=None, help="flow network (default: the shipped weights)")
    p.add_argument("--policy-weights", type=Path, default=None, help="policy (default: the shipped weights)")
    p.add_argument("--prior", nargs="+", default=["camera", "zero"], choices=("camera", "zero"),
                   help="priors to measure from (default: camera zero)")
    p.add_argument("--max-iters", type=int, default=8, help="iterations of the dense run and the policy's cap")
    p.add_argument("--r", nargs="+", type=float, default=[1.0, 0.75, 0.5, 0.25], help="resource scalars")
    p.add_argument("--fused", action="store_true",
                   help="as the motion estimator runs tier 2: only non-credible tiles refined, the "
                        "result used only on non-credible pixels (see above)")
    p.add_argument("--offsets", nargs="+", type=float, default=None,
                   help="policy decision offsets to measure (default: the one stored with the policy)")
    p.add_argument("--calibrate", type=Path, default=None, metavar="OUT",
                   help="on TRAINING sequences: pick the largest of --offsets (fewest iterations) whose "
                        "EPE (first --prior, r = first --r) is within --tolerance of the best fixed "
                        "iteration count's, and write the policy with that offset to OUT")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="--calibrate: allowed relative EPE increase over the best fixed count, on each of "
                        "all, moving and (--fused) non-credible pixels (default 0.01)")
    p.add_argument("--every", type=int, default=1, help="use every N-th pair (default 1: all)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_flow_policy)

    p = verbs.add_parser("flow-time", help="the flow network's time per frame, sparse tiles vs dense",
                         description=flow_time.__doc__, formatter_class=RAW)
    p.add_argument("--data", nargs="+", required=True, type=Path, help="frame dump folders")
    p.add_argument("--every", type=int, default=6, help="every N-th pair of each dump (default 6)")
    p.add_argument("--max-pairs", type=int, default=7, help="at most this many pairs per dump (default 7)")
    p.add_argument("--reps", type=int, default=3, help="rounds over the pairs; the first is warm-up (default 3)")
    p.add_argument("--policy-max-iters", type=int, default=4, help="the policy's iteration cap (default 4)")
    p.add_argument("--weights", type=Path, default=None, help="flow network (default: the shipped weights)")
    p.add_argument("--policy-weights", type=Path, default=None, help="policy (default: the shipped weights)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--budgets", type=float, nargs="*", default=None, metavar="MS",
                   help="instead: run the motion estimator (tier 2, policy) over consecutive frames of the "
                        "first --data dump with each frame-time budget for tier 2 (MotionEstimator(budget_ms=)), "
                        "and without one, and print the time and resource scalar r it settles at")
    p.add_argument("--frames", type=int, default=40, help="--budgets: frames per budget (default 40; the first "
                                                           "10 let r settle and are not counted)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_flow_time)
