"""The proof of concept's aggregate and its two report files: report.json and a self-contained report.html.

Owns: summing the per-document lines of `cramlab.poc.run` into one `PocSummary` (bytes, ratios against
UTF-8, whole-record reconstruction, precision with the model dtype, cost per phase, per-group figures
such as Japanese against English), attaching the alternatives, costs, break-even and verdict
(`cramlab.poc.verdict`), and writing report.json.
Does not own: measuring anything (practice.py, practice_coder.py, practice_retrieval.py) or drawing the
HTML page (`cramlab.poc.html`).
"""
from __future__ import annotations

import bz2
import datetime as _dt
import gzip
import json
import lzma
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

from cramlab.poc.run import PRECISIONS, _zstd_compress

SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "fp8_e4m3": "fp8", "int8": "int8"}
TEXT_METHODS = ("utf8", "token_ids", "gzip", "bz2", "lzma", "zstd", "lm")


@dataclass
class PocSummary:
    """Aggregate figures of one PoC (plain data; `to_dict()` is what `--json` prints)."""
    n_texts: int
    n_skipped: int
    reconstruction_rate: float
    mean_token_accuracy: float
    mean_first_mismatch: float | None          # over the documents that did not decode exactly
    n_tokens_total: int
    bytes_utf8: int
    bytes_token_ids: int
    bytes_gzip: int
    bytes_bz2: int
    bytes_lzma: int
    bytes_zstd: int | None
    bits_lm: float
    bytes_lm: int
    bytes_vectors_fp32: int
    bytes_vectors_bf16: int
    bytes_vectors_fp16: int
    bytes_vectors_fp8: int
    bytes_vectors_int8: int
    corpus_bytes: dict                          # the crammed texts as ONE stream (as an archive would hold them)
    ratio_to_utf8: dict                         # every method's bytes / UTF-8 bytes (per-document sums)
    smallest_method: str
    exact_rate_by_precision: dict
    smallest_exact_precision_counts: dict
    encode_seconds: float
    decode_seconds: float
    encode_seconds_per_doc: float
    decode_seconds_per_doc: float
    encode_seconds_per_token: float
    docs_per_hour: float                        # cramming + one float32 decode only (see `rates` for phases)
    seconds_per_1000_docs: float                # the same two steps
    device: str
    by_group: dict
    n_records: int = 0                          # files (a whole record may be several chunks = vectors)
    n_vectors: int = 0
    chunk_reconstruction_rate: float = 0.0      # per crammed unit; reconstruction_rate is per whole record
    model_dtype: str = ""
    changed_fraction_in_model_dtype: dict = field(default_factory=dict)
    rates: dict = field(default_factory=dict)   # records per hour, each naming the phases it covers
    phase_seconds: dict = field(default_factory=dict)
    alternatives: dict = field(default_factory=dict)
    cost_model: dict = field(default_factory=dict)
    costs: list = field(default_factory=list)
    break_even: dict = field(default_factory=dict)
    verdict: dict = field(default_factory=dict)  # lang -> rows
    retrieval: dict = field(default_factory=dict)
    privacy: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _sum(records, key):
    vals = [r["bytes"][key] for r in records]
    return None if any(v is None for v in vals) else int(sum(vals))


def corpus_bytes(texts: list[str]) -> dict:
    """The texts joined by newlines and compressed as one stream (gzip/bz2/lzma/zstd)."""
    data = "\n".join(texts).encode("utf-8")
    zstd = _zstd_compress(data)
    return {"utf8": len(data), "gzip": len(gzip.compress(data, 9, mtime=0)), "bz2": len(bz2.compress(data, 9)),
            "lzma": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
            "zstd": None if zstd is None else len(zstd)}


def group_figures(records: list[dict]) -> dict:
    """Per group (folder): tokens per character, CE per token, tokens and characters per vector, reconstruction."""
    out = {}
    for g in sorted({r["group"] for r in records}):
        rs = [r for r in records if r["group"] == g]
        out[g] = {
            "n_texts": len(rs),
            "tokens_per_char": mean(r["tokens_per_char"] for r in rs),
            "ce_per_token_nats": mean(r["baseline_ce_per_token_nats"] for r in rs),
            "ce_per_token_bits": mean(r["baseline_ce_per_token_nats"] for r in rs) / math.log(2),
            "bits_per_char": sum(r["bits_lm"] for r in rs) / sum(r["chars"] for r in rs),   # crammed part, no vector
            "tokens_per_vector": mean(r["n_tokens"] / r["n_mem"] for r in rs),
            "chars_per_vector": mean(r["chars"] / r["n_mem"] for r in rs),
            "reconstruction_rate": float(mean(record_exact(rs).values())),     # whole records
            "n_records": len(record_exact(rs)),
            "mean_token_accuracy": mean(r["teacher_forced_accuracy"] for r in rs),
            "mean_steps": mean(r["steps"] for r in rs),
            "bf16_vector_to_utf8_ratio": sum(r["bytes"]["vectors_bfloat16"] for r in rs)
            / sum(r["bytes"]["utf8"] for r in rs),
        }
    return out


def machine_info() -> dict:
    import torch
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def record_exact(records: list[dict]) -> dict[str, bool]:
    """record_id -> every chunk of that record decoded exactly (float32 greedy)."""
    out: dict[str, bool] = {}
    for r in records:
        rid = r.get("record_id") or r["text_id"]
        out[rid] = out.get(rid, True) and bool(r["greedy_exact"])
    return out


def record_texts(records: list[dict]) -> dict[str, str]:
    """record_id -> its crammed text (chunks joined in order): what the alternatives store."""
    out: dict[str, list] = {}
    for r in sorted(records, key=lambda r: (r.get("record_id") or r["text_id"], r.get("chunk", 0))):
        out.setdefault(r.get("record_id") or r["text_id"], []).append(r["text"])
    return {k: "".join(v) for k, v in out.items()}


def rates(n_records: int, enc: float, dec: float, phases: dict, resumed: int = 0) -> dict:
    """Records per hour, each labelled with what it covers. The phase rates need a run that did all its
    work in this call (`resumed` == 0): a resumed call's phases timed only part of it."""
    per_hour = {"cram_plus_fp32_decode": 3600 * n_records / (enc + dec) if enc + dec > 0 else None}
    if phases.get("documents") and not resumed:
        per_hour["documents_phase"] = 3600 * n_records / phases["documents"]
    total = sum(v for v in phases.values() if isinstance(v, (int, float)))
    if total and phases.get("documents") and not resumed:
        per_hour["all_phases"] = 3600 * n_records / total
    return {"records_per_hour": per_hour, "covers": {
        "cram_plus_fp32_decode": "cramming + one float32 greedy decode per record (no other precision, no I/O)",
        "documents_phase": "the timed documents phase: cram + decode at five precisions + bytes + vector files",
        "all_phases": "every timed phase of this call: " + ", ".join(k for k in phases)}}


def summarise(run, retrieval: dict | None = None, privacy: dict | None = None, alternatives: dict | None = None,
              prices=None) -> PocSummary:
    """One PocSummary from a `PocRun` (its records are the finished documents), with the verdict."""
    rs = run.records
    if not rs:
        from cramlab.errors import BadInputError
        raise BadInputError("no document was crammed (all skipped?); see the skipped files and their reasons")
    n = len(rs)
    b = {k: _sum(rs, k) for k in TEXT_METHODS} | {f"vectors_{SHORT[p]}": _sum(rs, f"vectors_{p}") for p in PRECISIONS}
    ratios = {k: (v / b["utf8"] if v is not None else None) for k, v in b.items()}
    fails = [r["first_mismatch"] for r in rs if not r["greedy_exact"] and r["first_mismatch"] is not None]
    enc = sum(r["encode_seconds"] for r in rs)
    dec = sum(r["decode_seconds"] for r in rs)
    counts = {SHORT[p]: sum(r["smallest_exact_precision"] == p for r in rs) for p in PRECISIONS}
    counts["none"] = sum(r["smallest_exact_precision"] is None for r in rs)
    rec_ok = record_exact(rs)
    summary = PocSummary(
        n_texts=n, n_skipped=len(run.skipped),
        reconstruction_rate=float(mean(rec_ok.values())),
        mean_token_accuracy=mean(r["teacher_forced_accuracy"] for r in rs),
        mean_first_mismatch=mean(fails) if fails else None,
        n_tokens_total=sum(r["n_tokens"] for r in rs),
        bytes_utf8=b["utf8"], bytes_token_ids=b["token_ids"], bytes_gzip=b["gzip"], bytes_bz2=b["bz2"],
        bytes_lzma=b["lzma"], bytes_zstd=b["zstd"], bits_lm=sum(r["bits_lm"] for r in rs), bytes_lm=b["lm"],
        bytes_vectors_fp32=b["vectors_fp32"], bytes_vectors_bf16=b["vectors_bf16"],
        bytes_vectors_fp16=b["vectors_fp16"],
        bytes_vectors_fp8=b["vectors_fp8"], bytes_vectors_int8=b["vectors_int8"],
        corpus_bytes=corpus_bytes(list(record_texts(rs).values())), ratio_to_utf8=ratios,
        smallest_method=min((k for k in b if b[k] is not None and k != "lm"), key=lambda k: b[k]),  # lm: a bound
        exact_rate_by_precision={SHORT[p]: float(mean(bool(r["exact_by_precision"][p]) for r in rs))
                                 for p in PRECISIONS},
        smallest_exact_precision_counts=counts,
        encode_seconds=enc, decode_seconds=dec, encode_seconds_per_doc=enc / n, decode_seconds_per_doc=dec / n,
        encode_seconds_per_token=enc / sum(r["n_tokens"] for r in rs),
        docs_per_hour=3600 * n / (enc + dec) if enc + dec > 0 else math.inf,
        seconds_per_1000_docs=1000 * (enc + dec) / n, device=rs[0]["device"], by_group=group_figures(rs),
        retrieval=retrieval or {}, privacy=privacy or {}, skipped=[s.to_dict() for s in run.skipped],
        settings=run.settings.to_dict(), machine=machine_info(), n_records=len(rec_ok),
        n_vectors=sum(r["n_mem"] for r in rs),
        chunk_reconstruction_rate=float(mean(bool(r["greedy_exact"]) for r in rs)),
        model_dtype=str(rs[0].get("model_dtype", "")),
        changed_fraction_in_model_dtype={SHORT[p]: mean(r["changed_fraction_in_model_dtype"][p] for r in rs)
                                         for p in PRECISIONS if "changed_fraction_in_model_dtype" in rs[0]},
        rates=rates(len(rec_ok), enc, dec, run.phase_seconds, run.n_resumed), phase_seconds=dict(run.phase_seconds),
        alternatives=alternatives or {})
    from cramlab.poc.verdict import LANGS, CostModel, break_even, costs, verdict
    prices = prices or CostModel()
    d = rs[0]["bytes"]["vectors_float32"] // (4 * rs[0]["n_mem"])
    summary.cost_model = prices.to_dict()
    summary.costs = costs(summary.to_dict(), prices)
    summary.break_even = break_even(summary.to_dict(), d)
    summary.verdict = {lang: verdict(summary.to_dict(), summary.costs, lang) for lang in LANGS}
    return summary


# --- files ------------------------------------------------------------------------------------------------

def write_report(out_dir, summary: PocSummary, records: list[dict], lang: str = "en") -> tuple[Path, Path]:
    """report.json (the summary and every per-document line) and report.html; returns both paths."""
    out_dir = Path(out_dir)
    js = out_dir / "report.json"
    js.write_text(json.dumps({"verdict": summary.verdict, "summary": summary.to_dict(), "documents": records},
                             indent=1, ensure_ascii=False),
                  encoding="utf-8")
    page = out_dir / "report.html"
    from cramlab.poc.html import report_html
    page.write_text(report_html(summary, records, lang), encoding="utf-8")
    return js, page
