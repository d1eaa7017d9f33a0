"""Would the demo fit its text sooner by cramming it from several start vectors at once and keeping the first fit?

    python bench/demo_restarts.py OUT.jsonl [--seeds 8] [--batches 1 2 4] [--max-steps 300]

The demo crams one unseen 16-token text (seed 0) from one start vector. A batch of k starts for the same text
costs more per step than one, and fits at the step of its luckiest start. This script measures both halves
on this CPU, appending one JSON line each as soon as it is measured:
  kind "step":  seconds a step of the plain engine for k copies of the demo text (12 steps, none fits yet);
  kind "seed":  the demo text crammed alone from the start of each seed 0 .. --seeds - 1 (the demo's settings:
                fp32, lr 0.1, checked every step): steps to fit, greedy decoding;
  kind "batch": for k in --batches and consecutive groups of k seeds, the first fit (fewest steps in the group)
                times the k-batch's seconds a step, against seed 0 alone at batch 1.
"""
from __future__ import annotations

import argparse
import sys

from jsonl_rows import row_writer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args(argv)

    import torch

    from cramlab.cram import cram
    from cramlab.models import load_model
    from cramlab.settings import CramSettings
    from cramlab.step import initial_vectors
    from cramlab.texts import get_texts

    emit = row_writer(args.out)

    lm = load_model("smollm2-135m", device="cpu")
    text = get_texts(lm.tokenizer, "unseen", 16, n_texts=1, seed=0)[0]
    weight = lm.model.get_input_embeddings().weight
    std, d = weight.float().std(), weight.shape[1]
    base = CramSettings(lr=args.lr, check_every=1)

    s_per_step = {}
    timing = base.replace(max_steps=12)
    for k in args.batches:
        # The same text k times, each row from its own seed's start (a text's start depends on its ids and
        # the seed, so k copies under one seed would all start alike).
        starts = torch.stack([initial_vectors(text.token_ids, timing.replace(seed=i), d, std) for i in range(k)])
        r = cram(lm, [text] * k, timing, init_vectors=starts, progress=False, decode=False)
        s_per_step[k] = r[0].seconds / max(r[0].steps, 1)
        emit({"kind": "step", "batch": k, "steps": r[0].steps, "s_per_step": round(s_per_step[k], 4)})

    steps = []
    for seed in range(args.seeds):
        r = cram(lm, [text], base.replace(max_steps=args.max_steps, seed=seed), progress=False)[0]
        steps.append(r.steps if r.converged else None)
        emit({"kind": "seed", "seed": seed, "text_id": text.text_id, "steps": r.steps, "converged": r.converged,
              "greedy_exact": r.greedy_exact, "loop_s": round(r.seconds, 2)})

    alone_s = steps[0] * s_per_step[1] if steps[0] else None
    for k in args.batches:
        for g in range(0, args.seeds - k + 1, k):
            fits = [n for n in steps[g:g + k] if n is not None]
            first = min(fits) if fits else None
            emit({"kind": "batch", "batch": k, "seeds": list(range(g, g + k)), "first_fit_steps": first,
                  "est_s": None if first is None else round(first * s_per_step[k], 1),
                  "seed0_alone_s": None if alone_s is None else round(alone_s, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
