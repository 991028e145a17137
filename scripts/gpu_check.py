"""The Python side of ``scripts/gpu_check.sh``: one subcommand per step that needs Python,
each writing its step record (``{"status": "passed" | "failed" | "skipped", "reason": ...,
"details": {...}}``) to the JSON file named by ``--record``, and ``summary``, which joins
the step records with what the shell saw (exit codes, times, time-outs) into summary.json.

Runs on PyTorch 2.11 (the GPU machine) and 2.13 (here); ``--device cpu`` with tiny sizes is
the dry run's rehearsal of the same code.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from the tree (the GPU machine cannot install the package)
    sys.path.insert(0, str(REPO))

#: The mission's budget for the joint pass at 1080p output, the stretch goal and the
#: joint / two-stage ratio goal (issue "The GPU check").
GOAL_MS, STRETCH_MS, RATIO_GOAL, SYNC_GOAL = 4.0, 1.0, 0.25, 1


def write_record(path: str | Path, status: str, reason: str = "", **details) -> dict:
    rec = {"status": status, "reason": reason, "details": details}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(rec, indent=1, default=str) + "\n")
    print(f"{status}{': ' + reason if reason else ''}")
    return rec


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def _percentile(values, q):
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


# -- step 1: the machine --------------------------------------------------------------------

def cmd_info(ns) -> int:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "host": platform.node(), "cpus": os.cpu_count()}
    for mod in ("triton", "onnx", "onnxruntime", "numpy", "cv2", "skimage", "cuda.bindings", "moderngl",
                "tensorrt", "tensorrt_rtx"):
        try:
            m = __import__(mod, fromlist=["__version__"])
            info[mod] = getattr(m, "__version__", "?")
        except Exception as e:  # noqa: BLE001 - a missing library is a fact to report
            info[mod] = f"missing ({type(e).__name__})"
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}",
                       "memory_gib": round(p.total_memory / 2 ** 30, 1), "sms": p.multi_processor_count}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        info["nvidia_smi"] = f"not run: {e}"
    from stss_runtime.backends import availability

    info["backends"] = {k: {"ok": ok, "why": why} for k, (ok, why) in availability().items()}
    print(json.dumps(info, indent=1))
    if ns.require_gpu and not torch.cuda.is_available():
        write_record(ns.record, "failed", "this PyTorch sees no CUDA GPU", **info)
        return 1
    write_record(ns.record, "passed", info.get("gpu", {}).get("name", "no GPU (dry run)"), **info)
    return 0


# -- step 2: what was installed works ------------------------------------------------------

def cmd_env_check(ns) -> int:
    problems, found = [], {}
    for mod in ("moderngl", "glcontext", "trimesh", "flip_evaluator", "cffi", "pytest", "cuda.bindings.runtime"):
        try:
            m = __import__(mod, fromlist=["__version__"])
            found[mod] = getattr(m, "__version__", "ok")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{mod}: {type(e).__name__}: {e}")
    try:
        from demo_renderer.gl import create_headless_context

        ctx = create_headless_context()
        found["gl_renderer"] = ctx.info["GL_RENDERER"]
        found["gl_version"] = ctx.info["GL_VERSION"]
        ctx.release()
        if ns.require_nvidia_gl and "NVIDIA" not in found["gl_renderer"]:
            problems.append(f"the EGL context is {found['gl_renderer']!r}, not the NVIDIA driver "
                            "(CUDA-OpenGL interop needs it)")
    except Exception as e:  # noqa: BLE001
        problems.append(f"headless OpenGL (EGL): {type(e).__name__}: {e}")
    from plugin import c_abi, gl_interop

    found["c_abi_build_missing"] = c_abi.build_missing()
    found["gl_interop"] = gl_interop.availability()[1]
    if problems:
        write_record(ns.record, "failed", "; ".join(problems), **found)
        return 1
    write_record(ns.record, "passed", f"GL: {found['gl_renderer']}", **found)
    return 0


# -- steps 3 and 6: a pytest run, test by test -------------------------------------------------

def cmd_tests(ns) -> int:
    import xml.etree.ElementTree as ET

    tests, counts = [], {"passed": 0, "failed": 0, "skipped": 0}
    try:
        root = ET.parse(ns.junit).getroot()
    except (OSError, ET.ParseError) as e:
        write_record(ns.record, "failed", f"no test report ({e})")
        return 1
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        outcome, why = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, why = "failed", (child.get("message") or "")[:400]
            elif child.tag == "skipped":
                outcome, why = "skipped", (child.get("message") or "")[:400]
        counts[outcome] += 1
        tests.append({"test": name, "outcome": outcome, "why": why})
        print(f"{outcome:8s} {name}{': ' + why if why else ''}")
    summary = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if ns.note:
        summary += f"; {ns.note}"
    if counts["failed"]:
        write_record(ns.record, "failed", summary, tests=tests)
        return 1
    if not counts["passed"]:
        write_record(ns.record, "skipped", f"{summary}: " + "; ".join(sorted({t['why'] for t in tests}))[:600],
                     tests=tests)
        return 0
    write_record(ns.record, "passed", summary, tests=tests)
    return 0


# -- step 4: the benchmark's figures against the goals -----------------------------------------

def cmd_bench_report(ns) -> int:
    rows, skipped = [], []
    for path in ns.json:
        p = Path(path)
        if p.is_file():
            rows += json.loads(p.read_text())
    for path in ns.skipped or []:
        p = Path(path)
        if p.is_file():
            skipped += [ln[len("skipped: "):] for ln in p.read_text().splitlines() if ln.startswith("skipped: ")]
    if not rows:
        write_record(ns.record, "failed", "no benchmark rows" + (f" ({'; '.join(skipped)})" if skipped else ""),
                     skipped=skipped)
        return 1
    best: dict = {}
    for r in rows:
        if r["pipeline"] != "joint":
            continue
        key = f"{r['render_size'][0]}x{r['render_size'][1]}->{r['display_size'][0]}x{r['display_size'][1]}"
        twin = next((o for o in rows if o["pipeline"] == "two_stage" and o["backend"] == r["backend"]
                     and o.get("variant") == r.get("variant") and o["precision"] == r["precision"]
                     and o["render_size"] == r["render_size"]), None)
        entry = {"variant": f"{r['backend']} {r.get('variant', '')} {r['precision']}".replace("  ", " "),
                 "median_ms": round(r["median_ms"], 3), "p99_ms": round(r.get("p99_ms", float("nan")), 3),
                 "achieved_tflops": r.get("achieved_tflops"), "ceiling_tflops": r.get("ceiling_tflops"),
                 "joint_over_two_stage": round(r["median_ms"] / twin["median_ms"], 3) if twin else None}
        if key not in best or entry["median_ms"] < best[key]["median_ms"]:
            best[key] = entry
    goals = {}
    for key, e in best.items():
        if key.endswith("->1920x1080") or key.endswith("->3840x2160"):
            goals[key] = {**e, "within_4ms": e["median_ms"] <= GOAL_MS, "within_1ms": e["median_ms"] <= STRETCH_MS,
                          "ratio_goal_met": None if e["joint_over_two_stage"] is None
                          else e["joint_over_two_stage"] <= RATIO_GOAL}
    for key, e in sorted(best.items()):
        print(f"fastest joint at {key}: {e}")
    write_record(ns.record, "passed", "; ".join(f"{k}: {e['median_ms']:.2f} ms ({e['variant']})"
                                                for k, e in sorted(best.items())),
                 fastest_joint=best, goals=goals, skipped=skipped, rows=len(rows))
    return 0


# -- host synchronisations per dispatch --------------------------------------------------------

def _frame_descriptions(size, count, device):
    """Synthetic frames as plugin frame descriptions, images as (h, w, c) tensors on ``device``."""
    import math

    import plugin
    from stss_runtime.synthetic import iter_synthetic_frames

    def hwc(t):
        return t[0].permute(1, 2, 0).contiguous().to(device)

    frames = list(iter_synthetic_frames(size, 2 * count, "cpu"))
    out = []
    for n in range(count):
        a, b = frames[2 * n], frames[2 * n + 1]

        def fields(f):
            return dict(depth=hwc(f.depth), motion=hwc(f.motion), jitter_px=tuple(float(v) for v in f.jitter_px),
                        view=f.view, proj=f.proj, albedo=hwc(f.albedo), normal=hwc(f.normal),
                        roughness=hwc(f.roughness), metallic=hwc(f.metallic), object_id=hwc(f.object_id))
        out.append(plugin.FrameDescription(
            frame_index=n, color=hwc(a.color), frame_time_ms=33.3, near=a.near, far=a.far,
            fov_y_rad=math.radians(60), generated=[plugin.GeneratedFrameDescription(**fields(b))], **fields(a)))
    return out


class SyncCounter:
    """Counts host synchronisations (``torch.cuda.set_sync_debug_mode("warn")``) in a block,
    with where in our code they come from."""

    def __init__(self, device: str):
        self.on = device == "cuda"
        self.where: dict[str, int] = {}

    def __enter__(self):
        import torch

        self.count = 0
        self._catch = warnings.catch_warnings(record=True)
        self._records = self._catch.__enter__()
        warnings.simplefilter("always")
        if self.on:
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc):
        import torch

        if self.on:
            torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(*exc)
        for w in self._records:
            if "synchroniz" in str(w.message):
                self.count += 1
                key = f"{Path(w.filename).relative_to(REPO) if str(w.filename).startswith(str(REPO)) else w.filename}:{w.lineno}"
                self.where[key] = self.where.get(key, 0) + 1
        return False


def cmd_syncs(ns) -> int:
    import torch

    import plugin

    if ns.device == "cuda" and not torch.cuda.is_available():
        write_record(ns.record, "skipped", "no GPU")
        return 0
    size = _size(ns.size)
    frames = _frame_descriptions(size, ns.frames + ns.warmup, ns.device)
    desc = plugin.ContextDescription(max_render_size=size, display_size=(2 * size[0], 2 * size[1]),
                                     device=ns.device, pass_name=ns.pass_name)
    per_dispatch, where = [], {}
    with plugin.Context(desc) as ctx:
        for i, f in enumerate(frames):
            with SyncCounter(ns.device) as c:
                ctx.dispatch(f)
            if i >= ns.warmup:
                per_dispatch.append(c.count)
                for k, v in c.where.items():
                    where[k] = where.get(k, 0) + v
    details = {"device": ns.device, "pass": ns.pass_name, "size": ns.size, "per_dispatch": per_dispatch,
               "max": max(per_dispatch), "median": statistics.median(per_dispatch), "goal": SYNC_GOAL,
               "where": dict(sorted(where.items(), key=lambda kv: -kv[1]))}
    print(json.dumps(details, indent=1))
    if ns.device != "cuda":
        write_record(ns.record, "skipped", "no GPU (the dispatch loop ran on the CPU; synchronisations are a "
                     "CUDA count)", **details)
        return 0
    verdict = "passed" if details["max"] <= SYNC_GOAL else "failed"
    write_record(ns.record, verdict, f"{details['median']} host synchronisation(s) per dispatch (max "
                 f"{details['max']}, goal <= {SYNC_GOAL})", **details)
    return 0 if verdict == "passed" else 1


# -- step 5: the renderer drives the plugin on CUDA through CUDA-OpenGL interop -----------------

def cmd_demo(ns) -> int:
    """The demo renderer plays the engine: each rendered frame's colour and motion go to the
    plugin as GL textures (interop inside the context), its packed G-buffers through the
    context's interop object, split on the GPU; nothing passes through host memory on CUDA."""
    import numpy as np
    import torch

    import plugin
    from demo_renderer.gl import create_headless_context
    from demo_renderer.renderer import GBuffer, Renderer
    from demo_renderer.scenes import load_scene
    from plugin.resources import _to_torch

    if ns.device == "cuda" and not torch.cuda.is_available():
        write_record(ns.record, "skipped", "no GPU")
        return 0
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    gl = create_headless_context()
    renderer_name = gl.info["GL_RENDERER"]
    interop = "cuda" if ns.device == "cuda" else "host"
    render = _size(ns.render_size)
    display = (2 * render[0], 2 * render[1])
    scene = load_scene(ns.scene)
    renderer = Renderer(gl, scene)
    targets = [GBuffer(gl, render), GBuffer(gl, render)]  # an engine's two frames in flight
    fps, bias = 30.0, plugin.mip_bias(render[0], display[0])
    phases = plugin.jitter_phase_count(render[0], display[0])
    desc = plugin.ContextDescription(max_render_size=render, display_size=display, device=ns.device,
                                     gl_interop=interop, pass_name=ns.pass_name)
    rows, syncs = [], []
    cam = scene.camera

    with plugin.Context(desc) as ctx:
        def packed(tex, name):
            if ns.device == "cuda":
                fmt, why = plugin.gl_interop.moderngl_format(tex)
                return ctx.interop().read(tex.glo, tex.size, fmt, name, owner=tex)
            return _to_torch(tex, name)

        def engine_frame(i, shade, slot):
            t = 1.0 + i / (2 * fps)
            jitter = plugin.jitter_offset(i, phases)
            renderer._targets[render] = targets[slot]  # draw into this frame's own targets
            t0 = time.perf_counter()
            target, fc = renderer.render(t, t - 1 / (2 * fps), render, jitter, bias, shade=shade, timed=False)
            ar = packed(target.albedo_roughness, "albedo_roughness")
            nm = packed(target.normal_metallic, "normal_metallic")
            di = packed(target.depth_id, "depth_id")
            ms = (time.perf_counter() - t0) * 1e3
            fields = dict(depth=di[..., 0:1], object_id=di[..., 1:2], albedo=ar[..., :3], roughness=ar[..., 3:4],
                          normal=nm[..., :3], metallic=nm[..., 3:4], motion=target.motion, jitter_px=jitter,
                          view=fc.view, proj=fc.proj)
            return fields, target, ms

        for n in range(ns.frames // 2):
            rendered, target, r_ms = engine_frame(2 * n, True, 0)
            between, _, g_ms = engine_frame(2 * n + 1, False, 1)
            frame = plugin.FrameDescription(
                frame_index=n, color=target.color, frame_time_ms=1000 / fps, near=cam.near, far=cam.far,
                fov_y_rad=plugin.helpers.vertical_fov_from_proj(rendered["proj"]), **rendered,
                generated=[plugin.GeneratedFrameDescription(**between)])
            t0 = time.perf_counter()
            with SyncCounter(ns.device) as c:
                result = ctx.dispatch(frame)
            wall = (time.perf_counter() - t0) * 1e3
            if n >= 2:
                syncs.append(c.count)
            row = {"frame": n, "render_ms": round(r_ms + g_ms, 3), "dispatch_ms": round(wall, 3), "syncs": c.count,
                   **{f"stage_{k}_ms": round(v, 3) for k, v in result.timings_ms.items()},
                   **{f"gpu_{k}_ms": round(v, 3) for k, v in (result.gpu_timings_ms or {}).items()}}
            rows.append(row)
        active = ctx.gl_interop_active
        last = result.output
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "frame", k))
    with open(out / "profile.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    picture = (last.cpu().numpy() if hasattr(last, "cpu") else np.asarray(last))
    from PIL import Image

    Image.fromarray((np.clip(picture, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)).save(out / "last_frame.png")
    steady = [r["dispatch_ms"] for r in rows[2:]] or [r["dispatch_ms"] for r in rows]
    details = {"gl_renderer": renderer_name, "device": ns.device, "gl_interop": interop, "interop_active": active,
               "pass": ns.pass_name, "render_size": list(render), "display_size": list(display),
               "dispatches": len(rows), "display_frames": 2 * len(rows),
               "dispatch_ms": {"mean": statistics.fmean(steady), "p50": _percentile(steady, 50),
                               "p95": _percentile(steady, 95), "p99": _percentile(steady, 99)},
               "per_output_frame_ms": statistics.fmean(steady) / 2,
               "syncs_per_dispatch": {"max": max(syncs, default=0), "median": statistics.median(syncs) if syncs else 0}}
    (out / "summary.json").write_text(json.dumps(details, indent=1) + "\n")
    print(json.dumps(details, indent=1))
    if ns.device == "cuda" and not active:
        write_record(ns.record, "failed", "GL textures did not go through CUDA-OpenGL interop", **details)
        return 1
    write_record(ns.record, "passed", f"{len(rows)} dispatches ({2 * len(rows)} display frames) at "
                 f"{render[0]}x{render[1]} -> {display[0]}x{display[1]} on {ns.device}, GL {renderer_name}: "
                 f"{details['dispatch_ms']['p50']:.2f} ms per dispatch (p50)", **details)
    return 0


# -- step 7: the training burst's evaluation ---------------------------------------------------

def cmd_train_report(ns) -> int:
    def scores(path):
        """{"sf": {...}, "ef": {...}} of the method in an evaluate JSON: Y-PSNR / SSIM / FLIP
        over all, edge and hole pixels; None when there is none."""
        p = Path(path)
        if not p.is_file():
            return None
        m = json.loads(p.read_text()).get("methods", {}).get(ns.method)
        if not m:
            return None
        return {kind: {region: {k: round(v, 4) for k, v in m[kind][region].items()} for region in m[kind]}
                for kind in ("sf", "ef") if kind in m}

    shipped, trained = scores(ns.shipped), scores(ns.trained)
    results = Path(ns.trained).parent
    details = {"weights": str(results / "weights.pt"), "method": ns.method, "shipped": shipped, "trained": trained}
    loss = results / "loss.csv"
    if loss.is_file():
        lines = loss.read_text().splitlines()
        details["loss_rows"] = len(lines) - 1
        details["loss_last"] = lines[-1] if len(lines) > 1 else ""
    if not (results / "weights.pt").is_file():
        write_record(ns.record, "failed", f"no weights were written ({Path(ns.run) / 'weights.pt'})", **details)
        return 1
    if trained is None:
        write_record(ns.record, "failed", f"weights written, but no evaluation of them (see {results}/eval_trained.log)",
                     **details)
        return 1
    psnr = {k: trained[k]["all"]["psnr"] for k in trained}
    reason = "held-out Y-PSNR " + ", ".join(f"{k.upper()} {v:.2f} dB" for k, v in psnr.items())
    if shipped is not None:
        gains = {k: trained[k]["all"]["psnr"] - shipped[k]["all"]["psnr"] for k in trained if k in shipped}
        details["psnr_gain_db"] = {k: round(v, 3) for k, v in gains.items()}
        details["beats_shipped"] = all(v > 0 for v in gains.values())
        reason += " (" + ", ".join(f"{k.upper()} {v:+.2f}" for k, v in gains.items()) + " against the shipped weights)"
    write_record(ns.record, "passed", reason, **details)
    return 0


# -- the summary -----------------------------------------------------------------------------

def cmd_summary(ns) -> int:
    out = Path(ns.out)
    steps = []
    for run_file in sorted((out / "steps").glob("*.run.json"), key=lambda p: json.loads(p.read_text())["order"]):
        shell = json.loads(run_file.read_text())
        rec_file = run_file.with_name(run_file.name.replace(".run.json", ".json"))
        rec = json.loads(rec_file.read_text()) if rec_file.is_file() else None
        log = out / shell["log"]
        tail = ""
        if log.is_file():
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            tail = lines[-1][:300] if lines else ""
        if shell.get("skip_reason"):
            status, reason = "skipped", shell["skip_reason"]
        elif shell["timed_out"]:
            status, reason = "failed", f"timed out after {shell['box_s']} s (its box); last line: {tail}"
        elif rec is not None and not (rec["status"] == "passed" and shell["rc"] != 0):
            status, reason = rec["status"], rec["reason"]
        elif shell["rc"] == 0:
            status, reason = "passed", ""
        else:
            status, reason = "failed", f"exit code {shell['rc']}: {tail}"
        entry = {"step": shell["id"], "name": shell["name"], "status": status, "reason": reason,
                 "seconds": shell["seconds"], "box_s": shell["box_s"], "log": shell["log"]}
        if rec is not None and rec.get("details"):
            entry["details"] = rec["details"]
        steps.append(entry)
    summary = {"command": ns.command, "dry_run": ns.dry_run, "started": ns.started, "budget_s": ns.budget,
               "wall_s": ns.wall, "counts": {s: sum(e["status"] == s for e in steps) for s in ("passed", "failed", "skipped")},
               "steps": steps}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    width = max((len(e["name"]) for e in steps), default=4)
    for e in steps:
        print(f"{e['step']:>3} {e['name']:<{width}} {e['status']:<8} {e['seconds']:6.1f} s / {e['box_s']:>3} s  {e['reason']}"[:220])
    c = summary["counts"]
    print(f"gpu_check: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped in {ns.wall:.0f} s "
          f"-> {out / 'summary.json'}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, func):
        p = sub.add_parser(name)
        p.add_argument("--record", default=None, help="the step record to write (JSON)")
        p.set_defaults(func=func)
        return p

    p = add("info", cmd_info)
    p.add_argument("--require-gpu", action="store_true")
    p = add("env-check", cmd_env_check)
    p.add_argument("--require-nvidia-gl", action="store_true")
    p = add("tests", cmd_tests)
    p.add_argument("junit")
    p.add_argument("--note", default="", help="said after the counts (tests left out, and why)")
    p = add("bench-report", cmd_bench_report)
    p.add_argument("json", nargs="+")
    p.add_argument("--skipped", nargs="*", help="bench logs whose 'skipped:' lines to keep")
    for name, func in (("syncs", cmd_syncs), ("demo", cmd_demo)):
        p = add(name, func)
        p.add_argument("--device", default="cuda")
        p.add_argument("--pass-name", default="stss")
    sub.choices["syncs"].add_argument("--size", default="960x540")
    sub.choices["syncs"].add_argument("--frames", type=int, default=20)
    sub.choices["syncs"].add_argument("--warmup", type=int, default=3)
    sub.choices["demo"].add_argument("--render-size", default="960x540")
    sub.choices["demo"].add_argument("--frames", type=int, default=300, help="display frames")
    sub.choices["demo"].add_argument("--scene", default="traffic")
    sub.choices["demo"].add_argument("--out", required=True)
    p = add("train-report", cmd_train_report)
    p.add_argument("--run", required=True)
    p.add_argument("--method", default="stss")
    p.add_argument("--shipped", required=True)
    p.add_argument("--trained", required=True)
    p = add("summary", cmd_summary)
    p.add_argument("out")
    p.add_argument("--command", default="")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--started", default="")
    p.add_argument("--budget", type=float, default=0)
    p.add_argument("--wall", type=float, default=0)
    ns = ap.parse_args(argv)
    if ns.record is None and ns.cmd != "summary":
        ns.record = os.devnull
    return ns.func(ns)


if __name__ == "__main__":
    sys.exit(main())
