"""`cramlab search grid | bisect | progressive`: how far it goes, from the command line.

Owns: the flags of the three searches and what they print. Does not own: the searches (cramlab.search)
or the Max rule (cramlab.report).
"""
from __future__ import annotations

import json

from ..decode import LAYOUTS, PROTOCOLS
from ..errors import BadInputError
from ..report import PAPER_THRESHOLD
from ..search import bisect_search, check_lengths, grid_search, progressive
from ..texts import SOURCES
from .common import add_model_args


def register(subparsers) -> None:
    """search grid | bisect | progressive."""
    p = subparsers.add_parser("search", help="how far it goes: grid (the paper), bisect, progressive")
    sub = p.add_subparsers(dest="search_command", required=True)

    def common(q):
        add_model_args(q)
        q.add_argument("--source", default="unseen", choices=SOURCES)
        q.add_argument("--n-mem", type=int, default=1)
        q.add_argument("--max-steps", type=int, default=2000)
        q.add_argument("--lr", type=float, default=1e-2)
        q.add_argument("--patience", type=int, default=None)
        q.add_argument("--layout", choices=LAYOUTS, default="sink-first")
        q.add_argument("--protocol", choices=PROTOCOLS, default="pc")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--json", action="store_true", help="print one JSON object")

    q = sub.add_parser("grid", help="the paper's protocol: every text at every length from scratch")
    common(q)
    q.add_argument("--lengths", default="8,16,32", help="comma-separated lengths (the paper: 8,16,32,64,...)")
    q.add_argument("--n-texts", type=int, default=4)
    q.add_argument("--threshold", type=float, default=PAPER_THRESHOLD)
    q.set_defaults(func=_cmd_grid)

    q = sub.add_parser("bisect", help="the longest prefix of one text that fits, by bisection")
    common(q)
    q.add_argument("--lo", type=int, default=8)
    q.add_argument("--hi", type=int, default=64)
    q.add_argument("--text-index", type=int, default=0, help="which text of --source (after the seed's shuffle)")
    q.add_argument("--no-warm-start", action="store_true", help="every probe from scratch, as the paper")
    q.set_defaults(func=_cmd_bisect)

    q = sub.add_parser("progressive", help="grow the target token by token, warm-starting (ICML 2026)")
    common(q)
    q.add_argument("--n-texts", type=int, default=1)
    q.add_argument("--start", type=int, default=2)
    q.add_argument("--step-tokens", type=int, default=1)
    q.add_argument("--max-tokens", type=int, default=64)
    q.set_defaults(func=_cmd_progressive)


def _load(args, n_tokens, n_texts):
    from ..models import load_model
    from ..texts import get_texts
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    texts = get_texts(lm.tokenizer, args.source, n_tokens, n_texts=n_texts, seed=args.seed)
    kwargs = dict(max_steps=args.max_steps, lr=args.lr, patience=args.patience, layout=args.layout,
                  protocol=args.protocol, seed=args.seed)
    return lm, texts, kwargs


def _parse_lengths(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInputError(f"--lengths must be comma-separated integers such as 8,16,32; got {text!r}") from None


def _cmd_grid(args) -> int:
    lengths = check_lengths(_parse_lengths(args.lengths))
    lm, texts, kwargs = _load(args, max(lengths), args.n_texts)
    res = grid_search(lm, texts, lengths, n_mem=args.n_mem, threshold=args.threshold, **kwargs)
    if args.json:
        print(res.to_json())
        return 0
    print(f"grid search: {res.model}, {len(texts)} {args.source} texts, n_mem {res.n_mem}, "
          f"threshold {res.threshold}")
    print(f"{'N':>6}{'mean acc':>10}{'std':>8}{'greedy':>8}{'conv':>6}{'steps':>8}{'IG bits':>9}  fits")
    for r in res.records:
        greedy = "-" if r.greedy_exact_fraction is None else f"{r.greedy_exact_fraction:.2f}"
        print(f"{r.n_tokens:>6}{r.mean_accuracy:>10.3f}{r.std_accuracy:>8.3f}{greedy:>8}"
              f"{r.n_converged:>3}/{r.n_texts:<2}{r.mean_steps:>8.0f}{r.mean_info_gain_bits:>9.1f}  {r.fits}")
    print(f"Max (largest N with mean accuracy >= {res.threshold}): {res.max_tokens}")
    return 0


def _cmd_bisect(args) -> int:
    lm, texts, kwargs = _load(args, args.hi, args.text_index + 1)
    res = bisect_search(lm, texts[args.text_index], args.lo, args.hi, n_mem=args.n_mem,
                        warm_start=not args.no_warm_start, **kwargs)
    if args.json:
        print(json.dumps(res.to_dict()))
        return 0
    print(f"bisection: {res.model}, text {res.text_id}, n_mem {res.n_mem}, [{res.lo}, {res.hi}], "
          f"warm start {res.warm_start}")
    for r in res.records:
        print(f"  N={r['n_tokens']:>5}  acc {r['teacher_forced_accuracy']:.3f}  steps {r['steps']:>5}  "
              f"{'fits' if r['converged'] else 'fails'}{'  (warm)' if r['warm'] else ''}")
    print(f"longest fit: {res.max_tokens}  (first failure: {res.first_failed_tokens}, steps {res.total_steps})")
    return 0


def _cmd_progressive(args) -> int:
    lm, texts, kwargs = _load(args, args.max_tokens, args.n_texts)
    res = progressive(lm, texts, start=args.start, step_tokens=args.step_tokens, max_tokens=args.max_tokens,
                      n_mem=args.n_mem, **kwargs)
    if args.json:
        print(json.dumps(res.to_dict()))
        return 0
    print(f"progressive cramming: {res.model}, n_mem {res.n_mem}, start {args.start}, step {args.step_tokens}, "
          f"cap {args.max_tokens}")
    for t in res.texts:
        print(f"  {t.text_id:<28} longest {t.longest_tokens:>5}  steps {t.total_steps:>6}  "
              f"greedy exact {t.greedy_exact}")
    print(f"max tokens: {res.mean_tokens:.1f} +- {res.std_tokens:.1f} over {len(res.texts)} text(s)")
    return 0
