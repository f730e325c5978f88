#!/usr/bin/env bash
# Issue 24's pilots: candidates, each trained for the same CPU time from the same state, all at
# once (detached, nice 19), then scored alike (recipes/pilot_report.py).
#
#   recipes/pilot_drawing.sh start     # stop the long run, snapshot its state, start every arm
#   recipes/pilot_drawing.sh status    # each arm's step, samples and CPU-hours
#   recipes/pilot_drawing.sh stop      # SIGTERM every arm (each writes its state)
#
# Every arm is one process of one thread at 256 px, batch 4, `--cpu-hours $CPU_HOURS` of its own
# CPU time, and shows the photos in webcam and video light (--camera-light 0.5). P2C_PILOT_SET
# picks the arms; drawing (the default, 2026-12-07 morning: what draws):
#   control   the long run's recipe, with the camera light
#   parts     + discriminators on the eye and mouth windows (p2c.training.parts)
#   whitebox  + white-box surface and texture discriminators (p2c.training.whitebox)
#   loose     the contrastive loss on the three deeper encoder layers only (2,3,4)
#   all       parts + whitebox + loose
# colour (what keeps video light's clothes and cheeks their colour), from the long run's state:
#   control   the long run's recipe (parts)
#   colour10  + the foreign-colour loss (p2c.training.colour_loss), weight 10
#   colour30  the same, weight 30
#   blur      the long run's recipe, its stability loss on both cartoons blurred (--stability-blur 1.5):
#             does the stability loss keep the lines soft? (they are half as sharp as the cartoons')
# lines (what makes the lines as crisp as trainB's), from the long run's state:
#   control   the long run's recipe (parts, colour 30, Face ID 10)
#   shuffle   + the pixel-shuffle output stage (--head shuffle; the bilinear state converts exactly)
#   sharpen   + a learned unsharp mask on the output (--sharpen), starting at amount 0.5
# identity (what lets each photo pick out its own cartoon: rank-1), from the long run's state:
#   control   the long run's recipe (parts, colour 30, Face ID 10, sharpen)
#   faceid30  the Face ID loss at weight 30
#   contrast  + the contrastive identity loss (p2c.training.identity_contrast), weight 1
# width (issue 24's wider compact generator, within the live budget), from the long run's state:
#   control   the long run's recipe (parts, colour 30, Face ID 30, sharpen)
#   wide72    the same with 72 channels at 1/8 instead of 64 (--widths 16,32,72: 1.24 GFLOP); the
#             state is widened so that it starts as the control does (p2c.training.widen)
# docs/default-model.md has the tables and what was picked.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
PY=${P2C_PYTHON:-$REPO/.venv/bin/python}
DATA=${P2C_DATA:-/tmp/p2c-data}
SET=${P2C_PILOT_SET:-drawing}
PILOT=${P2C_PILOT:-$REPO/runs/pilot_$SET}
CPU_HOURS=${P2C_PILOT_CPU_HOURS:-0.75}
COMMON=(--img-size 256 --batch-size 4 --processes 1 --threads 1 --stability-weight 3 --camera-light 0.5
    --no-progress --sample-minutes 20)
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}

declare -A ARMS
case $SET in
    drawing)
        ARMS=(
            [control]=""
            [parts]="--parts-weight 1"
            [whitebox]="--surface-weight 1 --texture-weight 1"
            [loose]="--nce-layers 2,3,4"
            [all]="--parts-weight 1 --surface-weight 1 --texture-weight 1 --nce-layers 2,3,4"
        )
        ;;
    colour)
        ARMS=(
            [control]="--parts-weight 1"
            [colour10]="--parts-weight 1 --colour-weight 10"
            [colour30]="--parts-weight 1 --colour-weight 30"
            [blur]="--parts-weight 1 --stability-blur 1.5"
        )
        ;;
    lines)
        ARMS=(
            [control]="--parts-weight 1 --colour-weight 30 --faceid-weight 10"
            [shuffle]="--parts-weight 1 --colour-weight 30 --faceid-weight 10 --head shuffle"
            [sharpen]="--parts-weight 1 --colour-weight 30 --faceid-weight 10 --sharpen"
        )
        ;;
    identity)
        ARMS=(
            [control]="--parts-weight 1 --colour-weight 30 --faceid-weight 10 --sharpen"
            [faceid30]="--parts-weight 1 --colour-weight 30 --faceid-weight 30 --sharpen"
            [contrast]="--parts-weight 1 --colour-weight 30 --faceid-weight 10 --sharpen --identity-weight 1"
        )
        ;;
    width)
        ARMS=(
            [control]="--parts-weight 1 --colour-weight 30 --faceid-weight 30 --sharpen"
            [wide72]="--parts-weight 1 --colour-weight 30 --faceid-weight 30 --sharpen --widths 16,32,72"
        )
        ;;
    *)
        echo "pilot: no arm set '$SET' (drawing, colour, lines, identity, width)" >&2
        exit 2
        ;;
esac

start() {
    recipes/default_model.sh cpu-stop
    mkdir -p "$PILOT"
    if [[ ! -d $PILOT/base ]]; then
        cp -r recipes/state "$PILOT/base"  # the same state for every arm
    fi
    local arm
    for arm in "${!ARMS[@]}"; do
        if kill -0 "$(cat "$PILOT/$arm/train.pid" 2>/dev/null)" 2>/dev/null; then
            echo "pilot: $arm already running" >&2
            continue
        fi
        mkdir -p "$PILOT/$arm"
        # shellcheck disable=SC2086  # the arm's options are words
        setsid nohup nice -n 19 "$PY" -m p2c.training.commands.train_compact --data "$DATA" \
            --out "$PILOT/$arm" --init-from "$PILOT/base" --state-dir "$PILOT/$arm/state" \
            --cpu-hours "$CPU_HOURS" "${COMMON[@]}" ${ARMS[$arm]} >>"$PILOT/$arm/train.log" 2>&1 </dev/null &
        echo $! >"$PILOT/$arm/train.pid"
        echo "pilot: $arm started (pid $!): ${ARMS[$arm]:-as the long run}" >&2
    done
}

status() {
    local arm
    for arm in "${!ARMS[@]}"; do
        printf '%-9s ' "$arm"
        grep -E "samples/s|stopped" "$PILOT/$arm/train.log" 2>/dev/null | tail -n 1 || echo "no log"
    done
}

stop() {
    local arm pid
    for arm in "${!ARMS[@]}"; do
        pid=$(cat "$PILOT/$arm/train.pid" 2>/dev/null) || continue
        kill -TERM "$pid" 2>/dev/null || true
    done
}

case ${1:-} in
    start) start ;;
    status) status ;;
    stop) stop ;;
    *)
        sed -n '2,8p' "$0" >&2
        exit 2
        ;;
esac
