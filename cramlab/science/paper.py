"""The published figures, as data: Kuratov et al. (ACL 2025) and the progressive follow-up (ICML 2026).

Numbers are copied from the papers (see docs / shared paper notes); nothing here is computed. Tables and
notebooks put them beside our own results where the model matches.

- `TABLE1`: PG-19, one vector. max_tokens = largest N with mean accuracy >= 0.99; gain_tokens and
  info_gain_nats averaged over the texts that did not fit; capacity_utilisation = gain / L_max;
  random_max_tokens = Max on random-word text.
- `OTHER_MAX_TOKENS`: Max on PG-19, one vector, for models outside Table 1.
- `MULTI_VECTOR_MAX_TOKENS`: Max on PG-19 with k vectors.
- `PROGRESSIVE_TOKENS`: the follow-up's progressive cramming, tokens reached (mean, std or a range).
"""
from __future__ import annotations

KURATOV_2025 = "Kuratov et al. 2025, Table 1 (PG-19)"
TARASOV_2026 = "Tarasov et al. 2026 (progressive cramming)"

TABLE1: dict[str, dict] = {
    "pythia-160m": dict(d=768, vocab_size=50304, capacity_tokens=787, max_tokens=80, gain_tokens=70.9,
                        info_gain_nats=396, capacity_utilisation=0.090, random_max_tokens=65),
    "pythia-410m": dict(d=1024, vocab_size=50304, capacity_tokens=1049, max_tokens=96, gain_tokens=81.3,
                        info_gain_nats=431, capacity_utilisation=0.078, random_max_tokens=72),
    "pythia-1.4b": dict(d=2048, vocab_size=50304, capacity_tokens=2098, max_tokens=160, gain_tokens=158.0,
                        info_gain_nats=793, capacity_utilisation=0.075, random_max_tokens=139),
    "llama-3.2-1b": dict(d=2048, vocab_size=128256, capacity_tokens=1931, max_tokens=512, gain_tokens=426.2,
                         info_gain_nats=2120, capacity_utilisation=0.221, random_max_tokens=316),
    "llama-3.2-3b": dict(d=3072, vocab_size=128256, capacity_tokens=2897, max_tokens=1024, gain_tokens=720.3,
                         info_gain_nats=3292, capacity_utilisation=0.249, random_max_tokens=460),
    "llama-3.1-8b": dict(d=4096, vocab_size=128256, capacity_tokens=3862, max_tokens=1568, gain_tokens=1094.1,
                         info_gain_nats=4866, capacity_utilisation=0.283, random_max_tokens=792),
}

OTHER_MAX_TOKENS: dict[str, int] = {
    "pythia-2.8b": 128, "opt-1.3b": 128, "olmo-1b": 384, "sheared-llama-1.3b": 512,
}

MULTI_VECTOR_MAX_TOKENS: dict[str, dict[int, int]] = {
    "llama-3.2-1b": {1: 512, 2: 1024, 4: 2048, 8: 4096, 16: 7168},
    "pythia-160m": {1: 80, 2: 192, 4: 384, 8: 640, 16: 1280},
}

#: (mean, std) where published with a spread; (low, high) ranges are stored as `range`. Where known, the
#: checkpoint, texts and layout/protocol of the figure (the kit's embedded model is the Instruct checkpoint).
PROGRESSIVE_TOKENS: dict[str, dict] = {
    "smollm2-135m": dict(mean=38.5, std=14.1, checkpoint="base (HuggingFaceTB/SmolLM2-135M)",
                         texts="50 PG-19 samples", setting="mem-first/pc"),
    "smollm2-360m": dict(mean=61.0, std=24.6),
    "smollm2-1.7b": dict(mean=370.0, std=None),
    "pythia-160m": dict(mean=10.7, std=None),
    "llama-3.2-1b": dict(mean=402.0, std=None),
    "llama-3.1-8b": dict(mean=None, std=None, range=(1063, 1438)),
}


def _key(model: str) -> str:
    """Registry name for a model name or hub id (unknown names are returned lower-cased)."""
    from cramlab.capacity import MODEL_SHAPES
    key = model.strip().lower()
    if key in MODEL_SHAPES:
        return key
    for shape in MODEL_SHAPES.values():
        if shape.hub_id.lower() == key:
            return shape.name
    return key


def progressive_note(model: str) -> str | None:
    p = PROGRESSIVE_TOKENS.get(_key(model))
    if p is None:
        return None
    if p.get("range"):
        lo, hi = p["range"]
        return f"progressive: {lo}-{hi} tokens ({TARASOV_2026})"
    spread = f" +- {p['std']}" if p.get("std") is not None else ""
    return f"progressive: {p['mean']}{spread} tokens ({TARASOV_2026})"


def published(model: str, source: str = "pg19", n_mem: int = 1) -> dict:
    """The published figures to show beside ours for this model, source and n_mem ({} if none).

    Keys: max_tokens, gain_tokens, info_gain_nats, capacity_utilisation (whichever exist), source (where
    the numbers come from) and note (the progressive figure, if any). Table 1 is PG-19: our `unseen` and
    `pg19` sources are compared with it, `random` with its random-text column.
    """
    key = _key(model)
    out: dict = {}
    row = TABLE1.get(key)
    if n_mem == 1 and row is not None:
        if source == "random":
            out = dict(max_tokens=row["random_max_tokens"], source=f"{KURATOV_2025}, random text")
        else:
            out = {k: row[k] for k in ("max_tokens", "gain_tokens", "info_gain_nats", "capacity_utilisation")}
            out["source"] = KURATOV_2025
    elif n_mem == 1 and key in OTHER_MAX_TOKENS and source != "random":
        out = dict(max_tokens=OTHER_MAX_TOKENS[key], source="Kuratov et al. 2025 (PG-19)")
    elif n_mem in MULTI_VECTOR_MAX_TOKENS.get(key, {}) and source != "random":
        out = dict(max_tokens=MULTI_VECTOR_MAX_TOKENS[key][n_mem], source=f"Kuratov et al. 2025, {n_mem} vectors")
    note = progressive_note(key) if n_mem == 1 else None
    if note:
        out["note"] = note
    return out
