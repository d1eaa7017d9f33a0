"""The proof of concept's aggregate and its two report files: report.json and a self-contained report.html.

Owns: summing the per-document lines of `cramlab.practice` into one `PocSummary` (bytes, ratios against
UTF-8, reconstruction, precision, cost, per-group figures such as Japanese against English), and drawing
the report (plotly, its JavaScript inlined so the HTML opens offline).
Does not own: measuring anything (practice.py, practice_retrieval.py).
"""
from __future__ import annotations

import bz2
import datetime as _dt
import gzip
import html
import json
import lzma
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

from .practice import PRECISIONS, _zstd_compress

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
    docs_per_hour: float
    seconds_per_1000_docs: float
    device: str
    by_group: dict
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
            "reconstruction_rate": float(mean(bool(r["greedy_exact"]) for r in rs)),
            "mean_token_accuracy": mean(r["teacher_forced_accuracy"] for r in rs),
            "mean_steps": mean(r["steps"] for r in rs),
            "bf16_vector_to_utf8_ratio": sum(r["bytes"]["vectors_bfloat16"] for r in rs) / sum(r["bytes"]["utf8"] for r in rs),
        }
    return out


def machine_info() -> dict:
    import torch
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def summarise(run, retrieval: dict | None = None, privacy: dict | None = None) -> PocSummary:
    """One PocSummary from a `PocRun` (its records are the finished documents)."""
    rs = run.records
    if not rs:
        from .errors import BadInputError
        raise BadInputError("no document was crammed (all skipped?); see the skipped files and their reasons")
    n = len(rs)
    b = {k: _sum(rs, k) for k in TEXT_METHODS} | {f"vectors_{SHORT[p]}": _sum(rs, f"vectors_{p}") for p in PRECISIONS}
    ratios = {k: (v / b["utf8"] if v is not None else None) for k, v in b.items()}
    fails = [r["first_mismatch"] for r in rs if not r["greedy_exact"] and r["first_mismatch"] is not None]
    enc = sum(r["encode_seconds"] for r in rs)
    dec = sum(r["decode_seconds"] for r in rs)
    counts = {SHORT[p]: sum(r["smallest_exact_precision"] == p for r in rs) for p in PRECISIONS}
    counts["none"] = sum(r["smallest_exact_precision"] is None for r in rs)
    return PocSummary(
        n_texts=n, n_skipped=len(run.skipped),
        reconstruction_rate=float(mean(bool(r["greedy_exact"]) for r in rs)),
        mean_token_accuracy=mean(r["teacher_forced_accuracy"] for r in rs),
        mean_first_mismatch=mean(fails) if fails else None,
        n_tokens_total=sum(r["n_tokens"] for r in rs),
        bytes_utf8=b["utf8"], bytes_token_ids=b["token_ids"], bytes_gzip=b["gzip"], bytes_bz2=b["bz2"],
        bytes_lzma=b["lzma"], bytes_zstd=b["zstd"], bits_lm=sum(r["bits_lm"] for r in rs), bytes_lm=b["lm"],
        bytes_vectors_fp32=b["vectors_fp32"], bytes_vectors_bf16=b["vectors_bf16"], bytes_vectors_fp16=b["vectors_fp16"],
        bytes_vectors_fp8=b["vectors_fp8"], bytes_vectors_int8=b["vectors_int8"],
        corpus_bytes=corpus_bytes([r["text"] for r in rs]), ratio_to_utf8=ratios,
        smallest_method=min((k for k in b if b[k] is not None), key=lambda k: b[k]),
        exact_rate_by_precision={SHORT[p]: float(mean(bool(r["exact_by_precision"][p]) for r in rs)) for p in PRECISIONS},
        smallest_exact_precision_counts=counts,
        encode_seconds=enc, decode_seconds=dec, encode_seconds_per_doc=enc / n, decode_seconds_per_doc=dec / n,
        encode_seconds_per_token=enc / sum(r["n_tokens"] for r in rs),
        docs_per_hour=3600 * n / (enc + dec) if enc + dec > 0 else math.inf,
        seconds_per_1000_docs=1000 * (enc + dec) / n, device=rs[0]["device"], by_group=group_figures(rs),
        retrieval=retrieval or {}, privacy=privacy or {}, skipped=[s.to_dict() for s in run.skipped],
        settings=run.settings.to_dict(), machine=machine_info())


# --- files ------------------------------------------------------------------------------------------------

def write_report(out_dir, summary: PocSummary, records: list[dict]) -> tuple[Path, Path]:
    """report.json (the summary and every per-document line) and report.html; returns both paths."""
    out_dir = Path(out_dir)
    js = out_dir / "report.json"
    js.write_text(json.dumps({"summary": summary.to_dict(), "documents": records}, indent=1, ensure_ascii=False),
                  encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(report_html(summary, records), encoding="utf-8")
    return js, page


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])

    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figures(summary: PocSummary) -> list:
    """The report's plotly figures: bytes per method, reconstruction per group, precision, retrieval."""
    import plotly.graph_objects as go
    s = summary
    methods = {"UTF-8": s.bytes_utf8, "token ids": s.bytes_token_ids, "gzip": s.bytes_gzip, "bz2": s.bytes_bz2,
               "lzma": s.bytes_lzma, "zstd": s.bytes_zstd, "model arithmetic coding (Σ−log2 p)": s.bytes_lm,
               **{f"vectors {k}": getattr(s, f"bytes_vectors_{k}") for k in SHORT.values()}}
    methods = {k: v for k, v in methods.items() if v is not None}
    figs = [go.Figure(go.Bar(x=list(methods), y=list(methods.values()), text=[f"{v / s.bytes_utf8:.2f}× UTF-8"
                                                                               for v in methods.values()]),
                      layout=dict(title=f"Bytes for {s.n_texts} crammed texts (per-document sums; smaller is better)",
                                  yaxis=dict(type="log", title="bytes")))]
    groups = list(s.by_group)
    figs.append(go.Figure([go.Bar(name="reconstruction rate (greedy exact)", x=groups,
                                  y=[s.by_group[g]["reconstruction_rate"] for g in groups]),
                           go.Bar(name="mean teacher-forced accuracy", x=groups,
                                  y=[s.by_group[g]["mean_token_accuracy"] for g in groups])],
                          layout=dict(title="Reconstruction per group", yaxis=dict(range=[0, 1.05]), barmode="group")))
    figs.append(go.Figure(go.Bar(x=list(s.smallest_exact_precision_counts),
                                 y=list(s.smallest_exact_precision_counts.values())),
                          layout=dict(title="Smallest precision whose rounded vectors still decode exactly "
                                            "(documents)", yaxis=dict(title="documents"))))
    r = s.retrieval
    if r.get("n_queries"):
        k = r["top_k"]
        names = ["recall@1", f"recall@{k}"]
        figs.append(go.Figure([go.Bar(name=m, x=names, y=[r[f"{key}_recall_at_1"], r[f"{key}_recall_at_{k}"]])
                               for m, key in (("cosine on crammed vectors", "vectors"), ("BM25 on text", "bm25"),
                                              ("chance", "chance"))],
                              layout=dict(title=f"Retrieval: {r['n_queries']} queries, {r['n_documents']} documents",
                                          yaxis=dict(range=[0, 1.05]), barmode="group")))
    return figs


def report_html(summary: PocSummary, records: list[dict]) -> str:
    """A self-contained page: key figures, per-group table, charts (plotly.js inlined once), documents."""
    import plotly.io as pio
    s = summary
    charts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figures(s))]
    key = [{"figure": k, "value": getattr(s, k)} for k in (
        "n_texts", "n_skipped", "reconstruction_rate", "mean_token_accuracy", "n_tokens_total", "bytes_utf8",
        "bytes_gzip", "bytes_lm", "bytes_vectors_bf16", "smallest_method", "encode_seconds_per_doc",
        "decode_seconds_per_doc", "docs_per_hour", "seconds_per_1000_docs", "device")]
    groups = [{"group": g} | v for g, v in s.by_group.items()]
    docs = [{"document": r["text_id"], "group": r["group"], "tokens": r["n_tokens"], "k": r["n_mem"],
             "exact": r["greedy_exact"], "first mismatch": r["first_mismatch"],
             "smallest exact precision": r["smallest_exact_precision"], "UTF-8 B": r["bytes"]["utf8"],
             "gzip B": r["bytes"]["gzip"], "bf16 B": r["bytes"]["vectors_bfloat16"],
             "encode s": r["encode_seconds"]} for r in records]
    privacy = s.privacy or {}
    priv = (f"<p>A vector file decoded by a separate process given only the file and the model name "
            f"(<code>{html.escape(str(privacy.get('command', '')))}</code>): "
            f"<b>{'the exact text came back' if privacy.get('ok') else 'not exact / not run'}</b>. Treat vectors "
            "like plaintext: encryption at rest and access control, not obscurity.</p>") if privacy else ""
    ret = s.retrieval
    ret_rows = [{k: v for k, v in ret.items() if not isinstance(v, dict)}] if ret.get("n_queries") else []
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>cramlab proof of concept</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}</style></head><body>
<h1>Cramming in practice: proof of concept</h1>
<p>Model <b>{html.escape(str(s.settings.get('model')))}</b> on {html.escape(s.device)},
{s.machine.get('date_utc', '')}, {s.machine.get('cpu_count')} CPU cores. Settings:
<code>{html.escape(json.dumps(s.settings, ensure_ascii=False))}</code></p>
<p>Smallest representation of the crammed texts: <b>{html.escape(s.smallest_method)}</b>.
The paper's ×1568 counts token positions, not bytes.</p>
<h2>Key figures</h2>{_table(key)}
<h2>Per group</h2>{_table(groups)}
{''.join(charts)}
<h2>Retrieval</h2><p>{html.escape(str(ret.get('query_vector', '')))}</p>{_table(ret_rows)}
<h2>Privacy</h2>{priv}
<h2>Skipped files</h2>{_table(s.skipped)}
<h2>Documents</h2>{_table(docs)}
</body></html>"""
