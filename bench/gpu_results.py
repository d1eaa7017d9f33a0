"""Issue 7's GPU run: how many tokens fit in one vector of the embedded model, per text, under both
layouts and both protocols, by progressive cramming (Tarasov et al. 2026) over many unseen texts.

`python bench/gpu_results.py --n-texts 48 --out results.jsonl` — one JSON line per setting, written as
soon as it finishes (a run cut short keeps what it finished). Runs on CPU too (slowly): --device cpu.
"""
import argparse
import json
import statistics
import time

import torch

from cramlab.models import load_model
from cramlab.search import progressive
from cramlab.texts import get_texts

SETTINGS = [("sink-first", "pc"), ("sink-first", "hc"), ("mem-first", "pc"), ("mem-first", "hc")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--n-texts", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--step-tokens", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=500, help="per length")
    ap.add_argument("--patience", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", nargs="+", default=[f"{a}/{b}" for a, b in SETTINGS])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    lm = load_model("smollm2-135m", device=args.device, dtype=args.dtype)
    texts = get_texts(lm.tokenizer, "unseen", args.max_tokens, n_texts=args.n_texts, seed=args.seed)
    card = torch.cuda.get_device_name(0) if lm.spec.device.startswith("cuda") else "cpu"
    for setting in args.settings:
        layout, protocol = setting.split("/")
        t0 = time.perf_counter()
        summary = progressive(lm, texts, start=2, step_tokens=args.step_tokens, max_tokens=args.max_tokens,
                              lr=args.lr, max_steps=args.max_steps, patience=args.patience, layout=layout,
                              protocol=protocol, seed=args.seed, check_every=5)
        longest = [t.longest_tokens for t in summary.texts]
        row = dict(model=lm.spec.name, card=card, dtype=lm.spec.dtype, layout=layout, protocol=protocol,
                   n_texts=len(longest), lr=args.lr, max_steps_per_length=args.max_steps, patience=args.patience,
                   step_tokens=args.step_tokens, max_tokens=args.max_tokens,
                   mean_tokens=statistics.mean(longest), std_tokens=statistics.pstdev(longest),
                   median_tokens=statistics.median(longest), min_tokens=min(longest), max_tokens_seen=max(longest),
                   hit_cap=sum(v >= args.max_tokens for v in longest),
                   greedy_exact_fraction=sum(bool(t.greedy_exact) for t in summary.texts) / len(longest),
                   total_steps=sum(t.total_steps for t in summary.texts), seconds=time.perf_counter() - t0,
                   per_text=longest, date=time.strftime("%Y-%m-%d"))
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
