#!/usr/bin/env python3
"""Writes Tests/TrainingTests/Fixtures/optimizer_reference.json from PyTorch and transformers.

The Swift AdamW, gradient clipping and learning-rate schedules are checked against it:
  * torch.optim.AdamW (weight decay on) for 5 steps on two small fixed tensors, with fixed
    gradients, clip_grad_norm_ before every step, and a cosine-with-min-lr warmup schedule;
  * transformers' constant / linear / cosine(-with-min-lr) warmup schedule factors.

Run with the reference venv:  /work/main/.venv-ref/bin/python scripts/reference/make_optimizer_fixtures.py
"""
import json
import math
import pathlib

import torch
import transformers
from transformers.optimization import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_cosine_with_min_lr_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

OUT = pathlib.Path(__file__).resolve().parents[2] / "Tests/TrainingTests/Fixtures/optimizer_reference.json"


def fixed_values(shape, phase):
    """Deterministic, varied float32 values without relying on any RNG."""
    n = math.prod(shape)
    return torch.tensor([math.sin(0.7 * i + phase) * (1 + 0.1 * i) for i in range(n)], dtype=torch.float32).reshape(shape)


def adamw_fixture():
    lr, betas, eps, weight_decay, max_grad_norm = 0.01, (0.9, 0.999), 1e-8, 0.1, 0.5
    warmup, total, min_lr_ratio = 1, 5, 0.1
    shapes = [[2, 3], [4]]
    params = [torch.nn.Parameter(fixed_values(s, phase=0.3 * k)) for k, s in enumerate(shapes)]
    initial = [p.detach().clone().reshape(-1).tolist() for p in params]
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr_rate=min_lr_ratio)
    steps = []
    for step in range(5):
        # Grow and shrink the gradients so that clipping engages on some steps and not on others.
        scale = [2.0, 0.05, 1.0, 0.1, 3.0][step]
        grads = [fixed_values(s, phase=1.1 * step + k) * scale for k, s in enumerate(shapes)]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        used_lr = opt.param_groups[0]["lr"]
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.step()
        sched.step()
        steps.append({
            "grads": [g.reshape(-1).tolist() for g in grads],
            "lr": used_lr,
            "grad_norm": float(norm),
            "params": [p.detach().reshape(-1).tolist() for p in params],
            "exp_avg": [opt.state[p]["exp_avg"].reshape(-1).tolist() for p in params],
            "exp_avg_sq": [opt.state[p]["exp_avg_sq"].reshape(-1).tolist() for p in params],
        })
    return {
        "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": weight_decay,
        "max_grad_norm": max_grad_norm,
        "schedule": {"kind": "cosine", "warmup": warmup, "total": total, "min_lr_ratio": min_lr_ratio},
        "shapes": shapes, "initial": initial, "steps": steps,
    }


def schedule_fixtures():
    def factors(make, total):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        lam = make(opt).lr_lambdas[0]
        return [lam(s) for s in range(total + 1)]

    warmup, total = 3, 10
    return [
        {"kind": "constant", "warmup": warmup, "total": total, "min_lr_ratio": 0.0,
         "factors": factors(lambda o: get_constant_schedule_with_warmup(o, warmup), total)},
        {"kind": "linear", "warmup": warmup, "total": total, "min_lr_ratio": 0.0,
         "factors": factors(lambda o: get_linear_schedule_with_warmup(o, warmup, total), total)},
        {"kind": "cosine", "warmup": warmup, "total": total, "min_lr_ratio": 0.0,
         "factors": factors(lambda o: get_cosine_schedule_with_warmup(o, warmup, total), total)},
        {"kind": "cosine", "warmup": warmup, "total": total, "min_lr_ratio": 0.2,
         "factors": factors(lambda o: get_cosine_with_min_lr_schedule_with_warmup(o, warmup, total, min_lr_rate=0.2), total)},
        {"kind": "cosine", "warmup": 0, "total": total, "min_lr_ratio": 0.0,
         "factors": factors(lambda o: get_cosine_schedule_with_warmup(o, 0, total), total)},
    ]


def main():
    fixture = {
        "generator": "scripts/reference/make_optimizer_fixtures.py",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "adamw": adamw_fixture(),
        "schedules": schedule_fixtures(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
