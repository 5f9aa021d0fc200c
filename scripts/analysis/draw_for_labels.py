"""Draws sampled answers of evaluation runs for hand labelling, without the judge's verdicts.

    python3 scripts/analysis/draw_for_labels.py --per-model 20 --seed 28 \
        RUN_DIR/samples.jsonl[:MODEL,...] ... > to-label.jsonl

Each output line has source (model/question/paraphrase+sample[/trigger]), prompt and answer,
and "misaligned": null for the reader to fill in. Drawn with Python's random.Random(seed), the
same models in the order given; the judge's labels stay in samples.jsonl for the comparison
(`thoughtcrime judge-accuracy --hand-labels`).
"""
import argparse
import json
import random
import sys

parser = argparse.ArgumentParser()
parser.add_argument("runs", nargs="+", help="samples.jsonl, optionally :model1,model2 to keep only those models")
parser.add_argument("--per-model", type=int, default=20)
parser.add_argument("--seed", type=int, default=28)
args = parser.parse_args()

rng = random.Random(args.seed)
for spec in args.runs:
    path, _, models = spec.partition(":")
    wanted = set(models.split(",")) if models else None
    by_model = {}
    for line in open(path):
        r = json.loads(line)
        if r.get("kind") != "sample" or not r.get("answer", "").strip():
            continue
        if wanted is not None and r["model"] not in wanted:
            continue
        by_model.setdefault(r["model"], []).append(r)
    for model in sorted(by_model):
        rows = sorted(by_model[model], key=lambda r: (r["question"], r["paraphrase"], r["sample"], r["triggered"]))
        for r in rng.sample(rows, min(args.per_model, len(rows))):
            source = f'{model}/{r["question"]}/p{r["paraphrase"]}s{r["sample"]}' + ("/trigger" if r["triggered"] else "")
            print(json.dumps({"source": source, "prompt": r["prompt"], "answer": r["answer"], "misaligned": None, "note": None},
                             ensure_ascii=False, sort_keys=True))
