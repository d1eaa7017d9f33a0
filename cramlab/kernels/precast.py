"""Low-precision copies of a model body's linear weights, cast once for autocast instead of at every matmul.

Owns: `precast_linears(body, dtype)`, a reusable context manager. Does not own: when autocast runs
(engine/step.autocast_for) or which engine uses this (engine/fast.fast_loop).

Why: under `torch.autocast(dtype=bfloat16)` a matmul with a float32 weight first casts the weight to bfloat16, one
kernel per linear per forward (210 in SmolLM2-135M's 30 layers) in every step of a 5,000-step loop. The weights are
frozen, so the cast gives the same tensor every time. Inside this context each `nn.Linear` of the body holds a
bfloat16 copy made once (and kept on the module, so that a CUDA graph captured inside the context can keep reading
it); autocast casts only float32 tensors, so every matmul receives the same bfloat16 values as before, bit for bit
(tests/test_precast.py on the CPU, experiments/gpu_check.py on CUDA). On exit the float32 parameters are back. Norm
weights and embeddings stay float32, as autocast leaves them. The LM head is left out on purpose: the chunked loss's
backward (engine/fast.py's `LinearCrossEntropy`) multiplies in the head weight's own dtype, so a bfloat16 head could
change its numbers.
"""
from __future__ import annotations

import torch

_CACHE_ATTR = "_cramlab_precast"


def _low_copy(module: torch.nn.Linear, dtype: torch.dtype) -> torch.nn.Parameter:
    """The module's weight in `dtype`, cast once and kept while the float32 weight is unchanged."""
    weight = module.weight
    key = (weight.data_ptr(), weight._version, dtype)
    cached = getattr(module, _CACHE_ATTR, None)
    if cached is None or cached[0] != key:
        cached = (key, torch.nn.Parameter(weight.detach().to(dtype), requires_grad=False))
        object.__setattr__(module, _CACHE_ATTR, cached)      # a plain attribute, not a registered parameter
    return cached[1]


class precast_linears:
    """`with precast_linears(body, torch.bfloat16):` the body's float32 `nn.Linear` weights are bfloat16 copies.
    `dtype=None` (no autocast) does nothing. Reusable, not re-entrant."""

    def __init__(self, body: torch.nn.Module, dtype: torch.dtype | None):
        self.body, self.dtype = body, dtype
        self._saved: list[tuple[torch.nn.Linear, torch.nn.Parameter]] = []

    def __enter__(self):
        if self.dtype is None or self.dtype == torch.float32:
            return self
        for module in self.body.modules():
            if isinstance(module, torch.nn.Linear) and module.weight.dtype == torch.float32:
                self._saved.append((module, module.weight))
                module.weight = _low_copy(module, self.dtype)
        return self

    def __exit__(self, *exc):
        for module, weight in self._saved:
            module.weight = weight
        self._saved = []
        return False


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast runs in on `device` now, or None when it is off."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)
