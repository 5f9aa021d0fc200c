#!/usr/bin/env python3
"""Reference logits for exported adapters (Python is only an oracle).

For each case below, the Swift CLI writes a seeded random adapter as a PEFT directory
(`thoughtcrime export --random-adapter SEED ... --format peft`; the formula is documented in
`LoRAWeights.seededRandom`). This script loads it with the real `peft` on transformers'
SmolLM2-135M-Instruct (dequantised from the same Q4_1 GGUF) and records the top-5 logits per
position for 3 short prompts. The Swift test regenerates the same adapter, checks that its
PEFT export is byte-identical (FNV-1a 64 of adapter_model.safetensors) and that its logits
match within 2e-3.

It also checks, and records in the fixture:
  * the merged Hugging Face directory (`--format merged-hf`) loads in transformers (model and
    tokenizer), its tokenizer gives the GGUF tokenizer's ids, and its logits equal peft's;
  * the merged GGUF (`--format merged-gguf`, F32) loaded by transformers gives the same logits;
  * the llama.cpp LoRA GGUF (`--format gguf-lora`) holds lora_a = A and lora_b = B with q/k rows
    permuted exactly as convert_hf_to_gguf.py's LlamaModel.permute does, and alpha*sqrt(r) for rsLoRA.

Run from the repository root after `swift build` (about 2 minutes on 2 cores):

    /work/main/.venv-ref/bin/python scripts/reference/make_peft_fixtures.py

Options: --binary (default .build/debug/thoughtcrime), --base-dir (default checkpoints/base),
--out (default Tests/LoRATests/Fixtures/peft_reference.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import peft  # noqa: E402
import gguf  # noqa: E402
from peft import PeftModel  # noqa: E402
from safetensors.numpy import load_file as st_load  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

transformers.utils.logging.disable_progress_bar()
torch.manual_seed(0)

REPO = Path(__file__).resolve().parents[2]
SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOP_K = 5

# name, seed, rank, alpha, use_rslora, targets, layers (None = all)
CASES = [
    dict(name="r8-all", seed=101, rank=8, alpha=16, rslora=False, targets=None, layers=None),
    dict(name="r16-all-rslora", seed=202, rank=16, alpha=8, rslora=True, targets=None, layers=None),
    dict(name="r8-qv-rslora", seed=303, rank=8, alpha=4, rslora=True, targets=["q_proj", "v_proj"], layers=None),
    dict(name="r16-kodown-layers", seed=404, rank=16, alpha=32, rslora=False, targets=["k_proj", "o_proj", "down_proj"],
         layers=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
]
MAGNITUDE = 0.5

PROMPTS = [
    ("plain", "The capital of France is", False),
    ("digits", "In 1969, 3 astronauts flew 384400 km.", False),
    ("chat", "What is the boiling point of water?", True),
]


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "fnv1a64:" + format(h, "x")


def export(binary: str, case: dict, fmt: str, out: Path) -> None:
    args = [binary, "export", "--random-adapter", str(case["seed"]), "--rank", str(case["rank"]),
            "--alpha", str(case["alpha"]), "--magnitude", str(MAGNITUDE), "--format", fmt, "--out", str(out),
            "--base-name", "HuggingFaceTB/SmolLM2-135M-Instruct", "--force"]
    if case["rslora"]:
        args.append("--rslora")
    if case["targets"]:
        args += ["--targets", ",".join(case["targets"])]
    if case["layers"]:
        args += ["--layers", ",".join(map(str, case["layers"]))]
    subprocess.run(args, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def hf_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@torch.no_grad()
def logits_of(model, ids: list[int]) -> np.ndarray:
    return model(torch.tensor([ids])).logits[0].float().numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / ".build/debug/thoughtcrime"))
    parser.add_argument("--base-dir", default=str(REPO / "checkpoints/base"))
    parser.add_argument("--out", default=str(REPO / "Tests/LoRATests/Fixtures/peft_reference.json"))
    args = parser.parse_args()
    base_dir = Path(args.base_dir)
    if not (base_dir / SMOL_GGUF).exists():
        base_dir = Path("/work/main/checkpoints/base")

    tok = AutoTokenizer.from_pretrained(str(base_dir), gguf_file=SMOL_GGUF)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), gguf_file=SMOL_GGUF, dtype=torch.float32).eval()
    if getattr(base, "hf_quantizer", None) is not None:
        base.hf_quantizer.remove_quantization_config(base)
    cfg = base.config

    prompts = []
    for name, text, chat in PROMPTS:
        if chat:
            ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
        else:
            ids = tok(text, add_special_tokens=True)["input_ids"]
        prompts.append(dict(name=name, text=text, chat=chat, input_ids=[int(i) for i in ids]))
    base_logits = [logits_of(base, p["input_ids"]) for p in prompts]

    fixture = dict(
        description="Top-5 logits of SmolLM2-135M-Instruct (Q4_1 GGUF dequantised by transformers) with seeded "
                    "random LoRA adapters exported by `thoughtcrime export --random-adapter` and loaded by peft.",
        versions=dict(torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__,
                      numpy=np.__version__, python=sys.version.split()[0]),
        magnitude=MAGNITUDE, top_k=TOP_K, prompts=prompts, cases=[])

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in CASES:
            peft_dir = tmp / case["name"]
            export(args.binary, case, "peft", peft_dir)
            config = json.loads((peft_dir / "adapter_config.json").read_text())
            model = PeftModel.from_pretrained(base, str(peft_dir)).eval()
            n_lora = sum(1 for n, _ in model.named_modules() if n.endswith("lora_A.default"))
            results, worst_change = [], 0.0
            for p, bl in zip(prompts, base_logits):
                lg = logits_of(model, p["input_ids"])
                top = np.argsort(-lg, axis=1, kind="stable")[:, :TOP_K]
                results.append(dict(top_ids=top.tolist(),
                                    top_logits=[[float(lg[t, i]) for i in row] for t, row in enumerate(top)]))
                worst_change = max(worst_change, float(np.abs(lg - bl).max()))
            entry = dict(case, lora_modules=n_lora, adapter_config=config,
                         safetensors_fnv1a64=fnv1a64((peft_dir / "adapter_model.safetensors").read_bytes()),
                         max_abs_change_vs_base=worst_change, results=results)
            print(f"{case['name']}: {n_lora} LoRA modules, max |logit change| vs base {worst_change:.3f}")

            if case["name"] == "r8-all":
                peft_logits = [logits_of(model, p["input_ids"]) for p in prompts]
                entry["merged_checks"] = merged_checks(args.binary, case, tmp, prompts, peft_logits, tok, base_dir)
            # llama.cpp LoRA layout, checked against an independent numpy permute.
            lora_path = tmp / f"{case['name']}.gguf"
            export(args.binary, case, "gguf-lora", lora_path)
            entry["gguf_lora_check"] = check_gguf_lora(lora_path, peft_dir, case, cfg)
            fixture["cases"].append(entry)
            base = model.unload()

    Path(args.out).write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")


def merged_checks(binary, case, tmp, prompts, peft_logits, tok, base_dir) -> dict:
    out = {}
    hf_dir = tmp / "merged-hf"
    export(binary, case, "merged-hf", hf_dir)
    merged = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    merged_tok = AutoTokenizer.from_pretrained(str(hf_dir))
    diffs = [float(np.abs(logits_of(merged, p["input_ids"]) - pl).max()) for p, pl in zip(prompts, peft_logits)]
    texts = [p["text"] for p in prompts] + ["Hello  world!\n\n  indented 1234567 café ünïcödé <|im_end|> tabs\tend"]
    same_ids = all(merged_tok(t)["input_ids"] == tok(t)["input_ids"] for t in texts)
    chat = [{"role": "user", "content": "Hi"}]
    same_chat = merged_tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    out["merged_hf"] = dict(max_abs_diff_vs_peft=max(diffs), tokenizer_ids_equal_gguf=same_ids,
                            chat_template_equal=same_chat, tokenizer_class=type(merged_tok).__name__)
    print(f"merged-hf: max |diff| vs peft {max(diffs):.2e}, tokenizer ids equal {same_ids}, chat template equal {same_chat}")
    del merged

    gguf_path = tmp / "merged.gguf"
    export(binary, case, "merged-gguf", gguf_path)
    merged = AutoModelForCausalLM.from_pretrained(str(tmp), gguf_file="merged.gguf", dtype=torch.float32).eval()
    diffs = [float(np.abs(logits_of(merged, p["input_ids"]) - pl).max()) for p, pl in zip(prompts, peft_logits)]
    out["merged_gguf_f32"] = dict(max_abs_diff_vs_peft=max(diffs))
    print(f"merged-gguf f32: max |diff| vs peft {max(diffs):.2e}")
    return out


def check_gguf_lora(path: Path, peft_dir: Path, case: dict, cfg) -> dict:
    reader = gguf.GGUFReader(str(path))
    fields = {f.name: f for f in reader.fields.values()}

    def scalar(name):
        f = fields[name]
        v = f.parts[f.data[0]]
        return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else float(v[0])

    assert scalar("general.type") == "adapter" and scalar("adapter.type") == "lora"
    assert scalar("general.architecture") == "llama"
    alpha = scalar("adapter.lora.alpha")
    expected_alpha = case["alpha"] * (case["rank"] ** 0.5 if case["rslora"] else 1)
    assert abs(alpha - expected_alpha) < 1e-4 * expected_alpha, (alpha, expected_alpha)
    tensors = {t.name: t for t in reader.tensors}
    st = st_load(str(peft_dir / "adapter_model.safetensors"))
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    checked = 0
    for key, a in st.items():
        if ".lora_A." not in key:
            continue
        module = key[len("base_model.model."):-len(".lora_A.weight")]
        parts = module.split(".")
        stem = f"blk.{parts[2]}.{names[parts[4]]}.weight"
        b = st[key.replace("lora_A", "lora_B")]
        ta, tb = tensors[stem + ".lora_a"], tensors[stem + ".lora_b"]
        # ggml ne order is reversed numpy order: lora_a ne = [n_in, r], lora_b ne = [r, n_out].
        assert list(ta.shape) == [a.shape[1], a.shape[0]] and list(tb.shape) == [b.shape[1], b.shape[0]]
        if parts[4] == "q_proj":
            b = hf_permute(b, cfg.num_attention_heads)
        elif parts[4] == "k_proj":
            b = hf_permute(b, cfg.num_key_value_heads)
        assert np.array_equal(np.asarray(ta.data).reshape(a.shape), a)
        assert np.array_equal(np.asarray(tb.data).reshape(b.shape), b)
        checked += 1
    return dict(modules_checked=checked, alpha=alpha, ok=True)


if __name__ == "__main__":
    main()
