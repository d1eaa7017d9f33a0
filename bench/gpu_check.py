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


def check_retirements_equal_plain(model="tiny-llama", device="cuda"):
    """Texts that retire at different checks (high lr, patience), so the graphed engine compacts its rows
    and re-captures: per text the same stop reason, step count, history steps and (fp32) vectors and losses
    as the plain loop."""
    lm = load_model(model, device=device, dtype="float32")
    texts = get_texts(lm.tokenizer, "unseen", 2, n_texts=20, seed=4)
    kw = dict(max_steps=160, check_every=4, patience=40, lr=0.5, progress=False, seed=2, decode=False)
    a = cram(lm, texts, engine="plain", **kw)
    b = cram(lm, texts, engine="fast", **kw)
    same = [(x.stop_reason, x.steps, [h[0] for h in x.history]) == (y.stop_reason, y.steps, [h[0] for h in y.history])
            for x, y in zip(a, b)]
    diff = max((x.vectors - y.vectors).abs().max().item() for x, y in zip(a, b))
    scale = max(x.vectors.abs().max().item() for x in a)
    loss_diff = max(abs(hx[1] - hy[1]) / max(abs(hx[1]), 1e-6) for x, y in zip(a, b)
                    for hx, hy in zip(x.history, y.history))
    distinct_steps = len({x.steps for x in a})
    ok = all(same) and diff <= 1e-3 * scale and loss_diff <= 1e-3 and distinct_steps > 1
    return dict(check="retirements_equal_plain_fp32", model=model, texts=len(texts), distinct_step_counts=distinct_steps,
                texts_equal=sum(same), max_abs_diff=diff, scale=scale, max_rel_loss_diff=loss_diff, ok=ok)


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
        out[engine]["exact_texts"] = [r.text_id for r in res if r.greedy_exact]
    # no allowance: every text the plain loop decodes back exactly, the fast engine must too
    missing = sorted(set(out["plain"]["exact_texts"]) - set(out["fast"]["exact_texts"]))
    ok = out["fast"]["converged"] == n_texts and not missing
    out["fast_misses_what_plain_decodes"] = missing
    return dict(check="embedded_bf16_converges", n_texts=n_texts, n_tokens=n_tokens, ok=ok, **out)


if __name__ == "__main__":
    # `python bench/gpu_check.py [OUT.jsonl]`: each check's JSON line is printed (and appended to OUT) as
    # soon as it finishes, so a run cut short keeps what it measured.
    out = open(sys.argv[1], "a") if len(sys.argv) > 1 else None
    failures = 0
    for fn in (check_fast_equals_plain, check_retirements_equal_plain, check_converges):
        r = dict(fn(), device=torch.cuda.get_device_name(0), torch=torch.__version__,
                 date=time.strftime("%Y-%m-%d"))
        print(json.dumps(r), flush=True)
        if out is not None:
            out.write(json.dumps(r) + "\n")
            out.flush()
        failures += not r["ok"]
    sys.exit(1 if failures else 0)
