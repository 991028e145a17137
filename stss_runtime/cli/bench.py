"""``python -m stss_runtime bench``: the speed of the joint pass and the two-stage pipeline on
every back-end (each back-end in its own process)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import UsageError, config, parse_size


def _split(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def cmd_bench(ns) -> int:
    from ..evaluation import bench as B

    if ns.worker:  # one (back-end, precision) in this process; rows as JSON on the last line
        print(json.dumps(B._worker(json.loads(ns.worker))))
        return 0
    cfg = config(B.BenchConfig, ns, backends=_split(ns.backends), precisions=_split(ns.precisions),
                 pipelines=_split(ns.pipelines), sizes=tuple(ns.sizes) if ns.sizes else None,
                 variants=_split(ns.variants) if ns.variants else None)
    try:
        res = B.run_bench(cfg)
    except B.BenchError as e:
        raise UsageError(str(e)) from None
    print(B.format_report(res))
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(res.rows, indent=1) + "\n")
        print(f"wrote {ns.json}")
    if ns.plot and res.rows:
        ns.plot.parent.mkdir(parents=True, exist_ok=True)
        B.plot(res.rows, ns.plot)
        print(f"wrote {ns.plot}")
    return 0 if res.rows else 1


def add_parsers(sub) -> None:
    from ..evaluation import bench as B

    ap = sub.add_parser("bench", help="time the joint pass and the two-stage pipeline on every back-end",
                        description=B.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--backends", default="torch,onnxruntime,tensorrt,openvino",
                    help="comma-separated; unavailable ones are listed as skipped with the reason")
    ap.add_argument("--precisions", default="fp32,fp16", help="comma-separated: fp32, fp16")
    ap.add_argument("--sizes", type=lambda s: [parse_size(v) for v in s.split(",")], default=None,
                    help="render sizes WxH, comma-separated (display is 2x); default per device: "
                         "cpu 320x180,480x270; cuda 960x540,1280x720,1920x1080")
    ap.add_argument("--pipelines", default="joint,two_stage",
                    help="comma-separated from joint (STSS), joint_taa (STSS + display-resolution "
                         "accumulation, pass stss_taa: its accumulation is in the output stage), two_stage, joint_fused "
                         "(the joint pass with the history's per-frame work in the graph: the plugin's on the "
                         "CPU back-ends), joint_recurrent (the default pass, stss_recurrent: STSS and its learned "
                         "accumulation)")
    ap.add_argument("--model", default="stss", help="STSS network preset of the joint pipelines: stss (default), "
                    "stss_small, stss_tiny (fresh weights: the cost does not depend on them)")
    ap.add_argument("--frames", type=int, default=None,
                    help="timed output frames per row, rendered and extrapolated alternating (default cpu 12, cuda 200)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed frames first (default cpu 2, cuda 20)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch, and on the CPU for ONNX Runtime's and OpenVINO's own pools "
                         "(default: each library's)")
    ap.add_argument("--cpu-fp16", action="store_true",
                    help="also time torch fp16 on the CPU (no fast fp16 kernels there: 5-40x slower)")
    ap.add_argument("--variants", default=None,
                    help="torch runner variants, comma-separated (default: every one for the device): cpu "
                         "'eager nchw', channels-last; cuda also 'cuda graph', 'cuda graph tf32' (fp32), "
                         "torch.compile, 'torch.compile + cuda graph'")
    ap.add_argument("--worker-timeout", type=float, default=None,
                    help="seconds per (back-end, variant, precision) process; one that runs longer is "
                         "listed as skipped (default: no limit)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="ONNX / engine cache (default ~/.cache/stss_runtime)")
    ap.add_argument("--json", type=Path, help="write the rows as JSON to this file")
    ap.add_argument("--plot", type=Path, help="write a bar chart (PNG) of the medians")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.set_defaults(func=cmd_bench)
