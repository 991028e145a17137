"""``python -m stss_runtime train {stss,flow,policy,vfi}``: one verb per model family, each
with the run options every family shares (:func:`.common.add_run_options`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .common import UsageError, add_run_options, check_folders, config, run_config

RAW = argparse.RawDescriptionHelpFormatter


def _data(p, help_text: str = "frame dump folders to train on (python -m demo_renderer render ...)"):
    p.add_argument("--data", nargs="+", required=True, type=Path, help=help_text)


def _finish(result) -> int:
    return 130 if result.interrupted else 0


def cmd_stss(ns) -> int:
    from ..training.stss import StssTrainConfig, train

    check_folders(ns.data)
    return _finish(train(run_config(ns), config(StssTrainConfig, ns, rrm=not ns.no_rrm)))


def cmd_recurrent(ns) -> int:
    from ..training.recurrent import RecurrentTrainConfig, train

    check_folders(ns.data)
    if ns.stss_weights is not None and not ns.stss_weights.exists():
        raise UsageError(f"--stss-weights {ns.stss_weights}: no such file")
    return _finish(train(run_config(ns), config(RecurrentTrainConfig, ns, freeze_trunk=not ns.train_trunk,
                                                 augment=not ns.no_augment)))


def cmd_flow(ns) -> int:
    from ..training.flow import FlowTrainConfig, train

    check_folders(ns.data)
    if ns.flow_weights is not None and not ns.flow_weights.exists():
        raise UsageError(f"--flow-weights {ns.flow_weights}: no such file")
    return _finish(train(run_config(ns), config(FlowTrainConfig, ns)))


def cmd_policy(ns) -> int:
    from ..training.policy import PolicyTrainConfig, train

    check_folders(ns.data)
    if not ns.flow_weights.exists():
        raise UsageError(f"--flow-weights {ns.flow_weights}: no such file")
    return _finish(train(run_config(ns), config(PolicyTrainConfig, ns)))


def cmd_vfi(ns) -> int:
    from ..passes.vfi import VfiCheapPass
    from ..training.vfi import VfiTrainConfig, train

    check_folders(ns.data)
    if ns.min_lr is None:
        ns.min_lr = ns.lr / 100
    return _finish(train(run_config(ns), config(VfiTrainConfig, ns, flip=not ns.no_flip),
                         interpolator=lambda inner: VfiCheapPass(inner=inner)))


def add_parsers(sub) -> None:
    from ..models.flownet import PAD, POLICY_INPUTS
    from ..models.vfi import TILE, VFI_PRESETS
    from ..training import flow, policy, recurrent, stss, vfi

    train = sub.add_parser("train", help="train a network on frame dumps (stss, flow, policy, vfi)",
                           description="Train one of the project's networks on frame dumps made by "
                                       "`python -m demo_renderer render`. Every family shares the loop: "
                                       "resumable (re-run the same command), Ctrl-C checkpoints, loss.csv and "
                                       "loss.png, a progress bar.")
    fam = train.add_subparsers(dest="family", required=True, metavar="{stss,recurrent,flow,policy,vfi}")

    p = fam.add_parser("stss", help="STSS, or the two-stage baseline's networks", description=stss.__doc__,
                       formatter_class=RAW)
    _data(p)
    p.add_argument("--model", default="stss", choices=stss.TRAINABLE, help="model preset (default stss)")
    p.add_argument("--batch", type=int, default=8, help="crops per step and process (default 8)")
    p.add_argument("--crop", type=int, default=128, help="crop side, render pixels, multiple of 8 (default 128)")
    p.add_argument("--augment", action="store_true",
                   help="mirror crops horizontally and permute colour channels (each p=1/2)")
    p.add_argument("--no-rrm", action="store_true", help="disable Random Reshading Masking")
    p.add_argument("--workers", type=int, default=1, help="data loader worker processes (default 1)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    add_run_options(p, steps=2000, lr=1e-4, min_lr=1e-6, schedule="constant", lr_help="Adam learning rate")
    p.set_defaults(func=cmd_stss)

    p = fam.add_parser("recurrent", help="STSS with a learned display-resolution accumulation, on sequences",
                       description=recurrent.__doc__, formatter_class=RAW)
    _data(p)
    p.add_argument("--generated-frames", type=int, nargs="+", default=[1],
                   help="frames generated after each rendered one (1 to 3): one count for every --data "
                        "folder, or one per folder (default 1)")
    p.add_argument("--model", default="stss_recurrent", choices=recurrent.TRAINABLE,
                   help="model preset (default stss_recurrent)")
    p.add_argument("--stss-weights", type=Path, default=None,
                   help="start the reconstruction from these STSS weights (the same width: stss for "
                        "stss_recurrent); ignored when the run folder has a checkpoint")
    p.add_argument("--sequence", type=int, default=8,
                   help="display frames unrolled with gradients per sample, the loss on each (default 8)")
    p.add_argument("--burn-in", type=int, default=0,
                   help="display frames run before them without gradients, so the state is a running "
                        "pass's (default 0)")
    p.add_argument("--batch", type=int, default=2, help="sequences per step (default 2)")
    p.add_argument("--crop", type=int, default=96, help="crop side, render pixels, multiple of 8 (default 96)")
    p.add_argument("--stability-weight", type=float, default=0.5,
                   help="weight of the temporal-stability term (default 0.5)")
    p.add_argument("--train-trunk", action="store_true",
                   help="also train the STSS trunk (default: the parameter head alone; the trunk runs "
                        "without gradients, several times cheaper)")
    p.add_argument("--no-augment", action="store_true", help="no mirroring or colour permutation")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    add_run_options(p, steps=1500, lr=1e-3, min_lr=1e-5, checkpoint_every=50, lr_help="Adam learning rate")
    p.set_defaults(func=cmd_recurrent)

    p = fam.add_parser("flow", help="the motion pass's flow network (or its hidden-state policy)",
                       description=flow.__doc__, formatter_class=RAW)
    _data(p)
    p.add_argument("--stage", default="flow", choices=flow.STAGES,
                   help="flow: train the flow network; policy: train an iteration policy reading its hidden "
                        "state, with the flow network of --flow-weights frozen (default flow)")
    p.add_argument("--flow-weights", type=Path, default=None, help="stage policy: the trained flow network")
    p.add_argument("--batch", type=int, default=4, help="crops per step (default 4)")
    p.add_argument("--crop", type=int, default=96, help=f"crop side, render px, multiple of {PAD} (default 96)")
    p.add_argument("--iters", type=int, default=6, help="refinement iterations per sample (default 6)")
    p.add_argument("--gamma", type=float, default=0.8, help="sequence loss decay (default 0.8)")
    p.add_argument("--moving-weight", type=float, default=4.0,
                   help="extra loss weight of pixels where the prior is off by > 0.5 px (default 4)")
    p.add_argument("--zero-prior", type=float, default=0.25,
                   help="probability of a zero prior instead of the camera-induced motion (default 0.25)")
    p.add_argument("--stride2", type=float, default=0.25,
                   help="probability of a pair two frames apart (larger motion; default 0.25)")
    p.add_argument("--match-weight", type=float, default=0.3,
                   help="weight of the cost volume's matching loss (cross-entropy against the true "
                        "displacement; default 0.3)")
    p.add_argument("--match-steps", type=int, default=0,
                   help="stage flow: train the feature encoder alone on the matching loss for the first N steps "
                        "(cheap: no iterations), so that the recurrent part starts from a cost volume that "
                        "already peaks at the true displacement (default 0)")
    p.add_argument("--perturb", type=float, default=0.5,
                   help="probability that the prior of a crop is made wrong on purpose: a random offset of up "
                        "to --perturb-px added to one object of the crop (or, one time in three, to the whole "
                        "crop), so the net learns to correct a wrong prior by matching (default 0.5)")
    p.add_argument("--perturb-px", type=float, default=8.0, help="largest offset of --perturb (default 8)")
    p.add_argument("--focus", type=float, default=0.5,
                   help="probability that a crop is centred on a moving-object pixel (default 0.5)")
    p.add_argument("--thr-min", type=float, default=0.01, help="stage policy: EPE gain threshold at r = 1 (px)")
    p.add_argument("--thr-max", type=float, default=0.1, help="stage policy: EPE gain threshold as r -> 0 (px)")
    p.add_argument("--pos-weight", type=float, default=0.0,
                   help="stage policy: weight of the positive labels in the BCE; 0 (default): balanced per "
                        "batch, (negatives / positives) clamped to [1, 20]")
    add_run_options(p, steps=1500, lr=4e-4, min_lr=1e-5, checkpoint_every=50, lr_help="AdamW learning rate")
    p.set_defaults(func=cmd_flow)

    p = fam.add_parser("policy", help="the flow network's iteration policy, on what the estimator keeps",
                       description=policy.__doc__, formatter_class=RAW)
    _data(p)
    p.add_argument("--flow-weights", type=Path, required=True, help="the trained (frozen) flow network")
    p.add_argument("--inputs", choices=POLICY_INPUTS, default="hidden",
                   help="what the policy reads: 'hidden' (the GRU state, residual flow, last update; model "
                        "flow_policy) or 'signals' (photometric residuals, flow sizes, match margins, no GRU "
                        "state; model flow_policy_signals). Default: hidden")
    p.add_argument("--prior", nargs="+", default=["camera", "zero"], choices=("camera", "zero"),
                   help="priors to gather samples from, as the estimator starts (default: camera zero)")
    p.add_argument("--every", type=int, default=4, help="use every N-th pair of each dump (default 4)")
    p.add_argument("--iters", type=int, default=4, help="iterations of the recorded run (default 4)")
    p.add_argument("--batch", type=int, default=4, help="frames per step (default 4)")
    p.add_argument("--thr-min", type=float, default=0.01, help="fused EPE gain threshold at r = 1 (px, tile mean)")
    p.add_argument("--thr-max", type=float, default=0.1, help="fused EPE gain threshold as r -> 0 (px, tile mean)")
    p.add_argument("--max-pos-weight", type=float, default=20.0,
                   help="cap of the per-batch positive weight (negatives / positives; default 20)")
    add_run_options(p, steps=600, lr=2e-3, min_lr=1e-5, checkpoint_every=50, lr_help="AdamW learning rate")
    p.set_defaults(func=cmd_policy)

    p = fam.add_parser("vfi", help="the frame-interpolation refiner and its uncertainty head",
                       description=vfi.__doc__, formatter_class=RAW)
    _data(p, "training frame dump folders")
    p.add_argument("--inputs", default="gt", choices=vfi.INPUTS,
                   help="gt: cheap path built from the clean ground truth of a and b; upscaled: the run-time "
                        "inputs, a and b upscaled by --inner from the renders at half rate (default gt)")
    p.add_argument("--inner", default="temporal", help="upscaler for --inputs upscaled (default temporal)")
    p.add_argument("--model", default="vfi_refiner", choices=sorted(VFI_PRESETS),
                   help="refiner preset (default vfi_refiner)")
    p.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    p.add_argument("--crop", type=int, default=96, help=f"crop side, display px, multiple of {TILE} (default 96)")
    p.add_argument("--train-fraction", type=float, default=0.3,
                   help="fraction of tiles the pruned branch refines in training (default 0.3)")
    p.add_argument("--dense-weight", type=float, default=1.0, help="weight of the dense branch's L1")
    p.add_argument("--uncertainty-weight", type=float, default=0.05,
                   help="weight of the uncertainty regression (log10 units)")
    p.add_argument("--no-flip", action="store_true", help="no horizontal mirroring of crops")
    p.add_argument("--hard-crops", type=float, default=0.5,
                   help="fraction of crops centred on high cheap-path error (default 0.5)")
    p.add_argument("--calibrate-frames", type=int, default=3,
                   help="whole training frames per folder for the threshold calibration (default 3)")
    p.add_argument("--calibrate-tolerance", type=float, default=0.05,
                   help="allowed mean PSNR loss (dB) of pruned vs dense in the calibration")
    add_run_options(p, steps=3000, lr=1e-3, min_lr=None, lr_help="Adam learning rate")
    p.set_defaults(func=cmd_vfi)
