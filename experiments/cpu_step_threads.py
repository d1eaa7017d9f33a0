"""Why the notebook series runs two kernels at a time on a small CPU: seconds per cramming step of the
embedded model (1 text x 16 tokens, plain engine, fp32) with all threads in one process, with one thread,
and with one thread in each of two processes running at once.

    python experiments/cpu_step_threads.py OUT.json [--steps 20] [--n-tokens 16]

Prints and writes {"cpu": ..., "threads": ..., "one_process_all_threads_s": ..., "one_process_one_thread_s":
..., "two_processes_one_thread_each_s": [a, b], "throughput_ratio": ...}; the ratio is steps per second of
the two one-thread processes together over one process with every thread.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def step_seconds(threads: int, steps: int, n_tokens: int) -> float:
    """Seconds per step in this process with `threads` torch threads (after two warm-up steps)."""
    import torch
    torch.set_num_threads(threads)
    from cramlab.engine.plain import cram
    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts
    lm = load_model("smollm2-135m", device="cpu")
    ids = get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=1, seed=0)[0].token_ids
    cram(lm, [ids], max_steps=2, check_every=2, progress=False, decode=False, engine="plain")
    t0 = time.perf_counter()
    cram(lm, [ids], max_steps=steps, check_every=steps, progress=False, decode=False, engine="plain")
    return (time.perf_counter() - t0) / steps


def _child(threads: int, steps: int, n_tokens: int) -> subprocess.Popen:
    code = ("import sys; sys.path.insert(0, 'experiments'); from cpu_step_threads import step_seconds; "
            f"print(step_seconds({threads}, {steps}, {n_tokens}))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS=str(threads)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--n-tokens", type=int, default=16)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    alone_all = _child(cores, args.steps, args.n_tokens)
    all_threads = float(alone_all.communicate()[0].split()[-1])
    alone_one = _child(1, args.steps, args.n_tokens)
    one_thread = float(alone_one.communicate()[0].split()[-1])
    pair = [_child(1, args.steps, args.n_tokens) for _ in range(2)]
    both = [float(p.communicate()[0].split()[-1]) for p in pair]
    report = {"cpu": platform.processor() or platform.machine(), "threads": cores, "steps": args.steps,
              "n_tokens": args.n_tokens, "one_process_all_threads_s": round(all_threads, 4),
              "one_process_one_thread_s": round(one_thread, 4),
              "two_processes_one_thread_each_s": [round(x, 4) for x in both],
              "throughput_ratio": round(sum(1 / x for x in both) / (1 / all_threads), 3),
              "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(report, indent=1))
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
