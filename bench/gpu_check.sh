#!/usr/bin/env bash
# One GPU check, ready to run on any single-GPU machine with nothing but this repository (no hub weights:
# random-weight SD 2.1-base-size models). Within ~8 minutes on one H200 it runs, each stage under its own
# time limit so one slow stage cannot hide the others:
#   onestep   one-step generation throughput, batch 1 and 64          -> reports/bench/onestep_throughput.*
#   vsd       our VSD step against the plain SBv1 loop, batch 16       -> reports/bench/vsd_step.*
#   mfu       the GPU's bf16 matmul peak and each VSD variant's MFU    -> reports/bench/gpu_check_mfu.*
#   eval      the COCO-30K-size evaluation pass (features, FID, P/R, CLIP)  -> reports/bench/gpu_check_eval_pass.*
#   pipeline  a random-weight SD 2.1-base pipeline folder (for the two stages below)
#   train     20 steps of the real trainer (sb2bench train; bf16 autocast on CUDA), batch 16
#   timing    SBv2 Table 8's protocol (sb2bench timing) on the 25-step teacher and a one-step system
# and writes reports/bench/gpu_check.{md,json} naming the GPU, each stage's status and seconds.
#
#   bash bench/gpu_check.sh               # a GPU machine: SD 2.1-base size, reports/bench/
#   bash bench/gpu_check.sh --cpu-toy     # any CPU, toy widths, ~1 min on 2 cores: checks the script, not the speed
#                                           (its stages run in two lanes at once; the GPU run, one at a time)
#   options: --out-dir DIR (reports; default reports/bench, toy: results/gpu_check_cpu_toy/reports)
#            --work DIR (scratch; default results/gpu_check[_cpu_toy]); GPU_CHECK_TIME_SCALE=2 doubles every limit;
#            GPU_CHECK_EVAL_IMAGES=N scores N images instead of 30,000
#
# Missing Python packages (a bare GPU machine): wheels in the repository's ignored .whl/ folder are installed
# into $WORK/site first when an import fails (fill it with bench/make_wheels.sh; docs/paper_scale.md "GPU check").
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
MODE=gpu
OUT_DIR=""
WORK=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-toy) MODE=cpu-toy ;;
        --out-dir) OUT_DIR="$2"; shift ;;
        --work) WORK="$2"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$MODE" = cpu-toy ]; then
    SIZE=toy; DEVICE=cpu
    WORK="${WORK:-results/gpu_check_cpu_toy}"; OUT_DIR="${OUT_DIR:-$WORK/reports}"
    export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    ONESTEP=(--batches 1 4 --images 4 --warmup 1); VSD=(--batch 2 --steps 2 --warmup 1 --variants ours-full sbv1-plain); EVAL_IMAGES=32
    TRAIN_STEPS=2; TRAIN_BATCH=2; TIMING=(--warmup 0 --runs 1 --repeats 1)
    #           onestep vsd mfu eval pipeline train timing (seconds)
    LIMITS=(120 120 60 120 60 120 120)   # guards on a shared CPU, not targets
else
    SIZE=sd21; DEVICE=cuda
    WORK="${WORK:-results/gpu_check}"; OUT_DIR="${OUT_DIR:-reports/bench}"
    ONESTEP=(--batches 1 64 --images 128 --warmup 2); EVAL_IMAGES="${GPU_CHECK_EVAL_IMAGES:-30000}"
    VSD=(--batch 16 --steps 10 --warmup 2 --variants ours-full sbv1-plain)
    TRAIN_STEPS=20; TRAIN_BATCH=16; TIMING=(--warmup 2 --runs 10 --repeats 2)
    LIMITS=(60 110 15 150 30 80 35)   # 480 s together: the 8-minute budget (estimates, not yet run on a GPU)
fi
grep -q '"--repeats"' bench/vsd_step.py && VSD+=(--repeats 1)  # one process per variant where it can repeat
SCALE="${GPU_CHECK_TIME_SCALE:-1}"
mkdir -p "$WORK/logs" "$OUT_DIR"
WORK="$(cd "$WORK" && pwd)"; OUT_DIR="$(cd "$OUT_DIR" && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg
export SB2BENCH_WARM=0 SB2BENCH_PROGRESS_SECONDS="${SB2BENCH_PROGRESS_SECONDS:-10}"
PY="${PYTHON:-python3}"

# -- packages: install carried wheels only when an import fails ------------------------------------------------
# find_spec, not import: a check that costs no torch import
NEED="import importlib.util as u, sys; m = [n for n in ('torch', 'torchvision', 'diffusers', 'transformers', 'peft',
    'accelerate', 'open_clip', 'cleanfid', 'ftfy', 'safetensors', 'yaml', 'scipy', 'PIL')
    if u.find_spec(n) is None]; sys.exit(f'missing: {m}' if m else 0)"
if ! "$PY" -c "$NEED" 2>/dev/null; then
    if ls "$ROOT"/.whl/*.whl >/dev/null 2>&1; then
        echo "[gpu_check] installing the wheels of .whl/ into $WORK/site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
            "$ROOT"/.whl/*.whl || { echo "[gpu_check] wheel install failed" >&2; exit 1; }
        export PYTHONPATH="$PYTHONPATH:$WORK/site"
    fi
    "$PY" -c "$NEED" || { echo "[gpu_check] missing packages and no usable .whl/ (run bench/make_wheels.sh)" >&2; exit 1; }
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "[gpu_check] no CUDA GPU visible; use --cpu-toy on a CPU machine" >&2; exit 1
fi

# -- stages -------------------------------------------------------------------------------------------------------
STAGES="$WORK/stages.tsv"
: > "$STAGES"
rm -f "$STAGES".*
child_cpu() {  # child_cpu VAR: VAR = user + system CPU seconds of this shell's finished children (`times`, line 2)
    local f="$WORK/times.$BASHPID.txt"  # per shell: the cpu-toy lanes run in two
    times > "$f"   # here, not inside $(...): a subshell has no children of its own
    printf -v "$1" '%s' "$(awk 'END { split($1, u, "m"); split($2, s, "m"); printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$f")"
}
stage() {  # stage NAME LIMIT_SECONDS COMMAND...: run under a time limit, log it, record status and seconds
    local name="$1" limit="$2"; shift 2
    local log="$WORK/logs/$name.log" t0 c0 c1 rc status
    limit=$(awk -v l="$limit" -v s="$SCALE" 'BEGIN { printf "%d", l * s }')
    echo "[gpu_check] $name (limit ${limit} s): $*"
    t0=$(date +%s.%N); child_cpu c0
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    rc=$?
    child_cpu c1
    case $rc in 0) status=ok ;; 124|137) status="timeout (${limit} s)" ;; *) status="failed (exit $rc)" ;; esac
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" \
        "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }')" "$log" > "$STAGES.$name"  # one file each: lanes
    [ "$status" = ok ] || { echo "[gpu_check] $name: $status; last lines of $log:"; tail -n 15 "$log"; }
}

PIPE="$WORK/pipeline-$SIZE"
stage_onestep() {
    stage onestep "${LIMITS[0]}" "$PY" bench/onestep_throughput.py --size "$SIZE" --device "$DEVICE" "${ONESTEP[@]}" \
        --out-dir "$OUT_DIR"
}
stage_vsd() {
    stage vsd "${LIMITS[1]}" "$PY" bench/vsd_step.py --size "$SIZE" --device "$DEVICE" "${VSD[@]}" --out-dir "$OUT_DIR"
}
stage_mfu() {  # after vsd: it reads vsd_step.json
    stage mfu "${LIMITS[2]}" "$PY" bench/gpu_check.py mfu --size "$SIZE" --vsd "$OUT_DIR/vsd_step.json" \
        --out-dir "$OUT_DIR"
}
stage_eval() {
    stage eval "${LIMITS[3]}" "$PY" bench/gpu_check.py eval-pass --size "$SIZE" --images "$EVAL_IMAGES" --work "$WORK" \
        --out-dir "$OUT_DIR"
}
stage_pipeline() { stage pipeline "${LIMITS[4]}" "$PY" bench/gpu_check.py pipeline --size "$SIZE" --out "$PIPE"; }
stage_train() {  # after pipeline
"$PY" - "$WORK" "$PIPE" "$TRAIN_STEPS" "$TRAIN_BATCH" <<'PY'
import json, sys
work, pipe, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(f"{work}/prompts.jsonl", "w") as f:
    for i in range(256):
        f.write(json.dumps({"index": i, "caption": f"a photo of object {i} on a table, studio light"}) + "\n")
json.dump({"teacher": pipe, "student_init": pipe, "prompts": f"{work}/prompts.jsonl", "max_steps": steps,
           "batch_size": batch, "log_every": 5, "sample_every": 0, "checkpoint_every": 100000, "threads": 4},
          open(f"{work}/train.json", "w"))
PY
    rm -rf "$WORK/train"
    stage train "${LIMITS[5]}" "$PY" -m sb2bench train --config "$WORK/train.json" --out "$WORK/train"
}
stage_timing() {  # after pipeline
    stage timing "${LIMITS[6]}" bash -c "
    '$PY' -m sb2bench timing --system '{\"name\": \"teacher-25step\", \"steps\": 25, \"cfg\": 4.5, \"pipeline\": \"$PIPE\"}' \
        --out '$WORK/timing_teacher.json' ${TIMING[*]} &&
    '$PY' -m sb2bench timing --system '{\"name\": \"onestep\", \"kind\": \"onestep\", \"pipeline\": \"$PIPE\"}' \
        --out '$WORK/timing_onestep.json' ${TIMING[*]} &&
    '$PY' -m sb2bench report-timing --systems '{\"systems\": [{\"label\": \"teacher, 25 steps, cfg 4.5\", \"file\": \"$WORK/timing_teacher.json\"}, {\"label\": \"one step\", \"file\": \"$WORK/timing_onestep.json\"}]}' \
        --out '$OUT_DIR/gpu_check_timing.md' --title 'SBv2 Table 8 protocol, random-weight SD 2.1-base size ($MODE)'"
}
run_stages() { local s; for s in "$@"; do "stage_$s"; done; }

if [ "$MODE" = cpu-toy ]; then
    # Two lanes at once, one per core (OMP_NUM_THREADS=1 each): the toy run checks the script, not the speed,
    # and takes about half the time on a 2-core CPU. The GPU run keeps one stage at a time (one GPU, timings).
    # Each lane is its own subshell, so `times` (a stage's CPU seconds) counts only that lane's children.
    run_stages vsd mfu eval onestep &
    LANE_A=$!
    run_stages pipeline train timing &
    LANE_B=$!
    wait "$LANE_A" "$LANE_B"
else
    run_stages onestep vsd mfu eval pipeline train timing
fi
for name in onestep vsd mfu eval pipeline train timing; do  # the summary lists the stages in this order
    cat "$STAGES.$name" >> "$STAGES" 2>/dev/null || printf '%s\tnot run\t0\t0\t-\n' "$name" >> "$STAGES"
done
[ -f "$WORK/train/student/provenance.json" ] && cp "$WORK/train/student/provenance.json" "$OUT_DIR/gpu_check_train.json"
"$PY" bench/gpu_check.py summary --stages "$STAGES" --mode "$MODE" --out-dir "$OUT_DIR"
