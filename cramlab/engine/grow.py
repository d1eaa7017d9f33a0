"""Progressive cramming with every text growing on its own, in one batch and one captured step (GPU path).

Owns: `grow()`, the engine behind `search.progressive(..., engine="fast")`, and `GrowOutcome`. A scheduler
over step.py's step: the inputs, the loss, the keep-best bookkeeping (`TextState`), AdamW and the retire rule
(`stop_codes`) are step.py's, run here per text at the text's own length. Does not: define the protocol
(search.progressive documents it and runs the readable per-length loop, which this engine must equal: the
engine contract, step.ENGINE_SUPPORT, checked by tests/test_conformance.py), or decode.

Why one batch can hold texts of different lengths with no re-capture: the model is causal, so the
logits at positions <= n do not depend on the tokens after n. Every text is fed at the cap length once
and for all; a per-text length `n_r` masks the loss and the accuracy to the first n_r scored positions.
Each text keeps the per-length loop's own clock: `it_here` forwards at its length, a check when that reaches
a multiple of `check_every` or the length's budget (`max_steps`, or less near `max_total_steps`), and at a
check the retire rule of cram()'s loop decides (patience, non-finite loss, target reached; with
`freeze_converged` a text that reached the target on a forward takes no further step). A text that converged
takes its best vectors to the next length (`step_tokens` longer) with its AdamW moments and schedule
position (or a fresh AdamW when `carry_optimizer` is off) — all inside the step, so one CUDA graph serves
every length. A text stops when a length ends without reaching the target (failed), when it fits the cap,
or when its cumulative steps reach `max_total_steps` after a fit. Texts never wait for one another, which
changes nothing for a text: in the per-length loop a converged text also waits without a step.

Why the batch shrinks as it goes (`compact=True`, the default): a step costs what its batch and its fed
length cost, and the wall time of a run is set by its slowest text (on one H200, 32 texts fed at a
128-token cap took 198.6 s, the last text alone ~9,900 steps of a full-size batch: docs/performance.md).
So at each host read the driver rebuilds the step, state and all, for the texts still growing and feeds
only up to a bucket (`feed_bucket` tokens) above the longest live length. Stopped texts go as the fast
engine's do (`keep_retired`, default: as `use_graph`): a captured step keeps them, masked, until the work
they would cost pays for a capture (fast.worth_rebuilding; before 2026-12-07, until half the batch or
fewer was live); an eager CPU step, with no capture to pay for, drops them at the next read. A text whose
length outgrows the fed tokens waits, untrained, until the next read rebuilds a wider step (waiting
changes nothing for it, as above). Each rebuild is one more graph capture; rows never move between
texts, so the outcome is the uncompacted one up to the rounding of other shapes.

`keep_trajectory=True` keeps each text's vectors at every length it fit in a (texts, max_tokens + 1, k, d)
float32 buffer on the device, written inside the step (host copies at the reads would miss the lengths a
text passes between two reads); 32 texts x 129 lengths x 576 floats is 9.5 MB.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from cramlab.engine import fast
from cramlab.engine.fast import chunked_loss
from cramlab.engine.settings import CramSettings
from cramlab.engine.step import (
    GraphedStep,
    OptimizerState,
    TextState,
    adamw_update,
    autocast_for,
    base,
    freeze_at,
    initial_vectors,
    prepare_group,
    stop_codes,
)


@dataclass
class GrowOutcome:
    """Per text (input order): what progressive growth reached."""
    longest_tokens: list[int]               # longest length that reached the target (0: not even the start)
    failed_tokens: list[int | None]         # the length where it stopped failing (None: it did not fail)
    stop_reasons: list[str]                 # failed | max_tokens | max_total_steps
    total_steps: list[int]
    steps_per_length: list[dict[int, int]]  # optimiser steps spent at each length tried
    vectors: torch.Tensor                   # (B, k, d) float32, CPU: the vectors of the longest fit
    seconds: float
    shapes: list[tuple[int, int]]           # (texts, fed tokens) of each step built: one graph capture each
    trajectory: list[list[torch.Tensor]] | None = None   # per text: its vectors at every length it fit


def start_vectors(lm, rows: list[list[int]], s: CramSettings, seeds: list[int] | None = None) -> torch.Tensor:
    """The start vectors (B, k, d) that cram() draws for `rows` (step.initial_vectors), under one seed per row
    when `seeds` is given (replicates of one text in one batch), else under `s.seed` for every row."""
    embed = lm.get_input_embeddings()
    std = embed.weight.float().std()
    return torch.stack([initial_vectors(r, s if seeds is None else s.replace(seed=seeds[i]), embed.embedding_dim, std)
                        for i, r in enumerate(rows)])


class GrowStep(GraphedStep):
    """Every tensor of the growing batch at static addresses; `run(k)` does k steps (graph replays on CUDA)."""

    REASONS = ("", "failed", "max_tokens", "max_total_steps")

    def __init__(self, lm, rows: list[list[int]], s: CramSettings, max_tokens: int, sink_token_id: int,
                 fused_loss: bool = True, feed_tokens: int | None = None, keep_trajectory: bool = False,
                 seeds: list[int] | None = None):
        self.s, self.max_tokens = s, max_tokens
        self.feed_tokens = max_tokens if feed_tokens is None else min(feed_tokens, max_tokens)
        # Start vectors seeded by the first length's tokens, exactly as the per-length loop seeds them.
        start = start_vectors(lm, [r[:s.start_tokens] for r in rows], s, seeds)
        self.g = prepare_group(lm, [r[:self.feed_tokens] for r in rows], s, sink_token_id, warm=start)
        self.base, self.head = base(lm), lm.get_output_embeddings()
        g, dev = self.g, self.g.start.device
        self.chunked = chunked_loss(self.head, fused_loss, g.text_emb.is_cuda)
        b = g.start.shape[0]
        self.mem = torch.nn.Parameter(g.start.clone())
        self.opt = OptimizerState.zeros(g.start)
        self.state = TextState(g.start)                # this length's keep-best record, as cram()'s loop keeps it
        self.position = torch.arange(g.n_scored, device=dev)
        self.rows = torch.arange(b, device=dev)

        def longs(value):
            return torch.full((b,), value, dtype=torch.long, device=dev)
        self.length, self.it_here, self.total = longs(s.start_tokens), longs(0), longs(0)
        self.budget = longs(s.length_budget(0))
        self.longest, self.reason = longs(0), longs(0)                 # reason: index into REASONS
        self.done = torch.zeros(b, dtype=torch.bool, device=dev)
        self.longest_mem = g.start.clone()
        self.steps_log = torch.zeros(b, max_tokens + 1, dtype=torch.long, device=dev)
        self.trajectory = (torch.zeros(b, max_tokens + 1, *g.start.shape[1:], device=dev)
                           if keep_trajectory else None)
        self.graph = None

    def take_rows(self, other: GrowStep, rows: list[int]) -> GrowStep:
        """Continue rows `rows` of `other` here (vectors, AdamW state, lengths, logs): a compacted batch."""
        idx = torch.tensor(rows, dtype=torch.long, device=self.mem.device)
        with torch.no_grad():
            for mine, theirs in zip(self._tensors(), other._tensors()):
                mine.copy_(theirs[idx])
        return self

    def _step(self):
        s, g, st = self.s, self.g, self.state
        loss_tok, correct = g.losses(self.base, self.head, self.mem, chunked=self.chunked)   # step.py's forward
        n_scored = self.length - int(s.protocol == "hc")                # scored positions at each text's length
        mask = (self.position[None, :] < n_scored[:, None]).float()
        loss = (loss_tok * mask).sum(1) / n_scored
        acc = (correct * mask).sum(1) / n_scored
        present = ~self.done & (self.length <= self.feed_tokens)       # a text beyond the fed tokens waits
        live = st.update(None, self.mem, loss.detach(), acc, self.it_here, present, freeze_at(s))
        torch.where(live, loss, torch.zeros_like(loss)).sum().backward()
        with torch.no_grad():
            adamw_update(self.mem, self.mem.grad, self.opt, s, live)
            self.mem.grad.zero_()
            self.total.add_(live.long())
            self.it_here.add_(present.long())
            # A check, on each text's own clock, and the retire rule of cram()'s loop (step.stop_codes).
            at_check = present & ((self.it_here % s.check_every == 0) | (self.it_here >= self.budget))
            code = stop_codes(st.best_acc, st.last_better, st.failed_at, self.it_here, s)
            ends = at_check & ((code != 0) | (self.it_here >= self.budget))
            converged = ends & (st.best_acc.double() >= s.target_accuracy)
            self._log(ends)
            self.longest.copy_(torch.where(converged, self.length, self.longest))
            self.longest_mem.copy_(torch.where(converged[:, None, None], st.best_mem, self.longest_mem))
            if self.trajectory is not None:
                here = self.trajectory[self.rows, self.length]
                self.trajectory[self.rows, self.length] = torch.where(converged[:, None, None], st.best_mem, here)
            at_cap = converged & (self.length >= self.max_tokens)
            spent = converged & ~at_cap & (self.total >= (s.max_total_steps or torch.iinfo(torch.long).max))
            self._finish(ends & ~converged, 1)
            self._finish(at_cap, 2)
            self._finish(spent, 3)
            self._grow(converged & ~at_cap & ~spent)

    def _grow(self, grown):
        """The next length for `grown` rows: from their best vectors, a fresh record, AdamW carried or fresh."""
        s, st, g3 = self.s, self.state, grown[:, None, None]
        self.length.copy_(torch.where(grown, (self.length + s.step_tokens).clamp(max=self.max_tokens), self.length))
        self.mem.copy_(torch.where(g3, st.best_mem, self.mem))
        self.it_here.copy_(torch.where(grown, 0, self.it_here))
        self.budget.copy_(torch.where(grown, s.length_budget(self.total), self.budget))
        st.restart(grown, self.mem)
        if not s.carry_optimizer:                                   # a fresh AdamW at every length
            self.opt.exp_avg.mul_(~g3)
            self.opt.exp_avg_sq.mul_(~g3)
            self.opt.steps.mul_(~grown)

    def _finish(self, rows, reason: int):
        self.reason.copy_(torch.where(rows & ~self.done, reason, self.reason))
        self.done.logical_or_(rows)

    def _log(self, rows):
        """steps_log[r, length_r] = steps taken at that length, for the rows that leave their length now."""
        current = self.steps_log.gather(1, self.length[:, None]).squeeze(1)
        self.steps_log.scatter_(1, self.length[:, None],
                                torch.where(rows, self.state.steps_done, current)[:, None])

    STATE = ("mem", "exp_avg", "exp_avg_sq", "opt_steps", "length", "it_here", "budget", "total", "longest",
             "done", "reason", "longest_mem", "steps_log") + tuple(f"state.{n}" for n in TextState.TENSORS)

    def _tensors(self):
        """Every tensor the step changes, in STATE's order (+ the trajectory buffer when kept)."""
        out = [self.mem.data, self.opt.exp_avg, self.opt.exp_avg_sq, self.opt.steps, self.length, self.it_here,
               self.budget, self.total, self.longest, self.done, self.reason, self.longest_mem, self.steps_log]
        out += [getattr(self.state, n) for n in TextState.TENSORS]
        return out + ([self.trajectory] if self.trajectory is not None else [])



def grow(lm, rows: list[list[int]], s: CramSettings, max_tokens: int, sink_token_id: int, *,
         use_graph: bool | None = None, steps_per_check: int = 50, callback=None, compact: bool = True,
         feed_bucket: int = 16, keep_trajectory: bool = False, seeds: list[int] | None = None,
         keep_retired: bool | None = None) -> GrowOutcome:
    """Grow every text of `rows` (each >= max_tokens long) until it stops; see the module docstring.

    `compact=False` keeps every text in one batch fed at `max_tokens` to the end (one capture). `keep_retired`
    (default: as `use_graph`): see the module docstring; True on a CPU checks the GPU's arrangement.
    `callback(steps_run, n_stopped, lengths)` after every host read; `lengths` in input order.
    `seeds`: one seed per row for its start vectors (default `s.seed` for every row), so that replicates of
    the same texts run in one batch and start where they would alone.
    Runs under autocast to `s.dtype` when it differs from the model's (as cram() does)."""
    device = lm.get_input_embeddings().weight.device
    with autocast_for(lm, s.dtype, device):
        return _grow(lm, rows, s, max_tokens, sink_token_id, use_graph, steps_per_check, callback, compact,
                     feed_bucket, keep_trajectory, seeds, keep_retired)


def _grow(lm, rows, s, max_tokens, sink_token_id, use_graph, steps_per_check, callback, compact, feed_bucket,
          keep_trajectory, seeds=None, keep_retired=None) -> GrowOutcome:
    t0 = time.perf_counter()
    n_rows = len(rows)
    feed = _feed_tokens(s.start_tokens, max_tokens, feed_bucket) if compact else max_tokens

    def build(members, feed_tokens):
        return GrowStep(lm, [rows[i] for i in members], s, max_tokens, sink_token_id, feed_tokens=feed_tokens,
                        keep_trajectory=keep_trajectory, seeds=None if seeds is None else [seeds[i] for i in members])
    step = build(range(n_rows), feed)
    use_graph = step.mem.device.type == "cuda" if use_graph is None else use_graph
    keep_retired = use_graph if keep_retired is None else keep_retired
    if use_graph:
        step.capture()
    shapes = [(n_rows, step.feed_tokens)]
    built_at = 0                                    # n when the current step was built
    here = list(range(n_rows))                      # input index of each row of the current step
    final = [None] * n_rows                         # per input row: its state tensors once it left the batch
    # Every text spends at most max_steps forwards at each length it tries; each rebuild may add one
    # check of waiting.
    limit = len(lengths_tried(s, max_tokens, max_tokens)) * s.max_steps + max_tokens + 1
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
        # fast.worth_rebuilding is looked up at call time, so tests can price captures at zero.
        width = step.g.text_emb.shape[1] + s.n_prefix
        shrink = (fast.worth_rebuilding(len(here), len(live), width, n - built_at, limit - n) if keep_retired
                  else len(live) < len(here))
        if shrink or feed_moved(want, step.feed_tokens, feed_bucket):
            for j in range(len(here)):
                if done[j]:
                    final[here[j]] = _row_state(step, j)
            step = build([here[j] for j in live], want).take_rows(step, live)
            here = [here[j] for j in live]
            shapes.append((len(here), step.feed_tokens))
            built_at = n
            if use_graph:
                step.capture()
            limit += steps_per_check
    for j, i in enumerate(here):
        final[i] = _row_state(step, j)
    state = {k: torch.stack([f[k] for f in final]) for k in final[0]}
    reasons = [GrowStep.REASONS[i] or "max_total_steps" for i in state["reason"].tolist()]
    longest, length, log = state["longest"].tolist(), state["length"].tolist(), state["steps_log"]
    tried = [lengths_tried(s, max_tokens, length[r]) for r in range(n_rows)]
    per_length = [{k: int(log[r, k]) for k in tried[r]} for r in range(n_rows)]
    failed = [length[r] if reasons[r] == "failed" else None for r in range(n_rows)]
    trajectory = None
    if keep_trajectory:
        trajectory = [[state["trajectory"][r, k].float() for k in tried[r] if k <= longest[r]] for r in range(n_rows)]
    return GrowOutcome(longest_tokens=longest, failed_tokens=failed, stop_reasons=reasons,
                       total_steps=state["total"].tolist(), steps_per_length=per_length,
                       vectors=state["longest_mem"].float(), seconds=time.perf_counter() - t0,
                       shapes=shapes, trajectory=trajectory)


def _row_state(step: GrowStep, j: int) -> dict[str, torch.Tensor]:
    """Row j of every state tensor of `step`, on the CPU, by name (GrowStep.STATE, + the trajectory)."""
    names = GrowStep.STATE + (("trajectory",) if step.trajectory is not None else ())
    return {k: t[j].detach().cpu() for k, t in zip(names, step._tensors())}


def _feed_tokens(longest_live: int, max_tokens: int, bucket: int) -> int:
    """Tokens to feed: a multiple of `bucket` at least one bucket above the longest live length (capped),
    so that texts rarely outgrow it between two checks."""
    return min(max_tokens, -(-(longest_live + bucket) // bucket) * bucket)


def feed_moved(want: int, fed: int, bucket: int) -> bool:
    """Whether the step must be rebuilt for a new fed length: the longest live text needs more than is fed, or
    two buckets less (one bucket of slack saves rebuilding back and forth)."""
    return want > fed or want <= fed - 2 * bucket


def lengths_tried(s: CramSettings, max_tokens: int, last: int) -> list[int]:
    """The lengths a text visits from `start_tokens` by `step_tokens` (capped at max_tokens) up to `last`."""
    out, n = [], s.start_tokens
    while True:
        out.append(n)
        if n >= last or n >= max_tokens:
            return out
        n = min(n + s.step_tokens, max_tokens)
