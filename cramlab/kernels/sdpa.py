"""The maskless causal attention of a captured training step (`use_causal_sdpa`, `causal_unpadded`).

Owns: registering an attention implementation that runs SDPA with `is_causal` (and SDPA's own GQA) inside
`causal_unpadded()`, transformers' SDPA path everywhere else. Used by engine/step.py's GraphedStep (the fast
engine and grow on a GPU). Does not own: which engine runs (cramlab.engine) or other kernels.
"""
from __future__ import annotations

import contextlib
import contextvars

_CAUSAL_UNPADDED: contextvars.ContextVar[bool] = contextvars.ContextVar("cramlab_causal_unpadded", default=False)
CAUSAL_SDPA = "cramlab_causal_sdpa"   # the attention implementation `use_causal_sdpa` registers


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

