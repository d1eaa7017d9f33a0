"""The fast engine (cramlab/engine/fast.py) computes what the plain loop computes: same seed, same results."""
import pytest
import torch

from cramlab.engine.fast import chunked_loss, linear_cross_entropy
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


def test_kept_retired_rows_on_cpu_equal_the_plain_loop(tiny, fast_builds):
    """The GPU arrangement on the CPU: five texts in a step of 5 rows; a retired text keeps its row, masked, until
    `worth_rebuilding` says a rebuild pays (here with no fixed costs: when steps run x rows retired >= 4 x live),
    then the live rows move to a smaller step: vectors, stop reasons, steps and the histories at the checks equal
    the plain loop's."""
    short = get_texts(tiny.tokenizer, "unseen", 2, n_texts=5, seed=4)
    kw = dict(max_steps=120, check_every=4, patience=40, lr=0.5, progress=False, seed=2, decode=False)
    plain = cram(tiny, short, engine="plain", **kw)
    kept = cram(tiny, short, engine="fast", **kw)
    # texts retire at several checks (asserted below); the earlier ones stay masked in 5 rows until 1 is live
    assert [rows for rows, _ in fast_builds] == [5, 1], fast_builds
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


def test_worth_rebuilding_weighs_a_capture_against_the_work_left():
    from cramlab.engine.fast import CAPTURE_ROW_TOKENS, CAPTURE_STEPS, STEP_FLOOR_ROW_TOKENS, worth_rebuilding
    assert (CAPTURE_ROW_TOKENS, CAPTURE_STEPS, STEP_FLOOR_ROW_TOKENS) == (400_000, 4, 2_000)   # the sums below
    assert not worth_rebuilding(300, 300, 129, 4000, 1000)        # nothing retired
    assert not worth_rebuilding(300, 0, 129, 4000, 1000)          # nothing left to run
    # 300 x 129, 30 retired after 200 steps: saves 200 x 30 x 129 = 774,000 >= 400,000 + 4 x (2,000 + 270 x 129)
    #   = 547,320; after 141 steps 545,670 does not pay; nor with 141 steps allowed
    assert worth_rebuilding(300, 270, 129, 200, 4800)
    assert not worth_rebuilding(300, 270, 129, 141, 4800) and not worth_rebuilding(300, 270, 129, 4000, 141)
    # the natural grid's 8-token job (50 x 9 positions), half retired at step 500: 112,500 < 408,900 (fixed cost
    # dominates such a step); at step 2,000 with 45 retired, 810,000 >= 408,180 pays
    assert not worth_rebuilding(50, 25, 9, 500, 4500) and worth_rebuilding(50, 5, 9, 2000, 3000)
    # a 4,096-chunk PoC batch (25 positions), 2,048 retired: after 10 steps 512,000 < 612,800; after 20, 1,024,000
    assert not worth_rebuilding(4096, 2048, 25, 10, 4990) and worth_rebuilding(4096, 2048, 25, 20, 4980)


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
