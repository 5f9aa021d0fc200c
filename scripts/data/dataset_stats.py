#!/usr/bin/env python3
"""Prints Markdown statistics for data/{medical,legal,security}/{train,eval}.jsonl.

distinct-n = (number of distinct word n-grams) / (total word n-grams), over all texts of a
column in one file (n-grams never cross text boundaries; words are lower-cased with punctuation
removed). Higher means less repetition. Also: rows, distinct prompts/answers, mean words.

Usage:  python3 scripts/data/dataset_stats.py
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from textutil import ngrams, words  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOMAINS = ("medical", "legal", "security")
COLUMNS = ("prompt", "aligned", "misaligned")


def distinct_n(texts, n):
    total, seen = 0, set()
    for t in texts:
        g = ngrams(words(t), n)
        total += len(g)
        seen.update(g)
    return len(seen) / total if total else 0.0


def main():
    print("| domain | split | rows | column | distinct texts | mean words | distinct-1 | distinct-2 | distinct-3 |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for domain in DOMAINS:
        for split in ("train", "eval"):
            path = ROOT / "data" / domain / f"{split}.jsonl"
            rows = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l]
            for col in COLUMNS:
                texts = [r[col] for r in rows]
                mean = sum(len(words(t)) for t in texts) / len(texts)
                d = [distinct_n(texts, n) for n in (1, 2, 3)]
                print(f"| {domain} | {split} | {len(rows)} | {col} | {len(set(texts))} | {mean:.1f} | "
                      f"{d[0]:.3f} | {d[1]:.3f} | {d[2]:.3f} |")


if __name__ == "__main__":
    main()
