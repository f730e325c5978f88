#!/usr/bin/env bash
# The GPU engine's measurements and GPU tests in one command, for a session lent a GPU (issue 11).
#
#   bash recipes/gpu_engine_bench.sh                 # on the GPU machine, from the repository root
#   P2C_TINY=1 bash recipes/gpu_engine_bench.sh      # dry run here on the CPU at a tiny size
#
# The GPU machine has PYTHONPATH=src, numpy 2, torch 2.11, OpenCV, no MediaPipe and no PyAV, so the faces
# are recorded here beforehand and carried (git-ignored: they come from the shared clip):
#
#   python benchmarks/record_faces.py ../shared/media/talking_1280x720_30fps_audio.mp4 \
#       --out .p2c-carry/replay/talking720 --frames 150 --copy-clip        # 1.4 MB with the clip
#
# and the device tool's run names `.p2c-carry` in `carry`, with `bash recipes/gpu_engine_bench.sh`
# as the command. Steps, each under its own time limit so that one slow step cannot eat the others'
# (about 4 minutes in all on an H100 when the inductor build takes about 2):
#
#   1. random full-size weights (seed 0), made once and shared by the steps, so the inductor package
#      built in step 2 is the one steps 3 and 4 load from the cache ($P2C_CACHE_DIR);
#   2. generator throughput: inductor and torch at FP16, batch 1 / 8 / 64, numpy in/out and device
#      tensors, the reference path beside them, and each backend's later start in a fresh process;
#   3. the replay benchmark on the recording: 720p / 1080p x 1 / 4 faces, offline and live, inductor;
#   4. pytest -m gpu on tests/engine and the device-pipeline stream tests.
#
# Into $OUT (what the device tool brings back; out/gpu-engine elsewhere), 8 files at most:
# generator_throughput.{json,md}, pipeline_replay.{json,md}, pipeline_replay_3.jpg, pytest_gpu.txt,
# environment.txt, recipe.log.
set -uo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
PY=${P2C_PYTHON:-python3}
CARRY=${P2C_CARRY:-$REPO/.p2c-carry}
RECORDING=${P2C_RECORDING:-$CARRY/replay/talking720.json}
RESULTS=${OUT:-$REPO/out/gpu-engine}
WORK=$(mktemp -d)
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
export P2C_CACHE_DIR=${P2C_CACHE_DIR:-$WORK/cache}
mkdir -p "$RESULTS"
LOG=$RESULTS/recipe.log
: >"$LOG"

if [[ ${P2C_TINY:-0} == 1 ]]; then
    # Every step at a size a CPU runs in minutes; the figures mean nothing.
    DEVICE=cpu PRECISION=fp32 BATCHES=(1 2) FRAMES=4
    LIMITS=(1200 600 1200)  # the CPU compiles the tiny package in minutes (once: later steps load it)
else
    DEVICE=cuda PRECISION=fp16 BATCHES=(1 8 64) FRAMES=${P2C_FRAMES:-150}
    LIMITS=(240 120 150)    # seconds: throughput (with the build), replay, pytest; 8.5 minutes at worst
fi

step() {  # step NAME LIMIT COMMAND...: run with a time limit, log it, never stop the recipe
    local name=$1 limit=$2
    shift 2
    echo "== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$LOG"
    local started=$SECONDS
    timeout "$limit" "$@" >>"$LOG" 2>&1
    local status=$?
    echo "== $name: exit $status after $((SECONDS - started)) s" | tee -a "$LOG"
}

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
    "$PY" - <<'EOF'
import importlib.util, platform
import torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for name in ("numpy", "cv2", "onnx", "onnxruntime", "triton", "safetensors", "pytest", "skimage",
             "matplotlib", "mediapipe", "av"):
    spec = importlib.util.find_spec(name)
    version = getattr(__import__(name), "__version__", "?") if spec else None
    print(f"{name}: {version or 'not installed'}")
EOF
    command -v g++ || echo "no g++ (AOTInductor needs a C++ compiler)"
} >"$RESULTS/environment.txt" 2>&1

# 1. Weights shared by every step (the released .pt layout needs no safetensors), kept beside the cache:
#    torch.save is not byte-for-byte repeatable, and the cache key holds the weights' bytes.
mkdir -p "$P2C_CACHE_DIR"
WEIGHTS=$P2C_CACHE_DIR/random_full.pt
[[ -f $WEIGHTS ]] || "$PY" - "$WEIGHTS" "${P2C_TINY:-0}" <<'EOF' >>"$LOG" 2>&1
import sys
import torch
from p2c.models.generator import ResnetGenerator
torch.manual_seed(0)
tiny = sys.argv[2] == "1"
# A tiny *full* (not light) generator: its weights say its 64 px size, so no config file is needed.
generator = ResnetGenerator(ngf=8, img_size=64, light=False) if tiny else ResnetGenerator(ngf=32, img_size=256)
torch.save({"genA2B": generator.state_dict()}, sys.argv[1])
print("weights:", sys.argv[1], generator.config)
EOF

# 2. Generator throughput, inductor first: its setup_s is the first start (the build).
step throughput "${LIMITS[0]}" "$PY" benchmarks/generator_throughput.py --weights "$WEIGHTS" \
    --cases "inductor:$PRECISION" "torch:$PRECISION" --device "$DEVICE" --batch-sizes "${BATCHES[@]}" \
    --iterations 10 --warmup 2 --budget-s 10 --duel-batch 0 --cached-start --out "$WORK/throughput"
cp "$WORK"/throughput/generator_throughput.{json,md} "$RESULTS/" 2>/dev/null

# 3. The replay benchmark with the package step 2 left in the cache.
if [[ ${P2C_TINY:-0} == 1 && ! -f $RECORDING ]]; then
    RECORDING=$WORK/synthetic.json   # no carried recording here: a synthetic one, as the CI test makes
    "$PY" - "$WORK" <<'EOF' >>"$LOG" 2>&1
import sys
from pathlib import Path
import cv2, numpy as np
sys.path.insert(0, "benchmarks")
from record_faces import write_recording
work = Path(sys.argv[1])
clip = work / "synthetic.mp4"
writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
noise = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
for _ in range(6):
    writer.write(noise)
writer.release()
rows, cols = np.mgrid[0:256, 0:256]
disc = np.where((rows - 128) ** 2 + (cols - 128) ** 2 < 100**2, 255, 0).astype(np.uint8)
scale = 256 / 140
transform = np.array([[scale, 0, 127.5 - scale * 160], [0, scale, 127.5 - scale * 120]])
arrays = {"frame": np.arange(6, dtype=np.int32), "track_id": np.zeros(6, np.int32),
          "transform": np.stack([transform] * 6), "landmarks": np.zeros((6, 68, 2), np.float32),
          "mask": np.stack([disc] * 6)}
write_recording(work / "synthetic", clip, 25.0, (320, 240), [1] * 6, arrays)
EOF
fi
step replay "${LIMITS[1]}" "$PY" benchmarks/pipeline_replay.py "$RECORDING" --weights "$WEIGHTS" \
    --backend inductor --precision "$PRECISION" --device "$DEVICE" --frames "$FRAMES" --save-frames \
    --out "$WORK/replay"
# The 1080p four-face frame shows the cartoons land on the heads (never commit it: it shows the clip).
cp "$WORK"/replay/pipeline_replay.{json,md} "$WORK"/replay/pipeline_replay_3.jpg "$RESULTS/" 2>/dev/null

# 4. The GPU tests (in the dry run: the same files, every test run on the CPU, gpu ones skipped).
TESTS=(tests/engine tests/stream/test_device_pipeline.py)
"$PY" -c "import skimage" 2>/dev/null && TESTS+=(tests/stream/test_gpu_compositing.py)
MARK=(-m gpu)
[[ ${P2C_TINY:-0} == 1 ]] && MARK=(-m "gpu or not slow")
echo "== pytest ($(date +%T), limit ${LIMITS[2]}s): ${MARK[*]} ${TESTS[*]}" | tee -a "$LOG"
timeout "${LIMITS[2]}" "$PY" -m pytest -q -p no:cacheprovider "${MARK[@]}" "${TESTS[@]}" -rs \
    >"$RESULTS/pytest_gpu.txt" 2>&1
echo "== pytest: exit $? ($(tail -1 "$RESULTS/pytest_gpu.txt"))" | tee -a "$LOG"

rm -rf "$WORK"
echo "results in $RESULTS:" && ls "$RESULTS"
