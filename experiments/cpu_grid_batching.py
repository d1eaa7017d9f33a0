"""Issue 30's "batch 04's lengths" lever on the CPU: is one right-padded batch of every length cheaper a step
than one batch per length?

    python experiments/cpu_grid_batching.py OUT.json [--kernels torch|onednn] [--steps 8]

Notebook 04 at full size crams 2 unseen texts at lengths 8, 16, 32 and 64, 600 steps each, with the plain engine
on the embedded model; lengths 16-64 do not fit, so they run all 600 steps and the steps are the notebook's time.
This script times the plain engine's step for 2 texts at 16, 32 and 64 tokens (one `cram` per length, as
`grid_search` runs them) and for the same six rows in ONE batch (`mixed_lengths=True`, padded to 64).
A step's seconds are (time of a 3S-step cram - time of an S-step cram) / 2S, so each cram's fixed cost (its
decode, the baseline and information gain) drops out; that fixed cost is reported too. Writes one JSON object.
Nothing else should run on the machine: seconds on a shared CPU mean nothing.
"""
from __future__ import annotations

import argparse
import time

from jsonl_rows import write_result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--kernels", default="torch", choices=["torch", "onednn"])
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args(argv)
    import torch

    from cramlab import cram, get_texts, load_model
    from cramlab.poc.report import machine_info
    lm = load_model("smollm2-135m", device="cpu", kernels=args.kernels)
    rows = [t.token_ids for t in get_texts(lm.tokenizer, "unseen", 64, n_texts=2, seed=0)]

    def timed(batch, mixed=False) -> dict:
        run = dict(lr=2e-2, seed=0, progress=False, mixed_lengths=mixed)
        cram(lm, batch, max_steps=2, **run)                                   # warm-up
        t0 = time.perf_counter()
        cram(lm, batch, max_steps=args.steps, **run)
        short = time.perf_counter() - t0
        t0 = time.perf_counter()
        cram(lm, batch, max_steps=3 * args.steps, **run)
        step = (time.perf_counter() - t0 - short) / (2 * args.steps)
        return {"step_s": step, "fixed_s": short - args.steps * step}

    out = {"command": f"python experiments/cpu_grid_batching.py OUT.json --kernels {args.kernels} "
                      f"--steps {args.steps}",
           "machine": machine_info(), "date": time.strftime("%Y-%m-%d"), "kernels": args.kernels,
           "threads": torch.get_num_threads(), "texts": "2 unseen texts, seed 0, plain engine, fp32"}
    for n in (16, 32, 64):
        out[f"per_length_2x{n}"] = timed([r[:n] for r in rows])
    out["one_batch_6_rows_16_32_64"] = timed([r[:n] for n in (16, 32, 64) for r in rows], mixed=True)
    out["per_length_step_sum_s"] = sum(out[f"per_length_2x{n}"]["step_s"] for n in (16, 32, 64))
    out["one_batch_over_per_length"] = out["one_batch_6_rows_16_32_64"]["step_s"] / out["per_length_step_sum_s"]
    write_result(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
