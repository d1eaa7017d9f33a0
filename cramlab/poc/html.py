"""report.html of a proof of concept, written for people: the verdict on top, plain labels with units,
numbers formatted for reading, and four charts (bytes, recovery, recall, cost).

Owns: number formatting (`fmt`), the plain labels, the plotly figures (`figures`) and the page
(`report_html`, plotly.js inlined once so it opens offline).
Does not own: any figure on the page; every one comes from the `PocSummary` (cramlab.poc.report).
"""

from __future__ import annotations

import html
import json
import math

HEAD = {
    "en": {
        "title": "Cramming records into vectors: proof of concept",
        "verdict": "Verdict",
        "question": "Question",
        "crammed": "Crammed vectors",
        "alternative": "Best alternative",
        "answer": "Verdict",
        "instead": "Use instead",
        "key": "Key figures",
        "bytes": "Bytes per representation",
        "costs": "Cost per representation",
        "break": "Break-even: when would one vector be smaller than zstd?",
        "groups": "Per group",
        "retrieval": "Search",
        "privacy": "Privacy",
        "skipped": "Skipped files",
        "documents": "Documents",
        "examples": "Prices are EXAMPLES; pass your own.",
    },
    "ja": {
        "title": "記録をベクトルに詰め込む：概念実証",
        "verdict": "結論",
        "question": "問い",
        "crammed": "クラミングしたベクトル",
        "alternative": "最良の代替手段",
        "answer": "判定",
        "instead": "代わりに使うもの",
        "key": "主要な数値",
        "bytes": "表現ごとのバイト数",
        "costs": "表現ごとの費用",
        "break": "損益分岐：ベクトル1本が zstd より小さくなるのはいつか",
        "groups": "グループ別",
        "retrieval": "検索",
        "privacy": "プライバシー",
        "skipped": "読み飛ばしたファイル",
        "documents": "文書",
        "examples": "価格は例です。実際の価格を指定してください。",
    },
}


def fmt(v) -> str:
    """A number as people read it: thousands separators, no exponents, 3 significant digits below 1,000."""
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "—"}[v]
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 0.001:
            return f"{v:.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"
        return f"{v:.6f}".rstrip("0")
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v) or "—"
    return str(v)


def _table(rows: list[dict], labels: dict | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape((labels or {}).get(c, c.replace('_', ' ')))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_figures(s) -> list[dict]:
    """(figure, value) rows with plain labels and units."""
    rate = s.rates.get("records_per_hour", {}) if s.rates else {}
    rows = [
        ("records crammed / files skipped", f"{s.n_records:,} / {s.n_skipped:,}"),
        ("vectors (one per chunk)", fmt(s.n_vectors)),
        ("whole records rebuilt exactly from their vectors", f"{s.reconstruction_rate:.1%}"),
        ("chunks rebuilt exactly", f"{s.chunk_reconstruction_rate:.1%}"),
        ("tokens crammed", fmt(s.n_tokens_total)),
        ("text size, UTF-8", f"{fmt(s.bytes_utf8)} bytes"),
        (
            "vectors, bfloat16",
            f"{fmt(s.bytes_vectors_bf16)} bytes ({s.bytes_vectors_bf16 / s.bytes_utf8:.1f}× the text)",
        ),
        ("model dtype (what decoding casts vectors to)", s.model_dtype or "—"),
        (
            "seconds to cram one record / decode one record",
            f"{fmt(s.encode_seconds_per_doc)} s / {fmt(s.decode_seconds_per_doc)} s",
        ),
        ("device", s.device),
    ]
    rows += [(f"records per hour: {s.rates['covers'][k]}", fmt(v)) for k, v in rate.items() if v is not None]
    return [{"figure": a, "value": b} for a, b in rows]


def figures(s) -> list:
    """Plotly figures: bytes per representation, recovery per group, recall per method, cost per method."""
    import plotly.graph_objects as go

    per = {c["representation"]: c["bytes_per_record"] for c in s.costs}
    figs = [
        go.Figure(
            go.Bar(x=list(per), y=list(per.values()), text=[f"{v:,.0f} B" for v in per.values()]),
            layout=dict(title="Bytes per record (smaller is better)", yaxis=dict(type="log", title="bytes")),
        )
    ]
    groups = list(s.by_group)
    figs.append(
        go.Figure(
            [
                go.Bar(name="whole records exact", x=groups, y=[s.by_group[g]["reconstruction_rate"] for g in groups]),
                go.Bar(
                    name="token accuracy (teacher-forced)",
                    x=groups,
                    y=[s.by_group[g]["mean_token_accuracy"] for g in groups],
                ),
            ],
            layout=dict(
                title="Getting the text back, per group", yaxis=dict(range=[0, 1.05], tickformat=".0%"), barmode="group"
            ),
        )
    )
    r = s.retrieval
    if r.get("n_queries"):
        names = {"vectors": "crammed vectors", "bm25": "BM25", "dense": "dense embeddings", "chance": "chance"}
        ms = [m for m in names if f"{m}_recall_at_1" in r]
        figs.append(
            go.Figure(
                go.Bar(x=[names[m] for m in ms], y=[r[f"{m}_recall_at_1"] for m in ms]),
                layout=dict(
                    title=f"Search: recall@1 over {r['n_queries']:,} queries",
                    yaxis=dict(range=[0, 1.05], tickformat=".0%"),
                ),
            )
        )
    figs.append(
        go.Figure(
            [
                go.Bar(name=k, x=[c["representation"] for c in s.costs], y=[c[f"{k}_usd_per_million"] for c in s.costs])
                for k in ("encode", "decode")
            ],
            layout=dict(title="Dollars per million records (example prices)", barmode="group", yaxis=dict(title="USD")),
        )
    )
    return figs


def _privacy_line(priv: dict) -> str:
    if priv.get("ok") and priv.get("equals_original"):
        return ("A separate process rebuilt the exact text from one vector file and the model name: "
                "treat vectors like the plaintext.")
    return "Privacy check not run, or the vector did not give the original text back."


def report_html(s, records: list[dict], lang: str = "en") -> str:
    """The page: verdict, key figures, bytes, costs, break-even, groups, charts, search, privacy, files."""
    import plotly.io as pio

    h = HEAD.get(lang, HEAD["en"])
    charts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figures(s))]
    verdict = s.verdict.get(lang) or s.verdict.get("en", [])
    vlabels = {
        "question": h["question"],
        "crammed": h["crammed"],
        "alternative": h["alternative"],
        "verdict": h["answer"],
        "use_instead": h["instead"],
    }
    be = s.break_even.get("rows", [])
    be_rows = [
        {
            "point": r["point"],
            "tokens per vector": r["tokens_per_vector"],
            "zstd bytes for those tokens": r["zstd_bytes_for_those_tokens"],
            "vector bytes bf16": r["vector_bytes_bf16"],
            "vector bytes fp8": r["vector_bytes_fp8"],
            "tokens needed to break even (fp8)": r["tokens_to_break_even_fp8"],
            "storage wins at": r["storage_wins_at"] or "no precision",
        }
        for r in be
    ]
    cost_rows = [
        {
            "representation": c["representation"],
            "machine": c["machine"],
            "bytes per record": c["bytes_per_record"],
            "encode $ / 1,000": c["encode_usd_per_1000"],
            "encode $ / million": c["encode_usd_per_million"],
            "decode $ / million": c["decode_usd_per_million"],
            "storage $ / month / million": c["storage_usd_month_per_million"],
        }
        for c in s.costs
    ]
    groups = [
        {
            "group": g,
            "records": v.get("n_records", v["n_texts"]),
            "tokens per character": v["tokens_per_char"],
            "bits per token (no vector)": v["ce_per_token_bits"],
            "bits per character": v["bits_per_char"],
            "whole records exact": v["reconstruction_rate"],
            "token accuracy": v["mean_token_accuracy"],
        }
        for g, v in s.by_group.items()
    ]
    r = s.retrieval
    ret = (
        [
            {
                "method": m,
                "recall@1": r.get(f"{m}_recall_at_1"),
                f"recall@{r.get('top_k')}": r.get(f"{m}_recall_at_{r.get('top_k')}"),
                "search ms per query": r.get(f"{m}_search_ms_per_query"),
            }
            for m in ("vectors", "bm25", "dense", "chance")
            if f"{m}_recall_at_1" in r
        ]
        if r.get("n_queries")
        else []
    )
    priv = s.privacy or {}
    docs = [
        {
            "document": d["text_id"],
            "group": d["group"],
            "tokens": d["n_tokens"],
            "exact": d["greedy_exact"],
            "encoding": d.get("encoding"),
            "UTF-8 bytes": d["bytes"]["utf8"],
            "cram s": d["encode_seconds"],
        }
        for d in records
    ]
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(h["title"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:left}}</style></head><body>
<h1>{html.escape(h["title"])}</h1>
<h2>{html.escape(h["verdict"])}</h2>{_table(verdict, vlabels)}
<p>Model <b>{html.escape(str(s.settings.get("model")))}</b> on {html.escape(s.device)}, {s.machine.get("date_utc", "")}.
{html.escape(h["examples"])} <code>{html.escape(json.dumps(s.cost_model))}</code></p>
<h2>{html.escape(h["key"])}</h2>{_table(key_figures(s))}
<h2>{html.escape(h["costs"])}</h2>{_table(cost_rows)}
<h2>{html.escape(h["break"])}</h2>{_table(be_rows)}<p>{html.escape(s.break_even.get("note", ""))}</p>
<h2>{html.escape(h["groups"])}</h2>{_table(groups)}
{"".join(charts)}
<h2>{html.escape(h["retrieval"])}</h2><p>{html.escape(str(r.get("hit_rule", "")))}</p>{_table(ret)}
<h2>{html.escape(h["privacy"])}</h2><p>{html.escape(_privacy_line(priv))}</p>
<h2>{html.escape(h["skipped"])}</h2>{_table(s.skipped)}
<h2>{html.escape(h["documents"])}</h2>{_table(docs)}
</body></html>"""
