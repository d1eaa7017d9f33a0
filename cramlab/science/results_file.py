"""The results file of a sweep: one JSON line per finished job, appended, fsynced, merged, read back.

Owns: the job key (KEY_FIELDS, `job_key`), the fields kept on every line (LINE_FIELDS), appending whole
lines with one write + fsync (`append_lines`), reading a file back and repairing a last line cut by a
kill (`read_results`), the per-rank part files of a torchrun sweep and their merge (`part_path`,
`part_files`, `merge_parts`), and the check that a file holds results of one set of settings
(`settings_digest`, `check_same_settings`).

Does not own: what a sweep runs or how (cramlab.science.sweep), the settings themselves (they come in as a plain
dict), or what the lines mean (cramlab.science.report). It imports nothing of cramlab but its errors.

Why a kill loses nothing: every batch is written with ONE `write()` of whole lines, then fsynced; on
start the file is read back; a last line without its newline (or that does not parse) was cut by a kill
and is truncated away; a broken line anywhere else is an error (the file was edited).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cramlab.errors import ConfigError, CramlabError

#: What identifies one job (one text crammed at one length): a results file holds one line per key.
KEY_FIELDS = ("model", "source", "layout", "protocol", "n_mem", "n_tokens", "text_id")
#: Cram fields kept on every line (history only with keep_history: it is long); `settings` is the
#: CramSettings record (preset and every knob) the job was crammed with.
LINE_FIELDS = ("n_tokens", "n_mem", "token_ids", "steps", "converged", "teacher_forced_accuracy",
               "baseline_accuracy", "baseline_ce_nats", "final_ce_nats", "baseline_ce_per_token_nats",
               "final_ce_per_token_nats", "n_scored", "info_gain_nats", "info_gain_bits", "gain_tokens",
               "greedy_exact", "first_mismatch", "decoded_text", "seconds", "stop_reason", "failed_step", "settings")


class ResultsFileError(CramlabError):
    """A results file is broken in the middle (not just a half-written last line)."""


def job_key(line: dict) -> tuple:
    """The KEY_FIELDS of a result line, as a tuple (KeyError when one is missing)."""
    return tuple(line[k] for k in KEY_FIELDS)


def read_results(path: str | os.PathLike, repair: bool = True, skip_broken: bool = False) -> list[dict]:
    """The lines of a results file. A cut last line (no newline, or not JSON) is truncated away when
    `repair` (else ignored); a broken line before the last one raises ResultsFileError, unless
    `skip_broken` (for part files, which are scratch: their broken lines are dropped and those jobs redone)."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()                    # b"" when the file ends with a newline
    out, keep_bytes = [], 0               # keep_bytes: the end of the last whole line kept or skipped
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError
            job_key(row)
        except (ValueError, KeyError, UnicodeDecodeError):
            if i == len(lines) - 1 and not tail:
                break                     # the last full line is broken: treat it as cut
            if not skip_broken:
                raise ResultsFileError(f"{path} line {i + 1} is not a result line; the file was edited or "
                                       "mixed with another file: move it away or fix that line") from None
        else:
            out.append(row)
        keep_bytes += len(line) + 1
    if keep_bytes < len(raw) and repair:
        with open(path, "r+b") as f:      # drop the half-written tail (an append must start on a new line)
            f.truncate(keep_bytes)
            f.flush()
            os.fsync(f.fileno())
    return out


def append_lines(path: Path, rows: list[dict]) -> None:
    """Append whole lines with one write, then fsync: a kill leaves at most one cut last line."""
    if not rows:
        return
    data = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def part_path(out: Path, rank: int) -> Path:
    """The part file rank `rank` of a torchrun sweep appends to: `<out>.rank<R>.jsonl`."""
    return out.with_name(f"{out.name}.rank{rank}.jsonl")


def part_files(out: Path) -> list[Path]:
    """The part files of `out` left on disk (by a running or a killed multi-process sweep)."""
    return sorted(out.parent.glob(f"{out.name}.rank*.jsonl"))


def merge_parts(out: Path) -> int:
    """Append the lines of the part files that `out` does not have yet; remove the parts. Returns lines added."""
    have = {job_key(r) for r in read_results(out)}
    added = 0
    for part in part_files(out):
        new = []
        for row in read_results(part, repair=False, skip_broken=True):
            if job_key(row) not in have:
                have.add(job_key(row))
                new.append(row)
        append_lines(out, new)
        added += len(new)
        part.unlink()
    return added


def settings_digest(settings: dict) -> str:
    """A short hash of the settings that change a job's result (stored on every line)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def check_same_settings(rows: list[dict], settings: dict, out: Path) -> None:
    """ConfigError when a line of `out` was made with other result-changing `settings` than these."""
    digest = settings_digest(settings)
    for row in rows:
        if row.get("settings_digest") != digest:
            theirs = row.get("sweep_settings", {})
            diff = [f"{k} {theirs.get(k)!r} there, {v!r} now" for k, v in settings.items()
                    if theirs.get(k) != v]
            raise ConfigError(f"{out} holds results made with other settings ({'; '.join(diff) or 'unknown'}); "
                              "use another --out, or the same settings to resume")
