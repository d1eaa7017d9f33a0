"""Progressive cramming with every text growing on its own, in one batch and one captured step (GPU path).

Owns: `grow()`, the engine behind `search.progressive(..., engine="fast")`, and `GrowOutcome`.
Does not: define the protocol (search.progressive documents it and runs the readable per-length loop,
which this engine must equal), the bookkeeping of a fixed-length run (step.py), or decoding.

Why one batch can hold texts of different lengths with no re-capture: the model is causal, so the
logits at positions <= n do not depend on the tokens after n. Every text is fed at the cap length once
and for all; a per-text length `n_r` masks the loss and the accuracy to the first n_r scored positions.
When a text's training forward reaches the target at its length, its vectors become its longest fit,
its length grows by `step_tokens` and it goes on with its vectors, AdamW moments and schedule position
(or a fresh AdamW when `carry_optimizer` is off) — all inside the step, so one CUDA graph serves every
length. A text stops when `max_steps` steps at one length did not reach the target (failed), when it fits
the cap, or when its cumulative steps reach `max_total_steps`. Texts never wait for one another, which
changes nothing for a text: in the per-length loop a converged text also waits without a step.

Why the batch shrinks as it goes (`compact=True`, the default): a step costs what its batch and its fed
length cost, and the wall time of a run is set by its slowest text (on one H200, 32 texts fed at a
128-token cap took 198.6 s, the last text alone ~9,900 steps of a full-size batch: docs/performance.md).
So at each check the driver rebuilds the step, state and all, for the texts still growing (when they are
half the batch or fewer) and feeds only up to a bucket (`feed_bucket` tokens) above the longest live
length. A text whose length outgrows the fed tokens waits, untrained, until the next check rebuilds a
wider step (waiting changes nothing for it, as above). Each rebuild is one more graph capture; rows
never move between texts, so the outcome is the uncompacted one up to the rounding of other shapes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .fast import token_losses
from .settings import CramSettings
from .step import GraphedStep, OptimizerState, adamw_update, base, initial_vectors, prepare_group


@dataclass
class GrowOutcome:
    """Per text (input order): what progressive growth reached."""
    longest_tokens: list[int]               # longest length that reached the target (0: not even the start)
    failed_tokens: list[int | None]         # the length where it stopped failing (None: it did not fail)
    stop_reasons: list[str]                 # failed | max_tokens | max_total_steps | non_finite
    total_steps: list[int]
    steps_per_length: list[dict[int, int]]  # optimiser steps spent at each length tried
    vectors: torch.Tensor                   # (B, k, d) float32, CPU: the vectors of the longest fit
    seconds: float
    shapes: list[tuple[int, int]]           # (texts, fed tokens) of each step built: one graph capture each


class GrowStep(GraphedStep):
    """Every tensor of the growing batch at static addresses; `run(k)` does k steps (graph replays on CUDA)."""

    def __init__(self, lm, rows: list[list[int]], s: CramSettings, max_tokens: int, sink_token_id: int,
                 fused_loss: bool = True, feed_tokens: int | None = None):
        self.s, self.max_tokens = s, max_tokens
        self.feed_tokens = max_tokens if feed_tokens is None else min(feed_tokens, max_tokens)
        # Start vectors seeded by the first length's tokens, exactly as the per-length loop seeds them.
        embed = lm.get_input_embeddings()
        std = embed.weight.float().std()
        start = torch.stack([initial_vectors(r[:s.start_tokens], s, embed.embedding_dim, std) for r in rows])
        self.g = prepare_group(lm, [r[:self.feed_tokens] for r in rows], s, sink_token_id, warm=start)
        self.base, self.head = base(lm), lm.get_output_embeddings()
        self.fused_loss = fused_loss and getattr(self.head, "bias", None) is None
        g, dev = self.g, self.g.start.device
        b = g.start.shape[0]
        self.inputs_static = g.inputs(g.start)          # (B, P + N, d): the vectors are overwritten each step
        self.mem = torch.nn.Parameter(g.start.clone())
        self.opt = OptimizerState.zeros(g.start)
        self.position = torch.arange(g.n_scored, device=dev)
        self.length = torch.full((b,), s.start_tokens, dtype=torch.long, device=dev)
        self.steps_here = torch.zeros(b, dtype=torch.long, device=dev)
        self.total = torch.zeros(b, dtype=torch.long, device=dev)
        self.longest = torch.zeros(b, dtype=torch.long, device=dev)
        self.done = torch.zeros(b, dtype=torch.bool, device=dev)
        self.reason = torch.zeros(b, dtype=torch.long, device=dev)     # index into REASONS
        self.best_mem = g.start.clone()
        self.steps_log = torch.zeros(b, max_tokens + 1, dtype=torch.long, device=dev)
        self.graph = None

    def take_rows(self, other: GrowStep, rows: list[int]) -> GrowStep:
        """Continue rows `rows` of `other` here (vectors, AdamW state, lengths, logs): a compacted batch."""
        idx = torch.tensor(rows, dtype=torch.long, device=self.mem.device)
        with torch.no_grad():
            for mine, theirs in zip(self._tensors(), other._tensors()):
                mine.copy_(theirs[idx])
        return self

    REASONS = ("", "failed", "max_tokens", "max_total_steps", "non_finite")
    STATE = ("mem", "exp_avg", "exp_avg_sq", "opt_steps", "length", "steps_here", "total", "longest", "done",
             "reason", "best_mem", "steps_log")                      # names of `_tensors()`, in its order

    def _step(self):
        s, g = self.s, self.g
        n_prefix = s.n_prefix
        inputs = torch.cat([self.inputs_static[:, :n_prefix - s.n_mem], self.mem.to(g.text_emb.dtype),
                            self.inputs_static[:, n_prefix:]], dim=1)
        hidden = self.base(inputs_embeds=inputs, use_cache=False).last_hidden_state
        hidden = hidden[:, g.first_pos:g.first_pos + g.n_scored]
        loss_tok, correct = token_losses(self.head, hidden, g.targets, self.fused_loss)
        n_scored = self.length - int(s.protocol == "hc")                # scored positions at each text's length
        mask = (self.position[None, :] < n_scored[:, None]).float()
        loss = (loss_tok * mask).sum(1) / n_scored
        acc = (correct * mask).sum(1) / n_scored
        with torch.no_grad():
            live = ~self.done & (self.length <= self.feed_tokens)      # a text beyond the fed tokens waits
            finite = torch.isfinite(loss)
            fits = live & finite & (acc >= s.target_accuracy)           # decided on this forward, before a step
            self.longest.copy_(torch.where(fits, self.length, self.longest))
            self.best_mem.copy_(torch.where(fits[:, None, None], self.mem.detach(), self.best_mem))
            self._log(live & (fits | ~finite))
            at_cap = fits & (self.length >= self.max_tokens)
            self._finish(at_cap, 2)
            self._finish(live & ~finite, 4)
            grown = fits & ~at_cap
            self.length.copy_(torch.where(grown, (self.length + s.step_tokens).clamp(max=self.max_tokens),
                                          self.length))
            self.steps_here.copy_(torch.where(grown, 0, self.steps_here))
            if not s.carry_optimizer:                                   # a fresh AdamW at every length
                keep = (~grown)[:, None, None]
                self.opt.exp_avg.mul_(keep)
                self.opt.exp_avg_sq.mul_(keep)
                self.opt.steps.mul_(~grown)
            train = live & finite & ~fits
        torch.where(train, loss, torch.zeros_like(loss)).sum().backward()
        with torch.no_grad():
            adamw_update(self.mem, self.mem.grad, self.opt, s, train)
            self.mem.grad.zero_()
            self.steps_here.add_(train.long())
            self.total.add_(train.long())
            out_of_steps = train & (self.steps_here >= s.max_steps)
            self._log(out_of_steps)
            self._finish(out_of_steps, 1)
            if s.max_total_steps is not None:
                self._finish(train & ~out_of_steps & (self.total >= s.max_total_steps), 3)

    def _finish(self, rows, reason: int):
        self.reason.copy_(torch.where(rows & ~self.done, reason, self.reason))
        self.done.logical_or_(rows)

    def _log(self, rows):
        """steps_log[r, length_r] = steps spent at that length, for the rows that leave their length now."""
        current = self.steps_log.gather(1, self.length[:, None]).squeeze(1)
        self.steps_log.scatter_(1, self.length[:, None], torch.where(rows, self.steps_here, current)[:, None])

    def _tensors(self):
        return [self.mem.data, self.opt.exp_avg, self.opt.exp_avg_sq, self.opt.steps, self.length,
                self.steps_here, self.total, self.longest, self.done, self.reason, self.best_mem, self.steps_log]


def grow(lm, rows: list[list[int]], s: CramSettings, max_tokens: int, sink_token_id: int, *,
         use_graph: bool | None = None, steps_per_check: int = 50, callback=None, compact: bool = True,
         feed_bucket: int = 16) -> GrowOutcome:
    """Grow every text of `rows` (each >= max_tokens long) until it stops; see the module docstring.

    `compact=False` keeps every text in one batch fed at `max_tokens` to the end (one capture).
    `callback(steps_run, n_stopped, lengths)` after every check; `lengths` in input order."""
    t0 = time.perf_counter()
    n_rows = len(rows)
    feed = _feed_tokens(s.start_tokens, max_tokens, feed_bucket) if compact else max_tokens
    step = GrowStep(lm, rows, s, max_tokens, sink_token_id, feed_tokens=feed)
    use_graph = step.mem.device.type == "cuda" if use_graph is None else use_graph
    if use_graph:
        step.capture()
    shapes = [(n_rows, step.feed_tokens)]
    here = list(range(n_rows))                      # input index of each row of the current step
    final = [None] * n_rows                         # per input row: its state tensors once it left the batch
    # Every text stops within max_total_steps trained steps (or (lengths to go) x max_steps without that
    # cap), plus one untrained forward per length that fits at once; each rebuild may add one check of waiting.
    limit = (s.max_total_steps or (max_tokens - s.start_tokens + 1) * s.max_steps) + max_tokens + 1
    n = 0
    while n < limit:
        k = min(steps_per_check, limit - n)
        step.run(k)
        n += k
        done, length = step.done.cpu(), step.length.cpu()
        if callback is not None:
            n_stopped = sum(f is not None for f in final) + int(done.sum())
            lengths = [int(f["length"]) if f is not None else 0 for f in final]
            for j, i in enumerate(here):
                lengths[i] = int(length[j])
            callback(n, n_stopped, lengths)
        if bool(done.all()):
            break
        if not compact:
            continue
        live = [j for j in range(len(here)) if not done[j]]
        want = _feed_tokens(max(int(length[j]) for j in live), max_tokens, feed_bucket)
        if len(live) <= len(here) // 2 or want > step.feed_tokens or want <= step.feed_tokens - 2 * feed_bucket:
            for j in range(len(here)):
                if done[j]:
                    final[here[j]] = _row_state(step, j)
            narrow = GrowStep(lm, [rows[here[j]] for j in live], s, max_tokens, sink_token_id, feed_tokens=want)
            step = narrow.take_rows(step, live)
            here = [here[j] for j in live]
            shapes.append((len(here), step.feed_tokens))
            if use_graph:
                step.capture()
            limit += steps_per_check
    for j, i in enumerate(here):
        final[i] = _row_state(step, j)
    state = {k: torch.stack([f[k] for f in final]) for k in GrowStep.STATE}
    reasons = [GrowStep.REASONS[i] or "max_total_steps" for i in state["reason"].tolist()]
    longest, length, log = state["longest"].tolist(), state["length"].tolist(), state["steps_log"]
    per_length = [{k: int(log[r, k]) for k in lengths_tried(s, max_tokens, length[r])} for r in range(n_rows)]
    failed = [length[r] if reasons[r] in ("failed", "non_finite") else None for r in range(n_rows)]
    return GrowOutcome(longest_tokens=longest, failed_tokens=failed, stop_reasons=reasons,
                       total_steps=state["total"].tolist(), steps_per_length=per_length,
                       vectors=state["best_mem"].float(), seconds=time.perf_counter() - t0,
                       shapes=shapes)


def _row_state(step: GrowStep, j: int) -> dict[str, torch.Tensor]:
    """Row j of every state tensor of `step`, on the CPU, by name (GrowStep.STATE)."""
    return {k: t[j].detach().cpu() for k, t in zip(GrowStep.STATE, step._tensors())}


def _feed_tokens(longest_live: int, max_tokens: int, bucket: int) -> int:
    """Tokens to feed: a multiple of `bucket` at least one bucket above the longest live length (capped),
    so that texts rarely outgrow it between two checks."""
    return min(max_tokens, -(-(longest_live + bucket) // bucket) * bucket)


def lengths_tried(s: CramSettings, max_tokens: int, last: int) -> list[int]:
    """The lengths a text visits from `start_tokens` by `step_tokens` (capped at max_tokens) up to `last`."""
    out, n = [], s.start_tokens
    while True:
        out.append(n)
        if n >= last or n >= max_tokens:
            return out
        n = min(n + s.step_tokens, max_tokens)
