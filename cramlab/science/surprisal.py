"""How surprising a text is to the frozen LM: per-token surprisal, -ln p(t_i | t_<i), without any vector.

Scored exactly as `cram`'s baseline under the default `pc` protocol: the sink token goes before the text,
so t_1 is predicted too and all N tokens are scored. The total is the text's cross-entropy CE_orig (nats),
the number that, by the paper's finding, limits how much of the text fits in a vector.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from cramlab.capacity import LN2
from cramlab.errors import BadInputError


@dataclass
class Surprisal:
    """Per-token surprisal of one text (plain data)."""
    text_id: str
    source: str
    token_ids: list[int]
    tokens: list[str]                 # each token decoded on its own
    surprisal_nats: list[float]       # -ln p(t_i | sink, t_<i)
    predicted_ids: list[int]          # the LM's top guess at each position

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def total_nats(self) -> float:
        return float(sum(self.surprisal_nats))

    @property
    def total_bits(self) -> float:
        return self.total_nats / LN2

    @property
    def per_token_nats(self) -> float:
        return self.total_nats / self.n_tokens

    @property
    def per_token_bits(self) -> float:
        return self.total_bits / self.n_tokens

    @property
    def surprisal_bits(self) -> list[float]:
        return [s / LN2 for s in self.surprisal_nats]

    @property
    def top1_accuracy(self) -> float:
        """Share of tokens the LM guesses right with no help (cram's baseline accuracy)."""
        return sum(p == t for p, t in zip(self.predicted_ids, self.token_ids)) / self.n_tokens

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(total_nats=self.total_nats, total_bits=self.total_bits, per_token_bits=self.per_token_bits,
                   top1_accuracy=self.top1_accuracy)
        return out


def token_surprisal(model, texts, sink_token_id: int | None = None) -> list[Surprisal]:
    """Surprisal of every token of every text. `texts`: `Text` objects, token-id lists or strings.

    `model` is a `LoadedModel` (strings need its tokenizer). Texts of different lengths are scored
    one by one; texts of the same length together.
    """
    import torch
    import torch.nn.functional as F

    from cramlab.engine.decode import unwrap
    from cramlab.models.texts import encode
    lm, tokenizer, spec = unwrap(model)
    if sink_token_id is None:
        sink_token_id = spec.sink_token_id if spec is not None else 0
    if not isinstance(texts, (list, tuple)) or (texts and isinstance(texts[0], int)):
        texts = [texts]
    if not texts:
        raise BadInputError("no texts given; pass strings, token-id lists or Text objects")
    items = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            if tokenizer is None:
                raise BadInputError("scoring a string needs the tokenizer: pass a LoadedModel from load_model")
            ids, tid, src = encode(tokenizer, t), f"text-{i}", "user"
        else:
            ids = [int(x) for x in getattr(t, "token_ids", t)]
            tid, src = getattr(t, "text_id", f"text-{i}"), getattr(t, "source", "ids")
        if len(ids) < 1:
            raise BadInputError(f"text {tid!r} is empty; give at least one token")
        items.append((ids, tid, src))
    device = lm.get_input_embeddings().weight.device
    out = []
    with torch.no_grad():
        for ids, tid, src in items:
            x = torch.tensor([[sink_token_id] + ids], device=device)
            logits = lm(input_ids=x).logits[0, :-1].float()                # position p predicts token p+1
            target = x[0, 1:]
            nats = F.cross_entropy(logits, target, reduction="none").cpu().tolist()
            pieces = [tokenizer.decode([t]) for t in ids] if tokenizer is not None else [str(t) for t in ids]
            out.append(Surprisal(text_id=tid, source=src, token_ids=ids, tokens=pieces, surprisal_nats=nats,
                                 predicted_ids=logits.argmax(-1).cpu().tolist()))
    return out
