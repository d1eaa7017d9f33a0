"""kernels.precast: the body's linear weights cast once to the autocast dtype give the same numbers as autocast
casting them at every matmul (the fast engine's loop runs inside it), on the tiny model in float32 on the CPU under
bfloat16 autocast."""
import torch

from cramlab.engine.settings import CramSettings
from cramlab.engine.step import base, prepare_group
from cramlab.kernels.precast import autocast_dtype, precast_linears
from cramlab.models.texts import get_texts


def _loss_and_grad(lm, g):
    mem = g.start.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, correct = g.losses(base(lm), lm.get_output_embeddings(), mem)
    loss.sum().backward()
    return loss.detach(), correct, mem.grad


def test_precast_weights_give_autocast_numbers_bit_for_bit(tiny):
    lm = tiny.model
    rows = [t.token_ids for t in get_texts(tiny.tokenizer, "unseen", 12, n_texts=3, seed=1)]
    g = prepare_group(lm, rows, CramSettings(), tiny.spec.sink_token_id)
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    reference = _loss_and_grad(lm, g)
    body = base(lm)
    linears = [m for m in body.modules() if isinstance(m, torch.nn.Linear)]
    assert linears, "the tiny model has linear layers to cast"
    with precast_linears(body, torch.bfloat16):
        assert {m.weight.dtype for m in linears} == {torch.bfloat16}
        assert lm.get_output_embeddings().weight.dtype == torch.float32     # the head is left out
        first = _loss_and_grad(lm, g)
    with precast_linears(body, torch.bfloat16):                           # reused: the cached copies
        second = _loss_and_grad(lm, g)
    for got in (first, second):
        for a, b in zip(reference, got):
            assert torch.equal(a, b)
    # the float32 parameters are back, unchanged, and the model is not touched outside the context
    assert {m.weight.dtype for m in linears} == {torch.float32}
    after = dict(lm.named_parameters())
    assert all(torch.equal(before[n], after[n]) and after[n].dtype == before[n].dtype for n in before)


def test_precast_does_nothing_without_autocast(tiny):
    body = base(tiny.model)
    assert autocast_dtype(torch.device("cpu")) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_dtype(torch.device("cpu")) == torch.bfloat16
    with precast_linears(body, None):
        assert {p.dtype for p in body.parameters()} == {torch.float32}
