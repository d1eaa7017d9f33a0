"""`cramlab bench`: our engine against a faithful re-creation of the authors' loop, same process, same card.

The baseline follows the engineering of the authors' public code: one text at a time, fp32 weights
(with bf16 autocast on a GPU), full-vocabulary logits at every position, `.item()` every step, and the
model loaded anew for every text (measured once and reported per text, so the run stays short). It
solves the same problem as our engine (same layout and protocol), so the ratio is engineering only.

Prints one JSON line per configuration and a table; `--out FILE` writes all of it as JSON.

Owns: the baseline loop, the timed configurations and the report (`run`). Does not own: the engines it
times (cramlab.engine.plain, cramlab.engine.fast), the command line (cramlab.cli.bench), the chart (cramlab.lab.plots).
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from cramlab.engine.fast import FastStep
from cramlab.engine.plain import plain_loop
from cramlab.engine.settings import CramSettings
from cramlab.engine.step import TextGroup, prepare_group


@dataclass
class BenchRow:
    config: str
    device: str
    n_texts: int
    n_tokens: int
    step_ms: float
    texts_steps_per_s: float
    tokens_steps_per_s: float
    flops_per_step: float            # counted with torch.utils.flop_counter (forward + backward to inputs)
    tflops_per_s: float
    mfu: float | None                # over the matmul rate measured in the same run (GPU bf16 8192³, CPU fp32 2048³)
    peak_mem_gib: float | None
    ratio_vs_baseline: float | None  # texts·steps/s over the baseline's
    note: str = ""

    def to_dict(self):
        return asdict(self)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_peak_tflops(device, n: int | None = None, reps: int | None = None) -> float:
    """The matmul rate the MFU column is computed against, measured in the same run: on a GPU a bf16 8192³
    product; on a CPU a float32 2048³ product (issue 30's reference: a large square product on the same cores)."""
    cuda = device.type == "cuda"
    n = n or (8192 if cuda else 2048)
    reps = reps or (10 if cuda else 5)
    dtype = torch.bfloat16 if cuda else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e12


def group_for(lm, rows, sink_token_id=0, settings: CramSettings | None = None) -> TextGroup:
    """What cram() prepares once per group of texts (step.prepare_group), for the bench's steps."""
    return prepare_group(lm, rows, settings or CramSettings(), sink_token_id)


class BaselineLoop:
    """One text, the authors' way: full logits, HF-style shifted loss, .item() every step."""

    def __init__(self, lm, row, autocast_dtype=None, lr=1e-2, sink_token_id=0, seed=0):
        self.lm = lm
        g = group_for(lm, [row], sink_token_id, CramSettings(seed=seed))
        self.prefix = g.sink_emb
        self.text_emb, self.first_pos = g.text_emb, g.first_pos
        self.labels = g.targets
        self.mem = torch.nn.Parameter(g.start.clone())
        self.opt = torch.optim.AdamW([self.mem], lr=lr, betas=(0.9, 0.9), weight_decay=0.01)
        self.autocast = torch.autocast(g.text_emb.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
        self.best_acc = 0.0
        self.steps = 0

    def step(self) -> float:
        with self.autocast:
            inputs = torch.cat([self.prefix, self.mem.to(self.text_emb.dtype), self.text_emb], 1)
            logits = self.lm(inputs_embeds=inputs, use_cache=False).logits      # all positions, full vocab
            scored = logits[:, self.first_pos:self.first_pos + self.labels.shape[1]].float()
            loss = F.cross_entropy(scored.reshape(-1, scored.shape[-1]), self.labels.reshape(-1))
        acc = (scored.argmax(-1) == self.labels).float().mean().item()           # host sync, every step
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        self.last_loss = loss.item()                                             # host sync, every step
        self.best_acc = max(self.best_acc, acc)
        self.steps += 1
        return acc


def step_flops(model, batch: int, seq_len: int, n_scored: int) -> float:
    """FLOPs of one step: forward + backward to the inputs only (the weights are frozen), ~2x forward.

    Forward = 2 x (body parameters) per input position + attention scores and mixing (4 x seq x width per
    position and layer, not halved for causality) + the LM head on the scored positions (2 x d x |V|).
    """
    cfg = model.config
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - emb.numel() - (0 if head is emb else head.numel())
    n_layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    width = getattr(cfg, "hidden_size", emb.shape[1])
    forward = batch * (2 * body * seq_len + 4 * seq_len * seq_len * width * n_layers
                       + 2 * n_scored * head.shape[0] * head.shape[1])
    return 2.0 * forward


def time_steps(run, n_steps, device, warmup=3) -> float:
    run(warmup)
    _sync(device)
    t = time.perf_counter()
    run(n_steps)
    _sync(device)
    return (time.perf_counter() - t) / n_steps


def bench_steady(lm32, lm, rows, device, n_steps, peak, baseline_autocast, label, sink_token_id=0,
                 reload_s=None, configs=("baseline", "plain", "fast-eager", "fast-graph")) -> list[BenchRow]:
    """Steady-state step time of each configuration on the same texts."""
    n_texts, n_tokens = len(rows), len(rows[0])
    out: list[BenchRow] = []
    base_tps = None

    def row(config, batch, step_s, flops, mem, note=""):
        tps = batch / step_s
        tf = flops / step_s / 1e12
        return BenchRow(config=config, device=label, n_texts=batch, n_tokens=n_tokens, step_ms=step_s * 1e3,
                        texts_steps_per_s=tps, tokens_steps_per_s=tps * n_tokens, flops_per_step=flops,
                        tflops_per_s=tf, mfu=(tf / peak) if peak else None, peak_mem_gib=mem,
                        ratio_vs_baseline=(tps / base_tps) if base_tps else None, note=note)

    def peak_mem():
        return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None

    def reset_mem():
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    if "baseline" in configs and lm32 is not None:
        reset_mem()
        loop = BaselineLoop(lm32, rows[0], autocast_dtype=baseline_autocast, sink_token_id=sink_token_id)
        flops = step_flops(lm32, 1, n_tokens + 2, n_tokens)
        step_s = time_steps(lambda k: [loop.step() for _ in range(k)], n_steps, device)
        note = "batch 1, fp32 weights" + (", bf16 autocast" if baseline_autocast else "") + ", .item() per step"
        if reload_s is not None:
            note += f"; + model reload {reload_s:.1f} s per text (x2 in the authors' code), not in step_ms"
        out.append(row("baseline", 1, step_s, flops, peak_mem(), note))
        base_tps = out[-1].texts_steps_per_s
        out[-1].ratio_vs_baseline = 1.0
    s = CramSettings(target_accuracy=1.0)
    g = group_for(lm, rows, sink_token_id, s)
    flops = step_flops(lm, n_texts, n_tokens + 2, n_tokens)

    if "plain" in configs:
        reset_mem()
        # The readable loop itself (cram.plain_loop), k steps per call, one check at the end of each call.
        plain = lambda k: plain_loop(lm, g, s.replace(max_steps=k, check_every=k), None,  # noqa: E731
                                     torch.autocast(device.type, enabled=False), None, list(range(n_texts)), None)
        out.append(row("plain", n_texts, time_steps(plain, n_steps, device), flops, peak_mem(),
                       "cram.plain_loop: batched, model dtype, full logits of scored positions, no host sync"))
    if "fast-eager" in configs:
        reset_mem()
        fs = FastStep.from_group(lm, g, s)
        out.append(row("fast-eager", n_texts, time_steps(fs.run, n_steps, device), flops, peak_mem(),
                       "fast engine without a graph: chunked linear+cross-entropy (no full logits)"))
    if "fast-graph" in configs and device.type == "cuda":
        reset_mem()
        fs = FastStep.from_group(lm, g, s)
        t_capture = time.perf_counter()
        fs.capture()
        _sync(device)
        t_capture = time.perf_counter() - t_capture
        out.append(row("fast-graph", n_texts, time_steps(fs.run, n_steps, device), flops, peak_mem(),
                       f"+ one CUDA graph per step (forward, backward, AdamW); capture {t_capture:.2f} s"))
    return out


def convergence_race(lm32, lm, rows, device, max_steps, lr, sink_token_id, reload_s) -> dict:
    """CPU target: wall time until every text converged, 8 sequential baseline runs vs one batched cram."""
    from cramlab.engine.plain import cram
    seq_steps, seq_ok = [], []
    t0 = time.perf_counter()
    for r in rows:
        loop = BaselineLoop(lm32, r, lr=lr, sink_token_id=sink_token_id)
        while loop.steps < max_steps and loop.best_acc < 1.0:
            loop.step()
        seq_steps.append(loop.steps)
        seq_ok.append(loop.best_acc >= 1.0)
    seq_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = cram(lm, rows, max_steps=max_steps, lr=lr, check_every=10, progress=False, decode=False, engine="plain")
    ours_s = time.perf_counter() - t0
    return dict(n_texts=len(rows), n_tokens=len(rows[0]), lr=lr, max_steps=max_steps,
                baseline_seconds=seq_s, baseline_seconds_with_reloads=seq_s + 2 * reload_s * len(rows),
                reload_seconds_per_load=reload_s, ours_seconds=ours_s, ratio=seq_s / ours_s,
                ratio_with_reloads=(seq_s + 2 * reload_s * len(rows)) / ours_s,
                baseline_steps=seq_steps, baseline_converged=seq_ok,
                ours_steps=[r.steps for r in res], ours_converged=[r.converged for r in res],
                same_outcome=seq_ok == [r.converged for r in res], ours_dtype=str(lm.dtype))


def llama_1b_shaped(device):
    """Random weights in Llama-3.2-1B's shapes (speed only: never a capacity claim)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                      rope_theta=500000.0, tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.requires_grad_(False).eval()
    return model


def print_table(rows: list[BenchRow]):
    print(f"{'config':<12}{'device':<26}{'texts':>6}{'N':>5}{'ms/step':>9}{'texts·st/s':>12}{'TFLOP/s':>9}"
          f"{'MFU':>7}{'mem GiB':>9}{'x base':>8}")
    for r in rows:
        mfu = f"{r.mfu * 100:.1f}%" if r.mfu is not None else "-"
        mem = f"{r.peak_mem_gib:.1f}" if r.peak_mem_gib is not None else "-"
        ratio = f"{r.ratio_vs_baseline:.0f}" if r.ratio_vs_baseline else "-"
        print(f"{r.config:<12}{r.device[:25]:<26}{r.n_texts:>6}{r.n_tokens:>5}{r.step_ms:>9.1f}"
              f"{r.texts_steps_per_s:>12.1f}{r.tflops_per_s:>9.2f}{mfu:>7}{mem:>9}{ratio:>8}")


def run(args) -> dict:
    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    label = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    report = dict(device=label, torch=torch.__version__, date=time.strftime("%Y-%m-%d"),
                  python=platform.python_version(),
                  command=args.command_line, rows=[], race=None, peak_tflops=None)
    peak = measure_peak_tflops(device)
    report["peak_tflops"] = peak
    rows_out: list[BenchRow] = []
    if "embedded" in args.parts:
        t0 = time.perf_counter()
        # the authors'-style baseline runs unpatched (no fused kernels), whatever our engine uses
        lm32 = load_model(args.model, device=str(device), dtype="float32", use_cache=False, kernels="torch")
        reload_s = time.perf_counter() - t0
        lm = load_model(args.model, device=str(device), dtype=args.dtype,   # None: bf16 on a GPU, fp32 on a CPU
                        kernels=args.kernels)
        report["ours_dtype"] = lm.spec.dtype
        report["ours_kernels"], report["baseline_kernels"] = lm.spec.kernels, lm32.spec.kernels
        texts = get_texts(lm.tokenizer, "unseen", args.n_tokens, n_texts=args.n_texts, seed=0)
        rows = [t.token_ids for t in texts]
        rows_out += bench_steady(lm32.model, lm.model, rows, device, args.steps, peak,
                                 torch.bfloat16 if device.type == "cuda" else None, label,
                                 sink_token_id=lm.spec.sink_token_id, reload_s=reload_s)
        report["reload_seconds"] = reload_s
        if args.race:
            race_texts = get_texts(lm.tokenizer, "unseen", args.race_tokens, n_texts=args.race_texts, seed=0)
            report["race"] = convergence_race(lm32.model, lm.model, [t.token_ids for t in race_texts], device,
                                              args.race_max_steps, args.race_lr, lm.spec.sink_token_id, reload_s)
        del lm32
    if "llama1b" in args.parts and device.type == "cuda":
        from cramlab.kernels import apply_kernels, resolve_kernels
        model = llama_1b_shaped(device)
        # The engine users get: `--kernels auto` patches Liger's kernels in, as load_model does for a Llama.
        report["llama1b_kernels"] = apply_kernels(model, resolve_kernels(args.kernels, str(device), "llama"))
        for batch in args.llama_batches:
            try:
                g = torch.Generator().manual_seed(1)
                rows = torch.randint(0, 128000, (batch, args.llama_tokens), generator=g).tolist()
                rows_out += bench_steady(None, model, rows, device, max(5, args.steps // 4), peak, None,
                                         f"{label} llama-1b-shaped ({report['llama1b_kernels']} kernels)",
                                         configs=("fast-graph",))
                break
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                continue
    report["rows"] = [r.to_dict() for r in rows_out]
    print_table(rows_out)
    if "ours_kernels" in report:
        print(f"kernels: ours {report['ours_kernels']}, baseline {report['baseline_kernels']} "
              f"(--kernels torch turns ours off)")
    if "llama1b_kernels" in report:
        print(f"llama-1b-shaped rows: {report['llama1b_kernels']} kernels (the engine's default for --kernels "
              f"{args.kernels})")
    if report.get("race"):
        print(json.dumps(report["race"]))
    if device.type == "cuda":
        print(f"bf16 matmul peak measured here: {peak:.0f} TFLOP/s")
    else:
        print(f"fp32 2048³ matmul rate measured here: {peak * 1e3:.1f} GFLOP/s (the MFU column is each step's rate "
              "over it)")
    return report
