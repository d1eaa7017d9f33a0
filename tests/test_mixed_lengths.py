"""`cram(mixed_lengths=True)`: texts of different lengths crammed in right-padded batches (step.TextGroup's
`row_scored` and `means`; `length_groups` picks the batches), on the tiny model in float32 on the CPU.

Why not bit for bit: a padded text runs through attention and matmuls of another sequence length than alone, which
round its per-token losses differently in the last bit (measured here: the first step's gradient differs by at most
9e-8 on |g| ~ 0.6); training at lr 1.0 amplifies that to at most 3.4e-5 on |v| ~ 9 after 40 steps (3.7e-6 of the
largest |v|). The tests allow 1e-4 of the largest |v|, the fast engine's tolerance in tests/test_conformance.py.
What is exact, and asserted exactly: the masked mean itself, a text whose row needs no padding (the longest), one
text in mixed mode against the default, and every discrete outcome (steps, stop reasons, accuracies, decodes).
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cramlab.engine.decode import decode
from cramlab.engine.plain import cram
from cramlab.engine.settings import CramSettings
from cramlab.engine.step import prepare_group
from cramlab.models.texts import get_texts

LENGTHS = (5, 9, 12)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The exact assertions hold on one CPU thread: with two, a batch of 3 rows and a batch of 1 split their
    matmuls differently and the longest text's vectors differ in the last bit (seen outside `make test`, which
    runs on one thread while the notebooks run beside it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


KW = dict(max_steps=40, check_every=5, lr=1.0, progress=False)


@pytest.fixture(scope="module")
def rows(tiny):
    """Texts of 5, 9 and 12 tokens that start with 5, 4 and 3 tokens the model generates from a random vector
    (reachable: the 5-token text converges) and go on with natural text (which the tiny model does not fit)."""
    std = tiny.model.get_input_embeddings().weight.float().std().item()
    v = torch.randn(3, 1, tiny.spec.d, generator=torch.Generator().manual_seed(0)) * std * 20
    made = [d.token_ids for d in decode(tiny, v, max(LENGTHS))]
    natural = [t.token_ids for t in get_texts(tiny.tokenizer, "unseen", max(LENGTHS), n_texts=3, seed=1)]
    return [m[:k] + t[:n - k] for m, t, k, n in zip(made, natural, (5, 4, 3), LENGTHS)]


def outcome(r):
    """Everything discrete (and the accuracies, which are counts over the scored tokens) of one result."""
    return (r.n_tokens, r.token_ids, r.n_scored, r.steps, r.stop_reason, r.converged, r.teacher_forced_accuracy,
            r.baseline_accuracy, r.train_accuracy, r.greedy_exact, r.first_mismatch, r.decoded_text,
            [(h[0], h[2]) for h in r.history])


def assert_close(x, y, tol=1e-4):
    assert float((x - y).abs().max()) <= tol * max(1.0, float(x.abs().max())), float((x - y).abs().max())


@pytest.mark.parametrize("protocol", ["pc", "hc"])
def test_padded_means_score_each_text_over_its_own_tokens(tiny, rows, protocol):
    """Known answer: per-token losses 1, 2, 3, ... give each text the mean of its own first n_scored values, and
    the padded positions get no gradient."""
    s = CramSettings(protocol=protocol)
    g = prepare_group(tiny.model, rows, s, 0, mixed=True)
    hc = int(protocol == "hc")
    assert g.row_scored.tolist() == [n - hc for n in LENGTHS] and g.ids.shape == (3, 12)
    assert [g.ids[i, :n].tolist() for i, n in enumerate(LENGTHS)] == rows
    assert g.ids[0, 5:].tolist() == [rows[0][-1]] * 7                           # padded with its own last token
    loss_tok = torch.arange(1.0, 1.0 + g.n_scored).repeat(3, 1).requires_grad_(True)
    correct = (torch.arange(g.n_scored) % 2 == 0).float().repeat(3, 1)           # right at 1st, 3rd, 5th, ...
    loss, acc = g.means(loss_tok, correct)
    n = torch.tensor([float(k - hc) for k in LENGTHS])
    assert torch.equal(loss, (n + 1) / 2)                                        # mean of 1..n
    assert torch.equal(acc, torch.ceil(n / 2) / n)
    loss.sum().backward()
    assert torch.equal(loss_tok.grad != 0, torch.arange(g.n_scored) < n[:, None])
    pick = torch.tensor([2, 0])                                                   # a forward of rows 2 and 0
    assert torch.equal(g.means(loss_tok[pick], correct[pick], pick)[0], loss[pick])
    assert prepare_group(tiny.model, rows[:1], s, 0).row_scored is None          # default: no mask at all


@pytest.mark.parametrize("engine", ["plain", "fast"])
@pytest.mark.parametrize("protocol", ["pc", "hc"])
def test_a_mixed_batch_gives_each_text_what_it_gets_alone(tiny, rows, protocol, engine):
    kw = KW | dict(protocol=protocol, engine=engine)
    mixed = cram(tiny, rows, mixed_lengths=True, **kw)
    alone = [cram(tiny, [r], **kw)[0] for r in rows]
    hc = int(protocol == "hc")
    assert [r.n_scored for r in mixed] == [n - hc for n in LENGTHS] and [len(r.token_ids) for r in mixed] == [5, 9, 12]
    assert [r.stop_reason for r in mixed] == ["converged", "max_steps", "max_steps"]   # the case retires one text
    for m, a in zip(mixed, alone):
        assert outcome(m) == outcome(a)
        assert_close(a.vectors, m.vectors)
        assert m.final_ce_nats == pytest.approx(a.final_ce_nats, rel=1e-5)
        assert m.baseline_ce_nats == pytest.approx(a.baseline_ce_nats, rel=1e-6)
        assert m.final_ce_nats == pytest.approx(m.final_ce_per_token_nats * m.n_scored, rel=1e-12)
        assert [h[1] for h in m.history] == pytest.approx([h[1] for h in a.history], rel=1e-5)
    # the longest text needs no padding: its row computes exactly what it computes alone
    assert torch.equal(mixed[2].vectors, alone[2].vectors)
    assert mixed[2].final_ce_nats == alone[2].final_ce_nats


def test_one_text_in_mixed_mode_is_the_default_bit_for_bit(tiny, rows):
    """The masked mean of an unpadded row is the plain mean: nothing changes but the flag."""
    for engine in ("plain", "fast"):
        a = cram(tiny, [rows[1]], engine=engine, **KW)[0]
        m = cram(tiny, [rows[1]], engine=engine, mixed_lengths=True, **KW)[0]
        assert torch.equal(a.vectors, m.vectors)
        assert {k: v for k, v in a.to_dict().items() if k != "seconds"} == \
            {k: v for k, v in m.to_dict().items() if k != "seconds"}


def test_fast_kept_rows_and_compaction_with_mixed_lengths(tiny, rows, fast_builds):
    """The fast engine's GPU arrangement on the CPU: 3 texts in 3 rows, compacted to 2 when the 5-token text
    retires (priced with no fixed costs, so that the rebuild pays at once); same results as the plain loop."""
    plain = cram(tiny, rows, mixed_lengths=True, engine="plain", **KW)
    fast = cram(tiny, rows, mixed_lengths=True, engine="fast", **KW)
    assert fast_builds == [(3, [5, 9, 12]), (2, [9, 12])]
    for p, f in zip(plain, fast):
        assert outcome(p) == outcome(f)
        assert_close(p.vectors, f.vectors)


def test_length_groups_split_as_the_cost_says():
    from cramlab.engine.plain import length_groups
    assert length_groups([5, 9, 12], prefix=1) == [[0, 1, 2]]             # padding 11 tokens < another step's floor
    assert length_groups([5, 9, 12], prefix=1, floor_row_tokens=1) == [[0], [1], [2]]
    # 100 texts of 2 tokens and 10 of 100: one batch pads 100 x 98 tokens, more than a second floor of 2,000
    lengths = [2] * 100 + [100] * 10
    assert length_groups(lengths) == [list(range(100)), list(range(100, 110))]
    assert length_groups(lengths, floor_row_tokens=10_000) == [list(range(110))]
    assert length_groups([7, 3, 7, 3]) == [[0, 1, 2, 3]]


@given(st.lists(st.integers(1, 12), min_size=1, max_size=9), st.integers(0, 40), st.integers(0, 2))
@settings(max_examples=150, deadline=None)
def test_length_groups_is_the_cheapest_split(lengths, floor, prefix):
    """Against brute force over every split of the sorted distinct lengths into neighbouring runs."""
    import itertools

    from cramlab.engine.plain import length_groups

    def cost(groups):
        return sum(floor + len(g) * (max(lengths[i] for i in g) + prefix) for g in groups)
    got = length_groups(lengths, prefix, floor)
    assert sorted(i for g in got for i in g) == list(range(len(lengths)))
    distinct = sorted(set(lengths))
    best = None
    for cuts in itertools.product((False, True), repeat=len(distinct) - 1):
        runs, start = [], 0
        for k, c in enumerate(cuts, 1):
            if c:
                runs.append(distinct[start:k])
                start = k
        runs.append(distinct[start:])
        groups = [[i for i, n in enumerate(lengths) if n in run] for run in runs]
        best = cost(groups) if best is None else min(best, cost(groups))
    assert cost(got) == best


def test_mixed_lengths_split_by_length_equal_one_batch_a_length(tiny, rows, monkeypatch):
    """When `length_groups` puts every length in its own batch, mixed mode is the default arrangement bit for bit."""
    import functools

    import cramlab.engine.plain as plain_module
    alone = cram(tiny, rows, **KW)
    monkeypatch.setattr(plain_module, "length_groups",
                        functools.partial(plain_module.length_groups, floor_row_tokens=0))
    split = cram(tiny, rows, mixed_lengths=True, **KW)
    for a, m in zip(alone, split):
        assert torch.equal(a.vectors, m.vectors)
        assert outcome(a) == outcome(m)
