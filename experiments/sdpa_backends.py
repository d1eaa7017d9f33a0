"""Which SDPA backend is fastest for the captured step's attention (SmolLM2: 9 query heads, 3 kv heads, head 64,
64 texts x 65 positions, bf16, causal, no mask): forward + backward of one layer captured in a CUDA graph and
replayed 200 times, timed with CUDA events, every backend in one process (GPU only).

    python experiments/sdpa_backends.py OUT.json

Cases: SDPA's own choice, each backend forced, with `enable_gqa` and with the key/value heads repeated (what
transformers' `repeat_kv` does). Differences are against the first case's output and query gradient.
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

B, Hq, Hkv, N, D = 64, 9, 3, 65, 64
dev = "cuda"
g = torch.Generator(device=dev).manual_seed(0)
q = torch.randn(B, Hq, N, D, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_(True)
k = torch.randn(B, Hkv, N, D, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_(True)
v = torch.randn(B, Hkv, N, D, device=dev, dtype=torch.bfloat16, generator=g).requires_grad_(True)
go = torch.randn(B, Hq, N, D, device=dev, dtype=torch.bfloat16, generator=g)
ref = None
out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "shape": [B, Hq, Hkv, N, D], "rows": []}
def run(backends, gqa):
    with sdpa_kernel(backends):
        if gqa:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            kk, vv = k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1)
            o = F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
        o.backward(go)
    return o
cases = [("default", None, True), ("flash", [SDPBackend.FLASH_ATTENTION], True),
         ("efficient", [SDPBackend.EFFICIENT_ATTENTION], True), ("cudnn", [SDPBackend.CUDNN_ATTENTION], True),
         ("flash repeat_kv", [SDPBackend.FLASH_ATTENTION], False), ("cudnn repeat_kv", [SDPBackend.CUDNN_ATTENTION], False),
         ("efficient repeat_kv", [SDPBackend.EFFICIENT_ATTENTION], False)]
for name, be, gqa in cases:
    be = be or [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH]
    row = {"case": name}
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                q.grad = k.grad = v.grad = None; o = run(be, gqa)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        q.grad = k.grad = v.grad = None
        with torch.cuda.graph(graph):
            o = run(be, gqa)
        for _ in range(5):
            graph.replay()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(200):
            graph.replay()
        e.record(); torch.cuda.synchronize()
        row["ms_fwd_bwd"] = s.elapsed_time(e) / 200
        row["x30_layers_ms"] = row["ms_fwd_bwd"] * 30
        if ref is None:
            ref = (o.detach().float(), q.grad.float())
        row["max_abs_out_diff"] = float((o.detach().float() - ref[0]).abs().max())
        row["max_abs_dq_diff"] = float((q.grad.float() - ref[1]).abs().max())
    except Exception as ex:
        row["error"] = f"{type(ex).__name__}: {str(ex)[:200]}"
    out["rows"].append(row); print(json.dumps(row), flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)
