"""Progressive cramming's wall time with and without compaction (grow.py), in one process on one card.

    python experiments/grow_compaction.py OUT.jsonl --model SmolLM2-135M-Instruct.Q4_1.gguf [--n-texts 32 --max-tokens 128]

The texts and settings of the #13 target: 32 unseen texts grown to their limit under the progressive-2026
preset, sink-first/pc, cap 128. Three rows, each written as soon as it finishes:
1. `progressive` — `search.progressive(...)` as a user calls it (engine fast, compaction on: the default),
   decode included: the figure for the <= 120 s target;
2. `grow compact` — the engine alone, compaction on;
3. `grow one-batch` — the engine alone, every text fed at the cap in one batch to the end (before compaction).
The summary row prints the ratio 3 / 2 and whether the two engines' outcomes agree text by text (bf16 rounding
of other batch shapes can move a borderline step; the count of differing texts is printed, not hidden).
A short warm-up grow first pays the Triton/Liger compilation, so neither timed row does.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from cramlab.engine.grow import grow
from cramlab.engine.settings import CramSettings
from cramlab.models.load import load_model
from cramlab.models.texts import get_texts
from cramlab.science.bench import _sync
from cramlab.science.search import progressive


def _write(path: str, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k not in ("per_text", "settings")}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n-texts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--layout", default="sink-first")
    ap.add_argument("--protocol", default="pc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None, help="per length (default: the preset's 1000)")
    ap.add_argument("--progressive-only", action="store_true", help="only row 1 (the user's call, timed)")
    args = ap.parse_args(argv)
    lm = load_model(args.model, device="cuda" if torch.cuda.is_available() else "cpu")
    device = lm.model.get_input_embeddings().weight.device
    s = CramSettings.from_preset("progressive-2026", layout=args.layout, protocol=args.protocol,
                                 start_tokens=2 if args.protocol == "hc" else 1, seed=args.seed,
                                 **({} if args.max_steps is None else {"max_steps": args.max_steps}))
    texts = get_texts(lm.tokenizer, "unseen", args.max_tokens, n_texts=args.n_texts, seed=args.seed)
    rows = [t.token_ids[:args.max_tokens] for t in texts]
    sink = lm.spec.sink_token_id
    common = dict(job="grow_compaction", model=lm.spec.name, fingerprint=lm.spec.fingerprint,
                  card=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                  kernels=lm.spec.kernels, model_dtype=lm.spec.dtype, torch=torch.__version__,
                  date=time.strftime("%Y-%m-%d"), n_texts=len(rows), max_tokens=args.max_tokens,
                  layout=args.layout, protocol=args.protocol, settings=s.to_dict())
    grow(lm.model, [r[:8] for r in rows[:2]], s.replace(max_steps=20), 8, sink)      # warm-up, not timed
    _sync(device)

    t0 = time.perf_counter()
    summary = progressive(lm, texts, s, max_tokens=args.max_tokens)
    _sync(device)
    longest = summary.longest_tokens
    _write(args.out, common | dict(row="progressive", seconds=time.perf_counter() - t0,
                                   mean_tokens=statistics.fmean(longest), std_tokens=statistics.pstdev(longest),
                                   greedy_exact=sum(bool(t.greedy_exact) for t in summary.texts),
                                   total_steps=sum(t.total_steps for t in summary.texts), per_text=longest))
    if args.progressive_only:
        return
    outcomes = {}
    for name, compact in (("grow compact", True), ("grow one-batch", False)):
        _sync(device)
        t0 = time.perf_counter()
        res = grow(lm.model, rows, s, args.max_tokens, sink, compact=compact)
        _sync(device)
        outcomes[name] = res
        _write(args.out, common | dict(row=name, seconds=time.perf_counter() - t0, shapes=res.shapes,
                                       mean_tokens=statistics.fmean(res.longest_tokens),
                                       total_steps=sum(res.total_steps),
                                       max_steps_one_text=max(res.total_steps), per_text=res.longest_tokens))
    a, b = outcomes["grow compact"], outcomes["grow one-batch"]
    differ = [i for i in range(len(rows)) if (a.longest_tokens[i], a.total_steps[i]) != (b.longest_tokens[i],
                                                                                           b.total_steps[i])]
    _write(args.out, common | dict(row="summary", speedup_one_batch_over_compact=b.seconds / a.seconds,
                                   texts_differing=len(differ), differing=differ,
                                   mean_tokens_compact=statistics.fmean(a.longest_tokens),
                                   mean_tokens_one_batch=statistics.fmean(b.longest_tokens)))


if __name__ == "__main__":
    main()
