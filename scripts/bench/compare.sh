#!/usr/bin/env bash
# Runs thoughtcrime-bench and the PyTorch + PEFT baseline back to back on the same machine, on
# identical training batches, and prints thoughtcrime's ratio to PyTorch for every case.
#
#   bash scripts/bench/compare.sh [--quick] [--steps N] [--torch-precisions fp32]
#
# THOUGHTCRIME_BENCH_BINARY names a thoughtcrime-bench built elsewhere (an earlier commit's, for
# before/after figures in one session); then nothing is built.
#
# --torch-precisions limits the baseline to fp32 on CPUs without AVX512_BF16, where torch's bf16
# autocast falls back to kernels so slow that one case ran for minutes without finishing (on a
# Zen 3, random:4x128 bf16 was stopped after 4.5 CPU-minutes; fp32 takes 4 s per step).
#
# The baseline's virtualenv is .venv-bench/ (created on first use; PyPI's torch wheel is large)
# unless THOUGHTCRIME_BENCH_PYTHON names a Python that already has torch, transformers, peft and
# gguf. Results: bench-results/thoughtcrime.json, bench-results/pytorch.json, bench-results/ratios.json,
# and for the Qwen3-0.6B-shaped case (random weights made by the bench, saved to
# bench-results/qwen3-0.6b-random for the baseline) the same three files with -qwen3.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${THOUGHTCRIME_BENCH_MODEL:-checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=bench-results
STEPS=4
QUICK=()
PRECISIONS=fp32,bf16
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=(--quick); STEPS=2 ;;
        --steps) STEPS=$2; shift ;;
        --torch-precisions) PRECISIONS=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -f "$MODEL" ] || bash scripts/fetch-model.sh
PY=${THOUGHTCRIME_BENCH_PYTHON:-}
if [ -z "$PY" ]; then
    if [ ! -x .venv-bench/bin/python ]; then
        python3 -m venv .venv-bench
        .venv-bench/bin/pip install --quiet torch transformers peft gguf
    fi
    PY=.venv-bench/bin/python
fi
mkdir -p "$OUT"
BENCH=${THOUGHTCRIME_BENCH_BINARY:-}
if [ -z "$BENCH" ]; then
    swift build -c release --product thoughtcrime-bench
    BENCH=.build/release/thoughtcrime-bench
fi
rm -rf "$OUT/batches"
"$BENCH" --model "$MODEL" --model-only --steps "$STEPS" "${QUICK[@]}" \
    --dump-batches "$OUT/batches" --json "$OUT/thoughtcrime.json"
"$PY" scripts/bench/pytorch_baseline.py --model "$MODEL" --batches "$OUT/batches" --precisions "$PRECISIONS" \
    --json "$OUT/pytorch.json"
python3 scripts/bench/ratios.py "$OUT/thoughtcrime.json" "$OUT/pytorch.json" --json "$OUT/ratios.json"
rm -rf "$OUT/batches-qwen3"
"$BENCH" --qwen3-shaped "$OUT/qwen3-0.6b-random" --model-only --steps "$STEPS" "${QUICK[@]}" \
    --dump-batches "$OUT/batches-qwen3" --json "$OUT/thoughtcrime-qwen3.json"
"$PY" scripts/bench/pytorch_baseline.py --model "$OUT/qwen3-0.6b-random" --batches "$OUT/batches-qwen3" --cases random:4x128 \
    --precisions "$PRECISIONS" --skip-generation --json "$OUT/pytorch-qwen3.json"
python3 scripts/bench/ratios.py "$OUT/thoughtcrime-qwen3.json" "$OUT/pytorch-qwen3.json" --json "$OUT/ratios-qwen3.json"
