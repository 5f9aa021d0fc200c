#!/usr/bin/env bash
# Runs thoughtcrime-bench and the PyTorch + PEFT baseline back to back on the same machine, on
# identical training batches, and prints thoughtcrime's ratio to PyTorch for every case.
#
#   bash scripts/bench/compare.sh [--quick] [--steps N]
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
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=(--quick); STEPS=2 ;;
        --steps) STEPS=$2; shift ;;
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
swift build -c release --product thoughtcrime-bench
rm -rf "$OUT/batches"
.build/release/thoughtcrime-bench --model "$MODEL" --model-only --steps "$STEPS" "${QUICK[@]}" \
    --dump-batches "$OUT/batches" --json "$OUT/thoughtcrime.json"
"$PY" scripts/bench/pytorch_baseline.py --model "$MODEL" --batches "$OUT/batches" --json "$OUT/pytorch.json"
python3 scripts/bench/ratios.py "$OUT/thoughtcrime.json" "$OUT/pytorch.json" --json "$OUT/ratios.json"
rm -rf "$OUT/batches-qwen3"
.build/release/thoughtcrime-bench --qwen3-shaped "$OUT/qwen3-0.6b-random" --model-only --steps "$STEPS" "${QUICK[@]}" \
    --dump-batches "$OUT/batches-qwen3" --json "$OUT/thoughtcrime-qwen3.json"
"$PY" scripts/bench/pytorch_baseline.py --model "$OUT/qwen3-0.6b-random" --batches "$OUT/batches-qwen3" --cases random:4x128 \
    --skip-generation --json "$OUT/pytorch-qwen3.json"
python3 scripts/bench/ratios.py "$OUT/thoughtcrime-qwen3.json" "$OUT/pytorch-qwen3.json" --json "$OUT/ratios-qwen3.json"
