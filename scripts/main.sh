#!/usr/bin/env bash
# The main job: installs what is missing, builds in release and runs the toolkit.
# Until finetuning lands this runs the machine check: CPU features, OpenBLAS kernels in use,
# a verification of sgemm against a reference, and the HDF5 version.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
.build/release/thoughtcrime doctor
