"""Every mistake a learner can make ends in one clear line.

Each test checks both doors: the API raises the specific `CramlabError` subclass (with a one-line
message naming the problem and the fix), and the CLI exits non-zero printing exactly one line
`error: ...` and no traceback. The tiny random models keep these fast; none of them trains for long.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cramlab import cli
from cramlab.capacity import capacity_of
from cramlab.engine.plain import cram
from cramlab.engine.vectors import load_vectors, save_vectors
from cramlab.errors import (
    BadInputError,
    ContextTooLongError,
    CramlabError,
    DeviceError,
    FingerprintMismatchError,
    HubUnreachableError,
    OutputPathError,
    TextTooShortError,
    UnknownModelError,
    VectorFileError,
)
from cramlab.models.load import load_model
from cramlab.models.texts import first_tokens, from_file, get_texts

REPO = Path(__file__).resolve().parents[1]
TINY = "tiny-llama"


@pytest.fixture(scope="module")
def lm():
    return load_model(TINY, device="cpu")


@pytest.fixture(scope="module")
def crammed(lm):
    """One real (if untrained) result of the tiny model: two steps are enough for a vector file."""
    return cram(lm, [[19556, 905, 13, 9]], max_steps=2, check_every=1, progress=False)[0]


@pytest.fixture()
def vector_file(tmp_path, crammed, lm):
    return save_vectors(tmp_path / "good.safetensors", crammed, lm.spec)


def api_error(exc_type, fn, *args, match: str | None = None, **kwargs) -> str:
    """Call the API, expect exactly `exc_type` (a CramlabError), return its one-line message."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, CramlabError)
    msg = str(info.value)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    if match:
        assert match in msg, f"{match!r} not in {msg!r}"
    return msg


def cli_error(capsys, argv, match: str | None = None) -> str:
    """Run `cramlab ARGV` in-process: exit code 2 (as the README promises), stderr is one line
    `error: ...`, no traceback."""
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert rc == 2, f"exit code {rc} for {argv}; stdout={captured.out!r}"
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"stderr was {captured.err!r}"
    assert "Traceback" not in captured.err + captured.out
    if match:
        assert match in lines[0], f"{match!r} not in {lines[0]!r}"
    return lines[0]


def cli_subprocess_error(argv, env_extra=None, match: str | None = None) -> str:
    """The real entry point (`python -m cramlab`) in a fresh process."""
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run([sys.executable, "-m", "cramlab", *map(str, argv)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300, check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stdout)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0], f"something printed after the error: {proc.stderr!r}"
    if match:
        assert match in errors[0], errors[0]
    return errors[0]


CRAM = ["cram", "--model", TINY, "--device", "cpu", "--no-progress"]


# --- texts -------------------------------------------------------------------------------------------

def test_empty_text(lm, tmp_path, capsys):
    api_error(BadInputError, first_tokens, lm.tokenizer, "", 4, match="empty")
    api_error(BadInputError, first_tokens, lm.tokenizer, "   \n", 4, match="empty")
    api_error(BadInputError, cram, lm, [], progress=False, match="no texts")
    api_error(TextTooShortError, cram, lm, [[]], progress=False)
    cli_error(capsys, CRAM + ["--text", "", "--n-tokens", "4"], match="empty")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cli_error(capsys, CRAM + ["--text-file", empty, "--n-tokens", "4"], match="empty")


def test_text_shorter_than_two_tokens(lm, capsys):
    api_error(TextTooShortError, cram, lm, [[26843]], protocol="hc", progress=False, match="at least 2")
    api_error(BadInputError, first_tokens, lm.tokenizer, "Hi there you", 1, match=">= 2")
    api_error(BadInputError, get_texts, lm.tokenizer, "unseen", 1, match=">= 2")
    cli_error(capsys, CRAM + ["--text", "Hi", "--n-tokens", "2"], match="has 1 tokens")
    cli_error(capsys, CRAM + ["--text", "Hi there you", "--n-tokens", "1"], match=">= 2")


def test_text_shorter_than_n(lm, tmp_path, capsys):
    api_error(TextTooShortError, first_tokens, lm.tokenizer, "Hello world", 16, match="--n-tokens 2 or less")
    short = tmp_path / "short.txt"
    short.write_text("Hello world")
    api_error(TextTooShortError, from_file, lm.tokenizer, short, 16)
    cli_error(capsys, CRAM + ["--text", "Hello world", "--n-tokens", "16"], match="has 2 tokens but n_tokens=16")
    cli_error(capsys, CRAM + ["--text-file", short, "--n-tokens", "16"], match="short.txt")
    # the bundled passages are a few hundred tokens: asking for far more is refused the same way
    api_error(TextTooShortError, get_texts, lm.tokenizer, "unseen", 5000)


def test_n_plus_k_beyond_context(lm, capsys):
    context = lm.spec.context_length          # 512 for the tiny models
    too_long = list(range(100, 100 + context - 2))
    calls = []
    # k=2 plus the sink token overflows; a shorter text in the same call must not have been crammed first
    msg = api_error(ContextTooLongError, cram, lm, [[5, 6, 7], too_long], n_mem=2, progress=False,
                    check_every=1, callback=calls.append)
    assert f"use --n-tokens {context - 3} or less" in msg
    assert calls == [], "a group ran before the context check"
    api_error(ContextTooLongError, cram, lm, [too_long + [1, 2, 3]], layout="mem-first", progress=False)
    cli_error(capsys, CRAM + ["--source", "random", "--n-tokens", context, "--max-steps", 1], match="context")


@pytest.mark.parametrize("argv, match", [
    (["--text", "", "--n-tokens", "4"], "empty"),
    (["--text", "   ", "--n-tokens", "4"], "empty"),
    (["--text", "Hello world", "--n-tokens", "1"], ">= 2"),
    (["--text-file", "no/such/file.txt", "--n-tokens", "4"], "not found"),
    (["--source", "unseen", "--n-texts", "0", "--n-tokens", "4"], "n_texts"),
    (["--text", "Hello world", "--n-tokens", "2", "--n-mem", "0"], "n_mem"),
    (["--text", "Hello world", "--n-tokens", "2", "--lr", "0"], "lr must be"),
    (["--text", "Hello world", "--n-tokens", "2", "--max-steps", "0"], "max_steps"),
    (["--text", "Hello world", "--n-tokens", "2", "--patience", "0"], "patience"),
    (["--text", "Hello world", "--n-tokens", "2", "--out", "/proc/no-such-folder"], "--out"),
])
def test_cram_mistakes_known_without_the_model_are_reported_before_it_loads(monkeypatch, capsys, argv, match):
    """`cramlab cram --text ''` must not first wait for the model's de-quantisation."""
    import cramlab.models.load

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the mistake was reported")
    monkeypatch.setattr(cramlab.models.load, "load_model", no_model)
    cli_error(capsys, ["cram", "--device", "cpu", "--no-progress", *argv], match=match)


def test_argument_errors_exit_with_code_2_too(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["cram", "--text", "Hello"])           # --n-tokens missing: argparse's own error
    assert info.value.code == 2


# --- optimisation settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("n_mem", [0, -1, 1.5, True])
def test_n_mem_below_one(lm, capsys, n_mem):
    api_error(BadInputError, cram, lm, [[5, 6, 7]], n_mem=n_mem, progress=False, match="n_mem")
    if isinstance(n_mem, int) and not isinstance(n_mem, bool):
        cli_error(capsys, CRAM + ["--text", "Hello world", "--n-tokens", 2, f"--n-mem={n_mem}"], match="n_mem")


@pytest.mark.parametrize("lr", [0.0, -1e-2, math.nan, math.inf, -math.inf])
def test_bad_learning_rate(lm, capsys, lr):
    api_error(BadInputError, cram, lm, [[5, 6, 7]], lr=lr, progress=False, match="lr must be a finite number > 0")
    cli_error(capsys, CRAM + ["--text", "Hello world", "--n-tokens", 2, f"--lr={lr}"], match="lr must be")


@pytest.mark.parametrize("max_steps", [0, -5])
def test_max_steps_below_one(lm, capsys, max_steps):
    api_error(BadInputError, cram, lm, [[5, 6, 7]], max_steps=max_steps, progress=False, match="max_steps")
    cli_error(capsys, CRAM + ["--text", "Hello world", "--n-tokens", 2, f"--max-steps={max_steps}"],
              match="max_steps must be an integer >= 1")


# --- models, devices, dtypes -------------------------------------------------------------------------

def test_unknown_model_suggests_close_names(capsys):
    api_error(UnknownModelError, load_model, "pythia-16m", device="cpu", match="did you mean pythia-160m")
    api_error(UnknownModelError, load_model, "tiny-lama", device="cpu", match="tiny-llama")
    api_error(UnknownModelError, capacity_of, "smollm-135m", match="smollm2-135m")
    api_error(UnknownModelError, load_model, "./no/such/model-folder", device="cpu", match="not found")
    cli_error(capsys, CRAM[:1] + ["--model", "pythia-16m", "--text", "Hello world", "--n-tokens", 2],
              match="did you mean pythia-160m")
    cli_error(capsys, ["capacity", "--model", "pythia-16m"], match="did you mean pythia-160m")
    cli_subprocess_error(["capacity", "--model", "lama-3.2-1b"], match="llama-3.2-1b")


def test_hub_id_while_offline(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")   # offline even where the hub would answer
    api_error(HubUnreachableError, load_model, "cramlab-tests/not-cached-anywhere", device="cpu",
              match="--model DIR")
    api_error(HubUnreachableError, load_model, "pythia-160m", device="cpu", match="EleutherAI/pythia-160m")
    cli_error(capsys, ["cram", "--model", "cramlab-tests/not-cached-anywhere", "--device", "cpu", "--text",
                       "Hello world", "--n-tokens", 2], match="cannot reach the Hugging Face hub")
    # a fresh process, offline by environment, with an empty hub cache: fails at once with the same line
    cli_subprocess_error(["cram", "--model", "EleutherAI/pythia-160m", "--device", "cpu", "--text", "Hello world",
                          "--n-tokens", "2"], env_extra={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
                         match="cannot reach the Hugging Face hub to download 'EleutherAI/pythia-160m'")


def test_cuda_without_gpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    api_error(DeviceError, load_model, TINY, device="cuda", match="--device cpu")
    api_error(DeviceError, load_model, TINY, device="cuda:1", match="no CUDA GPU")
    api_error(DeviceError, load_model, TINY, device="tpu", match="unknown device")
    cli_error(capsys, ["cram", "--model", TINY, "--device", "cuda", "--text", "Hello world", "--n-tokens", 2],
              match="no CUDA GPU is visible")


def test_dtype_the_device_cannot_run(lm, capsys):
    api_error(DeviceError, load_model, TINY, device="cpu", dtype="float16", match="--dtype float32")
    api_error(BadInputError, load_model, TINY, device="cpu", dtype="int8", match="unknown dtype")
    api_error(BadInputError, cram, lm, [[5, 6, 7]], dtype="bogus", progress=False, match="unknown dtype 'bogus'")
    cli_error(capsys, CRAM + ["--dtype", "float16", "--text", "Hello world", "--n-tokens", 2],
              match="float16 training is not supported on CPU")
    cli_error(capsys, CRAM + ["--dtype", "int8", "--text", "Hello world", "--n-tokens", 2], match="unknown dtype")


# --- vector files ------------------------------------------------------------------------------------

def test_good_vector_file_loads_and_decodes(vector_file, lm, crammed, capsys):
    """The control for the tests below: an intact file passes every check."""
    vf = load_vectors(vector_file, lm.spec)
    assert torch.equal(vf.vectors, crammed.vectors)
    assert cli.main(["decode", str(vector_file), "--model", TINY, "--device", "cpu"]) == 0


def test_corrupt_vector_file(vector_file, tmp_path, lm, capsys):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a safetensors file at all" * 3)
    api_error(VectorFileError, load_vectors, garbage, lm.spec, match="truncated or corrupt")
    cli_error(capsys, ["decode", garbage, "--model", TINY, "--device", "cpu"], match="not a readable vector file")
    # one flipped byte inside the tensor data: safetensors cannot see it, the checksum can
    data = bytearray(vector_file.read_bytes())
    data[-3] ^= 0xFF
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(data))
    api_error(VectorFileError, load_vectors, flipped, lm.spec, match="checksum")
    cli_error(capsys, ["decode", flipped, "--model", TINY, "--device", "cpu"], match="corrupt")
    api_error(VectorFileError, load_vectors, tmp_path / "missing.safetensors", match="not found")


def test_truncated_vector_file(vector_file, tmp_path, lm, capsys):
    data = vector_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 8, 5):
        short = tmp_path / f"cut{cut}.safetensors"
        short.write_bytes(data[:cut])
        api_error(VectorFileError, load_vectors, short, lm.spec, match="truncated")
        cli_error(capsys, ["decode", short, "--model", TINY, "--device", "cpu"], match="truncated or corrupt")


def test_vector_file_for_another_model(tmp_path, crammed, lm, capsys):
    other = dataclasses.replace(crammed, settings={**crammed.settings, "model": "tiny-gptneox",
                                                   "fingerprint": "0123456789abcdef"})
    path = save_vectors(tmp_path / "other.safetensors", other)
    api_error(FingerprintMismatchError, load_vectors, path, lm.spec, match="--force")
    cli_error(capsys, ["decode", path, "--model", TINY, "--device", "cpu"], match="was made for tiny-gptneox")
    assert load_vectors(path, lm.spec, force=True).meta["model"] == "tiny-gptneox"   # --force still works
    assert cli.main(["decode", str(path), "--model", TINY, "--device", "cpu", "--force"]) == 0


def test_vector_file_n_mem_or_d_mismatch(tmp_path, crammed, lm, capsys):
    from safetensors.torch import save_file
    good_meta = load_vectors(save_vectors(tmp_path / "g.safetensors", crammed, lm.spec)).meta
    # metadata says 2 vectors, the tensor holds 1: damaged
    lying = tmp_path / "lying.safetensors"
    save_file({"vectors": crammed.vectors.clone()}, str(lying),
              metadata={"cramlab": __import__("json").dumps({**good_meta, "n_mem": 2, "vectors_sha256": None})})
    api_error(VectorFileError, load_vectors, lying, match="do not match n_mem=2")
    cli_error(capsys, ["decode", lying, "--model", TINY, "--device", "cpu"], match="damaged")
    # vectors of another width than the model's d
    narrow = dataclasses.replace(crammed, vectors=torch.zeros(1, 32))
    path = save_vectors(tmp_path / "narrow.safetensors", narrow, lm.spec)
    api_error(VectorFileError, load_vectors, path, lm.spec, match="size 32 but model tiny-llama takes 64")
    cli_error(capsys, ["decode", path, "--model", TINY, "--device", "cpu"], match="vectors of size 32")
    # warm-starting from a file with another n_mem (or d) than the run asks for
    k1 = load_vectors(save_vectors(tmp_path / "k1.safetensors", crammed, lm.spec), lm.spec).vectors
    api_error(BadInputError, cram, lm, [[5, 6, 7]], n_mem=2, init_vectors=k1, progress=False, match="n_mem=2")
    api_error(BadInputError, cram, lm, [[5, 6, 7]], init_vectors=torch.zeros(1, 32), progress=False, match="d=64")


# --- output paths ------------------------------------------------------------------------------------

def test_output_path_cannot_be_written(tmp_path, crammed, lm, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where a folder should be")
    api_error(OutputPathError, save_vectors, blocker / "v.safetensors", crammed, lm.spec, match="cannot write")
    assert blocker.read_text() == "a file where a folder should be"
    cli_error(capsys, CRAM + ["--text", "Hello world", "--n-tokens", 2, "--max-steps", 1, "--out", blocker / "sub"],
              match="cannot create output folder")
    cli_error(capsys, CRAM + ["--text", "Hello world", "--n-tokens", 2, "--max-steps", 1, "--out", blocker],
              match="choose another --out")


# --- the README's Troubleshooting table quotes what the code really prints ----------------------------------

def _readme_patterns() -> list[str]:
    """The `error: ...` messages quoted in README's Troubleshooting table ('...' stands for any text).
    Rows about sweep configs belong to cramlab.science.sweep and are checked by its tests."""
    import re
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Troubleshooting")
    end = readme.find("\n## ", start + 5)
    section = readme[start:end if end != -1 else None]
    patterns = []
    for line in section.splitlines():
        if not line.startswith("| `error:"):
            continue
        first_column = line.split(" | ")[0]
        if "sweep" in first_column.lower():
            continue
        patterns += [p for p in re.findall(r"`(error:[^`]*)`", first_column)]
    return patterns


def _matches(pattern: str, message: str) -> bool:
    """Every literal piece of the pattern, in order, in the message; the first piece at its start."""
    pieces = [p.strip() for p in pattern.split("...")]
    if not message.startswith(pieces[0]):
        return False
    pos = len(pieces[0])
    for piece in pieces[1:]:
        if piece:
            pos = message.find(piece, pos)
            if pos < 0:
                return False
            pos += len(piece)
    return True


def test_readme_troubleshooting_messages_are_what_the_code_prints(lm, crammed, tmp_path, capsys, monkeypatch):
    produced: list[str] = []

    def via_cli(*argv):
        produced.append(cli_error(capsys, list(argv)))

    def via_api(fn, *args, **kwargs):
        with pytest.raises(CramlabError) as info:
            fn(*args, **kwargs)
        produced.append(f"error: {info.value}")

    text9 = "The ferry clock stopped at nine last night."
    via_cli(*CRAM, "--text", "", "--n-tokens", 4)
    via_cli(*CRAM, "--text", text9, "--n-tokens", 16)
    via_cli(*CRAM, "--text", text9, "--n-tokens", 1)
    via_cli(*CRAM, "--source", "random", "--n-tokens", lm.spec.context_length)
    via_cli(*CRAM, "--text", text9, "--n-tokens", 4, "--n-mem", 0)
    via_cli(*CRAM, "--text", text9, "--n-tokens", 4, "--max-steps", 0)
    via_cli(*CRAM, "--text", text9, "--n-tokens", 4, "--lr", 0)
    via_cli("cram", "--model", "pythia-16m", "--text", text9, "--n-tokens", 4)
    via_cli("cram", "--model", "./no/such/folder", "--text", text9, "--n-tokens", 4)
    via_cli(*CRAM, "--dtype", "float16", "--text", text9, "--n-tokens", 4)
    via_cli(*CRAM, "--dtype", "int8", "--text", text9, "--n-tokens", 4)
    with monkeypatch.context() as m:
        m.setenv("HF_HUB_OFFLINE", "1")
        via_cli("cram", "--model", "EleutherAI/pythia-160m", "--device", "cpu", "--text", text9, "--n-tokens", 4)
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: False)
        via_cli("cram", "--model", TINY, "--device", "cuda", "--text", text9, "--n-tokens", 4)
    # vector files
    other = dataclasses.replace(crammed, settings={**crammed.settings, "model": "smollm2-135m",
                                                   "fingerprint": "0123456789abcdef"})
    via_cli("decode", save_vectors(tmp_path / "other.safetensors", other), "--model", TINY, "--device", "cpu")
    narrow = dataclasses.replace(crammed, vectors=torch.zeros(1, 32))
    via_cli("decode", save_vectors(tmp_path / "narrow.safetensors", narrow), "--model", TINY, "--device", "cpu")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a vector file" * 8)
    via_cli("decode", garbage, "--model", TINY, "--device", "cpu")
    good = save_vectors(tmp_path / "good.safetensors", crammed, lm.spec)
    data = bytearray(good.read_bytes())
    data[-1] ^= 0x55
    good.write_bytes(bytes(data))
    via_cli("decode", good, "--model", TINY, "--device", "cpu")
    # output paths
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    via_cli(*CRAM, "--text", text9, "--n-tokens", 4, "--out", blocker / "sub")
    with monkeypatch.context() as m:
        m.setattr(os, "access", lambda *a, **k: False)
        via_cli(*CRAM, "--text", text9, "--n-tokens", 4, "--out", tmp_path / "read-only")
    via_api(save_vectors, blocker / "v.safetensors", crammed, lm.spec)
    # Ctrl-C during `cramlab cram`
    capsys.readouterr()
    assert cli.basic._cram_exit_code([dataclasses.replace(crammed, stop_reason="interrupted")]) == 130
    produced.append(capsys.readouterr().err.strip())

    patterns = _readme_patterns()
    assert len(patterns) >= 15, patterns
    unmatched = [p for p in patterns if not any(_matches(p, msg) for msg in produced)]
    assert not unmatched, "README quotes messages the code does not print:\n" + "\n".join(
        unmatched) + "\n\nthe code printed:\n" + "\n".join(produced)


# --- decode raises BadInputError like the rest of the package ------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(layout="middle"), "unknown layout 'middle'; use one of sink-first, mem-first"),
    (dict(protocol="xx"), "unknown protocol 'xx'; use one of pc, hc"),
    (dict(protocol="hc"), "pass first_token_id"),
    (dict(n_tokens=0), "n_tokens must be an integer >= 1"),
    (dict(n_tokens=2.5), "n_tokens must be an integer >= 1"),
    (dict(vectors_shape=(1, 7)), "vectors must be k x"),
    (dict(vectors_shape=(4,)), "vectors must be k x"),
])
def test_decode_bad_arguments_raise_bad_input(lm, kwargs, match):
    from cramlab.engine.decode import decode
    shape = kwargs.pop("vectors_shape", (1, lm.spec.d))
    kwargs.setdefault("n_tokens", 4)
    with pytest.raises(BadInputError, match=re.escape(match)):
        decode(lm, torch.zeros(shape), **kwargs)


def test_decode_without_a_sink_token_id_is_bad_input(lm):
    from cramlab.engine.decode import decode
    with pytest.raises(BadInputError, match="needs sink_token_id"):
        decode(lm.model, torch.zeros(1, lm.spec.d), 4)          # a bare model: no spec to take the sink from
