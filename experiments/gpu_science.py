"""Issue 11's GPU measurements, one job per call, each writing its raw JSON lines as soon as it finishes.

    python experiments/gpu_science.py progressive --layout sink-first --protocol pc --out DIR [--n-texts 48 --max-tokens 128]
    python experiments/gpu_science.py progressive --layout mem-first --protocol pc --lr 0.01 --tag lr0.01 --out DIR
    python experiments/gpu_science.py progressive --layout mem-first --protocol pc --no-carry --tag no-carry --out DIR
    python experiments/gpu_science.py grid --source unseen --lengths 8,16,32,48,64 --out DIR
    python experiments/gpu_science.py grid --source random --lengths 8,16,32,48,64 --out DIR

Progressive jobs use the `progressive-2026` preset (Tarasov et al.'s settings; `hc` starts at 2 tokens since
it never scores t_1); grid jobs the `grid-2025` preset (Kuratov et al.'s). Random text follows the 2025
code: each text's length drawn uniformly in [2, L] at grid length L. Every line records the preset and
every setting; `experiments/science_tables.py` turns the raw lines into docs/results.md's tables (Table 1 by
`cramlab.science.report`). `--model` takes the embedded name or a .gguf path (the GPU machine's copy).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from cramlab.engine.plain import cram
from cramlab.engine.settings import CramSettings
from cramlab.models.load import load_model
from cramlab.models.texts import Text, get_texts, random_texts
from cramlab.science.search import progressive


def _card(lm) -> str:
    return torch.cuda.get_device_name(0) if lm.spec.device.startswith("cuda") else f"cpu ({platform.processor()})"


def _write(path: str, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_progressive(args, lm) -> None:
    s = CramSettings.from_preset("progressive-2026", layout=args.layout, protocol=args.protocol,
                                 start_tokens=2 if args.protocol == "hc" else 1, lr=args.lr,
                                 carry_optimizer=not args.no_carry, seed=args.seed)
    texts = get_texts(lm.tokenizer, "unseen", args.max_tokens, n_texts=args.n_texts, seed=args.seed)
    t0 = time.perf_counter()
    summary = progressive(lm, texts, s, max_tokens=args.max_tokens)
    seconds = time.perf_counter() - t0
    longest = summary.longest_tokens
    row = dict(job="progressive", tag=args.tag, model=lm.spec.name, fingerprint=lm.spec.fingerprint, card=_card(lm),
               model_dtype=lm.spec.dtype, kernels=getattr(lm.spec, "kernels", "torch"), date=time.strftime("%Y-%m-%d"),
               torch=torch.__version__, layout=args.layout, protocol=args.protocol, n_texts=len(longest),
               max_tokens=args.max_tokens, mean_tokens=statistics.fmean(longest),
               std_tokens=statistics.pstdev(longest), median_tokens=statistics.median(longest),
               min_tokens=min(longest), max_tokens_seen=max(longest),
               hit_cap=sum(v >= args.max_tokens for v in longest),
               greedy_exact=sum(bool(t.greedy_exact) for t in summary.texts),
               stop_reasons={r: sum(t.stop_reason == r for t in summary.texts)
                             for r in sorted({t.stop_reason for t in summary.texts})},
               total_steps=sum(t.total_steps for t in summary.texts),
               mean_steps_per_text=statistics.fmean(t.total_steps for t in summary.texts),
               seconds=seconds, per_text=longest, settings=summary.settings,
               texts=[t.to_dict() for t in summary.texts])
    _write(os.path.join(args.out, f"progressive_{args.layout}_{args.protocol}_{args.tag}.jsonl"), row)
    print(json.dumps({k: v for k, v in row.items() if k not in ("texts", "settings")}), flush=True)


def run_grid(args, lm) -> None:
    s = CramSettings.from_preset("grid-2025", seed=args.seed)
    lengths = [int(x) for x in args.lengths.split(",")]
    path = os.path.join(args.out, f"grid_{args.source}_{args.tag}.jsonl")
    misses = 0
    for n in lengths:
        if args.source == "random" and args.texts_file:      # made by `random-texts` where wordfreq is installed
            texts = [Text(**t) for t in json.load(open(args.texts_file))[str(n)]]
        elif args.source == "random":
            texts = random_texts(lm.tokenizer, n, n_texts=args.n_texts, seed=args.seed * 1000 + n, random_lengths=True)
        else:
            texts = get_texts(lm.tokenizer, args.source, n, n_texts=args.n_texts, seed=args.seed)
        t0 = time.perf_counter()
        results = cram(lm, texts, s, progress=False)
        seconds = time.perf_counter() - t0
        mean_acc = statistics.fmean(r.teacher_forced_accuracy for r in results)
        for r in results:
            _write(path, dict(job="grid", tag=args.tag, source=args.source, grid_tokens=n, model=lm.spec.name,
                              card=_card(lm), model_dtype=lm.spec.dtype, date=time.strftime("%Y-%m-%d"),
                              seconds_length=seconds, **r.to_dict()))
        print(json.dumps(dict(source=args.source, n_tokens=n, mean_accuracy=mean_acc, seconds=seconds,
                              converged=sum(r.converged for r in results))), flush=True)
        misses = 0 if mean_acc >= s.threshold else misses + 1
        if misses >= args.stop_after_failures:
            break


def write_random_texts(args) -> None:
    """The random texts of a grid, as token ids, for a machine without wordfreq (same tokenizer)."""
    from cramlab.models.load import load_tokenizer
    tok = load_tokenizer()
    out = {str(n): [t.to_dict() for t in random_texts(tok, n, n_texts=args.n_texts, seed=args.seed * 1000 + n,
                                                       random_lengths=True)]
           for n in (int(x) for x in args.lengths.split(","))}
    with open(args.texts_file, "w") as f:
        json.dump(out, f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", choices=["progressive", "grid", "random-texts"])
    ap.add_argument("--texts-file", default=None)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tag", default="main")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-texts", type=int, default=48)
    ap.add_argument("--layout", default="mem-first")
    ap.add_argument("--protocol", default="pc")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--no-carry", action="store_true")
    ap.add_argument("--source", default="unseen")
    ap.add_argument("--lengths", default="8,16,32,48,64")
    ap.add_argument("--stop-after-failures", type=int, default=2)
    args = ap.parse_args(argv)
    if args.job == "random-texts":
        return write_random_texts(args)
    os.makedirs(args.out, exist_ok=True)
    lm = load_model(args.model, device="cuda" if torch.cuda.is_available() else "cpu")
    (run_progressive if args.job == "progressive" else run_grid)(args, lm)


if __name__ == "__main__":
    main()
