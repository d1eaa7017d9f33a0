"""Timings of the pieces around a step (graph capture, a short cram, progressive per length)."""
import time

import torch

from cramlab.cram import cram
from cramlab.models import load_model
from cramlab.search import progressive
from cramlab.texts import get_texts


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


t = time.perf_counter()
lm = load_model("smollm2-135m")
print(f"load {time.perf_counter() - t:.1f}s {lm.spec.device} {lm.spec.dtype}", flush=True)
texts = get_texts(lm.tokenizer, "unseen", 16, n_texts=8)
for engine, lr, steps in (("fast", 1e-2, 600), ("fast", 5e-2, 600), ("plain", 1e-2, 100)):
    sync()
    t = time.perf_counter()
    res = cram(lm, texts, max_steps=steps, lr=lr, engine=engine, progress=False, decode=False)
    sync()
    print(f"cram {engine} lr={lr} 8x16 max {steps}: {time.perf_counter() - t:.1f}s, converged "
          f"{sum(r.converged for r in res)}/8, steps {[r.steps for r in res]}", flush=True)
t0 = time.perf_counter()


def cb(n, results):
    accs = [round(r.teacher_forced_accuracy, 2) for r in results]
    print(f"  progressive n={n}: {time.perf_counter() - t0:.1f}s, acc {accs} steps {[r.steps for r in results]}",
          flush=True)


for lr in (1e-2, 1e-1):
    t0 = time.perf_counter()
    s = progressive(lm, texts[:8], start=2, max_tokens=16, lr=lr, max_steps=300, patience=100, check_every=5,
                    callback=cb)
    print(f"progressive lr={lr}: {[t.longest_tokens for t in s.texts]} in {time.perf_counter() - t0:.1f}s", flush=True)
