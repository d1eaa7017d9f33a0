"""Looking inside (notebook 08): attention shares of the prefix, PCA of the progressive trajectory."""
import random

import pytest
import torch

from cramlab.errors import BadInputError
from cramlab.models.texts import get_texts
from cramlab.science.attention import attention_shares, eager_attention
from cramlab.science.search import progressive
from cramlab.science.trajectory import trajectory_pca


def test_attention_shares_add_up_per_layer_and_restore_the_kernel(tiny):
    text = get_texts(tiny.tokenizer, "unseen", 10, n_texts=1)[0]
    vectors = torch.randn(2, tiny.spec.d)
    before = tiny.model.config._attn_implementation
    a = attention_shares(tiny, vectors, text.token_ids)
    assert tiny.model.config._attn_implementation == before
    assert a.n_layers == tiny.spec.n_layers and a.n_mem == 2 and a.n_tokens == 10
    for s, m, t in zip(a.sink_share, a.mem_share, a.text_share):
        assert s + m + t == pytest.approx(1.0, abs=1e-4)        # causal softmax rows sum to one
        assert min(s, m, t) >= 0
    b = attention_shares(tiny, vectors, text.token_ids, layout="mem-first")
    assert b.sink_share == [0.0] * b.n_layers
    one = attention_shares(tiny, vectors, text.token_ids, first_token_only=True)
    assert one.mem_share != a.mem_share
    with pytest.raises(BadInputError):
        attention_shares(tiny, torch.randn(1, 2, tiny.spec.d), text.token_ids)


def test_eager_attention_switches_back_even_after_an_error(tiny):
    before = tiny.model.config._attn_implementation
    with pytest.raises(RuntimeError):
        with eager_attention(tiny.model):
            assert tiny.model.config._attn_implementation == "eager"
            raise RuntimeError("boom")
    assert tiny.model.config._attn_implementation == before


def test_trajectory_pca_finds_the_dimension_of_the_path():
    g = torch.Generator().manual_seed(0)
    line = [torch.full((1, 8), float(i)) for i in range(6)]
    p = trajectory_pca(line)
    assert p.n_components(0.99) == 1 and p.cumulative[0] == pytest.approx(1.0)
    assert p.step_norms == pytest.approx([8 ** 0.5] * 5)
    basis = torch.randn(3, 50, generator=g)
    plane = [torch.randn(3, generator=g) @ basis for _ in range(20)]
    q = trajectory_pca(plane)
    assert q.n_points == 20 and q.dim == 50 and q.n_components(0.99) <= 3 and q.cumulative[2] == pytest.approx(1.0)
    assert q.to_dict()["n_components_99"] == q.n_components(0.99)
    with pytest.raises(BadInputError, match="at least 2"):
        trajectory_pca(line[:1])


def test_progressive_trajectory_feeds_the_pca(tiny):
    ids = [random.Random(0).randrange(1000) for _ in range(12)]     # tokens the tiny model can be steered to
    s = progressive(tiny, [ids], start=2, max_tokens=12, lr=0.5, max_steps=20, keep_trajectory=True)
    t = s.texts[0]
    assert len(t.trajectory) == len([r for r in t.records if r["teacher_forced_accuracy"] == 1.0]) >= 3
    p = trajectory_pca(t.trajectory)
    assert p.n_points == len(t.trajectory) and p.dim == tiny.spec.d
    assert p.n_components(0.99) <= p.n_points - 1          # T centred points span at most T-1 dimensions
