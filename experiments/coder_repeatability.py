"""Does the model-driven coder's probability stepper give the same bits twice on this device? (issue 29)

    python experiments/coder_repeatability.py OUT.json [--device cuda] [--records 300] [--dtype bfloat16]
                                              [--kernels auto] [--deterministic] [--max-steps N]

The range coder (cramlab/poc/coder.py) is lossless only if the decoder sees exactly the probabilities the
encoder used. On an H100 in bfloat16 a 300-record batch of the demo corpus did not decode (2026-12-06,
docs/practice.md). This script runs the coder's own stepper (`_stepper`) twice over the same batch of demo
records, feeding both runs the records' true tokens, and compares the probability tables step by step: the
first step that differs, how many differ, the largest difference, and which rows. Then it encodes and decodes
the batch once (`measure_coder`) and records whether the round trip held. Settings to try, one per run:
`--dtype float32`, `--kernels torch` (no Liger), `--deterministic` (torch.use_deterministic_algorithms and
CUBLAS_WORKSPACE_CONFIG, set before CUDA starts); `--no-round-trip` compares the tables only. Writes one JSON object.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from jsonl_rows import write_result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--dtype", default=None, help="model dtype (default: the loader's for the device)")
    ap.add_argument("--kernels", default="auto")
    ap.add_argument("--deterministic", action="store_true")
    ap.add_argument("--max-steps", type=int, default=0, help="compare at most this many steps (0: all)")
    ap.add_argument("--no-round-trip", action="store_true", help="compare the tables only (no encode/decode)")
    args = ap.parse_args(argv)
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")     # must precede CUDA's start
    import torch

    from cramlab import load_model
    from cramlab.models.texts import encode
    from cramlab.poc.coder import _stepper, measure_coder
    from cramlab.poc.corpus import demo_documents
    from cramlab.poc.report import machine_info
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    lm = load_model("smollm2-135m", device=args.device, dtype=args.dtype, kernels=args.kernels)
    docs = demo_documents(n_per_group=(args.records + 2) // 3)[:args.records]
    rows = [encode(lm.tokenizer, d.text) for d in docs]
    n_steps = max(len(r) for r in rows)
    if args.max_steps:
        n_steps = min(n_steps, args.max_steps)

    def tables(run):
        steps = _stepper(lm, len(rows))
        probs = next(steps)
        for i in range(n_steps):
            yield probs
            if i + 1 < n_steps:
                probs = steps.send([r[i] if i < len(r) else 0 for r in rows])
        steps.close()

    t0 = time.perf_counter()
    differing, first, worst, rows_hit = 0, None, 0.0, set()
    for i, (a, b) in enumerate(zip(tables(0), tables(1))):
        if not (a == b).all():
            differing += 1
            first = i if first is None else first
            worst = max(worst, float(abs(a - b).max()))
            rows_hit.update(int(j) for j in (a != b).any(axis=1).nonzero()[0])
    compare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    coder = ({"round_trip_exact": None, "round_trip_errors": [], "encode_seconds": 0.0, "decode_seconds": 0.0}
             if args.no_round_trip else measure_coder(lm, rows, batch_size=len(rows)))
    out = {
        "command": "python experiments/coder_repeatability.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(), "device": lm.spec.device, "model_dtype": lm.spec.dtype,
        "kernels": getattr(lm.spec, "kernels", args.kernels), "deterministic": args.deterministic,
        "records": len(rows), "steps_compared": n_steps, "steps_differing": differing, "first_differing_step": first,
        "max_abs_probability_difference": worst, "rows_with_a_difference": len(rows_hit), "compare_seconds": compare_s,
        "coder_round_trip_exact": coder["round_trip_exact"], "coder_round_trip_errors": coder["round_trip_errors"],
        "coder_encode_seconds": coder["encode_seconds"], "coder_decode_seconds": coder["decode_seconds"],
        "coder_seconds": time.perf_counter() - t0,
    }
    write_result(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
