"""The alternatives to a crammed vector, measured on the same texts: a real model-driven arithmetic coder
and general-purpose compression of the whole corpus.

Owns: `encode_texts` / `decode_blobs` (token ids -> bytes -> token ids through a range coder from the
`constriction` library, driven by the same frozen model's next-token probabilities), `measure_coder` (bytes,
the Σ −log2 p bound of the same pass, encode and decode seconds, exact round trip) and `corpus_alternatives`
(zstd with a dictionary trained on the records, zstd and lzma over the whole corpus as one stream).
Does not own: the per-document byte accounting of `cramlab.poc.run` or the report.

Why the coder is stepped one token at a time, in batches, on both sides: the decoder must see exactly the
probabilities the encoder used, to the last bit of the float. Running the encoder with the decoder's own
computation (the same batch, one token per step, a KV cache) makes that true where the device repeats a
computation bit for bit (the CPU tests); a one-pass encoder would differ from the stepwise decoder in rounding
and break the stream. So an archive decodes in the batches it was encoded in (the batch is part of the format).
On an H100 in bfloat16 a 300-record batch once failed to decode (2026-12-06, docs/practice.md): GPU kernels do
not promise the same bits twice, so `measure_coder` records such a batch as lost instead of dying, and the
verdict offers the coder as lossless only when every row came back. `coder_model` gives the coder its own
model: float32 without fused kernels by default (`precision="float32"`), or the crammed model as loaded
(`"model"`); experiments/coder_repeatability.py measures which of them repeats on a device.
"""
from __future__ import annotations

import lzma
import math
import time

import numpy as np
import torch

from cramlab.engine.decode import cache_argument
from cramlab.errors import BadInputError


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    n = shift = 0
    for i, b in enumerate(data):
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i + 1
    raise BadInputError("truncated coder blob: its length header is cut off")


def _sink(lm) -> int:
    return int(lm.spec.sink_token_id)


@torch.no_grad()
def _stepper(lm, batch: int):
    """A generator of next-token probability tables (float64 numpy, (batch, V)) for a batch of rows that
    all start with the sink token; send it the next token of every row."""
    model = lm.model
    device = next(model.parameters()).device
    tok = torch.full((batch, 1), _sink(lm), dtype=torch.long, device=device)
    cache_arg = cache_argument(model)
    past = None
    # One host table reused every step (pinned on a GPU) instead of a fresh (batch, V) float64 array a step
    # (118 MB at 300 rows; the 2026-12-06 H100 run that coded 300 records spent 114 s in the kernel). The
    # consumer reads a table before it sends the next tokens, so reuse is safe.
    table = None
    while True:
        out = model(input_ids=tok, use_cache=True, **({cache_arg: past} if past is not None else {}))
        past = getattr(out, "cache", None) or out.past_key_values
        logits = out.logits[:, -1]
        if table is None:
            table = torch.empty(tuple(logits.shape), dtype=torch.float64, pin_memory=device.type == "cuda")
        table.copy_(torch.softmax(logits.double(), dim=-1))
        nxt = yield table.numpy()
        tok = torch.as_tensor(nxt, dtype=torch.long, device=device).view(batch, 1)


def _model_family():
    import constriction
    return constriction.stream.model.Categorical(perfect=False)


def encode_texts(lm, rows: list[list[int]]) -> tuple[list[bytes], float]:
    """Each row of token ids as one blob: a varint length, then the range coder's words. Returns the blobs
    and Σ −log2 p(token) of the same pass (the bound the coder approaches)."""
    import constriction
    if not rows or any(len(r) == 0 for r in rows):
        raise BadInputError("the coder needs at least one token per row")
    encoders = [constriction.stream.queue.RangeEncoder() for _ in rows]
    family = _model_family()
    steps = _stepper(lm, len(rows))
    probs = next(steps)
    bound_bits = 0.0
    for i in range(max(len(r) for r in rows)):
        nxt = []
        for j, r in enumerate(rows):
            if i < len(r):
                encoders[j].encode(np.array([r[i]], dtype=np.int32), family, probs[j:j + 1])
                bound_bits -= math.log2(max(float(probs[j, r[i]]), 1e-300))
            nxt.append(r[i] if i < len(r) else 0)      # finished rows feed a dummy the decoder feeds too
        if i + 1 < max(len(r) for r in rows):
            probs = steps.send(nxt)
    steps.close()
    blobs = [_varint(len(r)) + enc.get_compressed().astype("<u4").tobytes() for r, enc in zip(rows, encoders)]
    return blobs, bound_bits


def decode_blobs(lm, blobs: list[bytes]) -> list[list[int]]:
    """The inverse of `encode_texts` for the same batch of blobs, in the same order."""
    import constriction
    lengths, decoders = [], []
    for blob in blobs:
        n, head = _read_varint(blob)
        lengths.append(n)
        decoders.append(constriction.stream.queue.RangeDecoder(np.frombuffer(blob[head:], dtype="<u4").copy()))
    family = _model_family()
    steps = _stepper(lm, len(blobs))
    probs = next(steps)
    rows: list[list[int]] = [[] for _ in blobs]
    for i in range(max(lengths)):
        nxt = []
        for j, n in enumerate(lengths):
            if i < n:
                rows[j].append(int(decoders[j].decode(family, probs[j:j + 1])[0]))
            nxt.append(rows[j][i] if i < n else 0)
        if i + 1 < max(lengths):
            probs = steps.send(nxt)
    steps.close()
    return rows


CODER_PRECISIONS = ("float32", "model")


def coder_model(lm, precision: str = "float32", trust_remote_code: bool = False):
    """The model the coder steps. "model": `lm` as it was loaded for cramming. "float32": the same weights in
    float32 with transformers' own kernels (no Liger) on the same device — `lm` itself when it already is that
    (every CPU run), else loaded again (from the on-disk GGUF cache for the embedded model). Why a setting: the
    stream decodes only if both sides see the same bits, and a bfloat16 batch of 300 on an H100 did not."""
    if precision not in CODER_PRECISIONS:
        raise BadInputError(f"unknown coder precision {precision!r}; use float32 or model")
    if precision == "model" or (lm.spec.dtype == "float32" and lm.spec.kernels == "torch"):
        return lm
    from cramlab.models.load import load_model
    source = lm.spec.name if lm.spec.source in ("embedded", "hub", "tiny") else lm.spec.path
    return load_model(source, device=lm.spec.device, dtype="float32", kernels="torch",
                      trust_remote_code=trust_remote_code)


def measure_coder(lm, rows: list[list[int]], batch_size: int = 64, log=None) -> dict:
    """Encode and decode `rows` (token ids) in batches; bytes, the bound, seconds, and how many rows came back
    exactly. A batch whose stream does not decode counts as not exact and is listed in `round_trip_errors`.
    `log(line)`, if given, hears each batch's seconds."""
    n_bytes, bound, exact, enc_s, dec_s, errors = 0, 0.0, 0, 0.0, 0.0, []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        t0 = time.perf_counter()
        blobs, bits = encode_texts(lm, chunk)
        enc_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            back = decode_blobs(lm, blobs)
        except (AssertionError, ValueError, RuntimeError) as exc:
            # constriction asserts when a stream stops decoding: the decoder's probabilities differed from the
            # encoder's (seen on an H100 in bfloat16, 2026-12-06). Recorded, not fatal: the batch counts as lost.
            back = [None] * len(chunk)
            errors.append(f"rows {i}-{i + len(chunk) - 1}: {type(exc).__name__}: {exc}")
        dec_s += time.perf_counter() - t0
        if log is not None:
            log(f"coder rows {i + len(chunk):,}/{len(rows):,}: encode {enc_s:.1f} s, decode {dec_s:.1f} s so far"
                + (" (this batch did not decode)" if back[0] is None else ""))
        n_bytes += sum(len(b) for b in blobs)
        bound += bits
        exact += sum(a == b for a, b in zip(back, chunk))
    weight = next(lm.model.parameters())
    return {"n_texts": len(rows), "n_tokens": sum(len(r) for r in rows), "bytes": n_bytes,
            "bound_bits": bound, "bound_bytes": math.ceil(bound / 8),
            "overhead_bytes": n_bytes - math.ceil(bound / 8), "round_trip_exact": exact,
            "round_trip_errors": errors, "model_dtype": str(weight.dtype).replace("torch.", ""),
            "device": str(weight.device),
            "encode_seconds": enc_s, "decode_seconds": dec_s, "batch_size": batch_size,
            "library": "constriction (range coder, Categorical(perfect=False)), probabilities from the same model",
            "format": "per text: varint token count + the range coder's 32-bit words"}


def corpus_alternatives(texts: list[str]) -> dict:
    """General-purpose compression of the texts, each with its measured compress and decompress seconds
    (round trip checked). `zstd_dict`: a dictionary trained on the texts themselves, then every text
    compressed on its own with it (random access, like one vector per record); its bytes count the
    dictionary once. `zstd_stream` / `lzma_stream`: all texts as one stream (an archive: smallest, no
    random access)."""
    import zstandard
    data = [t.encode("utf-8") for t in texts]
    stream = b"\n".join(data)
    out: dict = {"utf8": sum(len(d) for d in data), "n_texts": len(data)}

    def timed(name, compress, decompress, original):
        t0 = time.perf_counter()
        packed = compress()
        t1 = time.perf_counter()
        back = decompress(packed)
        t2 = time.perf_counter()
        size = sum(len(x) for x in packed) if isinstance(packed, list) else len(packed)
        out.update({name: size, f"{name}_encode_seconds": t1 - t0, f"{name}_decode_seconds": t2 - t1,
                    f"{name}_round_trip_exact": back == original})
    timed("zstd_stream", lambda: zstandard.ZstdCompressor(level=19).compress(stream),
          lambda b: zstandard.ZstdDecompressor().decompress(b), stream)
    timed("lzma_stream", lambda: lzma.compress(stream, preset=9 | lzma.PRESET_EXTREME), lzma.decompress, stream)
    dict_size = min(16_384, max(256, len(stream) // 4))
    try:
        t0 = time.perf_counter()
        zdict = zstandard.train_dictionary(dict_size, data, level=19)
        train_s = time.perf_counter() - t0
    except zstandard.ZstdError as exc:     # too few or too small samples: recorded, not fatal
        out |= {"zstd_dict": None, "zstd_dict_note": f"dictionary training failed ({exc}); needs more records"}
        return out
    comp = zstandard.ZstdCompressor(level=19, dict_data=zdict, write_content_size=True, write_checksum=False,
                                    write_dict_id=False)
    dec = zstandard.ZstdDecompressor(dict_data=zdict)
    timed("zstd_dict", lambda: [comp.compress(d) for d in data], lambda bs: [dec.decompress(b) for b in bs], data)
    out["zstd_dict"] += len(zdict.as_bytes())
    out |= {"zstd_dict_dictionary_bytes": len(zdict.as_bytes()), "zstd_dict_train_seconds": train_s}
    out["zstd_dict_encode_seconds"] += train_s
    return out


def measure_alternatives(lm, record_texts: list[str], coder_batch: int = 64, coder_sample: int = 0,
                         coder_precision: str = "float32", log=None, trust_remote_code: bool = False) -> dict:
    """Both alternatives on the records' crammed texts: the corpus compressors on all of them, the model
    coder (on `coder_model(lm, coder_precision)`) on all of them or on the first `coder_sample` (0 = all; its
    bytes then cover only those). `log(line)` hears each part's seconds; `trust_remote_code` is the crammed
    model's own, for the coder's float32 copy when it is loaded again."""
    from cramlab.models.texts import encode
    t0 = time.perf_counter()
    corpus = corpus_alternatives(record_texts)
    if log is not None:
        log(f"corpus compressors: {time.perf_counter() - t0:.1f} s")
    rows = []                      # the first `coder_sample` non-empty records' ids, tokenised only as far as needed
    for text in record_texts:
        if coder_sample and len(rows) == coder_sample:
            break
        if ids := encode(lm.tokenizer, text):
            rows.append(ids)
    if not rows:
        return {"corpus": corpus, "coder": {}}
    t0 = time.perf_counter()
    coder_lm = coder_model(lm, coder_precision, trust_remote_code)
    load_s = time.perf_counter() - t0
    if log is not None:
        log(f"coder model ({coder_lm.spec.dtype}, kernels {coder_lm.spec.kernels}): {load_s:.1f} s")
    coder = measure_coder(coder_lm, rows, coder_batch, log) | {
        "precision": coder_precision, "kernels": coder_lm.spec.kernels, "model_load_seconds": load_s}
    return {"corpus": corpus, "coder": coder}
