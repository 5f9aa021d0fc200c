#!/usr/bin/env bash
# The test command: installs what is missing, fetches the base model the real-model tests use,
# builds every target (the CLI tests run the built binary) and runs the whole XCTest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-model.sh
swift build --build-tests
swift test --skip-build --disable-swift-testing
