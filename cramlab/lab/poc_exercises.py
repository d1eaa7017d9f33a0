"""Checks for the exercises of notebook 09 (in practice), in the style of `cramlab.lab.exercises`.

Owns only the two checks; the reference answers come from the learner's own run, never typed in.
"""
from __future__ import annotations

import math

from cramlab.lab.exercises import _close, _report, _unanswered


def check_token_id_bytes(answer, record: dict, vocab_size: int) -> bool:
    """Exercise 1: bytes of a document's token ids at ceil(log2 |V|) bits per id."""
    if _unanswered(answer):
        return False
    bits = math.ceil(math.log2(vocab_size))
    ref = math.ceil(record["n_tokens"] * bits / 8)
    return _report(_close(answer, ref, rel=0.0, abs_tol=0.5), f"{ref} bytes: {record['n_tokens']} ids x {bits} bits",
                   f"not {answer}: each id takes ceil(log2 {vocab_size}) = {bits} bits; multiply, then round the "
                   "bytes up")


def check_smallest_method(answer, summary) -> bool:
    """Exercise 2: the name of the smallest per-document representation in the learner's run."""
    if _unanswered(answer):
        return False
    ref = summary.smallest_method
    sizes = {k.removeprefix("bytes_"): v for k, v in summary.to_dict().items()
             if k.startswith("bytes_") and v is not None}
    return _report(str(answer).strip().lower().replace("bytes_", "") == ref,
                   f"{ref}: {sizes.get(ref, '?')} bytes", f"not {answer!r}: compare the byte figures {sizes}")
