"""Can crammed vectors serve as search keys? Cosine nearest neighbours on vectors against BM25 on text.

Owns: choosing the labelled queries (one sentence from each document's crammed text; its target is that
document), the query tokeniser for BM25, and the evaluation (recall@1/@10, latency per query).
Does not own: cramming (the queries are crammed by `cramlab.poc.run.run_poc` like documents), or the
dense embeddings (`cramlab.poc.embed`), which it only evaluates beside the others.

A hit is any record whose crammed text equals the query's record's (`target_sets`): forms that share
their first lines cram to the same text, and a search cannot tell them apart.

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
from statistics import mean

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
    from cramlab.engine.vectors import load_vectors
    return load_vectors(path).vectors


def by_record(records: list[dict]) -> list[dict]:
    """One search unit per record: its chunks' texts joined and all their vector files (a whole record of k
    chunks is searched by its best-matching vector)."""
    out: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: (r.get("record_id") or r["text_id"], r.get("chunk", 0))):
        rid = r.get("record_id") or r["text_id"]
        u = out.setdefault(rid, {"text_id": rid, "group": r["group"], "text": "", "vector_files": []})
        u["text"] += r["text"]
        u["vector_files"].append(r["vector_file"])
    return list(out.values())


def _unit_vectors(unit: dict) -> torch.Tensor:
    files = unit.get("vector_files") or [unit["vector_file"]]
    return torch.cat([_load(f) for f in files])


def target_sets(records: list[dict], queries: list[dict]) -> list[set[int]]:
    """For each query, every document whose crammed text is identical to its own document's: any of them is
    a right answer (a search cannot tell identical texts apart, so counting only one would be unfair)."""
    by_id = {r["text_id"]: i for i, r in enumerate(records)}
    same: dict[str, set[int]] = {}
    for i, r in enumerate(records):
        same.setdefault(r["text"], set()).add(i)
    return [same[records[by_id[q["text_id"].removeprefix("query:")]]["text"]] for q in queries]


def recall_at(top: torch.Tensor, targets: list[set[int]], n: int, rows=None) -> float:
    """Share of queries with any right answer among their first `n` results."""
    hits = [bool(set(top[i, :n].tolist()) & t) for i, t in enumerate(targets)]
    if rows is not None:
        hits = [h for h, keep in zip(hits, rows) if keep]
    return float(sum(hits) / len(hits)) if hits else float("nan")


def _cosine_top(q_mat: torch.Tensor, d_mat: torch.Tensor, owner: torch.Tensor, n_docs: int, k: int):
    t0 = time.perf_counter()
    sims = torch.nn.functional.normalize(q_mat, dim=-1) @ torch.nn.functional.normalize(d_mat, dim=-1).T
    per_doc = torch.full((q_mat.shape[0], n_docs), -2.0).scatter_reduce(
        1, owner.expand(q_mat.shape[0], -1), sims, reduce="amax")          # a document of k vectors: its best
    top = per_doc.topk(k, dim=1).indices
    return top, (time.perf_counter() - t0) * 1000 / q_mat.shape[0]


def evaluate_retrieval(records: list[dict], queries: list[dict], top_k: int = 10, dense: dict | None = None) -> dict:
    """Recall@1 and @top_k of crammed vectors, BM25 and (if given) dense embeddings over the queries whose
    document is in `records`; a hit is any document with the same crammed text (`target_sets`). Plus the
    search time per query (ms) and the time to turn a query into its key (s)."""
    import bm25s
    by_id = {r["text_id"]: i for i, r in enumerate(records)}
    keep = [j for j, q in enumerate(queries) if q["text_id"].removeprefix("query:") in by_id]
    queries = [queries[j] for j in keep]
    if not records or not queries:
        return {"n_queries": 0, "note": "no queries (retrieval off, or no document crammed)"}
    k = min(top_k, len(records))
    targets = target_sets(records, queries)

    doc_vecs = [_unit_vectors(r) for r in records]                               # each (k_i, d)
    owner = torch.cat([torch.full((v.shape[0],), i) for i, v in enumerate(doc_vecs)])
    q_vecs = torch.cat([_load(q["vector_file"])[:1] for q in queries])
    tops = {"vectors": _cosine_top(q_vecs, torch.cat(doc_vecs), owner, len(records), k)}

    retriever = bm25s.BM25()
    retriever.index([bm25_tokens(r["text"]) for r in records], show_progress=False)
    t0 = time.perf_counter()
    bm_top, _ = retriever.retrieve([bm25_tokens(q["text"]) for q in queries], k=k, show_progress=False)
    tops["bm25"] = (torch.as_tensor(bm_top), (time.perf_counter() - t0) * 1000 / len(queries))
    if dense is not None:
        tops["dense"] = _cosine_top(dense["queries"][keep], dense["docs"], torch.arange(len(records)),
                                    len(records), k)

    out = {"n_queries": len(queries), "n_documents": len(records), "top_k": k,
           "hit_rule": "a hit is any document whose crammed text equals the query's document's",
           "n_queries_with_several_right_answers": sum(len(t) > 1 for t in targets),
           "query_vector": "the query (half a vector's worth of tokens from a sentence start of the document) "
                           "crammed into one vector, same model and settings",
           "chance_recall_at_1": mean(len(t) / len(records) for t in targets),
           f"chance_recall_at_{k}": mean(min(1.0, k * len(t) / len(records)) for t in targets),
           "query_encode_seconds_mean": sum(q["encode_seconds"] for q in queries) / len(queries),
           "queries_crammed_exactly": sum(bool(q["greedy_exact"]) for q in queries)}
    for name, (top, ms) in tops.items():
        out |= {f"{name}_recall_at_1": recall_at(top, targets, 1), f"{name}_recall_at_{k}": recall_at(top, targets, k),
                f"{name}_search_ms_per_query": ms}
    if dense is not None:
        out |= {"dense_embedder": dense["label"], "dense_query_encode_seconds_mean": dense["query_encode_seconds_mean"],
                "dense_index_seconds": dense["index_seconds"]}
    groups = [records[min(t)]["group"] for t in targets]
    out["by_group"] = {g: {"n_queries": groups.count(g)} | {
        f"{name}_recall_at_1": recall_at(top, targets, 1, [x == g for x in groups]) for name, (top, _) in tops.items()}
        for g in sorted(set(groups))}
    return out
