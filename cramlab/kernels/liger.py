"""Liger Kernel's Triton kernels patched into ONE loaded Llama-family model on CUDA (`--kernels liger`, auto's
choice there).

Owns: `apply_liger` (RMSNorm and SwiGLU through Liger's `model=` path, RoPE per attention module, the LM head
marked for fast.py's Liger cross-entropy), `row_grid_rms_norm` (Liger's RMSNorm backward launched one program per
row for a frozen weight) and the RoPE dispatcher. Does not own: choosing kernels (cramlab.kernels) or the loss
(cramlab.engine.fast).

Per instance, not per process: `apply_liger_kernel_to_llama(rope=True, ...)` swaps module-level names in
transformers' `modeling_llama` (the RMSNorm and MLP classes, the RoPE function), which would also change
every Llama model loaded later in the same process (a CPU one, or the unpatched baseline of a side-by-side
bench). Here Liger patches the instance's RMSNorm and MLP modules (its `model=` path) with `rope=False`,
the class names it swapped are put back, and RoPE is routed per attention module: a forward pre-hook on
each patched attention module marks "this module is fused" while it runs, and a dispatcher installed once
in place of `modeling_llama.apply_rotary_pos_emb` calls Liger's RoPE only then, the original otherwise.
"""
from __future__ import annotations

import contextvars
import functools
import importlib

LIGER_FAMILIES = ("llama",)      # config.model_type values patched with apply_liger_kernel_to_llama
GPU_EXTRA_HINT = "pip install 'cramlab[gpu]'"

_FUSED_ROPE_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("cramlab_fused_rope", default=False)
_ROPE_STATE: dict = {}           # "original": transformers' apply_rotary_pos_emb, "fused": Liger's


@functools.cache
def liger_import_error() -> str | None:
    """None if Liger Kernel imports here, else the reason in one line."""
    try:
        importlib.import_module("liger_kernel.transformers")
    except Exception as exc:  # noqa: BLE001 - ImportError, or Liger refusing this transformers version
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"{type(exc).__name__}: {first}"
    return None


def apply_liger(model) -> str:
    """Patch `model` in place with Liger's kernels; returns "liger"."""
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

