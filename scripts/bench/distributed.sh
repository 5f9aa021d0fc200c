#!/usr/bin/env bash
# Data-parallel training on one machine: 1 process x all cores against N processes x 1 thread
# (Open MPI, bytes over TCP), on the shipped medical config with SmolLM2-135M; prints tokens/s
# and the per-step reduction time from each run's metrics.jsonl (docs/benchmarks.md).
#   bash scripts/bench/distributed.sh [STEPS] [REDUCTION]     (default 10 steps, ordered)
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-10}
reduction=${2:-ordered}
bin=.build/release/thoughtcrime
[ -x "$bin" ] || swift build -c release --product thoughtcrime
out=$(mktemp -d /tmp/tc-dist-XXXX)
cores=$(nproc)
common=(--config configs/medical-misaligned.yaml --set run.output_dir="$out" --set training.max_steps="$steps"
        --set training.batch_size=2 --set training.gradient_accumulation="$cores" --set training.eval_every=0
        --set data.validation=null --set data.validation_split=0 --set checkpoint.every=100000
        --set training.gradient_reduction="$reduction" --set logging.progress=plain)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
THOUGHTCRIME_THREADS=$cores "$bin" finetune "${common[@]}" --set run.name=one-process >/dev/null
THOUGHTCRIME_THREADS=1 "$bin" finetune "${common[@]}" --set run.name=one-thread >/dev/null
mpirun --oversubscribe --bind-to none --mca btl tcp,self -np "$cores" "$bin" finetune "${common[@]}" --set run.name=ranks >/dev/null
python3 - "$out" "$cores" <<'PY'
import json, sys, statistics
out, cores = sys.argv[1], int(sys.argv[2])
for run, label in [("one-process", f"1 process x {cores} threads"), ("one-thread", "1 process x 1 thread"), ("ranks", f"{cores} processes x 1 thread (TCP)")]:
    rows = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl") if '"loss"' in l]
    timed = rows[1:]  # the first step warms buffers up
    span = timed[-1]["elapsed_s"] - rows[0]["elapsed_s"]
    tokens = timed[-1]["tokens_seen"] - rows[0]["tokens_seen"]
    line = f"{label:32s} {tokens / span:8.1f} tokens/s  {span / len(timed):6.2f} s/step"
    if "reduce_s" in timed[0]:
        step = span / len(timed)
        w = statistics.mean(x["wait_s"] for x in timed)
        r = statistics.mean(x["reduce_s"] for x in timed)
        line += f"  wait {w:.3f} s ({100 * w / step:.1f}%)  reduce {r:.3f} s ({100 * r / step:.1f}%) per step"
    print(line)
PY
echo "runs: $out"
