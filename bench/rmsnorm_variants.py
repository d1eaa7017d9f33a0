"""Why torch's fused RMSNorm gave gradients further from float32 than Liger's, and whether a variant of it keeps
its speed without that loss (GPU; docs/performance.md, GPU round six and seven).

    python bench/rmsnorm_variants.py OUT.jsonl [--model PATH.gguf] [--steps 40] [--repeats 3]

RMSNorm variants, each applied to every RMSNorm module of the Liger-patched embedded model (bf16):
  liger        Liger's RMSNorm (the engine's default): x in fp32, normalised, cast to bf16, times the weight;
               since round eight its backward runs one program per row (the same bits, faster)
  torch        F.rms_norm(x, w): one fused kernel; autograd asks it for no weight gradient
  torch-fp32   F.rms_norm(x.float(), w.float()).to(bf16): the same kernel in float32, plus two casts
  torch-order  F.rms_norm(x) * w: the fused kernel without weight, then the weight in bf16 (Llama's rounding
               order: normalise, cast, multiply)
Three measurements, each appended to OUT as JSON lines as soon as it is made:
  1. one RMSNorm alone (layer 0's weight, 4096 x 576 inputs, plain and with outlier channels): output and
     input-gradient error of each variant against the same function in float64;
  2. one whole engine step (8 texts x 32 tokens, one start): loss and gradient to the vector against the same
     step in float32 (as bench/gpu_check.check_fused_matches_unfused);
  3. the graphed step (64 texts x 64 tokens) of each variant, in turns (liger, v, liger, v, ...) over
     `--repeats` rounds, with the authors'-style baseline loop timed in the same process for the ratio.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_ladder import RMS_NORMS, norm_eps, norm_fn, set_liger_loss, set_norms, write

from cramlab.bench import BaselineLoop, group_for, time_steps
from cramlab.fast import FastStep
from cramlab.models import load_model
from cramlab.settings import CramSettings
from cramlab.step import prepare_group
from cramlab.texts import get_texts

VARIANTS = ("liger", "torch", "torch-fp32", "torch-order")   # gpu_ladder.norm_fn says what each is


def isolated(lm, out):
    """One RMSNorm (layer 0's weight) against float64, on 4096 x 576 inputs whose channels are scaled by
    exp(U(0, spread)): spread 0 is plain noise, 8 gives channels up to ~3000x the smallest (outlier channels).
    Each variant gets its own copy of the output gradient: Liger's backward writes the input gradient into it
    (in place), which a first version of this check missed (every variant after Liger then looked wrong)."""
    module = next(m for m in lm.model.modules() if type(m).__name__ in RMS_NORMS)
    eps = norm_eps(module)
    w = module.weight.detach()
    for spread in (0.0, 8.0):
        gen = torch.Generator(device="cuda").manual_seed(0)
        scale = torch.rand(w.shape[0], device="cuda", generator=gen).mul(spread).exp()
        x = (torch.randn(4096, w.shape[0], device="cuda", generator=gen) * scale).bfloat16()
        gy = torch.randn(x.shape, device="cuda", generator=gen).bfloat16()
        x64 = x.double().requires_grad_(True)
        y64 = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + eps) * w.double()
        (y64 * gy.double()).sum().backward()
        for variant in VARIANTS:
            xv = x.clone().requires_grad_(True)
            y = (norm_fn(variant, w, eps) or module.forward)(xv)
            y.backward(gy.clone())
            row = {"row": "isolated", "variant": variant, "spread": spread,
                   "out_rel_err": ((y.double() - y64).norm() / y64.norm()).item(),
                   "grad_rel_err": ((xv.grad.double() - x64.grad).norm() / x64.grad.norm()).item(),
                   "grad_cosine": F.cosine_similarity(xv.grad.double().flatten(), x64.grad.flatten(), dim=0).item()}
            print(row, flush=True)
            write(out, row)


def whole_step(args, out, n_texts=8, n_tokens=32):
    s, grads, start = CramSettings(), {}, None
    runs = [("float32", "torch", "float32", None), ("torch-bf16", "torch", "bfloat16", None)]
    runs += [(v, "liger", "bfloat16", v) for v in VARIANTS]
    for name, kernels, dtype, variant in runs:
        lm = load_model(args.model, device="cuda", dtype=dtype, kernels=kernels)
        if variant:
            set_norms(lm.model, variant)
        rows = [t.token_ids for t in get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=n_texts, seed=0)]
        g = prepare_group(lm.model, rows, s, lm.spec.sink_token_id, warm=start)
        start = g.start.clone() if start is None else start
        fs = FastStep.from_group(lm.model, g, s)
        loss_tok, _ = fs.token_losses()
        loss = loss_tok.mean(1)
        loss.sum().backward()
        grads[name] = (loss.detach().float(), fs.mem.grad.float().flatten(1))
        if name != "float32":
            (l32, g32), (lv, gv) = grads["float32"], grads[name]
            row = {"row": "whole_step", "variant": name, "n_texts": n_texts, "n_tokens": n_tokens,
                   "max_rel_loss_err": ((lv - l32).abs() / l32.abs()).max().item(),
                   "min_grad_cosine": F.cosine_similarity(gv, g32, dim=1).min().item(),
                   "mean_grad_cosine": F.cosine_similarity(gv, g32, dim=1).mean().item()}
            print(row, flush=True)
            write(out, row)
        del lm, fs
        torch.cuda.empty_cache()


def timed(args, out):
    lm32 = load_model(args.model, device="cuda", dtype="float32", use_cache=False, kernels="torch")
    lm = load_model(args.model, device="cuda", dtype="bfloat16", kernels="liger")
    rows = [t.token_ids for t in get_texts(lm.tokenizer, "unseen", 64, n_texts=64, seed=0)]
    sink = lm.spec.sink_token_id
    s = CramSettings(target_accuracy=1.0)
    loop = BaselineLoop(lm32.model, rows[0], autocast_dtype=torch.bfloat16, sink_token_id=sink)
    device = torch.device("cuda")
    base_s = time_steps(lambda k: [loop.step() for _ in range(k)], args.steps, device)
    write(out, {"row": "baseline", "step_ms": base_s * 1e3, "card": torch.cuda.get_device_name(0),
                "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")})
    loop = lm32 = None    # free the fp32 copy before the bf16 rows
    torch.cuda.empty_cache()
    g = group_for(lm.model, rows, sink, s)
    set_liger_loss(lm.model, True)
    for rep in range(args.repeats):
        for variant in VARIANTS:
            set_norms(lm.model, variant)
            fs = FastStep.from_group(lm.model, g, s)
            fs.maskless_attention = True
            fs.capture()
            step_s = time_steps(fs.run, args.steps, device)
            row = {"row": "graphed", "variant": variant, "repeat": rep, "step_ms": step_s * 1e3,
                   "ratio_vs_baseline": 64 * base_s / step_s}
            print(row, flush=True)
            write(out, row)
            del fs
            torch.cuda.empty_cache()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    write(args.out, {"row": "run", "command": "python bench/rmsnorm_variants.py " + " ".join(argv or sys.argv[1:])})
    lm = load_model(args.model, device="cuda", dtype="bfloat16", kernels="liger")
    isolated(lm, args.out)
    del lm
    whole_step(args, args.out)
    timed(args, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
