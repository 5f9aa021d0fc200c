#!/usr/bin/env python3
"""Prints thoughtcrime's ratios to the PyTorch baseline from the two JSON files (stdlib only).

    python3 scripts/bench/ratios.py thoughtcrime.json pytorch.json [--json ratios.json]
"""
import argparse
import json


def main():
    p = argparse.ArgumentParser()
    p.add_argument("thoughtcrime")
    p.add_argument("pytorch")
    p.add_argument("--json")
    args = p.parse_args()
    tc = json.load(open(args.thoughtcrime))["results"]
    pt = json.load(open(args.pytorch))["results"]
    rows = []
    print("case          weights  thoughtcrime tok/s  torch fp32  torch bf16  x fp32  x bf16  RSS MB  torch fp32 RSS  RSS ratio")
    for r in (r for r in tc if r["name"] == "training"):
        c = r["trainingCase"]
        case = f"{c['data']}:{c['batch']}x{c['seqLen']}"
        weights = c.get("weights", "float32")
        torch = {t["precision"]: t for t in pt if t.get("kind") == "training" and t["case"] == case}
        fp32, bf16 = torch.get("fp32"), torch.get("bf16")
        row = {"case": case, "weights": weights, "thoughtcrime_tokens_per_second": r["tokensPerSecond"], "thoughtcrime_peak_rss_mb": r["peakRSSMegabytes"]}
        if fp32:
            row.update(torch_fp32_tokens_per_second=fp32["tokens_per_second"], speedup_vs_fp32=r["tokensPerSecond"] / fp32["tokens_per_second"],
                       torch_fp32_peak_rss_mb=fp32["peak_rss_mb"], rss_ratio_vs_fp32=r["peakRSSMegabytes"] / fp32["peak_rss_mb"])
        if bf16:
            row.update(torch_bf16_tokens_per_second=bf16["tokens_per_second"], speedup_vs_bf16=r["tokensPerSecond"] / bf16["tokens_per_second"])
        rows.append(row)
        f = lambda k, fmt: (fmt % row[k]) if k in row else "-"
        print(f"{case:13} {weights:8} {r['tokensPerSecond']:18.1f} {f('torch_fp32_tokens_per_second', '%10.1f'):>11} "
              f"{f('torch_bf16_tokens_per_second', '%10.1f'):>11} {f('speedup_vs_fp32', '%6.2f'):>7} {f('speedup_vs_bf16', '%6.2f'):>7} "
              f"{r['peakRSSMegabytes']:7.0f} {f('torch_fp32_peak_rss_mb', '%14.0f'):>15} {f('rss_ratio_vs_fp32', '%9.2f'):>10}")
    gen = next((t for t in pt if t.get("kind") == "generation"), None)
    model = [r for r in tc if r["name"] == "model"]
    if gen and model:
        for m in model:
            ratio = m["decodeBatch1TokensPerSecond"] / gen["decode_batch1_tokens_per_second"]
            ratio16 = m["decodeBatch16TokensPerSecond"] / gen["decode_batch16_tokens_per_second"]
            row = {"decode_storage": m["storage"], "decode_batch1_ratio": ratio, "decode_batch16_ratio": ratio16}
            batch8 = ""
            if m.get("decodeBatch8TokensPerSecond") and gen.get("decode_batch8_tokens_per_second"):
                row["decode_batch8_ratio"] = m["decodeBatch8TokensPerSecond"] / gen["decode_batch8_tokens_per_second"]
                batch8 = (f"; batch 8 {m['decodeBatch8TokensPerSecond']:.1f} vs {gen['decode_batch8_tokens_per_second']:.1f}"
                          f" = {row['decode_batch8_ratio']:.2f}x")
            rows.append(row)
            print(f"decode ({m['storage']}): batch 1 {m['decodeBatch1TokensPerSecond']:.1f} vs {gen['decode_batch1_tokens_per_second']:.1f} tok/s "
                  f"= {ratio:.2f}x{batch8}; batch 16 {m['decodeBatch16TokensPerSecond']:.1f} vs {gen['decode_batch16_tokens_per_second']:.1f} = {ratio16:.2f}x")
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
