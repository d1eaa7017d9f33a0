"""`cramlab search grid | bisect | progressive`: how far it goes, from the command line.

Owns: the flags of the three searches and what they print. Does not own: the searches (cramlab.search),
the settings and presets the flags override (cramlab.settings) or the Max rule (cramlab.report).
"""
from __future__ import annotations

import json

from ..errors import BadInputError
from ..search import bisect_search, check_lengths, grid_search, progressive
from ..settings import INITS, LAYOUTS, PRESETS, PROTOCOLS, CramSettings
from ..texts import SOURCES
from .common import add_model_args


def register(subparsers) -> None:
    """search grid | bisect | progressive."""
    p = subparsers.add_parser("search", help="how far it goes: grid (the paper), bisect, progressive")
    sub = p.add_subparsers(dest="search_command", required=True)

    def common(q):
        add_model_args(q)
        q.add_argument("--source", default="unseen", choices=SOURCES)
        q.add_argument("--preset", default="kit", choices=list(PRESETS),
                       help="grid-2025 (Kuratov et al.) or progressive-2026 (Tarasov et al.); flags below override it")
        q.add_argument("--n-mem", type=int, default=None)
        q.add_argument("--max-steps", type=int, default=None)
        q.add_argument("--lr", type=float, default=None)
        q.add_argument("--patience", type=int, default=None)
        q.add_argument("--layout", choices=list(LAYOUTS), default=None)
        q.add_argument("--protocol", choices=list(PROTOCOLS), default=None)
        q.add_argument("--init", choices=list(INITS), default=None)
        q.add_argument("--seed", type=int, default=None)
        q.add_argument("--json", action="store_true", help="print one JSON object")

    q = sub.add_parser("grid", help="the paper's protocol: every text at every length from scratch")
    common(q)
    q.add_argument("--lengths", default="8,16,32", help="comma-separated lengths (the paper: 8,16,32,64,...)")
    q.add_argument("--n-texts", type=int, default=4)
    q.add_argument("--threshold", type=float, default=None, help="Max rule threshold (the paper: 0.99)")
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
    q.add_argument("--start", type=int, default=None, help="first length (kit: 2; progressive-2026: 1)")
    q.add_argument("--step-tokens", type=int, default=None)
    q.add_argument("--no-carry-optimizer", action="store_true", help="fresh AdamW at every length")
    q.add_argument("--max-tokens", type=int, default=64)
    q.set_defaults(func=_cmd_progressive)


def _load(args, n_tokens, n_texts):
    """The settings (validated first: a mistake is reported before the model loads), the model, the texts."""
    from ..models import load_model
    from ..texts import check_text_request, get_texts
    flags = dict(n_mem=args.n_mem, max_steps=args.max_steps, lr=args.lr, patience=args.patience,
                 layout=args.layout, protocol=args.protocol, init=args.init, seed=args.seed,
                 threshold=getattr(args, "threshold", None))
    settings = CramSettings.from_preset(args.preset, **{k: v for k, v in flags.items() if v is not None})
    if getattr(args, "no_carry_optimizer", False):
        settings = settings.replace(carry_optimizer=False)
    check_text_request(max(n_tokens, 2), source=args.source, n_texts=n_texts)
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                    kernels=args.kernels)
    texts = get_texts(lm.tokenizer, args.source, n_tokens, n_texts=n_texts, seed=settings.seed)
    return lm, texts, settings


def _parse_lengths(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInputError(f"--lengths must be comma-separated integers such as 8,16,32; got {text!r}") from None


def _cmd_grid(args) -> int:
    lengths = check_lengths(_parse_lengths(args.lengths))
    lm, texts, settings = _load(args, max(lengths), args.n_texts)
    res = grid_search(lm, texts, lengths, settings)
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
    lm, texts, settings = _load(args, args.hi, args.text_index + 1)
    res = bisect_search(lm, texts[args.text_index], args.lo, args.hi, settings, warm_start=not args.no_warm_start)
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
    lm, texts, settings = _load(args, args.max_tokens, args.n_texts)
    res = progressive(lm, texts, settings, start=args.start, step_tokens=args.step_tokens, max_tokens=args.max_tokens)
    if args.json:
        print(json.dumps(res.to_dict()))
        return 0
    s = res.settings
    print(f"progressive cramming: {res.model}, preset {s['preset']}, n_mem {res.n_mem}, start {s['start_tokens']}, "
          f"step {s['step_tokens']}, cap {args.max_tokens}")
    for t in res.texts:
        print(f"  {t.text_id:<28} longest {t.longest_tokens:>5}  steps {t.total_steps:>6}  "
              f"greedy exact {t.greedy_exact}")
    print(f"max tokens: {res.mean_tokens:.1f} +- {res.std_tokens:.1f} over {len(res.texts)} text(s)")
    return 0
