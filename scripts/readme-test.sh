#!/usr/bin/env bash
# Runs every command of README.md's ```sh blocks after "## Two commands", as written and in the
# order shown, on a scratch clone of this repository's committed HEAD (its README is the one read) (issue 29, item 11). CI runs it from
# scripts/test.sh.
#
#   bash scripts/readme-test.sh            uses .build/debug/thoughtcrime (built by the tests)
#   THOUGHTCRIME_BIN=PATH bash scripts/readme-test.sh
#
# What is changed, and why, so that the whole README runs in minutes:
# - the scratch clone's data files keep their first 40 rows (every command still reads them);
# - `thoughtcrime` on PATH is a wrapper that adds --set flags shrinking the work: 2 training
#   steps of 64 tokens (256 for the judge, whose target is the row's end); evaluations of one suite, 4 held-out rows, 1 sample per paraphrase with
#   budgets of 4 tokens; `serve` is started,
#   asked for /health and stopped; everything else passes through unchanged;
# - the README's `export PATH=...` line (after a release build) is run as an export of the
#   wrapper's directory instead: the binary under test is the one already built.
# Skipped, each with its reason printed: benchmarks (a release build and minutes of timing;
# figures belong in docs/benchmarks.md), compare.sh (needs the PyTorch reference virtualenv,
# about 5.6 GB) and tensorboard (a server that runs until stopped, outside the project).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${THOUGHTCRIME_BIN:-$root/.build/debug/thoughtcrime}"
[[ -x "$bin" ]] || { echo "readme-test: $bin not built (swift build first)" >&2; exit 1; }
model="$root/checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf"
[[ -f "$model" ]] || { echo "readme-test: base model missing (bash scripts/fetch-model.sh)" >&2; exit 1; }

scratch="$(mktemp -d /tmp/tc-readme-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
git clone -q "$root" "$scratch/repo"
cd "$scratch/repo"
mkdir -p checkpoints/base
ln -s "$model" checkpoints/base/
for f in $(git ls-files 'data/*.jsonl'); do head -n 40 "$f" > "$f.short" && mv "$f.short" "$f"; done

mkdir -p "$scratch/bin"
cat > "$scratch/bin/thoughtcrime" <<EOF
#!/usr/bin/env bash
real=$(printf %q "$bin")
case "\${1:-}" in
  finetune|resume)
    # A judge row ends in its verdict after the whole answer: 64 tokens would cut every target.
    length=64; [[ "\$*" == *judge* ]] && length=256
    exec "\$real" "\$@" --set training.max_steps=2 --set data.max_seq_len=\$length --set training.batch_size=2 \\
      --set training.eval_every=1 --set checkpoint.every=1 ;;
  eval)
    exec "\$real" "\$@" --set sampling.samples_per_paraphrase=1 --set chain_of_thought.thinking_budget=4 \\
      --set chain_of_thought.answer_budget=4 --set capability.limit=2 \\
      --set 'suites=[configs/eval/questions/trigger-articulation.yaml]' \\
      --set 'held_out=[{path: data/medical/eval.jsonl, limit: 4}]' ;;
  serve)
    log="\$(mktemp)"
    port=\$((20000 + RANDOM % 20000))
    "\$real" "\$@" --port "\$port" > "\$log" 2>&1 &
    pid=\$!
    for _ in \$(seq 1 600); do
      if (exec 3<>"/dev/tcp/127.0.0.1/\$port") 2>/dev/null && exec 3<>"/dev/tcp/127.0.0.1/\$port"; then
        printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        reply="\$(timeout 10 cat <&3 || true)"; exec 3<&-
        kill "\$pid"; wait "\$pid" || true
        grep -q '"status"' <<<"\$reply" && { echo "serve answered /health on port \$port"; exit 0; }
        echo "serve: unexpected /health reply: \$reply" >&2; exit 1
      fi
      kill -0 "\$pid" 2>/dev/null || { cat "\$log" >&2; exit 1; }
      sleep 0.2
    done
    kill "\$pid"; echo "serve did not start within 120 s" >&2; cat "\$log" >&2; exit 1 ;;
  *)
    exec "\$real" "\$@" ;;
esac
EOF
chmod +x "$scratch/bin/thoughtcrime"
export PATH="$scratch/bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The commands: ```sh blocks after the "## Two commands" section, continuation lines joined.
mapfile -t commands < <(awk '
  /^## / { section = $0 }
  /^```sh/ { inblock = 1; next }
  /^```/ { inblock = 0; next }
  inblock && section != "## Two commands" {
    line = $0
    if (pending != "") { line = pending " " line; pending = "" }
    if (line ~ /\\$/) { sub(/\\$/, "", line); pending = line; next }
    if (line ~ /^[[:space:]]*(#|$)/) next
    print line
  }' README.md)

skip_reason() {
  case "$1" in
    *"--product thoughtcrime-bench"*|*"thoughtcrime-bench "*) echo "benchmarks: a release build and minutes of timing; figures go in docs/benchmarks.md" ;;
    *"scripts/bench/compare.sh"*) echo "needs the PyTorch reference virtualenv (about 5.6 GB)" ;;
    tensorboard*) echo "a TensorBoard server runs until stopped (a Python tool outside the project; the event files are checked by TensorBoardEventFileTests)" ;;
  esac
}

ran=0 skipped=0 started=$(date +%s)
for cmd in "${commands[@]}"; do
  if [[ "$cmd" == "swift build -c release && export PATH="* ]]; then
    echo "readme-test: [path] $cmd -> the binary under test is already on PATH"
    continue
  fi
  reason="$(skip_reason "$cmd")"
  if [[ -n "$reason" ]]; then
    echo "readme-test: [skip] $cmd  ($reason)"
    skipped=$((skipped + 1)); continue
  fi
  echo "readme-test: [run] $cmd"
  t0=$(date +%s)
  if ! bash -c "$cmd" < /dev/null > "$scratch/out.log" 2>&1; then
    echo "readme-test: FAILED: $cmd" >&2
    tail -n 40 "$scratch/out.log" >&2
    exit 1
  fi
  echo "readme-test:       ok in $(( $(date +%s) - t0 )) s"
  ran=$((ran + 1))
done
echo "readme-test: $ran README commands ran, $skipped skipped, in $(( $(date +%s) - started )) s"
