"""The fast engine: the same optimisation as `cram.py`, arranged for GPUs.

Read `cram.py` first: this file changes *how* the step runs, not *what* it computes.
- Static shapes. The batch is padded to a bucket size (64, 32, 16, ...); finished texts stay in their row
  with a zero mask (no loss, no gradient, their best vectors frozen) until the batch fits a smaller
  bucket, then the state is compacted and the step rebuilt.
- The whole step — forward, loss, best-so-far bookkeeping, backward, AdamW (capturable) — is captured
  once in a CUDA graph and replayed: one launch per step instead of thousands.
- The loss never materialises the (texts × tokens × vocabulary) logits: `linear_cross_entropy` runs
  the LM head and the softmax in row chunks and recomputes them in the backward pass.
On CPU the same step runs eagerly (no graph); a test keeps it equal to the plain loop.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .cram import CramProgress, head_logits

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


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


def linear_cross_entropy(hidden, weight, targets, chunk: int = 4096):
    """hidden (..., d), targets (...) -> loss (...) nats, correct (...)."""
    shape = targets.shape
    loss, correct = LinearCrossEntropy.apply(hidden.reshape(-1, hidden.shape[-1]), weight,
                                             targets.reshape(-1), chunk)
    return loss.view(shape), correct.view(shape)


def bucket_size(n: int) -> int:
    return next(b for b in BUCKETS if b >= n) if n <= BUCKETS[-1] else n


class FastStep:
    """Holds every tensor a step touches (static addresses) and runs or replays the step."""

    def __init__(self, lm, text_emb, sink_emb, targets, start_vectors, s, first_pos, capturable, fused_loss):
        self.s, self.first_pos = s, first_pos
        self.base = lm.base_model
        self.head = lm.get_output_embeddings()
        self.fused_loss = fused_loss and getattr(self.head, "bias", None) is None
        dev = text_emb.device
        b = text_emb.shape[0]
        self.text_emb, self.sink_emb, self.targets = text_emb, sink_emb, targets
        self.n_scored = targets.shape[1]
        self.mem = torch.nn.Parameter(start_vectors.clone())
        self.opt = torch.optim.AdamW([self.mem], lr=s["lr"], betas=tuple(s["betas"]),
                                     weight_decay=s["weight_decay"], capturable=capturable)
        st = self.opt.state[self.mem]          # AdamW's state made up front (as a fresh AdamW would start it)
        st["step"] = torch.zeros((), dtype=torch.float32, device=dev if capturable else "cpu")
        st["exp_avg"] = torch.zeros_like(self.mem)
        st["exp_avg_sq"] = torch.zeros_like(self.mem)
        self.active = torch.ones(b, device=dev)
        self.best_acc = torch.full((b,), -1.0, device=dev)
        self.best_loss = torch.full((b,), math.inf, device=dev)
        self.best_mem = self.mem.detach().clone()
        self.last_better = torch.zeros(b, dtype=torch.long, device=dev)
        self.steps_done = torch.zeros(b, dtype=torch.long, device=dev)
        self.failed_at = torch.full((b,), -1, dtype=torch.long, device=dev)
        self.step_t = torch.zeros((), dtype=torch.long, device=dev)
        self.loss = torch.zeros(b, device=dev)
        self.acc = torch.zeros(b, device=dev)
        self.graph = None

    def _step(self):
        parts = [self.mem.to(self.text_emb.dtype), self.text_emb]
        if self.sink_emb is not None:
            parts.insert(0, self.sink_emb)
        hidden = self.base(inputs_embeds=torch.cat(parts, 1), use_cache=False).last_hidden_state
        hidden = hidden[:, self.first_pos:self.first_pos + self.n_scored]
        if self.fused_loss:
            loss_tok, correct = linear_cross_entropy(hidden, self.head.weight, self.targets)
        else:
            logits = head_logits(self.head, hidden).float()
            loss_tok = F.cross_entropy(logits.transpose(1, 2), self.targets, reduction="none")
            correct = (logits.argmax(-1) == self.targets).float()
        loss, acc = loss_tok.mean(1), correct.mean(1)
        live = self.active > 0
        finite = torch.isfinite(loss)
        with torch.no_grad():  # best-so-far bookkeeping, before this step moves the vectors
            better = live & finite & (acc > self.best_acc)
            keep = better | (live & finite & (acc == self.best_acc) & (loss < self.best_loss))
            self.best_mem.copy_(torch.where(keep[:, None, None], self.mem.detach(), self.best_mem))
            self.best_acc.copy_(torch.where(keep, acc, self.best_acc))
            self.best_loss.copy_(torch.where(keep, loss.detach(), self.best_loss))
            self.last_better.copy_(torch.where(better, self.step_t, self.last_better))
            self.failed_at.copy_(torch.where(live & ~finite & (self.failed_at < 0), self.step_t, self.failed_at))
            self.steps_done.add_(live.long())
            self.loss.copy_(loss.detach())
            self.acc.copy_(acc)
            self.step_t.add_(1)
        torch.where(live & finite, loss, torch.zeros_like(loss)).sum().backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=False)

    def _state(self):
        return [self.mem.data, self.best_acc, self.best_loss, self.best_mem, self.last_better, self.steps_done,
                self.failed_at, self.step_t, self.loss, self.acc] + list(self.opt.state[self.mem].values())

    def capture(self):
        """Warm up on a side stream (allocates gradients and workspaces), put the state back, capture a step."""
        saved = [t.clone() for t in self._state()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        for t, v in zip(self._state(), saved):
            t.copy_(v)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()
        for t, v in zip(self._state(), saved):   # capture ran the step once more: undo it
            t.copy_(v)
        self.mem.grad.zero_()

    def run(self, n_steps: int):
        for _ in range(n_steps):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()

    def take_rows(self, positions: list[int]) -> dict:
        """The state of the given rows, to rebuild a smaller step."""
        idx = torch.tensor(positions, device=self.mem.device)
        out = {name: getattr(self, name)[idx].clone() for name in
               ("best_acc", "best_loss", "best_mem", "last_better", "steps_done", "failed_at", "active")}
        out["mem"] = self.mem.detach()[idx].clone()
        out["step_t"] = self.step_t.clone()
        out["opt"] = {k: (v[idx].clone() if v.dim() > 0 else v.clone()) for k, v in self.opt.state[self.mem].items()}
        return out

    def put_rows(self, st: dict):
        n = st["mem"].shape[0]
        with torch.no_grad():
            self.mem[:n] = st["mem"]
            for name in ("best_acc", "best_loss", "best_mem", "last_better", "steps_done", "failed_at", "active"):
                getattr(self, name)[:n] = st[name]
            self.active[n:] = 0
            self.step_t.copy_(st["step_t"])
            for k, v in st["opt"].items():
                mine = self.opt.state[self.mem][k]
                if v.dim() > 0:
                    mine[:n] = v
                else:
                    mine.copy_(v.to(mine.device))


def cram_group_fast(lm, s, start, text_emb, sink_emb, targets, first_pos, callback, indices, bar,
                    use_graph: bool | None = None, fused_loss: bool = True):
    """The loop for one group of equal-length texts. Returns (best vectors, steps, failed step, stop
    reasons, histories, seconds, stop_reason) in group order, as `cram._cram_group` expects."""
    device = text_emb.device
    use_graph = (device.type == "cuda") if use_graph is None else use_graph
    n = text_emb.shape[0]
    patience = s["patience"] or s["max_steps"]
    reasons: dict[int, str] = {}
    final: dict[int, dict] = {}
    history: list[list[list[float]]] = [[] for _ in range(n)]

    def build(texts, state):
        """A step for group rows `texts`, padded to a bucket on GPU, loaded with `state` if given."""
        size = bucket_size(len(texts)) if use_graph else len(texts)
        idx = torch.tensor(texts + [texts[0]] * (size - len(texts)), device=device)
        sink = sink_emb[:1].expand(size, -1, -1).contiguous() if sink_emb is not None else None
        obj = FastStep(lm, text_emb[idx].contiguous(), sink, targets[idx].contiguous(), start[idx], s,
                       first_pos, capturable=use_graph, fused_loss=fused_loss)
        obj.active[len(texts):] = 0
        if state is not None:
            obj.put_rows(state)
        if use_graph:
            obj.capture()
        return obj

    order = list(range(n))           # group row held at each step row
    step_obj = build(order, None)
    slot = {r: i for i, r in enumerate(order)}
    step, stop_reason = 0, None
    t0 = time.perf_counter()
    try:
        while order and step < s["max_steps"]:
            n_run = min(s["check_every"], s["max_steps"] - step)
            step_obj.run(n_run)
            step += n_run
            best_acc, last_better = step_obj.best_acc.cpu(), step_obj.last_better.cpu()
            failed_at, loss, acc = step_obj.failed_at.cpu(), step_obj.loss.cpu(), step_obj.acc.cpu()
            still = []
            for r in order:
                i = slot[r]
                history[r].append([step, float(loss[i]), float(acc[i])])
                if failed_at[i] >= 0:
                    reasons[r] = "non_finite"
                elif best_acc[i] >= s["target_accuracy"]:
                    reasons[r] = "converged"
                elif step - int(last_better[i]) >= patience:
                    reasons[r] = "patience"
                else:
                    still.append(r)
                    continue
                final[r] = _snapshot(step_obj, i)
                step_obj.active[i] = 0
            if callback is not None:
                callback(CramProgress(step=step, active=[indices[r] for r in still],
                                      loss_per_token_nats=[float(loss[slot[r]]) for r in order],
                                      accuracy=[float(acc[slot[r]]) for r in order],
                                      n_done=n - len(still), n_texts=n))
            if bar is not None:
                bar.update(step - bar.n)
                bar.set_postfix(done=f"{n - len(still)}/{n}")
            shrink = len(still) < len(order) and (not use_graph or bucket_size(len(still)) < step_obj.mem.shape[0])
            order = still
            if order and shrink:
                step_obj = build(order, step_obj.take_rows([slot[r] for r in order]))
                slot = {r: i for i, r in enumerate(order)}
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    for r in order:
        reasons[r] = stop_reason or "max_steps"
        final[r] = _snapshot(step_obj, slot[r])
    seconds = time.perf_counter() - t0
    best_mem = torch.stack([final[r]["best_mem"] for r in range(n)]).to(device)
    return (best_mem, [final[r]["steps_done"] for r in range(n)], [final[r]["failed_at"] for r in range(n)],
            [reasons[r] for r in range(n)], history, seconds, stop_reason)


def _snapshot(step_obj, i):
    return dict(best_mem=step_obj.best_mem[i].detach().float().clone(),
                steps_done=int(step_obj.steps_done[i]), failed_at=int(step_obj.failed_at[i]))
