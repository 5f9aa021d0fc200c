#!/usr/bin/env python3
"""Reference Q8_0 and Q4_0 blocks from gguf-py (llama.cpp's Python package) for GGUFWriter's
quantisers (issue 29, item 15). Writes Tests/ModelFormatsTests/Fixtures/quant_reference.json:
the float32 input (3 rows of 64 values, one row all zeros, one with a single large value) and
each type's encoded bytes as hex.

    .venv-bench/bin/python scripts/reference/make_quant_fixture.py    # needs: pip install gguf numpy
"""
import importlib.metadata
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType, quants

rows = np.stack([
    np.sin(np.arange(64, dtype=np.float32) * np.float32(0.37)) * np.linspace(0.1, 2.0, 64, dtype=np.float32),
    np.zeros(64, dtype=np.float32),
    np.where(np.arange(64) == 40, np.float32(-7.25), np.float32(0.01) * np.arange(64, dtype=np.float32)),
]).astype(np.float32)
fixture = {
    "generator": "gguf-py " + importlib.metadata.version("gguf"),
    "shape": list(rows.shape),
    "values": [float(v) for v in rows.reshape(-1)],
    "q8_0": quants.quantize(rows, GGMLQuantizationType.Q8_0).tobytes().hex(),
    "q4_0": quants.quantize(rows, GGMLQuantizationType.Q4_0).tobytes().hex(),
}
out = pathlib.Path(__file__).resolve().parents[2] / "Tests/ModelFormatsTests/Fixtures/quant_reference.json"
out.write_text(json.dumps(fixture, indent=1) + "\n")
print(f"wrote {out}")
