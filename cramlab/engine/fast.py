"""The fast engine: the same optimisation as `cram.py`, arranged for GPUs.

Owns: the graph-captured step (`FastStep`), its loop (`fast_loop`), the rebuild rule and the chunked
linear + cross-entropy (`chunked_loss`: the kernels that compute step.token_losses without full logits).
Does not: define what is optimised (the inputs, the loss, the per-text bookkeeping, AdamW and the retire
rule are step.py's, shared with the plain loop and grow.py), load models or report.
Read `plain.py` first: this file changes *how* the step runs, not *what* it computes.
- Static shapes. A finished text stays in its row with a zero mask (no loss, no gradient, its best vectors
  frozen) until a rebuild pays (`worth_rebuilding`: the work the dead rows would cost over the steps the batch
  is likely to have left outweighs a capture); then the live rows' state is compacted into a step of exactly
  that many rows and the step is captured again.
- The whole step — forward, loss, best-so-far bookkeeping, backward, AdamW per text — is captured
  once in a CUDA graph and replayed: one launch per step instead of thousands.
- The loss never materialises the (texts × tokens × vocabulary) logits: `linear_cross_entropy` runs
  the LM head and the softmax in row chunks and recomputes them in the backward pass; on a model that
  Liger patched (kernels.py), `LigerLinearCrossEntropy` does each chunk in one pass through Liger's
  cross-entropy kernel and keeps the gradient instead (no recompute).
On CPU the same step runs eagerly (no graph); a test keeps it equal to the plain loop.
"""
from __future__ import annotations

import time

import torch

from cramlab.engine.settings import CramSettings
from cramlab.engine.step import (
    GraphedStep,
    LoopOutcome,
    OptimizerState,
    TextGroup,
    TextState,
    adamw_update,
    base,
    check,
    freeze_at,
    report_check,
)
from cramlab.kernels.precast import autocast_dtype, precast_linears


class LinearCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy of `hidden @ weight.T` against `targets`, computed `chunk` rows at a time.

    Returns (loss per row in nats, 1.0 where the argmax is the target). Only the gradient to `hidden` is
    produced (the weight is frozen); logits for one chunk exist at a time, in forward and in backward.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk):
        rows = hidden.shape[0]
        loss = torch.empty(rows, device=hidden.device, dtype=torch.float32)
        correct = torch.empty(rows, device=hidden.device, dtype=torch.float32)
        lse = torch.empty(rows, device=hidden.device, dtype=torch.float32)
        for start in range(0, rows, chunk):
            sl = slice(start, start + chunk)
            logits = (hidden[sl] @ weight.T).float()
            lse[sl] = torch.logsumexp(logits, dim=-1)
            target_logit = logits.gather(1, targets[sl, None]).squeeze(1)
            loss[sl] = lse[sl] - target_logit
            correct[sl] = (logits.argmax(-1) == targets[sl]).float()
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.chunk = chunk
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        hidden, weight, targets, lse = ctx.saved_tensors
        grad_hidden = torch.empty_like(hidden)
        for start in range(0, hidden.shape[0], ctx.chunk):
            sl = slice(start, start + ctx.chunk)
            probs = torch.exp((hidden[sl] @ weight.T).float() - lse[sl, None])
            probs.scatter_add_(1, targets[sl, None], -torch.ones_like(lse[sl, None]))
            probs.mul_(grad_loss[sl, None])
            grad_hidden[sl] = (probs.to(weight.dtype) @ weight).to(hidden.dtype)
        return grad_hidden, None, None, None


class LigerLinearCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy of `hidden @ weight.T` against `targets` (loss in nats, 1.0 where the argmax is the
    target), `chunk` rows at a time, each chunk's logits passed once through Liger's cross-entropy kernel.

    The kernel reads a chunk of logits once for the softmax statistics and once more to write the gradient
    softmax - onehot in place of the logits; `grad @ weight` is then the gradient to those hidden rows for a
    unit upstream gradient. Backward only scales it row by row by the upstream gradient, which is exact
    (scaling rows commutes with the matmul), so there is no second pass over the logits. Same contract as
    `LinearCrossEntropy`; a GPU check compares the two. Liger's own fused linear cross-entropy
    calls `.item()`, which a CUDA graph cannot capture: the chunk loop around its kernel is ours.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk):
        import triton
        from liger_kernel.ops.cross_entropy import MAX_FUSED_SIZE, liger_cross_entropy_kernel
        rows, vocab = hidden.shape[0], weight.shape[0]
        loss = torch.empty(rows, device=hidden.device, dtype=torch.float32)
        correct = torch.empty(rows, device=hidden.device, dtype=torch.float32)
        grad_hidden = torch.empty_like(hidden)
        block = min(MAX_FUSED_SIZE, triton.next_power_of_2(vocab))
        for start in range(0, rows, chunk):
            sl = slice(start, min(start + chunk, rows))
            logits = hidden[sl] @ weight.T                      # (chunk, |V|) in the model's dtype
            t = targets[sl].contiguous()
            liger_cross_entropy_kernel[(logits.shape[0],)](
                X_ptr=logits, X_stride=logits.stride(-2), Y_ptr=t, Y_stride=t.stride(-1), weight_ptr=None,
                loss_ptr=loss[sl], z_loss_ptr=None, loss_stride=1, token_accuracy_ptr=correct[sl],
                token_accuracy_stride=1, predicted_tokens_ptr=None, predicted_tokens_stride=0, n_cols=vocab,
                n_non_ignore=1, sum_non_ignore_weight=1, weight_sum=0.0, ignore_index=-100,
                lse_square_scale=0.0, label_smoothing=0.0, reduction="none", softcap=None,
                RETURN_Z_LOSS=False, RETURN_TOKEN_ACCURACY=True, RETURN_PREDICTED_TOKENS=False,
                BLOCK_SIZE=block, HAS_WEIGHT=False, HAS_SOFTCAPPING=False, HAS_GRADIENTS=True, num_warps=32)
            grad_hidden[sl] = logits @ weight                   # logits now hold softmax - onehot
        ctx.save_for_backward(grad_hidden)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, _grad_correct):
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad_loss[:, None].to(grad_hidden.dtype), None, None, None


def _rows(fn, hidden, weight, targets, chunk):
    """Apply a row-wise loss Function to (..., d) hidden states and (...) targets, giving (...) results."""
    shape = targets.shape
    loss, correct = fn.apply(hidden.reshape(-1, hidden.shape[-1]), weight, targets.reshape(-1), chunk)
    return loss.view(shape), correct.view(shape)


def liger_linear_cross_entropy(hidden, weight, targets, chunk: int = 4096):
    """hidden (..., d), targets (...) -> loss (...) nats, correct (...), through Liger's kernel (CUDA)."""
    return _rows(LigerLinearCrossEntropy, hidden, weight, targets, chunk)


def linear_cross_entropy(hidden, weight, targets, chunk: int = 4096):
    """hidden (..., d), targets (...) -> loss (...) nats, correct (...)."""
    return _rows(LinearCrossEntropy, hidden, weight, targets, chunk)


def chunked_loss(head, fused: bool = True, cuda: bool = True):
    """The kernel that computes step.token_losses without the full logits: Liger's on a head that
    `kernels.apply_kernels` patched (CUDA only), else `linear_cross_entropy`; None (full logits) when not
    `fused` or the head has a bias."""
    if not fused or getattr(head, "bias", None) is not None:
        return None
    return liger_linear_cross_entropy if getattr(head, "_cramlab_liger_loss", False) and cuda else linear_cross_entropy


#: Prices in row-tokens (a text's row times the positions fed), the unit of a step's work, so that one rule serves
#: 50 x 9 and 4,096 x 24. On an H100 (experiments/rebuild_cost.py, docs/performance.md) a step of 50 texts took
#: 5.75 ms at 9 tokens and 14.95 ms at 97, about 2.1 us a row-token on top of some 4.8 ms: a fixed cost of ~2,300
#: row-tokens, priced at 2,000 (larger steps cost more a row-token: 118.3 ms at 300 x 129). Building and capturing a
#: step took 0.54-0.87 s at 50 rows, 260,000-410,000 row-tokens, priced at 400,000; CAPTURE_STEPS more steps of the
#: new size stand for the capture's runs of the step, which make it dearer at large shapes (1.05-1.2 s at 1,024 x 24
#: and 300 x 129). At small shapes that counts them twice: the rule errs towards fewer rebuilds.
STEP_FLOOR_ROW_TOKENS = 2_000
CAPTURE_ROW_TOKENS = 400_000
CAPTURE_STEPS = 4          # a capture runs the step three times to warm up and once more to record it


def rebuild_row_tokens(live: int, width: int) -> int:
    """What rebuilding a step for `live` rows of `width` positions costs, in row-tokens: a build and capture plus
    CAPTURE_STEPS steps of the new size."""
    return CAPTURE_ROW_TOKENS + CAPTURE_STEPS * (STEP_FLOOR_ROW_TOKENS + live * width)


def worth_rebuilding(rows: int, live: int, width: int, steps_run: int, steps_cap: int) -> bool:
    """Whether a step of `rows` rows of `width` positions, `live` of them still training after `steps_run` steps (at
    most `steps_cap` more allowed), should be rebuilt for its live texts only.

    A dead row costs what a live one does (docs/performance.md: 101 ms a step at 256 rows with 179 to 129 live).
    Rebuild when the work saved over the steps the batch is likely to have left pays for a capture:
    `steps_left x (rows - live) x width >= rebuild_row_tokens(live, width)`, guessing that a batch which has run t
    steps runs about t more (its live texts are the slow ones). Deterministic, so the same command gives the same
    batch shapes and the same bf16 rounding. Why both ways: a rule that rebuilt whenever the live texts fitted a
    smaller power of two or the rows saved were worth 64 steps, whatever the shape, rebuilt 50 x 9 batches (steps
    nearly all fixed cost) again and again and took the 2025 natural grid's 8-token job from 18.7 to 32.3 s on an
    H100; with power-of-two sizes only, the random job's 300 texts ran in 512 rows, then in 256 rows with as few as
    129 of them live."""
    if live >= rows or live == 0:
        return False
    steps_left = min(steps_run, steps_cap)
    saved = steps_left * (rows - live) * width
    return saved >= rebuild_row_tokens(live, width)


class FastStep(GraphedStep):
    """Holds every tensor a step touches (static addresses) and runs or replays the step."""

    def __init__(self, lm, g: TextGroup, opt: OptimizerState, s: CramSettings, fused_loss: bool = True):
        self.s, self.g = s, g
        self.base = base(lm)
        self.head = lm.get_output_embeddings()
        self.chunked = chunked_loss(self.head, fused_loss, g.text_emb.is_cuda)
        self.mem = torch.nn.Parameter(g.start.clone())
        self.opt = opt
        self.state = TextState(g.start)
        self.active = torch.ones(g.start.shape[0], dtype=torch.bool, device=g.start.device)
        self.step_t = torch.zeros((), dtype=torch.long, device=g.start.device)
        self.graph = None

    @classmethod
    def from_group(cls, lm, g: TextGroup, s: CramSettings, fused_loss: bool = True) -> "FastStep":
        """A step over every text of a prepared group, from its start vectors with a fresh AdamW."""
        return cls(lm, g, OptimizerState.zeros(g.start), s, fused_loss=fused_loss)

    def token_losses(self):
        """The forward at the current vectors (step.py's): per-token loss (nats) and argmax check, (b, n) each."""
        return self.g.losses(self.base, self.head, self.mem, chunked=self.chunked)

    def _step(self):
        loss, acc = self.g.means(*self.token_losses())      # over each text's own scored positions (step.py)
        live = self.state.update(None, self.mem, loss.detach(), acc, self.step_t, self.active,
                                 freeze_at(self.s))
        torch.where(live, loss, torch.zeros_like(loss)).sum().backward()
        with torch.no_grad():
            adamw_update(self.mem, self.mem.grad, self.opt, self.s, live)
            self.mem.grad.zero_()
            self.step_t.add_(1)

    def _tensors(self):
        return ([self.mem.data, self.step_t, self.opt.exp_avg, self.opt.exp_avg_sq, self.opt.steps]
                + [getattr(self.state, name) for name in TextState.TENSORS])

    def take_rows(self, positions: list[int]) -> dict:
        """The state of the given rows, to rebuild a smaller step."""
        idx = torch.tensor(positions, device=self.mem.device)
        out = {name: getattr(self.state, name)[idx].clone() for name in TextState.TENSORS}
        out["mem"] = self.mem.detach()[idx].clone()
        out["step_t"] = self.step_t.clone()
        out["opt"] = self.opt.rows(idx)
        return out

    def put_rows(self, st: dict):
        n = st["mem"].shape[0]
        with torch.no_grad():
            self.mem[:n] = st["mem"]
            for name in TextState.TENSORS:
                getattr(self.state, name)[:n] = st[name]
            self.active[n:] = False
            self.step_t.copy_(st["step_t"])
            for name in ("exp_avg", "exp_avg_sq", "steps"):
                getattr(self.opt, name)[:n] = getattr(st["opt"], name)


def fast_loop(lm, g: TextGroup, s: CramSettings, opt: OptimizerState | None, callback, indices, bar,
              use_graph: bool | None = None, fused_loss: bool = True, keep_retired: bool | None = None
              ) -> LoopOutcome:
    """The loop for one group of texts (one length, or right-padded: `cram(mixed_lengths=True)`), graph-captured
    on a GPU. Under autocast with float32 weights (the 2025 preset on a GPU) the step reads low-precision copies
    of the linear weights, cast once (kernels.precast), instead of casting them at every matmul of every step.

    `keep_retired` (default: as `use_graph`) keeps a finished text's row, masked, until `worth_rebuilding` says a
    rebuild pays (the arrangement a captured step needs); without it (eager CPU steps, no capture to pay for)
    the step is rebuilt for the live texts at every check that retires one. `keep_retired=True` on a CPU checks the
    masked rows and the compaction against the plain loop."""
    with precast_linears(base(lm), autocast_dtype(g.text_emb.device)):
        return _fast_loop(lm, g, s, opt, callback, indices, bar, use_graph, fused_loss, keep_retired)


def _fast_loop(lm, g, s, opt, callback, indices, bar, use_graph, fused_loss, keep_retired) -> LoopOutcome:
    device = g.text_emb.device
    use_graph = (device.type == "cuda") if use_graph is None else use_graph
    keep_retired = use_graph if keep_retired is None else keep_retired
    n = g.text_emb.shape[0]
    opt = opt if opt is not None else OptimizerState.zeros(g.start)
    reasons: dict[int, str] = {}
    final: dict[int, dict] = {}
    history: list[list[list[float]]] = [[] for _ in range(n)]

    def build(texts, state):
        """A step for group rows `texts` (exactly), loaded with `state` if given, captured on a GPU."""
        idx = torch.tensor(texts, device=device)
        obj = FastStep(lm, g.take(idx), opt.rows(idx), s, fused_loss=fused_loss)
        if state is not None:
            obj.put_rows(state)
        if use_graph:
            obj.capture()
        return obj

    order = list(range(n))           # group row held at each step row
    width = g.text_emb.shape[1] + s.n_prefix                    # positions a row feeds (the rebuild rule's unit)
    step_obj = build(order, None)
    slot = {r: i for i, r in enumerate(order)}
    step, interrupted = 0, False
    t0 = time.perf_counter()
    try:
        while order and step < s.max_steps:
            n_run = min(s.check_every, s.max_steps - step)
            step_obj.run(n_run)
            step += n_run
            now = step_obj.state.host()
            decided = check(now, order, slot, step, s, history)
            still = [r for r in order if decided[r] is None]
            for r in order:
                if decided[r] is not None:
                    reasons[r] = decided[r]
                    final[r] = _snapshot(step_obj, slot[r])
                    step_obj.active[slot[r]] = False
            report_check(callback, now, order, slot, step, decided, indices)
            if bar is not None:
                bar.update(step - bar.n)
                bar.set_postfix(done=f"{n - len(still)}/{n}")
            shrink = (worth_rebuilding(step_obj.mem.shape[0], len(still), width, step, s.max_steps - step)
                      if keep_retired else len(still) < len(order))
            order = still
            if order and shrink:
                step_obj = build(order, step_obj.take_rows([slot[r] for r in order]))
                slot = {r: i for i, r in enumerate(order)}
    except KeyboardInterrupt:
        interrupted = True
    for r in order:
        if r in reasons:      # retired at the check where Ctrl-C came: it keeps its own reason
            continue
        reasons[r] = "interrupted" if interrupted else "max_steps"
        final[r] = _snapshot(step_obj, slot[r])
    seconds = time.perf_counter() - t0
    rows = range(n)
    return LoopOutcome(
        best_mem=torch.stack([final[r]["best_mem"] for r in rows]).to(device),
        steps=[final[r]["steps_done"] for r in rows],
        failed_step=[final[r]["failed_at"] if final[r]["failed_at"] >= 0 else None for r in rows],
        stop_reasons=[reasons[r] for r in rows], histories=history,
        train_accuracy=[final[r]["best_acc"] for r in rows],
        min_loss_per_token_nats=[final[r]["min_loss"] for r in rows],
        optimizer=OptimizerState(*(torch.stack([final[r]["opt"][k] for r in rows])
                                   for k in ("exp_avg", "exp_avg_sq", "steps"))),
        seconds=seconds, interrupted=interrupted)


def _snapshot(step_obj, i):
    st = step_obj.state
    return dict(best_mem=st.best_mem[i].detach().float().clone(), steps_done=int(st.steps_done[i]),
                failed_at=int(st.failed_at[i]), best_acc=float(st.best_acc[i]), min_loss=float(st.min_loss[i]),
                opt={k: getattr(step_obj.opt, k)[i].clone() for k in ("exp_avg", "exp_avg_sq", "steps")})
