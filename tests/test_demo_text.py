"""The README's `make demo`, as a learner runs it: `cramlab demo` with no arguments on the embedded model.

Owns: the end-to-end check of the demo's own 16-token text (tests/test_commands.py runs the command on an
8-token stand-in within `make test`'s budget). Slow: about a minute of cramming on a 2-core CPU.
"""
import subprocess
import sys

import pytest

from cramlab.engine.settings import CramSettings
from cramlab.models.texts import get_texts

pytestmark = pytest.mark.slow


def test_make_demo_crams_its_16_token_text_and_decodes_it_back_exactly(embedded):
    # what the demo must cram, known before it runs: the README's 16 tokens, the first unseen text, the kit's seed
    text = get_texts(embedded.tokenizer, "unseen", 16, n_texts=1, seed=CramSettings().seed)[0]
    proc = subprocess.run([sys.executable, "-m", "cramlab", "demo"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert f"text ({text.text_id}, 16 tokens): {text.text!r}" in lines, proc.stdout
    decoded = next(line for line in lines if line.startswith("decoded back"))
    assert decoded.split(None, 2)[2] == repr(text.text), (decoded, text.text)   # greedy decode == the text
    assert "greedy exact     True" in lines, proc.stdout
