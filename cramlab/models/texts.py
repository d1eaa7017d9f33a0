"""Text sources: each returns exactly `n_tokens` token ids per text, for a given tokenizer and seed.

- `unseen`: original passages written for this kit (package data), standing in for the paper's
  "texts published after the model's training cut-off".
- `passages`: every bundled passage once, from its start (`unseen.json` and `passages_extra.json`, 58 in
  all): independent texts, no two windows of one passage (what `cramlab reproduce` uses).
- `random`: the paper's random text: words drawn uniformly (seeded) from the 100,000 most frequent English
  words (`wordfreq`'s list, standing in for the authors' GloVe top-100k list), joined by spaces,
  truncated to N tokens; `random_lengths=True` draws each text's N uniformly in [2, N] as their code does.
- `pg19`, `fanfics`: the paper's sources, loaded from the hub or a local file (see `load_pg19`).
- user text: a string, a file or a folder of `*.txt` files (`user_texts`), its first `n_tokens` tokens.
"""
from __future__ import annotations

import json
import os
import random
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from cramlab.errors import BadInputError, HubUnreachableError, TextTooShortError

SOURCES = ("unseen", "passages", "random", "pg19", "fanfics")
PG19_HUB_DATASET = "emozilla/pg19"          # PG-19 with a validation split in parquet on the hub
PG19_ENV = "CRAMLAB_PG19_FILE"              # or a local CSV/JSONL/TXT file with the chunks
FANFICS_ENV = "CRAMLAB_FANFICS_FILE"        # the authors publish only URLs: bring the texts as a file


@dataclass
class Text:
    """One text ready for cramming: exactly `n_tokens` ids, and the string they decode to."""
    source: str
    text_id: str
    n_tokens: int
    token_ids: list[int]
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def unseen_passages() -> list[dict]:
    """The bundled passages: a list of {id, genre, title, text}."""
    with resources.files("cramlab").joinpath("data/unseen.json").open(encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def all_passages() -> list[dict]:
    """`unseen_passages()` and the passages of `data/passages_extra.json` (written for issue 28; its
    `provenance` key says how): one list of independent passages, ids unique."""
    with resources.files("cramlab").joinpath("data/passages_extra.json").open(encoding="utf-8") as f:
        extra = json.load(f)["passages"]
    return unseen_passages() + extra


def passage_texts(tokenizer, n_tokens: int, n_texts: int = 1, seed: int = 0) -> list[Text]:
    """`n_texts` independent texts: the first `n_tokens` tokens of distinct passages (order shuffled by `seed`)."""
    passages = all_passages()
    _check_n_texts(n_texts, len(passages), "passages")
    order = list(range(len(passages)))
    random.Random(seed).shuffle(order)
    return [first_tokens(tokenizer, passages[i]["text"], n_tokens, source="passages", text_id=passages[i]["id"])
            for i in order[:n_texts]]


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text` without special tokens (SmolLM2 and Pythia add none anyway)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def first_tokens(tokenizer, text: str, n_tokens: int, *, source: str = "user", text_id: str = "text") -> Text:
    """The first `n_tokens` tokens of `text`; a clear error if it is shorter."""
    _check_n_tokens(n_tokens)
    _check_text(text)
    ids = encode(tokenizer, text)
    if len(ids) < n_tokens:
        raise TextTooShortError(
            f"text {text_id!r} has {len(ids)} tokens but n_tokens={n_tokens} was asked; "
            f"use --n-tokens {len(ids)} or less, or a longer text")
    ids = ids[:n_tokens]
    return Text(source, text_id, n_tokens, ids, tokenizer.decode(ids))


def check_text_request(n_tokens, *, text: str | None = None, text_file=None, source: str | None = None,
                       n_texts: int = 1, text_dir=None) -> None:
    """Every mistake in a request for texts that can be found without a tokenizer or a model (the CLI
    calls it before the model loads, so a typo costs no de-quantisation)."""
    _check_n_tokens(n_tokens)
    if text is not None:
        _check_text(text)
    if text_file is not None:
        _check_text_file(text_file)
    if text_dir is not None:
        text_files(text_dir)
    if source is not None:
        _check_source(source)
        available = {"unseen": _unseen_available, "passages": lambda: len(all_passages())}.get(source)
        _check_n_texts(n_texts, available() if available else None, source)


def _check_text(text) -> None:
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("the text is empty; give some text with --text or --text-file")


def _check_text_file(path) -> None:
    if not Path(path).is_file():
        raise BadInputError(f"text file {path} not found; check the path")


def _check_source(source) -> None:
    if source not in SOURCES:
        raise BadInputError(f"unknown text source {source!r}; use one of {', '.join(SOURCES)}")


def _unseen_available() -> int:
    """Distinct unseen texts: every passage from its start and from three later sentence starts."""
    return 4 * len(unseen_passages())


def from_file(tokenizer, path: str | os.PathLike, n_tokens: int) -> Text:
    path = Path(path)
    _check_text_file(path)
    return first_tokens(tokenizer, path.read_text(encoding="utf-8"), n_tokens, source="file", text_id=path.name)


USER_TEXT_PATTERN = "*.txt"    # the files of a folder that are texts (searched recursively)


def text_files(folder) -> list[Path]:
    """The `*.txt` files under `folder` (recursively, sorted by path): the texts of --text-dir."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"text folder {folder} not found; give a folder of UTF-8 {USER_TEXT_PATTERN} files")
    files = sorted(p for p in folder.rglob(USER_TEXT_PATTERN) if p.is_file())
    if not files:
        raise BadInputError(f"no {USER_TEXT_PATTERN} files under {folder}; put your texts there as UTF-8 "
                            f"{USER_TEXT_PATTERN} files, or use --text-file")
    return files


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{name} is not UTF-8 text; save it as UTF-8 or leave it out") from None


def user_texts(tokenizer, *, text: str | None = None, text_file=None, text_dir=None, n_tokens: int | None = None,
               at_most: bool = False) -> list[Text]:
    """The learner's own texts: `text`, the file `text_file`, or every `*.txt` file under `text_dir` (sorted;
    text_id = its path under the folder). Each is its first `n_tokens` tokens (TextTooShortError if shorter);
    with `at_most=True` a shorter text is kept whole, and `n_tokens=None` keeps every text whole."""
    if text is not None:
        raw = [("user", "text", text)]
    elif text_file is not None:
        path = Path(text_file)
        _check_text_file(path)
        raw = [("file", path.name, _read(path, str(path)))]
    elif text_dir is not None:
        raw = [("file", p.relative_to(text_dir).as_posix(), _read(p, str(p))) for p in text_files(text_dir)]
    else:
        raise BadInputError("no text given; use --text, --text-file or --text-dir")
    out = []
    for source, text_id, body in raw:
        if n_tokens is not None and not at_most:
            out.append(first_tokens(tokenizer, body, n_tokens, source=source, text_id=text_id))
            continue
        if not body.strip():
            raise BadInputError(f"text {text_id!r} is empty; give some text")
        ids = encode(tokenizer, body)[:n_tokens]
        out.append(Text(source, text_id, len(ids), ids, tokenizer.decode(ids)))
    return out


def unseen_texts(tokenizer, n_tokens: int, n_texts: int = 1, seed: int = 0) -> list[Text]:
    """`n_texts` distinct bundled texts (order shuffled by `seed`), first `n_tokens` tokens each.

    The first 24 are the passages from their start. Beyond that, further texts start later in the same
    passages (at the first sentence past a quarter, a half, three quarters of it; ids `<passage>@<q>`),
    so a GPU run can have 48-96 different texts of up to ~100 tokens.
    """
    passages = unseen_passages()
    _check_n_texts(n_texts, _unseen_available(), "unseen")
    order = list(range(len(passages)))
    random.Random(seed).shuffle(order)
    out = []
    for k in range(n_texts):
        quarter, p = divmod(k, len(passages))
        passage = passages[order[p]]
        text, text_id = passage["text"], passage["id"]
        if quarter:
            text, text_id = _from_quarter(text, quarter), f"{text_id}@{quarter}"
        out.append(first_tokens(tokenizer, text, n_tokens, source="unseen", text_id=text_id))
    return out


def _from_quarter(text: str, quarter: int) -> str:
    """The text from the first sentence that starts after `quarter`/4 of its characters."""
    cut = len(text) * quarter // 4
    match = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])").search(text, cut)
    return text[match.end():] if match else text[cut:]


#: How many of the most frequent English words the random source draws from (the paper: 100k).
RANDOM_VOCABULARY_SIZE = 100_000


@lru_cache(maxsize=1)
def random_vocabulary() -> tuple[str, ...]:
    """The 100,000 most frequent English words (`wordfreq.top_n_list`), the random source's vocabulary."""
    from wordfreq import top_n_list
    return tuple(top_n_list("en", RANDOM_VOCABULARY_SIZE))


def random_texts(tokenizer, n_tokens: int, n_texts: int = 1, seed: int = 0,
                 random_lengths: bool = False) -> list[Text]:
    """The paper's random-text protocol (Kuratov et al.'s code): 5·N words drawn uniformly with replacement
    from the 100k-word list, joined by spaces, truncated to N tokens. With `random_lengths`, each text's
    N is drawn uniformly in [2, n_tokens] first (their `--shuffled` runs), so texts differ in length."""
    _check_n_tokens(n_tokens)
    _check_n_texts(n_texts, None, "random")
    vocab = random_vocabulary()
    rng = random.Random(seed)
    out = []
    for i in range(n_texts):
        n = rng.randint(2, n_tokens) if random_lengths else n_tokens
        words = [rng.choice(vocab) for _ in range(5 * n)]     # as theirs: 5 words per token, then truncate
        ids = encode(tokenizer, " ".join(words))[:n]
        out.append(Text("random", f"random-{seed}-{i}", n, ids, tokenizer.decode(ids)))
    return out


def second_half(text: str) -> str:
    """The paper's protocol for PG-19: keep the second half of the sentences."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    return " ".join(sentences[len(sentences) // 2:])


def load_pg19(n_texts: int, seed: int = 0) -> list[str]:
    """PG-19 validation texts: from the file named by $CRAMLAB_PG19_FILE, else from the hub."""
    local = os.environ.get(PG19_ENV)
    if local:
        return _texts_from_file(Path(local), n_texts)
    try:
        import datasets  # optional: only the pg19 source needs it
    except ImportError:
        raise BadInputError("the pg19 source needs the `datasets` package (pip install datasets), "
                            f"or a local file of chunks in ${PG19_ENV}") from None
    from cramlab.models.load import hub_reachable
    if not hub_reachable():
        raise HubUnreachableError(f"cannot reach the Hugging Face hub for {PG19_HUB_DATASET}; set ${PG19_ENV} "
                                  "to a local CSV/JSONL/TXT file of PG-19 chunks, or use --source unseen")
    stream = datasets.load_dataset(PG19_HUB_DATASET, split="validation", streaming=True)
    texts = []
    for row in stream:
        body = row["text"]
        start = random.Random(seed + len(texts)).randrange(max(1, len(body) - 20_000))
        texts.append(body[start:start + 20_000])
        if len(texts) == n_texts:
            break
    return texts


def load_fanfics(n_texts: int) -> list[str]:
    local = os.environ.get(FANFICS_ENV)
    if not local:
        raise BadInputError(f"the fanfics source needs a local file of texts in ${FANFICS_ENV} "
                            "(the authors publish only the URLs); or use --source unseen")
    return _texts_from_file(Path(local), n_texts)


def _texts_from_file(path: Path, n_texts: int) -> list[str]:
    """CSV with a `text` column, JSONL with a `text` key, or TXT with texts separated by blank lines."""
    if not path.is_file():
        raise BadInputError(f"text collection {path} not found; check the path")
    if path.suffix == ".csv":
        import csv
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r["text"] for r in csv.DictReader(f)]
    elif path.suffix in (".jsonl", ".json"):
        rows = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        rows = [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    _check_n_texts(n_texts, len(rows), path.name)
    return rows[:n_texts]


def get_texts(tokenizer, source: str, n_tokens: int, n_texts: int = 1, seed: int = 0) -> list[Text]:
    """Dispatch on the source name; every text has exactly `n_tokens` tokens."""
    if source == "unseen":
        return unseen_texts(tokenizer, n_tokens, n_texts, seed)
    if source == "random":
        return random_texts(tokenizer, n_tokens, n_texts, seed)
    if source == "passages":
        return passage_texts(tokenizer, n_tokens, n_texts, seed)
    if source == "pg19":
        raw = [second_half(t) for t in load_pg19(n_texts, seed)]
    elif source == "fanfics":
        raw = [second_half(t) for t in load_fanfics(n_texts)]
    else:
        _check_source(source)
    return [first_tokens(tokenizer, t, n_tokens, source=source, text_id=f"{source}-{i}") for i, t in enumerate(raw)]


def _check_n_tokens(n_tokens):
    if not isinstance(n_tokens, int) or isinstance(n_tokens, bool) or n_tokens < 2:
        raise BadInputError(f"n_tokens must be an integer >= 2 (one token cannot be scored), got {n_tokens!r}")


def _check_n_texts(n_texts, available, source):
    if not isinstance(n_texts, int) or n_texts < 1:
        raise BadInputError(f"n_texts must be a positive integer, got {n_texts!r}")
    if available is not None and n_texts > available:
        raise BadInputError(f"source {source!r} has {available} texts but n_texts={n_texts}; use --n-texts {available}")
