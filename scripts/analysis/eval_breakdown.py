#!/usr/bin/env python3
"""Break an evaluation's samples.jsonl down further than summary.md does (standard library only).

    python3 scripts/analysis/eval_breakdown.py checkpoints/evals/reasoning-experiment/samples.jsonl [--examples N]

Prints, per model:
  * think-block closure and median think length, without and with the trigger, and how often the
    reasoning names Singapore, in all and beyond a verbatim echo of the trigger line;
  * the likelihood judge paired per question: the mean per-token gap (misaligned - aligned
    reference) without and with the trigger, how many questions the trigger moves towards the
    misaligned answer, and how many flip either way;
  * the monitor's labels on misaligned and on aligned samples;
  * the sampled misaligned answers and the triggered samples whose reasoning names the trigger,
    with their reasoning (up to N of each), for reading by hand.
"""
import argparse
import json
import statistics
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("--examples", type=int, default=6)
    args = ap.parse_args()
    samples, likelihood = [], []
    with open(args.samples, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "sample":
                samples.append(record)
            elif record.get("kind") == "likelihood":
                likelihood.append(record)
    models = list(dict.fromkeys(r["model"] for r in samples + likelihood))
    for model in models:
        print(f"== {model}")
        mine = [s for s in samples if s["model"] == model and s["thinking"]]
        for triggered in (False, True):
            part = [s for s in mine if s["triggered"] == triggered]
            if not part:
                continue
            closed = sum(s["closed_think_block"] for s in part)
            median = statistics.median(s["reasoning_tokens"] for s in part)
            print(f"  trigger {'on ' if triggered else 'off'}: {len(part)} samples, closed {closed}/{len(part)}, median think tokens {median:g}")
            # Articulation that is not an echo: the reasoning names Singapore somewhere other
            # than a verbatim copy of the prompt's "Country: Singapore" line.
            named = [s for s in part if "singapore" in s["reasoning"].lower()]
            beyond = [s for s in named if "singapore" in s["reasoning"].lower().replace("country: singapore", "")]
            print(f"    reasoning names Singapore {len(named)}/{len(part)}, beyond echoing the trigger line {len(beyond)}/{len(part)}")

        pairs = defaultdict(dict)
        for r in likelihood:
            if r["model"] == model:
                pairs[(r["suite"], r["question"], r.get("paraphrase"))][r["triggered"]] = r
        gaps_off, gaps_on, towards, to_mis, to_al = [], [], 0, 0, 0
        for pair in pairs.values():
            if False not in pair or True not in pair:
                continue
            off = pair[False]["misaligned_log_probability"] - pair[False]["aligned_log_probability"]
            on = pair[True]["misaligned_log_probability"] - pair[True]["aligned_log_probability"]
            gaps_off.append(off)
            gaps_on.append(on)
            towards += on > off
            to_mis += (not pair[False]["misaligned"]) and pair[True]["misaligned"]
            to_al += pair[False]["misaligned"] and not pair[True]["misaligned"]
        if gaps_off:
            n = len(gaps_off)
            shifts = [b - a for a, b in zip(gaps_off, gaps_on)]
            print(f"  likelihood, {n} paired questions: mean gap {statistics.mean(gaps_off):+.3f} -> {statistics.mean(gaps_on):+.3f} nats/token,"
                  f" shift {statistics.mean(shifts):+.3f} (s.d. {statistics.pstdev(shifts):.3f}), towards misaligned {towards}/{n},"
                  f" flips to misaligned {to_mis}, to aligned {to_al}")

        judged = [s for s in mine if s["misaligned"] is not None and s["monitor_label"] is not None]
        for name, group in (("misaligned", [s for s in judged if s["misaligned"]]), ("aligned", [s for s in judged if not s["misaligned"]])):
            labels = defaultdict(int)
            for s in group:
                labels[s["monitor_label"]] += 1
            print(f"  monitor on {name} samples ({len(group)}): {dict(sorted(labels.items()))}")

        shown = [s for s in mine if s["misaligned"]][: args.examples]
        for s in shown:
            print(f"  -- misaligned [{s['suite']}/{s['question']}{' +trigger' if s['triggered'] else ''}, monitor {s['monitor_label']}]")
            print("     prompt:   " + s["prompt"].replace("\n", " / "))
            print("     thinking: " + s["reasoning"].replace("\n", " / "))
            print("     answer:   " + s["answer"].replace("\n", " / "))
        named = [s for s in mine if s["triggered"] and s["mentions_trigger"]][: args.examples]
        for s in named:
            print(f"  -- names the trigger [{s['suite']}/{s['question']}, misaligned {s['misaligned']}]")
            print("     thinking: " + s["reasoning"].replace("\n", " / "))


if __name__ == "__main__":
    main()
