#!/usr/bin/env python3
"""PyTorch + PEFT + transformers baseline for thoughtcrime-bench, on the same cases.

LoRA training (rank 16, alpha 32, all seven projections, AdamW, gradient clipping at 1) on
SmolLM2 loaded from the same GGUF (dequantised to float32 by transformers), in fp32 and with
bf16 autocast; prefill and greedy decoding with transformers' generate. Each case runs in its
own child process so that its peak RSS is its own.

The training batches are the ones thoughtcrime-bench trained on, read from the files it writes
with --dump-batches (tokens, targets with -1 for no target, positions restarting at each packed
example), so both tools see identical tokens. Usage (from the repository root):

    .build/release/thoughtcrime-bench --model M.gguf --model-only --skip decode,eval --dump-batches /tmp/tc-batches
    python scripts/bench/pytorch_baseline.py --model M.gguf --batches /tmp/tc-batches --json torch.json

scripts/bench/compare.sh runs both and prints the ratios. Reference only: the toolkit never
needs Python.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_model(path):
    """The GGUF thoughtcrime-bench trained, or the Hugging Face folder it saved (--qwen3-shaped)."""
    import torch
    from transformers import AutoModelForCausalLM
    if os.path.isdir(path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    folder, name = os.path.split(os.path.abspath(path))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="sdpa")
    return model


def train_child(args):
    import torch
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(0)
    with open(os.path.join(args.batches, args.case.replace(":", "-") + ".json")) as f:
        batches = json.load(f)
    model = load_model(args.model)
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    bf16 = args.precision == "bf16"

    def tensors(b):
        B, T = b["batch"], b["seq_len"]
        ids = torch.tensor(b["tokens"], dtype=torch.long).view(B, T)
        targets = torch.tensor(b["targets"], dtype=torch.long).view(B, T)
        # transformers shifts labels: labels[t + 1] is the target of position t
        labels = torch.full((B, T), -100, dtype=torch.long)
        labels[:, 1:] = torch.where(targets[:, :-1] < 0, torch.full_like(targets[:, :-1], -100), targets[:, :-1])
        positions = torch.tensor(b["positions"], dtype=torch.long).view(B, T)
        return ids, labels, positions

    losses, timed, tokens = [], 0.0, 0
    for i, b in enumerate(batches):
        ids, labels, positions = tensors(b)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(input_ids=ids, position_ids=positions, labels=labels)
        else:
            out = model(input_ids=ids, position_ids=positions, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        seconds = time.perf_counter() - t0
        losses.append(float(out.loss))
        if i == 0:
            continue  # warm-up, as in thoughtcrime-bench
        timed += seconds
        tokens += b["real_tokens"]
    steps = len(batches) - 1
    print(json.dumps({"kind": "training", "case": args.case, "precision": args.precision, "steps": steps,
                      "seconds_per_step": timed / steps, "tokens_per_second": tokens / timed,
                      "peak_rss_mb": peak_rss_mb(), "first_loss": losses[0], "last_loss": losses[-1]}))


def generate_child(args):
    import torch
    model = load_model(args.model).eval()
    vocab = model.config.vocab_size
    prompt_len, new_tokens = 128, 64

    def prompt(seq):
        return [1000 + ((t * 7919 + seq * 104729) % (min(vocab, 40000) - 1000)) for t in range(prompt_len)]

    result = {"kind": "generation"}
    with torch.inference_mode():
        ids = torch.tensor([prompt(0)])
        model(ids)
        best = min(_timed(lambda: model(ids)) for _ in range(2))
        result["prefill_1x128_tokens_per_second"] = prompt_len / best
        for batch in (1, 8, 16):
            ids = torch.tensor([prompt(s) for s in range(batch)])
            kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
            model.generate(ids[:, :16], max_new_tokens=4, do_sample=False, pad_token_id=0)
            best = min(_timed(lambda: model.generate(ids, **kwargs)) for _ in range(2))
            # generate's time includes the prefill; subtract a separately timed prefill
            prefill = min(_timed(lambda: model(ids)) for _ in range(2))
            result[f"decode_batch{batch}_tokens_per_second"] = batch * new_tokens / max(best - prefill, 1e-9)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_child(argv):
    out = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the GGUF thoughtcrime-bench used, or the folder of its --qwen3-shaped model")
    p.add_argument("--batches", help="directory of batch files written by thoughtcrime-bench --dump-batches")
    p.add_argument("--cases", default="random:4x128,random:8x256,chat:4x128,chat:8x256")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--skip-generation", action="store_true")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", choices=["train", "generate"], help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "train":
        return train_child(args)
    if args.child == "generate":
        return generate_child(args)

    import torch
    import transformers
    import peft
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = []
    if args.batches:
        print("case              precision  s/step   tokens/s  peak RSS MB  loss first -> last")
        for case in args.cases.split(","):
            for precision in args.precisions.split(","):
                r = run_child(["--child", "train", "--model", args.model, "--batches", args.batches,
                               "--case", case, "--precision", precision])
                if r is None:
                    print(f"{case:17} {precision:9}  failed")
                    continue
                results.append(r)
                print(f"{case:17} {precision:9} {r['seconds_per_step']:6.2f} {r['tokens_per_second']:10.1f} "
                      f"{r['peak_rss_mb']:12.0f}  {r['first_loss']:.4f} -> {r['last_loss']:.4f}")
    if not args.skip_generation:
        r = run_child(["--child", "generate", "--model", args.model])
        if r is not None:
            results.append(r)
            print(f"prefill 1x128 {r['prefill_1x128_tokens_per_second']:.1f} tok/s, decode batch 1 "
                  f"{r['decode_batch1_tokens_per_second']:.1f} tok/s, batch 8 {r['decode_batch8_tokens_per_second']:.1f} tok/s, batch 16 {r['decode_batch16_tokens_per_second']:.1f} tok/s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
