"""`cramlab poc`: the proof of concept on a folder of one's own records (or the bundled demo corpus).

Owns: the argparse registration (`register(subparsers)`) and the handler that wires practice.py,
practice_retrieval.py, practice_privacy.py and practice_report.py together. Does not own any measurement.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from cramlab.cli.common import MODEL_FLAGS, add_model_args, add_settings_args, check_writable, settings_from_args

DEMO_PER_GROUP = 2          # 6 documents: a few minutes on an idle 2-core CPU
STARTED = time.perf_counter()   # when the CLI imported this module: the log's clock


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
    p.add_argument("--normalise", default="none",
                   help="none, all, or a comma list of whitespace,case,boilerplate")
    p.add_argument("--out", default="cramlab-poc", help="report folder (resumed if it holds a run)")
    p.add_argument("--json", action="store_true", help="print the aggregate as one JSON object")
    add_model_args(p)
    # --preset and one flag per CramSettings field (cli.common); n_mem: vectors per document with --n-tokens
    add_settings_args(p, skip=MODEL_FLAGS, base_note="; without --preset the PoC's own base: kit with "
                      "cramlab.poc.run.DEFAULT_CRAM's lr and max_steps, flags overriding either")
    p.add_argument("--batch-size", type=int, default=4, help="documents crammed together (a kill loses at most "
                                                              "one batch; raise it on a GPU, e.g. 1000)")
    p.add_argument("--no-retrieval", action="store_true", help="skip cramming the queries and the search test")
    p.add_argument("--no-privacy-check", action="store_true", help="skip decoding in a separate process")
    p.add_argument("--no-progress", action="store_true")
    _add_decision_args(p)
    p.set_defaults(func=cmd_poc)


def _add_decision_args(p) -> None:
    """Helper F's flags: real-world files, the alternatives, the cost model and the verdict's language."""
    from cramlab.poc.coder import CODER_PRECISIONS
    from cramlab.poc.verdict import LANGS, CostModel
    ex = CostModel()
    p.add_argument("--encoding", default="utf-8", choices=("utf-8", "auto"),
                   help="utf-8 (strict) or auto: detect Shift_JIS/CP932/EUC-JP/UTF-16/UTF-8 per file")
    p.add_argument("--embedder", default=None, metavar="NAME_OR_DIR",
                   help="sentence-embedding model for the dense search alternative (default: the same model's "
                        "mean-pooled hidden states)")
    p.add_argument("--no-alternatives", action="store_true", help="skip the model coder and corpus compressors")
    p.add_argument("--coder-batch", type=int, default=64, help="records the model coder steps together")
    p.add_argument("--coder-sample", type=int, default=0, help="code only the first N records (0 = all)")
    p.add_argument("--coder-precision", default="float32", choices=CODER_PRECISIONS,
                   help="the coder's model: float32 without fused kernels (default), or the crammed model as "
                        "loaded (a bfloat16 GPU model may not repeat its bits, and the stream then fails)")
    p.add_argument("--gpu-usd-per-hour", type=float, default=ex.gpu_usd_per_hour, help="EXAMPLE default")
    p.add_argument("--cpu-usd-per-hour", type=float, default=ex.cpu_usd_per_hour, help="EXAMPLE default")
    p.add_argument("--storage-usd-per-gb-month", type=float, default=ex.storage_usd_per_gb_month,
                   help="EXAMPLE default")
    p.add_argument("--lang", default="en", choices=LANGS, help="language of the printed verdict and report.html")


def _per_vector(value):
    from cramlab.errors import BadInputError
    from cramlab.poc.run import PER_VECTOR_AUTO_TOKENS
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


def poc_cram_settings(args):
    """The PoC's CramSettings: --preset as it is, else the PoC's base (practice.DEFAULT_CRAM: kit with lr 0.1,
    max_steps 300); the flags given override either. Returns it and the `PocSettings.cram` dict that gives it
    (the fields changed from the preset, the seed, no progress bar; n_mem goes to `PocSettings.n_mem`)."""
    from cramlab.engine.settings import FIELD_NAMES
    from cramlab.poc.run import DEFAULT_CRAM
    s = settings_from_args(args, base={k: v for k, v in DEFAULT_CRAM.items() if k in FIELD_NAMES})
    changed = {k: getattr(s, k) for k in s.overrides if k != "n_mem"}
    return s, changed | {"seed": s.seed, "progress": False}


def cmd_poc(args) -> int:
    from cramlab.errors import BadInputError
    from cramlab.models.load import load_model
    from cramlab.poc.corpus import write_demo_corpus
    from cramlab.poc.report import write_report
    from cramlab.poc.run import PocSettings, run_poc
    if bool(args.demo) == bool(args.dir):
        raise BadInputError("give a folder of text files (cramlab poc DIR) or --demo, not both")
    out = Path(args.out)
    check_writable(out)
    per_vector = _per_vector(args.per_vector)
    cram_settings, cram_dict = poc_cram_settings(args)
    settings = PocSettings(
        model=args.model, n_tokens=None if per_vector else (args.n_tokens or 16), per_vector=per_vector,
        n_mem=cram_settings.n_mem, preset=args.preset, normalise=args.normalise, pattern=args.pattern,
        batch_size=args.batch_size, retrieval=not args.no_retrieval, cram=cram_dict)
    folder = (write_demo_corpus(out / "demo-corpus", args.demo_size, cram_settings.seed) if args.demo
              else Path(args.dir))
    settings.encoding = args.encoding       # (kept out of the settings block above: recorded in the digest)
    # each line says when it was written, counted from when the CLI imported this module (what a whole-run wall
    # time is made of; the interpreter's start and torch's import come before that clock)
    log = None if args.no_progress else (lambda line: print(f"[poc +{time.perf_counter() - STARTED:.1f} s] {line}",
                                                             file=sys.stderr, flush=True))
    t_load = time.perf_counter()
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                    kernels=args.kernels)
    if log is not None:
        log(f"model loaded: {time.perf_counter() - t_load:.1f} s")
    run = run_poc(lm, folder, out, settings, progress=not (args.json or args.no_progress), log=log)
    summary = decide(lm, run, args, log)
    js, page = write_report(out, summary, run.records, args.lang)
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
        return 0
    print_summary(summary, run, args)
    print(f"report: {js} and {page}")
    return 0


def decide(lm, run, args, log=None):
    """Retrieval (crammed vectors, BM25, dense), privacy, the alternatives and the costs -> the summary,
    each phase timed into run.phase_seconds (and, with `log`, a line as each ends)."""

    def ended(name, t0):
        run.phase_seconds[name] = time.perf_counter() - t0
        if log is not None:
            log(f"phase {name}: {run.phase_seconds[name]:.1f} s")

    from cramlab.poc.coder import measure_alternatives
    from cramlab.poc.embed import dense_for_retrieval, load_embedder
    from cramlab.poc.privacy import finish_privacy_check, start_privacy_check
    from cramlab.poc.report import record_texts, summarise
    from cramlab.poc.retrieval import by_record, evaluate_retrieval
    from cramlab.poc.verdict import CostModel
    prices = CostModel(args.gpu_usd_per_hour, args.cpu_usd_per_hour, args.storage_usd_per_gb_month,
                       prices_are_examples=all(getattr(args, k) == getattr(CostModel(), k) for k in
                                               ("gpu_usd_per_hour", "cpu_usd_per_hour", "storage_usd_per_gb_month")))
    retrieval, privacy, alternatives, checking = {}, {}, {}, None
    if not args.no_privacy_check and run.records:
        # the second process decodes on the CPU while this one searches on its device; its phase time is the
        # wait left after the search, its own wall time is privacy["seconds"]
        sample = privacy_sample(run.records)
        checking = start_privacy_check(sample["vector_file"], args.model, sample["decoded_text"])
    if run.settings.retrieval and run.records:
        t0 = time.perf_counter()
        units = by_record(run.records)
        embedder = load_embedder(args.embedder, lm.spec.device) if args.embedder else None
        dense = dense_for_retrieval(lm, [u["text"] for u in units], [q["text"] for q in run.queries], embedder)
        retrieval = evaluate_retrieval(units, run.queries, dense=dense)
        ended("search", t0)
    if checking is not None:
        t0 = time.perf_counter()
        privacy = finish_privacy_check(checking) | {"text_id": sample["text_id"],
                                                    "equals_original": sample["greedy_exact"],
                                                    "ran_beside_the_search": bool(retrieval)}
        ended("privacy_check", t0)
        if log is not None:
            log(f"privacy decode process: {privacy['seconds']:.1f} s from its start"
                + (", beside the search" if retrieval else ""))
    if not args.no_alternatives and run.records:
        t0 = time.perf_counter()
        alternatives = measure_alternatives(lm, list(record_texts(run.records).values()), args.coder_batch,
                                            args.coder_sample, args.coder_precision, log, args.trust_remote_code)
        ended("alternatives", t0)
    return summarise(run, retrieval, privacy, alternatives, prices)


def print_summary(s, run, args) -> None:
    """The verdict first (in --lang), then the figures behind it."""
    for skip in s.skipped:
        print(f"skipped {skip['path']}: {skip['reason']}")
    for row in s.verdict[args.lang]:
        print(f"[{row['question']}] {row['verdict']}: {row['crammed']} | {row['alternative']} -> {row['use_instead']}")
    print(f"{s.n_records:,} records in {s.n_vectors:,} vectors ({run.n_resumed} units resumed), model {args.model} "
          f"on {s.device} ({s.model_dtype})")
    print(f"whole records exact {s.reconstruction_rate:.3f} (chunks {s.chunk_reconstruction_rate:.3f}), mean token "
          f"accuracy {s.mean_token_accuracy:.3f}")
    print(f"bytes: UTF-8 {s.bytes_utf8:,}, vectors bf16 {s.bytes_vectors_bf16:,}, Σ−log2 p bound {s.bytes_lm:,}; "
          + ", ".join(f"{c['representation']} {c['bytes_per_record'] * s.n_records:,.0f}" for c in s.costs[3:]))
    per_hour = s.rates["records_per_hour"]
    print("records per hour: " + "; ".join(f"{v:,.0f} ({k.replace('_', ' ')})" for k, v in per_hour.items() if v))
    print("phase seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s.phase_seconds.items()))
    r = s.retrieval
    if r.get("n_queries"):
        print(f"search recall@1 ({r['n_queries']} queries, any identical text counts): "
              + ", ".join(f"{m} {r[f'{m}_recall_at_1']:.2f}" for m in ("vectors", "bm25", "dense", "chance")
                          if f"{m}_recall_at_1" in r))
