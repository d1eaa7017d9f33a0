"""The paper's slope-1 law, measured: CE with the vector against CE without it, over texts that do not fit.

    python experiments/slope_law.py OUT.json --device cuda --lengths 64 96 128 --n-texts 4 --lrs 0.1 0.01 --max-steps 2000

Kuratov et al. report that on texts too long to fit, a trained vector removes about the same number of nats C
from every text: CE_with = CE_without - C, a line of slope 1. That holds for vectors trained to their limit.
This script crams unseen and random texts of several lengths (one batch per length), then fits the least-squares
line through the texts that did not reach 100 % at every check of the run (from each text's recorded history:
loss per scored token x scored tokens), so the slope can be read against the budget: how many steps it takes
before the law appears. One JSON line per learning rate is appended to OUT as soon as that run ends.
Notebook 05 teaches this law; its fast CPU budget stops long before the vectors are at their limit.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from cramlab.engine.plain import cram
from cramlab.lab.plots import constant_gain_nats, fit_line
from cramlab.models.load import load_model
from cramlab.models.texts import get_texts


def slope_by_step(results) -> list[dict]:
    """The least-squares slope and mean gain over the not-fitted texts at every check of their histories."""
    not_fit = [r for r in results if not r.converged]
    if len(not_fit) < 2:
        return []
    rows = []
    for i in range(min(len(r.history) for r in not_fit)):
        without = [r.baseline_ce_nats for r in not_fit]
        with_vector = [r.history[i][1] * r.n_tokens for r in not_fit]   # loss per scored token x scored tokens
        slope, intercept = fit_line(without, with_vector)
        gains = [a - b for a, b in zip(without, with_vector)]
        rows.append(dict(step=not_fit[0].history[i][0], slope=slope, intercept=intercept,
                         mean_gain_nats=sum(gains) / len(gains), min_gain_nats=min(gains), max_gain_nats=max(gains)))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--device", default="auto")
    p.add_argument("--lengths", type=int, nargs="+", default=[64, 96, 128])
    p.add_argument("--n-texts", type=int, default=4, help="per source and length")
    p.add_argument("--sources", nargs="+", default=["unseen", "random"])
    p.add_argument("--lrs", type=float, nargs="+", default=[0.1])
    p.add_argument("--max-steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    lm = load_model(args.model, device=args.device)
    texts = [t for src in args.sources for n in args.lengths
             for t in get_texts(lm.tokenizer, src, n, n_texts=args.n_texts, seed=args.seed)]
    sources = {t.text_id: t.source for t in texts}
    weight = next(lm.model.parameters())      # where and in what dtype the model runs
    for lr in args.lrs:
        t0 = time.perf_counter()
        results = cram(lm, texts, max_steps=args.max_steps, lr=lr, seed=args.seed, patience=None, progress=False)
        seconds = time.perf_counter() - t0
        not_fit = [r for r in results if not r.converged]
        slope, intercept = fit_line([r.baseline_ce_nats for r in not_fit], [r.final_ce_nats for r in not_fit])
        row = dict(model=lm.spec.name, device=str(weight.device), dtype=str(weight.dtype),
                   card=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                   lengths=args.lengths, n_texts_per_source=args.n_texts, sources=args.sources, lr=lr,
                   max_steps=args.max_steps, seed=args.seed, patience=None, seconds=round(seconds, 1),
                   n_texts=len(results), n_not_fit=len(not_fit), final_slope=slope, final_intercept=intercept,
                   constant_gain_nats=constant_gain_nats([r.to_dict() for r in not_fit]) if not_fit else None,
                   by_step=slope_by_step(results),
                   texts=[dict(source=sources.get(r.text_id), n_tokens=r.n_tokens, converged=r.converged,
                               steps=r.steps, accuracy=r.teacher_forced_accuracy, ce_without_nats=r.baseline_ce_nats,
                               ce_with_nats=r.final_ce_nats, gain_nats=r.info_gain_nats) for r in results])
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"lr {lr}: {len(not_fit)}/{len(results)} did not fit, slope {slope:.3f}, C "
              f"{row['constant_gain_nats']}, {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
