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


def start_privacy_check(vector_file, model_name: str, expected_text: str) -> dict:
    """Start the separate decode (`python -m cramlab decode FILE --model NAME --json`, on the CPU) and return at
    once, so the caller can do other work while it runs (the PoC overlaps it with its search phase, which uses the
    GPU); `finish_privacy_check` collects it."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "cramlab", "decode", str(vector_file), "--model", model_name, "--device", "cpu",
           "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return {"proc": proc, "cmd": cmd, "expected_text": expected_text, "started": time.perf_counter()}


def finish_privacy_check(started: dict, timeout_s: float = 600) -> dict:
    """Wait for a `start_privacy_check` process; compare what it decoded with the text crammed into the file.
    `seconds` is the process's own wall time, from its start."""
    proc = started["proc"]
    try:
        stdout, stderr = proc.communicate(timeout=max(0.0, timeout_s - (time.perf_counter() - started["started"])))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"ok": False, "error": f"the decode process did not finish in {timeout_s:.0f} s",
                "seconds": time.perf_counter() - started["started"]}
    seconds = time.perf_counter() - started["started"]
    if proc.returncode != 0:
        return {"ok": False, "error": (stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    text = json.loads(stdout)["text"]
    return {"ok": text == started["expected_text"], "decoded_text": text, "expected_text": started["expected_text"],
            "command": " ".join(["cramlab"] + started["cmd"][3:]), "seconds": seconds}


def privacy_check(vector_file, model_name: str, expected_text: str, timeout_s: float = 600) -> dict:
    """Decode a vector file in a separate process that is given nothing but the file and the model name
    (`python -m cramlab decode FILE --model NAME --json`); compare with the text crammed into it."""
    return finish_privacy_check(start_privacy_check(vector_file, model_name, expected_text), timeout_s)
