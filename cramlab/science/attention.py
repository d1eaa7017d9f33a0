"""Where the model looks: the share of attention that text tokens give to the prefix (sink, [mem] vectors).

The progressive-cramming paper (Tarasov et al., 2026) observed that the [mem] position takes 20-60 % of
the attention mass in some layers: the trained vector becomes an "attention sink". `attention_shares`
measures it for crammed vectors: for every layer, the attention weights (eager attention, averaged over
heads) from the text positions to each prefix position, averaged over those text positions.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

from cramlab.engine.decode import prefix_embeddings, unwrap
from cramlab.errors import BadInputError


@dataclass
class AttentionShares:
    """Per layer: mean attention mass of the text positions on the sink token and on the vectors."""
    layout: str
    n_mem: int
    n_tokens: int
    sink_share: list[float]     # per layer (all 0 for the mem-first layout)
    mem_share: list[float]      # per layer, summed over the n_mem vectors
    text_share: list[float]     # per layer: what is left for the text itself

    @property
    def n_layers(self) -> int:
        return len(self.mem_share)

    def peak_mem_layer(self) -> int:
        return max(range(self.n_layers), key=lambda i: self.mem_share[i])

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def eager_attention(model):
    """Temporarily switch to eager attention (the fused kernels do not return attention weights)."""
    old = getattr(model.config, "_attn_implementation", None)
    switch = old not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if switch:
            model.set_attn_implementation(old)


@torch.no_grad()
def attention_shares(model, vectors, token_ids, *, layout: str = "sink-first", sink_token_id: int | None = None,
                     first_token_only: bool = False) -> AttentionShares:
    """Attention from the text positions to [sink], [mem] and text, per layer, for one text.

    `vectors`: (n_mem, d) crammed vectors (or random ones, for a baseline); `token_ids`: the text.
    `first_token_only=True` averages over the first text position only instead of all of them.
    """
    lm, _, spec = unwrap(model)
    if sink_token_id is None:
        sink_token_id = spec.sink_token_id if spec is not None else 0
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    if vectors.dim() != 2:
        raise BadInputError(f"vectors must be (n_mem, d) for one text, got shape {tuple(vectors.shape)}")
    ids = torch.as_tensor(list(token_ids), dtype=torch.long).view(1, -1)
    if ids.shape[1] < 1:
        raise BadInputError("token_ids is empty; give the text's token ids")
    emb = lm.get_input_embeddings()
    prefix = prefix_embeddings(lm, vectors[None], layout=layout, sink_token_id=sink_token_id)
    inputs = torch.cat([prefix, emb(ids.to(emb.weight.device))], dim=1)
    n_sink = 1 if layout == "sink-first" else 0
    n_mem = vectors.shape[0]
    n_prefix = n_sink + n_mem
    with eager_attention(lm):
        out = lm(inputs_embeds=inputs, output_attentions=True)
    if not out.attentions:
        raise BadInputError("this model does not return attention weights (eager attention unavailable)")
    sink, mem, text = [], [], []
    last = n_prefix + 1 if first_token_only else inputs.shape[1]
    for layer in out.attentions:                            # (1, heads, q, k)
        a = layer[0].float().mean(0)[n_prefix:last]           # text queries, averaged over heads
        sink.append(float(a[:, :n_sink].sum(-1).mean()) if n_sink else 0.0)
        mem.append(float(a[:, n_sink:n_prefix].sum(-1).mean()))
        text.append(float(a[:, n_prefix:].sum(-1).mean()))
    return AttentionShares(layout=layout, n_mem=n_mem, n_tokens=ids.shape[1], sink_share=sink, mem_share=mem,
                           text_share=text)
