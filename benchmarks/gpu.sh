#!/usr/bin/env bash
# Full-scale side-by-side benchmark on one CUDA GPU: perceiverkit against Transformers on identical weights,
# published architectures and batch sizes, written for a short lease (one command, a time limit per phase).
#
# Phases, each a separate `benchmarks/run.py` with its own time limit (a phase that runs out keeps the
# workloads it finished; every phase writes $OUT_DIR/<phase>/bench.json after each workload):
#   targets     bf16 autocast both sides, ours compiled: mlm-train (64×2048, AdamW), vision-learned (64×224²)
#   flow-fp16   ours fp16 autocast + compiled against Transformers' fp32 path: flow-368x496 (8 pairs)
#   suite       bf16 both, ours eager: mlm-infer vision-fourier vision-conv flow-436x1024 multimodal
#   flow-bf16   ours bf16 autocast + compiled against Transformers' fp32 path: flow-368x496
#   graphs      bf16 both, ours compiled with mode reduce-overhead (CUDA graphs): mlm-infer vision-learned
#               vision-conv multimodal (static shapes; not yet run on a GPU)
#   bf16-weights ours with bf16 weights (no autocast: half precision end to end), compiled, against
#               Transformers' bf16 autocast: vision-learned mlm-infer (not yet run on a GPU)
#   budget      as targets, mlm-train only, with activation memory budget 0.8 (recompute LayerNorms, casts and
#               residual sums in the backward pass; not yet run on a GPU)
#   latents     as targets, ours with --half-precision-latents (the self-attention stack's residual stream in
#               bf16; LayerNorm statistics still fp32): mlm-train vision-learned
#   latents-budget  latents and budget together: mlm-train
#   attention-explicit  as latents, mlm-train only, with our attention computed explicitly
#               (matmul-softmax-matmul) instead of by SDPA (the language model's heads are 32 wide for keys,
#               160 for values; docs/benchmarks.md has what SDPA's backward achieved there)
#   autotune    as latents, mlm-train only, compiled with mode max-autotune-no-cudagraphs: Inductor benchmarks
#               Triton matmul templates against cuBLAS and can fuse bias, GELU and residual sums into a matmul's
#               epilogue (the elementwise kernels were 24 % of the step); compiling takes minutes (not yet run)
# Transformers always runs eagerly, as it ships. The compact tables of all phases are printed at the end;
# `python benchmarks/run.py --summary DIR` prints one again, and `perceiverkit bench` options can be
# appended to every phase (e.g. `bash benchmarks/gpu.sh --steps 20`).
#
#   bash benchmarks/gpu.sh                      # every phase; results in $OUT (device session) or runs/bench-gpu
#   PHASES="targets flow-fp16" bash benchmarks/gpu.sh
#   SECONDS_SCALE=2 bash benchmarks/gpu.sh      # double every phase's time limit (a slower card)
#
# Needs python3 with torch (CUDA) and transformers; perceiverkit is taken from this checkout's src/.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
OUT_DIR="${OUT:-runs/bench-gpu}"
LOG_DIR="${LOG_DIR:-/tmp/perceiverkit-bench-logs}"  # logs stay out of $OUT (a lease returns few files)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR" "$LOG_DIR"

declare -A LIMIT=([targets]=170 [flow-fp16]=110 [suite]=130 [flow-bf16]=70 [graphs]=150 [bf16-weights]=110 [budget]=120
                  [latents]=150 [latents-budget]=90 [attention-explicit]=90
                  [autotune]=300)
declare -A ARGS=(
  [targets]="--dtype bf16 --compile --workloads mlm-train vision-learned"
  [flow-fp16]="--dtype fp16 --reference-dtype fp32 --compile --workloads flow-368x496"
  [suite]="--dtype bf16 --workloads mlm-infer vision-fourier vision-conv flow-436x1024 multimodal"
  [flow-bf16]="--dtype bf16 --reference-dtype fp32 --compile --workloads flow-368x496"
  [graphs]="--dtype bf16 --compile-mode reduce-overhead --workloads mlm-infer vision-learned vision-conv multimodal"
  [bf16-weights]="--dtype bf16 --cast-weights --compile --workloads vision-learned mlm-infer"
  [budget]="--dtype bf16 --compile --memory-budget 0.8 --workloads mlm-train"
  [latents]="--dtype bf16 --compile --half-precision-latents --workloads mlm-train vision-learned"
  [latents-budget]="--dtype bf16 --compile --half-precision-latents --memory-budget 0.8 --workloads mlm-train"
  [attention-explicit]="--dtype bf16 --compile --half-precision-latents --attention-kernel explicit --workloads mlm-train"
  [autotune]="--dtype bf16 --compile-mode max-autotune-no-cudagraphs --half-precision-latents --workloads mlm-train"
)
PHASES="${PHASES:-targets flow-fp16 suite flow-bf16 graphs}"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader || true
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

failed=0
for phase in $PHASES; do
  if [ -z "${ARGS[$phase]:-}" ]; then
    echo "unknown phase '$phase' (known: ${!ARGS[*]})" >&2; exit 2
  fi
  limit=$(( ${LIMIT[$phase]} * ${SECONDS_SCALE:-1} ))
  start=$(date +%s)
  # shellcheck disable=SC2086  # ARGS holds space-separated options on purpose
  timeout --signal=INT --kill-after=20 "$limit" "$PYTHON" benchmarks/run.py --device cuda --scale full \
    ${ARGS[$phase]} --out "$OUT_DIR/$phase" "$@" >"$LOG_DIR/$phase.out" 2>"$LOG_DIR/$phase.log"
  status=$?
  echo "phase $phase: status $status after $(( $(date +%s) - start )) s (limit $limit s)"
  if [ "$status" -ne 0 ]; then
    failed=1
    grep -v "it/s\]\|s/it\]" "$LOG_DIR/$phase.log" | tail -n 4
  fi
  grep " failed: " "$LOG_DIR/$phase.log" | tail -n 4
done

echo
for phase in $PHASES; do
  [ -f "$OUT_DIR/$phase/bench.json" ] || { echo "$phase: no results"; continue; }
  echo "== $phase"
  "$PYTHON" benchmarks/run.py --summary "$OUT_DIR/$phase"
done
# A device lease returns at most 8 files: keep the JSON (bench.md is `perceiverkit.benchmark.to_markdown` of it).
[ -n "${OUT:-}" ] && rm -f "$OUT_DIR"/*/bench.md
exit "$failed"
