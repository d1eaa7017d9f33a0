"""Privacy: a crammed vector is the text, to anyone who holds the public model.

Owns: writing a PoC's vector files without the token ids (only the vectors and how to decode them) and
the check that a separate process, given nothing but such a file and the model name, decodes the text
(`python -m cramlab decode FILE --model NAME --json`). What follows from it: treat vectors like plaintext
(encryption at rest, access control), not as an obscured or anonymised form of the records.
Does not own: the vector file format (`cramlab.engine.vectors`) or the decode command (`cramlab.cli`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

TEXT_META_KEYS = ("token_ids", "text_sha256", "first_token_id")   # kept out of the PoC's vector files


def save_vectors_without_text(path: Path, result, spec) -> Path:
    """The kit's vector file (cramlab.engine.vectors) minus the token ids: only the vectors and how to decode them,
    so the file on disk is what a PoC would store and what the privacy check decodes. One write per file."""
    from cramlab.engine.vectors import save_vectors
    # hc cannot decode without t_1: its files keep just that one id
    omit = tuple(k for k in TEXT_META_KEYS if not (k == "first_token_id" and result.settings.get("protocol") == "hc"))
    return save_vectors(path, result, spec, omit=omit)


def privacy_check(vector_file, model_name: str, expected_text: str, timeout_s: float = 600) -> dict:
    """Decode a vector file in a separate process that is given nothing but the file and the model name
    (`python -m cramlab decode FILE --model NAME --json`); compare with the text crammed into it."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "cramlab", "decode", str(vector_file), "--model", model_name, "--device", "cpu",
           "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"ok": False, "error": (proc.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    text = json.loads(proc.stdout)["text"]
    return {"ok": text == expected_text, "decoded_text": text, "expected_text": expected_text,
            "command": " ".join(["cramlab"] + cmd[3:]), "seconds": seconds}
