"""The loop's mechanics on a tiny random model (fast), convergence on the embedded model (slow)."""
import json

import pytest
import torch

from cramlab.engine.decode import decode
from cramlab.engine.plain import cram
from cramlab.engine.vectors import load_vectors, save_vectors
from cramlab.errors import BadInputError, FingerprintMismatchError
from cramlab.models.texts import get_texts


@pytest.fixture(scope="module")
def texts(tiny):
    return get_texts(tiny.tokenizer, "unseen", 12, n_texts=3, seed=0)


def test_gradients_reach_only_the_vectors_and_weights_stay_bit_identical(tiny, texts):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    seen = []

    def spy(progress):  # no weight may have a gradient at any check
        seen.append(all(p.grad is None for p in tiny.model.parameters()))
    results = cram(tiny, texts, max_steps=20, check_every=5, callback=spy, progress=False)
    assert seen and all(seen)
    after = tiny.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    start = cram(tiny, texts, max_steps=1, progress=False, decode=False)
    assert not torch.equal(results[0].vectors, start[0].vectors)  # the vectors did move


def test_same_seed_same_results_other_seed_other_results(tiny, texts):
    a = cram(tiny, texts, max_steps=15, seed=3, progress=False)
    b = cram(tiny, texts, max_steps=15, seed=3, progress=False)
    c = cram(tiny, texts, max_steps=15, seed=4, progress=False)
    assert all(torch.equal(x.vectors, y.vectors) for x, y in zip(a, b))
    assert [x.history for x in a] == [y.history for y in b]
    assert not torch.equal(a[0].vectors, c[0].vectors)


def test_batched_equals_one_by_one(tiny, texts):
    """Each text has its own vectors and AdamW is element-wise: a batch is B independent runs."""
    batched = cram(tiny, texts, max_steps=25, progress=False)
    for text, res in zip(texts, batched):
        alone = cram(tiny, [text], max_steps=25, progress=False)[0]
        assert torch.allclose(alone.vectors, res.vectors, atol=1e-4)
        assert alone.final_ce_nats == pytest.approx(res.final_ce_nats, rel=1e-4)


def test_result_is_plain_data(tiny, texts):
    r = cram(tiny, texts[:1], max_steps=10, progress=False)[0]
    d = json.loads(json.dumps(r.to_dict(include_vectors=True)))
    assert d["n_tokens"] == 12 and d["n_mem"] == 1 and len(d["vectors"]) == 1 and len(d["vectors"][0]) == 64
    assert d["stop_reason"] == "max_steps" and d["steps"] == 10 and not d["converged"]
    assert d["n_scored"] == 12 and d["settings"]["protocol"] == "pc"
    assert d["info_gain_bits"] == pytest.approx(d["info_gain_nats"] / 0.6931471805599453)
    hc = cram(tiny, texts[:1], max_steps=5, protocol="hc", layout="mem-first", n_mem=2, progress=False)[0]
    assert hc.n_scored == 11 and hc.vectors.shape == (2, 64) and hc.token_ids[0] == texts[0].token_ids[0]


def test_patience_retires_a_text(tiny, texts):
    r = cram(tiny, texts[:1], max_steps=500, patience=5, check_every=5, progress=False)[0]
    assert r.stop_reason == "patience" and r.steps < 500


def test_warm_start_continues_from_given_vectors(tiny, texts):
    first = cram(tiny, texts[:1], max_steps=10, progress=False)[0]
    warm = cram(tiny, texts[:1], max_steps=1, init_vectors=first.vectors, progress=False, lr=1e-9)[0]
    assert torch.allclose(warm.vectors, first.vectors, atol=1e-5)
    assert warm.settings["init"] == "warm"


def test_mixed_lengths_are_grouped_and_kept_in_order(tiny):
    short = get_texts(tiny.tokenizer, "unseen", 6, n_texts=2, seed=1)
    long = get_texts(tiny.tokenizer, "unseen", 10, n_texts=1, seed=2)
    res = cram(tiny, [short[0], long[0], short[1]], max_steps=3, progress=False)
    assert [r.n_tokens for r in res] == [6, 10, 6] and [r.text_index for r in res] == [0, 1, 2]


def test_save_load_decode_round_trip(tiny, texts, tmp_path):
    r = cram(tiny, texts[:1], max_steps=10, progress=False)[0]
    path = save_vectors(tmp_path / "v.safetensors", r, tiny.spec)
    vf = load_vectors(path, tiny.spec)
    assert torch.equal(vf.vectors, r.vectors) and vf.meta["n_tokens"] == 12
    assert vf.meta["fingerprint"] == tiny.spec.fingerprint and vf.meta["layout"] == "sink-first"
    again = decode(tiny, vf.vectors, vf.meta["n_tokens"], layout=vf.meta["layout"], protocol=vf.meta["protocol"])
    assert again.text == r.decoded_text  # decoding the file gives what cram decoded
    assert not (tmp_path / "v.safetensors").read_bytes().startswith(b"\x80")  # not a pickle


def test_mismatched_fingerprint_is_refused(tiny, texts, tmp_path):
    from cramlab.models.load import load_model
    other = load_model("tiny-gptneox", device="cpu")
    r = cram(tiny, texts[:1], max_steps=2, progress=False)[0]
    path = save_vectors(tmp_path / "v.safetensors", r, tiny.spec)
    with pytest.raises(FingerprintMismatchError, match="--force"):
        load_vectors(path, other.spec)
    assert load_vectors(path, other.spec, force=True).vectors.shape == (1, 64)


@pytest.mark.slow
def test_embedded_model_crams_and_decodes_back(embedded):
    """Two bundled 12-token texts in one batch on CPU: both reach 100 % and greedy decoding gives them back.
    The first to finish leaves the batch, and its vector is not touched afterwards."""
    n = 12
    texts = get_texts(embedded.tokenizer, "unseen", n, n_texts=2, seed=0)
    active_sizes, snapshots = [], {}

    def watch(p):
        active_sizes.append(len(p.active))
    # lr 0.1 (the follow-up paper's for SmolLM2): 132 and 70 steps on a 2-core CPU. At 16 tokens
    # 'the-ferry-clock' did not reach 100 % within 1500 steps at lr 1e-2 (CI) nor 800 at lr 0.1 (here).
    results = cram(embedded, texts, max_steps=600, lr=0.1, check_every=1, callback=watch, progress=False)
    for text, r in zip(texts, results):
        assert r.converged and r.teacher_forced_accuracy == 1.0
        assert r.greedy_exact and r.decoded_text == text.text, (r.decoded_text, text.text)
        assert r.info_gain_bits > 0 and r.final_ce_nats < r.baseline_ce_nats
        snapshots[r.text_id] = r.vectors.clone()
    assert active_sizes[0] == 2 and active_sizes[-1] == 0 and 1 in active_sizes  # the batch shrank
    first, second = sorted(results, key=lambda r: r.steps)
    assert first.steps < second.steps
    # the first text's vector, evaluated again alone, still reproduces its text (nothing changed it)
    assert decode(embedded, snapshots[first.text_id], n).token_ids == first.token_ids


@pytest.mark.parametrize("protocol", ["pc", "hc"])
def test_one_batched_decode_with_a_count_per_text_equals_decoding_text_by_text(tiny, protocol):
    """progressive decodes every text's longest fit in one batch, each row cut to its own count: the same
    ids and text as one decode per text (greedy decoding is causal), hc's first token given per text."""
    v = torch.randn(3, 1, tiny.spec.d, generator=torch.Generator().manual_seed(3)) * 2
    counts, firsts = [2, 5, 3], [11, 22, 33]
    kw = dict(layout="mem-first" if protocol == "hc" else "sink-first", protocol=protocol)
    batched = decode(tiny, v, counts, first_token_id=firsts if protocol == "hc" else None, **kw)
    alone = [decode(tiny, v[i], counts[i], first_token_id=firsts[i] if protocol == "hc" else None, **kw)
             for i in range(3)]
    assert [len(d.token_ids) for d in batched] == counts
    assert [(d.token_ids, d.text) for d in batched] == [(d.token_ids, d.text) for d in alone]
    if protocol == "hc":
        assert [d.token_ids[0] for d in batched] == firsts
    with pytest.raises(BadInputError, match="one per text"):
        decode(tiny, v, [2, 3], **kw, first_token_id=firsts if protocol == "hc" else None)


@pytest.mark.parametrize("layout", ["mem-first", "sink-first"])
def test_the_baseline_uses_the_models_sink_token_in_both_layouts(tiny, texts, layout):
    """The no-vector baseline scores t_1 from the sink token: the model's own (its spec), as the sink-first
    inputs use it, also under mem-first (it used to fall back to token id 0 there)."""
    import dataclasses
    ids = [texts[0].token_ids[:6]]
    other = tiny._replace(spec=dataclasses.replace(tiny.spec, sink_token_id=7))   # a model whose sink is id 7
    kw = dict(layout=layout, protocol="pc", max_steps=1, progress=False, decode=False)
    by_spec = cram(other, ids, **kw)[0]
    explicit = cram(tiny, ids, sink_token_id=7, **kw)[0]
    zero = cram(tiny, ids, sink_token_id=0, **kw)[0]
    assert tiny.spec.sink_token_id == 0
    assert by_spec.baseline_ce_nats == explicit.baseline_ce_nats != zero.baseline_ce_nats
