"""The PoC's answer for a decision: the verdict rows, the cost model and the break-even table, in English
and Japanese, every figure taken from the run's summary (never typed in).

Owns: `CostModel` (example prices, labelled as examples: $ per hour of GPU or CPU, $ per GB-month of
storage) and `costs` ($ per 1,000 and per million records, per representation, to encode, to decode and to
store for a month), `break_even` (bytes of one vector at each precision against the tokens one vector
holds and what zstd needs for that many tokens; the paper's Llama-3.1-8B point, labelled as published),
and `verdict` (storage, recovery, search, cost, risk, and what to use instead, as rows).
Does not own: any measurement (cramlab.poc.run*, measured before) or drawing the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Kuratov et al. (ACL 2025) Table 1, Llama-3.1-8B on PG-19: Max tokens in one vector, and its d (published).
PAPER_POINT = {"model": "Llama-3.1-8B (Kuratov et al. 2025, Table 1, published)", "d": 4096, "tokens_per_vector": 1568}
BYTES_PER_VALUE = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}


@dataclass
class CostModel:
    """Prices: EXAMPLE defaults (an on-demand H100-class GPU hour, a small CPU core hour, object storage);
    pass your own with --gpu-usd-per-hour, --cpu-usd-per-hour, --storage-usd-per-gb-month."""

    gpu_usd_per_hour: float = 2.50
    cpu_usd_per_hour: float = 0.05
    storage_usd_per_gb_month: float = 0.023
    prices_are_examples: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def usd(seconds_per_record: float, usd_per_hour: float, n_records: int) -> float:
    """Dollars for `n_records` at `seconds_per_record` of a machine costing `usd_per_hour`."""
    return seconds_per_record * n_records * usd_per_hour / 3600.0


def storage_usd(bytes_per_record: float, usd_per_gb_month: float, n_records: int) -> float:
    """Dollars per month to keep `n_records` of `bytes_per_record` (1 GB = 1e9 bytes)."""
    return bytes_per_record * n_records / 1e9 * usd_per_gb_month


def representations(s: dict) -> dict:
    """Per representation: bytes per record, encode and decode seconds per record, and the machine that
    ran it ('gpu' or 'cpu'), from a summary dict. Only what the run measured."""
    n = s["n_records"]
    dev = "gpu" if str(s["device"]).startswith("cuda") else "cpu"
    out = {
        "UTF-8 text": dict(bytes=s["bytes_utf8"] / n, encode_s=0.0, decode_s=0.0, machine="cpu", lossless=True),
        "crammed vectors, bf16": dict(
            bytes=s["bytes_vectors_bf16"] / n,
            encode_s=s["encode_seconds"] / n,
            decode_s=s["decode_seconds"] / n,
            machine=dev,
            lossless=False,
        ),
        "crammed vectors, fp8": dict(
            bytes=s["bytes_vectors_fp8"] / n,
            encode_s=s["encode_seconds"] / n,
            decode_s=s["decode_seconds"] / n,
            machine=dev,
            lossless=False,
        ),
    }
    alt = s.get("alternatives") or {}
    corp = alt.get("corpus") or {}
    for key, label in (
        ("zstd_dict", "zstd + trained dictionary (per record)"),
        ("zstd_stream", "zstd, one stream"),
        ("lzma_stream", "lzma, one stream"),
    ):
        if corp.get(key) is not None:
            out[label] = dict(
                bytes=corp[key] / n,
                encode_s=corp[f"{key}_encode_seconds"] / n,
                decode_s=corp[f"{key}_decode_seconds"] / n,
                machine="cpu",
                lossless=bool(corp.get(f"{key}_round_trip_exact", True)),
            )
    coder = alt.get("coder") or {}
    if coder.get("n_texts"):
        m = coder["n_texts"]
        out["model-driven arithmetic coder"] = dict(
            bytes=coder["bytes"] / m,
            encode_s=coder["encode_seconds"] / m,
            decode_s=coder["decode_seconds"] / m,
            machine=dev,
            lossless=coder.get("round_trip_exact") == m,      # every row's stream decoded back to the text
        )
    return out


def costs(s: dict, prices: CostModel) -> list[dict]:
    """$ per 1,000 and per million records to encode, decode, and store for a month, per representation."""
    rows = []
    for name, r in representations(s).items():
        rate = prices.gpu_usd_per_hour if r["machine"] == "gpu" else prices.cpu_usd_per_hour
        row = {"representation": name, "machine": r["machine"], "bytes_per_record": r["bytes"],
               "lossless": r["lossless"]}
        for n, tag in ((1_000, "per_1000"), (1_000_000, "per_million")):
            row |= {
                f"encode_usd_{tag}": usd(r["encode_s"], rate, n),
                f"decode_usd_{tag}": usd(r["decode_s"], rate, n),
                f"storage_usd_month_{tag}": storage_usd(r["bytes"], prices.storage_usd_per_gb_month, n),
            }
        rows.append(row)
    return rows


def break_even(s: dict, d: int) -> dict:
    """Bytes of one vector at each precision against what zstd needs for the tokens one vector holds
    (this run's tokens per vector, the measured capacity of docs/results.md, and the paper's point).
    zstd bytes per token: this run's whole-corpus zstd stream over this run's tokens (this tokenizer)."""
    corp = (s.get("alternatives") or {}).get("corpus") or {}
    zstd_per_token = (corp.get("zstd_stream") or s["bytes_utf8"]) / max(1, s["n_tokens_total"])
    from cramlab.poc.run import MEASURED_TOKENS_PER_VECTOR

    points = [
        ("this run (tokens crammed per vector)", d, s["n_tokens_total"] / max(1, s["n_vectors"])),
        ("this model, measured capacity (docs/results.md, sink-first/pc)", d, MEASURED_TOKENS_PER_VECTOR[0]),
        (PAPER_POINT["model"], PAPER_POINT["d"], PAPER_POINT["tokens_per_vector"]),
    ]
    rows = []
    for label, dd, tokens in points:
        zstd_b = tokens * zstd_per_token
        row = {"point": label, "d": dd, "tokens_per_vector": tokens, "zstd_bytes_for_those_tokens": zstd_b}
        for p, b in BYTES_PER_VALUE.items():
            row[f"vector_bytes_{p}"] = dd * b
            row[f"tokens_to_break_even_{p}"] = dd * b / zstd_per_token
        row["storage_wins_at"] = [p for p in BYTES_PER_VALUE if dd * BYTES_PER_VALUE[p] < zstd_b]
        rows.append(row)
    return {
        "zstd_bytes_per_token": zstd_per_token,
        "rows": rows,
        "note": "the paper point uses this run's zstd bytes per token (another tokenizer): an estimate",
    }


_T = {  # the verdict's words; the figures are filled in from the run
    "en": {
        "storage": "Storage and transfer",
        "recovery": "Getting the text back",
        "search": "Search",
        "cost": "Cost to encode (per 1,000 / per million records)",
        "risk": "Risk",
        "wins": "cramming wins",
        "loses": "cramming loses",
        "same": "no difference",
        "bytes": "{v:,.0f} B per record = {u:.1f}× UTF-8, {z:.1f}× {zn}",
        "exact": "{e}/{n} whole records exact ({r:.0%})",
        "lossless": "lossless (its round trips checked exact in this run)",
        "coder_trips": " (the model-driven coder: {e}/{n} round trips exact)",
        "per_record": "{name}: {v:,.0f} B per record",
        "recall": "recall@1 {v:.3f}",
        "chance": " (chance {c:.3f})",
        "privacy_yes": "a second process decoded one vector file back to the text crammed into it, given only that "
                       "file and the public model",
        "privacy_no": "the privacy check was not run or did not rebuild the text",
        "risk_alternative": "a lossless compressed form is the text too: protect it alike",
        "risk_rule": "treat vectors like the plaintext records",
        "protect": "encryption at rest + access control",
        "usd": "${a:,.2f} / ${b:,.0f}",
        "names": {},
        "colon": ": ",
        "comma": ", ",
    },
    "ja": {
        "storage": "保存・転送",
        "recovery": "テキストの復元",
        "search": "検索",
        "cost": "エンコード費用（1,000件 / 100万件あたり）",
        "risk": "リスク",
        "wins": "クラミングが有利",
        "loses": "クラミングが不利",
        "same": "差なし",
        "bytes": "1件あたり {v:,.0f} バイト = UTF-8 の {u:.1f} 倍、{zn} の {z:.1f} 倍",
        "exact": "レコード全体の完全復元 {e}/{n} 件（{r:.0%}）",
        "lossless": "可逆（この実行で往復の一致を検証済み）",
        "coder_trips": "（モデル駆動の算術符号化：往復一致 {e}/{n} 件）",
        "per_record": "{name}：1件あたり {v:,.0f} バイト",
        "recall": "上位1件の正解率 {v:.3f}",
        "chance": "（偶然なら {c:.3f}）",
        "privacy_yes": "別プロセスが、ベクトルファイル1つと公開モデルだけから、そのファイルに詰めた本文を復元した",
        "privacy_no": "プライバシー検査は未実行、または復元できなかった",
        "risk_alternative": "可逆に圧縮した形も本文そのもの：同じく保護すること",
        "risk_rule": "ベクトルは平文の記録と同じ扱いにすること",
        "protect": "保存時の暗号化 + アクセス制御",
        "usd": "${a:,.2f} / ${b:,.0f}",
        "names": {"UTF-8 text": "UTF-8 テキスト", "crammed vectors": "クラミングしたベクトル",
                  "zstd, one stream": "zstd（全件を1つのストリームに圧縮）",
                  "lzma, one stream": "lzma（全件を1つのストリームに圧縮）",
                  "zstd + trained dictionary (per record)": "zstd + 学習済み辞書（1件ずつ）",
                  "model-driven arithmetic coder": "モデル駆動の算術符号化",
                  "BM25": "BM25", "dense embeddings": "密ベクトル埋め込み"},
        "colon": "：",
        "comma": "、",
    },
}
LANGS = tuple(_T)


def _compare(t: dict, crammed: float, alternative: float, alt_name: str, lower_wins: bool) -> dict:
    """verdict + use_instead of one row: cramming wins only when strictly better; a tie is no difference."""
    if crammed == alternative:
        return {"verdict": t["same"], "use_instead": alt_name}
    wins = crammed < alternative if lower_wins else crammed > alternative
    return {"verdict": t["wins"] if wins else t["loses"], "use_instead": "crammed vectors" if wins else alt_name}


def verdict(s: dict, cost_rows: list[dict], lang: str = "en") -> list[dict]:
    """Rows {question, crammed, best alternative, verdict, use instead}, every figure from the summary."""
    if lang not in _T:
        from cramlab.errors import BadInputError

        raise BadInputError(f"--lang {lang!r}: use one of {', '.join(LANGS)}")
    t, n = _T[lang], s["n_records"]

    def name(key: str) -> str:         # a representation's name in the verdict's language (keys stay English)
        return t["names"].get(key, key)
    reps = {r["representation"]: r for r in cost_rows}
    # the best alternative is the smallest one whose round trip came back exact in this run
    lossless = {k: v for k, v in reps.items() if v["lossless"] and k != "UTF-8 text"}
    best_name = min(lossless, key=lambda k: lossless[k]["bytes_per_record"]) if lossless else "UTF-8 text"
    best = reps[best_name]
    vec = reps["crammed vectors, bf16"]
    rows = [
        {
            "question": t["storage"],
            "crammed": t["bytes"].format(
                v=vec["bytes_per_record"],
                u=vec["bytes_per_record"] / reps["UTF-8 text"]["bytes_per_record"],
                z=vec["bytes_per_record"] / best["bytes_per_record"],
                zn=name(best_name),
            ),
            "alternative": t["per_record"].format(name=name(best_name), v=best["bytes_per_record"]),
            **_compare(t, vec["bytes_per_record"], best["bytes_per_record"], name(best_name), lower_wins=True),
        }
    ]
    exact = round(s["reconstruction_rate"] * n)
    coder = (s.get("alternatives") or {}).get("coder") or {}
    rows.append(
        {
            "question": t["recovery"],
            "crammed": t["exact"].format(e=exact, n=n, r=s["reconstruction_rate"]),
            "alternative": f"{name(best_name)}{t['colon']}{t['lossless']}"
            + (t["coder_trips"].format(e=coder["round_trip_exact"], n=coder["n_texts"])
               if coder.get("n_texts") else ""),
            "verdict": t["same"] if exact == n else t["loses"],
            "use_instead": name(best_name),
        }
    )
    r = s.get("retrieval") or {}
    if r.get("n_queries"):
        recalls = {m: r[f"{m}_recall_at_1"] for m in ("vectors", "bm25", "dense") if f"{m}_recall_at_1" in r}
        others = {m: v for m, v in recalls.items() if m != "vectors"}
        top = max(others, key=others.get)
        names = {"vectors": "crammed vectors", "bm25": "BM25", "dense": "dense embeddings"}
        rows.append(
            {
                "question": t["search"],
                "crammed": t["recall"].format(v=recalls["vectors"])
                + (t["chance"].format(c=r["chance_recall_at_1"]) if "chance_recall_at_1" in r else ""),
                "alternative": t["comma"].join(f"{name(names[m])} {v:.3f}" for m, v in others.items()),
                **_compare(t, recalls["vectors"], others[top], name(names[top]), lower_wins=False),
            }
        )
    rows.append(
        {
            "question": t["cost"],
            "crammed": t["usd"].format(a=vec["encode_usd_per_1000"], b=vec["encode_usd_per_million"]),
            "alternative": f"{name(best_name)}{t['colon']}"
            + t["usd"].format(a=best["encode_usd_per_1000"], b=best["encode_usd_per_million"]),
            **_compare(t, vec["encode_usd_per_1000"], best["encode_usd_per_1000"], name(best_name), lower_wins=True),
        }
    )
    priv = s.get("privacy") or {}
    rows.append(
        {
            "question": t["risk"],
            "crammed": t["privacy_yes"] if priv.get("ok") and priv.get("equals_original") else t["privacy_no"],
            "alternative": t["risk_alternative"],
            "verdict": t["risk_rule"],
            "use_instead": t["protect"],
        }
    )
    return rows


def verdict_markdown(rows: list[dict], lang: str = "en") -> str:
    """The verdict rows as a Markdown table (docs/practice.md pastes the one a recorded run printed)."""
    head = {
        "en": ("question", "crammed vectors", "best alternative", "verdict", "use instead"),
        "ja": ("問い", "クラミングしたベクトル", "最良の代替手段", "判定", "代わりに使うもの"),
    }[lang]
    keys = ("question", "crammed", "alternative", "verdict", "use_instead")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[k]).replace("|", "/") for k in keys) + " |" for r in rows]
    return "\n".join(lines)
