"""The step, defined once: what the three schedulers (plain: plain.py, fast: fast.py, grow: grow.py) share.

Owns: the sink token of a run (`sink_token_id`), `TextGroup` (one batch of texts, of one length or right-padded
(`mixed`): frozen embeddings, the inputs of each layout, the scored positions of each protocol, start vectors, the
no-vector baseline's inputs, per-text means over each text's own scored positions), the forward + per-token loss and
accuracy (`scored_losses`, `token_losses`), `initial_vectors` (seeded per text), `TextState` (per-text bookkeeping
kept on the device: best-so-far vectors, accuracy and loss, the minimum loss, steps, non-finite steps), `adamw_update`
(AdamW with a learning rate and a step count per text), the retire rule (`stop_codes`: one definition for the host
checks and for grow's in-graph checks; `check` runs it at a check), `LoopOutcome`, `CramProgress`, `ENGINE_SUPPORT`
(which engine honours or refuses which setting: the engine contract) and model helpers. Does not: schedule (which
texts run together, when a graph is captured, when a text grows: the three schedulers), load models, decode or report.
The chunked loss kernels are fast.py's (passed in as `chunked`).

Why AdamW is written here, not taken from torch.optim: every text is its own optimisation problem with its own place
in the learning-rate schedule (progressive cramming carries a text's moments and schedule position from one length to
the next; texts converge at different steps), and a text that reached its target on this step's forward must not move;
torch.optim.AdamW takes one learning rate and step count per parameter. `tests/test_step.py` checks `adamw_update`
against torch.optim.AdamW step by step, bit for bit (torch.equal).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import zlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cramlab.engine.settings import UNIFORM_INIT_HIGH, CramSettings, lr_factor
from cramlab.kernels.sdpa import causal_unpadded, use_causal_sdpa


@dataclass
class CramProgress:
    """What a callback sees every `check_every` steps (plain numbers, already on the CPU)."""
    step: int
    active: list[int]                   # indices (into the input list) of texts still training
    loss_per_token_nats: list[float]    # of the texts trained this check, last step
    accuracy: list[float]
    n_done: int
    n_texts: int


def sink_token_id(s: CramSettings, spec=None) -> int:
    """The token before the vectors (`sink-first`) and before the text in the no-vector baseline (both layouts):
    the settings' own, else the model's (`ModelSpec.sink_token_id`), else 0 for a bare model without a spec."""
    if s.sink_token_id is not None:
        return s.sink_token_id
    return spec.sink_token_id if spec is not None else 0


@dataclass
class TextGroup:
    """Texts ready to train, of one length or right-padded (`prepare_group(mixed=True)`; exact by causality: tokens
    after a text's end never change its scored logits, and `means` leaves them out): what never changes."""
    ids: torch.Tensor            # (B, N) token ids
    text_emb: torch.Tensor       # (B, N, d) frozen input embeddings
    sink_emb: torch.Tensor       # (B, 1, d) the sink token's embedding (in the inputs only under sink-first)
    with_sink: bool              # layout sink-first
    protocol: str
    targets: torch.Tensor        # (B, S) the scored tokens
    first_pos: int               # position whose logits predict targets[:, 0]
    start: torch.Tensor          # (B, k, d) float32 start vectors
    row_scored: torch.Tensor | None = None   # (B,) scored tokens of each row when padded; None: all n_scored

    @property
    def n_scored(self) -> int:
        return self.targets.shape[1]

    def take(self, idx) -> TextGroup:
        """Rows `idx` (a LongTensor, repeats allowed: the fast engine's padding) as a group of their own."""
        return dataclasses.replace(self, ids=self.ids[idx], text_emb=self.text_emb[idx].contiguous(),
                                   sink_emb=self.sink_emb[:1].expand(len(idx), -1, -1).contiguous(),
                                   targets=self.targets[idx].contiguous(), start=self.start[idx],
                                   row_scored=None if self.row_scored is None else self.row_scored[idx])

    def means(self, loss_tok, correct, rows=None):
        """Per-text mean loss (nats per token) and accuracy, (b,) each, of a forward of rows `rows` (None: all)
        over each text's own scored positions. Equal lengths: the plain mean (bit for bit as before)."""
        if self.row_scored is None:
            return loss_tok.mean(1), correct.mean(1)
        n = _get(self.row_scored, rows)[:, None]
        return tuple(torch.where(torch.arange(x.shape[1], device=x.device) < n, x, 0.0).sum(1) / n[:, 0]
                     for x in (loss_tok, correct))

    def inputs(self, mem: torch.Tensor, rows=None) -> torch.Tensor:
        """[sink] [mem] [text] embeddings of the given rows (all rows: None)."""
        text = self.text_emb if rows is None else self.text_emb[rows]
        sink = [self.sink_emb[: text.shape[0]]] if self.with_sink else []
        return torch.cat(sink + [mem.to(text.dtype), text], dim=1)

    def losses(self, body, head, mem, rows=None, chunked=None):
        """The step's forward at vectors `mem`: per-token loss (nats) and 1.0 where the argmax is right, (b, S)."""
        targets = self.targets if rows is None else self.targets[rows]
        return scored_losses(body, head, self.inputs(mem, rows), self.first_pos, targets, chunked)

    def baseline_losses(self, body, head):
        """The same scored tokens without vectors. `pc` needs a position before t_1: the sink token (also under
        `mem-first`, where it is the only way to score t_1); `hc` feeds the layout's own prefix minus the vectors."""
        if self.protocol == "pc" or self.with_sink:
            return scored_losses(body, head, torch.cat([self.sink_emb, self.text_emb], 1),
                                 int(self.protocol == "hc"), self.targets)
        return scored_losses(body, head, self.text_emb, 0, self.targets)


def scored_losses(body, head, inputs, first_pos: int, targets, chunked=None):
    """The forward of every engine: the body over `inputs`, the LM head on the scored positions only."""
    hidden = body(inputs_embeds=inputs, use_cache=False).last_hidden_state
    return token_losses(head, hidden[:, first_pos:first_pos + targets.shape[1]], targets, chunked)


def token_losses(head, hidden, targets, chunked=None):
    """Per-token cross-entropy (nats) and 1.0 where the argmax is the target, (b, n) each, from full float32
    logits; `chunked(hidden, head.weight, targets)` computes the same without the full logits (fast.py)."""
    if chunked is not None:
        return chunked(hidden, head.weight, targets)
    logits = head_logits(head, hidden).float()
    return (F.cross_entropy(logits.transpose(1, 2), targets, reduction="none"),
            (logits.argmax(-1) == targets).float())


def prepare_group(lm, rows: list[list[int]], s: CramSettings, sink_token_id: int, warm=None,
                  mixed: bool = False) -> TextGroup:
    """Embed the texts once, pick the scored positions, draw (or take) the start vectors. `mixed`: rows may
    differ in length; each is right-padded with its own last token (never scored) to the longest."""
    embed = lm.get_input_embeddings()
    device = embed.weight.device
    longest = max(len(r) for r in rows)
    ids = torch.tensor([r + r[-1:] * (longest - len(r)) for r in rows] if mixed else rows, device=device)
    n_texts = ids.shape[0]
    n_sink = int(s.layout == "sink-first")
    # Scored positions: position p predicts the token at p + 1. `pc` starts at the last vector.
    first_pos = n_sink + s.n_mem - 1 if s.protocol == "pc" else n_sink + s.n_mem
    with torch.no_grad():
        text_emb = embed(ids)
        sink_emb = embed(torch.tensor([sink_token_id], device=device)).expand(n_texts, 1, -1)
        std = embed.weight.float().std()
    d = text_emb.shape[-1]
    if warm is not None:
        start = warm.to(device=device, dtype=torch.float32).reshape(n_texts, s.n_mem, d).clone()
    else:
        start = torch.stack([initial_vectors(row, s, d, std) for row in rows]).to(device)
    targets = ids if s.protocol == "pc" else ids[:, 1:]
    row_scored = torch.tensor([len(r) for r in rows], device=device) - int(s.protocol == "hc") if mixed else None
    return TextGroup(ids=ids, text_emb=text_emb, sink_emb=sink_emb, with_sink=bool(n_sink), protocol=s.protocol,
                     targets=targets, first_pos=first_pos, start=start, row_scored=row_scored)


def initial_vectors(row: list[int], s: CramSettings, d: int, std) -> torch.Tensor:
    """A text's start vectors (k, d), seeded by `s.seed` and the text's own ids: the same start alone
    or in any batch. `randn`: randn * std(E) (Kuratov et al.); `uniform`: uniform[0, 0.02) (Tarasov et al.)."""
    key = zlib.crc32(torch.tensor(row, dtype=torch.int64).numpy().tobytes())
    gen = torch.Generator().manual_seed((s.seed * 1_000_003 + key) % (2**63))
    if s.init == "uniform":
        return torch.rand(s.n_mem, d, generator=gen) * UNIFORM_INIT_HIGH
    return torch.randn(s.n_mem, d, generator=gen) * float(std)


@dataclass
class OptimizerState:
    """AdamW's per-text state: moments (B, k, d) and optimiser steps taken (B,), the schedule position."""
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    steps: torch.Tensor

    @classmethod
    def zeros(cls, like: torch.Tensor) -> OptimizerState:
        return cls(torch.zeros_like(like), torch.zeros_like(like),
                   torch.zeros(like.shape[0], dtype=torch.long, device=like.device))

    def rows(self, idx) -> OptimizerState:
        return OptimizerState(self.exp_avg[idx].clone(), self.exp_avg_sq[idx].clone(), self.steps[idx].clone())

    def to(self, device) -> OptimizerState:
        return OptimizerState(self.exp_avg.to(device), self.exp_avg_sq.to(device), self.steps.to(device))


def adamw_update(param: torch.Tensor, grad: torch.Tensor, opt: OptimizerState, s: CramSettings,
                 live: torch.Tensor) -> None:
    """torch.optim.AdamW's update, in place, with each text's own lr and step count; rows not `live` stay.

    param, grad, opt.exp_avg, opt.exp_avg_sq: (b, k, d); opt.steps, live: (b,). Bit for bit torch's
    single-tensor AdamW (the CPU default; a test compares with `torch.equal`): p ← p·(1 − lr·wd),
    m ← lerp(m, g, 1−β1), v ← β2·v + (1−β2)·g·g, p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + ε).
    Why it matters: training amplifies a last-bit difference into a different step count within ~50 steps, so
    "the same figures as torch" needs the same roundings: torch computes the per-step scalars in Python floats
    (float64) and rounds each once to float32 inside its kernels, and so do we (per text, as float64 tensors, so
    that the fast engine can still capture this in a CUDA graph).
    """
    beta1, beta2 = s.betas
    live3 = live[:, None, None]
    steps = opt.steps + live.long()
    t = steps.clamp(min=1).double()
    lr = s.lr * lr_factor(opt.steps.double(), s.lr_schedule, s.warmup_steps, s.schedule_steps, s.lr_floor / s.lr)

    def per_text(x64):   # a float64 per-text scalar, rounded to the param's dtype as torch's kernels do
        return x64.to(param.dtype)[:, None, None]

    decayed = param * per_text(1 - lr * s.weight_decay)                  # param.mul_(1 - lr * wd)
    exp_avg = opt.exp_avg.lerp(grad, 1 - beta1)                           # exp_avg.lerp_(grad, 1 - β1)
    exp_avg_sq = torch.addcmul(opt.exp_avg_sq * beta2, grad, grad, value=1 - beta2)
    denom = exp_avg_sq.sqrt() / per_text((1 - beta2 ** t).sqrt()) + s.eps
    new = decayed + per_text(-lr / (1 - beta1 ** t)) * exp_avg / denom  # addcdiv_(m, denom, value=-step)
    param.copy_(torch.where(live3, new, param))
    opt.exp_avg.copy_(torch.where(live3, exp_avg, opt.exp_avg))
    opt.exp_avg_sq.copy_(torch.where(live3, exp_avg_sq, opt.exp_avg_sq))
    opt.steps.copy_(steps)


class TextState:
    """Per-text running state on the device; `update` runs inside a step (no host sync).

    All tensors have one row per text of the group (the fast engine: per row of its padded batch).
    `rows` selects the texts a step trained (a LongTensor; None: all rows).
    """

    #: A record's start: best_acc, best_loss, min_loss (over every training forward: Table 1), the step of the
    #: last better accuracy, optimiser steps in this call, the step of the first non-finite loss (-1: none).
    FRESH = (("best_acc", -1.0, torch.float32), ("best_loss", math.inf, torch.float32),
             ("min_loss", math.inf, torch.float32), ("last_better", 0, torch.long),
             ("steps_done", 0, torch.long), ("failed_at", -1, torch.long))

    def __init__(self, start: torch.Tensor):
        b, dev = start.shape[0], start.device
        for name, value, dtype in self.FRESH:
            setattr(self, name, torch.full((b,), value, dtype=dtype, device=dev))
        self.best_mem = start.detach().clone()
        self.loss, self.acc = torch.zeros(b, device=dev), torch.zeros(b, device=dev)   # of the last forward

    @torch.no_grad()
    def restart(self, rows: torch.Tensor, start: torch.Tensor) -> None:
        """A fresh record for the rows where the bool mask `rows` is set, from vectors `start` (grow: a text
        that moves on to its next length); the other rows keep theirs."""
        for name, value, _ in self.FRESH:
            getattr(self, name).copy_(torch.where(rows, value, getattr(self, name)))
        self.best_mem.copy_(torch.where(rows[:, None, None], start, self.best_mem))

    TENSORS = ("best_acc", "best_loss", "min_loss", "best_mem", "last_better", "steps_done", "failed_at", "loss", "acc")

    @torch.no_grad()
    def update(self, rows, mem, loss, acc, step, trained, freeze_at: float | None) -> torch.Tensor:
        """Record this forward (before the optimiser moves `mem`); return the rows the optimiser may move.

        `trained`: rows that are really training (the fast engine's padding and retired rows are not).
        `freeze_at`: a text whose forward reached this accuracy is not moved, so its vectors are the ones
        measured (the progressive paper's rule, `CramSettings.freeze_converged`); None: it moves on.
        """
        finite = torch.isfinite(loss) & trained
        best_acc, best_loss = _get(self.best_acc, rows), _get(self.best_loss, rows)
        better = finite & (acc > best_acc)
        keep = better | (finite & (acc == best_acc) & (loss < best_loss))
        _put(self.best_mem, rows, torch.where(keep[:, None, None], mem.detach(), _get(self.best_mem, rows)))
        _put(self.best_acc, rows, torch.where(keep, acc, best_acc))
        _put(self.best_loss, rows, torch.where(keep, loss, best_loss))
        _put(self.min_loss, rows, torch.where(finite, torch.minimum(loss, _get(self.min_loss, rows)),
                                              _get(self.min_loss, rows)))
        _put(self.last_better, rows, torch.where(better, step, _get(self.last_better, rows)))
        failed = _get(self.failed_at, rows)
        _put(self.failed_at, rows, torch.where(trained & ~torch.isfinite(loss) & (failed < 0), step, failed))
        _put(self.loss, rows, loss)
        _put(self.acc, rows, acc)
        live = finite if freeze_at is None else finite & (acc < freeze_at)
        _put(self.steps_done, rows, _get(self.steps_done, rows) + live.long())
        return live

    def host(self) -> dict:
        """One read of what the stop rule needs."""
        return {"best_acc": self.best_acc.cpu(), "last_better": self.last_better.cpu(),
                "failed_at": self.failed_at.cpu(), "loss": self.loss.cpu(), "acc": self.acc.cpu()}


def freeze_at(s: CramSettings) -> float | None:
    """The accuracy at which a text stops moving inside a step (None: it moves until the next check)."""
    return s.target_accuracy if s.freeze_converged else None


#: The retire rule's outcomes, by code (`stop_codes`); 0: the text goes on.
STOP_CODES = (None, "non_finite", "converged", "patience")


def stop_codes(best_acc, last_better, failed_at, step, s: CramSettings):
    """The retire rule, read at a check, for every text at once (tensors; `step` a number or one per text):
    1 non-finite loss, else 2 converged (best accuracy >= target), else 3 patience (`step - last_better >=
    patience`), else 0 (goes on). One definition: the plain and fast checks run it on the host, grow inside
    its captured step."""
    code = torch.zeros_like(failed_at)
    if s.patience is not None:
        code = torch.where(step - last_better >= s.patience, 3, code)
    code = torch.where(best_acc.double() >= s.target_accuracy, 2, code)
    return torch.where(failed_at >= 0, 1, code)


def check(now: dict, order, slot, step: int, s: CramSettings, history) -> dict:
    """A check of the plain and fast loops: record the histories of the texts `order` (group rows, held at state
    rows `slot[r]`) and decide who retires (`stop_codes`). Returns {row: reason or None}."""
    codes = stop_codes(now["best_acc"], now["last_better"], now["failed_at"], step, s)
    out = {}
    for r in order:
        i = slot[r]
        history[r].append([step, float(now["loss"][i]), float(now["acc"][i])])
        out[r] = STOP_CODES[int(codes[i])]
    return out


def report_check(callback, now: dict, order, slot, step: int, decided: dict, indices) -> None:
    """Tell `callback` what a check decided. The loops call it only after they have recorded those decisions:
    a callback may raise KeyboardInterrupt (Ctrl-C), and a text retired at that check keeps its own reason."""
    if callback is None:
        return
    still = [r for r in order if decided[r] is None]
    callback(CramProgress(step=step, active=[indices[r] for r in still],
                          loss_per_token_nats=[float(now["loss"][slot[r]]) for r in order],
                          accuracy=[float(now["acc"][slot[r]]) for r in order],
                          n_done=len(indices) - len(still), n_texts=len(indices)))


@dataclass
class LoopOutcome:
    """What an engine's loop hands back to `cram`, per text of the group (group order)."""
    best_mem: torch.Tensor                 # (B, k, d) float32
    steps: list[int]
    failed_step: list[int | None]
    stop_reasons: list[str]
    histories: list[list[list[float]]]     # per text: [step, loss per token (nats), accuracy] at each check
    train_accuracy: list[float]            # best accuracy seen on the training forwards
    min_loss_per_token_nats: list[float]   # minimum training loss (HC's Table 1 uses it)
    optimizer: OptimizerState | None       # final per-text AdamW state (for progressive carry-over)
    seconds: float
    interrupted: bool = False

    @classmethod
    def untrained(cls, start: torch.Tensor, reason: str = "interrupted") -> LoopOutcome:
        n = start.shape[0]
        return cls(best_mem=start, steps=[0] * n, failed_step=[None] * n, stop_reasons=[reason] * n, optimizer=None,
                   histories=[[] for _ in range(n)], train_accuracy=[float("nan")] * n, seconds=0.0,
                   min_loss_per_token_nats=[float("nan")] * n, interrupted=reason == "interrupted")


#: Public keywords besides the settings: of `cram()`, and of `search.progressive()`.
CRAM_KEYWORDS = ("init_vectors", "init_optimizer", "callback", "progress", "decode", "text_ids", "mixed_lengths")
PROGRESSIVE_KEYWORDS = ("max_tokens", "start", "step_tokens", "keep_trajectory", "callback", "seeds", "progress")
_SEARCH_ONLY = ("start_tokens", "step_tokens", "carry_optimizer", "max_total_steps")


def _contract() -> dict[str, dict[str, str]]:
    """The engine contract (tests/test_conformance.py checks it): per scheduler, every `CramSettings` field and public
    keyword is `honoured` (same results as `plain`), `refused: ...` (a one-line BadInputError naming the engine and the
    setting) or `not read: ...` (with the reason). `plain`: cram(engine="plain") and progressive's per-length loop over
    it; `fast`: cram(engine="fast") (both honour `mixed_lengths`); `grow`: progressive(engine="fast")."""
    fields = [f.name for f in dataclasses.fields(CramSettings)]
    plain = {name: "honoured" for name in fields + list(CRAM_KEYWORDS + PROGRESSIVE_KEYWORDS)}
    plain["threshold"] = "not read: grid_search's Max rule, the same for every engine"
    fast = dict(plain) | {name: "not read: a progressive setting (progressive on this engine runs grow)"
                          for name in _SEARCH_ONLY + PROGRESSIVE_KEYWORDS if name != "callback"}
    grow = dict(plain) | {name: "not read: grow is progressive's engine, cram() never runs it"
                          for name in CRAM_KEYWORDS}
    grow["callback"] = ("refused: texts grow at their own lengths, so there is no per-length list of CramResults "
                        "to call it with (engine auto with a callback runs the per-length loop instead)")
    grow["progress"] = "not read: grow has no per-length loop to show a bar for (the per-length loop shows one)"
    return {"plain": plain, "fast": fast, "grow": grow}


ENGINE_SUPPORT = _contract()


class GraphedStep:
    """A training step held at static tensor addresses, run eagerly or replayed as one CUDA graph.

    Subclasses define `_step()` (one whole step: forward, bookkeeping, backward, update), `_tensors()`
    (every tensor the step changes) and `mem` (the trained parameter)."""
    graph = None
    maskless_attention = True   # False: capture transformers' own attention (a bench row)

    def capture(self):
        """Warm up on a side stream (allocates gradients and workspaces), put the state back, capture a step.
        Attention runs as causal SDPA without a mask while capturing (`kernels.sdpa.use_causal_sdpa`: transformers
        would build an explicit mask under capture and copy keys and values to every head)."""
        maskless = self.maskless_attention and use_causal_sdpa(self.base)
        with causal_unpadded() if maskless else contextlib.nullcontext():
            self._capture()

    def _capture(self):
        saved = [t.clone() for t in self._tensors()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        for t, v in zip(self._tensors(), saved):
            t.copy_(v)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()
        for t, v in zip(self._tensors(), saved):   # capture ran the step once more: undo it
            t.copy_(v)
        self.mem.grad.zero_()

    def run(self, n_steps: int):
        for _ in range(n_steps):
            self.graph.replay() if self.graph is not None else self._step()

    def _step(self):
        raise NotImplementedError

    def _tensors(self) -> list:
        raise NotImplementedError


def head_logits(head, hidden):
    """The LM head (`lm.get_output_embeddings()`) over (b, n, d) hidden states as one (b·n, d) × (d, |V|) matmul.

    A slice `hidden[:, i:j]` of a batch is not contiguous; `nn.Linear` on it falls back to a batched
    matmul over a copy of the head's weight per text (8 × 113 MB per step on a CPU for 8 texts, profiled:
    docs/performance.md). Flattening the few hidden rows first costs a small copy instead.
    """
    b, n, d = hidden.shape
    return head(hidden.reshape(b * n, d)).view(b, n, -1)


def base(lm):
    """The transformer body without the LM head (Llama: .model, GPT-NeoX: .gpt_neox, OPT: .model)."""
    return lm.base_model


def model_dtype(lm) -> str:
    return str(lm.get_input_embeddings().weight.dtype).replace("torch.", "")


def autocast_for(lm, dtype, device):
    """Autocast in `dtype` when it differs from the model's own (the authors' fp32 + bf16 setting)."""
    name = str(dtype).replace("torch.", "")
    if name in ("None", model_dtype(lm)):
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=getattr(torch, name))


def resolve_engine(engine: str, lm) -> str:
    on_cuda = lm.get_input_embeddings().weight.device.type == "cuda"
    return ("fast" if on_cuda else "plain") if engine == "auto" else engine


def _get(t, rows):
    return t if rows is None else t[rows]


def _put(t, rows, value):
    t.copy_(value) if rows is None else t.index_put_((rows,), value)
