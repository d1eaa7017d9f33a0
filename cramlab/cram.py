"""The cramming loop: train input vectors so that a frozen LM reproduces a text (Kuratov et al., 2025).

Read this file top to bottom: `cram()` validates its input, prepares the frozen token embeddings once,
then optimises one set of `n_mem` vectors per text, all texts of a length in one batch. Each text has
its own vectors; AdamW works element-wise, so texts in a batch do not influence one another.

Inputs per text, for the default `sink-first` layout:   [sink] [mem_1 .. mem_k] [t_1 .. t_N]
(`mem-first` drops the sink, as in the paper: in SmolLM2 position 0 is an attention sink whose output
ignores its input, so a vector placed there can barely steer the model — notebook 03 shows it.)

Scoring protocols:
  `pc` (default)  the last vector predicts t_1 too: all N tokens are scored, so greedy decoding from the
                  vectors alone gives back the whole text ("back again" with nothing else given).
  `hc`            the authors' code: t_1 is never scored (it is BOS for their tokenizers), logits at
                  t_1..t_{N-1} predict t_2..t_N; decoding then needs t_1 as a prompt.

The loop never reads a value back from the device inside a step: convergence, patience and progress are
checked every `check_every` steps. A text that reached `target_accuracy`, ran out of patience or got a
non-finite loss leaves the batch at the next check, so finished texts cost nothing.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from . import capacity
from .decode import LAYOUTS, PROTOCOLS, first_mismatch, greedy_from_embeddings, prefix_embeddings, unwrap
from .errors import BadInputError, ContextTooLongError, TextTooShortError


@dataclass
class CramResult:
    """Everything one text's cramming produced (plain data; `to_dict()` is JSON-ready)."""
    text_index: int
    text_id: str
    n_tokens: int
    n_mem: int
    token_ids: list[int]
    steps: int                          # optimisation steps this text took
    converged: bool                     # best teacher-forced accuracy reached target_accuracy
    teacher_forced_accuracy: float      # best accuracy (of the returned vectors)
    baseline_accuracy: float            # the same text without vectors
    baseline_ce_nats: float             # total cross-entropy over scored tokens, no vectors
    final_ce_nats: float                # total cross-entropy with the returned vectors
    baseline_ce_per_token_nats: float
    final_ce_per_token_nats: float
    n_scored: int                       # N for `pc`, N-1 for `hc`
    info_gain_nats: float
    info_gain_bits: float
    gain_tokens: float                  # (best_acc - baseline_acc) * n_scored
    greedy_exact: bool | None = None    # greedy decoding from the vectors reproduced the text
    first_mismatch: int | None = None   # first wrong token of the greedy decode (None: exact)
    decoded_text: str | None = None
    seconds: float = 0.0
    stop_reason: str = ""               # converged | patience | max_steps | non_finite | interrupted
    failed_step: int | None = None      # step of the first non-finite loss
    history: list[list[float]] = field(default_factory=list)  # [step, loss_per_token_nats, accuracy]
    settings: dict = field(default_factory=dict)
    vectors: Any = None                 # torch.Tensor (n_mem, d), float32, CPU

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    @property
    def failed(self) -> bool:
        return self.stop_reason == "non_finite"

    def to_dict(self, include_vectors: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "vectors"}
        if include_vectors and self.vectors is not None:
            out["vectors"] = self.vectors.tolist()
        return out


@dataclass
class CramProgress:
    """What a callback sees every `check_every` steps (plain numbers, already on the CPU)."""
    step: int
    active: list[int]                   # indices (into the input list) of texts still training
    loss_per_token_nats: list[float]    # of the active texts, this step
    accuracy: list[float]
    n_done: int
    n_texts: int


def cram(model, texts, *, n_mem: int = 1, max_steps: int = 2000, lr: float = 1e-2,
         betas: tuple[float, float] = (0.9, 0.9), weight_decay: float = 0.01, patience: int | None = None,
         target_accuracy: float = 1.0, protocol: str = "pc", layout: str = "sink-first",
         init: str = "randn", init_vectors=None, dtype=None, seed: int = 0, check_every: int = 10,
         callback: Callable[[CramProgress], Any] | None = None, progress: bool = True, decode: bool = True,
         sink_token_id: int | None = None, text_ids: Sequence[str] | None = None,
         engine: str = "auto") -> list[CramResult]:
    """Cram each text into its own `n_mem` vectors; return one `CramResult` per text, in input order.

    `model` is a `LoadedModel` (from `load_model`) or a bare transformers causal LM.
    `texts` is a list of `Text`, of token-id lists, a (B, N) tensor, or a single token-id list.
    `init="randn"` draws the paper's `randn * std(embedding matrix)`, seeded by `seed` and the text
    itself (so a text gets the same start alone or in a batch); `init_vectors` warm-starts instead.
    `dtype` runs the model under autocast in that dtype (the authors' fp32 + bf16 setting); by default
    the model runs in the dtype it was loaded in. `patience`: steps without a better accuracy before a
    text gives up (default: max_steps, i.e. never). `engine`: "plain" (the loop below), "fast" (the same
    optimisation with static shapes, a CUDA graph and a chunked loss: cramlab/fast.py) or "auto" (fast
    on a GPU, plain elsewhere).
    """
    lm, tokenizer, spec = unwrap(model)
    if sink_token_id is None:
        sink_token_id = spec.sink_token_id if spec is not None else 0
    rows, ids_of = _as_token_rows(texts, text_ids)
    _validate(n_mem=n_mem, max_steps=max_steps, lr=lr, patience=patience, target_accuracy=target_accuracy,
              protocol=protocol, layout=layout, init=init, check_every=check_every, betas=betas,
              weight_decay=weight_decay)
    if dtype is not None and str(dtype).replace("torch.", "") not in ("float32", "bfloat16", "float16"):
        raise BadInputError(f"dtype must be float32, bfloat16 or float16 (or None: the model's own), got {dtype!r}")
    context = getattr(spec, "context_length", None) or getattr(lm.config, "max_position_embeddings", None)
    settings = dict(n_mem=n_mem, max_steps=max_steps, lr=lr, betas=list(betas), weight_decay=weight_decay,
                    patience=patience, target_accuracy=target_accuracy, protocol=protocol, layout=layout,
                    init=init if init_vectors is None else "warm", dtype=str(dtype or _model_dtype(lm)),
                    seed=seed, check_every=check_every, sink_token_id=sink_token_id if layout == "sink-first" else None,
                    model=getattr(spec, "name", type(lm).__name__), fingerprint=getattr(spec, "fingerprint", ""),
                    engine=_resolve_engine(engine, lm))
    results: list[CramResult | None] = [None] * len(rows)
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row), []).append(i)
    n_prefix = n_mem + (layout == "sink-first")
    longest = max(groups)
    if context and longest + n_prefix > context:   # checked before any group runs: nothing is lost
        raise ContextTooLongError(f"n_tokens + n_mem = {longest + n_prefix} exceeds the model's context of "
                                  f"{context} tokens; use --n-tokens {context - n_prefix} or less")
    _check_init_vectors(init_vectors, len(rows), n_mem, lm.get_input_embeddings().embedding_dim)
    interrupted = False
    for members in groups.values():
        warm = _select_init(init_vectors, members, len(rows))
        group_results = _cram_group(lm, tokenizer, [rows[i] for i in members], [ids_of[i] for i in members],
                                    members, len(rows), settings, warm, callback, progress, decode,
                                    skip=interrupted)
        interrupted = interrupted or any(r.interrupted for r in group_results)
        for i, res in zip(members, group_results):
            results[i] = res
    return results  # type: ignore[return-value]


def _cram_group(lm, tokenizer, rows, text_ids, indices, n_total, s, warm, callback, progress, decode,
                skip=False):
    """Cram texts of one length together. Returns results in the order of `rows`.
    `skip`: an earlier group was interrupted; return these texts untrained, marked interrupted."""
    device = lm.get_input_embeddings().weight.device
    n_mem, layout, protocol = s["n_mem"], s["layout"], s["protocol"]
    ids = torch.tensor(rows, dtype=torch.long, device=device)                  # (B, N)
    n_texts, n_tokens = ids.shape
    n_sink = 1 if layout == "sink-first" else 0
    n_prefix = n_sink + n_mem
    # Scored positions: position p predicts the token at p+1. `pc` starts at the last vector.
    first_pos = n_prefix - 1 if protocol == "pc" else n_prefix
    targets = ids if protocol == "pc" else ids[:, 1:]                           # (B, S)
    n_scored = targets.shape[1]
    autocast = _autocast(lm, s["dtype"], device)

    embed = lm.get_input_embeddings()
    with torch.no_grad():
        text_emb = embed(ids)                                                    # frozen, computed once
        sink_emb = embed(torch.tensor([s["sink_token_id"] or 0], device=device)).expand(n_texts, 1, -1)
        baseline_loss, baseline_acc = _baseline(lm, embed, ids, sink_emb, s, autocast)
        std = embed.weight.float().std()

    d = text_emb.shape[-1]
    if warm is not None:
        start = warm.to(device=device, dtype=torch.float32).reshape(n_texts, n_mem, d).clone()
    else:
        start = torch.stack([_seeded_randn(row, s["seed"], n_mem, d) for row in rows]).to(device) * std

    bar = _progress_bar(progress and not skip, s["max_steps"], n_texts)
    if skip:
        loop = (start, [0] * n_texts, [-1] * n_texts, ["interrupted"] * n_texts, [[] for _ in rows], 0.0,
                "interrupted")
    elif s["engine"] == "fast":
        from .fast import cram_group_fast
        with autocast:
            loop = cram_group_fast(lm, s, start, text_emb, sink_emb if n_sink else None, targets, first_pos,
                                   callback, indices, bar)
    else:
        loop = _plain_loop(lm, s, start, text_emb, sink_emb, targets, first_pos, n_sink, autocast, callback,
                           indices, bar)
    best_mem, steps_done, failed, reasons, history, seconds, stop_reason = loop
    if bar is not None:
        bar.close()

    # Finish: evaluate the returned (best) vectors once more, then decode them back.
    with torch.no_grad():
        final_loss, final_acc = _evaluate(lm, best_mem, text_emb, sink_emb, targets, first_pos, n_scored,
                                          n_sink, autocast)
    results = []
    for r in range(n_texts):
        fl, fa = float(final_loss[r]), float(final_acc[r])
        bl, ba = float(baseline_loss[r]), float(baseline_acc[r])
        results.append(CramResult(
            text_index=indices[r], text_id=text_ids[r], n_tokens=n_tokens, n_mem=n_mem, token_ids=rows[r],
            steps=steps_done[r], converged=fa >= s["target_accuracy"], teacher_forced_accuracy=fa,
            baseline_accuracy=ba, baseline_ce_nats=bl * n_scored, final_ce_nats=fl * n_scored,
            baseline_ce_per_token_nats=bl, final_ce_per_token_nats=fl, n_scored=n_scored,
            info_gain_nats=capacity.info_gain_nats(bl * n_scored, fl * n_scored),
            info_gain_bits=capacity.info_gain_bits(bl * n_scored, fl * n_scored),
            gain_tokens=capacity.gain_tokens(fa, ba, n_scored), seconds=seconds, stop_reason=reasons[r],
            failed_step=failed[r] if failed[r] >= 0 else None, history=history[r], settings=dict(s),
            vectors=best_mem[r].detach().float().cpu().clone()))
    if decode and stop_reason != "interrupted":
        _decode_into(lm, tokenizer, results, best_mem, ids, s)
    return results


def _plain_loop(lm, s, start, text_emb, sink_emb, targets, first_pos, n_sink, autocast, callback, indices, bar):
    """The optimisation itself. Returns (best vectors, steps per text, failed step per text (-1: none),
    stop reason per text, histories, seconds, stop_reason of the whole loop)."""
    device = text_emb.device
    n_texts, n_scored = targets.shape
    mem = torch.nn.Parameter(start)                                              # (B, k, d), fp32
    opt = torch.optim.AdamW([mem], lr=s["lr"], betas=tuple(s["betas"]), weight_decay=s["weight_decay"])

    # Per-text running state, kept on the device (no host sync inside a step).
    best_acc = torch.full((n_texts,), -1.0, device=device)
    best_loss = torch.full((n_texts,), math.inf, device=device)
    best_mem = mem.detach().clone()
    last_better = torch.zeros(n_texts, dtype=torch.long, device=device)        # step of last better accuracy
    steps_done = torch.zeros(n_texts, dtype=torch.long, device=device)
    failed_at = torch.full((n_texts,), -1, dtype=torch.long, device=device)
    active = list(range(n_texts))                                                # rows of the group still training
    reasons: list[str | None] = [None] * n_texts
    history: list[list[list[float]]] = [[] for _ in range(n_texts)]
    pending: list[tuple[int, torch.Tensor, torch.Tensor]] = []                  # (step, loss, acc) not yet on CPU
    patience = s["patience"] or s["max_steps"]
    history_every = max(1, s["max_steps"] // 500)
    t0 = time.perf_counter()
    step, stop_reason = 0, None
    try:
        while active and step < s["max_steps"]:
            rows_t = torch.tensor(active, device=device)
            inputs = [mem.to(text_emb.dtype), text_emb[rows_t]]
            if n_sink:
                inputs.insert(0, sink_emb[: len(active)])
            with autocast:
                hidden = _base(lm)(inputs_embeds=torch.cat(inputs, dim=1), use_cache=False).last_hidden_state
                logits = head_logits(lm.get_output_embeddings(), hidden[:, first_pos:first_pos + n_scored]).float()
            tgt = targets[rows_t]
            loss_tok = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")   # (b, S)
            loss = loss_tok.mean(dim=1)                                          # per text, nats/token
            acc = (logits.argmax(-1) == tgt).float().mean(dim=1)
            finite = torch.isfinite(loss)
            with torch.no_grad():  # remember the best vectors *before* this step changes them
                better = finite & (acc > best_acc[rows_t])
                keep = better | (finite & (acc == best_acc[rows_t]) & (loss < best_loss[rows_t]))
                best_mem[rows_t] = torch.where(keep[:, None, None], mem.detach(), best_mem[rows_t])
                best_acc[rows_t] = torch.where(keep, acc, best_acc[rows_t])
                best_loss[rows_t] = torch.where(keep, loss.detach(), best_loss[rows_t])
                last_better[rows_t] = torch.where(better, step, last_better[rows_t])
                failed_at[rows_t] = torch.where(~finite & (failed_at[rows_t] < 0), step, failed_at[rows_t])
                steps_done[rows_t] += 1
            # Sum of per-text means: each text's gradient is what it would be alone.
            torch.where(finite, loss, torch.zeros_like(loss)).sum().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % history_every == 0:
                pending.append((step, loss.detach(), acc.detach()))
            if step % s["check_every"] == 0 or step == s["max_steps"]:
                active = _check(active, step, s, patience, best_acc, last_better, failed_at, pending, history,
                                reasons, mem, opt, callback, indices, loss, acc)
                mem = opt.param_groups[0]["params"][0]
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(done=f"{n_texts - len(active)}/{n_texts}")
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    _flush(pending, active, history)
    reasons = [r or stop_reason or "max_steps" for r in reasons]
    return (best_mem, steps_done.cpu().tolist(), failed_at.cpu().tolist(), reasons, history,
            time.perf_counter() - t0, stop_reason)


def _check(active, step, s, patience, best_acc, last_better, failed_at, pending, history, results, mem, opt,
           callback, indices, loss, acc):
    """Every `check_every` steps: read the state once, retire finished texts, shrink the batch."""
    _flush(pending, active, history)
    acc_now, last_now, failed_now = best_acc.cpu(), last_better.cpu(), failed_at.cpu()
    keep = []
    for pos, r in enumerate(active):
        if failed_now[r] >= 0:
            results[r] = "non_finite"
        elif acc_now[r] >= s["target_accuracy"]:
            results[r] = "converged"
        elif step - int(last_now[r]) >= patience:
            results[r] = "patience"
        else:
            keep.append(pos)
    if callback is not None:
        callback(CramProgress(step=step, active=[indices[active[p]] for p in keep],
                              loss_per_token_nats=loss.detach().cpu().tolist(),
                              accuracy=acc.detach().cpu().tolist(),
                              n_done=len(active) - len(keep), n_texts=len(indices)))
    if len(keep) < len(active):
        _shrink(opt, mem, keep)
    return [active[p] for p in keep]


def _shrink(opt, mem, keep):
    """Drop finished texts from the parameter and from AdamW's state (rows are independent)."""
    idx = torch.tensor(keep, dtype=torch.long, device=mem.device)
    new = torch.nn.Parameter(mem.detach()[idx].clone())
    state = opt.state.pop(mem, {})
    opt.param_groups[0]["params"] = [new]
    opt.state[new] = {k: (v[idx].clone() if torch.is_tensor(v) and v.dim() > 0 else v) for k, v in state.items()}


def _flush(pending, active, history):
    """Move buffered per-step loss/accuracy to the CPU histories (one sync for many steps)."""
    for step, loss, acc in pending:
        for pos, (l_val, a_val) in enumerate(zip(loss.cpu().tolist(), acc.cpu().tolist())):
            if pos < len(active):
                history[active[pos]].append([step, l_val, a_val])
    pending.clear()


def head_logits(head, hidden):
    """The LM head (`lm.get_output_embeddings()`) over (b, n, d) hidden states as one (b·n, d) × (d, |V|) matmul.

    A slice `hidden[:, i:j]` of a batch is not contiguous; `nn.Linear` on it falls back to a batched
    matmul over a copy of the head's weight per text (8 × 113 MB per step on a CPU for 8 texts, profiled:
    docs/performance.md). Flattening the few hidden rows first costs a small copy instead.
    """
    b, n, d = hidden.shape
    return head(hidden.reshape(b * n, d)).view(b, n, -1)


def _evaluate(lm, vectors, text_emb, sink_emb, targets, first_pos, n_scored, n_sink, autocast):
    inputs = [vectors.to(text_emb.dtype), text_emb]
    if n_sink:
        inputs.insert(0, sink_emb)
    with autocast:
        hidden = _base(lm)(inputs_embeds=torch.cat(inputs, dim=1)).last_hidden_state
        logits = head_logits(lm.get_output_embeddings(), hidden[:, first_pos:first_pos + n_scored]).float()
    loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(1)
    return loss.cpu(), (logits.argmax(-1) == targets).float().mean(1).cpu()


def _baseline(lm, embed, ids, sink_emb, s, autocast):
    """Loss and accuracy without vectors, same scored tokens. `pc` needs a position before t_1:
    the sink token (also in the `mem-first` layout, where it is the only way to score t_1)."""
    text_emb = embed(ids)
    if s["protocol"] == "pc":
        inputs, first_pos, targets = torch.cat([sink_emb, text_emb], 1), 0, ids
    else:
        with_sink = s["layout"] == "sink-first"
        inputs = torch.cat([sink_emb, text_emb], 1) if with_sink else text_emb
        first_pos, targets = int(with_sink), ids[:, 1:]
    with autocast:
        hidden = _base(lm)(inputs_embeds=inputs).last_hidden_state
        logits = head_logits(lm.get_output_embeddings(), hidden[:, first_pos:first_pos + targets.shape[1]]).float()
    loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").mean(1)
    return loss.cpu(), (logits.argmax(-1) == targets).float().mean(1).cpu()


def _decode_into(lm, tokenizer, results, vectors, ids, s):
    first = ids[:, 0] if s["protocol"] == "hc" else None
    prefix = prefix_embeddings(lm, vectors, layout=s["layout"], sink_token_id=s["sink_token_id"],
                               first_token_ids=first)
    n_new = ids.shape[1] - (1 if first is not None else 0)
    out = greedy_from_embeddings(lm, prefix, n_new).cpu()
    if first is not None:
        out = torch.cat([first.view(-1, 1).cpu(), out], dim=1)
    for res, row in zip(results, out.tolist()):
        res.first_mismatch = first_mismatch(row, res.token_ids)
        res.greedy_exact = res.first_mismatch is None
        res.decoded_text = tokenizer.decode(row) if tokenizer is not None else None


def _resolve_engine(engine, lm):
    if engine not in ("auto", "plain", "fast"):
        raise BadInputError(f"unknown engine {engine!r}; use auto, plain or fast")
    if engine == "auto":
        return "fast" if lm.get_input_embeddings().weight.device.type == "cuda" else "plain"
    return engine


def _base(lm):
    """The transformer body without the LM head (Llama: .model, GPT-NeoX: .gpt_neox, OPT: .model)."""
    return lm.base_model


def _model_dtype(lm):
    return str(lm.get_input_embeddings().weight.dtype).replace("torch.", "")


def _autocast(lm, dtype, device):
    model_dtype = _model_dtype(lm)
    name = str(dtype).replace("torch.", "")
    if name in ("None", model_dtype):
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=getattr(torch, name))


def _seeded_randn(row: list[int], seed: int, n_mem: int, d: int) -> torch.Tensor:
    """randn(k, d) seeded by `seed` and the text's ids: the same start alone or in any batch."""
    key = zlib.crc32(torch.tensor(row, dtype=torch.int64).numpy().tobytes())
    gen = torch.Generator().manual_seed((seed * 1_000_003 + key) % (2**63))
    return torch.randn(n_mem, d, generator=gen)


def _check_init_vectors(init_vectors, n_rows, n_mem, d):
    if init_vectors is None:
        return
    shape = tuple(torch.as_tensor(init_vectors).shape)
    if shape not in ((n_mem, d), (n_rows, n_mem, d)):
        raise BadInputError(f"init_vectors has shape {shape} but this run needs ({n_mem}, {d}) or "
                            f"({n_rows}, {n_mem}, {d}) (n_mem={n_mem}, d={d}); warm-start from vectors of the same "
                            "n_mem and model")


def _select_init(init_vectors, members, n_rows):
    if init_vectors is None:
        return None
    warm = torch.as_tensor(init_vectors, dtype=torch.float32)
    if warm.dim() == 2:                                  # one (k, d) start for every text
        return warm.expand(len(members), *warm.shape)
    if warm.dim() != 3 or warm.shape[0] != n_rows:
        raise BadInputError(f"init_vectors must be (n_mem, d) or (n_texts, n_mem, d), got {tuple(warm.shape)}")
    return warm[members]


def _as_token_rows(texts, text_ids):
    """Normalise the input to a list of token-id lists plus an id per text."""
    if torch.is_tensor(texts):
        texts = texts.tolist() if texts.dim() == 2 else [texts.tolist()]
    if isinstance(texts, (list, tuple)) and texts and isinstance(texts[0], int):
        texts = [list(texts)]
    if not isinstance(texts, (list, tuple)) or not texts:
        raise BadInputError("no texts to cram; pass token ids, Text objects or use cramlab.texts.get_texts")
    rows, ids = [], []
    for i, t in enumerate(texts):
        row = list(getattr(t, "token_ids", t))
        if len(row) < 2:
            raise TextTooShortError(f"text {i} has {len(row)} token(s); cramming needs at least 2")
        rows.append([int(x) for x in row])
        ids.append(text_ids[i] if text_ids else getattr(t, "text_id", f"text-{i}"))
    return rows, ids


def _validate(*, n_mem, max_steps, lr, patience, target_accuracy, protocol, layout, init, check_every, betas,
              weight_decay):
    def positive_int(name, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInputError(f"{name} must be an integer >= 1, got {value!r}")
    positive_int("n_mem", n_mem)
    positive_int("max_steps", max_steps)
    positive_int("check_every", check_every)
    if patience is not None:
        positive_int("patience", patience)
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise BadInputError(f"lr must be a finite number > 0, got {lr!r}; the paper uses 1e-2")
    if not (0.0 < float(target_accuracy) <= 1.0):
        raise BadInputError(f"target_accuracy must be in (0, 1], got {target_accuracy!r}")
    if protocol not in PROTOCOLS:
        raise BadInputError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if layout not in LAYOUTS:
        raise BadInputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if init != "randn":
        raise BadInputError(f"unknown init {init!r}; use 'randn' or pass init_vectors for a warm start")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise BadInputError(f"betas must be two numbers in [0, 1), got {betas!r}")
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise BadInputError(f"weight_decay must be >= 0, got {weight_decay!r}")


def _progress_bar(progress, total, n_texts):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=f"cramming {n_texts} text(s)", unit="step", leave=False)
