"""What the `make demo` cram costs on this CPU under other settings: steps to fit and seconds, per text.

    python experiments/demo_settings.py OUT.jsonl [--configs fp32:0.1 fp32:0.2 bf16-weights:0.1 fp32:0.1:uniform ...]
                                            [--n-texts 4] [--max-steps 300]

The demo crams one unseen 16-token text (seed 0) into one vector with the plain engine in fp32 at lr 0.1 and
checks every step. This script crams that text and the next `--n-texts - 1` unseen texts, each alone (batch 1,
as the demo does), under each config `PRECISION:LR` or `PRECISION:LR:INIT`:
  fp32            the embedded model's weights in float32 (the demo)
  bf16-weights    the weights in bfloat16 (`load_model(dtype="bfloat16")`): half the bytes a step reads
  bf16-autocast   float32 weights, matmuls under bfloat16 autocast (the authors' GPU setting)
  bf16-polish     the bulk in bfloat16 weights until the vector fits there, then a float32 polish from that
                  vector (warm start, fresh AdamW, same lr) until it fits in float32: issue 30's mixed precision
INIT is the start vectors' draw: `randn` (randn * std of the embeddings, Kuratov et al.; the demo's) or `uniform`
(uniform[0, 0.02), Tarasov et al., whose lr 0.1 the demo uses).
It appends one JSON line per text and config as soon as it is measured: steps, converged, greedy_exact,
seconds of the loop and seconds a step. Run two at a time with OMP_NUM_THREADS=1 to halve the wall time;
seconds are then those of one thread beside another process.
"""
from __future__ import annotations

import argparse
import os
import sys

from jsonl_rows import row_writer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--configs", nargs="+", default=["fp32:0.1", "fp32:0.2", "bf16-weights:0.1", "bf16-autocast:0.1"])
    ap.add_argument("--n-texts", type=int, default=4)
    ap.add_argument("--n-tokens", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=300)
    args = ap.parse_args(argv)

    from cramlab.engine.plain import cram
    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts
    emit = row_writer(args.out)
    models = {}
    for config in args.configs:
        precision, lr, init = (config.split(":") + ["randn"])[:3]
        weights = "bfloat16" if precision in ("bf16-weights", "bf16-polish") else None
        for w in {weights, None} if precision == "bf16-polish" else {weights}:
            if w not in models:
                models[w] = load_model("smollm2-135m", device="cpu", dtype=w)
        lm = models[weights]
        texts = get_texts(lm.tokenizer, "unseen", args.n_tokens, n_texts=args.n_texts, seed=0)
        for text in texts:
            r = cram(lm, [text], max_steps=args.max_steps, lr=float(lr), init=init, seed=0, check_every=1,
                     progress=False, dtype="bfloat16" if precision == "bf16-autocast" else None)[0]
            bulk = None
            if precision == "bf16-polish":         # float32 from the bf16 vector: what decodes is float32's
                bulk = r
                r = cram(models[None], [text], max_steps=args.max_steps, lr=float(lr), init_vectors=bulk.vectors,
                         seed=0, check_every=1, progress=False)[0]
            steps, seconds = r.steps + (bulk.steps if bulk else 0), r.seconds + (bulk.seconds if bulk else 0.0)
            row = {"config": config, "precision": precision, "lr": float(lr), "init": init, "text_id": text.text_id,
                   "demo_text": text.text_id == texts[0].text_id, "steps": steps, "converged": r.converged,
                   "greedy_exact": r.greedy_exact, "teacher_forced_accuracy": r.teacher_forced_accuracy,
                   "loop_s": round(seconds, 2), "s_per_step": round(seconds / max(steps, 1), 4),
                   "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
            if bulk:
                row |= {"bulk_steps": bulk.steps, "bulk_converged": bulk.converged, "bulk_s": round(bulk.seconds, 2),
                        "polish_steps": r.steps, "polish_s": round(r.seconds, 2)}
            emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
