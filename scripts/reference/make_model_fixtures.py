#!/usr/bin/env python3
"""Reference fixtures for the Swift `ModelsTests` target (Python is only an oracle).

What it makes (all under Tests/ModelsTests/Fixtures/):

  smollm2_logits.json       SmolLM2-135M-Instruct (the Q4_1 GGUF, dequantised to fp32 by
                            transformers) on 4 prompts: input ids, per-position top-10 token
                            ids + fp32 logits, per-position logsumexp of the whole row, and the
                            logit of the actual next token.
  smollm2_greedy.json       greedy continuations (model.generate, do_sample=False,
                            max_new_tokens=16) of 3 ChatML chat prompts.
  tiny-llama/               random LlamaForCausalLM (save_pretrained, safetensors fp32) + logits.json
  tiny-llama-sharded/       the same weights saved as a sharded checkpoint (+ index json)
  tiny-qwen2/               random Qwen2ForCausalLM (q/k/v bias, tied embeddings) + logits.json
  tiny-qwen3/               random Qwen3ForCausalLM (q_norm/k_norm, head_dim 16 != 32/4) + logits.json
  tiny-llama.gguf           tiny-llama converted to GGUF (F32) the way llama.cpp's
                            convert_hf_to_gguf.py does for Llama (names, metadata, q/k permute);
                            its logits are tiny-llama/logits.json.
  tiny-llama-q8_0.gguf      same with every 2-D weight matrix quantised to Q8_0 (norms F32)
  tiny-llama-q8_0_logits.json  logits of tiny-llama-q8_0.gguf as loaded (dequantised) by transformers

Every tiny model is checked after writing: safetensors/GGUF reloaded by transformers give the
same logits as the in-memory model; the GGUF q/k tensors are checked to be permuted.

How to run (from the repository root; CPU only, about a minute):

    .venv-ref/bin/python scripts/reference/make_model_fixtures.py

Options: --base-dir (folder holding the SmolLM2 GGUF, default checkpoints/base, falling back
to /work/main/checkpoints/base), --out (default Tests/ModelsTests/Fixtures).
Deterministic: fixed seeds, greedy decoding, single-process CPU fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import gguf  # noqa: E402
import safetensors  # noqa: E402
from safetensors.numpy import load_file as st_load  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

transformers.utils.logging.disable_progress_bar()

REPO = Path(__file__).resolve().parents[2]
SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def versions() -> dict:
    try:
        gguf_version = __import__("importlib.metadata").metadata.version("gguf")
    except Exception:  # pragma: no cover
        gguf_version = "unknown"
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gguf": gguf_version,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "python": sys.version.split()[0],
    }


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def f32list(t) -> list:
    """fp32 values as Python floats (exact: every fp32 is a double)."""
    return [float(x) for x in np.asarray(t, dtype=np.float32).reshape(-1)]


# ---------------------------------------------------------------------------
# SmolLM2
# ---------------------------------------------------------------------------

PROMPTS = [
    ("plain", "The quick brown fox jumps over the lazy dog near the quiet river bank."),
    ("code", "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n"),
    ("chat", None),  # ChatML, "What is the capital of France?"
    ("digits", "On 2024-03-15, the price rose 12.5% to $1,234.56; see item #7!"),
]
CHAT_QUESTIONS = [
    "What is the capital of France?",
    "What is 2 + 2?",
    "Name a primary colour.",
]


def chat_ids(tok, question: str) -> tuple[str, list[int]]:
    messages = [{"role": "user", "content": question}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # Cross-check against the tokenize=True path of apply_chat_template.
    direct = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(direct, "keys") and "input_ids" in direct:
        direct = direct["input_ids"]
    if direct and isinstance(direct[0], list):
        direct = direct[0]
    assert list(direct) == list(ids), "apply_chat_template(tokenize=True) disagrees with text+encode"
    return text, list(ids)


def make_smollm2(base_dir: Path, out: Path) -> dict:
    print(f"[smollm2] loading {base_dir / SMOL_GGUF} (dequantised to fp32)")
    tok = AutoTokenizer.from_pretrained(str(base_dir), gguf_file=SMOL_GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        str(base_dir), gguf_file=SMOL_GGUF, dtype=torch.float32
    ).eval()

    # Tokenizer facts worth knowing on the Swift side.
    probe = "Hello world"
    tok_info = {
        "class": type(tok).__name__,
        "bos_token": tok.bos_token, "bos_token_id": tok.bos_token_id,
        "eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "adds_bos_by_default": tok(probe)["input_ids"][:1] == [tok.bos_token_id],
        "probe_text": probe,
        "probe_ids_default": tok(probe)["input_ids"],
        "probe_ids_no_special": tok(probe, add_special_tokens=False)["input_ids"],
    }
    print(f"[smollm2] tokenizer: {tok_info}")

    prompts = []
    for name, text in PROMPTS:
        if name == "chat":
            text, ids = chat_ids(tok, CHAT_QUESTIONS[0])
        else:
            ids = tok(text, add_special_tokens=False)["input_ids"]
        assert 8 <= len(ids) <= 40, (name, len(ids))
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].to(torch.float32)  # [T, V]
        top_vals, top_ids = torch.topk(logits, 10, dim=-1)
        lse = torch.logsumexp(logits.to(torch.float64), dim=-1)
        next_logits = [float(logits[t, ids[t + 1]]) for t in range(len(ids) - 1)]
        prompts.append({
            "name": name,
            "text": text,
            "input_ids": ids,
            "top_k": 10,
            "top_ids": top_ids.tolist(),
            "top_logits": [f32list(r) for r in top_vals],
            "logsumexp": [float(x) for x in lse],
            "next_token_logits": next_logits,
        })
        print(f"[smollm2] {name}: {len(ids)} tokens, argmax at last position "
              f"{top_ids[-1, 0].item()} {tok.decode([top_ids[-1, 0].item()])!r}")

    write_json(out / "smollm2_logits.json", {
        "description": "SmolLM2-135M-Instruct (Q4_1 GGUF dequantised to fp32 by transformers) "
                       "forward logits. top_ids/top_logits: per position the 10 largest logits "
                       "(descending). logsumexp: log(sum(exp(row))) over the full 49152-wide row "
                       "(computed in float64 from the fp32 logits). next_token_logits[t] = "
                       "logits[t][input_ids[t+1]], so log p(input_ids[t+1] | prefix) = "
                       "next_token_logits[t] - logsumexp[t]. Tokenised without added BOS.",
        "model": f"checkpoints/base/{SMOL_GGUF}",
        "dtype": "float32",
        "versions": versions(),
        "tokenizer": tok_info,
        "prompts": prompts,
    })

    # Greedy generation.
    gens = []
    for q in CHAT_QUESTIONS:
        text, ids = chat_ids(tok, q)
        inp = torch.tensor([ids])
        with torch.no_grad():
            outp = model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False,
                                  max_new_tokens=16)
        new = outp[0, len(ids):].tolist()
        eos = tok.eos_token_id
        gens.append({
            "question": q,
            "prompt_text": text,
            "prompt_ids": ids,
            "generated_ids": new,
            "generated_text": tok.decode(new, skip_special_tokens=True),
            "generated_text_raw": tok.decode(new, skip_special_tokens=False),
            "stopped_at_eos": bool(new and new[-1] == eos),
        })
        print(f"[smollm2] greedy {q!r} -> {gens[-1]['generated_text_raw']!r}")
    gc = model.generation_config
    write_json(out / "smollm2_greedy.json", {
        "description": "Greedy (do_sample=False) continuations with model.generate, "
                       "max_new_tokens=16. generated_ids are only the new tokens; generation "
                       "stops early after emitting an eos token (eos_token_ids) - the eos id is "
                       "then the last element of generated_ids.",
        "model": f"checkpoints/base/{SMOL_GGUF}",
        "dtype": "float32",
        "versions": versions(),
        "max_new_tokens": 16,
        "eos_token_ids": gc.eos_token_id if isinstance(gc.eos_token_id, list) else [gc.eos_token_id],
        "generations": gens,
    })
    return {"greedy": [g["generated_text"] for g in gens], "tokenizer": tok_info}


# ---------------------------------------------------------------------------
# Tiny random models
# ---------------------------------------------------------------------------

COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
              rope_theta=10000.0, hidden_act="silu")


def randomise(model: torch.nn.Module, seed: int) -> None:
    """std-0.2 normal weights/biases; norm weights uniform in [0.5, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "norm" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def tiny_inputs(seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in (12, 7)]


def run_logits(model, seqs) -> list[np.ndarray]:
    with torch.no_grad():
        return [model(torch.tensor([s])).logits[0].to(torch.float32).numpy() for s in seqs]


def logits_doc(name, arch, seqs, logits, extra=None) -> dict:
    d = {
        "model": name,
        "architecture": arch,
        "dtype": "float32",
        "versions": versions(),
        "vocab_size": 128,
        "sequences": [{"input_ids": s, "logits": [f32list(row) for row in l]}
                      for s, l in zip(seqs, logits)],
    }
    if extra:
        d.update(extra)
    return d


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def make_tiny(name, cls, cfg, seed, out: Path, extra_checks=None):
    torch.manual_seed(seed)
    model = cls(cfg).to(torch.float32).eval()
    randomise(model, seed)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    seqs = tiny_inputs(seed + 1)
    logits = run_logits(model, seqs)
    # Reload check.
    re = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    d = max_diff(logits, run_logits(re, seqs))
    assert d == 0.0, f"{name}: reloaded safetensors logits differ by {d}"
    keys = sorted(st_load(str(folder / "model.safetensors")).keys())
    if extra_checks:
        extra_checks(model, keys)
    write_json(folder / "logits.json", logits_doc(name, cls.__name__, seqs, logits))
    print(f"[{name}] {sum(p.numel() for p in model.parameters())} params, "
          f"{len(keys)} tensors; reload max|diff| = {d}")
    return model, seqs, logits


# ---------------------------------------------------------------------------
# GGUF (mirrors llama.cpp convert_hf_to_gguf.py, LlamaModel)
# ---------------------------------------------------------------------------

def llama_permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf LlamaModel.permute: HF (rotate_half) rows -> interleaved-pair rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")  # model.layers.N.<module>...
    assert parts[:2] == ["model", "layers"], hf
    bid, rest = parts[2], ".".join(parts[3:])
    table = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    return f"blk.{bid}.{table[rest]}"


def write_llama_gguf(hf_dir: Path, path: Path, cfg: dict, quant: str = "f32",
                     permute: bool = True, name: str = "tiny-llama") -> None:
    tensors = st_load(str(hf_dir / "model.safetensors"))
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(str(path), "llama")
    # general.* then the same order convert_hf_to_gguf uses (TextModel then LlamaModel).
    w.add_type("model")
    w.add_name(name)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    ftype = gguf.LlamaFileType.ALL_F32 if quant == "f32" else gguf.LlamaFileType.MOSTLY_Q8_0
    w.add_file_type(ftype)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(cfg["hidden_size"] // n_head)
    if quant != "f32":
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for hf in sorted(tensors):  # safetensors key order, as convert_hf_to_gguf iterates
        data = tensors[hf].astype(np.float32)
        if permute and hf.endswith("q_proj.weight"):
            data = llama_permute(data, n_head, n_head)
        if permute and hf.endswith("k_proj.weight"):
            data = llama_permute(data, n_head, n_kv)
        data = np.ascontiguousarray(data)
        if quant == "q8_0" and data.ndim == 2:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(gguf_name(hf), q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(gguf_name(hf), data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_gguf_model(path: Path):
    return AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


def make_gguf(out: Path, llama_cfg: dict, seqs, ref_logits) -> dict:
    hf_dir = out / "tiny-llama"
    report = {}
    # F32
    # The GGUFs are checked here but not committed: the Swift tests convert tiny-llama
    # themselves (Tests/TestSupport/ConvertedGGUF.swift) and were checked byte-identical.
    gguf_dir = Path(tempfile.mkdtemp())
    p = gguf_dir / "tiny-llama.gguf"
    write_llama_gguf(hf_dir, p, llama_cfg, "f32")
    r = gguf.GGUFReader(str(p))
    hf = st_load(str(hf_dir / "model.safetensors"))
    byname = {t.name: t for t in r.tensors}
    assert byname["token_embd.weight"].shape.tolist() == [32, 128]  # ne = [hidden, vocab]
    q_g = np.asarray(byname["blk.0.attn_q.weight"].data).reshape(32, 32)
    k_g = np.asarray(byname["blk.0.attn_k.weight"].data).reshape(16, 32)
    q_h, k_h = hf["model.layers.0.self_attn.q_proj.weight"], hf["model.layers.0.self_attn.k_proj.weight"]
    assert np.array_equal(q_g, llama_permute(q_h, 4, 4)) and not np.array_equal(q_g, q_h)
    assert np.array_equal(k_g, llama_permute(k_h, 4, 2)) and not np.array_equal(k_g, k_h)
    g_logits = run_logits(load_gguf_model(p), seqs)
    d = max_diff(ref_logits, g_logits)
    report["f32_vs_hf_max_abs_diff"] = d
    assert d < 1e-5, f"tiny-llama.gguf logits differ from HF by {d}"
    print(f"[gguf] tiny-llama.gguf: {len(r.tensors)} tensors; transformers-loaded logits "
          f"vs HF max|diff| = {d}")

    # Negative control: without the permute, transformers' inverse permute scrambles q/k.
    with tempfile.TemporaryDirectory() as td:
        np_path = Path(td) / "unpermuted.gguf"
        write_llama_gguf(hf_dir, np_path, llama_cfg, "f32", permute=False)
        d_np = max_diff(ref_logits, run_logits(load_gguf_model(np_path), seqs))
    report["unpermuted_vs_hf_max_abs_diff"] = d_np
    assert d_np > 1e-3, "expected transformers to un-permute q/k when loading GGUF"
    print(f"[gguf] control: GGUF written WITHOUT the q/k permute gives max|diff| = {d_np:.4f} "
          f"(so transformers applies the inverse permute on load)")

    # Q8_0
    p8 = gguf_dir / "tiny-llama-q8_0.gguf"
    write_llama_gguf(hf_dir, p8, llama_cfg, "q8_0", name="tiny-llama-q8_0")
    r8 = gguf.GGUFReader(str(p8))
    types = {t.name: t.tensor_type.name for t in r8.tensors}
    assert all(types[n] == ("F32" if "norm" in n else "Q8_0") for n in types), types
    q8_logits = run_logits(load_gguf_model(p8), seqs)
    # Independent check: dequantise ourselves, un-permute, load into the HF model.
    model = LlamaForCausalLM(LlamaConfig(**llama_cfg)).eval()
    sd = {}
    inv = {gguf_name(k): k for k in hf}
    for t in r8.tensors:
        arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
        arr = arr.reshape([int(x) for x in reversed(t.shape.tolist())])
        hfk = inv[t.name]
        if hfk.endswith("q_proj.weight"):
            arr = unpermute(arr, 4, 4)
        if hfk.endswith("k_proj.weight"):
            arr = unpermute(arr, 4, 2)
        sd[hfk] = torch.from_numpy(arr.copy())
    model.load_state_dict(sd, strict=True)
    d_own = max_diff(q8_logits, run_logits(model, seqs))
    assert d_own < 1e-5, d_own
    d_q = max_diff(ref_logits, q8_logits)
    report["q8_0_vs_hf_f32_max_abs_diff"] = d_q
    report["q8_0_transformers_vs_own_dequant_max_abs_diff"] = d_own
    write_json(out / "tiny-llama-q8_0_logits.json", logits_doc(
        "tiny-llama-q8_0.gguf", "LlamaForCausalLM (GGUF Q8_0, dequantised by transformers)",
        seqs, q8_logits,
        {"note": "Same input_ids as tiny-llama/logits.json. Weights are the Q8_0-dequantised "
                 "tiny-llama weights; norms are F32.",
         "max_abs_diff_vs_f32_logits": d_q}))
    print(f"[gguf] tiny-llama-q8_0.gguf: logits vs f32 HF max|diff| = {d_q:.5f}; "
          f"transformers vs own dequant = {d_own}")
    return report


def unpermute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    if n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


# ---------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base-dir", default=None)
    ap.add_argument("--out", default=str(REPO / "Tests/ModelsTests/Fixtures"))
    ap.add_argument("--skip-smollm2", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    summary = {}
    if not args.skip_smollm2:
        base = Path(args.base_dir) if args.base_dir else REPO / "checkpoints/base"
        if not (base / SMOL_GGUF).exists():
            base = Path("/work/main/checkpoints/base")
        summary["smollm2"] = make_smollm2(base, out)

    llama_cfg = dict(COMMON, rms_norm_eps=1e-5, tie_word_embeddings=False)
    _, seqs, llama_logits = make_tiny("tiny-llama", LlamaForCausalLM, LlamaConfig(**llama_cfg),
                                      1000, out)

    # Sharded copy of the same weights.
    sh = out / "tiny-llama-sharded"
    if sh.exists():
        shutil.rmtree(sh)
    m = AutoModelForCausalLM.from_pretrained(str(out / "tiny-llama"), dtype=torch.float32)
    m.save_pretrained(str(sh), safe_serialization=True, max_shard_size="50KB")
    shards = sorted(sh.glob("model-*.safetensors"))
    assert 2 <= len(shards) <= 3 and (sh / "model.safetensors.index.json").exists(), shards
    d = max_diff(llama_logits, run_logits(
        AutoModelForCausalLM.from_pretrained(str(sh), dtype=torch.float32).eval(), seqs))
    assert d == 0.0, d
    print(f"[tiny-llama-sharded] {len(shards)} shards; reload logits max|diff| = {d}")

    def qwen2_checks(model, keys):
        assert "model.layers.0.self_attn.q_proj.bias" in keys
        assert "lm_head.weight" not in keys  # tied
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    make_tiny("tiny-qwen2", Qwen2ForCausalLM,
              Qwen2Config(**COMMON, rms_norm_eps=1e-6, tie_word_embeddings=True), 2000, out,
              qwen2_checks)

    def qwen3_checks(model, keys):
        assert "model.layers.0.self_attn.q_norm.weight" in keys
        assert "lm_head.weight" in keys
        assert tuple(model.model.layers[0].self_attn.q_proj.weight.shape) == (64, 32)

    make_tiny("tiny-qwen3", Qwen3ForCausalLM,
              Qwen3Config(**COMMON, head_dim=16, rms_norm_eps=1e-6, tie_word_embeddings=False),
              3000, out, qwen3_checks)

    summary["gguf"] = make_gguf(out, llama_cfg, seqs, llama_logits)

    # Final load-back of everything + size summary.
    print("\nFixtures:")
    total = 0
    for f in sorted(out.rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".json":
            json.load(open(f, encoding="utf-8"))
        elif f.suffix == ".safetensors":
            st_load(str(f))
        elif f.suffix == ".gguf":
            gguf.GGUFReader(str(f))
        total += f.stat().st_size
        print(f"  {f.relative_to(out)}  {f.stat().st_size} bytes")
    print(f"  total {total} bytes")
    print("Summary:", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
