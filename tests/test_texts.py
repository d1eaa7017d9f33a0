import pytest

from cramlab.errors import BadInputError, TextTooShortError
from cramlab.models.texts import first_tokens, get_texts, second_half, unseen_passages


@pytest.fixture(scope="module")
def tok(tiny):
    return tiny.tokenizer


def test_bundled_passages():
    passages = unseen_passages()
    assert len(passages) >= 24 and len({p["id"] for p in passages}) == len(passages)
    assert all(len(p["text"].split()) >= 250 for p in passages)
    assert len({p["genre"] for p in passages}) >= 12


@pytest.mark.parametrize("source", ["unseen", "random"])
@pytest.mark.parametrize("n_tokens", [2, 16, 200])
def test_sources_give_exactly_n_tokens(tok, source, n_tokens):
    texts = get_texts(tok, source, n_tokens, n_texts=3, seed=7)
    assert [len(t.token_ids) for t in texts] == [n_tokens] * 3
    assert len({tuple(t.token_ids) for t in texts}) == 3


def test_sources_are_seeded(tok):
    a = get_texts(tok, "random", 32, n_texts=2, seed=1)
    b = get_texts(tok, "random", 32, n_texts=2, seed=1)
    c = get_texts(tok, "random", 32, n_texts=2, seed=2)
    assert [t.token_ids for t in a] == [t.token_ids for t in b] != [t.token_ids for t in c]
    assert [t.text_id for t in get_texts(tok, "unseen", 8, 3, seed=0)] != \
        [t.text_id for t in get_texts(tok, "unseen", 8, 3, seed=5)]


def test_user_text_and_too_short(tok):
    t = first_tokens(tok, "The quick brown fox jumps over the lazy dog.", 4)
    assert len(t.token_ids) == 4 and t.text.startswith("The quick")
    with pytest.raises(TextTooShortError, match="has 3 tokens"):
        first_tokens(tok, "Hello there friend", 10)
    with pytest.raises(BadInputError):
        get_texts(tok, "unseen", 8, n_texts=1000)
    with pytest.raises(BadInputError, match="unknown text source"):
        get_texts(tok, "wikipedia", 8)


def test_pg19_and_fanfics_fail_clearly_offline(tok, monkeypatch, tmp_path):
    monkeypatch.delenv("CRAMLAB_FANFICS_FILE", raising=False)
    with pytest.raises(BadInputError, match="CRAMLAB_FANFICS_FILE"):
        get_texts(tok, "fanfics", 8)
    # A local chunk file follows the paper's protocol: second half of the sentences, first N tokens.
    chunk = "First sentence here. Second one. Third sentence follows. Fourth and last sentence ends it."
    (tmp_path / "pg19.csv").write_text('text\n"' + chunk + '"\n')
    monkeypatch.setenv("CRAMLAB_PG19_FILE", str(tmp_path / "pg19.csv"))
    t = get_texts(tok, "pg19", 4)[0]
    assert t.text.startswith("Third sentence") and second_half(chunk).startswith("Third")


def test_random_source_draws_words_from_the_100k_list_with_a_fixed_seed(tiny):
    from cramlab.models.texts import RANDOM_VOCABULARY_SIZE, random_texts, random_vocabulary
    vocab = random_vocabulary()
    assert len(vocab) == RANDOM_VOCABULARY_SIZE == 100_000 and vocab[0] == "the"
    a = random_texts(tiny.tokenizer, 12, n_texts=3, seed=7)
    b = random_texts(tiny.tokenizer, 12, n_texts=3, seed=7)
    c = random_texts(tiny.tokenizer, 12, n_texts=3, seed=8)
    assert [t.token_ids for t in a] == [t.token_ids for t in b] != [t.token_ids for t in c]
    assert all(t.n_tokens == len(t.token_ids) == 12 for t in a)
    known = set(vocab)
    words = " ".join(t.text for t in a).split()[:-1]          # the last word may be cut by the truncation
    assert words and all(w in known for w in words)
    varied = random_texts(tiny.tokenizer, 40, n_texts=20, seed=1, random_lengths=True)
    lengths = [t.n_tokens for t in varied]
    assert all(2 <= n <= 40 for n in lengths) and len(set(lengths)) > 5
    assert all(len(t.token_ids) == t.n_tokens for t in varied)


def test_passages_source_is_56_plus_independent_passages_of_140_tokens(tok):
    """`cramlab reproduce` needs >= 50 independent texts of up to 128 tokens: every bundled passage once, from its
    start (no two windows of one passage), each >= 140 tokens; the extra file records where the passages come from."""
    import json
    from importlib import resources

    from cramlab.models.texts import all_passages, encode
    passages = all_passages()
    assert len(passages) >= 56 and len({p["id"] for p in passages}) == len(passages)
    assert len({p["text"][:200] for p in passages}) == len(passages)
    assert min(len(encode(tok, p["text"])) for p in passages) >= 140
    extra = json.loads(resources.files("cramlab").joinpath("data/passages_extra.json").read_text(encoding="utf-8"))
    assert "written for cramlab" in extra["provenance"]
    texts = get_texts(tok, "passages", 128, n_texts=len(passages), seed=0)
    assert sorted(t.text_id for t in texts) == sorted(p["id"] for p in passages)     # each passage once
    assert [t.text_id for t in get_texts(tok, "passages", 8, 5, seed=1)] != [t.text_id for t in texts[:5]]
    with pytest.raises(BadInputError, match="--n-texts"):
        get_texts(tok, "passages", 8, n_texts=len(passages) + 1)
