"""Back again: greedy generation from the trained vectors alone.

The prefix is exactly what the vectors were trained with (the sink token for the `sink-first` layout,
then the vectors; for the `hc` protocol also the first text token, which that protocol never scores),
and the model continues greedily with a KV cache. No sampling, no early stop at EOS: the text was
crammed token by token, so it is decoded token by token.

Owns: the prefix the vectors sit in, greedy decoding
with a KV cache, `first_mismatch`. Does not own: the layout and protocol names (cramlab.engine.settings),
training (cramlab.engine.plain) or vector files (cramlab.engine.vectors).
"""
from __future__ import annotations

import operator
from dataclasses import asdict, dataclass

import torch

from cramlab.engine.settings import LAYOUTS, PROTOCOLS  # noqa: F401  (re-exported: the names decoding understands)
from cramlab.errors import BadInputError


@dataclass
class Decoded:
    token_ids: list[int]
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def unwrap(model):
    """Accept a LoadedModel (model, tokenizer, spec) or a bare transformers model."""
    if isinstance(model, tuple) and hasattr(model, "spec"):
        return model.model, model.tokenizer, model.spec
    return model, None, None


def prefix_embeddings(model, vectors: torch.Tensor, *, layout: str, sink_token_id: int | None,
                      first_token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """[sink?] + vectors (+ first token for hc), as a (B, P, d) tensor in the model's dtype."""
    emb = model.get_input_embeddings()
    dtype = emb.weight.dtype
    vectors = vectors.to(device=emb.weight.device, dtype=dtype)
    parts = []
    if layout == "sink-first":
        sink = emb(torch.tensor([sink_token_id], device=emb.weight.device))
        parts.append(sink.expand(vectors.shape[0], 1, -1))
    parts.append(vectors)
    if first_token_ids is not None:
        parts.append(emb(first_token_ids.to(emb.weight.device).view(-1, 1)))
    return torch.cat(parts, dim=1)


@torch.no_grad()
def greedy_from_embeddings(model, prefix: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy continuation of a batch of embedded prefixes, `n_new` tokens each, with a KV cache."""
    cache_arg = cache_argument(model)
    out = model(inputs_embeds=prefix, use_cache=True)
    logits = out.logits[:, -1]
    tokens = []
    for i in range(n_new):
        next_ids = logits.float().argmax(-1)
        tokens.append(next_ids)
        if i == n_new - 1:
            break
        out = model(input_ids=next_ids[:, None], use_cache=True, **{cache_arg: out[cache_arg]})
        logits = out.logits[:, -1]
    return torch.stack(tokens, dim=1)


def cache_argument(model) -> str:
    """transformers >= 5 names the KV cache `cache`; older releases `past_key_values`."""
    import inspect
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def decode(model, vectors, n_tokens, *, layout: str = "sink-first", protocol: str = "pc",
           first_token_id=None, sink_token_id: int | None = None) -> Decoded | list[Decoded]:
    """Greedy generation from the vectors alone (`vectors`: k × d for one text, or B × k × d).

    Returns `n_tokens` token ids per text (for `hc`, the given first token plus N-1 generated ones).
    `n_tokens` may be one count per text: the batch is decoded once, to the longest, and each row is cut to
    its own count (greedy decoding is causal: a row's first n tokens do not depend on how far it goes).
    `first_token_id` (`hc`): one id for every text, or one per text.
    """
    model, tokenizer, spec = unwrap(model)
    if sink_token_id is None and spec is not None:
        sink_token_id = spec.sink_token_id
    if layout not in LAYOUTS:
        raise BadInputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if protocol not in PROTOCOLS:
        raise BadInputError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if layout == "sink-first" and sink_token_id is None:
        raise BadInputError("the sink-first layout needs sink_token_id (pass a LoadedModel or the id)")
    least, given = (2 if protocol == "hc" else 1), n_tokens
    per_text = isinstance(n_tokens, (list, tuple))
    try:
        wanted = [operator.index(n) for n in (n_tokens if per_text else [n_tokens])]
    except TypeError:
        wanted = []
    if not wanted or min(wanted) < least:
        raise BadInputError(f"n_tokens must be an integer >= {least} (tokens to decode), or one such integer "
                            f"per text; got {given!r}")
    n_tokens = max(wanted)
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    d = model.get_input_embeddings().weight.shape[1]
    if vectors.dim() not in (2, 3) or vectors.shape[-1] != d:
        raise BadInputError(f"vectors must be k x {d} (one text) or B x k x {d} for this model, got shape "
                            f"{tuple(vectors.shape)}; pass CramResult.vectors of a run with this model")
    single = vectors.dim() == 2
    if single:
        vectors = vectors[None]
    if per_text and len(wanted) != vectors.shape[0]:
        raise BadInputError(f"n_tokens has {len(wanted)} counts for {vectors.shape[0]} text(s): give one per text")
    first = None
    if protocol == "hc":
        if first_token_id is None:
            raise BadInputError("the hc protocol never trains the first token: pass first_token_id")
        first = torch.as_tensor(first_token_id).view(-1).expand(vectors.shape[0])
    prefix = prefix_embeddings(model, vectors, layout=layout, sink_token_id=sink_token_id, first_token_ids=first)
    n_new = n_tokens - 1 if protocol == "hc" else n_tokens
    ids = greedy_from_embeddings(model, prefix, n_new).cpu()
    if first is not None:
        ids = torch.cat([first.view(-1, 1).cpu(), ids], dim=1)
    counts = wanted if per_text else [n_tokens] * ids.shape[0]
    results = [Decoded(row[:n].tolist(), tokenizer.decode(row[:n].tolist()) if tokenizer is not None else "")
               for row, n in zip(ids, counts)]
    return results[0] if single else results


def first_mismatch(decoded: list[int], target: list[int]) -> int | None:
    """Index of the first differing token, or None when they are equal."""
    for i, (a, b) in enumerate(zip(decoded, target)):
        if a != b:
            return i
    return None if len(decoded) == len(target) else min(len(decoded), len(target))
