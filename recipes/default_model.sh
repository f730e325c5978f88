#!/usr/bin/env bash
# Train p2c's default generator (issue 5) in time slices, on whatever GPU machine is lent, and ship it.
#
#   recipes/default_model.sh pack            # here (MediaPipe): prepare crops, pack the carry folder
#   recipes/default_model.sh slice [BATCH]   # on the GPU machine: one time-limited slice, then eval
#   recipes/default_model.sh unpack DIR      # here: put the returned slice state back in the carry
#   recipes/default_model.sh ship WEIGHTS    # here: WEIGHTS -> src/p2c/models/default/ (FP16 <= 10 MB) + eval
#   P2C_TINY=1 recipes/default_model.sh all  # dry run of every step on CPU at a tiny size
#
# Why the steps are split (docs/default-model.md has the whole plan):
# - The GPU machines have no MediaPipe, so the crops are made here (pack) and travel in $P2C_CARRY
#   (git-ignored: the crops come from third-party photos and never enter the repository).
# - What travels is at most 64 MiB: WebP crops (7.8 MB), the Face ID network in FP16 (11.2 MB) and the
#   slice state with FP16 generators (44.1 MB). Name $P2C_CARRY in the device tool's `carry`.
# - One command there runs at most 10 minutes: a slice trains for $P2C_SLICE_MINUTES (default 7),
#   then evaluates and leaves in $OUT the slice state (in 15 MiB pieces: files come back at most
#   16 MiB each), the slice's best export, its eval report and metrics. On a machine still warm,
#   the next slice resumes from the full checkpoint left in $P2C_RUN (exact, Adam included); on a
#   fresh machine from the slice state (Adam restarts with a warm-up of --warmup-steps).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
if [[ -x $REPO/.venv/bin/python ]]; then PY=${P2C_PYTHON:-$REPO/.venv/bin/python}; else PY=${P2C_PYTHON:-python3}; fi
CARRY=${P2C_CARRY:-$REPO/.p2c-carry}
RUN=${P2C_RUN:-$REPO/runs/default}
RAW=${P2C_RAW:-$REPO/../shared/data/photo2cartoon}
DATA=${P2C_DATA:-/tmp/p2c-data}            # PNG crops, outside the repository
SPLIT_TEST=${P2C_SPLIT_TEST:-40}          # testA: 40 photos, chosen with seed 0 (docs/default-model.md)
SLICE_MINUTES=${P2C_SLICE_MINUTES:-7}
ITERATIONS=${P2C_ITERATIONS:-100000}      # photo2cartoon's schedule: lr decays over the second half
FACEID_WEIGHT=${P2C_FACEID_WEIGHT:-10}    # dlib's cosine distances are ~10x narrower than MobileFaceNet's
SHIP_DIR=${P2C_SHIP_DIR:-$REPO/src/p2c/models/default}
STATE=$CARRY/state/slice.pt

if [[ ${P2C_TINY:-0} == 1 ]]; then
    # Every command of the recipe at a size a CPU runs in seconds (the result is not a model).
    SIZE=(--img-size 96 --ch 8 --device cpu --amp none --num-workers 0)
    ITERATIONS=${P2C_ITERATIONS:-6}
    SAVE=(--save-every 2 --export-every 2 --log-every 1 --sample-every 2 --keep-checkpoints 10)
    EVAL=(--device cpu --max-photos 4)
    SLICE_MINUTES=${P2C_SLICE_MINUTES:-0.05}
else
    SIZE=(--img-size 256 --ch 32 --device cuda --amp bf16 --num-workers 8)
    SAVE=(--save-every 2000 --export-every 2000 --log-every 100 --sample-every 2000 --keep-checkpoints 6)
    EVAL=(--device cuda)
    # No --compile: by default the step is replayed as one CUDA graph (issue 9); --compile would
    # replace the graph and took minutes to build at full size.
fi

log() { echo "default_model: $*" >&2; }
# Through the interpreter rather than the console scripts: on the GPU image their folder may not be on PATH.
p2c_prepare() { "$PY" -m p2c.training.commands.prepare "$@"; }
p2c_train() { "$PY" -m p2c.training.commands.train "$@"; }
p2c_eval() { "$PY" -m p2c.training.commands.evaluate "$@"; }
p2c_export() { "$PY" -m p2c.engine.export "$@"; }

ensure_installed() {
    # The GPU image has torch, numpy, OpenCV and safetensors but not p2c. Rather than pip (offline,
    # its setuptools version unknown), put the checkout's src/ on PYTHONPATH.
    if "$PY" -c "import p2c.training" 2>/dev/null; then
        return
    fi
    export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
    "$PY" -c "import p2c.training.trainer" || { log "cannot import p2c on this machine"; exit 1; }
}

prepare() {
    # p2c-prepare-data needs MediaPipe: only here, never on the GPU machine.
    if [[ -d $DATA/trainA && -d $DATA/testB ]]; then
        log "crops already in $DATA"
        return
    fi
    p2c_prepare "$RAW/trainA" "$DATA" --domain A --split-test "$SPLIT_TEST" --seed 0 --no-progress
    p2c_prepare "$RAW/trainB" "$DATA" --domain B --no-progress
    # photo2cartoon's own testB: all of it is test data; prepared aside, then moved in.
    local aside
    aside=$(mktemp -d)
    p2c_prepare "$RAW/testB" "$aside/out" --domain B --split-test 1000 --no-progress 2>/dev/null
    mv "$aside"/out/testB/* "$DATA/testB/"
    mv "$aside/out/manifest_B.json" "$DATA/manifest_testB.json"
    rm -rf "$aside"
}

pack() {
    prepare
    "$PY" recipes/pack_carry.py "$DATA" "$CARRY"
    du -sb "$CARRY" | awk '{printf "default_model: carry folder %.1f MB (limit 64 MiB with the repo)\n", $1/1e6}' >&2
}

slice() {
    local batch=${1:-${P2C_BATCH:-8}}
    ensure_installed
    local start=()
    if "$PY" - "$RUN" "$STATE" <<'EOF'
import sys
from pathlib import Path
from p2c.training.checkpoint import latest_checkpoint, read_checkpoint
run, state = Path(sys.argv[1]), Path(sys.argv[2])
latest = latest_checkpoint(run / "checkpoints")
if latest is None:
    sys.exit(1)
if state.is_file():
    import torch
    saved = torch.load(state, map_location="cpu", weights_only=True)["step"]
    sys.exit(0 if read_checkpoint(latest)["step"] >= saved else 1)
EOF
    then
        start=(--resume)                       # a warm machine: the exact full checkpoint
    elif [[ -f $STATE ]]; then
        start=(--resume-from "$STATE")         # a fresh machine: the travelled slice state
    fi
    if [[ -n ${P2C_STOP_AFTER:-} ]]; then
        start+=(--stop-after "$P2C_STOP_AFTER")
    fi
    log "slice of $SLICE_MINUTES min, batch $batch, start: ${start[*]:-from scratch}"
    p2c_train --data "$CARRY/data" --out "$RUN" --iterations "$ITERATIONS" --batch-size "$batch" \
        "${SIZE[@]}" "${SAVE[@]}" "${start[@]}" \
        --faceid-weight "$FACEID_WEIGHT" --faceid-weights "$CARRY/faceid/dlib_fp16.safetensors" \
        --time-limit "$SLICE_MINUTES" --slice-state "$STATE" --slice-generators fp16
    p2c_eval --checkpoints "$RUN" --photos "$CARRY/data/testA" --cartoons "$CARRY/data/testB" \
        --faceid-weights "$CARRY/faceid/dlib_fp16.safetensors" --out "$RUN/eval" "${EVAL[@]}"
    if [[ -n ${OUT:-} ]]; then
        # Files come back at most 16 MiB each, 8 in all: the state in 15 MiB pieces (3 at full size).
        rm -f "$OUT"/slice.pt.part*
        split -b 15M -d "$STATE" "$OUT/slice.pt.part"
        local best
        best=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['best'])" "$RUN/eval/report.json")
        p2c_export "$best" "$OUT/best_genA2B.safetensors" --format safetensors >&2
        cp "$RUN/eval/report.json" "$OUT/eval_report.json"
        cp "$RUN/metrics.csv" "$OUT/metrics.csv"
    fi
}

unpack() {
    local returned=${1:?usage: default_model.sh unpack DIR (the files the slice left in \$OUT)}
    mkdir -p "$CARRY/state"
    cat "$returned"/slice.pt.part* > "$STATE.tmp"
    mv "$STATE.tmp" "$STATE"
    "$PY" -c "
import sys
from pathlib import Path
from p2c.training.slice_state import read_slice_state
print('default_model: slice state at step', read_slice_state(Path(sys.argv[1]))['step'], file=sys.stderr)
" "$STATE"
}

ship() {
    local weights=${1:?usage: default_model.sh ship WEIGHTS (a .safetensors export or a checkpoint)}
    mkdir -p "$SHIP_DIR"
    local tmp
    tmp=$(mktemp -d)
    if [[ $weights == *.safetensors ]]; then
        cp "$weights" "$tmp/p2c_default.safetensors"
        cp "${weights%.safetensors}.json" "$tmp/p2c_default.json"
    else
        p2c_export "$weights" "$tmp/p2c_default.safetensors" --format safetensors >&2
    fi
    local size
    size=$(stat -c %s "$tmp/p2c_default.safetensors")
    if ((size > 10000000)); then
        log "the export is $size bytes, over the 10 MB limit for the package; not shipped"
        exit 1
    fi
    mv "$tmp"/p2c_default.safetensors "$tmp"/p2c_default.json "$SHIP_DIR/"
    rm -rf "$tmp"
    log "shipped $weights as $SHIP_DIR/p2c_default.safetensors ($size bytes)"
    # The model card's figures: p2c-eval on the PNG crops (not the WebP copies), here.
    p2c_eval --weights "$SHIP_DIR/p2c_default.safetensors" --photos "$DATA/testA" --cartoons "$DATA/testB" \
        --out "${P2C_EVAL_OUT:-$RUN/ship_eval}" "${EVAL[@]/cuda/cpu}"
}

case ${1:-} in
    pack) pack ;;
    slice) slice "${2:-}" ;;
    unpack) unpack "${2:-}" ;;
    ship) ship "${2:-}" ;;
    all)
        # The dry run: two slices, the second as on a fresh machine (run folder gone, state unpacked
        # from the pieces the first left in $OUT), then ship the best export.
        OUT=${OUT:-$(mktemp -d)}
        export OUT
        pack
        P2C_STOP_AFTER=2 slice "${2:-1}"
        rm -rf "$RUN" "$STATE"
        unpack "$OUT"
        returned=$(mktemp -d)
        slice "${2:-1}"
        cp "$OUT"/best_genA2B.* "$returned/"
        ship "$returned/best_genA2B.safetensors"
        ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac
