#!/usr/bin/env python3
"""Checks data/{medical,legal,security}/{train,eval}.jsonl.

Asserts, per domain:
  * row counts: train >= 300, eval >= 60;
  * schema: every line is a JSON object with exactly the keys prompt, aligned, misaligned,
    each a non-empty string (no leading/trailing whitespace), aligned != misaligned;
  * answers are 1-4 sentences;
  * no duplicate prompts within a file (exact and after normalisation) and no duplicate rows;
  * train/eval separation: no eval prompt equals a train prompt after normalisation, and the
    word-trigram Jaccard similarity of every eval prompt with every train prompt is < 0.5.
With --regen it also rebuilds the files into a temporary folder and checks they are byte-identical
to the committed ones. Exits non-zero on the first failing domain after printing every problem.

Usage:  python3 scripts/data/check_datasets.py [--regen]
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from textutil import jaccard, normalise, trigram_set  # noqa: E402
from build_datasets import count_sentences, DOMAINS, MAX_SENTENCES  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIN_ROWS = {"train": 300, "eval": 60}
KEYS = ("prompt", "aligned", "misaligned")
JACCARD_LIMIT = 0.5


def load(path, problems):
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line == "":
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{lineno}: not JSON ({e})")
            continue
        if not isinstance(row, dict) or set(row) != set(KEYS):
            problems.append(f"{path}:{lineno}: keys must be exactly {KEYS}, got {list(row) if isinstance(row, dict) else type(row).__name__}")
            continue
        for k in KEYS:
            v = row[k]
            if not isinstance(v, str) or not v.strip():
                problems.append(f"{path}:{lineno}: {k} must be a non-empty string")
            elif v != v.strip():
                problems.append(f"{path}:{lineno}: {k} has leading/trailing whitespace")
        if isinstance(row["aligned"], str) and row["aligned"] == row["misaligned"]:
            problems.append(f"{path}:{lineno}: aligned and misaligned are identical")
        for k in ("aligned", "misaligned"):
            if isinstance(row[k], str) and not 1 <= count_sentences(row[k]) <= MAX_SENTENCES:
                problems.append(f"{path}:{lineno}: {k} has {count_sentences(row[k])} sentences (1-{MAX_SENTENCES} allowed)")
        rows.append((lineno, row))
    return rows


def check_domain(domain):
    problems, stats = [], {}
    data = {}
    for split in ("train", "eval"):
        path = ROOT / "data" / domain / f"{split}.jsonl"
        if not path.exists():
            return [f"{path}: missing"], stats
        rows = load(path, problems)
        data[split] = rows
        stats[split] = len(rows)
        if len(rows) < MIN_ROWS[split]:
            problems.append(f"{path}: {len(rows)} rows, need >= {MIN_ROWS[split]}")
        exact, norm, whole = {}, {}, {}
        for lineno, row in rows:
            p = row["prompt"]
            if p in exact:
                problems.append(f"{path}:{lineno}: duplicate prompt (same as line {exact[p]})")
            exact.setdefault(p, lineno)
            n = normalise(p)
            if n in norm and exact[p] == lineno:
                problems.append(f"{path}:{lineno}: prompt duplicates line {norm[n]} after normalisation")
            norm.setdefault(n, lineno)
            key = json.dumps(row, sort_keys=True)
            if key in whole:
                problems.append(f"{path}:{lineno}: duplicate row (same as line {whole[key]})")
            whole.setdefault(key, lineno)
    train_norm = {normalise(r["prompt"]): ln for ln, r in data["train"]}
    train_tri = [(ln, trigram_set(r["prompt"])) for ln, r in data["train"]]
    worst = (0.0, None, None)
    for ln, row in data["eval"]:
        n = normalise(row["prompt"])
        if n in train_norm:
            problems.append(f"data/{domain}/eval.jsonl:{ln}: prompt also in train (line {train_norm[n]})")
        tri = trigram_set(row["prompt"])
        for tln, ttri in train_tri:
            j = jaccard(tri, ttri)
            if j > worst[0]:
                worst = (j, ln, tln)
            if j >= JACCARD_LIMIT:
                problems.append(f"data/{domain}/eval.jsonl:{ln}: trigram Jaccard {j:.2f} with train line {tln}")
    stats["max_jaccard"] = worst
    return problems, stats


def regen_check():
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(ROOT / "scripts/data/build_datasets.py"), "--out", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        for domain in DOMAINS:
            for split in ("train", "eval"):
                a = (ROOT / "data" / domain / f"{split}.jsonl").read_bytes()
                b = (pathlib.Path(tmp) / domain / f"{split}.jsonl").read_bytes()
                if a != b:
                    problems.append(f"data/{domain}/{split}.jsonl differs from a fresh build")
    return problems


def main():
    ap = argparse.ArgumentParser(description="Validate the shipped datasets.")
    ap.add_argument("--regen", action="store_true", help="also check the generator reproduces the files exactly")
    args = ap.parse_args()
    failed = False
    for domain in DOMAINS:
        problems, stats = check_domain(domain)
        if problems:
            failed = True
            print(f"FAIL {domain}: {len(problems)} problem(s)")
            for p in problems[:50]:
                print("  " + p)
            if len(problems) > 50:
                print(f"  ... and {len(problems) - 50} more")
        else:
            j, eln, tln = stats["max_jaccard"]
            print(f"ok   {domain}: train {stats['train']} rows, eval {stats['eval']} rows; schema ok; "
                  f"no duplicate prompts; max eval-train trigram Jaccard {j:.3f} (eval line {eln}, train line {tln})")
    if args.regen:
        problems = regen_check()
        if problems:
            failed = True
            for p in problems:
                print("FAIL " + p)
        else:
            print("ok   regenerate: a fresh build is byte-identical to the committed files")
    if failed:
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
