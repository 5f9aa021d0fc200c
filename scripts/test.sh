#!/usr/bin/env bash
# The test command: installs what is missing, fetches the base model the real-model tests use,
# builds every target (the CLI tests run the built binary) and runs the whole XCTest suite, runs
# every README command on a scratch clone (scripts/readme-test.sh), then replays every fuzzing
# seed and crash reproducer and gives each fuzz target a short pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-model.sh
swift build --build-tests
swift test --skip-build --disable-swift-testing
bash scripts/readme-test.sh
FUZZ_SEED=1 bash scripts/fuzz.sh --regressions
FUZZ_SEED=1 bash scripts/fuzz.sh ci "${FUZZ_SECONDS:-10}"
