"""GPU checks that CI cannot run (no GPU there): the fast engine equals the plain loop, and it converges.

Run on a GPU machine: `python bench/gpu_check.py` (also wrapped by tests/test_gpu.py, `make test-gpu`).
Prints one JSON object per check; exits non-zero if a check fails.
"""
import json
import sys
import time

import torch

from cramlab.cram import cram
from cramlab.models import load_model
from cramlab.texts import get_texts


def check_fast_equals_plain(model="tiny-llama", steps=30):
    lm = load_model(model, device="cuda", dtype="float32")
    texts = get_texts(lm.tokenizer, "unseen", 24, n_texts=5, seed=0)
    a = cram(lm, texts, max_steps=steps, engine="plain", progress=False, decode=False)
    b = cram(lm, texts, max_steps=steps, engine="fast", progress=False, decode=False)
    diff = max((x.vectors - y.vectors).abs().max().item() for x, y in zip(a, b))
    scale = max(x.vectors.abs().max().item() for x in a)
    ok = diff <= 1e-3 * scale and all(x.steps == y.steps for x, y in zip(a, b))
    return dict(check="fast_equals_plain_fp32", model=model, max_abs_diff=diff, scale=scale, ok=ok)


def check_converges(n_texts=8, n_tokens=16, max_steps=1500):
    lm = load_model("smollm2-135m", device="cuda", dtype="bfloat16")
    texts = get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=n_texts, seed=0)
    out = {}
    for engine in ("fast", "plain"):
        torch.cuda.synchronize()
        t = time.perf_counter()
        res = cram(lm, texts, max_steps=max_steps, engine=engine, progress=False)
        torch.cuda.synchronize()
        out[engine] = dict(seconds=time.perf_counter() - t, converged=sum(r.converged for r in res),
                           greedy_exact=sum(bool(r.greedy_exact) for r in res), steps=[r.steps for r in res])
    ok = out["fast"]["converged"] == n_texts and out["fast"]["greedy_exact"] >= n_texts - 1
    return dict(check="embedded_bf16_converges", n_texts=n_texts, n_tokens=n_tokens, ok=ok, **out)


if __name__ == "__main__":
    failures = 0
    for fn in (check_fast_equals_plain, check_converges):
        r = fn()
        print(json.dumps(r), flush=True)
        failures += not r["ok"]
    sys.exit(1 if failures else 0)
