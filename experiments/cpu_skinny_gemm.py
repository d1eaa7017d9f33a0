"""Why a one-text cramming step is slow on a small CPU: the rate of its skinny matrix products against the
machine's memory bandwidth.

    python experiments/cpu_skinny_gemm.py OUT.json [--rows 18]

A one-text step of the embedded model multiplies `rows` (sink + vector + 16 tokens = 18) rows by each of its
weight matrices, forward and backward, and reads every weight from memory each time. This script times the
MLP-shaped product (rows x 576) @ (576 x 1536) two ways, with 1 thread and with every thread:
  hot   one weight, reused (it stays in cache): the kernel's best
  cold  200 different weights in turn (700 MB in fp32, as a step's 425 MB of body weights), fp32 and bf16
and a 400 MB tensor copy for the memory bandwidth. Prints and writes GFLOP/s and GB/s of weights read.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch


def rate(fn, weights, x, repeats=3):
    for w in weights:
        fn(x, w)
    t = time.perf_counter()
    for _ in range(repeats):
        for w in weights:
            fn(x, w)
    seconds = (time.perf_counter() - t) / repeats
    n = sum(w.numel() for w in weights)
    return {"gflop_per_s": round(2 * x.shape[0] * n / seconds / 1e9, 1),
            "weight_gb_per_s": round(n * weights[0].element_size() / seconds / 1e9, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=18)
    args = ap.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    report = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "rows": args.rows,
              "shape": [576, 1536], "date": time.strftime("%Y-%m-%d %H:%M"), "by_threads": {}}
    weights = [torch.randn(1536, 576, generator=gen) for _ in range(200)]
    weights_bf16 = [w.bfloat16() for w in weights]
    x = torch.randn(args.rows, 576, generator=gen)
    big = torch.randn(100_000_000, generator=gen)
    copy = torch.empty_like(big)
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        forward = lambda x, w: x @ w.t()    # nn.Linear's product
        row = {"hot_fp32": rate(forward, weights[:1] * 200, x),
               "cold_fp32": rate(forward, weights, x),
               "cold_bf16": rate(forward, weights_bf16, x.bfloat16())}
        copy.copy_(big)
        t = time.perf_counter()
        for _ in range(5):
            copy.copy_(big)
        row["copy_gb_per_s_read_and_write"] = round(2 * big.numel() * 4 * 5 / (time.perf_counter() - t) / 1e9, 1)
        report["by_threads"][str(threads)] = row
    print(json.dumps(report, indent=1))
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
