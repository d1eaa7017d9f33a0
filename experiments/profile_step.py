"""Where the time of one cramming step goes: torch.profiler over steady-state steps, grouped by kind of op.

    python experiments/profile_step.py --device cpu --batches 1 8 --n-tokens 16          # this 2-core machine
    python experiments/profile_step.py --device cuda --batches 64 --n-tokens 64 --graph  # a GPU (embedded model)

For each batch size it runs the step of our engine (`cramlab.engine.fast.FastStep`: forward, backward to the
vectors, AdamW; plain = full logits, `--fused-loss` = chunked linear+cross-entropy) a few times to warm up,
then profiles `--steps` steps and prints (a) the share of self time per category (matmul, attention,
elementwise/normalisation, loss, optimizer, copies, other) and (b) the top ops. With `--graph` on a GPU,
the whole step is one CUDA graph and the profile shows only the kernels it launches. `--out` writes JSON.
The categories are a reading aid: the op table underneath is the evidence.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch

from cramlab.engine.fast import FastStep
from cramlab.engine.settings import CramSettings
from cramlab.models.load import load_model
from cramlab.models.texts import get_texts
from cramlab.science.bench import _sync, group_for, time_steps

CATEGORIES = [  # first match wins; names are aten ops on CPU and kernel names on a GPU
    ("matmul", ("aten::mm", "addmm", "bmm", "matmul", "linear", "gemm", "cutlass", "sm90_xmma", "nvjet", "cublas",
                "mmbackward")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss", "logsumexp")),
    ("attention", ("attention", "flash", "sdpa", "_efficient")),
    ("optimizer", ("adam", "foreach", "lerp", "_fused_adam")),
    ("copies", ("copy_", "cat", "clone", "to_copy", "contiguous", "index", "gather", "scatter", "embedding",
                "memcpy", "memset", "fill_", "zero_")),
    ("elementwise/norm", ("mul", "add", "silu", "sigmoid", "rsqrt", "pow", "mean", "neg", "sum", "div", "sub",
                          "exp", "where", "rms", "elementwise", "reduce", "vectorized", "unrolled")),
]


def category(name: str) -> str:
    low = name.lower()
    if low.startswith(("triton_poi", "triton_per", "triton_red")):
        return "elementwise/norm"     # torch.compile's fused kernels, whatever ops their names list
    for cat, keys in CATEGORIES:
        if any(k in low for k in keys):
            return cat
    return "other"


def profile_steps(fs, steps, device, n_top=15) -> dict:
    """torch.profiler over `steps` runs of a step object (graph replays when it is captured): self time per
    category and the top ops (on a GPU: kernels by device time; on a CPU: ops by self CPU time)."""
    use_cuda = device.type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if use_cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        fs.run(steps)
        _sync(device)
    events = list(prof.key_averages())
    if use_cuda:
        events = [e for e in events if getattr(e, "self_device_time_total", 0) > 0]

    def self_us(e):
        return getattr(e, "self_device_time_total", 0) if use_cuda else e.self_cpu_time_total

    total = sum(self_us(e) for e in events) or 1.0
    shares = defaultdict(float)
    for e in events:
        shares[category(e.key)] += self_us(e) / total
    top = sorted(events, key=self_us, reverse=True)[:n_top]
    return dict(busy_ms_per_step=total / steps / 1e3, kernels_per_step=sum(e.count for e in events) / steps,
                shares={k: round(v, 4) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
                top=[dict(op=e.key, calls_per_step=e.count / steps, ms_per_step=self_us(e) / steps / 1e3,
                          share=self_us(e) / total, category=category(e.key)) for e in top])


def profile_batch(lm, texts, batch, n_tokens, steps, device, fused_loss, graph, sink_token_id):
    rows = [t.token_ids[:n_tokens] for t in texts[:batch]]
    s = CramSettings()
    g = group_for(lm.model, rows, sink_token_id, s)
    fs = FastStep.from_group(lm.model, g, s, fused_loss=fused_loss)
    if graph:
        fs.capture()
    step_ms = time_steps(fs.run, steps, device) * 1e3       # 3 warm-up steps, then the timed ones
    return dict(batch=batch, n_tokens=n_tokens, step_ms=step_ms, graph=graph, fused_loss=fused_loss,
                **profile_steps(fs, steps, device))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--n-tokens", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--dtype", help="weights' dtype (default: bfloat16 on a GPU, float32 on a CPU)")
    ap.add_argument("--fused-loss", action="store_true")
    ap.add_argument("--graph", action="store_true", help="one CUDA graph per step (GPU only)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    lm = load_model(args.model, device=args.device, dtype=args.dtype)   # None: bf16 on a GPU, fp32 on a CPU
    dtype = lm.spec.dtype
    texts = get_texts(lm.tokenizer, "unseen", args.n_tokens, n_texts=max(args.batches), seed=0)
    label = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    report = dict(device=label, torch=torch.__version__, date=time.strftime("%Y-%m-%d"), model=args.model,
                  dtype=dtype, results=[])
    for b in args.batches:
        r = profile_batch(lm, texts, b, args.n_tokens, args.steps, device, args.fused_loss,
                          args.graph and device.type == "cuda", lm.spec.sink_token_id)
        report["results"].append(r)
        print(f"\n== {label}, {dtype}: batch {b} x {args.n_tokens} tokens, {r['step_ms']:.1f} ms/step "
              f"(profiled busy time {r['busy_ms_per_step']:.1f} ms/step)")
        print("   " + ", ".join(f"{k} {v:.0%}" for k, v in r["shares"].items()))
        for t in r["top"]:
            print(f"   {t['ms_per_step']:8.2f} ms {t['share']:6.1%} {t['calls_per_step']:6.1f}x  "
                  f"[{t['category']}] {t['op'][:70]}")
    if len(report["results"]) >= 2:
        a, b = report["results"][0], report["results"][-1]
        per_text = (b["step_ms"] / b["batch"]) / (a["step_ms"] / a["batch"])
        print(f"\nbatch {b['batch']} costs {b['step_ms'] / a['step_ms']:.2f}x batch {a['batch']} per step: "
              f"{1 / per_text:.2f}x the texts*steps/s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
