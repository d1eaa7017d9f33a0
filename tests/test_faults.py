"""Faults: a text whose loss goes non-finite, Ctrl-C in the middle of `cram`, writes that fail half-way,
and property tests for the capacity math and the text sources.

The cramming tests use the tiny random model: it cannot be steered, which is exactly what makes the
run length predictable (no text converges early), and it loads in seconds.
"""
from __future__ import annotations

import dataclasses
import errno
import math
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cramlab import capacity as cap
from cramlab.engine.plain import CramProgress, cram
from cramlab.engine.vectors import load_vectors, save_vectors
from cramlab.errors import OutputPathError
from cramlab.models.load import load_model, load_tokenizer
from cramlab.models.texts import encode, get_texts, unseen_passages

TINY = "tiny-llama"
TEXT_A = [19556, 905, 13, 9, 412, 88]
TEXT_B = [26843, 17, 3050, 7, 250, 61]
TEXT_C = [100, 200, 300, 400]
ENGINES = ["plain", "fast"]   # the fast engine runs eagerly on the CPU: the same rules must hold


@pytest.fixture(scope="module")
def lm():
    return load_model(TINY, device="cpu")


def _warm(*rows, d=64):
    """Warm-start vectors (B, 1, d): a fixed random start per text, or a poisoned one."""
    gen = torch.Generator().manual_seed(1)
    out = torch.randn(len(rows), 1, d, generator=gen) * 0.02
    for i, poison in enumerate(rows):
        if poison is not None:
            out[i, 0, 3] = poison
    return out


# --- a non-finite loss fails one text, not the batch -------------------------------------------------

@pytest.mark.parametrize("poison", [math.inf, math.nan])
@pytest.mark.parametrize("engine", ENGINES)
def test_non_finite_loss_fails_one_text_others_carry_on(lm, engine, poison):
    warm = _warm(None, poison, None)
    results = cram(lm, engine=engine, texts=[TEXT_A, TEXT_B, TEXT_A[::-1]], init_vectors=warm, max_steps=30,
                   check_every=10,
                   progress=False)
    bad = results[1]
    assert bad.stop_reason == "non_finite" and bad.failed
    assert bad.failed_step == 0                      # the very first step saw the poisoned vector
    assert bad.steps <= 10                           # retired at the first check
    for good in (results[0], results[2]):
        assert good.stop_reason == "max_steps" and not good.failed and good.failed_step is None
        assert good.steps == 30
        assert all(math.isfinite(loss) for _, loss, _ in good.history)
        assert torch.isfinite(good.vectors).all()
        assert math.isfinite(good.final_ce_nats)
    # the others carried on exactly as they would have alone: same vectors as a run without the bad text
    alone = cram(lm, engine=engine, texts=[TEXT_A, TEXT_A[::-1]], init_vectors=warm[[0, 2]], max_steps=30,
                 check_every=10,
                 progress=False)
    for batched, single in zip((results[0], results[2]), alone):
        torch.testing.assert_close(batched.vectors, single.vectors, rtol=1e-4, atol=1e-5)
    assert [r.text_index for r in results] == [0, 1, 2]


@pytest.mark.parametrize("engine", ENGINES)
def test_non_finite_text_in_another_length_group(lm, engine):
    """Texts of another length are crammed in their own group; a failure in one group leaves the other."""
    warm = _warm(math.nan, None)
    results = cram(lm, engine=engine, texts=[TEXT_A, TEXT_C], init_vectors=warm, max_steps=20, check_every=5,
                   progress=False)
    assert results[0].stop_reason == "non_finite"
    assert results[1].stop_reason == "max_steps" and results[1].steps == 20
    assert results[1].to_dict()["failed_step"] is None


# --- Ctrl-C keeps what was reached ---------------------------------------------------------------------

def _interrupt_at(step_to_stop: int, seen: list):
    def callback(progress: CramProgress):
        seen.append(progress)
        if progress.step >= step_to_stop:
            raise KeyboardInterrupt
    return callback


@pytest.mark.parametrize("engine", ENGINES)
def test_keyboard_interrupt_returns_results_so_far(lm, engine):
    seen: list[CramProgress] = []
    results = cram(lm, engine=engine, texts=[TEXT_A, TEXT_B], max_steps=1000, check_every=10, progress=False,
                   callback=_interrupt_at(20, seen))
    assert [p.step for p in seen] == [10, 20]
    assert len(results) == 2
    for r in results:
        assert r.stop_reason == "interrupted" and r.interrupted
        assert r.steps == 20                       # the work done is kept, not thrown away
        assert r.vectors is not None and r.vectors.shape == (1, 64)
        assert r.history and r.history[-1][0] <= 20
        assert math.isfinite(r.final_ce_nats) and math.isfinite(r.info_gain_bits)
        assert r.to_dict()["stop_reason"] == "interrupted"
    # the kept vectors are the ones the figures describe: evaluating them again gives the same loss
    again = cram(lm, engine=engine, texts=[TEXT_A], init_vectors=results[0].vectors, max_steps=1, progress=False,
                 decode=False)[0]
    assert math.isclose(again.final_ce_nats, results[0].final_ce_nats, rel_tol=1e-5)
    assert again.teacher_forced_accuracy == results[0].teacher_forced_accuracy


@pytest.mark.parametrize("engine", ENGINES)
def test_keyboard_interrupt_stops_the_later_groups(lm, engine):
    """Two lengths → two groups. Ctrl-C in the first must not silently go on with the second."""
    seen: list[CramProgress] = []
    results = cram(lm, engine=engine, texts=[TEXT_A, TEXT_C, TEXT_B], max_steps=1000, check_every=5, progress=False,
                   callback=_interrupt_at(5, seen))
    assert len(seen) == 1                          # no check of the second group ever ran
    assert [r.text_index for r in results] == [0, 1, 2]
    assert all(r.stop_reason == "interrupted" for r in results)
    assert results[0].steps == results[2].steps == 5
    assert results[1].steps == 0 and results[1].vectors is not None   # untrained, but present and marked


@pytest.mark.parametrize("engine", ENGINES)
def test_keyboard_interrupt_keeps_reasons_decided_at_that_check(lm, engine):
    """A text retired at the very check where Ctrl-C came keeps its own reason."""
    seen: list[CramProgress] = []
    # lr so small that the vectors never change: no accuracy gain, so patience retires every text at step 10
    results = cram(lm, engine=engine, texts=[TEXT_A, TEXT_B, TEXT_A[::-1]], max_steps=1000, lr=1e-12, patience=10,
                   check_every=10,
                   progress=False, callback=_interrupt_at(10, seen))
    still_active = set(seen[-1].active)
    assert seen[-1].step == 10 and seen[-1].n_done == 3 and not still_active
    for r in results:
        assert r.stop_reason == ("interrupted" if r.text_index in still_active else "patience")


@pytest.mark.slow
def test_kernel_interrupt_in_a_notebook_keeps_results(tmp_path):
    """What a learner does: run `cram` in a Jupyter kernel, press Stop (SIGINT), look at the results."""
    from jupyter_client.manager import start_new_kernel
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run(code, timeout=120):
            out = []
            reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: out.append(m))
            text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
            return reply["content"], text

        status, _ = run("from cramlab.models.load import load_model\nfrom cramlab.engine.plain import cram\n"
                        f"lm = load_model({TINY!r}, device='cpu')\nresults = None")
        assert status["status"] == "ok"
        msg_id = kc.execute(f"results = cram(lm, [{TEXT_A}, {TEXT_B}], max_steps=100_000, progress=False)")
        time.sleep(6)                              # let it run a few hundred steps
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok"  # cram returned; no KeyboardInterrupt reached the cell
        status, text = run("print([(r.stop_reason, r.steps > 0, r.vectors.shape[0]) for r in results])")
        assert status["status"] == "ok"
        assert text.strip() == "[('interrupted', True, 1), ('interrupted', True, 1)]"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.slow
def _default_sigint():
    """In the child, before exec: SIGINT back to its default disposition. A test run started from a
    background job inherits SIGINT as ignored, and Python then installs no KeyboardInterrupt handler, so
    the signal below would be lost (the CLI keeps honouring a deliberate ignore, as Unix tools do)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_in_the_cli_keeps_and_saves_what_was_reached(tmp_path):
    """SIGINT to `cramlab cram`: the table and the --out files hold the texts as far as they got; exit 130."""
    import json
    import select
    import subprocess
    import sys
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "cramlab", "cram", "--model", TINY, "--device", "cpu",
                             "--source", "random", "--n-texts", "2", "--n-tokens", "8", "--max-steps", "1000000",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)
    try:
        seen, deadline = b"", time.monotonic() + 120
        while b"cramming" not in seen:             # the progress bar: the loop is running
            assert proc.poll() is None and time.monotonic() < deadline, seen.decode(errors="replace")
            if select.select([proc.stderr], [], [], 1.0)[0]:
                seen += os.read(proc.stderr.fileno(), 4096)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = (seen + stderr).decode(errors="replace")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    rows = json.loads((out / "results.json").read_text())
    assert len(rows) == 2 and all(r["stop_reason"] == "interrupted" and r["steps"] > 0 for r in rows)
    assert len(list(out.glob("*.safetensors"))) == 2 and not list(out.glob("*.tmp"))
    assert "random-0-0" in stdout.decode()


# --- vector files are written atomically ---------------------------------------------------------------

@pytest.fixture(scope="module")
def result(lm):
    return cram(lm, [TEXT_A], max_steps=2, check_every=1, progress=False)[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_vector_write_leaves_no_temp_files(tmp_path, result, lm):
    path = tmp_path / "v.safetensors"
    save_vectors(path, result, lm.spec)
    save_vectors(path, dataclasses.replace(result, vectors=result.vectors * 2), lm.spec)   # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.safetensors"]
    torch.testing.assert_close(load_vectors(path, lm.spec).vectors, result.vectors * 2)


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_failed_vector_write_leaves_old_file_untouched(tmp_path, result, lm, monkeypatch, failure):
    path = tmp_path / "v.safetensors"
    save_vectors(path, result, lm.spec)
    before = path.read_bytes()
    import safetensors.torch

    real_save = safetensors.torch.save_file

    def half_then_fail(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:            # the temp file is now half-written ...
            f.truncate(os.path.getsize(filename) // 2)
        raise failure                               # ... and the disk fills up / the learner hits Ctrl-C

    monkeypatch.setattr(safetensors.torch, "save_file", half_then_fail)
    expected = OutputPathError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        save_vectors(path, dataclasses.replace(result, vectors=result.vectors + 1), lm.spec)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    torch.testing.assert_close(load_vectors(path, lm.spec).vectors, result.vectors)


def test_failed_rename_leaves_old_file_untouched(tmp_path, result, lm, monkeypatch):
    path = tmp_path / "v.safetensors"
    save_vectors(path, result, lm.spec)
    before = path.read_bytes()

    def no_rename(src, dst):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("cramlab.engine.vectors.os.replace", no_rename)
    with pytest.raises(OutputPathError, match="Permission denied"):
        save_vectors(path, dataclasses.replace(result, vectors=result.vectors + 1), lm.spec)
    monkeypatch.undo()
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


# --- property tests: capacity math ---------------------------------------------------------------------

dims = st.integers(1, 16384)
vocabs = st.integers(2, 300_000)
bits_ = st.integers(1, 64)
ks = st.integers(1, 64)


@given(d=dims, vocab=vocabs, bits=bits_, k=ks)
def test_capacity_is_linear_in_k(d, vocab, bits, k):
    assert cap.capacity_bits(d, bits, k) == k * cap.capacity_bits(d, bits, 1) == d * bits * k
    assert math.isclose(cap.capacity_tokens(d, vocab, bits, k), k * cap.capacity_tokens(d, vocab, bits, 1),
                        rel_tol=1e-12)


@given(d=dims, vocab=vocabs, bits=bits_, k=ks)
def test_capacity_is_monotone(d, vocab, bits, k):
    base = cap.capacity_tokens(d, vocab, bits, k)
    assert cap.capacity_tokens(d + 1, vocab, bits, k) > base
    assert cap.capacity_tokens(d, vocab, bits + 1, k) > base
    assert cap.capacity_tokens(d, vocab, bits, k + 1) > base
    assert cap.capacity_tokens(d, vocab + 1, bits, k) < base
    assert cap.capacity(d + 1, vocab, bits, k).capacity_tokens >= cap.capacity(d, vocab, bits, k).capacity_tokens


@given(d=dims, vocab=vocabs, bits=bits_, k=ks)
def test_capacity_rounds_to_nearest_token(d, vocab, bits, k):
    c = cap.capacity(d, vocab, bits, k)
    assert isinstance(c.capacity_tokens, int)
    assert abs(c.capacity_tokens - c.capacity_tokens_exact) <= 0.5
    assert c.capacity_tokens_exact == d * bits * k / math.log2(vocab)
    assert c.capacity_bits == d * bits * k


@given(x=st.floats(-1e12, 1e12, allow_nan=False))
def test_nats_bits_round_trip(x):
    assert math.isclose(cap.bits_to_nats(cap.nats_to_bits(x)), x, rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(cap.nats_to_bits(cap.bits_to_nats(x)), x, rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(cap.nats_to_bits(x), x / math.log(2), rel_tol=1e-12, abs_tol=1e-12)


@given(ce0=st.floats(0, 1e6), ce1=st.floats(0, 1e6))
def test_info_gain_units_agree(ce0, ce1):
    nats = cap.info_gain_nats(ce0, ce1)
    assert nats == ce0 - ce1
    assert math.isclose(cap.info_gain_bits(ce0, ce1), nats / math.log(2), rel_tol=1e-12, abs_tol=1e-9)


def test_capacity_anchor_from_the_paper():
    """Llama-3.1-8B: 4096 * 16 / log2(128256) = 3862 tokens in one vector."""
    assert cap.capacity_of("llama-3.1-8b").capacity_tokens == 3862
    assert cap.capacity_of("llama-3.1-8b", n_mem=2).capacity_tokens == 7724


# --- property tests: text sources give exactly N tokens -----------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def shortest_unseen(tokenizer):
    return min(len(encode(tokenizer, p["text"])) for p in unseen_passages())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), n_tokens=st.integers(2, 10_000), n_texts=st.integers(1, 4))
def test_unseen_texts_have_exactly_n_tokens(tokenizer, shortest_unseen, seed, n_tokens, n_texts):
    n_tokens = 2 + n_tokens % (shortest_unseen - 1)         # every length the bundled passages allow
    texts = get_texts(tokenizer, "unseen", n_tokens, n_texts=n_texts, seed=seed)
    assert len(texts) == n_texts and len({t.text_id for t in texts}) == n_texts
    for t in texts:
        assert t.n_tokens == len(t.token_ids) == n_tokens
        assert t.source == "unseen"
    assert [t.token_ids for t in get_texts(tokenizer, "unseen", n_tokens, n_texts=n_texts, seed=seed)] == \
        [t.token_ids for t in texts]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), n_tokens=st.integers(2, 1600), n_texts=st.integers(1, 3))
def test_random_texts_have_exactly_n_tokens(tokenizer, seed, n_tokens, n_texts):
    texts = get_texts(tokenizer, "random", n_tokens, n_texts=n_texts, seed=seed)
    assert len(texts) == n_texts
    for t in texts:
        assert t.n_tokens == len(t.token_ids) == n_tokens
        assert all(isinstance(i, int) for i in t.token_ids)
    assert [t.token_ids for t in get_texts(tokenizer, "random", n_tokens, n_texts=n_texts, seed=seed)] == \
        [t.token_ids for t in texts]


def test_random_texts_depend_on_the_seed(tokenizer):
    a = get_texts(tokenizer, "random", 32, seed=1)[0].token_ids
    b = get_texts(tokenizer, "random", 32, seed=2)[0].token_ids
    assert a != b

