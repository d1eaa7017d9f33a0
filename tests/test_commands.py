"""The commands of the README's first screen, run as a learner runs them: `python -m cramlab ...` in a new
process each, on the embedded model, checking what they print, not only their exit codes.

- `cramlab env` names the versions and finds the embedded model.
- `cramlab demo` exits 0 and prints an exact greedy decode.
- `cramlab cram --out D --json` under `mem-first`/`hc` prints every documented key; `cramlab decode
  D/<file> --json` in another process (the model taken from the file's metadata, the first token given
  as the prompt `hc` needs) gives the crammed text back. The `pc`/sink-first round trip through a second
  process is tests/test_practice.py's privacy check.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cramlab.cli.basic import CRAM_JSON_KEYS

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv, timeout=900) -> subprocess.CompletedProcess:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-m", "cramlab", *map(str, argv)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout, check=False)


def test_env_names_the_versions_and_finds_the_embedded_model():
    proc = run_cli("env", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    import torch
    import transformers
    assert report["torch"] == torch.__version__ and report["transformers"] == transformers.__version__
    embedded = str(report["embedded_model"])
    assert embedded.endswith(".gguf") and Path(embedded).is_file(), report


def test_demo_exits_0_and_prints_an_exact_greedy_decode():
    proc = run_cli("demo", "--n-tokens", 8)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "greedy exact     True" in proc.stdout, proc.stdout
    text_line = next(line for line in proc.stdout.splitlines() if line.startswith("text ("))
    decoded_line = next(line for line in proc.stdout.splitlines() if line.startswith("decoded back"))
    # the decoded text printed is the crammed text printed (both as Python reprs)
    assert text_line.split(": ", 1)[1] == decoded_line.split(None, 2)[2], (text_line, decoded_line)


def test_cram_hc_mem_first_then_decode_in_a_new_process(tmp_path):
    out = tmp_path / "vectors"
    proc = run_cli("cram", "--source", "unseen", "--n-tokens", 8, "--layout", "mem-first", "--protocol", "hc",
                   "--lr", 0.1, "--max-steps", 600, "--device", "cpu", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert len(rows) == 1 and set(rows[0]) == set(CRAM_JSON_KEYS)      # every documented key, nothing else
    row = rows[0]
    assert row["converged"] and row["greedy_exact"], row
    files = sorted(out.glob("*.safetensors"))
    assert len(files) == 1
    crammed = json.loads((out / "results.json").read_text())[0]
    assert crammed["settings"]["layout"] == "mem-first" and crammed["settings"]["protocol"] == "hc"

    decoded = run_cli("decode", files[0], "--device", "cpu", "--json")    # no --model: the file names it
    assert decoded.returncode == 0, decoded.stderr[-2000:]
    back = json.loads(decoded.stdout)
    assert back["matches_crammed_text"] is True
    assert back["token_ids"] == crammed["token_ids"]
    assert back["text"] == crammed["decoded_text"] != ""


@pytest.mark.parametrize("argv", [["cram", "--text", "", "--n-tokens", "4"],
                                  ["decode", "no-such-file.safetensors"]])
def test_mistakes_exit_2_in_a_new_process(argv):
    proc = run_cli(*argv, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
