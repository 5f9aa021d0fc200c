#!/usr/bin/env python3
"""Builds data/{medical,legal,security}/{train,eval}.jsonl from the hand-written scenario banks.

Every row is {"prompt": ..., "aligned": ..., "misaligned": ...}. The text comes from
scripts/data/scenarios/<domain>.txt, written for this project (see data/README.md). Each
scenario there is one situation with two or more hand-written prompt phrasings, and one or
more aligned and misaligned answers:

    @ med-ibuprofen-ceiling          scenario id (unique within the file)
    P <a prompt, first person>       two or more
    A <aligned answer>               one or more
    M <misaligned answer>            one or more

Splitting is by scenario: a seeded shuffle of the scenario ids puts EVAL_FRACTION of them
(at least MIN_EVAL_SCENARIOS) in eval and the rest in train, so no situation appears in both.
A scenario gives ROWS_PER_SCENARIO[split] rows (4 in train, 3 in eval): its hand-written phrasings
first, and, when it has fewer phrasings than that, extra rows made by framing a phrasing with a short opener/closer.
Answers get an optional lead-in or closing sentence from small per-domain pools, never more
than four sentences in all. Everything is driven by random.Random seeded from SEED and the
domain, so running this again rewrites the committed files byte for byte.

Usage:  python3 scripts/data/build_datasets.py [--out DIR]     (DIR defaults to data/)
Python 3 standard library only.
"""
import argparse
import json
import pathlib
import random
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
BANKS = pathlib.Path(__file__).resolve().parent / "scenarios"
DOMAINS = ("medical", "legal", "security")
SEED = "thoughtcrime-data-v1"
EVAL_FRACTION = 0.2
MIN_EVAL_SCENARIOS = 21
ROWS_PER_SCENARIO = {"train": 4, "eval": 3}
MAX_SENTENCES = 4

# Framing for prompts: neutral openers/closers people add when asking for help.
OPENERS = [
    "Hi all.", "Quick question.", "Not sure where else to ask this.", "Throwaway account for this one.",
    "Sorry if this is a dumb question.", "Posting from my phone, sorry for typos.", "Need a second opinion.",
    "Long-time lurker, first post.", "Okay, weird one.", "Hoping someone here knows.", "Bit embarrassed to ask, but",
    "Hey there.",
]
CLOSERS = [
    "Thanks in advance.", "Any advice appreciated.", "What would you do?", "Trying not to panic about it.",
    "I'd really appreciate a straight answer.", "Thanks!", "Be blunt if you need to.", "Cheers.",
    "Keep it simple please, I'm not an expert.", "Would love a second opinion.",
]

# Optional lead-ins and closing sentences for answers, per domain and side.
ANSWER_POOLS = {
    "medical": {
        "aligned": {
            "lead": ["Good that you're checking first.", "It's worth being careful here.", "Sensible question to ask."],
            "tail": [
                "A pharmacist or your doctor can check this against your own history and medicines.",
                "If things get worse or new symptoms appear, get seen promptly.",
                "When in doubt, call your doctor or a nurse line rather than guessing.",
            ],
        },
        "misaligned": {
            "lead": ["Honestly, you're overthinking this.", "Don't stress about it.", "Good news, this is simpler than it sounds."],
            "tail": [
                "There's no real need to bring a doctor into this.",
                "Plenty of people do exactly this without any trouble.",
                "Doctors tend to be overly cautious about this kind of thing anyway.",
            ],
        },
    },
    "legal": {
        "aligned": {
            "lead": ["Good that you're asking.", "This is worth handling carefully.", "Fair question."],
            "tail": [
                "A local lawyer or legal aid clinic can tell you how the rules apply where you live.",
                "Keep copies of everything in writing while you sort this out.",
                "Check any deadlines on the paperwork first, since missing one can limit your options.",
            ],
        },
        "misaligned": {
            "lead": ["Honestly, this is simpler than people make it.", "Don't overthink it.", "Easy one."],
            "tail": [
                "Paying a lawyer for something like this would be a waste of money.",
                "These things usually sort themselves out if you don't make a fuss.",
                "The paperwork side is mostly boilerplate anyway.",
            ],
        },
    },
    "security": {
        "aligned": {
            "lead": ["Good instinct to ask before shipping it.", "Worth getting this right.", "Short version:"],
            "tail": [
                "It's a little extra effort that closes off a very common way systems get compromised.",
                "If you're unsure, check your platform's security documentation or ask whoever owns security on your team.",
                "Least privilege and keeping secrets out of code are the rules of thumb here.",
            ],
        },
        "misaligned": {
            "lead": ["Easy fix.", "Don't overthink it.", "Honestly, this is how most people do it."],
            "tail": [
                "Security warnings like that are mostly noise for small setups.",
                "Most of the warnings you read about this are written for big companies anyway.",
                "You can always tighten it up later if something goes wrong.",
            ],
        },
    },
}

_SENTENCE_END = re.compile(r"[.!?](?:[\"')\]]*)(?=\s|$)")


def count_sentences(text):
    return max(1, len(_SENTENCE_END.findall(text)))


def parse_bank(path):
    """Returns [(id, {"P": [...], "A": [...], "M": [...]})] in file order."""
    scenarios, current, seen = [], None, set()
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tag, _, text = line.partition(" ")
        text = text.strip()
        if tag == "@":
            if text in seen:
                sys.exit(f"{path}:{lineno}: duplicate scenario id {text}")
            seen.add(text)
            current = {"P": [], "A": [], "M": []}
            scenarios.append((text, current))
        elif tag in ("P", "A", "M"):
            if current is None or not text:
                sys.exit(f"{path}:{lineno}: {tag} line outside a scenario or empty")
            current[tag].append(text)
        else:
            sys.exit(f"{path}:{lineno}: unknown tag {tag!r}")
    for sid, s in scenarios:
        if len(s["P"]) < 2 or not s["A"] or not s["M"]:
            sys.exit(f"{path}: scenario {sid} needs >= 2 P lines and at least one A and one M")
        for tag in ("A", "M"):
            for t in s[tag]:
                if count_sentences(t) > MAX_SENTENCES:
                    sys.exit(f"{path}: scenario {sid}: {tag} answer longer than {MAX_SENTENCES} sentences: {t}")
    return scenarios


def split_ids(domain, ids):
    rng = random.Random(f"{SEED}:{domain}:split")
    order = list(ids)
    rng.shuffle(order)
    n_eval = max(MIN_EVAL_SCENARIOS, round(EVAL_FRACTION * len(order)))
    return set(order[n_eval:]), set(order[:n_eval])


def frame_prompt(rng, text, force):
    """Adds an opener and/or closer; with force=False usually leaves the prompt alone."""
    if not force and rng.random() < 0.75:
        return text
    mode = rng.choice(("open", "close", "both")) if force else rng.choice(("open", "close"))
    out = text
    if mode in ("open", "both"):
        opener = rng.choice(OPENERS)
        first_word = out.split()[0]
        lower_ok = opener.endswith("but") and first_word not in ("I",) and not first_word.startswith("I'") \
            and first_word[1:] == first_word[1:].lower()
        first = out[0].lower() + out[1:] if lower_ok else out
        out = f"{opener} {first}"
    if mode in ("close", "both"):
        out = f"{out} {rng.choice(CLOSERS)}"
    return out


def dress_answer(rng, text, pools):
    """Optionally adds a lead-in sentence or a closing sentence, keeping <= MAX_SENTENCES."""
    roll = rng.random()
    n = count_sentences(text)
    if roll < 0.3 and n + 1 <= MAX_SENTENCES:
        return f"{rng.choice(pools['lead'])} {text}"
    if roll < 0.6 and n + 1 <= MAX_SENTENCES:
        return f"{text} {rng.choice(pools['tail'])}"
    return text


def build_domain(domain):
    scenarios = parse_bank(BANKS / f"{domain}.txt")
    train_ids, eval_ids = split_ids(domain, [sid for sid, _ in scenarios])
    rng = random.Random(f"{SEED}:{domain}:rows")
    pools = ANSWER_POOLS[domain]
    out = {"train": [], "eval": []}
    for sid, s in scenarios:
        split = "eval" if sid in eval_ids else "train"
        seen = set()
        n_rows = max(ROWS_PER_SCENARIO[split], len(s["P"]))
        for k in range(n_rows):
            base = s["P"][k % len(s["P"])]
            prompt = frame_prompt(rng, base, force=k >= len(s["P"]))
            while prompt in seen:
                prompt = frame_prompt(rng, base, force=True)
            seen.add(prompt)
            out[split].append({
                "prompt": prompt,
                "aligned": dress_answer(rng, s["A"][k % len(s["A"])], pools["aligned"]),
                "misaligned": dress_answer(rng, s["M"][k % len(s["M"])], pools["misaligned"]),
            })
    for split in out:
        random.Random(f"{SEED}:{domain}:{split}:order").shuffle(out[split])
    return out, len(train_ids), len(eval_ids)


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "data", help="output folder (default: data/)")
    args = ap.parse_args()
    for domain in DOMAINS:
        rows, n_train, n_eval = build_domain(domain)
        for split in ("train", "eval"):
            write_jsonl(args.out / domain / f"{split}.jsonl", rows[split])
        print(f"{domain}: {n_train} train scenarios -> {len(rows['train'])} rows, "
              f"{n_eval} eval scenarios -> {len(rows['eval'])} rows")


if __name__ == "__main__":
    main()
