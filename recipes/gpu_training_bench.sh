#!/usr/bin/env bash
# Issue 9's GPU measurements in one command (about 2.5 minutes): the training benchmark at 256 px
# (batch 8, 16, 32; Face ID loss on) and 128 px, then the gpu-marked training tests.
#
#   here, once:   python recipes/pack_carry.py --faceid-only .p2c-carry   # the FP16 dlib copy, 11 MB
#   on the GPU:   OUT=... recipes/gpu_training_bench.sh                    # device tool: carry .p2c-carry
#   dry run:      P2C_TINY=1 OUT=/tmp/bench recipes/gpu_training_bench.sh  # any CPU, tiny sizes
#   short:        P2C_SHORT=1 OUT=... recipes/gpu_training_bench.sh        # <= 2 min, before training
#                 (recipes/default_model.sh gpu runs it so while issue 9's GPU figures are owed)
#
# The GPU machine has torch but no p2c install, MediaPipe or PyAV: p2c comes from src/ on PYTHONPATH,
# and nothing here imports MediaPipe or PyAV. Everything lands in $OUT: training_throughput.json/.md/.png
# (written after every case, so a run cut short keeps what it measured), pytest_gpu.log.
# P2C_CASES overrides the cases (VARIANT:SIZE:BATCH ...); P2C_FACEID the Face ID weights.
set -uo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
PY=${P2C_PYTHON:-python3}
OUT=${OUT:?set OUT to the folder the results go to}
FACEID=${P2C_FACEID:-$REPO/.p2c-carry/faceid/dlib_fp16.safetensors}
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"

log() { echo "gpu_training_bench: $*" >&2; }

if [[ ${P2C_TINY:-0} == 1 ]]; then
    read -r -a CASES <<<"${P2C_CASES:-reference:96:1 fast:96:1 fast:128:1}"
    BENCH=(--device cpu --ch 8 --warmup 1 --iterations 1 --threads 1 --note "dry run at a tiny size")
    BENCH_LIMIT=600
elif [[ ${P2C_SHORT:-0} == 1 ]]; then
    # The figures issue 9 asks for and the recipe plans with (batch, 128 px speed-up), fewer steps each.
    read -r -a CASES <<<"${P2C_CASES:-reference:256:8 fast:256:8 fast:256:16 fast:256:32 fast:128:16 fast:128:32}"
    BENCH=(--device cuda --ch 32 --warmup 4 --iterations 5 --budget-s 5 --note "lent GPU, short run")
    BENCH_LIMIT=${P2C_BENCH_SECONDS:-80}
    TEST_LIMIT=30
else
    # reference:256:8 is today's step (the H100 profile's 8.4 samples/s); the issue's targets are
    # >= 60 samples/s at 256 px and >= 200 at 128 px. fast-nchw and fast-checkpoint answer whether
    # channels-last pays and what checkpointing costs; add compile:256:16 to time torch.compile.
    read -r -a CASES <<<"${P2C_CASES:-reference:256:8 fast:256:8 fast:256:16 fast:256:32 fast-nchw:256:32 fast-checkpoint:256:32 fast:128:32}"
    BENCH=(--device cuda --ch 32 --warmup 4 --iterations 6 --budget-s 8 --note "lent GPU")
    BENCH_LIMIT=${P2C_BENCH_SECONDS:-110}
fi
FACEID_ARGS=(--faceid none)
if [[ -f $FACEID ]]; then
    FACEID_ARGS=(--faceid "$FACEID")
else
    log "no $FACEID: the Face ID loss is off (make it with: python recipes/pack_carry.py --faceid-only .p2c-carry)"
fi

"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >&2
log "benchmark: ${CASES[*]}"
timeout "$BENCH_LIMIT" "$PY" benchmarks/training_throughput.py --out "$OUT" --cases "${CASES[@]}" \
    "${BENCH[@]}" "${FACEID_ARGS[@]}" 2> >(tee "$OUT/benchmark.log" >&2)
bench_status=$?
if [[ ! -f $OUT/training_throughput.png && -f $OUT/training_throughput.json ]]; then
    log "the benchmark stopped early ($bench_status): plotting the cases it finished"
    "$PY" - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
import training_throughput as bench

out = Path(sys.argv[1])
bench.plot(json.loads((out / "training_throughput.json").read_text()), out / "training_throughput.png")
EOF
fi

log "gpu-marked training tests"
timeout "${P2C_TEST_SECONDS:-${TEST_LIMIT:-60}}" "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/training/test_step.py 2>&1 | tee "$OUT/pytest_gpu.log"
test_status=${PIPESTATUS[0]}
log "benchmark exit $bench_status, tests exit $test_status; results in $OUT"
exit $((bench_status != 0 || test_status != 0))
