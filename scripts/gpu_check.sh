#!/usr/bin/env bash
# The GPU check: one command that runs, on a GPU machine lent for a few minutes, everything
# the project claims about GPUs, and writes what it found under one folder.
#
# THE COMMAND (on the GPU machine, from the repository root; at most 9 minutes of wall time):
#
#     bash scripts/gpu_check.sh            # results under $OUT (the lent machine's return
#                                          # folder), else out/gpu_check; or: ... DIR
#
# FILES TO BRING: the working tree (about 14 MiB) and the git-ignored .whl/ folder that
# `bash scripts/gpu_wheels.sh` fills here (about 4 MiB: the wheels for Python 3.12 that the
# GPU machine's image lacks, and the GL loader .deb files); together about 18 MiB of the
# 64 MiB allowed. With the project's device tool: command "bash scripts/gpu_check.sh",
# carry [".whl"], timeout_s 600 (the script stops itself by 9 minutes).
#
# TIME LIMIT: 540 s (TIME_BUDGET_S). Steps run one after another, each in its own time box
# (a step that fails or hangs costs its box, and the next one runs); step 7 gets what is left.
#   1  info       device, driver and library versions (nvidia-smi, torch, Triton, ...)
#   2  install    wheels from .whl/ unpacked into a scratch site folder, the GL loader
#                 .deb files unpacked beside it (EGL on the NVIDIA driver), then checked
#   3  tests      the tests that skip without a GPU, run for real, each reported
#   4  bench      joint vs two-stage at 960x540 -> 1920x1080 and 1920x1080 -> 3840x2160,
#                 torch with CUDA graphs: fp16, fp32 (IEEE) and fp32 with TF32
#   4a eager      the same without CUDA graphs: fp32 eager NCHW (the reference), fp16
#                 channels-last
#   4b compile    torch.compile (Triton) + CUDA graph, joint, fp16, 960x540
#   4c syncs      host synchronisations per plugin dispatch on CUDA (goal: at most 1)
#   5  demo       the demo renderer on the NVIDIA GL driver (EGL) drives the plugin on CUDA
#                 through CUDA-OpenGL interop for 300 display frames: profile.csv, summary
#   6  c-abi      the C example engine (plugin/examples/engine.c) with host, CUDA-pointer
#                 and GL-texture images, then the C ABI's GPU-handle tests
#   7  train      a GPU training burst: render generated scenes there, fine-tune
#                 (TRAIN_CMD below) until the deadline, evaluate against the shipped
#                 weights on a held-out dump made there; weights, log and evaluation JSON
# ONNX Runtime's CUDA provider (onnxruntime-gpu, over 200 MB) and TensorRT (TensorRT for
# RTX does not support compute capability 9.0, H100/H200; standard TensorRT is over 1 GB)
# cannot be carried: the bench lists them as skipped with that reason.
#
# Results: OUT/summary.json (each step: passed / failed / skipped, why, seconds, box, its
# details), OUT/logs/*.log, OUT/bench/*.json, OUT/demo/, OUT/train/. Scratch (installed
# wheels, rendered data, caches) goes to WORK (default /tmp/stss_gpu_check), not OUT.
#
#     bash scripts/gpu_check.sh --dry-run [DIR]
# runs the same steps on the CPU at tiny sizes (CUDA-only steps report "skipped: no GPU");
# tests/test_gpu_check.py runs it in CI so that this script cannot rot between lendings.
#
# Options: --dry-run, --train-cmd CMD (or TRAIN_CMD=...), --budget SECONDS, --only IDS (the
# steps to run, comma-separated, e.g. "--only 7 --budget 300": a second call that gives the
# training burst more than the minute or two the first one leaves it), DIR.
# Works with PyTorch 2.11 (the GPU machine's) and 2.13; runs from the tree (PYTHONPATH),
# since the pinned torch==2.13.0 cannot be installed there.
set -uo pipefail

# ---- the training burst's command (step 7) --------------------------------------------------
# Replace it (--train-cmd, or TRAIN_CMD in the environment) to train another network. It runs
# with `bash -c` in the repository root with these variables set:
#   PY     the Python to use          DEVICE  cuda (cpu in the dry run)
#   DATA   training dump folders, space-separated (rendered in this step)
#   RUN    its run folder: it must write RUN/weights.pt (and checkpoint as it goes)
#   CROP   crop side in render pixels (256, the paper's; 32 in the dry run)
#   BATCH  crops per step             STEPS   an upper bound on steps
#   WORKERS  data loader processes (4; 0 in the dry run)
# It is one command (run with `exec`): at its deadline SIGINT goes to that process alone,
# which must then save RUN/weights.pt and exit (SIGKILL 30 s later).
# TRAIN_EVAL_METHOD: the `evaluate` method that runs RUN/weights.pt (given as --weights).
TRAIN_CMD_DEFAULT='$PY -m stss_runtime train stss --init stss_runtime/weights/stss_2x.pt --data $DATA --crop $CROP --batch $BATCH --steps $STEPS --lr 5e-5 --checkpoint-every 25 --log-every 5 --device $DEVICE --workers $WORKERS --out $RUN --no-progress'
TRAIN_CMD=${TRAIN_CMD:-$TRAIN_CMD_DEFAULT}
TRAIN_EVAL_METHOD=${TRAIN_EVAL_METHOD:-stss}

TIME_BUDGET_S=${TIME_BUDGET_S:-540}
DRY_RUN=0
OUT_DIR=""
ONLY=""
while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --train-cmd) TRAIN_CMD="$2"; shift ;;
    --budget) TIME_BUDGET_S="$2"; shift ;;
    --only) ONLY=",$2,"; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) OUT_DIR="$1" ;;
  esac
  shift
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 2
OUT_DIR=${OUT_DIR:-${OUT:-$REPO/out/gpu_check}}
mkdir -p "$OUT_DIR" && OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=${WORK:-/tmp/stss_gpu_check}
[[ $DRY_RUN == 1 ]] && WORK="$OUT_DIR/.work"  # the dry run leaves nothing behind outside DIR
rm -rf "$OUT_DIR/steps" "$OUT_DIR/logs"
mkdir -p "$OUT_DIR/steps" "$OUT_DIR/logs" "$WORK"

if [[ -x $REPO/.venv/bin/python ]]; then PY=$REPO/.venv/bin/python; else PY=$(command -v python3 || command -v python); fi
export PY
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export STSS_CACHE="$WORK/cache"
export PYTHONUNBUFFERED=1
export MPLBACKEND=Agg
HELPER="$PY $REPO/scripts/gpu_check.py"
START=$(date +%s)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
DEADLINE=$((START + TIME_BUDGET_S))
SUMMARY_RESERVE=10

if [[ $DRY_RUN == 1 ]]; then
  DEVICE=cpu; export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  DEVICE=cuda
fi
export DEVICE

left() { echo $((DEADLINE - $(date +%s) - SUMMARY_RESERVE)); }

# run_step ID NAME BOX COMMAND...: runs COMMAND with its output in logs/ID-NAME.log, killed
# after min(BOX, the time left); records the exit code, time and whether it timed out in
# steps/ID.run.json. The command may write steps/ID.json (status, reason, details).
run_step() {
  local id=$1 name=$2 box=$3; shift 3
  local avail; avail=$(left)
  ((box > avail)) && box=$avail
  local log="logs/$id-$name.log" t0 rc timed_out=false
  STEP_ORDER=$((${STEP_ORDER:-0} + 1))
  export STEP_RECORD="$OUT_DIR/steps/$id.json"
  printf '[%4ss] step %-3s %-8s (box %s s) ... ' "$(($(date +%s) - START))" "$id" "$name" "$box"
  if [[ -n $ONLY && $ONLY != *",$id,"* ]]; then
    echo "skipped: not asked for (--only)"
    printf '{"order": %s, "id": "%s", "name": "%s", "rc": 0, "seconds": 0, "box_s": %s, "timed_out": false, "log": "%s", "skip_reason": "not asked for (--only %s)"}\n' \
      "$STEP_ORDER" "$id" "$name" "$box" "$log" "${ONLY:1:-1}" > "$OUT_DIR/steps/$id.run.json"
    return 0
  fi
  if ((box < 5)); then
    echo "skipped: no time left"
    printf '{"order": %s, "id": "%s", "name": "%s", "rc": 0, "seconds": 0, "box_s": %s, "timed_out": false, "log": "%s", "skip_reason": "no time left in the %s s budget"}\n' \
      "$STEP_ORDER" "$id" "$name" "$box" "$log" "$TIME_BUDGET_S" > "$OUT_DIR/steps/$id.run.json"
    return 0
  fi
  t0=$(date +%s.%N)
  timeout -k 10 "$box" "$@" > "$OUT_DIR/$log" 2>&1
  rc=$?
  ((rc == 124 || rc == 137)) && timed_out=true
  local secs; secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  printf '{"order": %s, "id": "%s", "name": "%s", "rc": %s, "seconds": %s, "box_s": %s, "timed_out": %s, "log": "%s"}\n' \
    "$STEP_ORDER" "$id" "$name" "$rc" "$secs" "$box" "$timed_out" "$log" > "$OUT_DIR/steps/$id.run.json"
  local said=""
  [[ -f $STEP_RECORD ]] && said=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["status"] + (": " + r["reason"] if r["reason"] else ""))' "$STEP_RECORD" 2>/dev/null)
  if $timed_out; then echo "failed: timed out after $box s ($secs s)";
  elif [[ -n $said ]]; then echo "${said:0:150} ($secs s)";
  elif ((rc == 0)); then echo "passed ($secs s)";
  else echo "failed: exit code $rc ($secs s; see $log)"; fi
  return 0
}
export -f left run_step

# ---- the steps (each a function run in its own box) -------------------------------------

step_info() {
  if [[ $DRY_RUN == 1 ]]; then $HELPER info --record "$STEP_RECORD"; else $HELPER info --require-gpu --record "$STEP_RECORD"; fi
  command -v nvidia-smi >/dev/null && nvidia-smi || echo "nvidia-smi: not found"
}

# wheels are zip archives: unpacked into a folder on PYTHONPATH they are installed (no pip or
# network needed); .deb files are ar archives holding data.tar.*: unpacked with Python too
step_install() {
  local wheels="$REPO/.whl" site="$WORK/site" gl="$WORK/gl"
  if [[ ! -d $wheels ]]; then
    echo "no $wheels folder (bash scripts/gpu_wheels.sh fills it): checking the packages this Python has"
  else
    "$PY" - "$wheels" "$site" "$gl" <<'EOF' || return 1
import io, pathlib, sys, tarfile, zipfile
wheels, site, gl = (pathlib.Path(a) for a in sys.argv[1:4])
site.mkdir(parents=True, exist_ok=True)
for w in sorted(wheels.glob("*.whl")):
    zipfile.ZipFile(w).extractall(site)
    print(f"unpacked {w.name}")
for deb in sorted((wheels / "gl").glob("*.deb")):
    data = deb.read_bytes()
    assert data[:8] == b"!<arch>\n", f"{deb.name}: not a .deb (ar) archive"
    pos = 8
    while pos < len(data):
        name, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            tarfile.open(fileobj=io.BytesIO(body)).extractall(gl)
        pos += 60 + size + (size % 2)
    print(f"unpacked {deb.name}")
EOF
  fi
  local libdir="$gl/usr/lib/x86_64-linux-gnu"
  if [[ -f $libdir/libEGL.so.1 ]]; then
    # the loaders (libglvnd) go first; the driver's own EGL/GL libraries stay where they are
    cat > "$WORK/env.sh" <<EOF
export LD_LIBRARY_PATH="$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export GLCONTEXT_LINUX_LIBEGL="$libdir/libEGL.so.1"
export GLCONTEXT_LINUX_LIBGL="$libdir/libGL.so.1"
EOF
    # libglvnd finds the NVIDIA EGL driver through a vendor file; write one if the image has none
    if ! compgen -G "/usr/share/glvnd/egl_vendor.d/*nvidia*.json" >/dev/null \
        && ! compgen -G "/etc/glvnd/egl_vendor.d/*nvidia*.json" >/dev/null; then
      local nv; nv=$( (ldconfig -p 2>/dev/null | awk '/libEGL_nvidia.so.0/ {print $NF; exit}') )
      if [[ -n $nv ]]; then
        mkdir -p "$WORK/glvnd"
        printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s"}}\n' "$nv" > "$WORK/glvnd/10_nvidia.json"
        echo "export __EGL_VENDOR_LIBRARY_FILENAMES=$WORK/glvnd/10_nvidia.json" >> "$WORK/env.sh"
      fi
    fi
  fi
  # the unpacked wheels are for Python 3.12 (the GPU machine's); another Python keeps its own
  if [[ -d $site ]] && "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    echo "export PYTHONPATH=\"$site:\$PYTHONPATH\"" >> "$WORK/env.sh"
  elif [[ -d $site ]]; then
    echo "the wheels are for Python 3.12, this is $("$PY" --version 2>&1): not used"
  fi
  [[ -f $WORK/env.sh ]] && { cat "$WORK/env.sh"; source "$WORK/env.sh"; }
  if [[ $DRY_RUN == 1 ]]; then $HELPER env-check --record "$STEP_RECORD"; else $HELPER env-check --require-nvidia-gl --record "$STEP_RECORD"; fi
}

# later steps see what step 2 installed
load_env() { [[ -f $WORK/env.sh ]] && source "$WORK/env.sh"; return 0; }

pytest_step() {  # pytest_step JUNIT TEST...: the tests, one report line each
  load_env
  local junit=$1; shift
  "$PY" -m pytest -q -rA -p no:cacheprovider -o addopts="" --junitxml="$junit" "$@"
  $HELPER tests "$junit" --note "${TESTS_NOTE:-}" --record "$STEP_RECORD"
}

GPU_TESTS=(
  "tests/stss_runtime/test_backends.py::test_cuda_graph_replay_matches_eager"
  "tests/stss_runtime/test_tensorrt_backend.py::test_inference_matches_torch"
  "tests/plugin/test_gl_interop.py::test_on_a_gpu_interop_reads_what_the_host_path_reads"
  "tests/plugin/test_gl_interop.py::test_on_a_gpu_a_cuda_context_maps_moderngl_textures"
  "tests/stss_runtime/test_gpu_paths.py"
  "tests/plugin/test_gl_viewport.py"
)
C_ABI_GPU_TESTS=(
  "tests/plugin/c_abi_table.py::test_gpu_handles_give_the_host_pictures"
  "tests/plugin/c_abi_table.py::test_gl_texture_handles_give_the_host_pictures"
)

step_tests() {
  load_env
  local tests=() t trt_note
  # TensorRT's inference tests fail (not skip) without TensorRT where there is a GPU: they
  # run only where it can (it cannot be carried to the lent H100 / H200), else the step says why
  trt_note=$("$PY" -c 'from stss_runtime.backends import availability; ok, why = availability()["tensorrt"]; print("" if ok else why)' 2>&1)
  for t in "${GPU_TESTS[@]}"; do
    if [[ $t == *test_tensorrt_backend* && -n $trt_note && $DRY_RUN != 1 ]]; then continue; fi
    tests+=("$t")
  done
  [[ $DRY_RUN == 1 ]] && tests=("${tests[@]:0:4}")  # collection and reporting rehearsed: they skip here
  export TESTS_NOTE=""
  [[ -n $trt_note && $DRY_RUN != 1 ]] && TESTS_NOTE="TensorRT inference tests not run: $trt_note"
  pytest_step "$OUT_DIR/logs/3-tests.xml" "${tests[@]}"
}

bench_step() {  # bench_step NAME CUDA-ARGS...: the bench on CUDA (tiny on the CPU in the dry run)
  load_env
  mkdir -p "$OUT_DIR/bench"
  local name=$1; shift
  local args
  if [[ $DRY_RUN == 1 ]]; then
    args=(--device cpu --sizes 32x24 --frames 2 --warmup 0 --precisions fp32 --variants channels-last
          --worker-timeout 60 --backends torch,tensorrt)
  else
    args=(--device cuda --sizes 960x540,1920x1080 --frames 40 --warmup 6 "$@")
  fi
  "$PY" -m stss_runtime bench "${args[@]}" --pipelines "${PIPELINES:-joint,two_stage}" \
      --cache-dir "$WORK/cache" --json "$OUT_DIR/bench/$name.json" --no-progress | tee "$OUT_DIR/bench/$name.txt"
  $HELPER bench-report "$OUT_DIR/bench/$name.json" --skipped "$OUT_DIR/bench/$name.txt" --record "$STEP_RECORD"
}

step_bench() {  # the headline rows; ONNX Runtime and TensorRT say here why they cannot run
  bench_step torch --precisions fp16,fp32 --variants "cuda graph,cuda graph tf32" --worker-timeout 60 \
      --backends torch,onnxruntime,tensorrt
}

step_eager() {
  if [[ $DRY_RUN == 1 ]]; then  # step 4 rehearsed the bench already
    "$PY" -c 'import json,sys; json.dump({"status": "skipped", "reason": "no GPU (the eager CUDA rows; step 4 rehearsed the bench)", "details": {}}, open(sys.argv[1], "w"))' "$STEP_RECORD"
    return 0
  fi
  # eager rows also time the default pass (stss_recurrent: STSS + its learned accumulation)
  PIPELINES=joint,two_stage,joint_recurrent bench_step eager_fp32 --precisions fp32 --variants "eager nchw" \
      --worker-timeout 40 --backends torch
  PIPELINES=joint,two_stage,joint_recurrent bench_step eager_fp16 --precisions fp16 --variants channels-last \
      --worker-timeout 35 --backends torch
  $HELPER bench-report "$OUT_DIR/bench/eager_fp32.json" "$OUT_DIR/bench/eager_fp16.json" \
      --skipped "$OUT_DIR/bench/eager_fp32.txt" "$OUT_DIR/bench/eager_fp16.txt" --record "$STEP_RECORD"
}

step_compile() {
  load_env
  if [[ $DRY_RUN == 1 ]]; then
    "$PY" -c 'import json,sys; json.dump({"status": "skipped", "reason": "no GPU (torch.compile is timed with Triton on CUDA)", "details": {}}, open(sys.argv[1], "w"))' "$STEP_RECORD"
    return 0
  fi
  "$PY" -m stss_runtime bench --device cuda --sizes 960x540 --frames 60 --warmup 10 --precisions fp16 \
      --variants "torch.compile + cuda graph" --backends torch --pipelines joint --worker-timeout 80 \
      --cache-dir "$WORK/cache" --json "$OUT_DIR/bench/compile.json" --no-progress | tee "$OUT_DIR/bench/compile.txt"
  $HELPER bench-report "$OUT_DIR/bench/compile.json" --skipped "$OUT_DIR/bench/compile.txt" --record "$STEP_RECORD"
}

step_syncs() {
  load_env
  if [[ $DRY_RUN == 1 ]]; then
    $HELPER syncs --device cpu --size 32x24 --frames 2 --warmup 1 --record "$STEP_RECORD"
  else
    $HELPER syncs --device cuda --size 960x540 --frames 20 --warmup 3 --record "$STEP_RECORD"
  fi
}

step_demo() {
  load_env
  if [[ $DRY_RUN == 1 ]]; then
    $HELPER demo --device cpu --render-size 32x24 --frames 4 --out "$OUT_DIR/demo" --record "$STEP_RECORD"
  else
    $HELPER demo --device cuda --render-size 960x540 --frames 300 --out "$OUT_DIR/demo" --record "$STEP_RECORD"
  fi
}

step_c_abi() {
  load_env
  local c="$WORK/c"
  mkdir -p "$c"
  # the example engine compiles here whatever the machine (its GPU code is loaded at run time)
  gcc -std=c99 -O2 -Wall -Wextra -Werror -c plugin/examples/engine.c -Iplugin/include -o "$c/engine.o" || return 1
  if [[ $DRY_RUN == 1 ]]; then
    "$PY" -c 'import json,sys; json.dump({"status": "skipped", "reason": "no GPU (the example engine compiles; its CUDA-pointer and GL-texture images need a CUDA context; its host run is CI'"'"'s tests/plugin/test_c_abi.py)", "details": {}}, open(sys.argv[1], "w"))' "$STEP_RECORD"
    return 0
  fi
  local missing; missing=$("$PY" -c 'from plugin import c_abi; print("; ".join(c_abi.build_missing()))')
  if [[ -n $missing ]]; then
    "$PY" -c 'import json,sys; json.dump({"status": "skipped", "reason": "the C ABI library cannot be built here: needs " + sys.argv[2], "details": {}}, open(sys.argv[1], "w"))' "$STEP_RECORD" "$missing"
    return 0
  fi
  "$PY" -m plugin.c_abi --build --out "$c" || return 1
  gcc -std=c99 -O2 -Wall -Wextra -Werror plugin/examples/engine.c -Iplugin/include -L"$c" -lstss_plugin \
      -Wl,-rpath,"$c" -lm -ldl -o "$c/engine" || return 1
  # the CUDA runtime PyTorch brought (the engine also finds it once the plugin has loaded it)
  export STSS_CUDART=${STSS_CUDART:-$("$PY" -c 'import glob, os, site, torch
roots = [os.path.join(os.path.dirname(torch.__file__), "lib")] + [os.path.join(p, "nvidia") for p in site.getsitepackages()]
hits = [h for r in roots for pat in ("libcudart.so*", "*/lib/libcudart.so*") for h in glob.glob(os.path.join(r, pat))]
print(sorted(hits)[-1] if hits else "")')}
  echo "STSS_CUDART=$STSS_CUDART"
  local failed=() mode
  for mode in host cuda gl; do
    echo "== engine stss $mode"
    "$c/engine" stss "$mode" 2>&1 | tee "$c/engine-$mode.log" | grep -v "^frame " || true
    grep -q "^ALL PASSED" "$c/engine-$mode.log" || failed+=("engine stss $mode: $(grep -m1 '^FAIL' "$c/engine-$mode.log" || tail -n 1 "$c/engine-$mode.log")")
  done
  pytest_step "$OUT_DIR/logs/6-c-abi.xml" "${C_ABI_GPU_TESTS[@]}"
  if ((${#failed[@]})); then
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); r["status"]="failed"; r["reason"]="; ".join(sys.argv[2:]) + "; tests: " + r["reason"]; json.dump(r, open(sys.argv[1], "w"))' "$STEP_RECORD" "${failed[@]}"
    return 1
  fi
}

step_train() {
  load_env
  local data="$WORK/data" run="$WORK/run" res="$OUT_DIR/train"
  mkdir -p "$data" "$res"
  local scenes render display frames held_frames gt eval_frames crop batch steps workers reserve
  if [[ $DRY_RUN == 1 ]]; then
    scenes="scatter:1"; render=64x40; display=128x80; frames=8; held_frames=8; gt=2; eval_frames=8
    crop=32; batch=2; steps=2; workers=0; reserve=25
  else
    scenes="scatter:101 scatter:102 scatter:103 scatter:104"; render=480x270; display=960x540
    frames=48; held_frames=24; gt=16; eval_frames=16; crop=256; batch=8; steps=100000; workers=4; reserve=75
  fi
  local pids=() dirs=() s
  for s in $scenes traffic; do
    local n=$frames; [[ $s == traffic ]] && n=$held_frames
    local d="$data/${s/:/_}"
    dirs+=("$d")
    "$PY" -m demo_renderer render --scene "$s" --frames "$n" --render-size "$render" --display-size "$display" \
        --gt-samples "$gt" --start-time 1.0 --out "$d" --no-progress > "$res/render_${s/:/_}.log" 2>&1 &
    pids+=($!)
  done
  local ok=1 p
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  ((ok)) || { echo "rendering failed:"; tail -n 3 "$res"/render_*.log; return 1; }
  local held="${dirs[-1]}"
  unset 'dirs[-1]'
  local box=$(( $(left) - reserve ))
  if ((box < 20)); then echo "no time left to train ($box s)"; return 1; fi
  echo "training for at most $box s: $TRAIN_CMD"
  DATA="${dirs[*]}" RUN="$run" CROP=$crop BATCH=$batch STEPS=$steps WORKERS=$workers \
    timeout --foreground -s INT -k 30 "$box" bash -c "exec $TRAIN_CMD" > "$res/train.log" 2>&1
  local rc=$?
  echo "trainer exit code $rc (124: stopped at its deadline)"
  tail -n 5 "$res/train.log"; echo
  for f in weights.pt loss.csv loss.png; do [[ -f $run/$f ]] && cp "$run/$f" "$res/"; done
  # the shipped and the new weights on the held-out dump, side by side (the dry run: the new only)
  [[ $DRY_RUN == 1 ]] || "$PY" -m stss_runtime evaluate --data "$held" --methods "$TRAIN_EVAL_METHOD" \
      --frames "$eval_frames" --motion-tiers "" --json "$res/eval_shipped.json" --no-progress > "$res/eval_shipped.log" 2>&1 &
  local shipped_pid=$!
  [[ -f $run/weights.pt ]] && "$PY" -m stss_runtime evaluate --data "$held" --methods "$TRAIN_EVAL_METHOD" \
      --frames "$eval_frames" --motion-tiers "" --weights "$run/weights.pt" --json "$res/eval_trained.json" --no-progress \
      > "$res/eval_trained.log" 2>&1
  wait "$shipped_pid"
  tail -n 3 "$res"/eval_*.log
  $HELPER train-report --run "$run" --method "$TRAIN_EVAL_METHOD" --shipped "$res/eval_shipped.json" --trained "$res/eval_trained.json" \
      --record "$STEP_RECORD"
}
export -f step_info step_install load_env pytest_step step_tests bench_step step_bench step_eager step_compile \
    step_syncs step_demo step_c_abi step_train
export REPO OUT_DIR WORK HELPER DRY_RUN START DEADLINE SUMMARY_RESERVE TIME_BUDGET_S TRAIN_CMD TRAIN_EVAL_METHOD ONLY
export GPU_TESTS_LIST="${GPU_TESTS[*]}"

echo "gpu_check: $([[ $DRY_RUN == 1 ]] && echo "dry run on the CPU" || echo "on $DEVICE"), budget $TIME_BUDGET_S s," \
     "results in $OUT_DIR, scratch in $WORK"
# arrays do not cross `bash -c`: the steps that use them are declared in the child too
DECLS="$(declare -p GPU_TESTS C_ABI_GPU_TESTS)"
run_step 1  info     20  bash -c 'step_info'
run_step 2  install  40  bash -c 'step_install'
run_step 3  tests    100 bash -c "$DECLS; step_tests"
run_step 4  bench    120 bash -c 'step_bench'
run_step 4a eager    80  bash -c 'step_eager'
run_step 4b compile  90  bash -c 'step_compile'
run_step 4c syncs    30  bash -c 'step_syncs'
run_step 5  demo     60  bash -c 'step_demo'
run_step 6  c-abi    75  bash -c "$DECLS; step_c_abi"
run_step 7  train    9999 bash -c 'step_train'

WALL=$(($(date +%s) - START))
$HELPER summary "$OUT_DIR" --command "bash scripts/gpu_check.sh$([[ $DRY_RUN == 1 ]] && echo ' --dry-run')" \
    --started "$STARTED" --budget "$TIME_BUDGET_S" --wall "$WALL" $([[ $DRY_RUN == 1 ]] && echo --dry-run) \
  || { echo "gpu_check: the summary could not be written; step records: $OUT_DIR/steps"; exit 1; }
[[ $DRY_RUN == 1 ]] && rm -rf "$WORK"
exit 0
