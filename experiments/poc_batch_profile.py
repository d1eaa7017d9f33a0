"""Where one PoC batch's seconds go (issue 29): cram, decodes, vector files, bookkeeping.

Plans the demo corpus as `cramlab poc --demo --per-vector auto` does, takes the first N chunks, and runs
`cramlab.poc.run.measure_batch` on them once under cProfile, with the CUDA step captures counted. Prints the
phases (cumulative seconds of the functions that make them), the steps the chunks took and the top of the
profile, and writes them to OUT.json.

    python experiments/poc_batch_profile.py OUT.json [--model PATH] [--device cuda] [--chunks 4096]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

PHASES = {                                       # phase -> function whose cumulative time makes it
    "cram (all steps, checks, retire, rebuilds)": ("plain.py", "cram"),
    "  of which step captures (CUDA graphs)": ("step.py", "capture"),
    "  of which graph replays (GPU waits land in the checks)": ("step.py", "run"),
    "  of which checks (host copies: GPU sync)": ("step.py", "check"),
    "  of which per-text snapshots at retirement": ("fast.py", "_snapshot"),
    "decodes (5 precisions)": ("run.py", "_decode_batch"),
    "vector files (one per chunk)": ("privacy.py", "save_vectors_without_text"),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--chunks", type=int, default=4096)
    ap.add_argument("--demo-size", type=int, default=334)
    ap.add_argument("--max-steps", type=int, default=None, help="override the PoC's step budget (default: its own)")
    args = ap.parse_args(argv)
    import torch

    from cramlab.models.load import load_model
    from cramlab.poc.corpus import write_demo_corpus
    from cramlab.poc.run import DEFAULT_CRAM, PER_VECTOR_AUTO_TOKENS, PocSettings, measure_batch, prepare
    cram = dict(DEFAULT_CRAM) | ({"max_steps": args.max_steps} if args.max_steps else {})
    settings = PocSettings(model=args.model, n_tokens=None, per_vector=PER_VECTOR_AUTO_TOKENS, cram=cram)
    lm = load_model(args.model, device=args.device)
    work = Path(tempfile.mkdtemp(prefix="poc-profile-"))
    planned, _, _ = prepare(lm.tokenizer, write_demo_corpus(work / "corpus", args.demo_size, 0), settings)
    batch = planned[:args.chunks]
    lengths = [len(p.token_ids) for p in batch]
    print(f"{len(planned)} chunks planned; profiling the first {len(batch)} (tokens {min(lengths)}-{max(lengths)}, "
          f"mean {statistics.mean(lengths):.1f}) on {args.device}", flush=True)
    measure_batch(lm, planned[:8], settings, work / "warm")          # first-call costs (kernels, graphs) apart
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    records = measure_batch(lm, batch, settings, work / "out")
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    phases = {}
    for label, (file, fn) in PHASES.items():
        hits = [(v[3], v[1]) for (f, _, name), v in stats.stats.items() if f.endswith(file) and name == fn]
        phases[label] = dict(seconds=round(sum(h[0] for h in hits), 2), calls=sum(h[1] for h in hits))
    steps = [r["steps"] for r in records]
    reasons = {}
    for r in records:
        reasons[r["stop_reason"]] = reasons.get(r["stop_reason"], 0) + 1
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
    out = dict(command="python " + " ".join(sys.argv), date=time.strftime("%Y-%m-%d"),
               card=torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
               model=lm.spec.name, model_dtype=lm.spec.dtype, kernels=lm.spec.kernels, chunks=len(batch),
               tokens_per_chunk_mean=statistics.mean(lengths), cram_settings=cram, wall_seconds=round(wall, 2),
               phases=phases, steps=dict(mean=statistics.mean(steps), median=statistics.median(steps), max=max(steps),
                                         at_budget=sum(s >= cram["max_steps"] for s in steps)),
               stop_reasons=reasons, exact_float32=sum(r["greedy_exact"] for r in records) / len(records),
               peak_gpu_memory_gib=(torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda")
                                    else None),
               profile_top=buf.getvalue().splitlines()[:60])
    Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"wall {wall:.1f} s for {len(batch)} chunks; exact {out['exact_float32']:.3f}; steps {out['steps']}; "
          f"stops {reasons}")
    for label, v in phases.items():
        print(f"{label:58s} {v['seconds']:8.2f} s  ({v['calls']} calls)")
    print("\n".join(out["profile_top"][:45]))


if __name__ == "__main__":
    main()
