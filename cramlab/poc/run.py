"""Cramming in practice: the per-document measurements of a proof of concept on one's own records.

Owns: the optional normalisation steps (boilerplate found per group), planning (the first N tokens, or
whole records split into chunks of what one vector holds, `--per-vector`), the byte accounting (UTF-8,
token ids, general-purpose compressors, vectors at five precisions, the model's Σ −log2 p bound),
rounding vectors and re-decoding them (with the model dtype recorded), the per-document cost, and the
resumable run (`run_poc`: one finished document = one fsynced JSON line).
Does not own: reading files (`cramlab.poc.files`), the cramming loop (`cramlab.engine.plain`, called in
exactly one place: `_cram`), the coder and corpus alternatives (`cramlab.poc.coder`), retrieval
(`cramlab.poc.retrieval`), the aggregate and the report files (`cramlab.poc.report`), the demo
corpus (`cramlab.poc.corpus`) or the command line (`cramlab.cli.poc`).

Every byte figure is for the crammed part of a document (its first `n_tokens` tokens, or every chunk of a
whole record, decoded back to a string), because that is what the vectors hold.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from cramlab.errors import BadInputError, ConfigError
from cramlab.poc.files import Document, SkippedFile, read_documents
from cramlab.poc.privacy import save_vectors_without_text
from cramlab.science.results_file import append_lines, read_results

PRECISIONS = ("float32", "bfloat16", "float16", "fp8_e4m3", "int8")
NORMALISE_STEPS = ("whitespace", "case", "boilerplate")
# `--per-vector auto`: chunk length with a safety margin below what one vector of SmolLM2-135M holds as
# measured (docs/results.md, sink-first/pc, progressive: 43.6 ± 11.0 tokens over 48 texts, H200,
# 2026-11-28): mean − 2.5 std = 16 tokens, since a PoC crams each chunk once with a fixed step budget.
MEASURED_TOKENS_PER_VECTOR = (43.6, 11.0)
PER_VECTOR_AUTO_TOKENS = int(MEASURED_TOKENS_PER_VECTOR[0] - 2.5 * MEASURED_TOKENS_PER_VECTOR[1])
LINES_FILE = "documents.jsonl"
# cram() settings of a PoC unless the caller passes others: the follow-up paper's lr (0.1), a step budget
# that 16 tokens meet on SmolLM2-135M (~120 steps measured), no per-text progress bar (the run has one).
DEFAULT_CRAM = dict(lr=0.1, max_steps=300, seed=0, progress=False)


@dataclass
class PocSettings:
    """Everything that decides a PoC's numbers; recorded in every line and in report.json."""
    model: str = "smollm2-135m"
    n_tokens: int | None = 16            # cram the first N tokens of each document (one vector each) ...
    per_vector: int | None = None        # ... or whole documents in chunks of this many tokens, one vector each
    n_mem: int = 1
    preset: str | None = None            # passed through to cram() (engine presets)
    normalise: tuple[str, ...] = ()
    pattern: str = "*.txt"
    encoding: str = "utf-8"              # utf-8 (strict) or auto (detected per file, cramlab.poc.files)
    batch_size: int = 4                  # small: a kill loses at most one batch (seconds of work)
    retrieval: bool = True
    cram: dict = field(default_factory=lambda: dict(DEFAULT_CRAM))

    def __post_init__(self):
        self.normalise = parse_normalise(self.normalise)
        if (self.n_tokens is None) == (self.per_vector is None):
            raise BadInputError("give exactly one of --n-tokens N or --per-vector TOKENS|auto")
        for name in ("n_tokens", "per_vector"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 2):
                raise BadInputError(f"--{name.replace('_', '-')} must be an integer >= 2, got {v!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise BadInputError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")

    def to_dict(self) -> dict:
        return asdict(self) | {"normalise": list(self.normalise)}

    def digest(self) -> str:
        keep = {k: v for k, v in self.to_dict().items() if k not in ("batch_size", "retrieval")}
        keep["cram"] = {k: v for k, v in keep["cram"].items() if k != "progress"}
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]


# --- reading and normalising -----------------------------------------------------------------------------

def parse_normalise(spec) -> tuple[str, ...]:
    """'none' | 'all' | comma-separated steps (or a sequence of them) -> steps in the canonical order."""
    if spec is None or spec == "" or spec == "none":
        return ()
    if spec == "all":
        return NORMALISE_STEPS
    steps = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in steps if s not in NORMALISE_STEPS]
    if bad:
        raise BadInputError(f"unknown normalisation step(s) {', '.join(bad)}; use none, all or a comma list of "
                            f"{', '.join(NORMALISE_STEPS)}")
    return tuple(s for s in NORMALISE_STEPS if s in steps)


def boilerplate_lines(texts: list[str], min_fraction: float = 0.5) -> frozenset[str]:
    """Non-empty lines (stripped) that occur in at least `min_fraction` of the documents and in >= 2."""
    counts = Counter(line for t in texts for line in {ln.strip() for ln in t.splitlines() if ln.strip()})
    need = max(2, math.ceil(min_fraction * len(texts)))
    return frozenset(line for line, n in counts.items() if n >= need)


def normalise(text: str, steps, boilerplate: frozenset[str] = frozenset()) -> str:
    """Apply the steps in a fixed order: boilerplate lines out, whitespace collapsed, lower case."""
    steps = parse_normalise(steps)
    if "boilerplate" in steps:
        text = "\n".join(ln for ln in text.splitlines() if ln.strip() not in boilerplate)
    if "whitespace" in steps:
        text = re.sub(r"[ \t\u3000]+", " ", text)
        text = re.sub(r" *\n *", "\n", text)
        text = re.sub(r"\n{2,}", "\n", text).strip()
    if "case" in steps:
        text = text.lower()
    return text


# --- bytes ----------------------------------------------------------------------------------------------

def token_id_bytes(n_tokens: int, vocab_size: int) -> int:
    """Token ids packed at ceil(log2 |V|) bits each, rounded up to whole bytes."""
    return math.ceil(n_tokens * math.ceil(math.log2(vocab_size)) / 8)


def _zstd_compress(data: bytes) -> bytes | None:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdCompressor(level=19).compress(data)


def lzma_strongest(data: bytes) -> bytes:
    """`lzma.compress(data, preset=9 | PRESET_EXTREME)` with the dictionary cut to the input's size: the same
    bytes but the one header byte naming the dictionary, hence the same size (tests/test_practice.py), without
    preset 9's 64 MiB dictionary set up for every chunk — that took 33 ms a chunk, 134 of a 4,096-chunk
    batch's 240 s on an H100 (docs/data/poc_batch_profile_h100_2026-12-06.json)."""
    dict_size = min(1 << 26, max(4096, 1 << max(0, len(data) - 1).bit_length()))
    return lzma.compress(data, format=lzma.FORMAT_XZ, filters=[
        {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dict_size}])


def text_bytes(text: str) -> dict:
    """UTF-8 size and the sizes after gzip/bz2/lzma at their strongest settings (zstd if installed)."""
    data = text.encode("utf-8")
    zstd = _zstd_compress(data)
    return {"utf8": len(data), "gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "bz2": len(bz2.compress(data, 9)), "lzma": len(lzma_strongest(data)),
            "zstd": None if zstd is None else len(zstd)}


def vector_bytes(n_mem: int, d: int, precision: str) -> int:
    """Payload bytes of k vectors of size d; int8 adds one float32 scale per vector."""
    per_value = {"float32": 4, "bfloat16": 2, "float16": 2, "fp8_e4m3": 1, "int8": 1}
    if precision not in per_value:
        raise BadInputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return n_mem * d * per_value[precision] + (4 * n_mem if precision == "int8" else 0)


def round_vectors(vectors: torch.Tensor, precision: str) -> torch.Tensor:
    """The vectors after a round trip through `precision` (returned as float32, same shape)."""
    v = torch.as_tensor(vectors, dtype=torch.float32)
    if precision == "float32":
        return v.clone()
    if precision in ("bfloat16", "float16"):
        return v.to(getattr(torch, precision)).float()
    if precision == "fp8_e4m3":
        fmax = torch.finfo(torch.float8_e4m3fn).max
        return v.clamp(-fmax, fmax).to(torch.float8_e4m3fn).float()
    if precision == "int8":                       # symmetric, one scale per vector (the last dim)
        scale = v.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12) / 127.0
        return (v / scale).round().clamp(-127, 127) * scale
    raise BadInputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")


def changed_in_model_dtype(vectors: torch.Tensor, model_dtype: str) -> dict[str, list[float]]:
    """Per precision and vector row: the share of values that the model sees differently from the float32
    vector once both are cast to the model's dtype (decode casts its input). This is what explains a
    finer format decoding worse: with bfloat16 weights, float16-rounded values are rounded twice (fp16, then
    bf16) and some land on another bf16 value than the float32 original does; fp32 and bf16 show 0."""
    dt = getattr(torch, str(model_dtype).removeprefix("torch."), torch.float32)
    base = vectors.to(dt)
    return {p: (round_vectors(vectors, p).to(dt) != base).float().flatten(1).mean(1).tolist() for p in PRECISIONS}


def smallest_exact_precision(exact: dict[str, bool], n_mem: int, d: int) -> str | None:
    """The precision with the fewest bytes whose rounded vectors still decoded exactly (None: none did)."""
    ok = [p for p in PRECISIONS if exact.get(p)]
    return min(ok, key=lambda p: (vector_bytes(n_mem, d, p), PRECISIONS.index(p))) if ok else None


def lm_bits(result, vocab_size: int) -> float:
    """Σ −log2 p(token) under the same model without vectors: what an arithmetic coder driven by the
    model needs. Under the `pc` protocol every token is scored (the sink predicts t_1); under `hc` t_1 is
    not, so it is counted at log2 |V| bits."""
    bits = result.baseline_ce_nats / math.log(2)
    return bits + (math.log2(vocab_size) if result.n_scored < result.n_tokens else 0.0)


# --- cramming and measuring ------------------------------------------------------------------------------

@dataclass
class Planned:
    doc: Document                # for a chunk: doc_id "<file>#<chunk>", the file's group, encoding and hash
    token_ids: list[int]         # what is crammed
    n_mem: int
    n_tokens_document: int
    text: str                    # the crammed token ids decoded back to a string
    record_id: str = ""          # the file this is (a chunk of)
    chunk: int = 0
    n_chunks: int = 1


def chunk_ids(ids: list[int], per: int) -> list[list[int]]:
    """`ids` in chunks of `per` tokens; a last chunk of one token joins the one before (cramming needs 2)."""
    chunks = [ids[i:i + per] for i in range(0, len(ids), per)]
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return chunks


def plan_document(tokenizer, doc: Document, settings: PocSettings) -> list[Planned] | str:
    """What to cram for `doc`: its first N tokens as one unit, or (per_vector) every chunk of the whole
    document, one vector each; or a reason string when it cannot be crammed."""
    from cramlab.models.texts import encode
    ids = encode(tokenizer, doc.text)
    if len(ids) < 2:
        return f"too short ({len(ids)} token); cramming needs at least 2"
    if settings.n_tokens is not None:
        keep = ids[:settings.n_tokens]
        return [Planned(doc, keep, settings.n_mem, len(ids), tokenizer.decode(keep), doc.doc_id)]
    chunks = chunk_ids(ids, settings.per_vector)
    return [Planned(Document(f"{doc.doc_id}#{c}", doc.group, doc.text, doc.encoding, doc.sha256), part, 1, len(ids),
                    tokenizer.decode(part), doc.doc_id, c, len(chunks)) for c, part in enumerate(chunks)]


def plan_queries(tokenizer, planned: list[Planned], settings) -> list[Planned]:
    """One query per record: `query_tokens(settings)` tokens of its (first chunk's) crammed text, starting
    where a sentence (or line) chosen by the seed starts; the last tokens of the text when that sentence
    starts too late. All queries have the same length, so they are crammed in full batches (one vector each)."""
    from cramlab.models.texts import encode
    from cramlab.poc.retrieval import pick_query
    n_query = query_tokens(settings)
    seed = settings.cram.get("seed", 0)
    out = []
    for p in planned:
        if p.chunk != 0:
            continue
        start = p.text.find(pick_query(p.text, seed, p.record_id))
        ids = encode(tokenizer, p.text[max(0, start):])[:n_query]
        if len(ids) < n_query:
            ids = p.token_ids[-n_query:]
        if len(ids) >= 2:
            q = tokenizer.decode(ids)
            out.append(Planned(Document(f"query:{p.record_id}", "(query)", q, p.doc.encoding, p.doc.sha256), ids, 1,
                               len(ids), q, f"query:{p.record_id}"))
    return out


def query_tokens(settings) -> int:
    """Tokens per retrieval query: half of what one vector of a document holds (at least 2)."""
    return max(2, (settings.n_tokens or settings.per_vector) // 2)


def _cram(model, token_rows: list[list[int]], n_mem: int, settings: PocSettings, text_ids: list[str]):
    """The one call to `cramlab.engine.plain.cram` in this module. `settings.preset` picks a `CramSettings` preset
    (cramlab.engine.settings); `settings.cram` fields override it. Chunks of different lengths (every record's last
    chunk is shorter) are crammed right-padded (`mixed_lengths`), not one batch per length: engine.plain.length_groups
    keeps them in one batch unless padding costs more than another batch's fixed cost."""
    from cramlab.engine.plain import cram
    kwargs = dict(settings.cram)
    progress = kwargs.pop("progress", False)
    from cramlab.engine.settings import CramSettings
    base = CramSettings.from_preset(settings.preset) if settings.preset else None
    return cram(model, token_rows, base, n_mem=n_mem, decode=False, text_ids=text_ids, progress=progress,
                mixed_lengths=True, **kwargs)


def _decode_batch(model, vectors: torch.Tensor, results) -> list:
    """Greedy decode of every row of `vectors` (row i belongs to `results[i]`) in ONE batch to the longest text,
    each row cut to its own length (`engine.decode.decode` with one count per text: greedy decoding is causal).
    One batch per length cost a 4,096-chunk batch ~16 length groups x 5 precisions of launch-bound decodes."""
    from cramlab.engine.decode import decode
    s = results[0].settings
    first = [r.token_ids[0] for r in results] if s.get("protocol") == "hc" else None
    return decode(model, vectors, [r.n_tokens for r in results], layout=s.get("layout", "sink-first"),
                  protocol=s.get("protocol", "pc"), first_token_id=first, sink_token_id=s.get("sink_token_id"))


def measure_batch(model, planned: list[Planned], settings: PocSettings, out_dir: Path | None = None) -> list[dict]:
    """Cram a batch of documents, decode them back at every precision, and account bytes and seconds.
    Returns one record (plain dict) per document, in input order."""
    from cramlab.engine.decode import first_mismatch
    spec = model.spec
    records: list[dict | None] = [None] * len(planned)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(planned):
        groups.setdefault(p.n_mem, []).append(i)
    for n_mem, members in groups.items():
        t0 = time.perf_counter()
        results = _cram(model, [planned[i].token_ids for i in members], n_mem, settings,
                        [planned[i].doc.doc_id for i in members])
        encode_s = (time.perf_counter() - t0) / len(members)
        vectors = torch.stack([r.vectors for r in results])                        # (b, k, d) float32
        changed = changed_in_model_dtype(vectors, spec.dtype)
        t0 = time.perf_counter()                          # every precision's rounding decoded in one batch
        decoded = _decode_batch(model, torch.cat([round_vectors(vectors, q) for q in PRECISIONS]),
                                results * len(PRECISIONS))
        decode_s = (time.perf_counter() - t0) / len(PRECISIONS) / len(members)   # per document and precision
        n = len(results)
        rows_of = {q: decoded[k * n:(k + 1) * n] for k, q in enumerate(PRECISIONS)}       # one block per precision
        exact = {q: [d.token_ids == r.token_ids for d, r in zip(rows, results)] for q, rows in rows_of.items()}
        fp32 = rows_of["float32"]
        mismatch = {j: first_mismatch(d.token_ids, r.token_ids) for j, (d, r) in enumerate(zip(fp32, results))}
        texts = {j: d.text for j, d in enumerate(fp32)}
        for j, (i, r) in enumerate(zip(members, results)):
            p = planned[i]
            by_precision = {q: bool(exact[q][j]) for q in PRECISIONS}
            bits = lm_bits(r, spec.vocab_size)
            vector_file = None
            if out_dir is not None:
                vector_file = save_vectors_without_text(out_dir / "vectors" / f"{p.doc.doc_id}.safetensors", r, spec)
            records[i] = {
                "text_id": p.doc.doc_id, "group": p.doc.group, "kind": "document", "record_id": p.record_id,
                "chunk": p.chunk, "n_chunks": p.n_chunks, "content_sha256": p.doc.sha256, "encoding": p.doc.encoding,
                "model": spec.name, "source": "poc", "layout": r.settings.get("layout"),
                "protocol": r.settings.get("protocol"), "n_mem": n_mem, "n_tokens": r.n_tokens,
                "n_tokens_document": p.n_tokens_document,
                "truncated_tokens": p.n_tokens_document - r.n_tokens if settings.n_tokens else 0,
                "chars_document": len(p.doc.text), "chars": len(p.text),
                "tokens_per_char": p.n_tokens_document / max(1, len(p.doc.text)),
                "baseline_ce_per_token_nats": r.baseline_ce_per_token_nats,
                "greedy_exact": by_precision["float32"], "first_mismatch": mismatch[j],
                "teacher_forced_accuracy": r.teacher_forced_accuracy, "steps": r.steps, "converged": r.converged,
                "stop_reason": r.stop_reason, "decoded_text": texts[j], "text": p.text,
                "bytes": text_bytes(p.text) | {
                    "token_ids": token_id_bytes(r.n_tokens, spec.vocab_size), "lm": math.ceil(bits / 8),
                    **{f"vectors_{q}": vector_bytes(n_mem, spec.d, q) for q in PRECISIONS}},
                "bits_lm": bits, "exact_by_precision": by_precision, "model_dtype": spec.dtype,
                "changed_fraction_in_model_dtype": {q: changed[q][j] for q in PRECISIONS},
                "smallest_exact_precision": smallest_exact_precision(by_precision, n_mem, spec.d),
                "encode_seconds": encode_s, "decode_seconds": decode_s, "crammed_together": len(members),
                "device": spec.device, "vector_file": str(vector_file) if vector_file else None,
                "settings_digest": settings.digest(), "cram_settings": r.settings,
            }
    return records  # type: ignore[return-value]


# --- the resumable run ------------------------------------------------------------------------------------

@dataclass
class PocRun:
    """What `run_poc` produced: the per-document lines, the files it skipped, and where they are."""
    settings: PocSettings
    records: list[dict]
    queries: list[dict]
    skipped: list[SkippedFile]
    out_dir: str
    n_resumed: int
    boilerplate: dict                   # group -> lines removed as boilerplate
    phase_seconds: dict = field(default_factory=dict)   # wall seconds of this call's phases (resumed work: 0)

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(), "records": self.records, "queries": self.queries,
                "skipped": [s.to_dict() for s in self.skipped], "out_dir": self.out_dir,
                "n_resumed": self.n_resumed, "boilerplate": self.boilerplate, "phase_seconds": self.phase_seconds}


def prepare(tokenizer, folder, settings: PocSettings):
    """Read, normalise and plan the documents: (planned units, skipped, boilerplate lines per group).
    Boilerplate is found within each group (folder), where forms of one kind repeat their lines."""
    docs, skipped = read_documents(folder, settings.pattern, settings.encoding)
    boiler: dict[str, frozenset[str]] = {}
    if "boilerplate" in settings.normalise:
        for g in sorted({d.group for d in docs}):
            boiler[g] = boilerplate_lines([d.text for d in docs if d.group == g])
    planned = []
    for d in docs:
        text = normalise(d.text, settings.normalise, boiler.get(d.group, frozenset()))
        p = plan_document(tokenizer, Document(d.doc_id, d.group, text, d.encoding, d.sha256), settings)
        if isinstance(p, str):
            skipped.append(SkippedFile(d.doc_id, p))
        else:
            planned += p
    return planned, skipped, {g: sorted(v) for g, v in boiler.items()}


def run_poc(model, folder, out_dir, settings: PocSettings, *, progress: bool = True,
            after_document=None, log=None) -> PocRun:
    """Cram every document of `folder` (resuming `out_dir/documents.jsonl`: a line counts only if its
    file's content hash is unchanged), then its retrieval queries. Wall seconds of each phase go to
    `PocRun.phase_seconds`. `after_document(record)` is called after each line is on disk (tests use it);
    `log(line)`, if given, gets a line per batch and per phase as it ends (a killed run still shows its times)."""
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = out_dir / LINES_FILE
    t_start = time.perf_counter()
    planned, skipped, boiler = prepare(model.tokenizer, folder, settings)
    done = _done_lines(lines, settings)

    def fresh(p: Planned) -> bool:
        return p.doc.doc_id in done and done[p.doc.doc_id].get("content_sha256") == p.doc.sha256
    todo: list[Planned] = [p for p in planned if not fresh(p)]
    n_resumed = len(planned) - len(todo)
    queries = [q for q in plan_queries(model.tokenizer, planned, settings) if not fresh(q)] \
        if settings.retrieval else []
    phase = {"read_and_plan": time.perf_counter() - t_start}
    bar = tqdm(total=len(todo) + len(queries) + n_resumed, initial=n_resumed, desc="documents", unit="doc",
               disable=not progress)
    for name, units in (("documents", todo), ("queries", queries)):      # documents first, then queries
        t0 = time.perf_counter()
        for i in range(0, len(units), settings.batch_size):
            batch = units[i:i + settings.batch_size]
            recs = measure_batch(model, batch, settings, out_dir)
            for rec, p in zip(recs, batch):
                rec["kind"] = "query" if p.doc.group == "(query)" else "document"
            append_lines(lines, recs)          # one fsynced write per batch: a kill loses at most this batch
            if log is not None:
                log(f"{name} {i + len(batch):,}/{len(units):,}: {time.perf_counter() - t0:.1f} s into the phase")
            for rec in recs:
                done[rec["text_id"]] = rec
                bar.update(1)
                if after_document is not None:
                    after_document(rec)
        phase[name] = time.perf_counter() - t0
        if log is not None:
            log(f"phase {name}: {phase[name]:.1f} s")
    bar.close()
    records = [done[p.doc.doc_id] for p in planned if p.doc.doc_id in done]
    wanted_q = {f"query:{p.record_id}" for p in planned}
    queries = [r for r in done.values() if r.get("kind") == "query" and r["text_id"] in wanted_q]
    return PocRun(settings, records, queries, skipped, str(out_dir), n_resumed, boiler, phase)


def _done_lines(lines: Path, settings: PocSettings) -> dict[str, dict]:
    rows = read_results(lines)
    digest = settings.digest()
    for row in rows:
        if row.get("settings_digest") != digest:
            raise ConfigError(f"{lines} holds results made with other settings; use another --out, or the same "
                              "settings to resume")
    return {r["text_id"]: r for r in rows}
