"""What a rebuild of the fast engine's step costs against what a step costs, per shape (issue 28's next lever).

    python experiments/rebuild_cost.py OUT.json [--device cuda] [--model smollm2-135m] [--steps 30]
                                       [--shapes 4096x24,1024x24,300x129,...]

The fast engine keeps a retired text's row, masked, until a rebuild pays (state copied, CUDA graph captured again:
engine/fast.py's `worth_rebuilding`, which prices a rebuild in row-tokens of work). Rebuilding often wastes fewer
rows but pays more captures: eight fixed sizes per octave took the 2025 random job (5,000 steps at up to 300 x 128
tokens) from 422.2 to 332.7 s on an H100, and the PoC's short-lived 4,096-chunk batches from 160.4 to 183.2 s
(docs/performance.md, "Both papers by one command"). A rule that weighs the two needs both prices per shape; this
script measures them. For each ROWSxTOKENS shape it builds a step of random texts under the 2025 preset (fp32
weights, bf16 autocast on a GPU, as `reproduce --paper 2025` runs), times the build (`FastStep` + its capture on a
GPU: a rebuild's cost less its copy of the live rows' state, a few small tensors) and then `--steps` steps (replays
on a GPU, eager steps on a CPU), and writes one JSON object: per shape build_seconds, step_ms, and their ratio
(`steps_per_rebuild`: how many steps a rebuild costs), all with the linear weights precast once to bfloat16 as
`fast_loop` runs them (kernels.precast); then the same shape built again with autocast casting the float32 weights
at every matmul (the engine before precast): `cast_each_step_ms` and `precast_speedup`, its ratio to step_ms, on
the same card in the same process. On a CPU it runs eagerly in float32 (no capture, nothing to cast), for its test.
"""
from __future__ import annotations

import argparse
import sys
import time


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """'4096x24,256x128' -> [(4096, 24), (256, 128)]; one line naming the fix on a bad item."""
    shapes = []
    for item in text.split(","):
        rows, _, tokens = item.strip().partition("x")
        if not (rows.isdigit() and tokens.isdigit() and int(rows) > 0 and int(tokens) > 1):
            raise SystemExit(f"rebuild_cost.py: shape {item!r} is not ROWSxTOKENS with ROWS >= 1 and TOKENS >= 2 "
                             f"(e.g. 256x128)")
        shapes.append((int(rows), int(tokens)))
    return shapes


def measure(lm, shape: tuple[int, int], s, n_steps: int, sink_token_id: int, seed: int = 0) -> dict:
    """Build one step of `shape` random texts, then run `n_steps` of it; seconds of each part (precast weights),
    then the step time with autocast casting the weights at every matmul."""
    precast = build_and_time(lm, shape, s, n_steps, sink_token_id, seed, precast=True)
    cast_each_step = build_and_time(lm, shape, s, n_steps, sink_token_id, seed, precast=False)
    return precast | dict(cast_each_step_ms=cast_each_step["step_ms"],
                          precast_speedup=float(f"{cast_each_step['step_ms'] / precast['step_ms']:.4g}"))


def build_and_time(lm, shape: tuple[int, int], s, n_steps: int, sink_token_id: int, seed: int, precast: bool) -> dict:
    import torch

    from cramlab.engine.fast import FastStep
    from cramlab.engine.step import autocast_for, base, prepare_group
    from cramlab.kernels.precast import autocast_dtype, precast_linears
    from cramlab.science.bench import _sync, time_steps

    rows, tokens = shape
    device = lm.get_input_embeddings().weight.device
    vocab = lm.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, tokens), generator=gen).tolist()
    on_gpu = device.type == "cuda"

    with autocast_for(lm, s.dtype, device), precast_linears(base(lm), autocast_dtype(device) if precast else None):
        g = prepare_group(lm, ids, s, sink_token_id)
        _sync(device)
        t0 = time.perf_counter()
        step = FastStep.from_group(lm, g, s)
        if on_gpu:
            step.capture()
        _sync(device)
        build_s = time.perf_counter() - t0
        step_s = time_steps(step.run, n_steps, device, warmup=2)   # the first replays settle clocks and caches
    return dict(rows=rows, tokens=tokens, build_seconds=float(f"{build_s:.4g}"), step_ms=float(f"{step_s * 1e3:.4g}"),
                steps_per_rebuild=float(f"{build_s / step_s:.4g}"), captured=on_gpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="smollm2-135m", help="registry name, .gguf file, or tiny-llama")
    ap.add_argument("--steps", type=int, default=30, help="timed steps a shape, after two untimed ones")
    ap.add_argument("--shapes", default="4096x24,1024x24,300x129,150x129,100x62,50x97,50x65,50x33,50x17,50x9")
    args = ap.parse_args(argv)
    shapes = parse_shapes(args.shapes)

    from jsonl_rows import write_result

    from cramlab import load_model
    from cramlab.poc.report import machine_info
    from cramlab.science import reproduce as rp

    lm0 = load_model(args.model, device=args.device, dtype="float32")
    on_gpu = str(lm0.spec.device).startswith("cuda")
    s = rp.paper_settings("2025", on_gpu=on_gpu)
    results = []
    for shape in shapes:
        results.append(measure(lm0.model, shape, s, args.steps, lm0.spec.sink_token_id))
        print(results[-1], file=sys.stderr, flush=True)
    write_result(args.out, dict(command="python experiments/rebuild_cost.py " + " ".join(sys.argv[1:] if argv is None
                                                                                         else argv),
                                machine=machine_info(), model=args.model, preset="grid-2025",
                                dtype=str(s.dtype), shapes=results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
