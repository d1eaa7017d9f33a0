"""`cramlab poc`: the proof of concept on a folder of one's own records (or the bundled demo corpus).

Owns: the argparse registration (`register(subparsers)`) and the handler that wires practice.py,
practice_retrieval.py, practice_privacy.py and practice_report.py together. Does not own any measurement.
"""
from __future__ import annotations

import json
from pathlib import Path

from .common import add_model_args, check_writable

DEMO_PER_GROUP = 2          # 6 documents: a few minutes on an idle 2-core CPU


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "poc", help="proof of concept on your records: bytes, cost, retrieval, precision, privacy",
        description="Cram every document of DIR (or its first N tokens), decode it back at five precisions, "
                    "and write report.json + report.html. Resumable: run it again with the same --out.")
    p.add_argument("dir", nargs="?", help="folder of UTF-8 text files (searched recursively)")
    p.add_argument("--demo", action="store_true", help="use the bundled corpus (English and Japanese records, prose)")
    p.add_argument("--demo-size", type=int, default=DEMO_PER_GROUP, help="demo documents per group")
    p.add_argument("--pattern", default="*.txt", help="file name pattern (default '*.txt')")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--n-tokens", type=int, default=None, help="cram the first N tokens of each document "
                                                                  "(default 16)")
    size.add_argument("--per-vector", default=None, help="cram whole documents at TOKENS per vector "
                                                         "(k = 1, 2 or 4 vectors), or 'auto'")
    p.add_argument("--n-mem", type=int, default=1, help="vectors per document with --n-tokens")
    p.add_argument("--preset", default=None, help="cram engine preset (passed to cram())")
    p.add_argument("--normalise", default="none",
                   help="none, all, or a comma list of whitespace,case,boilerplate")
    p.add_argument("--out", default="cramlab-poc", help="report folder (resumed if it holds a run)")
    p.add_argument("--json", action="store_true", help="print the aggregate as one JSON object")
    add_model_args(p)
    p.add_argument("--lr", type=float, default=0.1, help="cram learning rate (the follow-up paper's 0.1)")
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8, help="documents crammed together")
    p.add_argument("--no-retrieval", action="store_true", help="skip cramming the queries and the search test")
    p.add_argument("--no-privacy-check", action="store_true", help="skip decoding in a separate process")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_poc)


def _per_vector(value):
    from ..errors import BadInputError
    from ..practice import PER_VECTOR_AUTO_TOKENS
    if value is None:
        return None
    if value == "auto":
        return PER_VECTOR_AUTO_TOKENS
    try:
        return int(value)
    except ValueError:
        raise BadInputError(f"--per-vector takes a number of tokens or 'auto', got {value!r}") from None


def privacy_sample(records: list[dict]) -> dict:
    """The record the privacy check decodes: the first that decoded exactly here (else the first)."""
    return next((r for r in records if r["greedy_exact"]), records[0])


def cmd_poc(args) -> int:
    from ..errors import BadInputError
    from ..models import load_model
    from ..practice import PocSettings, run_poc
    from ..practice_corpus import write_demo_corpus
    from ..practice_privacy import privacy_check
    from ..practice_report import summarise, write_report
    from ..practice_retrieval import evaluate_retrieval
    if bool(args.demo) == bool(args.dir):
        raise BadInputError("give a folder of text files (cramlab poc DIR) or --demo, not both")
    out = Path(args.out)
    check_writable(out)
    per_vector = _per_vector(args.per_vector)
    settings = PocSettings(
        model=args.model, n_tokens=None if per_vector else (args.n_tokens or 16), per_vector=per_vector,
        n_mem=args.n_mem, preset=args.preset, normalise=args.normalise, pattern=args.pattern,
        batch_size=args.batch_size, retrieval=not args.no_retrieval,
        cram=dict(lr=args.lr, max_steps=args.max_steps, seed=args.seed, progress=False))
    folder = write_demo_corpus(out / "demo-corpus", args.demo_size, args.seed) if args.demo else Path(args.dir)
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                    kernels=args.kernels)
    run = run_poc(lm, folder, out, settings, progress=not (args.json or args.no_progress))
    retrieval = evaluate_retrieval(run.records, run.queries) if settings.retrieval and run.records else {}
    privacy = {}
    if not args.no_privacy_check and run.records:
        sample = privacy_sample(run.records)
        privacy = privacy_check(sample["vector_file"], args.model, sample["decoded_text"]) | {
            "text_id": sample["text_id"], "equals_original": sample["greedy_exact"]}
    summary = summarise(run, retrieval, privacy)
    js, page = write_report(out, summary, run.records)
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
        return 0
    s = summary
    for skip in s.skipped:
        print(f"skipped {skip['path']}: {skip['reason']}")
    print(f"{s.n_texts} documents ({run.n_resumed} lines resumed from an earlier run), model {args.model} on {s.device}")
    print(f"reconstruction rate {s.reconstruction_rate:.3f}, mean token accuracy {s.mean_token_accuracy:.3f}")
    print(f"bytes: UTF-8 {s.bytes_utf8}, gzip {s.bytes_gzip}, token ids {s.bytes_token_ids}, model coding "
          f"{s.bytes_lm}, vectors bf16 {s.bytes_vectors_bf16} -> smallest: {s.smallest_method}")
    print(f"cost: {s.encode_seconds_per_doc:.2f} s to cram and {s.decode_seconds_per_doc:.3f} s to decode per "
          f"document; {s.docs_per_hour:.0f} documents/hour; 1,000 documents = {s.seconds_per_1000_docs / 60:.1f} min")
    if retrieval.get("n_queries"):
        k = retrieval["top_k"]
        print(f"retrieval ({retrieval['n_queries']} queries): vectors recall@1 {retrieval['vectors_recall_at_1']:.2f}"
              f" @{k} {retrieval[f'vectors_recall_at_{k}']:.2f}; BM25 recall@1 {retrieval['bm25_recall_at_1']:.2f}"
              f" @{k} {retrieval[f'bm25_recall_at_{k}']:.2f}; chance @1 {retrieval['chance_recall_at_1']:.2f}")
    if privacy:
        print(f"privacy: another process decoded {privacy.get('text_id')} from its vector file alone: "
              f"{'same text' if privacy.get('ok') else privacy.get('error', 'different text')}")
    print(f"report: {js} and {page}")
    return 0
