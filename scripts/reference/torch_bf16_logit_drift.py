#!/usr/bin/env python3
"""How far transformers' own bf16 autocast moves SmolLM2's logits from fp32 on the committed
fixture prompts (Tests/ModelsTests/Fixtures/smollm2_logits.json): the yardstick for the
tolerance of the bf16 weight path (docs/models.md). Run from the repository root with the
reference virtualenv: .venv-ref/bin/python scripts/reference/torch_bf16_logit_drift.py
"""
import json, torch, os
from transformers import AutoModelForCausalLM
d=json.load(open('Tests/ModelsTests/Fixtures/smollm2_logits.json'))
m=AutoModelForCausalLM.from_pretrained('checkpoints/base', gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf', dtype=torch.float32).eval()
worst=0; worst_lse=0; agree=0; n=0
for p in d['prompts']:
    ids=torch.tensor([p['input_ids']])
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        lg=m(ids).logits[0].float()
    for t in range(len(p['input_ids'])):
        row=lg[t]
        for i,e in zip(p['top_ids'][t], p['top_logits'][t]): worst=max(worst, abs(float(row[i])-e))
        worst_lse=max(worst_lse, abs(float(torch.logsumexp(row,0))-p['logsumexp'][t]))
        agree+= int(int(row.argmax())==p['top_ids'][t][0]); n+=1
print(f"torch bf16 autocast vs fp32: max abs top-10 logit diff {worst:.3f}, max logsumexp diff {worst_lse:.3f}, top-1 agreement {agree}/{n}")
