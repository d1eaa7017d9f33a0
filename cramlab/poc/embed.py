"""Dense embeddings for the retrieval alternative: what a search system would use instead of crammed vectors.

Owns: the default embedding (the same frozen model's last hidden states, mean-pooled over the text's
tokens: no second model needed) and loading a sentence-embedding model the user names
(`--embedder NAME_OR_DIR`, a local folder or a hub id; mean pooling over its last hidden states, no
remote code). Offline with a hub id, or a folder without a model -> one-line error.
Does not own: the evaluation (`cramlab.poc.retrieval`) or the cramming.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from cramlab.errors import BadInputError


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1)


@torch.no_grad()
def _embed(model, tokenizer, texts: list[str], batch_size: int, hidden_of) -> torch.Tensor:
    device = next(model.parameters()).device
    if tokenizer.pad_token is None:        # causal-LM tokenizers often have none; any id works under the mask
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=512).to(device)
        hidden = hidden_of(model(**enc))
        out.append(_mean_pool(hidden.float(), enc["attention_mask"]).cpu())
    return torch.cat(out)


def model_embeddings(lm, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """(n, d) float32: the same model's last hidden states, mean-pooled over each text's tokens. Run through the
    model's base (`base_model`: the layers and the final norm, what `hidden_states[-1]` of the full model is), so
    no vocabulary logits are computed for every position (32 x 512 x 49,152 of them a batch)."""
    return _embed(lm.model.base_model, lm.tokenizer, texts, batch_size, lambda o: o.last_hidden_state)


def load_embedder(name_or_dir: str, device: str = "cpu"):
    """(model, tokenizer, label) of a sentence-embedding model from a local folder or the hub."""
    from transformers import AutoModel, AutoTokenizer

    from cramlab.models.load import hub_reachable
    local = Path(name_or_dir).expanduser()
    if local.exists() and not (local / "config.json").is_file():
        raise BadInputError(f"--embedder {name_or_dir}: no config.json in that folder; give a folder holding a "
                            "sentence-embedding model (config.json, weights, tokenizer)")
    if not local.exists() and not hub_reachable():
        raise BadInputError(f"--embedder {name_or_dir}: not a local folder and the Hugging Face hub is not reachable "
                            "(offline); download the model elsewhere and give its folder")
    src = str(local) if local.exists() else name_or_dir
    try:
        tok = AutoTokenizer.from_pretrained(src, trust_remote_code=False)
        model = AutoModel.from_pretrained(src, trust_remote_code=False).to(device).eval()
    except (OSError, ValueError) as exc:
        raise BadInputError(f"--embedder {name_or_dir}: could not load it ({str(exc).splitlines()[0]})") from None
    return model, tok, name_or_dir


def embedder_embeddings(embedder, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    model, tok, _ = embedder
    return _embed(model, tok, texts, batch_size, lambda o: o.last_hidden_state)


def dense_for_retrieval(lm, doc_texts: list[str], query_texts: list[str], embedder=None) -> dict:
    """Document and query matrices plus the seconds spent, for `evaluate_retrieval(dense=...)`."""
    t0 = time.perf_counter()
    fn = (lambda t: embedder_embeddings(embedder, t)) if embedder else (lambda t: model_embeddings(lm, t))
    docs = fn(doc_texts)
    doc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    queries = fn(query_texts)
    q_s = time.perf_counter() - t0
    label = (f"sentence-embedding model {embedder[2]}, mean-pooled" if embedder else
             "the same model's last hidden states, mean-pooled")
    return {"docs": docs, "queries": queries, "label": label, "index_seconds": doc_s,
            "query_encode_seconds_mean": q_s / max(1, len(query_texts))}
