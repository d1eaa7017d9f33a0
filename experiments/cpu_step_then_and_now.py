"""Issue 30's question "what made notebook 04 slower than on 2026-11-28?": the plain cram step of 04's three failing
lengths (2 texts x 16, 32, 64 tokens, the embedded model, fp32, 2 threads), timed with whichever cramlab is first
on PYTHONPATH, so the same script times the code of 27111ff (the 2026-11-28 run) and today's.

    git worktree add /tmp/old 27111ff
    PYTHONPATH=/tmp/old python experiments/cpu_step_then_and_now.py     # then without PYTHONPATH; alternate

A step's seconds are (a 24-step cram - an 8-step cram) / 16, so each cram's fixed cost drops out. Prints one JSON line.
"""
import json
import time

import torch

import cramlab

try:                                                     # today's front door
    from cramlab import cram, get_texts, load_model
except ImportError:                                      # the layout of 2026-11-28
    from cramlab.cram import cram
    from cramlab.models import load_model
    from cramlab.texts import get_texts

lm = load_model("smollm2-135m")
rows = [t.token_ids for t in get_texts(lm.tokenizer, "unseen", 64, n_texts=2, seed=0)]
out = {"cramlab": cramlab.__file__, "torch": torch.__version__, "threads": torch.get_num_threads(),
       "time_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
for n in (16, 32, 64):
    batch = [r[:n] for r in rows]
    cram(lm, batch, max_steps=2, lr=2e-2, seed=0, progress=False)
    t0 = time.perf_counter()
    cram(lm, batch, max_steps=8, lr=2e-2, seed=0, progress=False)
    short = time.perf_counter() - t0
    t0 = time.perf_counter()
    cram(lm, batch, max_steps=24, lr=2e-2, seed=0, progress=False)
    out[f"step_s_2x{n}"] = (time.perf_counter() - t0 - short) / 16
out["step_s_sum"] = sum(out[f"step_s_2x{n}"] for n in (16, 32, 64))
print(json.dumps(out))
