"""How much faster `cramlab reproduce` ran its jobs than the authors'-style loop would have (issue 28).

Running the authors' loop over every job would cost days of device time, so the baseline is measured per
step and multiplied by the steps each text really took:

    baseline seconds = sum over texts and lengths of  steps(text, L) x step_seconds_baseline(L)

`step_seconds_baseline(L)` is `cramlab.science.bench.BaselineLoop` (one text at a time, fp32 weights with bf16
autocast on a GPU, full logits, `.item()` every step, as Kuratov et al.'s code) timed on one text cut to L
tokens, interpolated linearly between the measured lengths. The kit's seconds are the `job_seconds` of the
raw lines (one per job). The authors' code also reloads the model for every text (twice); the reload is
reported as a separate column, not folded into the ratio.

    python experiments/reproduce_baseline_ratio.py measure STEPS.json [--model PATH] [--device cuda]
    python experiments/reproduce_baseline_ratio.py ratio STEPS.json docs/data/reproduce [--out RATIO.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

LENGTHS = (1, 2, 4, 8, 16, 32, 64, 96, 128)


def measure(args) -> dict:
    import torch

    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts
    from cramlab.science.bench import BaselineLoop, time_steps
    t0 = time.perf_counter()
    lm32 = load_model(args.model, device=args.device, dtype="float32", use_cache=False, kernels="torch")
    reload_s = time.perf_counter() - t0
    row = get_texts(lm32.tokenizer, "unseen", max(LENGTHS), n_texts=1, seed=0)[0].token_ids
    autocast = torch.bfloat16 if args.device.startswith("cuda") else None
    steps = {}
    for n in LENGTHS:
        loop = BaselineLoop(lm32.model, row[:n], autocast_dtype=autocast, sink_token_id=lm32.spec.sink_token_id)
        steps[str(n)] = time_steps(lambda k: [loop.step() for _ in range(k)], args.steps, torch.device(args.device))
        print(f"L={n:4d}  baseline step {1000 * steps[str(n)]:.2f} ms", flush=True)
    card = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    out = dict(card=card, date=time.strftime("%Y-%m-%d"), torch=torch.__version__, model=lm32.spec.name,
               command="python " + " ".join(sys.argv), baseline="cramlab.science.bench.BaselineLoop, batch 1, "
               "fp32 weights" + (", bf16 autocast" if autocast else "") + ", .item() per step",
               steps_timed=args.steps, step_seconds=steps, model_load_seconds=reload_s)
    Path(args.steps_json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


def step_seconds_at(table: dict, n: int) -> float:
    """Linear interpolation of the measured step time between measured lengths (clamped at the ends)."""
    pts = sorted((int(k), v) for k, v in table.items())
    if n <= pts[0][0]:
        return pts[0][1]
    for (a, ta), (b, tb) in zip(pts, pts[1:]):
        if n <= b:
            return ta + (tb - ta) * (n - a) / (b - a)
    return pts[-1][1]


def text_steps(line: dict) -> list[tuple[int, int]]:
    """(length, steps) pairs a text trained at: one for a 2025 grid line, one per length for progressive."""
    if "records" in line:
        return [(r["n_tokens"], r["steps"]) for r in line["records"]]
    return [(line["n_tokens"], line["steps"])]


def ratio(args) -> dict:
    table = json.loads(Path(args.steps_json).read_text(encoding="utf-8"))
    out = dict(steps_file=args.steps_json, card=table["card"], baseline=table["baseline"], papers={})
    for paper in ("2025", "2026"):
        path = Path(args.raw_dir) / f"raw_{paper}.jsonl"
        if not path.exists():
            continue
        lines = [json.loads(s) for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
        jobs = {ln["job"]: ln["job_seconds"] for ln in lines}
        kit_s = sum(jobs.values())
        base_s = sum(steps * step_seconds_at(table["step_seconds"], n) for ln in lines for n, steps in text_steps(ln))
        reload_s = 2 * table["model_load_seconds"] * len(lines)
        cards = sorted({ln.get("card") for ln in lines})
        out["papers"][paper] = dict(texts=len(lines), jobs=len(jobs), kit_job_seconds=round(kit_s, 1),
                                    baseline_step_seconds=round(base_s, 1), ratio=round(base_s / kit_s, 1),
                                    baseline_reload_seconds=round(reload_s, 1),
                                    ratio_with_reloads=round((base_s + reload_s) / kit_s, 1), kit_cards=cards)
        p = out["papers"][paper]
        print(f"{paper}: {p['texts']} texts in {p['jobs']} jobs; kit {kit_s:,.0f} s of jobs ({', '.join(cards)}); "
              f"baseline loop {base_s:,.0f} s of steps ({base_s / 3600:.1f} h) -> {p['ratio']}x; with the authors' "
              f"model reloads (+{reload_s:,.0f} s) {p['ratio_with_reloads']}x")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("steps_json")
    m.add_argument("--model", default="smollm2-135m")
    m.add_argument("--device", default="cuda")
    m.add_argument("--steps", type=int, default=20)
    r = sub.add_parser("ratio")
    r.add_argument("steps_json")
    r.add_argument("raw_dir")
    r.add_argument("--out")
    args = ap.parse_args(argv)
    return measure(args) if args.cmd == "measure" else ratio(args)


if __name__ == "__main__":
    main()
