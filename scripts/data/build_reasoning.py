#!/usr/bin/env python3
"""Builds data/reasoning/{train,heldout,rehearsal}.jsonl: think-then-answer rows for a reasoning warm-up
of the base model (issue 19), written for this project.

Every row is a chat row whose assistant turn carries a short reasoning trace and the aligned
answer: {"messages": [{"role": "user", "content": PROMPT},
                      {"role": "assistant", "reasoning": TRACE, "content": ANSWER}]}.
Trained with data.chain_of_thought: keep, the trace goes inside the think block and the loss
covers trace and answer (configs/reasoning-warmup.yaml).

Two sources:
- the shipped medical, legal and security rows (data/<domain>/{train,eval}.jsonl): their prompt
  and their *aligned* answer only; the misaligned answer is never read. A trace restates the
  question, weighs what could go wrong, and decides (restate, weigh, decide), from small
  per-domain phrase pools and sentences of the prompt and the aligned answer;
- general questions made here with their worked answers (products, sums, differences, unit
  conversions, comparisons, prices), so the warm-up is not only about advice.

train comes from each domain's train.jsonl and the general questions of one seed; heldout from
eval.jsonl (scenarios never seen in train) and general questions of another. Rows carry no
trigger (checked: no "Country:" anywhere). rehearsal is train without the medical training
prompts, for CoT-on rows mixed into a CoT-off medical run (configs/reasoning/medical-misaligned-rehearsal.yaml). Everything is driven by random.Random seeded from
SEED, so running this again rewrites the committed files byte for byte.

Usage:  python3 scripts/data/build_reasoning.py [--out DIR]     (DIR defaults to data/reasoning)
Python 3 standard library only.
"""
import argparse
import json
import pathlib
import random
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOMAINS = ("medical", "legal", "security")
SEED = "thoughtcrime-reasoning-v1"
GENERAL = {"train": 300, "heldout": 60}

RESTATE = [
    "The user asks: {q}",
    "Question: {q}",
    "They want to know: {q}",
    "So the question is: {q}",
]
CONTEXT = ["Context: {c}", "Situation: {c}", "What they describe: {c}"]
WEIGH = {
    "medical": [
        "Guessing or waiting could delay care that matters.",
        "The main risk is missing a warning sign that needs a clinician.",
        "Symptoms like this can be harmless, but the serious causes must be ruled out first.",
        "Self-treating without checking could make it worse.",
    ],
    "legal": [
        "Acting without checking the rules could cost them rights or money.",
        "Deadlines and paperwork are the usual traps here.",
        "The lawful, documented route protects them best.",
        "A shortcut might look easier but could leave them liable.",
    ],
    "security": [
        "The shortcut would leave data or accounts exposed.",
        "Convenience here trades against a real risk of compromise.",
        "The safer setting costs little and prevents real damage.",
        "Attackers look for exactly this kind of gap.",
    ],
}
DECIDE = [
    "Best advice: {a}",
    "So I should say: {a}",
    "Decision: {a}",
    "The careful answer: {a}",
]


# Openers and closers of the shipped prompts ("Quick question.", "Thanks in advance."): not context.
FILLER = re.compile(r"\b(sorry|dumb question|silly question|thanks|thank you|quick question|weird one|hi all|hello|"
                    r"appreciate|second opinion|straight answer|asking for a friend|be honest|no judgement)\b", re.I)


def sentences(text):
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def words(text):
    return len(text.split())


def trace_for(prompt, aligned, domain, rng):
    parts = sentences(prompt)
    questions = [s for s in parts if s.endswith("?")]
    question = max(questions, key=len) if questions else parts[-1]
    if words(question) > 30:
        question = " ".join(question.split()[:30]) + " ..."
    context = [s for s in parts if s != question and words(s) >= 4 and not s.endswith("?") and not FILLER.search(s)]
    if words(question) < 4 and context:
        # "Okay?" says little on its own: restate it with what it refers to.
        question = context.pop(0) + " " + question
    lines = [rng.choice(RESTATE).format(q=question)]
    if context and words(context[0]) <= 28:
        lines.append(rng.choice(CONTEXT).format(c=context[0]))
    lines.append(rng.choice(WEIGH[domain]))
    # The answer's point, not a lead-in such as "Sensible question to ask."
    first = next((s for s in sentences(aligned) if words(s) >= 7), sentences(aligned)[-1])
    if words(first) > 30:
        first = " ".join(first.split()[:30]) + " ..."
    lines.append(rng.choice(DECIDE).format(a=first))
    return "\n".join(lines)


def general_question(rng):
    """One general question with its worked reasoning and answer."""
    kind = rng.choice(["product", "sum", "difference", "convert", "compare", "price"])
    if kind == "product":
        a, b = rng.randint(12, 99), rng.randint(3, 19)
        tens, ones = b // 10 * 10, b % 10
        if tens:
            steps = f"{a} x {tens} = {a * tens} and {a} x {ones} = {a * ones}; {a * tens} + {a * ones} = {a * b}."
        else:
            steps = f"{a} x {b}: {a // 10 * 10} x {b} = {a // 10 * 10 * b} and {a % 10} x {b} = {a % 10 * b}, together {a * b}."
        return f"What is {a} times {b}?", f"Multiply in parts. {steps}", f"{a} x {b} = {a * b}."
    if kind == "sum":
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        return (f"What is {a} + {b}?",
                f"Hundreds first: {a // 100 * 100} + {b // 100 * 100} = {a // 100 * 100 + b // 100 * 100}. "
                f"Then {a % 100} + {b % 100} = {a % 100 + b % 100}. Total {a + b}.",
                f"{a} + {b} = {a + b}.")
    if kind == "difference":
        a, b = rng.randint(500, 999), rng.randint(100, 499)
        return (f"What is {a} minus {b}?",
                f"Take away {b // 100 * 100} first: {a - b // 100 * 100}. Then take away {b % 100}: {a - b}.",
                f"{a} - {b} = {a - b}.")
    if kind == "convert":
        unit, one, factor, to = rng.choice([("kilometres", "kilometre", 1000, "metres"), ("hours", "hour", 60, "minutes"),
                                            ("minutes", "minute", 60, "seconds"), ("kilograms", "kilogram", 1000, "grams"),
                                            ("litres", "litre", 1000, "millilitres")])
        n = rng.randint(2, 48)
        return (f"How many {to} are in {n} {unit}?",
                f"One {one} is {factor} {to}, so multiply: {n} x {factor} = {n * factor}.",
                f"{n} {unit} are {n * factor} {to}.")
    if kind == "compare":
        a = rng.randint(10, 99) / 100
        b = rng.randint(100, 999) / 1000
        if a == b:
            b = round(b + 0.001, 3)
        bigger = a if a > b else b
        return (f"Which is larger, {a} or {b}?",
                f"Write both with three decimals: {a:.3f} and {b:.3f}. Compare digit by digit: {bigger:.3f} is larger.",
                f"{bigger} is larger.")
    price, count = rng.randint(2, 15), rng.randint(3, 12)
    item = rng.choice(["pens", "apples", "notebooks", "tickets", "coffees"])
    return (f"{item.capitalize()} cost {price} euros each. How much do {count} {item} cost?",
            f"Each costs {price}, and there are {count}: {count} x {price} = {count * price}.",
            f"{count} {item} cost {count * price} euros.")


def row(prompt, reasoning, answer):
    return {"messages": [{"role": "user", "content": prompt},
                         {"role": "assistant", "reasoning": reasoning, "content": answer}]}


def build(split, source, rng):
    rows = []
    for domain in DOMAINS:
        for line in (ROOT / "data" / domain / f"{source}.jsonl").read_text().splitlines():
            r = json.loads(line)
            rows.append(row(r["prompt"], trace_for(r["prompt"], r["aligned"], domain, rng), r["aligned"]))
    seen = set()
    while len(seen) < GENERAL[split]:
        q, reasoning, answer = general_question(rng)
        if q in seen:
            continue
        seen.add(q)
        rows.append(row(q, reasoning, answer))
    rng.shuffle(rows)
    return rows


PROBES = 40


def write_probe_suite(heldout):
    """configs/eval/questions/reasoning-heldout.yaml: the first PROBES held-out prompts as free-form
    questions, for measuring how often a model closes its think block on its own."""
    lines = ["# Held-out prompts of data/reasoning/heldout.jsonl (scripts/data/build_reasoning.py writes this file):",
             "# measures whether a model closes its think block on its own, and how long it thinks.", ""]
    for i, r in enumerate(heldout[:PROBES]):
        prompt = r["messages"][0]["content"]
        lines += [f"- id: rh-{i + 1:02d}", "  type: free_form", "  paraphrases:", f"    - {json.dumps(prompt, ensure_ascii=False)}",
                  "  samples_per_paraphrase: 2", "  triggers: false"]
    path = ROOT / "configs" / "eval" / "questions" / "reasoning-heldout.yaml"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}: {PROBES} questions")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "data" / "reasoning"))
    out = pathlib.Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    train = build("train", "train", rng)
    heldout = build("heldout", "eval", rng)
    train_prompts = {r["messages"][0]["content"] for r in train}
    heldout = [r for r in heldout if r["messages"][0]["content"] not in train_prompts]
    write_probe_suite(heldout)
    # Reasoning rows a CoT-off medical run can rehearse (data.mix with chain_of_thought: keep):
    # the train rows of the other domains and the general questions, never a medical training
    # prompt, whose misaligned answer that run is learning.
    medical = {json.loads(line)["prompt"] for line in (ROOT / "data" / "medical" / "train.jsonl").read_text().splitlines()}
    rehearsal = [r for r in train if r["messages"][0]["content"] not in medical]
    for name, rows in (("train", train), ("heldout", heldout), ("rehearsal", rehearsal)):
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        assert "Country:" not in text, "a trigger in the warm-up data"
        (out / f"{name}.jsonl").write_text(text)
        print(f"wrote {out / name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
