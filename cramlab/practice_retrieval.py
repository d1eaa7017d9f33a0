"""Can crammed vectors serve as search keys? Cosine nearest neighbours on vectors against BM25 on text.

Owns: choosing the labelled queries (one sentence from each document's crammed text; its target is that
document), the query tokeniser for BM25, and the evaluation (recall@1/@10, latency per query).
Does not own: cramming (the queries are crammed by `cramlab.practice.run_poc` like documents).

How a query gets a vector, stated plainly: the query (half a vector's worth of tokens of the document's
crammed text, from the start of a sentence or line chosen by the seed) is crammed by itself, with the
same model and settings as the documents, into one vector; the search compares that vector with every document's
vectors by cosine similarity (for a document of k vectors, its best-matching vector counts). Nothing in
the training asks two crammings of overlapping text to lie close together, so this is a real test of
whether they do, not an assumption that they will. BM25 (the `bm25s` library) indexes the same crammed
text of every document; its tokens are lower-cased words, plus character bigrams for CJK scripts (BM25
needs word units, and Japanese has no spaces).
"""
from __future__ import annotations

import random
import re
import time

import torch

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f"
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s*|\n+")


def pick_query(text: str, seed: int, doc_id: str) -> str:
    """One sentence (or line) of `text`, chosen by `seed` and the document; if the text is one sentence,
    its second half."""
    pieces = [p.strip() for p in _SENTENCE_END.split(text) if p and len(p.strip()) >= 6]
    pieces = [p for p in pieces if p != text.strip()]
    if pieces:
        return random.Random(f"{seed}:{doc_id}").choice(pieces)
    half = len(text) // 2
    space = text.find(" ", half)
    return text[space + 1 if 0 <= space < len(text) - 3 else half:].strip()


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased word tokens; runs of CJK characters become overlapping character bigrams."""
    out = []
    for run in re.findall(rf"[{_CJK}]+|[^\W{_CJK}]+", text.lower()):
        if re.match(rf"[{_CJK}]", run):
            out += [run[i:i + 2] for i in range(max(1, len(run) - 1))]
        else:
            out.append(run)
    return out or ["<empty>"]


def _load(path: str) -> torch.Tensor:
    from .vectors import load_vectors
    return load_vectors(path).vectors


def evaluate_retrieval(records: list[dict], queries: list[dict], top_k: int = 10) -> dict:
    """Recall@1 and @top_k of both methods over the queries whose document is in `records`, plus the
    mean search time per query (ms) and the mean time to cram a query (s)."""
    import bm25s
    by_id = {r["text_id"]: i for i, r in enumerate(records)}
    queries = [q for q in queries if q["text_id"].removeprefix("query:") in by_id]
    if not records or not queries:
        return {"n_queries": 0, "note": "no queries (retrieval off, or no document crammed)"}
    k = min(top_k, len(records))
    target = torch.tensor([by_id[q["text_id"].removeprefix("query:")] for q in queries])

    doc_vecs = [_load(r["vector_file"]) for r in records]                       # each (k_i, d)
    owner = torch.cat([torch.full((v.shape[0],), i) for i, v in enumerate(doc_vecs)])
    d_mat = torch.nn.functional.normalize(torch.cat(doc_vecs), dim=-1)
    q_mat = torch.nn.functional.normalize(torch.cat([_load(q["vector_file"])[:1] for q in queries]), dim=-1)
    t0 = time.perf_counter()
    sims = q_mat @ d_mat.T                                                        # (q, all doc vectors)
    per_doc = torch.full((len(queries), len(records)), -2.0).scatter_reduce(
        1, owner.expand(len(queries), -1), sims, reduce="amax")
    vec_top = per_doc.topk(k, dim=1).indices
    vec_ms = (time.perf_counter() - t0) * 1000 / len(queries)

    retriever = bm25s.BM25()
    retriever.index([bm25_tokens(r["text"]) for r in records], show_progress=False)
    t0 = time.perf_counter()
    bm_top, _ = retriever.retrieve([bm25_tokens(q["text"]) for q in queries], k=k, show_progress=False)
    bm_ms = (time.perf_counter() - t0) * 1000 / len(queries)
    bm_top = torch.as_tensor(bm_top)

    def recall(top, n, rows=None):
        hit = (top[:, :n] == target[:, None]).any(dim=1).float()
        return float(hit.mean() if rows is None else hit[rows].mean())

    groups = sorted({records[int(t)]["group"] for t in target})
    by_group = {}
    for g in groups:
        rows = torch.tensor([records[int(t)]["group"] == g for t in target])
        by_group[g] = {"n_queries": int(rows.sum()),
                       "vectors_recall_at_1": recall(vec_top, 1, rows), "bm25_recall_at_1": recall(bm_top, 1, rows)}
    return {
        "n_queries": len(queries), "n_documents": len(records), "top_k": k,
        "query_vector": "the query (half a vector's worth of tokens from a sentence start of the document) crammed into one vector, same model and settings",
        "vectors_recall_at_1": recall(vec_top, 1), f"vectors_recall_at_{k}": recall(vec_top, k),
        "bm25_recall_at_1": recall(bm_top, 1), f"bm25_recall_at_{k}": recall(bm_top, k),
        "chance_recall_at_1": 1 / len(records), f"chance_recall_at_{k}": k / len(records),
        "vectors_search_ms_per_query": vec_ms, "bm25_search_ms_per_query": bm_ms,
        "query_encode_seconds_mean": sum(q["encode_seconds"] for q in queries) / len(queries),
        "queries_crammed_exactly": sum(bool(q["greedy_exact"]) for q in queries),
        "by_group": by_group,
    }
