"""The project's one command line: ``python -m stss_runtime VERB``.

    python -m stss_runtime train {stss,recurrent,flow,policy,vfi} ...
                                                              train a network on frame dumps
    python -m stss_runtime evaluate --data DUMP ...           every method against the ground truth
    python -m stss_runtime bench ...                          speed of every back-end
    python -m stss_runtime measure {vfi,flow-policy,flow-time} ...
                                                              the alternative passes' measurements
    python -m stss_runtime export ...                         a graph as ONNX
    python -m stss_runtime build-engine ...                   a TensorRT engine (cached)
    python -m stss_runtime backends                           which back-ends run here, and why not

Every verb has a ``--help``. Frame dumps are made by ``python -m demo_renderer render``.
A mistake on the command line (a bad option, a folder that is not a frame dump, weights of
another model) is one line on stderr and exit status 2; an interrupted training run exits
130 after saving its checkpoint (re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import sys

from .common import UsageError, as_option_message


def build_parser() -> argparse.ArgumentParser:
    from . import bench, engines, evaluate, measure, train

    ap = argparse.ArgumentParser(prog="python -m stss_runtime", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True,
                            metavar="{train,evaluate,bench,measure,export,build-engine,backends}")
    train.add_parsers(sub)
    evaluate.add_parsers(sub)
    bench.add_parsers(sub)
    measure.add_parsers(sub)
    engines.add_parsers(sub)
    return ap


def main(argv=None) -> int:
    ns = build_parser().parse_args(argv)
    from ..backends import BackendError
    from ..checkpoint import WeightsError
    from ..framedump import FrameDumpError
    from ..training.loop import TrainingError

    verb = " ".join(v for v in (ns.command, getattr(ns, "family", None), getattr(ns, "what", None)) if v)
    try:
        return ns.func(ns)
    except (UsageError, BackendError, WeightsError, FrameDumpError, TrainingError, FileNotFoundError) as e:
        print(f"stss_runtime {verb}: {as_option_message(str(e), ns)}", file=sys.stderr)
        return 2


__all__ = ["UsageError", "build_parser", "main"]
