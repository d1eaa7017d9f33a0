"""Capacity math: how much a vector can hold, in bits and in tokens.

Pure Python (no torch) so that notebook 01 and `cramlab capacity` start instantly.
Formulas follow Kuratov et al. (ACL 2025); see docs/architecture.md for the derivation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from cramlab.errors import BadInputError, UnknownModelError

LN2 = math.log(2.0)

BITS_BY_DTYPE = {
    "float64": 64, "fp64": 64,
    "float32": 32, "fp32": 32,
    "float16": 16, "fp16": 16, "half": 16,
    "bfloat16": 16, "bf16": 16,
    "float8": 8, "fp8": 8, "float8_e4m3fn": 8, "float8_e5m2": 8,
}

#: The paper's assumption: each value of the vector carries 16 usable bits.
PAPER_BITS_PER_VALUE = 16


def bits_per_value(dtype: str | None = None, bits: int | None = None) -> int:
    """Bits stored by one value of a vector, from a dtype name or an explicit `bits`."""
    if bits is not None:
        if int(bits) != bits or bits < 1:
            raise BadInputError(f"bits must be a positive integer, got {bits!r}")
        return int(bits)
    if dtype is None:
        return PAPER_BITS_PER_VALUE
    key = str(dtype).replace("torch.", "").lower()
    if key not in BITS_BY_DTYPE:
        raise BadInputError(f"unknown dtype {dtype!r}; use one of {sorted(set(BITS_BY_DTYPE))} or pass bits=")
    return BITS_BY_DTYPE[key]


def capacity_bits(d: int, bits: int = PAPER_BITS_PER_VALUE, n_mem: int = 1) -> int:
    """Raw storage of `n_mem` vectors of size `d`: d * bits * n_mem."""
    _check_positive(d=d, bits=bits, n_mem=n_mem)
    return d * bits * n_mem


def bits_per_token(vocab_size: int) -> float:
    """Bits needed to name one token of a uniform vocabulary: log2 |V|."""
    _check_positive(vocab_size=vocab_size)
    if vocab_size < 2:
        raise BadInputError("vocab_size must be at least 2")
    return math.log2(vocab_size)


def capacity_tokens(d: int, vocab_size: int, bits: int = PAPER_BITS_PER_VALUE, n_mem: int = 1) -> float:
    """Theoretical capacity in tokens: L_max = d * bits * n_mem / log2 |V| (unrounded)."""
    return capacity_bits(d, bits, n_mem) / bits_per_token(vocab_size)


def compression_ratio(n_tokens: int, n_mem: int = 1) -> float:
    """Tokens per trained vector (the paper's "x1568" is this ratio)."""
    _check_positive(n_tokens=n_tokens, n_mem=n_mem)
    return n_tokens / n_mem


def nats_to_bits(nats: float) -> float:
    return nats / LN2


def bits_to_nats(bits: float) -> float:
    return bits * LN2


def info_gain_nats(baseline_ce_total_nats: float, final_ce_total_nats: float) -> float:
    """IG = CE_orig - CE_mem, both totals over the sequence (nats)."""
    return baseline_ce_total_nats - final_ce_total_nats


def info_gain_bits(baseline_ce_total_nats: float, final_ce_total_nats: float) -> float:
    return nats_to_bits(info_gain_nats(baseline_ce_total_nats, final_ce_total_nats))


def gain_tokens(best_accuracy: float, baseline_accuracy: float, n_tokens: int) -> float:
    """Gain in correctly decoded tokens: (best_acc - acc_without_mem) * N."""
    return (best_accuracy - baseline_accuracy) * n_tokens


def capacity_utilisation(mean_gain_tokens: float, capacity_tokens_value: float) -> float:
    """Mean gain in decoded tokens over the theoretical capacity in tokens."""
    if capacity_tokens_value <= 0:
        raise BadInputError("capacity_tokens must be positive")
    return mean_gain_tokens / capacity_tokens_value


@dataclass(frozen=True)
class ModelShape:
    """Shape of a known model: what the capacity math needs, plus where to get it."""
    name: str
    hub_id: str
    family: str
    d: int               # size of one input vector (OPT: word_embed_proj_dim)
    vocab_size: int      # rows of the input embedding matrix, as the paper counts |V|
    n_params: float      # parameters, for tables
    context_length: int | None  # None: recurrent (no positional limit)

    def to_dict(self) -> dict:
        return asdict(self)


def _shape(name, hub_id, family, d, vocab, params, ctx):
    return ModelShape(name, hub_id, family, d, vocab, params, ctx)


MODEL_SHAPES: dict[str, ModelShape] = {s.name: s for s in [
    _shape("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "llama", 576, 49152, 135e6, 8192),
    _shape("smollm2-360m", "HuggingFaceTB/SmolLM2-360M", "llama", 960, 49152, 362e6, 8192),
    _shape("smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B", "llama", 2048, 49152, 1.71e9, 8192),
    _shape("pythia-160m", "EleutherAI/pythia-160m", "gpt_neox", 768, 50304, 162e6, 2048),
    _shape("pythia-410m", "EleutherAI/pythia-410m", "gpt_neox", 1024, 50304, 405e6, 2048),
    _shape("pythia-1.4b", "EleutherAI/pythia-1.4b", "gpt_neox", 2048, 50304, 1.41e9, 2048),
    _shape("pythia-2.8b", "EleutherAI/pythia-2.8b", "gpt_neox", 2560, 50304, 2.78e9, 2048),
    _shape("pythia-6.9b", "EleutherAI/pythia-6.9b", "gpt_neox", 4096, 50432, 6.86e9, 2048),
    _shape("opt-1.3b", "facebook/opt-1.3b", "opt", 2048, 50272, 1.32e9, 2048),
    _shape("olmo-1b", "allenai/OLMo-1B-hf", "olmo", 2048, 50304, 1.18e9, 2048),
    _shape("sheared-llama-1.3b", "princeton-nlp/Sheared-LLaMA-1.3B", "llama", 2048, 32000, 1.35e9, 4096),
    _shape("llama-3.2-1b", "meta-llama/Llama-3.2-1B", "llama", 2048, 128256, 1.24e9, 131072),
    _shape("llama-3.2-3b", "meta-llama/Llama-3.2-3B", "llama", 3072, 128256, 3.21e9, 131072),
    _shape("llama-3.1-8b", "meta-llama/Llama-3.1-8B", "llama", 4096, 128256, 8.03e9, 131072),
    _shape("mamba-130m", "state-spaces/mamba-130m-hf", "mamba", 768, 50280, 130e6, None),
    _shape("mamba-370m", "state-spaces/mamba-370m-hf", "mamba", 1024, 50280, 370e6, None),
    _shape("mamba-790m", "state-spaces/mamba-790m-hf", "mamba", 1536, 50280, 790e6, None),
    _shape("mamba-1.4b", "state-spaces/mamba-1.4b-hf", "mamba", 2048, 50280, 1.4e9, None),
]}


def known_model_names() -> list[str]:
    return list(MODEL_SHAPES)


def get_shape(name: str) -> ModelShape:
    """Look a model up by registry name (case-insensitive) or hub id."""
    key = name.strip().lower()
    if key in MODEL_SHAPES:
        return MODEL_SHAPES[key]
    for shape in MODEL_SHAPES.values():
        if shape.hub_id.lower() == key:
            return shape
    import difflib
    close = difflib.get_close_matches(key, MODEL_SHAPES, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(MODEL_SHAPES)}"
    raise UnknownModelError(f"unknown model {name!r}; {hint}")


@dataclass(frozen=True)
class Capacity:
    """One row of the capacity table (keys match `cramlab capacity --json`)."""
    d: int
    vocab_size: int
    bits_per_value: int
    n_mem: int
    capacity_bits: int
    capacity_tokens: int          # rounded to the nearest token, as the paper's table
    capacity_tokens_exact: float
    model: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def capacity(d: int, vocab_size: int, bits: int = PAPER_BITS_PER_VALUE, n_mem: int = 1,
             model: str | None = None) -> Capacity:
    exact = capacity_tokens(d, vocab_size, bits, n_mem)
    return Capacity(d=d, vocab_size=vocab_size, bits_per_value=bits, n_mem=n_mem,
                    capacity_bits=capacity_bits(d, bits, n_mem), capacity_tokens=round(exact),
                    capacity_tokens_exact=exact, model=model)


def capacity_of(name: str, bits: int = PAPER_BITS_PER_VALUE, n_mem: int = 1) -> Capacity:
    shape = get_shape(name)
    return capacity(shape.d, shape.vocab_size, bits, n_mem, model=shape.name)


def capacity_table(bits: int = PAPER_BITS_PER_VALUE, n_mem: int = 1) -> list[dict]:
    """Capacity of every registered model, as plain rows for a table or a chart."""
    rows = []
    for shape in MODEL_SHAPES.values():
        row = capacity_of(shape.name, bits, n_mem).to_dict()
        row.update(family=shape.family, n_params=shape.n_params)
        rows.append(row)
    return rows


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInputError(f"{name} must be a positive integer, got {value!r}")
