#!/usr/bin/env python3
"""Writes the ModelFormats dequantisation fixtures into Tests/ModelFormatsTests/Fixtures/.

  quant_fixtures.json      a GGUF file written by gguf-py (one small tensor of each supported
                           ggml type, two rows, random block contents whose f16 scales are kept
                           in a sane range, plus metadata of every scalar type and two arrays;
                           alignment 64), described as text: metadata keys in file order with
                           their GGUF type ids and values as gguf-py's reader sees them, each
                           tensor's ne, ggml type and raw bytes (hex), and the size and CRC-32
                           of gguf-py's file. The tests rebuild the file from this with the
                           project's GGUFWriter and check it is byte-identical (same size and
                           CRC-32) before reading it, so no binary model file is committed.
  quant_expected.bin       float32 little-endian: each tensor of quant_fixtures.gguf
                           dequantised by gguf-py (gguf.quants.dequantize), concatenated.
  quant_expected.json      for each tensor: name, ggml type, ne (innermost first), and
                           offset/count of its values in quant_expected.bin.
  smollm2_expected.json    from checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf (only when
                           present): the first 64 dequantised values of row 0 and of the last
                           row of a few named tensors.

Run from anywhere with the reference venv:
    /work/main/.venv-ref/bin/python scripts/reference/make_quant_fixtures.py
Deterministic (fixed seed), so re-running reproduces the committed files.
"""
import importlib.metadata
import json
import pathlib
import tempfile
import zlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "ModelFormatsTests" / "Fixtures"
MODEL = ROOT / "checkpoints" / "base" / "SmolLM2-135M-Instruct.Q4_1.gguf"

rng = np.random.default_rng(20240601)


def f16_bytes(values):
    return np.atleast_1d(np.asarray(values, dtype=np.float16)).view(np.uint8)


def random_blocks(qtype, n_blocks):
    """Random bytes for n_blocks blocks of qtype, with every f16 scale replaced by a sane value
    (random bytes would often make inf/NaN scales, which test nothing useful)."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for b in range(n_blocks):
        if qtype in (Q.Q8_0, Q.Q4_0):
            blocks[b, 0:2] = f16_bytes(rng.uniform(0.001, 0.05) * rng.choice([-1, 1]))
        elif qtype == Q.Q4_1:
            blocks[b, 0:2] = f16_bytes(rng.uniform(0.001, 0.05))
            blocks[b, 2:4] = f16_bytes(rng.uniform(-0.4, 0.0))
        elif qtype in (Q.Q4_K, Q.Q5_K):
            blocks[b, 0:2] = f16_bytes(rng.uniform(0.0005, 0.01))   # d
            blocks[b, 2:4] = f16_bytes(rng.uniform(0.0005, 0.01))   # dmin
        elif qtype == Q.Q6_K:
            blocks[b, 208:210] = f16_bytes(rng.uniform(0.0005, 0.01))  # d is last
    return blocks


def make_tensor_bytes(qtype, rows, row_len):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype == Q.F32:
        return rng.standard_normal((rows, row_len)).astype(np.float32).view(np.uint8)
    if qtype == Q.F16:
        return rng.standard_normal((rows, row_len)).astype(np.float16).view(np.uint8)
    if qtype == Q.BF16:
        values = rng.standard_normal((rows, row_len)).astype(np.float32)
        return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    blocks = random_blocks(qtype, rows * row_len // block_size)
    return blocks.reshape(rows, -1)


def make_synthetic_fixtures():
    gguf_path = pathlib.Path(tempfile.mkdtemp()) / "quant_fixtures.gguf"
    writer = gguf.GGUFWriter(str(gguf_path), arch="fixture")
    writer.add_custom_alignment(64)
    writer.add_uint8("fixture.u8", 200)
    writer.add_int8("fixture.i8", -100)
    writer.add_uint16("fixture.u16", 60000)
    writer.add_int16("fixture.i16", -30000)
    writer.add_uint32("fixture.u32", 4000000000)
    writer.add_int32("fixture.i32", -2000000000)
    writer.add_uint64("fixture.u64", 1 << 40)
    writer.add_int64("fixture.i64", -(1 << 40))
    writer.add_float32("fixture.f32", 0.25)
    writer.add_float64("fixture.f64", -1.5e-300)
    writer.add_bool("fixture.bool", True)
    writer.add_string("fixture.string", "héllo ✓")
    writer.add_array("fixture.strings", ["a", "", "ünïcode"])
    writer.add_array("fixture.ints", [1, -2, 3])

    index = []
    expected = []
    offset = 0
    layout = [  # (name, type, elements per row); two rows each
        ("t.f32", Q.F32, 32), ("t.f16", Q.F16, 32), ("t.bf16", Q.BF16, 32),
        ("t.q8_0", Q.Q8_0, 64), ("t.q4_0", Q.Q4_0, 64), ("t.q4_1", Q.Q4_1, 64),
        ("t.q4_k", Q.Q4_K, 256), ("t.q5_k", Q.Q5_K, 256), ("t.q6_k", Q.Q6_K, 256),
    ]
    for name, qtype, row_len in layout:
        rows = 2
        raw = np.ascontiguousarray(make_tensor_bytes(qtype, rows, row_len)).reshape(rows, -1)
        values = dequantize(raw, qtype).astype(np.float32).reshape(-1)
        assert values.size == rows * row_len and np.all(np.isfinite(values)), name
        writer.add_tensor(name, raw, raw_dtype=qtype)
        index.append({"name": name, "type": qtype.name, "ggml_type": int(qtype),
                      "ne": [row_len, rows], "offset": offset, "count": int(values.size)})
        expected.append(values)
        offset += values.size
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    describe_gguf(gguf_path, FIXTURES / "quant_fixtures.json")
    np.concatenate(expected).astype("<f4").tofile(FIXTURES / "quant_expected.bin")
    (FIXTURES / "quant_expected.json").write_text(json.dumps({"tensors": index}, indent=1) + "\n")


def json_value(field, value_type, value):
    if value_type == gguf.GGUFValueType.BOOL:
        return bool(value)
    if value_type in (gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.FLOAT64):
        return float(value)
    if value_type == gguf.GGUFValueType.STRING:
        return str(value)
    return int(value)


def describe_gguf(path, out):
    """Text description of a gguf-py file, complete enough to rebuild it byte for byte."""
    data = path.read_bytes()
    reader = gguf.GGUFReader(str(path))
    metadata = []
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):
            continue  # header fields (version, counts), not key/value pairs
        entry = {"key": field.name, "type": int(field.types[0])}
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            entry["element_type"] = int(field.types[1])
            entry["value"] = [json_value(field, field.types[1], v) for v in field.contents()]
        else:
            entry["value"] = json_value(field, field.types[0], field.contents())
        metadata.append(entry)
    tensors = [{"name": t.name, "ggml_type": int(t.tensor_type), "ne": [int(x) for x in t.shape],
                "hex": bytes(t.data.view(np.uint8).reshape(-1)).hex()} for t in reader.tensors]
    out.write_text(json.dumps({
        "written_by": f"gguf-py GGUFWriter (gguf {importlib.metadata.version('gguf')})",
        "version": 3, "alignment": 64, "size": len(data), "crc32": zlib.crc32(data),
        "metadata": metadata, "tensors": tensors}, indent=1, ensure_ascii=False) + "\n")


def make_real_model_fixture():
    if not MODEL.exists():
        print(f"skipping real-model fixture: {MODEL} missing (run scripts/fetch-model.sh)")
        return
    reader = gguf.GGUFReader(str(MODEL))
    wanted = ["blk.0.attn_q.weight", "token_embd.weight", "blk.0.attn_norm.weight",
              "blk.0.ffn_down.weight", "output_norm.weight"]
    out = []
    for tensor in reader.tensors:
        if tensor.name not in wanted:
            continue
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        values = values.reshape(-1, int(tensor.shape[0]))  # rows of ne0 elements
        out.append({"name": tensor.name, "type": tensor.tensor_type.name,
                    "ne": [int(x) for x in tensor.shape],
                    "row0_first64": [float(x) for x in values[0, :64]],
                    "last_row_index": int(values.shape[0] - 1),
                    "last_row_first64": [float(x) for x in values[-1, :64]]})
    assert len(out) == len(wanted), [o["name"] for o in out]
    (FIXTURES / "smollm2_expected.json").write_text(json.dumps({"model": MODEL.name, "tensors": out}) + "\n")


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    make_synthetic_fixtures()
    make_real_model_fixture()
    for f in sorted(FIXTURES.iterdir()):
        print(f"{f.stat().st_size:8d}  {f.name}")
