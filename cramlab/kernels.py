"""Faster kernels for a loaded model: the `kernels` option (auto | liger | onednn | torch), Liger Kernel on GPUs,
oneDNN's pre-packed linears on CPUs.

Owns: choosing which kernels a model runs (`resolve_kernels`), patching ONE loaded model instance with
Liger Kernel's Triton kernels (RMSNorm, RoPE, SwiGLU) for Llama-family models (`apply_kernels`), the
maskless causal attention of a captured step (`use_causal_sdpa`, `causal_unpadded`), and the launch of Liger's
RMSNorm backward kernel for frozen weights (`row_grid_rms_norm`); on CPUs, routing one instance's linears
through oneDNN's packed linear (`onednn_linears`).
Does not own: loading models (models.py), timing them (bench.py), or what the loss is (fast.py). For the
fast engine's chunked loss on a patched model it marks the patched model's LM head, and fast.py then runs
Liger's Triton cross-entropy kernel over each chunk of logits (`fast.LigerLinearCrossEntropy`).

Liger (`pip install 'cramlab[gpu]'`) is optional: CPU machines and CI never need it. "auto" uses it on a
CUDA device when it imports and the model is Llama-family, "liger" requires it (one-line error otherwise),
"torch" leaves the model as transformers built it.

"onednn" (CPU, opt-in; `onednn_linears`) runs every float32 `nn.Linear` of the model through oneDNN's linear on
a weight packed once, the kernel torch's inductor uses for frozen CPU linears: a one-text step of the embedded
model is 1.4-1.8x cheaper on a 2-core AVX-512 CPU (docs/performance.md, "--kernels onednn"). It is not "auto"'s choice
yet: it rounds differently from torch's in the last bits, which moves fp32 trajectories, and it keeps two
packed copies of each weight beside the original.

Per instance, not per process: `apply_liger_kernel_to_llama(rope=True, ...)` swaps module-level names in
transformers' `modeling_llama` (the RMSNorm and MLP classes, the RoPE function), which would also change
every Llama model loaded later in the same process (a CPU one, or the unpatched baseline of a side-by-side
bench). Here Liger patches the instance's RMSNorm and MLP modules (its `model=` path) with `rope=False`,
the class names it swapped are put back, and RoPE is routed per attention module: a forward pre-hook on
each patched attention module marks "this module is fused" while it runs, and a dispatcher installed once
in place of `modeling_llama.apply_rotary_pos_emb` calls Liger's RoPE only then, the original otherwise.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib

from .errors import BadInputError, DeviceError

KERNEL_CHOICES = ("auto", "liger", "onednn", "torch")
LIGER_FAMILIES = ("llama",)      # config.model_type values patched with apply_liger_kernel_to_llama
GPU_EXTRA_HINT = "pip install 'cramlab[gpu]'"

_FUSED_ROPE_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("cramlab_fused_rope", default=False)
_ROPE_STATE: dict = {}           # "original": transformers' apply_rotary_pos_emb, "fused": Liger's
_CAUSAL_UNPADDED: contextvars.ContextVar[bool] = contextvars.ContextVar("cramlab_causal_unpadded", default=False)
CAUSAL_SDPA = "cramlab_causal_sdpa"   # the attention implementation `use_causal_sdpa` registers


@functools.cache
def liger_import_error() -> str | None:
    """None if Liger Kernel imports here, else the reason in one line."""
    try:
        importlib.import_module("liger_kernel.transformers")
    except Exception as exc:  # noqa: BLE001 - ImportError, or Liger refusing this transformers version
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"{type(exc).__name__}: {first}"
    return None


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


def check_kernels_option(kernels: str | None, device: str) -> str:
    """The option normalised ('auto' | 'liger' | 'onednn' | 'torch'), refused in one line before any model is
    loaded if it cannot be honoured here: 'liger' needs the liger-kernel package and a CUDA device, 'onednn' a CPU
    whose torch runs oneDNN's packed linear."""
    choice = "auto" if kernels is None else str(kernels).strip().lower()
    if choice not in KERNEL_CHOICES:
        raise BadInputError(f"unknown kernels option {kernels!r}; use auto, liger, onednn or torch")
    if choice == "onednn":
        if str(device) != "cpu":
            raise DeviceError(f"--kernels onednn packs weights for oneDNN's CPU kernels, not for {device}; "
                              "use --kernels auto or torch")
        reason = onednn_unavailable()
        if reason is not None:
            raise BadInputError(f"--kernels onednn is not available here ({reason}); use --kernels torch")
    if choice == "liger":
        reason = liger_import_error()
        if reason is not None:
            raise BadInputError(f"--kernels liger needs the liger-kernel package ({reason}); run "
                                f"`{GPU_EXTRA_HINT}` or use --kernels torch")
        if not str(device).startswith("cuda"):
            raise DeviceError(f"--kernels liger runs Triton kernels on a CUDA GPU, not on {device}; "
                              "use --kernels auto or torch")
    return choice


def resolve_kernels(kernels: str | None, device: str, family: str) -> str:
    """'liger', 'onednn' or 'torch': what a model of `family` (config.model_type) on `device` runs for `kernels`."""
    choice = check_kernels_option(kernels, device)
    if choice in ("torch", "onednn"):
        return choice
    if family not in LIGER_FAMILIES:
        if choice == "liger":
            raise BadInputError(f"--kernels liger is wired for Llama-family models here, not {family!r}; "
                                "use --kernels auto or torch")
        return "torch"
    if choice == "auto":
        return "liger" if str(device).startswith("cuda") and liger_import_error() is None else "torch"
    return "liger"


def apply_kernels(model, kernels: str) -> str:
    """Patch `model` in place for the resolved choice ('liger' | 'onednn' | 'torch'); returns the choice."""
    if kernels == "torch":
        return "torch"
    if kernels == "onednn":
        if onednn_linears(model) == 0:
            raise BadInputError("--kernels onednn packs frozen float32 linear weights and this model has none; "
                                "use --dtype float32 or --kernels torch")
        return "onednn"
    if kernels != "liger":
        raise BadInputError(f"apply_kernels takes a resolved choice (liger, onednn or torch), not {kernels!r}")
    from liger_kernel.transformers import apply_liger_kernel_to_llama, liger_rotary_pos_emb
    from transformers.models.llama import modeling_llama
    swapped = ("LlamaRMSNorm", "LlamaMLP", "apply_rotary_pos_emb")
    saved = {name: getattr(modeling_llama, name) for name in swapped}
    try:
        apply_liger_kernel_to_llama(rope=False, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False, model=model)
    finally:
        for name, value in saved.items():   # later models are built from transformers' own classes
            setattr(modeling_llama, name, value)
    fuse_rope(model, liger_rotary_pos_emb)
    launch_norm_backward_per_row(model)
    head = model.get_output_embeddings()
    if head is not None and getattr(head, "bias", None) is None:
        head._cramlab_liger_loss = True      # fast.chunked_loss then picks Liger's kernel for the loss
    return "liger"


# The arguments of Liger's `_rms_norm_backward_kernel` that `row_grid_rms_norm` launches it with (Liger 0.8.5).
_NORM_BACKWARD_ARGS = ("dY_ptr", "dY_row_stride", "dX_ptr", "dX_row_stride", "X_ptr", "X_row_stride", "X_dtype",
                       "W_ptr", "W_row_stride", "RSTD_ptr", "RSTD_row_stride", "dW_ptr", "dW_row_stride", "n_rows",
                       "n_cols", "offset", "rows_per_program", "casting_mode", "elementwise_affine", "BLOCK_SIZE",
                       "COMPUTE_DW")


@functools.cache
def row_grid_rms_norm():
    """Liger's RMSNorm autograd function with one change: when the weight is frozen, its backward kernel runs
    one program per row instead of one per SM. None where this Liger's kernel takes other arguments.

    Why: Liger launches the RMSNorm backward with one program per SM, each looping over its share of the rows,
    so that each program can sum its part of the weight's gradient. Liger skips that gradient for a frozen
    weight but keeps the launch: on an H200 (132 SMs, 4 warps each) a program walks 32 rows of a 64 × 66-row
    step one after another, 24 µs a call where torch's RMSNorm backward takes 7 µs. With one program per row
    (as Liger's forward already runs) each row is the same arithmetic in the same kernel, so dX is bit-identical
    (tests/test_kernels.py checks it on a GPU)."""
    import torch
    from liger_kernel import ops
    from liger_kernel.ops import rms_norm as liger_norm
    kernel = getattr(liger_norm, "_rms_norm_backward_kernel", None)
    if (getattr(ops, "LigerRMSNormFunction", None) is not liger_norm.LigerRMSNormFunction
            or tuple(getattr(kernel, "arg_names", ())) != _NORM_BACKWARD_ARGS):
        return None

    class RowGridRMSNormFunction(liger_norm.LigerRMSNormFunction):
        @staticmethod
        def backward(ctx, dY):
            if not ctx.elementwise_affine or ctx.needs_input_grad[1]:   # the weight trains: Liger's own launch
                return liger_norm.LigerRMSNormFunction.backward(ctx, dY)
            X, W, RSTD = ctx.saved_tensors                               # X: (rows, n_cols), as Liger saved it
            shape = dY.shape
            dY = dY.contiguous().view(-1, shape[-1])
            n_rows, n_cols = dY.shape
            dX = dY if ctx.in_place else torch.empty_like(dY)          # Liger's in_place: dX overwrites dY
            with liger_norm.device_context(X.device):
                kernel[(n_rows,)](dY, dY.stride(0), dX, dX.stride(0), X, X.stride(0),
                                  liger_norm.torch_to_triton_dtype[X.dtype], W, W.stride(0), RSTD, RSTD.stride(0),
                                  None, 0, n_rows, n_cols, ctx.offset, 1, ctx.casting_mode,
                                  elementwise_affine=True, BLOCK_SIZE=ctx.BLOCK_SIZE, COMPUTE_DW=False,
                                  num_warps=ctx.num_warps)
            return dX.view(*shape), None, None, None, None, None, None

    return RowGridRMSNormFunction


def _row_grid_norm_forward(self, hidden_states):
    return row_grid_rms_norm().apply(hidden_states, self.weight, self.variance_epsilon, self.offset,
                                     self.casting_mode, self.in_place, self.row_mode)


def launch_norm_backward_per_row(model) -> int:
    """Route every Liger-patched RMSNorm of `model` through `row_grid_rms_norm`; returns how many. Leaves the
    model as Liger patched it (0) where that function is None for this Liger."""
    if row_grid_rms_norm() is None:
        return 0
    n = 0
    for module in model.modules():
        if module._get_name() == "LigerRMSNorm" and getattr(module, "casting_mode", None) is not None:
            module.forward = _row_grid_norm_forward.__get__(module, type(module))
            n += 1
    return n


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


def fuse_rope(model, fused_rope) -> int:
    """Route `model`'s RoPE (and only this model's) through `fused_rope`; returns the attention modules
    routed. `fused_rope` takes the arguments of transformers' `apply_rotary_pos_emb(q, k, cos, sin)`."""
    from transformers.models.llama import modeling_llama
    if "original" not in _ROPE_STATE:
        _ROPE_STATE["original"] = modeling_llama.apply_rotary_pos_emb
        modeling_llama.apply_rotary_pos_emb = _dispatch_rope
    _ROPE_STATE["fused"] = fused_rope
    routed = 0
    for module in model.modules():
        if isinstance(module, modeling_llama.LlamaAttention) and not getattr(module, "_cramlab_fused_rope", False):
            module.register_forward_pre_hook(_enter_fused)
            module.register_forward_hook(_leave_fused, always_call=True)
            module._cramlab_fused_rope = True
            routed += 1
    return routed


def _enter_fused(module, args):
    module._cramlab_rope_token = _FUSED_ROPE_ACTIVE.set(True)


def _leave_fused(module, args, output):
    token = module.__dict__.pop("_cramlab_rope_token", None)
    if token is not None:
        _FUSED_ROPE_ACTIVE.reset(token)


def _dispatch_rope(q, k, cos, sin, *args, **kwargs):
    fn = _ROPE_STATE["fused"] if _FUSED_ROPE_ACTIVE.get() else _ROPE_STATE["original"]
    return fn(q, k, cos, sin, *args, **kwargs)


@contextlib.contextmanager
def causal_unpadded():
    """Inside: every forward of a model set up by `use_causal_sdpa` is causal over its whole input, unpadded."""
    token = _CAUSAL_UNPADDED.set(True)
    try:
        yield
    finally:
        _CAUSAL_UNPADDED.reset(token)


def use_causal_sdpa(model) -> bool:
    """Let `model` run SDPA with `is_causal` and SDPA's own GQA inside `causal_unpadded()`; transformers'
    SDPA path (its mask, `repeat_kv`) everywhere else. Returns False, changing nothing, for a model that does
    not run transformers' SDPA attention. GraphedStep.capture calls it (fast engine, progressive on a GPU).

    Why: under CUDA-graph capture transformers may not skip the causal mask (deciding it reads tensors, a host
    sync), so it builds an explicit (N × N) mask; with a mask, SDPA cannot use its GQA, and transformers
    copies keys and values out to every query head (`repeat_kv`, and a sum over the copies in backward). A
    cramming forward never needs that mask: no cache, no padding before a scored position. On one H200
    (64 texts × 64 tokens, Liger) it took the graphed step from 12.6 to 11.0 ms (docs/performance.md).
    """
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation == CAUSAL_SDPA:
        return True
    if implementation != "sdpa":
        return False
    import torch.nn.functional as F
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(module, query, key, value, attention_mask, *args, **kwargs):
        if _CAUSAL_UNPADDED.get() and query.shape[2] == key.shape[2]:
            out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=kwargs.get("scaling"),
                                                 enable_gqa=query.shape[1] != key.shape[1])
            return out.transpose(1, 2).contiguous(), None
        return sdpa_attention_forward(module, query, key, value, attention_mask, *args, **kwargs)

    def mask(*args, **kwargs):
        return None if _CAUSAL_UNPADDED.get() else sdpa_mask(*args, **kwargs)

    AttentionInterface.register(CAUSAL_SDPA, attention)
    AttentionMaskInterface.register(CAUSAL_SDPA, mask)
    model.set_attn_implementation(CAUSAL_SDPA)
    return True
