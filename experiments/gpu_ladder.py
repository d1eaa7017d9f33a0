"""Issue 13's ladder in ONE process on ONE card: the authors'-style baseline, then each engine change, with
ratios, MFU over the bf16 matmul peak measured in the same run, the loss each configuration reaches from the
same start, and a kernel profile of the fused steps.

    python experiments/gpu_ladder.py OUT.jsonl [--model PATH.gguf] [--n-texts 64] [--n-tokens 64] [--steps 40]
        [--compile] [--torch-rmsnorm] [--llama] [--llama-batches 64 48 32]

Rows (embedded SmolLM2, 64 texts x 64 tokens, bf16 except the baseline; every row the same texts and start):
  baseline        the authors' loop: 1 text, fp32 weights + bf16 autocast, full logits, .item() per step,
                  transformers' own kernels (cramlab.science.bench.BaselineLoop)
  plain           cram.plain_loop, batched, torch kernels
  fast-eager      the fast engine without a graph, torch kernels, chunked torch loss
  fast-graph      + one CUDA graph per step
  +liger          + Liger's RMSNorm, RoPE and SwiGLU kernels (the loss still the torch chunked one)
  +liger-ce       + the chunked loss through Liger's cross-entropy kernel (one pass, no recompute)
  +causal-sdpa    + attention as SDPA with is_causal and its own GQA: no (N x N) mask, no repeat_kv
                  (transformers builds both under CUDA-graph capture; kernels.sdpa.use_causal_sdpa). The engine's
                  default; the rows above capture transformers' own attention.
  +norm-bwd-rows  + Liger's RMSNorm backward kernel launched one program per row for the frozen weights
                  (kernels.liger.row_grid_rms_norm; bit-identical). The engine's default; the
                  Liger rows above run Liger's own launch (one program per SM).
  +torch-rmsnorm  (--torch-rmsnorm) +causal-sdpa with every RMSNorm as torch's fused F.rms_norm in place of
                  Liger's: a probe (slower than +norm-bwd-rows, and its gradients are further from float32:
                  the git history of docs/performance.md, GPU round six)
  +compile-ce     (--compile) torch.compile (inductor) of the body in place of Liger's kernels, Liger CE loss
Then torch.profiler over graph replays of fast-graph, +liger, +liger-ce and +causal-sdpa (kernel time by
category), and with --llama the Llama-3.2-1B shape (random weights, N=512): fast-graph with torch kernels,
+liger, +liger-ce at the largest batch that fits. Every row is appended to OUT as one JSON line as soon as it is measured.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jsonl_rows import append_row

from cramlab.engine.fast import FastStep
from cramlab.engine.plain import plain_loop
from cramlab.engine.settings import CramSettings
from cramlab.kernels import apply_kernels
from cramlab.models.load import load_model
from cramlab.models.texts import get_texts
from cramlab.science.bench import (
    BaselineLoop,
    _sync,
    group_for,
    llama_1b_shaped,
    measure_peak_tflops,
    step_flops,
    time_steps,
)

write = append_row

_spec = importlib.util.spec_from_file_location("profile_step", ROOT / "experiments" / "profile_step.py")
profile_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_step)


def set_liger_loss(model, on: bool):
    model.get_output_embeddings()._cramlab_liger_loss = on


RMS_NORMS = ("LlamaRMSNorm", "LigerRMSNorm")   # the module classes an RMSNorm variant replaces


def norm_fn(variant, weight, eps):
    """The forward of one RMSNorm module under `variant` (None for "liger": the module's own). "torch" is torch's
    fused F.rms_norm (autograd asks it for no weight gradient, the weights being frozen); it rounds once, after the
    weight, not as Llama's RMSNorm (normalise, cast, then weight). "torch-fp32" is the same kernel in float32 plus
    two casts; "torch-order" the kernel without weight, then the weight in bf16 (Llama's order)."""
    shape = (weight.shape[0],)
    if variant == "torch":
        return lambda x: F.rms_norm(x, shape, weight, eps)
    if variant == "torch-fp32":
        w32 = weight.float()
        return lambda x: F.rms_norm(x.float(), shape, w32, eps).to(x.dtype)
    if variant == "torch-order":
        return lambda x: F.rms_norm(x, shape, None, eps) * weight
    if variant == "liger-stock":       # Liger's function as Liger launches it, whatever the engine patched in
        from liger_kernel.ops.rms_norm import LigerRMSNormFunction
        return lambda x: LigerRMSNormFunction.apply(x, weight, eps, 0.0, "llama", True, None)
    return None


def norm_eps(module) -> float:
    return getattr(module, "variance_epsilon", None) or module.eps


def set_norms(model, variant) -> int:
    """Every RMSNorm module of `model` runs `variant` ("liger" puts each module's own forward back). Returns how
    many modules it set. A probe, not an engine option (the git history of docs/performance.md, GPU rounds six and seven)."""
    n = 0
    for module in model.modules():
        if type(module).__name__ in RMS_NORMS:
            if not hasattr(module, "_own_forward"):
                module._own_forward = module.forward
            module.forward = norm_fn(variant, module.weight, norm_eps(module)) or module._own_forward
            n += 1
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n-texts", type=int, default=64)
    ap.add_argument("--n-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--profile-steps", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--torch-rmsnorm", action="store_true")
    ap.add_argument("--llama", action="store_true")
    ap.add_argument("--llama-tokens", type=int, default=512)
    ap.add_argument("--llama-batches", type=int, nargs="+", default=[64, 48, 32])
    args = ap.parse_args(argv)
    device = torch.device("cuda")
    card = torch.cuda.get_device_name(0)
    peak = measure_peak_tflops(device)
    head = dict(card=card, torch=torch.__version__, date=time.strftime("%Y-%m-%d"), peak_tflops=peak,
                command="python experiments/gpu_ladder.py " + " ".join(argv or sys.argv[1:]))
    write(args.out, dict(row="run", **head))
    lm32 = load_model(args.model, device="cuda", dtype="float32", use_cache=False, kernels="torch")
    lm_torch = load_model(args.model, device="cuda", dtype="bfloat16", kernels="torch")
    lm_liger = load_model(args.model, device="cuda", dtype="bfloat16", kernels="liger")
    texts = get_texts(lm_torch.tokenizer, "unseen", args.n_tokens, n_texts=args.n_texts, seed=0)
    rows = [t.token_ids for t in texts]
    sink = lm_torch.spec.sink_token_id
    s = CramSettings(target_accuracy=1.0)
    flops = step_flops(lm_torch.model, len(rows), args.n_tokens + 2, args.n_tokens)
    base_tps = None

    def record(config, batch, step_s, note, fs=None, model_flops=flops, shape="smollm2 64x64"):
        nonlocal base_tps
        tps = batch / step_s
        tf = model_flops / step_s / 1e12
        if config == "baseline":
            base_tps = tps
        loss = acc = None
        if fs is not None:
            now = fs.state.host()
            loss, acc = float(now["loss"][:batch].mean()), float(now["acc"][:batch].mean())
        r = dict(row="config", config=config, shape=shape, batch=batch, step_ms=step_s * 1e3,
                 texts_steps_per_s=tps,
                 ratio_vs_baseline=(tps / base_tps) if base_tps and shape.startswith("smollm2") else None,
                 tflops_per_s=tf, mfu=tf / peak, peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30,
                 mean_loss_after=loss, mean_acc_after=acc, note=note, card=card)
        write(args.out, r)
        torch.cuda.reset_peak_memory_stats()
        return r

    loop = BaselineLoop(lm32.model, rows[0], autocast_dtype=torch.bfloat16, sink_token_id=sink)
    step_s = time_steps(lambda k: [loop.step() for _ in range(k)], args.steps, device)
    record("baseline", 1, step_s, "authors' loop, fp32 + bf16 autocast, torch kernels",
           model_flops=step_flops(lm32.model, 1, args.n_tokens + 2, args.n_tokens))
    loop = lm32 = None    # free the fp32 copy before the bf16 rows
    torch.cuda.empty_cache()

    g_torch = group_for(lm_torch.model, rows, sink, s)
    plain = lambda k: plain_loop(lm_torch.model, g_torch, s.replace(max_steps=k, check_every=k), None,
                                 torch.autocast("cuda", enabled=False), None, list(range(len(rows))), None)
    record("plain", len(rows), time_steps(plain, args.steps, device), "cram.plain_loop, torch kernels")
    set_liger_loss(lm_torch.model, False)
    fs = FastStep.from_group(lm_torch.model, g_torch, s)
    record("fast-eager", len(rows), time_steps(fs.run, args.steps, device), "no graph, torch kernels", fs)
    profiles = {}

    def graphed(config, *a, **k):
        """One graphed configuration; an error is recorded as a row and the ladder goes on."""
        try:
            return _graphed(config, *a, **k)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - record why it failed, measure the rest
            write(args.out, {"row": "error", "config": config, "error": f"{type(exc).__name__}: {exc}"[:800]})
            torch.cuda.empty_cache()

    def _graphed(config, model, g, note, liger_loss, compile_body=False, shape_rows=rows, model_flops=flops,
                 shape="smollm2 64x64", steps=args.steps, do_profile=True, causal=False):
        set_liger_loss(model, liger_loss)
        fs = FastStep.from_group(model, g, s)
        if compile_body:
            fs.base = torch.compile(fs.base, dynamic=False)
        fs.maskless_attention = causal
        t = time.perf_counter()
        fs.capture()
        _sync(device)
        setup_s = time.perf_counter() - t
        r = record(config, len(shape_rows), time_steps(fs.run, steps, device), f"{note}; capture {setup_s:.1f} s",
                   fs, model_flops=model_flops, shape=shape)
        if do_profile:
            p = profile_step.profile_steps(fs, args.profile_steps, device, n_top=12)
            write(args.out, dict(row="profile", config=config, shape=shape, step_ms=r["step_ms"], **p))
            profiles[config] = p
        del fs
        torch.cuda.empty_cache()
        return r

    graphed("fast-graph", lm_torch.model, g_torch, "torch kernels, torch chunked loss", False)
    g_liger = group_for(lm_liger.model, rows, sink, s)
    n_norms = set_norms(lm_liger.model, "liger-stock")
    graphed("+liger", lm_liger.model, g_liger, "Liger RMSNorm/RoPE/SwiGLU, torch chunked loss", False)
    graphed("+liger-ce", lm_liger.model, g_liger, "Liger RMSNorm/RoPE/SwiGLU + Liger CE kernel in the loss", True)
    graphed("+causal-sdpa", lm_liger.model, g_liger, "+liger-ce, and SDPA with is_causal and its own GQA "
            "(no mask, no repeat_kv: kernels.sdpa.use_causal_sdpa)", True, causal=True)
    set_norms(lm_liger.model, "liger")
    graphed("+norm-bwd-rows", lm_liger.model, g_liger, f"+causal-sdpa with the backward of {n_norms} Liger "
            "RMSNorms launched one program per row (kernels.liger.row_grid_rms_norm; the engine's default)", True,
            causal=True)
    if args.torch_rmsnorm:
        set_norms(lm_liger.model, "torch")
        graphed("+torch-rmsnorm", lm_liger.model, g_liger, f"+causal-sdpa with {n_norms} RMSNorms as torch's "
                "F.rms_norm in place of Liger's", True, causal=True)
    if args.llama:
        del lm_torch, lm_liger, g_torch, g_liger
        torch.cuda.empty_cache()
        model = llama_1b_shaped(device)
        for config in ("fast-graph", "+liger", "+liger-ce"):
            if config == "+liger":
                apply_kernels(model, "liger")
            for batch in args.llama_batches:
                try:
                    gen = torch.Generator().manual_seed(1)
                    lrows = torch.randint(0, 128000, (batch, args.llama_tokens), generator=gen).tolist()
                    g = group_for(model, lrows, 0, s)
                    lflops = step_flops(model, batch, args.llama_tokens + 2, args.llama_tokens)
                    graphed(config, model, g, f"Llama-3.2-1B shape, random weights, batch {batch}",
                            config == "+liger-ce", shape_rows=lrows, model_flops=lflops,
                            shape=f"llama-1b {batch}x{args.llama_tokens}", steps=max(5, args.steps // 4),
                            do_profile=config != "+liger")
                    break
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    continue
    if args.compile:         # last: compiling the body may take minutes
        lm_c = load_model(args.model, device="cuda", dtype="bfloat16", kernels="torch")
        g_c = group_for(lm_c.model, rows, sink, s)
        graphed("+compile-ce", lm_c.model, g_c, "torch.compile(inductor) body, Liger CE loss", True,
                compile_body=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
