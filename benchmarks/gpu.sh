#!/usr/bin/env bash
# Full-scale side-by-side benchmark on one CUDA GPU: perceiverkit against Transformers on identical weights,
# published architectures and batch sizes (MLM training step 64×2048 bytes with AdamW, MLM inference 64×2048,
# vision ×3 at 64×224², flow 8 pairs of 368×496 and 1 pair of 436×1024 in 6 tiles, multimodal 4 clips),
# bf16 autocast for both, ours under torch.compile (Transformers runs eagerly, as it ships).
# Prints the compact table at the end; $OUT_DIR/bench.{json,md} hold everything (written after each workload).
#
#   bash benchmarks/gpu.sh                       # everything, results in $OUT (device session) or runs/bench-gpu
#   PART=1 bash benchmarks/gpu.sh                # mlm-train mlm-infer vision-learned vision-fourier
#   PART=2 bash benchmarks/gpu.sh                # vision-conv flow-368x496 flow-436x1024 multimodal
#   WORKLOADS="mlm-train flow-436x1024" bash benchmarks/gpu.sh
#   COMPILE=0 bash benchmarks/gpu.sh             # ours eager too (about 3 minutes for everything)
#
# Expected runtime on one H100 (16 CPU cores) for everything: about 7-9 minutes, of which roughly 5-6 are
# torch.compile (30-90 s per workload, the MLM training step the longest), about 1 minute building and saving
# the Transformers models on the CPU, and 1-2 minutes of steps (1 check + 3 warm-up + 10 timed per side;
# Transformers' eager flow attention over 182,528 pixels is the slowest). If a command may run at most
# 10 minutes, run PART=1 and PART=2 as two commands (4-5 minutes each). The suite is stopped after
# BENCH_TIMEOUT seconds (default 540) and the table then shows the workloads that finished.
# Needs python3 with torch (CUDA) and transformers; perceiverkit is taken from this checkout's src/.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
OUT_DIR="${OUT:-runs/bench-gpu}"
case "${PART:-all}" in
  1) WORKLOADS="${WORKLOADS:-mlm-train mlm-infer vision-learned vision-fourier}"; OUT_DIR="$OUT_DIR/part1" ;;
  2) WORKLOADS="${WORKLOADS:-vision-conv flow-368x496 flow-436x1024 multimodal}"; OUT_DIR="$OUT_DIR/part2" ;;
  all) ;;
  *) echo "PART must be 1, 2 or all, got '$PART'" >&2; exit 2 ;;
esac
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
args=(--device cuda --dtype bf16 --scale full --out "$OUT_DIR")
[ "${COMPILE:-1}" = 1 ] && args+=(--compile)
# shellcheck disable=SC2206  # WORKLOADS is a space-separated list on purpose
[ -n "${WORKLOADS:-}" ] && args+=(--workloads $WORKLOADS)

start=$(date +%s)
timeout --signal=INT --kill-after=30 "${BENCH_TIMEOUT:-540}" "$PYTHON" benchmarks/run.py "${args[@]}" "$@" \
  2>"$OUT_DIR/bench.log"
status=$?
echo "bench exited with status $status after $(( $(date +%s) - start )) s (log: $OUT_DIR/bench.log)"
[ "$status" -ne 0 ] && tail -n 5 "$OUT_DIR/bench.log"
echo
"$PYTHON" benchmarks/run.py --summary "$OUT_DIR"
exit "$status"
