"""The cramming loop: train input vectors so that a frozen LM reproduces a text (Kuratov et al., 2025).

Owns: `cram()` (the public entry point), `CramResult`, and the plain loop, written to be read top to
bottom, and `token_rows` (what every entry point accepts as texts). Does not: hold the settings' defaults or
validation (settings.py), define the step (step.py: inputs, loss, bookkeeping, AdamW, the retire rule, shared
with fast.py and grow.py), load models, decode files or search lengths.

`cram()` prepares the frozen token embeddings once, then optimises one set of `n_mem` vectors per text,
all texts of a length in one batch (`mixed_lengths=True`: texts of different lengths in right-padded batches, split
by `length_groups`, each text's loss and accuracy over its own scored positions: causality makes the padding exact
up to float rounding). Each text
has its own vectors and its own AdamW state, so texts in a batch do not influence one another.

Inputs per text, for the default `sink-first` layout:   [sink] [mem_1 .. mem_k] [t_1 .. t_N]
(`mem-first` drops the sink, as in both papers. In SmolLM2 position 0 is an attention sink. What a vector
there loses is mostly predicting t_1 and the first tokens, not steering the rest: docs/results.md measures it.)

Scoring protocols:
  `pc` (default)  the last vector predicts t_1 too: all N tokens are scored, so greedy decoding from the
                  vectors alone gives back the whole text ("back again" with nothing else given).
  `hc`            the authors' code of 2025: t_1 is never scored (it is BOS for their tokenizers); logits
                  at t_1..t_{N-1} predict t_2..t_N; decoding then needs t_1 as a prompt.

The loop never reads a value back from the device inside a step: convergence, patience and progress are
checked every `check_every` steps; a finished text leaves the batch at the next check, so finished texts
cost nothing (with `freeze_converged`, a text whose training forward reached the target is not moved again).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from cramlab import capacity
from cramlab.engine.decode import decode, first_mismatch, unwrap
from cramlab.engine.fast import STEP_FLOOR_ROW_TOKENS
from cramlab.engine.settings import CramSettings
from cramlab.engine.step import (
    CramProgress,
    LoopOutcome,
    OptimizerState,
    TextGroup,
    TextState,
    adamw_update,
    autocast_for,
    base,
    check,
    freeze_at,
    model_dtype,
    prepare_group,
    report_check,
    resolve_engine,
    sink_token_id,
)
from cramlab.errors import BadInputError, ContextTooLongError, TextTooShortError

__all__ = ["CramProgress", "CramResult", "CramSettings", "cram"]


@dataclass
class CramResult:
    """Everything one text's cramming produced (plain data; `to_dict()` is JSON-ready)."""
    text_index: int
    text_id: str
    n_tokens: int
    n_mem: int
    token_ids: list[int]
    steps: int                          # optimiser steps this text took in this call
    converged: bool                     # a training forward reached target_accuracy
    teacher_forced_accuracy: float      # the returned vectors, evaluated once more after training
    baseline_accuracy: float            # the same text without vectors
    baseline_ce_nats: float             # total cross-entropy over scored tokens, no vectors
    final_ce_nats: float                # total cross-entropy with the returned vectors
    baseline_ce_per_token_nats: float
    final_ce_per_token_nats: float
    n_scored: int                       # N for `pc`, N-1 for `hc`
    info_gain_nats: float               # baseline_ce_nats - final_ce_nats
    info_gain_bits: float
    gain_tokens: float                  # (best_acc - baseline_acc) * n_scored
    train_accuracy: float = float("nan")          # best accuracy on the training forwards (decides `converged`)
    min_ce_per_token_nats: float = float("nan")   # minimum training loss (Kuratov et al.'s IG uses it)
    greedy_exact: bool | None = None    # greedy decoding from the vectors reproduced the text
    first_mismatch: int | None = None   # first wrong token of the greedy decode (None: exact)
    decoded_text: str | None = None
    seconds: float = 0.0
    stop_reason: str = ""               # converged | patience | max_steps | non_finite | interrupted
    failed_step: int | None = None      # step of the first non-finite loss
    history: list[list[float]] = field(default_factory=list)  # [step, loss_per_token_nats, accuracy] per check
    settings: dict = field(default_factory=dict)
    vectors: Any = None                 # torch.Tensor (n_mem, d), float32, CPU
    optimizer: Any = None               # OptimizerState of this text (1 row), for progressive carry-over

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    @property
    def failed(self) -> bool:
        return self.stop_reason == "non_finite"

    @property
    def evaluation_agrees(self) -> bool:
        """The re-evaluation of the returned vectors reaches the target exactly when training said so."""
        return self.converged == (self.teacher_forced_accuracy >= self.settings.get("target_accuracy", 1.0))

    def to_dict(self, include_vectors: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("vectors", "optimizer")}
        if include_vectors and self.vectors is not None:
            out["vectors"] = self.vectors.tolist()
        return out


def cram(model, texts, settings: CramSettings | None = None, *, init_vectors=None,
         init_optimizer: OptimizerState | None = None, callback: Callable[[CramProgress], Any] | None = None,
         progress: bool = True, decode: bool = True, text_ids: Sequence[str] | None = None,
         mixed_lengths: bool = False, **overrides) -> list[CramResult]:
    """Cram each text into its own `n_mem` vectors; return one `CramResult` per text, in input order.

    `model` is a `LoadedModel` (from `load_model`) or a bare transformers causal LM.
    `texts` is a list of `Text`, of token-id lists, a (B, N) tensor, or a single token-id list.
    `settings`: a `CramSettings` (default: the kit's); keyword `overrides` change single fields
    (`cram(lm, texts, lr=0.1)`), so `CramSettings.from_preset("grid-2025")` or plain keywords both work.
    `init_vectors` warm-starts from given vectors ((k, d) for all, or (B, k, d)); `init_optimizer`
    (an `OptimizerState` with B rows) carries AdamW's moments and schedule position over as well.
    `mixed_lengths`: texts of different lengths train together, right-padded to the longest of their batch, in
    the batches `length_groups` splits them into (few: on a GPU every batch's step has a fixed cost, every padded
    token a cost of its own); results per text as alone, up to the float rounding of other matmul shapes
    (tests/test_mixed_lengths.py); each batch decoded in one batch too.
    """
    s = (settings or CramSettings()).replace(**overrides) if overrides else (settings or CramSettings())
    lm, tokenizer, spec = unwrap(model)
    rows, ids_of = token_rows(texts, s.min_tokens(), text_ids, f"cramming under protocol {s.protocol}",
                              "protocol pc scores 1 token, hc needs 2")
    sink = sink_token_id(s, spec)
    context = getattr(spec, "context_length", None) or getattr(lm.config, "max_position_embeddings", None)
    longest = max(len(r) for r in rows)
    if context and longest + s.n_prefix > context:   # checked before any group runs: nothing is lost
        raise ContextTooLongError(f"n_tokens + n_mem = {longest + s.n_prefix} exceeds the model's context of "
                                  f"{context} tokens; use --n-tokens {context - s.n_prefix} or less")
    d = lm.get_input_embeddings().embedding_dim
    warm = _as_start(init_vectors, len(rows), s.n_mem, d)
    if init_optimizer is not None and init_optimizer.steps.shape[0] != len(rows):
        raise BadInputError(f"init_optimizer has {init_optimizer.steps.shape[0]} rows for {len(rows)} texts")
    record = s.to_dict() | {
        "engine": resolve_engine(s.engine, lm), "dtype": s.dtype or model_dtype(lm),
        "sink_token_id": sink if s.layout == "sink-first" else None,
        "init": s.init if warm is None else "warm", "model": getattr(spec, "name", type(lm).__name__),
        "fingerprint": getattr(spec, "fingerprint", "")}
    results: list[CramResult | None] = [None] * len(rows)
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row), []).append(i)
    if mixed_lengths:                                 # right-padded batches of neighbouring lengths
        groups = dict(enumerate(length_groups([len(r) for r in rows], s.n_prefix)))
    interrupted = False
    for members in groups.values():
        group = prepare_group(lm, [rows[i] for i in members], s, sink, warm=None if warm is None else warm[members],
                              mixed=mixed_lengths)
        opt = None if init_optimizer is None else init_optimizer.rows(torch.tensor(members)).to(group.start.device)
        for i, res in zip(members, _cram_group(lm, tokenizer, group, s, record, text_ids=[ids_of[i] for i in members],
                                               indices=members, opt=opt, callback=callback, progress=progress,
                                               decode=decode, skip=interrupted)):
            results[i] = res
            interrupted = interrupted or res.interrupted
    return results  # type: ignore[return-value]


def length_groups(lengths: Sequence[int], prefix: int = 0, floor_row_tokens: int = STEP_FLOOR_ROW_TOKENS
                  ) -> list[list[int]]:
    """Indices of `lengths` (tokens per text; `prefix` positions more for each) split into right-padded batches of
    neighbouring lengths, shortest first: the split with the least sum over batches of `floor_row_tokens` (a step's
    fixed cost: engine.fast) + texts x (longest + prefix), a step's cost if every text ran every step. One batch
    pads a 2-token text to the longest; one batch per length pays the fixed cost again for each; the 2025 random
    job (300 texts of 2 to 128 tokens) splits into three. Exact (dynamic programming over the distinct lengths)."""
    count = Counter(lengths)
    distinct = sorted(count)
    best, cut = [0] + [0] * len(distinct), [0] * (len(distinct) + 1)
    for i in range(1, len(distinct) + 1):          # best[i]: the cheapest split of the i shortest lengths
        rows, best[i], cut[i] = 0, None, 0
        for j in range(i - 1, -1, -1):             # the last batch holds distinct[j:i]
            rows += count[distinct[j]]
            cost = best[j] + floor_row_tokens + rows * (distinct[i - 1] + prefix)
            if best[i] is None or cost < best[i]:
                best[i], cut[i] = cost, j
    bounds, i = [], len(distinct)
    while i > 0:
        bounds.append((distinct[cut[i]], distinct[i - 1]))
        i = cut[i]
    return [[k for k, n in enumerate(lengths) if lo <= n <= hi] for lo, hi in reversed(bounds)]


def _cram_group(lm, tokenizer, g: TextGroup, s, record, *, text_ids, indices, opt, callback, progress, decode,
                skip=False) -> list[CramResult]:
    """Cram the texts of one group (one length, or right-padded) together. Returns results in group order.
    `skip`: an earlier group was interrupted; return these texts untrained, marked interrupted."""
    autocast = autocast_for(lm, record["dtype"], g.ids.device)
    with torch.no_grad():
        baseline_loss, baseline_acc = _means(g, g.baseline_losses, lm, autocast)
    bar = None if skip or not progress else _progress_bar(s.max_steps, len(indices))
    if skip:
        out = LoopOutcome.untrained(g.start)
    elif record["engine"] == "fast":
        from cramlab.engine.fast import fast_loop
        with autocast:
            out = fast_loop(lm, g, s, opt, callback, indices, bar)
    else:
        out = plain_loop(lm, g, s, opt, autocast, callback, indices, bar)
    if bar is not None:
        bar.close()

    # Finish: evaluate the returned (best) vectors once more, then decode them back.
    with torch.no_grad():
        final_loss, final_acc = _means(g, lambda body, head: g.losses(body, head, out.best_mem), lm, autocast)
    scored = [g.n_scored] * len(indices) if g.row_scored is None else g.row_scored.tolist()
    results = []
    for r in range(len(indices)):
        n_scored, n_tokens = scored[r], scored[r] + int(s.protocol == "hc")      # this text's own, unpadded
        fl, fa = float(final_loss[r]), float(final_acc[r])
        bl, ba = float(baseline_loss[r]), float(baseline_acc[r])
        train_acc = out.train_accuracy[r]
        results.append(CramResult(
            text_index=indices[r], text_id=text_ids[r], n_tokens=n_tokens, n_mem=s.n_mem,
            token_ids=g.ids[r, :n_tokens].tolist(), steps=out.steps[r], converged=train_acc >= s.target_accuracy,
            teacher_forced_accuracy=fa, baseline_accuracy=ba, baseline_ce_nats=bl * n_scored,
            final_ce_nats=fl * n_scored, baseline_ce_per_token_nats=bl, final_ce_per_token_nats=fl,
            n_scored=n_scored, info_gain_nats=capacity.info_gain_nats(bl * n_scored, fl * n_scored),
            info_gain_bits=capacity.info_gain_bits(bl * n_scored, fl * n_scored),
            gain_tokens=capacity.gain_tokens(fa, ba, n_scored), train_accuracy=train_acc,
            min_ce_per_token_nats=out.min_loss_per_token_nats[r], seconds=out.seconds,
            stop_reason=out.stop_reasons[r], failed_step=out.failed_step[r], history=out.histories[r],
            settings=dict(record), vectors=out.best_mem[r].detach().float().cpu().clone(),
            optimizer=None if out.optimizer is None else out.optimizer.rows([r]).to("cpu")))
    if decode and not out.interrupted:
        _decode_into(lm, tokenizer, results, g, out.best_mem, s, sink_token=record["sink_token_id"])
    return results


def plain_loop(lm, g: TextGroup, s: CramSettings, opt, autocast, callback, indices, bar) -> LoopOutcome:
    """The optimisation itself, one step at a time, over the texts still training."""
    n_texts = g.ids.shape[0]
    mem_all = g.start.clone()                                   # (B, k, d) float32: every text's vectors
    opt = opt if opt is not None else OptimizerState.zeros(mem_all)   # AdamW's moments, per text
    state = TextState(mem_all)                                  # best-so-far etc., kept on the device
    active = list(range(n_texts))                               # rows still training
    reasons: list[str | None] = [None] * n_texts
    history: list[list[list[float]]] = [[] for _ in range(n_texts)]
    t0, step, interrupted = time.perf_counter(), 0, False
    body, head = base(lm), lm.get_output_embeddings()
    try:
        while active and step < s.max_steps:
            rows = torch.tensor(active, device=mem_all.device)
            mem = mem_all[rows].requires_grad_(True)             # this step's leaf: the active texts' vectors
            with autocast:
                loss_tok, correct = g.losses(body, head, mem, rows)      # the step's forward (step.py)
            loss, acc = g.means(loss_tok, correct, rows)                  # nats per token, accuracy
            # Remember the best vectors *before* this step changes them (with freeze_converged, texts at
            # the target stay put).
            live = state.update(rows, mem, loss.detach(), acc, step, torch.ones_like(acc, dtype=torch.bool),
                                freeze_at(s))
            # Sum of per-text means: each text's gradient is what it would be alone.
            torch.where(live, loss, torch.zeros_like(loss)).sum().backward()
            with torch.no_grad():
                moved, moments = mem.detach().clone(), opt.rows(rows)
                adamw_update(moved, mem.grad, moments, s, live)
                mem_all[rows], opt.exp_avg[rows], opt.exp_avg_sq[rows], opt.steps[rows] = (
                    moved, moments.exp_avg, moments.exp_avg_sq, moments.steps)
            step += 1
            if step % s.check_every == 0 or step == s.max_steps:
                now = state.host()
                decided = check(now, active, range(n_texts), step, s, history)
                for r, why in decided.items():
                    reasons[r] = why
                checked, active = active, [r for r in active if decided[r] is None]
                report_check(callback, now, checked, range(n_texts), step, decided, indices)
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(done=f"{n_texts - len(active)}/{n_texts}")
    except KeyboardInterrupt:
        interrupted = True
    reasons = [r or ("interrupted" if interrupted else "max_steps") for r in reasons]
    failed = state.failed_at.cpu().tolist()
    return LoopOutcome(best_mem=state.best_mem, steps=state.steps_done.cpu().tolist(),
                       failed_step=[f if f >= 0 else None for f in failed], stop_reasons=reasons,
                       histories=history, train_accuracy=state.best_acc.cpu().tolist(),
                       min_loss_per_token_nats=state.min_loss.cpu().tolist(), optimizer=opt,
                       seconds=time.perf_counter() - t0, interrupted=interrupted)


def _means(g: TextGroup, losses, lm, autocast):
    """Per-text mean loss (nats per token) and accuracy of one forward (`losses(body, head)`, step.py's), on the CPU,
    over each text's own scored positions (`TextGroup.means`)."""
    with autocast:
        loss_tok, correct = losses(base(lm), lm.get_output_embeddings())
    return tuple(x.cpu() for x in g.means(loss_tok, correct))


def _decode_into(lm, tokenizer, results, g: TextGroup, vectors, s, sink_token):
    """Greedy decode of every text of the group with `decode`: one batch to the longest text, each row cut to its
    own length. One loop per length took 131.1 s for the 300 random texts of `reproduce --paper 2025` (90 lengths)
    on an H100, one batch 3.9 s (experiments/decode_batching.py)."""
    first = g.ids[:, 0] if s.protocol == "hc" else None
    decoded = decode(lm, vectors, [res.n_tokens for res in results], layout=s.layout, protocol=s.protocol,
                     first_token_id=first, sink_token_id=sink_token)
    for res, d in zip(results, decoded):
        res.first_mismatch = first_mismatch(d.token_ids, res.token_ids)
        res.greedy_exact = res.first_mismatch is None
        res.decoded_text = tokenizer.decode(d.token_ids) if tokenizer is not None else None


def _as_start(init_vectors, n_rows, n_mem, d):
    """Warm-start vectors as (B, k, d) float32, or None."""
    if init_vectors is None:
        return None
    warm = torch.as_tensor(init_vectors, dtype=torch.float32)
    if tuple(warm.shape) == (n_mem, d):                  # one (k, d) start for every text
        return warm.expand(n_rows, n_mem, d)
    if tuple(warm.shape) != (n_rows, n_mem, d):
        raise BadInputError(f"init_vectors has shape {tuple(warm.shape)} but this run needs ({n_mem}, {d}) or "
                            f"({n_rows}, {n_mem}, {d}) (n_mem={n_mem}, d={d}); warm-start from vectors of the same "
                            "n_mem and model")
    return warm


def token_rows(texts, need: int = 1, text_ids=None, purpose: str = "cramming", hint: str = ""):
    """Token-id rows and an id per text, from `Text` objects, token-id lists, a (B, N) tensor or one token-id
    list; every text needs at least `need` tokens (`purpose` and `hint` word the error). Used by every entry point."""
    if torch.is_tensor(texts):
        texts = texts.tolist() if texts.dim() == 2 else [texts.tolist()]
    if isinstance(texts, (list, tuple)) and texts and isinstance(texts[0], int):
        texts = [list(texts)]
    if not isinstance(texts, (list, tuple)) or not texts:
        raise BadInputError("no texts given; pass token-id lists or Text objects (cramlab.models.texts.get_texts)")
    rows, ids = [], []
    for i, t in enumerate(texts):
        row = [int(x) for x in getattr(t, "token_ids", t)]
        tid = text_ids[i] if text_ids else getattr(t, "text_id", f"text-{i}")
        if len(row) < need:
            raise TextTooShortError(f"text {tid!r} has {len(row)} token(s) but {purpose} needs at least {need}"
                                    + (f"; {hint}" if hint else ""))
        rows.append(row)
        ids.append(tid)
    return rows, ids


def _progress_bar(total, n_texts):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=f"cramming {n_texts} text(s)", unit="step", leave=False)
