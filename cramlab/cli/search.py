"""`cramlab search grid | bisect | progressive`: how far it goes, from the command line.

Owns: the flags of the three searches and what they print, including the answer to a learner's first
question, `cramlab search progressive --text-file my.txt`: how many tokens of my text fit in one vector.
Does not own: the searches (cramlab.science.search), the settings flags and the text flags (generated and shared:
cramlab.cli.common), the settings and presets (cramlab.engine.settings) or the Max rule (cramlab.science.report).
"""
from __future__ import annotations

import json

from cramlab.cli.common import (
    MODEL_FLAGS,
    add_model_args,
    add_settings_args,
    add_text_args,
    check_text_args,
    load_texts,
    own_text,
    settings_from_args,
)
from cramlab.errors import BadInputError, TextTooShortError


def register(subparsers) -> None:
    """search grid | bisect | progressive."""
    p = subparsers.add_parser("search", help="how far it goes: grid (the paper), bisect, progressive")
    sub = p.add_subparsers(dest="search_command", required=True)

    def common(q, aliases=None):
        add_model_args(q)
        add_text_args(q, default_source="unseen")
        add_settings_args(q, skip=MODEL_FLAGS, aliases=aliases)
        q.add_argument("--json", action="store_true", help="print one JSON object")

    q = sub.add_parser("grid", help="the paper's protocol: every text at every length from scratch")
    common(q)
    q.add_argument("--lengths", default="8,16,32", help="comma-separated lengths (the paper: 8,16,32,64,...)")
    q.add_argument("--n-texts", type=int, default=4, help="texts from --source")
    q.set_defaults(func=_cmd_grid)

    q = sub.add_parser("bisect", help="the longest prefix of one text that fits, by bisection")
    common(q)
    q.add_argument("--lo", type=int, default=8)
    q.add_argument("--hi", type=int, default=64)
    q.add_argument("--text-index", type=int, default=0,
                   help="which text of --source (after the seed's shuffle) or of --text-dir (sorted by path)")
    q.add_argument("--no-warm-start", action="store_true", help="every probe from scratch, as the paper")
    q.set_defaults(func=_cmd_bisect)

    q = sub.add_parser("progressive", help="grow the target token by token, warm-starting (ICML 2026)")
    common(q, aliases={"start_tokens": ["--start"]})
    q.add_argument("--n-texts", type=int, default=1, help="texts from --source")
    q.add_argument("--max-tokens", type=int, default=64,
                   help="longest length tried (your own text: at most its length)")
    q.set_defaults(func=_cmd_progressive)


def _load(args, n_tokens, n_texts, *, at_most=False):
    """The settings (validated first: a mistake is reported before the model loads), the model, the texts:
    the learner's own (--text, --text-file, --text-dir; with `at_most` cut at `n_tokens` but kept when shorter)
    or `n_texts` of --source."""
    from cramlab.models.load import load_model
    settings = settings_from_args(args)
    check_text_args(args, max(n_tokens, 2), n_texts)
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                    kernels=args.kernels)
    texts = load_texts(lm.tokenizer, args, n_tokens, n_texts=n_texts, seed=settings.seed, at_most=at_most)
    return lm, texts, settings


def _what(args, n_texts) -> str:
    """The texts searched, as a header says it."""
    if own_text(args):
        return "your text" if args.text is not None else args.text_file or f"the texts of {args.text_dir}"
    return f"{n_texts} {args.source} texts"


def _parse_lengths(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BadInputError(f"--lengths must be comma-separated integers such as 8,16,32; got {text!r}") from None


def _cmd_grid(args) -> int:
    from cramlab.science.search import check_lengths, grid_search
    lengths = check_lengths(_parse_lengths(args.lengths))
    lm, texts, settings = _load(args, max(lengths), args.n_texts, at_most=True)
    short = [t for t in texts if t.n_tokens < max(lengths)]
    if short:
        raise TextTooShortError(f"text {short[0].text_id!r} has {short[0].n_tokens} tokens but --lengths goes to "
                                f"{max(lengths)}; use lengths up to {short[0].n_tokens}")
    res = grid_search(lm, texts, lengths, settings)
    if args.json:
        print(res.to_json())
        return 0
    print(f"grid search: {res.model}, {_what(args, len(texts))}, n_mem {res.n_mem}, "
          f"threshold {res.threshold}")
    print(f"{'N':>6}{'mean acc':>10}{'std':>8}{'greedy':>8}{'conv':>6}{'steps':>8}{'IG bits':>9}  fits")
    for r in res.records:
        greedy = "-" if r.greedy_exact_fraction is None else f"{r.greedy_exact_fraction:.2f}"
        print(f"{r.n_tokens:>6}{r.mean_accuracy:>10.3f}{r.std_accuracy:>8.3f}{greedy:>8}"
              f"{r.n_converged:>3}/{r.n_texts:<2}{r.mean_steps:>8.0f}{r.mean_info_gain_bits:>9.1f}  {r.fits}")
    print(f"Max (largest N with mean accuracy >= {res.threshold}): {res.max_tokens}")
    return 0


def _cmd_bisect(args) -> int:
    from cramlab.science.search import bisect_search
    lm, texts, settings = _load(args, args.hi, args.text_index + 1, at_most=True)
    if args.text_index >= len(texts):
        raise BadInputError(f"--text-index {args.text_index} but there are {len(texts)} texts; "
                            f"use 0 to {len(texts) - 1}")
    text = texts[args.text_index]
    hi = min(args.hi, text.n_tokens)          # your own text may be shorter than --hi: its length is the top
    if hi < args.lo:
        raise TextTooShortError(f"text {text.text_id!r} has {text.n_tokens} tokens, fewer than --lo {args.lo}; "
                                f"use --lo {min(2, text.n_tokens)} or a longer text")
    res = bisect_search(lm, text, args.lo, hi, settings, warm_start=not args.no_warm_start)
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
    from cramlab.science.search import progressive
    lm, texts, settings = _load(args, args.max_tokens, args.n_texts, at_most=True)
    cap = min(t.n_tokens for t in texts)      # your own text may end before --max-tokens
    res = progressive(lm, texts, settings, max_tokens=cap)
    if args.json:
        print(json.dumps(res.to_dict()))
        return 0
    s = res.settings
    mine = f"{_what(args, len(texts))}, " if own_text(args) else ""
    print(f"progressive cramming: {res.model}, {mine}preset {s['preset']}, n_mem {res.n_mem}, "
          f"start {s['start_tokens']}, step {s['step_tokens']}, cap {cap}")
    for t in res.texts:
        print(f"  {t.text_id:<28} longest {t.longest_tokens:>5}  steps {t.total_steps:>6}  "
              f"greedy exact {t.greedy_exact}")
    print(f"max tokens: {res.mean_tokens:.1f} +- {res.std_tokens:.1f} over {len(res.texts)} text(s)")
    if own_text(args):
        for t in res.texts:
            print(_answer(t, cap, args.max_tokens, settings))
    return 0


def _answer(t, cap: int, max_tokens: int, settings) -> str:
    """How many tokens of the learner's text fit, and why the search stopped there."""
    vectors = f"{settings.n_mem} vector{'s' if settings.n_mem > 1 else ''}"
    head = f"{t.text_id}: {t.longest_tokens} tokens fit in {vectors}"
    if t.stop_reason == "failed":
        return f"{head}; {t.failed_tokens} did not within {settings.max_steps} steps"
    if t.stop_reason == "max_total_steps":
        return f"{head}; the search stopped at its budget of {settings.max_total_steps} steps (--max-total-steps)"
    if cap < max_tokens:
        return f"{head}: the whole text (it has {cap} tokens)"
    return f"{head}: all it tried; raise --max-tokens (now {max_tokens}) to go further"
