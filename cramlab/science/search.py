"""How far it goes: three ways to find the longest text that fits in `n_mem` vectors.

- `grid_search`   the paper's protocol (Kuratov et al., 2025): for every length of a grid, cram every text
                  from scratch (all texts of one length in one batch); Max = the largest length whose mean
                  best teacher-forced accuracy is >= 0.99.
- `bisect_search` one text: the longest N in [lo, hi] it fits, by bisection with warm starts.
- `progressive`   the ICML 2026 follow-up (Tarasov et al.): grow the target by `step_tokens` tokens at a time,
                  warm-starting from the previous vectors; a text stops at the first length that does not
                  reach 100 %. Batched: the texts still growing share one batch; a text drops out when it fails.

Why warm starts are valid here (and when they are not). The model is causal: with the same vectors, the
predictions for the first m tokens of a text do not depend on the tokens after them. So vectors that fit
the first m tokens of a text (teacher-forced accuracy 1.0) also fit every shorter prefix, with no training,
and they are a start that already solves the first m positions of any longer prefix of *the same text*.
That holds only for the same model, the same `n_mem`, layout and protocol, and the same text (a prefix of
it). A vector from a longer length that failed is no such start (its first positions may be wrong), and
vectors never carry over between texts, models or n_mem. Warm starts change what is measured: the paper's
Max is "fits from a random start", progressive's is "fits when grown token by token"; bisection with warm
starts lies between the two, and `warm_start=False` gives the paper's from-scratch definition per length.

Every function returns plain data (dataclasses with `to_dict()`); the per-length records are kept.

Owns: the three searches and their result dataclasses. Does not own: the Max rule and Table 1
(cramlab.science.report: `grid_search` uses its `max_tokens_that_fit`), the settings (cramlab.engine.settings), the loop
(cramlab.engine.plain), scheduling many jobs (cramlab.science.sweep), the command line (cramlab.cli.search).
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cramlab.engine.settings import CramSettings
from cramlab.engine.step import resolve_engine
from cramlab.errors import BadInputError
from cramlab.science.report import length_fits, max_tokens_that_fit

#: Keys of a CramResult kept in the per-length records of `bisect_search` and `progressive`.
RECORD_KEYS = ("n_tokens", "steps", "converged", "teacher_forced_accuracy", "baseline_accuracy",
               "baseline_ce_nats", "final_ce_nats", "info_gain_nats", "info_gain_bits", "gain_tokens",
               "greedy_exact", "first_mismatch", "stop_reason", "seconds", "train_accuracy",
               "min_ce_per_token_nats", "baseline_ce_per_token_nats", "n_scored")


# --- results -----------------------------------------------------------------------------------------

@dataclass
class LengthRecord:
    """All texts of one length in the grid protocol."""
    n_tokens: int
    n_texts: int
    mean_accuracy: float            # mean over texts of the best teacher-forced accuracy
    std_accuracy: float             # population std over texts (0 for one text)
    greedy_exact_fraction: float | None   # texts whose greedy decode reproduced them (None: not decoded)
    n_converged: int                # texts that reached the target accuracy
    fits: bool                      # mean_accuracy >= threshold
    mean_steps: float
    mean_info_gain_bits: float
    mean_gain_tokens: float
    results: list[dict] = field(default_factory=list)   # CramResult.to_dict() per text (no vectors)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GridResult:
    """The paper's protocol over a grid of lengths; `max_tokens` is None when no length fits."""
    model: str
    n_mem: int
    lengths: list[int]
    threshold: float
    max_tokens: int | None
    records: list[LengthRecord]
    settings: dict = field(default_factory=dict)

    def record(self, n_tokens: int) -> LengthRecord:
        for r in self.records:
            if r.n_tokens == n_tokens:
                return r
        raise KeyError(n_tokens)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass
class BisectResult:
    """The longest length of one text that fit in [lo, hi] (None: not even `lo`)."""
    model: str
    text_id: str
    n_mem: int
    lo: int
    hi: int
    max_tokens: int | None
    first_failed_tokens: int | None  # the shortest length that was tried and failed (None: none failed)
    total_steps: int
    warm_start: bool
    records: list[dict] = field(default_factory=list)   # one per probe, in the order tried (+ "warm": bool)
    settings: dict = field(default_factory=dict)
    vectors: Any = None                                  # the vectors of the longest fit (k x d), CPU

    def to_dict(self, include_vectors: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "vectors"}
        if include_vectors and self.vectors is not None:
            out["vectors"] = self.vectors.tolist()
        return out


@dataclass
class ProgressiveResult:
    """One text grown by `step_tokens` at a time until it first failed to reach 100 %."""
    text_id: str
    n_mem: int
    start_tokens: int
    step_tokens: int
    max_tokens: int                  # the cap asked for
    longest_tokens: int              # the longest length that reached 100 % (0: not even the start)
    failed_tokens: int | None        # the length where it stopped (None: reached the cap)
    total_steps: int                 # optimisation steps over all lengths, including the failed one
    greedy_exact: bool | None        # greedy decode of the final vectors reproduces `longest_tokens`
    first_mismatch: int | None
    decoded_text: str | None
    records: list[dict] = field(default_factory=list)   # one per length tried
    stop_reason: str = ""            # failed | max_tokens | max_total_steps
    evaluation_disagreements: int = 0   # lengths where the re-evaluation disagreed with the training forward
    vectors: Any = None              # the vectors of the longest length (k x d), CPU
    trajectory: list = field(default_factory=list)      # vectors after every length (keep_trajectory=True)

    def to_dict(self, include_vectors: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("vectors", "trajectory")}
        if include_vectors and self.vectors is not None:
            out["vectors"] = self.vectors.tolist()
        return out


@dataclass
class ProgressiveSummary:
    """Several texts grown together: the follow-up paper's "max tokens, mean +- std"."""
    model: str
    n_mem: int
    texts: list[ProgressiveResult]
    settings: dict = field(default_factory=dict)

    @property
    def longest_tokens(self) -> list[int]:
        return [t.longest_tokens for t in self.texts]

    @property
    def mean_tokens(self) -> float:
        return statistics.fmean(self.longest_tokens)

    @property
    def std_tokens(self) -> float:
        return statistics.pstdev(self.longest_tokens) if len(self.texts) > 1 else 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "n_mem": self.n_mem, "mean_tokens": self.mean_tokens,
                "std_tokens": self.std_tokens, "longest_tokens": self.longest_tokens,
                "greedy_exact_fraction": _fraction([t.greedy_exact for t in self.texts]),
                "median_tokens": statistics.median(self.longest_tokens),
                "min_tokens": min(self.longest_tokens), "max_tokens": max(self.longest_tokens),
                "evaluation_disagreements": sum(t.evaluation_disagreements for t in self.texts),
                "total_steps": sum(t.total_steps for t in self.texts), "settings": self.settings,
                "texts": [t.to_dict() for t in self.texts]}


# --- the paper's grid ----------------------------------------------------------------------------------

def grid_search(lm, texts, lengths: Sequence[int], settings: CramSettings | None = None, *,
                stop_after_failures: int | None = None, callback=None, progress: bool = False,
                **overrides) -> GridResult:
    """The paper's protocol: every text truncated to every length and crammed from scratch.

    `texts`: token-id lists or `Text` objects, each at least `max(lengths)` tokens long.
    `settings` (e.g. `CramSettings.from_preset("grid-2025")`) and keyword overrides as in `cram`;
    Max = the largest length whose mean best accuracy >= `settings.threshold` (0.99 in the paper).
    `stop_after_failures`: stop after that many consecutive lengths that do not fit (None: run the grid).
    `callback(record)` is called after every length.
    """
    from cramlab.engine.plain import cram
    s = _settings_from(settings, overrides)
    lengths = check_lengths(lengths, s.min_tokens())
    rows, ids = _rows_and_ids(texts, max(lengths))
    records, misses = [], 0
    for n in lengths:
        results = cram(lm, [r[:n] for r in rows], s, text_ids=ids, progress=progress)
        rec = _length_record(n, results, s.threshold)
        records.append(rec)
        if callback is not None:
            callback(rec)
        misses = 0 if rec.fits else misses + 1
        if stop_after_failures is not None and misses >= stop_after_failures:
            break
    settings_record = s.to_dict() | {"n_texts": len(rows), "stop_after_failures": stop_after_failures}
    return GridResult(model=_model_name(lm), n_mem=s.n_mem, lengths=list(lengths), threshold=s.threshold,
                      max_tokens=max_tokens_that_fit(records, s.threshold), records=records, settings=settings_record)


def _length_record(n, results, threshold) -> LengthRecord:
    accs = [r.teacher_forced_accuracy for r in results]
    mean = statistics.fmean(accs)
    return LengthRecord(
        n_tokens=n, n_texts=len(results), mean_accuracy=mean,
        std_accuracy=statistics.pstdev(accs) if len(accs) > 1 else 0.0,
        greedy_exact_fraction=_fraction([r.greedy_exact for r in results]),
        n_converged=sum(r.converged for r in results), fits=length_fits(mean, threshold),
        mean_steps=statistics.fmean(r.steps for r in results),
        mean_info_gain_bits=statistics.fmean(r.info_gain_bits for r in results),
        mean_gain_tokens=statistics.fmean(r.gain_tokens for r in results),
        results=[r.to_dict() for r in results])


# --- bisection -----------------------------------------------------------------------------------------

def bisect_search(lm, text, lo: int, hi: int, settings: CramSettings | None = None, *, warm_start: bool = True,
                  **overrides) -> BisectResult:
    """The longest N in [lo, hi] whose first N tokens of `text` fit in `n_mem` vectors.

    "Fits" = the crammed vectors reach `target_accuracy` (default 1.0) teacher-forced.
    `lo` is tried first (if it fails the answer is None), then the interval is halved. With
    `warm_start=True` each probe starts from the vectors of the longest length that fit so far (valid:
    same text, a shorter prefix; see the module docstring); otherwise from scratch, as the paper.
    A fit at N also certifies every shorter length (causality), so no shorter length is tried again.
    Bisection assumes that a length that failed would fail for longer ones too: a failure is the
    optimiser's within its step budget, not a proof that no vector exists.
    """
    from cramlab.engine.plain import cram
    s = _settings_from(settings, overrides)
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < s.min_tokens() or hi < lo:
        raise BadInputError(f"need integers {s.min_tokens()} <= lo <= hi, got lo={lo!r}, hi={hi!r}")
    (row,), (text_id,) = _rows_and_ids([text], hi)
    records, total_steps = [], 0
    best_n, best_vectors, bad = None, None, None

    def probe(n):
        nonlocal total_steps
        warm = best_vectors if (warm_start and best_vectors is not None) else None
        res = cram(lm, [row[:n]], s, text_ids=[text_id], init_vectors=warm, progress=False)[0]
        total_steps += res.steps
        records.append(_record(res) | {"warm": warm is not None})
        return res

    res = probe(lo)
    if res.converged:
        best_n, best_vectors = lo, res.vectors
        good, bad = lo, hi + 1
        while bad - good > 1:
            mid = (good + bad) // 2
            res = probe(mid)
            if res.converged:
                good, best_n, best_vectors = mid, mid, res.vectors
            else:
                bad = mid
        bad = bad if bad <= hi else None
    else:
        bad = lo
    return BisectResult(model=_model_name(lm), text_id=text_id, n_mem=s.n_mem, lo=lo, hi=hi, max_tokens=best_n,
                        first_failed_tokens=bad, total_steps=total_steps, warm_start=warm_start, records=records,
                        settings=s.to_dict(), vectors=best_vectors)


# --- progressive cramming ------------------------------------------------------------------------------

def progressive(lm, texts, settings: CramSettings | None = None, *, max_tokens: int = 64, start: int | None = None,
                step_tokens: int | None = None, keep_trajectory: bool = False, callback=None,
                seeds: list[int] | None = None, progress: bool = False, **overrides) -> ProgressiveSummary:
    """Grow each text's target by `step_tokens` tokens from `start`, warm-starting from its previous vectors.

    `texts`: one text or a list (token ids or `Text`), each at least `max_tokens` long. All texts still
    growing are crammed in one batch per length; a text stops at the first length whose training forward
    does not reach `target_accuracy` within `max_steps`, at `max_tokens`, or when its cumulative steps
    reach `max_total_steps`. With `carry_optimizer` (the progressive-2026 preset) AdamW's moments and the
    schedule position go on from one length to the next, as in Tarasov et al.'s code; otherwise each
    length starts a fresh AdamW from the previous vectors.
    Greedy decoding is done once per text at the end, from the vectors of its longest length.
    `keep_trajectory=True` keeps the vectors after every length (for a PCA of the path).
    `callback(n_tokens, results)` is called after every length. Engine `fast` (`auto` on CUDA) grows every
    text on its own (grow.py) and refuses a callback; `auto` with a callback runs the per-length loop.
    `seeds`: one seed per text for its start vectors (default: the settings' seed), so that replicates of the
    same texts grow in one batch from the starts each gets alone. `progress`: a bar for each length's steps
    (the per-length loop; one length can take `max_steps` steps of minutes on a CPU).
    """
    import torch

    from cramlab.engine.decode import decode, first_mismatch, unwrap
    from cramlab.engine.grow import start_vectors
    from cramlab.engine.plain import cram
    from cramlab.engine.step import sink_token_id
    changes = {k: v for k, v in (("start_tokens", start), ("step_tokens", step_tokens)) if v is not None}
    s = _settings_from(settings, overrides | changes)
    if isinstance(texts, (list, tuple)) and texts and isinstance(texts[0], int) or not isinstance(texts, (list, tuple)):
        texts = [texts]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadInputError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    first = s.start_tokens
    if first < s.min_tokens():
        raise BadInputError(f"start must be >= {s.min_tokens()} token(s) under protocol {s.protocol}, got {first}")
    if max_tokens < first:
        raise BadInputError(f"max_tokens ({max_tokens}) must be >= start ({first})")
    rows, ids = _rows_and_ids(texts, max_tokens)
    if seeds is not None and (len(seeds) != len(rows) or not all(isinstance(x, int) for x in seeds)):
        raise BadInputError(f"seeds must be one integer per text ({len(rows)}), got {seeds!r}")
    out = [ProgressiveResult(text_id=ids[i], n_mem=s.n_mem, start_tokens=first, step_tokens=s.step_tokens,
                             max_tokens=max_tokens, longest_tokens=0, failed_tokens=None, total_steps=0,
                             greedy_exact=None, first_mismatch=None, decoded_text=None) for i in range(len(rows))]
    model, _, spec = unwrap(lm)
    sink = sink_token_id(s, spec)
    if callback is not None and s.engine == "fast":
        raise BadInputError("engine grow (progressive with engine='fast') does not implement callback: texts "
                            "grow at their own lengths; use engine='plain' or 'auto', or drop the callback")
    if resolve_engine(s.engine, model) == "fast" and callback is None:
        _grow_into(out, model, rows, s, max_tokens, sink, keep_trajectory, seeds)
        active = []
    else:
        active = list(range(len(rows)))
    carried: dict[int, Any] = {}                     # text -> CramResult of its last converged length
    n = first
    while active:
        results_now = {}
        for budget, members in _by_budget(active, out, s).items():
            if n > first:                            # warm: where each text's last length ended
                warm = torch.stack([carried[i].vectors for i in members])
            elif seeds is not None:                  # the first length under per-text seeds
                warm = start_vectors(model, [rows[i][:n] for i in members], s, [seeds[i] for i in members])
            else:                                    # cram() draws the starts under s.seed
                warm = None
            opt = None
            if n > first and s.carry_optimizer:
                opt = _stack_optimizers([carried[i].optimizer for i in members])
            results = cram(lm, [rows[i][:n] for i in members], s.replace(max_steps=budget),
                           text_ids=[ids[i] for i in members], init_vectors=warm, init_optimizer=opt,
                           decode=False, progress=progress)
            results_now.update(zip(members, results))
        still = []
        for i in active:
            res, rec = results_now[i], out[i]
            rec.total_steps += res.steps
            rec.records.append(_record(res))
            rec.evaluation_disagreements += not res.evaluation_agrees
            if res.converged:                          # decided on the training forward, as the paper
                rec.longest_tokens, rec.vectors = n, res.vectors
                carried[i] = res
                if keep_trajectory:
                    rec.trajectory.append(res.vectors)
                if s.max_total_steps is not None and rec.total_steps >= s.max_total_steps and n < max_tokens:
                    rec.stop_reason = "max_total_steps"
                else:
                    still.append(i)
            else:
                rec.failed_tokens = n
                rec.stop_reason = "failed"
        if callback is not None:
            callback(n, [results_now[i] for i in active])
        if n >= max_tokens:
            for i in still:
                out[i].stop_reason = "max_tokens"
            break
        active, n = still, min(n + s.step_tokens, max_tokens)
    # Back again: each text's longest fit, greedily, in one batch (text by text cost ~49 s of a 113 s H200 run).
    fitted = [i for i, rec in enumerate(out) if rec.vectors is not None]
    if fitted:
        decoded = decode(lm, torch.stack([out[i].vectors for i in fitted]), [out[i].longest_tokens for i in fitted],
                         layout=s.layout, protocol=s.protocol, sink_token_id=sink,
                         first_token_id=[rows[i][0] for i in fitted] if s.protocol == "hc" else None)
        for i, dec in zip(fitted, decoded):
            rec = out[i]
            rec.first_mismatch = first_mismatch(dec.token_ids, rows[i][:rec.longest_tokens])
            rec.greedy_exact = rec.first_mismatch is None
            rec.decoded_text = dec.text
    record = s.to_dict() | {"max_tokens": max_tokens}
    return ProgressiveSummary(model=_model_name(lm), n_mem=s.n_mem, texts=out, settings=record)


def _grow_into(out, model, rows, s, max_tokens, sink, keep_trajectory, seeds=None):
    """The fast engine (grow.py): every text grows on its own in one captured step; same protocol."""
    from cramlab.engine.grow import grow
    res = grow(model, rows, s, max_tokens, sink, keep_trajectory=keep_trajectory, seeds=seeds)
    for i, rec in enumerate(out):
        rec.longest_tokens, rec.failed_tokens = res.longest_tokens[i], res.failed_tokens[i]
        rec.stop_reason, rec.total_steps = res.stop_reasons[i], res.total_steps[i]
        rec.records = [{"n_tokens": n, "steps": k, "converged": n <= res.longest_tokens[i]}
                       for n, k in res.steps_per_length[i].items()]
        rec.vectors = res.vectors[i] if res.longest_tokens[i] > 0 else None
        rec.trajectory = res.trajectory[i] if keep_trajectory else []


def _by_budget(active, out, s) -> dict[int, list[int]]:
    """Texts grouped by the steps they may take at this length: `max_steps`, or less near `max_total_steps`."""
    groups: dict[int, list[int]] = {}
    for i in active:
        groups.setdefault(s.length_budget(out[i].total_steps), []).append(i)
    return groups


def _stack_optimizers(states):
    import torch

    from cramlab.engine.step import OptimizerState
    return OptimizerState(*(torch.cat([getattr(st, k) for st in states]) for k in ("exp_avg", "exp_avg_sq", "steps")))


def _settings_from(settings, overrides) -> CramSettings:
    """The run's settings: given (or the kit's defaults) with keyword overrides applied."""
    base = settings if settings is not None else CramSettings()
    if not isinstance(base, CramSettings):
        raise BadInputError(f"settings must be a CramSettings, got {type(base).__name__}; "
                            "use CramSettings.from_preset('grid-2025') or keyword arguments")
    return base.replace(**overrides) if overrides else base


# --- helpers -------------------------------------------------------------------------------------------

def _rows_and_ids(texts, need: int):
    """Token-id rows and ids (cram.token_rows); every text must have at least `need` tokens."""
    from cramlab.engine.plain import token_rows
    return token_rows(texts, need, purpose="the search",
                      hint=f"use longer texts (get_texts(..., n_tokens={need})) or shorter lengths")


def check_lengths(lengths, shortest: int = 2) -> list[int]:
    try:
        out = sorted({int(n) for n in lengths})
    except (TypeError, ValueError):
        raise BadInputError(f"lengths must be a list of integers, got {lengths!r}") from None
    if not out or out[0] < shortest or any(int(n) != n for n in lengths):
        raise BadInputError(f"lengths must be integers >= {shortest}, got {list(lengths)!r}")
    return out


def _record(res) -> dict:
    d = res.to_dict()
    return {k: d[k] for k in RECORD_KEYS}


def _fraction(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(bool(v) for v in values) / len(values) if values else None


def _model_name(lm) -> str:
    spec = getattr(lm, "spec", None)
    return getattr(spec, "name", type(getattr(lm, "model", lm)).__name__)
