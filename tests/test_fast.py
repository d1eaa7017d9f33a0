"""The fast engine (cramlab/engine/fast.py) computes what the plain loop computes: same seed, same results."""
import pytest
import torch

from cramlab.engine.fast import bucket_size, chunked_loss, linear_cross_entropy
from cramlab.engine.plain import cram
from cramlab.engine.step import token_losses
from cramlab.models.texts import get_texts


@pytest.fixture(scope="module")
def texts(tiny):
    return get_texts(tiny.tokenizer, "unseen", 10, n_texts=3, seed=4)


def test_chunked_linear_cross_entropy_matches_the_full_logits():
    torch.manual_seed(0)
    hidden = torch.randn(2, 7, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, dtype=torch.float64)
    targets = torch.randint(0, 50, (2, 7))
    loss, correct = linear_cross_entropy(hidden, weight, targets, chunk=3)
    logits = hidden @ weight.T
    ref = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    assert torch.equal(correct.bool(), logits.argmax(-1) == targets)
    grad, = torch.autograd.grad(loss.sum(), hidden)
    ref_grad, = torch.autograd.grad(ref.sum(), hidden)
    assert torch.allclose(grad, ref_grad, atol=1e-5)


def test_a_liger_marked_head_on_the_cpu_keeps_the_torch_loss():
    """`kernels.apply_kernels` marks a patched model's head for Liger's cross-entropy kernel; that path is
    CUDA-only (a GPU check compares it with this one), so on a CPU tensor the mark changes nothing."""
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(2, 7, 16)
    targets = torch.randint(0, 50, (2, 7))
    plain = token_losses(head, hidden, targets, chunked_loss(head, cuda=hidden.is_cuda))
    head._cramlab_liger_loss = True
    assert chunked_loss(head, cuda=hidden.is_cuda) is linear_cross_entropy
    marked = token_losses(head, hidden, targets, chunked_loss(head, cuda=hidden.is_cuda))
    assert torch.equal(plain[0], marked[0]) and torch.equal(plain[1], marked[1])


@pytest.mark.parametrize("layout,protocol", [("sink-first", "pc"), ("mem-first", "hc")])
def test_fast_equals_plain_on_cpu(tiny, texts, layout, protocol):
    kw = dict(max_steps=25, check_every=5, layout=layout, protocol=protocol, progress=False, seed=1)
    plain = cram(tiny, texts, engine="plain", **kw)
    fast = cram(tiny, texts, engine="fast", **kw)
    for a, b in zip(plain, fast):
        assert torch.allclose(a.vectors, b.vectors, atol=1e-5)
        assert a.steps == b.steps and a.stop_reason == b.stop_reason
        assert a.final_ce_nats == pytest.approx(b.final_ce_nats, rel=1e-5)
        assert a.decoded_text == b.decoded_text
    assert fast[0].settings["engine"] == "fast" and plain[0].settings["engine"] == "plain"


def test_fast_engine_retires_texts_like_the_plain_one(tiny, texts):
    kw = dict(max_steps=60, check_every=5, patience=10, progress=False)
    plain = cram(tiny, texts, engine="plain", **kw)
    fast = cram(tiny, texts, engine="fast", **kw)
    assert [r.steps for r in plain] == [r.steps for r in fast]
    assert {r.stop_reason for r in fast} == {"patience"}


def test_kept_retired_rows_on_cpu_equal_the_plain_loop(tiny, monkeypatch):
    """The GPU arrangement on the CPU: five texts in a step of 5 rows; a retired text keeps its row, masked, until
    `worth_rebuilding` says so (its power-of-two bucket shrinks: 5 -> 4 rows, 3 live kept in 4, then 2 and 1):
    vectors, stop reasons, steps and the histories at the checks equal the plain loop's."""
    import functools

    import cramlab.engine.fast as fast_module
    seen_sizes = []
    original_build = fast_module.FastStep.__init__

    def spy(self, lm, g, *args, **kwargs):
        seen_sizes.append(g.text_emb.shape[0])
        original_build(self, lm, g, *args, **kwargs)
    short = get_texts(tiny.tokenizer, "unseen", 2, n_texts=5, seed=4)
    kw = dict(max_steps=120, check_every=4, patience=40, lr=0.5, progress=False, seed=2, decode=False)
    plain = cram(tiny, short, engine="plain", **kw)
    monkeypatch.setattr(fast_module, "fast_loop", functools.partial(fast_module.fast_loop, keep_retired=True))
    monkeypatch.setattr(fast_module.FastStep, "__init__", spy)
    kept = cram(tiny, short, engine="fast", **kw)
    assert seen_sizes[0] == 5 and seen_sizes == sorted(seen_sizes, reverse=True), seen_sizes
    assert set(seen_sizes[1:]) <= {1, 2, 4}, seen_sizes    # 3 live texts stay in 4 rows: bucket 4 is not smaller
    assert len({r.steps for r in plain}) > 1, "the case must retire texts at different checks"
    for a, b in zip(plain, kept):
        assert (a.stop_reason, a.steps) == (b.stop_reason, b.steps)
        # other batch shapes round differently in the CPU matmuls (5 rows vs 4, then 4 vs 3, ...): after
        # ~100 steps at lr 0.5 the vectors (|v| ~ 5) agree to ~1e-5 relative, not bit for bit
        torch.testing.assert_close(a.vectors, b.vectors, rtol=1e-4, atol=1e-4)
        assert [h[0] for h in a.history] == [h[0] for h in b.history]
        assert [h[1] for h in a.history] == pytest.approx([h[1] for h in b.history], rel=1e-5)


def test_auto_engine_is_plain_on_cpu(tiny, texts):
    assert cram(tiny, texts[:1], max_steps=1, progress=False)[0].settings["engine"] == "plain"


def test_buckets():
    assert [bucket_size(n) for n in (1, 3, 5, 33, 64, 65)] == [1, 4, 8, 64, 64, 128]
    # above the largest bucket: whole multiples of it
    assert [bucket_size(n) for n in (1024, 1025, 4096, 4095, 3073)] == [1024, 2048, 4096, 4096, 4096]


def test_worth_rebuilding_weighs_a_capture_against_the_steps_left():
    from cramlab.engine.fast import REBUILD_STEPS, worth_rebuilding
    assert not worth_rebuilding(300, 300, 4000, 1000)           # nothing retired
    assert not worth_rebuilding(300, 0, 4000, 1000)             # nothing left to run
    assert worth_rebuilding(300, 256, 10, 4990)                 # a smaller power-of-two bucket: always
    assert not worth_rebuilding(300, 257, 10, 4990)             # same bucket, 10 steps run: 10 x 43/300 < 64
    # 300 rows, 30 retired: pays once the batch has run (and may run) REBUILD_STEPS x 300 / 30 steps
    need = REBUILD_STEPS * 300 // 30
    assert worth_rebuilding(300, 270, need, 5000) and not worth_rebuilding(300, 270, need - 1, 5000)
    assert not worth_rebuilding(300, 270, 4000, need - 1)     # too few steps allowed to earn it back
    # a 4,096-chunk PoC batch at its 20th check (200 steps): 1,000 retired does not pay, 1,025 is a bucket
    assert not worth_rebuilding(4096, 3096, 200, 4800) and worth_rebuilding(4096, 3071, 200, 4800)


def test_head_logits_equal_the_head_on_a_batch_slice(tiny):
    """The LM head as one 2-D matmul (step.head_logits) gives what nn.Linear gives on the 3-D slice."""
    from cramlab.engine.step import head_logits
    torch.manual_seed(0)
    d = tiny.model.get_input_embeddings().weight.shape[1]
    hidden = torch.randn(3, 7, d)
    part = hidden[:, 2:6]                                   # not contiguous: the case that matters
    assert not part.is_contiguous()
    ours = head_logits(tiny.model.get_output_embeddings(), part)
    ref = tiny.model.get_output_embeddings()(part)
    assert ours.shape == ref.shape == (3, 4, tiny.model.get_output_embeddings().weight.shape[0])
    assert torch.allclose(ours, ref, atol=1e-5)
