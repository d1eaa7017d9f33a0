"""`cramlab poc` and cramlab.poc.run*: byte accounting, precision round trips, resumability, bad files,
retrieval mechanics, privacy through a second process. Tiny random model for mechanics; the embedded
model only in the `slow` end-to-end test."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cramlab.cli import main
from cramlab.errors import BadInputError, ConfigError
from cramlab.poc.corpus import GROUPS, demo_documents, write_demo_corpus
from cramlab.poc.privacy import privacy_check
from cramlab.poc.retrieval import bm25_tokens, evaluate_retrieval, pick_query
from cramlab.poc.run import (
    LINES_FILE,
    PRECISIONS,
    PocSettings,
    boilerplate_lines,
    lm_bits,
    normalise,
    read_documents,
    round_vectors,
    run_poc,
    smallest_exact_precision,
    text_bytes,
    token_id_bytes,
    vector_bytes,
)
from cramlab.science.sweep import read_results

ROOT = Path(__file__).resolve().parents[1]
TINY_CRAM = dict(lr=0.1, max_steps=4, seed=0, progress=False, check_every=2)


def tiny_settings(**kw):
    return PocSettings(**(dict(model="tiny-llama", n_tokens=8, batch_size=2, cram=dict(TINY_CRAM)) | kw))


def corpus(folder: Path, n: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i}.txt").write_text(f"Record {i}: the pump in room {i * 7} leaks again. Call the plumber.",
                                            encoding="utf-8")
    return folder


# --- bytes --------------------------------------------------------------------------------------------------

def test_byte_accounting_exact_numbers():
    b = text_bytes("ab")
    assert (b["utf8"], b["gzip"], b["bz2"], b["lzma"]) == (2, 22, 37, 60)   # the containers' fixed overheads
    assert text_bytes("日本語")["utf8"] == 9
    assert token_id_bytes(7, 49152) == 14          # ceil(log2 49152) = 16 bits per id
    assert token_id_bytes(5, 1000) == 7            # 10 bits per id: 50 bits -> 7 bytes
    assert token_id_bytes(3, 50304) == 6
    assert [vector_bytes(1, 576, p) for p in PRECISIONS] == [2304, 1152, 1152, 576, 580]
    assert vector_bytes(2, 576, "int8") == 1160    # one float32 scale per vector
    with pytest.raises(BadInputError, match="unknown precision"):
        vector_bytes(1, 8, "float64")


def test_lm_bits_counts_every_token():
    pc = SimpleNamespace(baseline_ce_nats=10 * math.log(2), n_scored=8, n_tokens=8)
    hc = SimpleNamespace(baseline_ce_nats=10 * math.log(2), n_scored=7, n_tokens=8)
    assert lm_bits(pc, 49152) == pytest.approx(10.0)
    assert lm_bits(hc, 49152) == pytest.approx(10.0 + math.log2(49152))   # unscored t_1 at log2|V| bits


# --- precision ----------------------------------------------------------------------------------------------

def test_precision_round_trip_values():
    v = torch.tensor([[1.0 + 2 ** -12, -3.0, 1000.0, 0.001]])
    assert torch.equal(round_vectors(v, "float32"), v)
    assert round_vectors(v, "bfloat16")[0, 0] == 1.0                      # 8 mantissa bits
    assert round_vectors(v, "float16")[0, 1] == -3.0
    assert round_vectors(v, "fp8_e4m3")[0, 2] == 448.0                   # clamped to e4m3's largest value
    q = round_vectors(v, "int8")
    scale = 1000.0 / 127
    assert q[0, 2] == pytest.approx(1000.0)                               # the max is exact
    assert (q - v).abs().max() <= scale / 2 + 1e-4
    assert round_vectors(v, "int8")[0, 3] == 0.0                          # below half a step
    assert smallest_exact_precision({p: True for p in PRECISIONS}, 1, 576) == "fp8_e4m3"
    assert smallest_exact_precision({"float32": True, "bfloat16": True, "int8": True}, 1, 576) == "int8"
    assert smallest_exact_precision({"float32": False}, 1, 576) is None


def test_each_precision_is_decoded_from_its_own_rounding(tiny, tmp_path):
    """exact_by_precision[p] is the decode of the vectors rounded to p (not of bf16 against itself): an
    independent decode of each rounding must agree with the recorded flag, and the model dtype is recorded."""
    from cramlab.engine.decode import decode
    from cramlab.models.texts import encode
    from cramlab.poc.run import Document, Planned, changed_in_model_dtype, measure_batch
    text = "Record 1: the pump in room 7 leaks again."
    ids = encode(tiny.tokenizer, text)[:6]
    planned = [Planned(Document("a.txt", ".", text), ids, 1, len(ids), tiny.tokenizer.decode(ids), "a.txt")]
    settings = tiny_settings(retrieval=False, cram=dict(TINY_CRAM, max_steps=40))
    rec = measure_batch(tiny, planned, settings, tmp_path)[0]
    from cramlab.engine.vectors import load_vectors
    vec = load_vectors(rec["vector_file"]).vectors
    for p in PRECISIONS:
        again = decode(tiny, round_vectors(vec[None], p), len(ids))[0].token_ids
        assert rec["exact_by_precision"][p] == (again == ids), p
    assert rec["model_dtype"] == tiny.spec.dtype and rec["changed_fraction_in_model_dtype"]["float32"] == 0.0
    # a bf16 model sees fp32 and bf16 alike; fp16 loses 2**-30 (below its range) -> 1 value of 3 differs
    v = torch.tensor([[1.0, 2.0 ** -30, 3.0]])
    changed = changed_in_model_dtype(v, "bfloat16")
    assert changed["float32"] == [0.0] and changed["bfloat16"] == [0.0]
    assert changed["float16"] == [pytest.approx(1 / 3)]


# --- reading, normalising, the demo corpus -----------------------------------------------------------------

def test_bad_files_are_reported_and_skipped(tiny, tmp_path, capsys):
    docs = corpus(tmp_path / "docs", 2)
    (docs / "empty.txt").write_text("  \n", encoding="utf-8")
    (docs / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x01")
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    found, skipped = read_documents(docs)
    assert [d.doc_id for d in found] == ["doc0.txt", "doc1.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["empty.txt"] == "empty"
    assert reasons["binary.txt"].startswith("binary")
    assert reasons["latin1.txt"].startswith("not UTF-8 (bad byte at offset 3)")
    rc = main(["poc", str(docs), "--model", "tiny-llama", "--device", "cpu", "--n-tokens", "6", "--max-steps", "2",
               "--out", str(tmp_path / "out"), "--json", "--no-privacy-check"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_texts"] == 2 and summary["n_skipped"] == 3
    for key in ("reconstruction_rate", "mean_token_accuracy", "bytes_utf8", "bytes_vectors_bf16", "bytes_gzip",
                "bits_lm", "encode_seconds", "decode_seconds"):
        assert key in summary
    assert summary["bytes_vectors_bf16"] == 2 * tiny.spec.d * 2
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "latin1.txt" in page and "Plotly" in page and "<script src=" not in page   # plotly.js inlined


def test_missing_folder_and_nothing_to_read(tmp_path):
    with pytest.raises(BadInputError, match="is not a folder"):
        read_documents(tmp_path / "nope")
    with pytest.raises(BadInputError, match="no files matching"):
        read_documents(tmp_path)
    with pytest.raises(BadInputError, match="exactly one of"):
        PocSettings(n_tokens=8, per_vector=16)
    with pytest.raises(BadInputError, match="unknown normalisation"):
        PocSettings(normalise="whitespace,spelling")


def test_normalisation_steps():
    texts = ["HEADER v1\nA  b\t c\n\n\nfooter", "HEADER v1\nsecond\nfooter", "third doc"]
    boiler = boilerplate_lines(texts)
    assert boiler == {"HEADER v1", "footer"}
    assert normalise(texts[0], "boilerplate", boiler) == "A  b\t c\n\n"
    assert normalise(texts[0], "whitespace") == "HEADER v1\nA b c\nfooter"
    assert normalise(texts[0], "all", boiler) == "a b c"
    assert normalise(texts[0], "none") == texts[0]


def test_demo_corpus_is_deterministic_and_multilingual(tmp_path):
    a, b = demo_documents(3, seed=1), demo_documents(3, seed=1)
    assert [d.to_dict() for d in a] == [d.to_dict() for d in b]
    assert demo_documents(3, seed=2)[0].text != a[0].text
    assert {d.group for d in a} == set(GROUPS)
    ja = [d.text for d in a if d.group == "records-ja"]
    assert all(any("\u3040" <= ch <= "\u9fff" for ch in t) for t in ja)
    docs, skipped = read_documents(write_demo_corpus(tmp_path, 3, seed=1))
    assert len(docs) == 9 and not skipped and {d.group for d in docs} == set(GROUPS)


def test_query_picking_and_bm25_tokens():
    text = "Pump leaks in room 7. Call the plumber today!\nStatus: open"
    q = pick_query(text, 0, "a")
    assert q in text and q != text
    assert pick_query(text, 0, "a") == q                                       # seeded
    assert bm25_tokens("Call THE plumber") == ["call", "the", "plumber"]
    assert bm25_tokens("冷却ファン異音 pump") == ["冷却", "却フ", "ファ", "ァン", "ン異", "異音", "pump"]


# --- the run: resumable, retrieval, privacy ------------------------------------------------------------------

class Stop(Exception):
    pass


def test_resume_after_a_stop_repeats_nothing_and_misses_nothing(tiny, tmp_path):
    docs, out = corpus(tmp_path / "docs", 5), tmp_path / "out"
    settings = tiny_settings()
    seen = []

    def stop_after_three(rec):
        seen.append(rec["text_id"])
        if len(seen) == 3:
            raise Stop
    with pytest.raises(Stop):
        run_poc(tiny, docs, out, settings, progress=False, after_document=stop_after_three)
    # A batch's lines are written in one fsynced append, before its callbacks: the 3rd document's batch (of 2) is whole.
    written = -(-3 // settings.batch_size) * settings.batch_size
    assert written == 4 and len(read_results(out / LINES_FILE)) == written
    run = run_poc(tiny, docs, out, settings, progress=False)
    lines = read_results(out / LINES_FILE)
    ids = [r["text_id"] for r in lines]
    assert run.n_resumed == written and len(ids) == len(set(ids)) == 10     # 5 documents + 5 queries, once each
    assert sorted(r["text_id"] for r in run.records) == [f"doc{i}.txt" for i in range(5)]
    assert len(run.queries) == 5
    ret = evaluate_retrieval(run.records, run.queries)
    assert ret["n_queries"] == 5 and 0.0 <= ret["vectors_recall_at_1"] <= 1.0
    assert ret["chance_recall_at_1"] == pytest.approx(0.2) and ret["top_k"] == 5
    assert ret["bm25_recall_at_5"] == 1.0                                    # every document is in the top 5 of 5
    with pytest.raises(ConfigError, match="other settings"):
        run_poc(tiny, docs, out, tiny_settings(n_tokens=6), progress=False)


def test_sigkill_mid_run_then_resume(tmp_path):
    docs, out = corpus(tmp_path / "docs", 6), tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "cramlab", "poc", str(docs), "--model", "tiny-llama", "--device", "cpu",
           "--n-tokens", "6", "--max-steps", "30", "--batch-size", "1", "--out", str(out), "--no-privacy-check",
           "--no-progress", "--no-alternatives"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = out / LINES_FILE
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if lines.exists() and lines.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(read_results(lines))
    assert n_before >= 2
    with open(lines, "ab") as f:
        f.write(b'{"text_id": "cut-by-a-kill')                             # what a kill inside a write leaves
    rc = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, check=False)
    assert rc.returncode == 0, rc.stderr
    ids = [r["text_id"] for r in read_results(lines)]
    assert len(ids) == len(set(ids)) == 12
    assert json.loads(rc.stdout)["n_texts"] == 6


def test_privacy_a_second_process_decodes_the_file_with_only_the_model_name(tiny, tmp_path):
    run = run_poc(tiny, corpus(tmp_path / "docs", 1), tmp_path / "out", tiny_settings(retrieval=False),
                  progress=False)
    rec = run.records[0]
    from safetensors import safe_open
    with safe_open(rec["vector_file"], framework="pt") as f:
        meta = json.loads(f.metadata()["cramlab"])
    assert "token_ids" not in meta and "text_sha256" not in meta                # the file holds only vectors
    check = privacy_check(rec["vector_file"], "tiny-llama", rec["decoded_text"])
    assert check["ok"], check
    assert check["decoded_text"] == rec["decoded_text"]


@pytest.mark.slow
def test_embedded_model_one_short_document_end_to_end(embedded, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The boiler in block C was serviced on Monday.", encoding="utf-8")
    rc = main(["poc", str(docs), "--model", "smollm2-135m", "--device", "cpu", "--n-tokens", "8",
               "--out", str(tmp_path / "out"), "--json", "--no-retrieval"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_texts"] == 1 and s["reconstruction_rate"] == 1.0
    assert s["privacy"]["ok"] and s["privacy"]["equals_original"]
    assert s["bytes_vectors_bf16"] == 1152 and s["bytes_token_ids"] == 16
    assert s["smallest_exact_precision_counts"]["none"] == 0
    assert 0 < s["bits_lm"] and s["bytes_lm"] == math.ceil(s["bits_lm"] / 8)


def test_per_vector_splits_whole_records_into_chunks(tiny):
    from cramlab.models.texts import encode
    from cramlab.poc.run import PER_VECTOR_AUTO_TOKENS, Document, chunk_ids, plan_document
    assert chunk_ids(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert chunk_ids(list(range(9)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7, 8]]      # a 1-token tail joins the last
    assert PER_VECTOR_AUTO_TOKENS == 16                                          # 43.6 - 2.5 * 11.0, floored
    settings = PocSettings(n_tokens=None, per_vector=4)
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau"
    ids = encode(tiny.tokenizer, text)
    parts = plan_document(tiny.tokenizer, Document("d.txt", ".", text), settings)
    assert [p.token_ids for p in parts] == chunk_ids(ids, 4)                      # the whole record, nothing cut
    assert [p.doc.doc_id for p in parts] == [f"d.txt#{i}" for i in range(len(parts))]
    assert {p.record_id for p in parts} == {"d.txt"} and all(p.n_mem == 1 for p in parts)
    assert plan_document(tiny.tokenizer, Document("d.txt", ".", "a"), settings).startswith("too short")


def test_queries_all_have_half_a_vector_of_tokens_from_their_document(tiny, tmp_path):
    from cramlab.poc.run import plan_queries, prepare, query_tokens
    settings = tiny_settings()
    planned, _, _ = prepare(tiny.tokenizer, corpus(tmp_path / "docs", 3), settings)
    queries = plan_queries(tiny.tokenizer, planned, settings)
    assert query_tokens(settings) == 4 and [len(q.token_ids) for q in queries] == [4, 4, 4]
    for q, p in zip(queries, planned):
        assert q.doc.doc_id == f"query:{p.doc.doc_id}" and q.text.strip() in p.text


def test_lzma_with_a_dictionary_cut_to_the_input_gives_preset_9s_size():
    """text_bytes' lzma skips preset 9's 64 MiB dictionary set-up; the size must equal the plain call's."""
    import lzma

    from cramlab.poc.run import lzma_strongest
    cases = (b"", b"a", "東京都 2024-01-05 受付".encode(), b"visit; pressure 120/80. " * 300, bytes(range(256)) * 50)
    for data in cases:
        assert len(lzma_strongest(data)) == len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
        assert lzma.decompress(lzma_strongest(data)) == data
