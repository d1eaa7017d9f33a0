"""oneDNN's pre-packed linears on CPUs (`--kernels onednn`, opt-in; `onednn_linears`).

Every frozen float32 `nn.Linear` of ONE model instance runs through oneDNN's linear on a weight packed once, the
kernel torch's inductor uses for frozen CPU linears: a one-text step of the embedded model is 1.4-1.8x cheaper on
a 2-core AVX-512 CPU (docs/performance.md, "--kernels onednn"). Owns: the packed linear, its autograd function,
the availability check. Does not own: choosing kernels (cramlab.kernels).
"""
from __future__ import annotations

import functools


@functools.cache
def onednn_unavailable() -> str | None:
    """None if oneDNN's packed linear runs here and equals F.linear on a small product, else why not."""
    try:
        import torch
        import torch.nn.functional as F
        if not torch.backends.mkldnn.is_available():
            return "this torch build has no oneDNN (mkldnn)"
        gen = torch.Generator().manual_seed(0)
        x, w = torch.randn(3, 8, generator=gen), torch.randn(5, 8, generator=gen)
        y = packed_linear(x, torch.ops.mkldnn._reorder_linear_weight(w), None)
        if not torch.allclose(y, F.linear(x, w), rtol=1e-5, atol=1e-5):
            return "oneDNN's packed linear disagrees with F.linear here"
    except Exception as exc:  # noqa: BLE001 - a missing op or a build without it: say which
        return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
    return None


def packed_linear(x, w_packed, bias):
    """oneDNN's linear of `x` (..., in) with a weight packed by `torch.ops.mkldnn._reorder_linear_weight`."""
    import torch
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    y = torch.ops.mkldnn._linear_pointwise(flat, w_packed, bias, "none", [], "")
    return y.reshape(*x.shape[:-1], y.shape[-1])


@functools.cache
def _packed_linear_function():
    """An autograd function: oneDNN's linear on the packed weight forward, on the packed transpose backward
    (the input's gradient only: the weights are frozen)."""
    import torch

    class PackedLinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w_packed, wt_packed, bias):
            ctx.wt_packed = wt_packed
            return packed_linear(x, w_packed, bias)

        @staticmethod
        def backward(ctx, dy):
            return packed_linear(dy, ctx.wt_packed, None), None, None, None

    return PackedLinearFunction


def onednn_linears(model) -> int:
    """Route every frozen float32 `nn.Linear` of `model` (this instance only) through oneDNN's linear on weights
    packed once (and their transposes, for the backward); returns how many."""
    import torch
    import torch.nn.functional as F
    function = _packed_linear_function()
    pack = torch.ops.mkldnn._reorder_linear_weight
    n = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if (not isinstance(module, torch.nn.Linear) or weight.dtype != torch.float32 or weight.requires_grad
                or weight.device.type != "cpu"):
            continue
        w = weight.detach()
        bias = None if module.bias is None else module.bias.detach()
        w_packed, wt_packed = pack(w), pack(w.t().contiguous())

        def forward(x, w=w, w_packed=w_packed, wt_packed=wt_packed, bias=bias):
            if x.dtype != torch.float32 or x.device.type != "cpu":   # e.g. under bf16 autocast: torch's linear
                return F.linear(x, w, bias)
            return function.apply(x, w_packed, wt_packed, bias)

        module.forward = forward
        n += 1
    return n

