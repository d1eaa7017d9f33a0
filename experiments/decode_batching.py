"""What decoding a padded group costs: one greedy loop per text length, or one batch to the longest? (issue 28)

    python experiments/decode_batching.py OUT.json [--device cuda] [--texts docs/data/reproduce/texts_2025.json]
                                          [--limit N] [--repeats N]

`cramlab reproduce --paper 2025` crams its 300 random texts (drawn lengths 2..127, 90 distinct on the kit's texts)
in one right-padded batch. Until eab308d the engine then decoded them one greedy loop per length; now
`_decode_into` decodes the group once, to its longest text, and cuts each row to its own length (the old way is
`_decode_into` called on each length's rows alone). This script times both arrangements on the same rows and
vectors, with the run's model dtype (float32 weights, as `reproduce --paper 2025` loads them), and checks that every
row decodes to the same text either way. The vectors are random (the embedding's scale, seed 0): a greedy step
costs the same whatever the vector holds. Writes one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from types import SimpleNamespace

from jsonl_rows import write_result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--texts", default="docs/data/reproduce/texts_2025.json")
    ap.add_argument("--limit", type=int, default=0, help="the first N random texts only (0: all)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed runs of each arrangement (after a small warm-up decode)")
    args = ap.parse_args(argv)
    import torch

    from cramlab import load_model
    from cramlab.engine.plain import _decode_into
    from cramlab.poc.report import machine_info
    from cramlab.science import reproduce as rp
    from cramlab.science.bench import _sync

    lm0 = load_model("smollm2-135m", device=args.device, dtype="float32")
    device = lm0.spec.device
    lm, tok = lm0.model, lm0.tokenizer
    texts = json.loads(open(args.texts, encoding="utf-8").read())["random"]
    rows = [t["token_ids"] for n in sorted(texts, key=int) for t in texts[n]]
    rows = rows[:args.limit] if args.limit else rows
    s = rp.paper_settings("2025", on_gpu=device.startswith("cuda"))
    sink = lm0.spec.sink_token_id if s.layout == "sink-first" else None
    longest = max(len(r) for r in rows)
    ids = torch.tensor([r + [r[-1]] * (longest - len(r)) for r in rows], device=device)
    std = lm.get_input_embeddings().weight.float().std().item()
    vectors = torch.randn(len(rows), s.n_mem, lm0.spec.d, generator=torch.Generator().manual_seed(0)) * std
    vectors = vectors.to(device)
    group = SimpleNamespace(ids=ids)

    def per_length():          # the engine before eab308d
        results = [SimpleNamespace(n_tokens=len(r), token_ids=r) for r in rows]
        by_length: dict[int, list[int]] = {}
        for i, res in enumerate(results):
            by_length.setdefault(res.n_tokens, []).append(i)
        for n, members in by_length.items():
            idx = torch.tensor(members, device=device)
            _decode_into(lm, tok, [results[i] for i in members], SimpleNamespace(ids=ids[idx, :n]), vectors[idx], s,
                         sink)
        return results

    def one_batch():           # the engine now
        results = [SimpleNamespace(n_tokens=len(r), token_ids=r) for r in rows]
        _decode_into(lm, tok, results, group, vectors, s, sink)
        return results

    timings: dict[str, list[float]] = {"per_length": [], "one_batch": []}
    outcome = {}
    with torch.no_grad():
        warm = [SimpleNamespace(n_tokens=4, token_ids=ids[0, :4].tolist()) for _ in range(2)]     # CUDA start, kernels
        _decode_into(lm, tok, warm, SimpleNamespace(ids=ids[:2, :4]), vectors[:2], s, sink)
        for _ in range(args.repeats):
            for name, fn in (("one_batch", one_batch), ("per_length", per_length)):
                _sync(torch.device(device))
                t0 = time.perf_counter()
                res = fn()
                _sync(torch.device(device))
                timings[name].append(time.perf_counter() - t0)
                outcome[name] = [r.decoded_text for r in res]
    lengths = sorted({len(r) for r in rows})
    same = sum(a == b for a, b in zip(outcome["per_length"], outcome["one_batch"]))
    out = {
        "command": "python experiments/decode_batching.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(), "device": device, "model_dtype": lm0.spec.dtype, "layout": s.layout,
        "protocol": s.protocol, "texts": len(rows), "distinct_lengths": len(lengths), "longest": longest,
        "per_length_greedy_loops": len(lengths),
        "per_length_greedy_steps": sum(n - int(s.protocol == "hc") for n in lengths),
        "one_batch_greedy_steps": longest - int(s.protocol == "hc"),
        "seconds_per_length": timings["per_length"], "seconds_one_batch": timings["one_batch"],
        "speedup_last_run": timings["per_length"][-1] / timings["one_batch"][-1],
        "rows_decoded_the_same": same,
    }
    write_result(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
