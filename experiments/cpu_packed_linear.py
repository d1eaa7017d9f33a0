"""Does oneDNN's pre-packed linear make the CPU step cheaper, and what does the demo's cram then cost?

    python experiments/cpu_packed_linear.py OUT.jsonl [--n-texts 4] [--max-steps 300]

`--kernels onednn` (cramlab.kernels.onednn.onednn_linears) routes every frozen float32 `nn.Linear` of a model through
`torch.ops.mkldnn._linear_pointwise` on a weight packed once by `torch.ops.mkldnn._reorder_linear_weight` (the
kernel torch's inductor uses for frozen CPU linears); the backward, the input's gradient only, runs the same op on
the packed transpose. Appends one JSON line per measurement as soon as it has it:
  kind "gemm":  the 18 x 576 by 576 x 1536 product (a one-text step's MLP shape) over 120 weights in turn, GFLOP/s
                and GB/s of weights read (cpu_skinny_gemm.rate), for F.linear, the packed op, and the backward's dY @ W each way;
  kind "cram":  the demo's text and the next unseen 16-token texts crammed alone, demo settings (fp32, lr 0.1,
                checked every step), the embedded model loaded with kernels "torch" and with "onednn": steps to
                fit, greedy decoding, seconds a step, and the cram's wall time.
"""
from __future__ import annotations

import argparse
import sys
import time

from cpu_skinny_gemm import rate
from jsonl_rows import row_writer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--n-texts", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=300)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from cramlab.engine.plain import cram
    from cramlab.kernels.onednn import packed_linear
    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts
    emit = row_writer(args.out)

    # The product alone.
    gen = torch.Generator().manual_seed(0)
    rows, k, n = 18, 576, 1536
    weights = [torch.randn(n, k, generator=gen) for _ in range(120)]
    x, dy = torch.randn(rows, k, generator=gen), torch.randn(rows, n, generator=gen)

    pack = torch.ops.mkldnn._reorder_linear_weight
    packed = [pack(w) for w in weights]
    packed_t = [pack(w.t().contiguous()) for w in weights]
    emit({"kind": "gemm", "rows": rows, "shape": [k, n], "F.linear": rate(F.linear, weights, x),
          "onednn_packed": rate(lambda a, w: packed_linear(a, w, None), packed, x),
          "backward dY @ W": rate(torch.matmul, weights, dy),
          "backward onednn_packed": rate(lambda a, w: packed_linear(a, w, None), packed_t, dy)})

    # The demo's cram, each way, in one process.
    for kernels in ("torch", "onednn"):
        lm = load_model("smollm2-135m", device="cpu", kernels=kernels)
        routed = sum("forward" in vars(m) for m in lm.model.modules() if isinstance(m, torch.nn.Linear))
        texts = get_texts(lm.tokenizer, "unseen", 16, n_texts=args.n_texts, seed=0)
        for text in texts:
            t = time.perf_counter()
            r = cram(lm, [text], max_steps=args.max_steps, lr=0.1, seed=0, check_every=1, progress=False)[0]
            emit({"kind": "cram", "kernels": lm.spec.kernels, "linears_routed": routed, "text_id": text.text_id,
                  "demo_text": text.text_id == texts[0].text_id, "steps": r.steps, "converged": r.converged,
                  "greedy_exact": r.greedy_exact, "loop_s": round(r.seconds, 2),
                  "s_per_step": round(r.seconds / max(r.steps, 1), 4), "cram_wall_s": round(time.perf_counter() - t, 2),
                  "final_ce_nats": r.final_ce_nats})
        lm = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
