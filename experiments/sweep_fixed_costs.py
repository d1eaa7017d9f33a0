"""What a sweep process pays before and besides its cramming, on one GPU: the fixed costs that keep two GPUs from
halving a sweep's wall time (issue 13's two-GPU target; docs/performance.md, "Two GPUs").

    python experiments/sweep_fixed_costs.py OUT.json [--model PATH.gguf] [--n-texts 48] [--n-tokens 48] [--steps 300]

Times, in one fresh process, in this order:
  import_s          importing torch, transformers and cramlab's sweep and cram modules
  first_load_s      load_model the first time in this process (from the model cache when it is filled)
  second_load_s     load_model again in the same process: the kit keeps loaded models (models.clear_cache), so
                    this shows that a rank loads once (about 0 s)
  cram_s            three cram() calls of the same batch (`--n-texts` x `--n-tokens`, `--steps` steps each; at 48
                    tokens and 150 steps no text fits, so every text runs every step: `converged` says so): the
                    first pays Triton's JIT of Liger's kernels (unless its on-disk cache is warm) and the first
                    graph capture
Then `first_extra_s` = cram_s[0] - cram_s[2]: the one-off cost of the first batch in a process. A sweep on G GPUs
pays import, load and first-batch costs once per rank, at the same time, while its batches split G ways.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

T0 = time.perf_counter()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n-texts", type=int, default=48)
    ap.add_argument("--n-tokens", type=int, default=48)
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args(argv)
    import torch

    import cramlab.science.sweep  # noqa: F401 - what `cramlab sweep` imports
    from cramlab.engine.plain import cram
    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts
    report = {"command": "python experiments/sweep_fixed_costs.py " + " ".join(argv or sys.argv[1:]),
              "card": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d %H:%M"), "import_s": round(time.perf_counter() - T0, 2)}
    for key in ("first_load_s", "second_load_s"):
        t = time.perf_counter()
        lm = load_model(args.model, device="cuda")
        torch.cuda.synchronize()
        report[key] = round(time.perf_counter() - t, 2)
    report["kernels"] = lm.spec.kernels
    rows = [t.token_ids for t in get_texts(lm.tokenizer, "unseen", args.n_tokens, n_texts=args.n_texts, seed=0)]
    report["cram_s"], report["converged"] = [], []
    for _ in range(3):
        t = time.perf_counter()
        results = cram(lm, rows, max_steps=args.steps, lr=0.1, progress=False, decode=False)
        torch.cuda.synchronize()
        report["cram_s"].append(round(time.perf_counter() - t, 2))
        report["converged"].append(sum(r.converged for r in results))
    report["first_extra_s"] = round(report["cram_s"][0] - report["cram_s"][2], 2)
    print(json.dumps(report, indent=1), flush=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
