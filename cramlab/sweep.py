"""Sweeps: models x sources x layouts x protocols x n_mem x lengths x texts, one JSON line per finished job.

A job is one text crammed at one length: its key is (model, source, layout, protocol, n_mem, n_tokens,
text_id). `run_sweep` appends a line to the results file as soon as a batch of jobs finishes and skips
the jobs already there, so a sweep killed at any moment (even SIGKILL) and started again loses nothing
and repeats nothing:

- every batch is written with ONE `write()` of whole lines, then flushed and fsynced;
- on start the file is read back; a last line without its newline (or that does not parse) was cut by a
  kill and is truncated away; a broken line anywhere else is an error (the file was edited);
- the results of every job are deterministic per text (cram seeds its init from the seed and the text),
  so a job redone after a kill gives the same numbers.

Multi-process (`torchrun --nproc-per-node=G -m cramlab sweep ...`): every rank builds the same job list,
takes every G-th pending text of each (model, source, layout, protocol, n_mem, length) group, loads the
model once, crams its share in batches and appends to its own part file `<out>.rank<R>.jsonl`. After a
barrier (gloo on CPU, nccl on GPU) rank 0 merges the part files into `<out>` (skipping keys already
there) and removes them. A kill during the merge is harmless: the next run merges the leftovers.

`report(path)` turns a results file into the paper's Table 1 columns (see `cramlab.paper`).
"""
from __future__ import annotations

import csv
import datetime as _dt
import difflib
import hashlib
import io
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import BadInputError, ConfigError, CramlabError, OutputPathError

KEY_FIELDS = ("model", "source", "layout", "protocol", "n_mem", "n_tokens", "text_id")
#: Settings that change a job's result: a results file holds one value of each.
RESULT_SETTINGS = ("max_steps", "lr", "patience", "target_accuracy", "check_every", "seed", "dtype", "decode")
#: Cram fields kept on every line (history only with keep_history: it is long).
LINE_FIELDS = ("n_tokens", "n_mem", "token_ids", "steps", "converged", "teacher_forced_accuracy",
               "baseline_accuracy", "baseline_ce_nats", "final_ce_nats", "baseline_ce_per_token_nats",
               "final_ce_per_token_nats", "n_scored", "info_gain_nats", "info_gain_bits", "gain_tokens",
               "greedy_exact", "first_mismatch", "decoded_text", "seconds", "stop_reason", "failed_step")


class ResultsFileError(CramlabError):
    """A results file is broken in the middle (not just a half-written last line)."""


# --- configuration -------------------------------------------------------------------------------------

@dataclass
class SweepConfig:
    """What a sweep runs. Every field may come from a YAML/JSON file or from CLI flags."""
    models: list[str] = field(default_factory=lambda: ["smollm2-135m"])
    sources: list[str] = field(default_factory=lambda: ["unseen"])
    lengths: list[int] = field(default_factory=lambda: [8, 16, 32])
    n_mem: list[int] = field(default_factory=lambda: [1])
    layouts: list[str] = field(default_factory=lambda: ["sink-first"])
    protocols: list[str] = field(default_factory=lambda: ["pc"])
    n_texts: int = 4
    seed: int = 0
    batch_size: int = 16              # texts crammed together (same model, source, length, n_mem)
    max_steps: int = 2000
    lr: float = 1e-2
    patience: int | None = None
    target_accuracy: float = 1.0
    check_every: int = 10
    device: str = "auto"
    dtype: str | None = None
    decode: bool = True               # greedy decode every result ("back again")
    engine: str = "auto"              # cram's engine: auto (fast on a GPU), plain or fast
    keep_history: bool = False        # keep the per-step loss/accuracy history on every line

    def to_dict(self) -> dict:
        return asdict(self)

    def result_settings(self) -> dict:
        return {k: getattr(self, k) for k in RESULT_SETTINGS}


# field name -> (kind, example) ; kinds: str, int, float, bool, list[str], list[int], optional variants
_TYPES = {
    "models": ("list[str]", "models: [smollm2-135m]"), "sources": ("list[str]", "sources: [unseen, random]"),
    "lengths": ("list[int]", "lengths: [8, 16, 32]"), "n_mem": ("list[int]", "n_mem: [1, 2]"),
    "layouts": ("list[str]", "layouts: [sink-first, mem-first]"), "protocols": ("list[str]", "protocols: [pc, hc]"),
    "n_texts": ("int", "n_texts: 8"), "seed": ("int", "seed: 0"), "batch_size": ("int", "batch_size: 16"),
    "max_steps": ("int", "max_steps: 2000"), "lr": ("float", "lr: 0.01"), "patience": ("int?", "patience: 500"),
    "target_accuracy": ("float", "target_accuracy: 1.0"), "check_every": ("int", "check_every: 10"),
    "device": ("str", "device: cuda"), "dtype": ("str?", "dtype: bfloat16"), "decode": ("bool", "decode: true"),
    "keep_history": ("bool", "keep_history: false"), "engine": ("str", "engine: auto"),
}


def load_config(path: str | os.PathLike | None = None, **overrides) -> SweepConfig:
    """Read a YAML or JSON config (or none), apply `overrides` (None values ignored), validate."""
    data: dict = {}
    where = "the command line"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"sweep config {p} not found; check the path (a YAML or JSON file)")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix == ".json":
                data = json.loads(text)
            else:
                import yaml
                data = yaml.safe_load(text)
        except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError: report the first line only
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"sweep config {p} does not parse ({first}); fix the syntax") from None
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError(f"sweep config {p} must be a mapping of keys to values, e.g. 'lengths: [8, 16]'")
    data = dict(data) | {k: v for k, v in overrides.items() if v is not None}
    return validate_config(data, where)


def validate_config(data: dict, where: str = "the config") -> SweepConfig:
    """A SweepConfig from a plain dict; ConfigError names the key and the fix."""
    known = [f.name for f in fields(SweepConfig)]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(f"unknown key {key!r} in {where}; {hint}")
    clean = {}
    for key, value in data.items():
        kind, example = _TYPES[key]
        clean[key] = _coerce(key, value, kind, example, where)
    cfg = SweepConfig(**clean)
    _check_values(cfg, where)
    return cfg


def _coerce(key, value, kind, example, where):
    def bad():
        names = {"list[str]": "a list of names", "list[int]": "a list of integers", "int": "an integer",
                 "int?": "an integer or null", "float": "a number", "str": "a string", "str?": "a string or null",
                 "bool": "true or false"}
        return ConfigError(f"key {key!r} in {where} must be {names[kind]}, got {value!r}; e.g. '{example}'")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind.startswith("list"):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]                      # a single value is a list of one
        if not isinstance(value, (list, tuple)) or not value:
            raise bad()
        inner = kind[5:-1]
        if inner == "int" and not all(is_int(v) for v in value):
            raise bad()
        if inner == "str" and not all(isinstance(v, str) and v.strip() for v in value):
            raise bad()
        return list(value)
    if kind == "int" and not is_int(value):
        raise bad()
    if kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise bad()
        value = float(value)
    if kind == "str" and not isinstance(value, str):
        raise bad()
    if kind == "bool" and not isinstance(value, bool):
        raise bad()
    return value


def _check_values(cfg: SweepConfig, where: str) -> None:
    from .decode import LAYOUTS, PROTOCOLS
    from .texts import SOURCES

    def one_of(key, values, allowed):
        for v in values:
            if v not in allowed:
                raise ConfigError(f"key {key!r} in {where}: unknown value {v!r}; use one of {', '.join(allowed)}")
    one_of("sources", cfg.sources, SOURCES)
    one_of("layouts", cfg.layouts, LAYOUTS)
    one_of("protocols", cfg.protocols, PROTOCOLS)
    one_of("engine", [cfg.engine], ("auto", "plain", "fast"))
    for key in ("lengths",):
        if min(getattr(cfg, key)) < 2:
            raise ConfigError(f"key {key!r} in {where}: every length must be >= 2 tokens, got {cfg.lengths}")
    for key in ("n_mem",):
        if min(cfg.n_mem) < 1:
            raise ConfigError(f"key 'n_mem' in {where}: every n_mem must be >= 1, got {cfg.n_mem}")
    for key in ("n_texts", "batch_size", "max_steps", "check_every"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"key {key!r} in {where} must be >= 1, got {getattr(cfg, key)}")
    if cfg.patience is not None and cfg.patience < 1:
        raise ConfigError(f"key 'patience' in {where} must be >= 1 or null, got {cfg.patience}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"key 'lr' in {where} must be a finite number > 0, got {cfg.lr}; the paper uses 0.01")
    if not 0 < cfg.target_accuracy <= 1:
        raise ConfigError(f"key 'target_accuracy' in {where} must be in (0, 1], got {cfg.target_accuracy}")


# --- the job list --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """Texts of one (model, source, layout, protocol, n_mem, length): crammed together in batches."""
    model: str
    source: str
    layout: str
    protocol: str
    n_mem: int
    n_tokens: int


def job_key(line: dict) -> tuple:
    return tuple(line[k] for k in KEY_FIELDS)


def plan(cfg: SweepConfig) -> list[Group]:
    """Groups in the order they run: model, source, layout, protocol, n_mem, then lengths ascending."""
    return [Group(m, s, lay, pro, k, n) for m in cfg.models for s in cfg.sources for lay in cfg.layouts
            for pro in cfg.protocols for k in cfg.n_mem for n in sorted(set(cfg.lengths))]


def n_jobs(cfg: SweepConfig) -> int:
    return len(plan(cfg)) * cfg.n_texts


# --- the results file ----------------------------------------------------------------------------------

def read_results(path: str | os.PathLike, repair: bool = True) -> list[dict]:
    """The lines of a results file. A cut last line (no newline, or not JSON) is truncated away when
    `repair` (else ignored); a broken line before the last one raises ResultsFileError."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()                    # b"" when the file ends with a newline
    out, good_bytes = [], 0
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError
            job_key(row)
        except (ValueError, KeyError, UnicodeDecodeError):
            if i == len(lines) - 1 and not tail:
                break                     # the last full line is broken: treat it as cut
            raise ResultsFileError(f"{path} line {i + 1} is not a result line; the file was edited or mixed "
                                   "with another file: move it away or fix that line") from None
        out.append(row)
        good_bytes += len(line) + 1
    if good_bytes < len(raw) and repair:
        with open(path, "r+b") as f:      # drop the half-written tail
            f.truncate(good_bytes)
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
    return out.with_name(f"{out.name}.rank{rank}.jsonl")


def _part_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.name}.rank*.jsonl"))


def merge_parts(out: Path) -> int:
    """Append the lines of the part files that `out` does not have yet; remove the parts. Returns lines added."""
    have = {job_key(r) for r in read_results(out)}
    added = 0
    for part in _part_files(out):
        new = []
        for row in read_results(part):
            if job_key(row) not in have:
                have.add(job_key(row))
                new.append(row)
        append_lines(out, new)
        added += len(new)
        part.unlink()
    return added


def _settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _check_same_settings(rows: list[dict], cfg: SweepConfig, out: Path) -> None:
    digest = _settings_digest(cfg.result_settings())
    for row in rows:
        if row.get("settings_digest") != digest:
            theirs = row.get("sweep_settings", {})
            diff = [f"{k} {theirs.get(k)!r} there, {v!r} now" for k, v in cfg.result_settings().items()
                    if theirs.get(k) != v]
            raise ConfigError(f"{out} holds results made with other settings ({'; '.join(diff) or 'unknown'}); "
                              "use another --out, or the same settings to resume")


# --- running -------------------------------------------------------------------------------------------

@dataclass
class SweepSummary:
    out: str
    n_jobs: int
    n_done_before: int
    n_crammed: int          # jobs crammed by this process (this rank)
    world_size: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def run_sweep(cfg: SweepConfig, out: str | os.PathLike, *, log=print) -> SweepSummary:
    """Run every job of `cfg` that `out` does not hold yet; see the module docstring."""
    import torch
    t0 = time.perf_counter()
    out = Path(out)
    _check_out(out)
    rank, world, local_rank = _dist_env()
    dist = None
    device = cfg.device
    if world > 1:
        dist, device = _init_dist(cfg.device, local_rank)
    log = log if rank == 0 else (lambda *a, **k: None)
    try:
        # Every rank reads the same files before anyone writes: rank 0 repairs a cut line only after the
        # barrier below, so all ranks see the same set of finished jobs.
        if rank == 0:
            done_rows = read_results(out) + [r for p in _part_files(out) for r in read_results(p)]
        if dist is not None:
            dist.barrier()
        if rank != 0:
            done_rows = read_results(out, repair=False) + [r for p in _part_files(out)
                                                           for r in read_results(p, repair=False)]
        _check_same_settings(done_rows, cfg, out)
        done = {job_key(r) for r in done_rows}
        target = out if world == 1 else part_path(out, rank)
        total = n_jobs(cfg)
        log(f"sweep: {total} jobs, {len(done)} already in {out}, {world} process(es)")
        crammed = 0
        for model_name in cfg.models:
            crammed += _run_model(cfg, model_name, device, done, target, rank, world, log)
        if dist is not None:
            dist.barrier()
        if rank == 0 and (world > 1 or _part_files(out)):
            added = merge_parts(out)
            log(f"merged {added} line(s) from the part files into {out}")
        if dist is not None:
            dist.barrier()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    finally:
        if dist is not None and dist.is_initialized():
            dist.destroy_process_group()
    return SweepSummary(out=str(out), n_jobs=n_jobs(cfg), n_done_before=len(done), n_crammed=crammed,
                        world_size=world, seconds=time.perf_counter() - t0)


def _run_model(cfg, model_name, device, done, target, rank, world, log) -> int:
    from .cram import cram
    from .models import load_model
    from .texts import get_texts
    groups = [g for g in plan(cfg) if g.model == model_name]
    counts: dict[tuple, int] = {}
    for key in done:
        counts[key[:6]] = counts.get(key[:6], 0) + 1
    if all(counts.get(tuple(asdict(g).values()), 0) >= cfg.n_texts for g in groups):
        return 0          # every group of this model is complete (same seed: same texts): do not load it
    lm = None
    texts_of: dict[str, list] = {}
    crammed = 0
    for g in groups:
        if lm is None:
            lm = load_model(model_name, device=device, dtype=cfg.dtype)
        if g.source not in texts_of:
            texts_of[g.source] = get_texts(lm.tokenizer, g.source, max(cfg.lengths), n_texts=cfg.n_texts,
                                           seed=cfg.seed)
        todo = [t for t in texts_of[g.source]
                if (g.model, g.source, g.layout, g.protocol, g.n_mem, g.n_tokens, t.text_id) not in done]
        mine = todo[rank::world]
        for start in range(0, len(mine), cfg.batch_size):
            batch = mine[start:start + cfg.batch_size]
            t0 = time.perf_counter()
            results = cram(lm, [t.token_ids[:g.n_tokens] for t in batch], n_mem=g.n_mem, max_steps=cfg.max_steps,
                           lr=cfg.lr, patience=cfg.patience, target_accuracy=cfg.target_accuracy,
                           protocol=g.protocol, layout=g.layout, dtype=cfg.dtype, seed=cfg.seed,
                           check_every=cfg.check_every, progress=False, decode=cfg.decode,
                           text_ids=[t.text_id for t in batch], engine=cfg.engine)
            rows = [_line(cfg, g, lm.spec, r, rank) for r in results]
            append_lines(target, rows)
            crammed += len(rows)
            accs = ", ".join(f"{r.teacher_forced_accuracy:.2f}" for r in results)
            log(f"  {g.model} {g.source} {g.layout} {g.protocol} k={g.n_mem} N={g.n_tokens}: "
                f"{len(batch)} text(s) in {time.perf_counter() - t0:.1f} s, accuracy {accs}")
    return crammed


def _line(cfg: SweepConfig, g: Group, spec, res, rank: int) -> dict:
    d = res.to_dict()
    row = {"model": g.model, "source": g.source, "layout": g.layout, "protocol": g.protocol, "n_mem": g.n_mem,
           "n_tokens": g.n_tokens, "text_id": res.text_id}
    row |= {k: d[k] for k in LINE_FIELDS if k not in row}
    if cfg.keep_history:
        row["history"] = d["history"]
    row |= {"d": spec.d, "vocab_size": spec.vocab_size, "fingerprint": spec.fingerprint, "device": spec.device,
            "rank": rank, "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "sweep_settings": cfg.result_settings(), "settings_digest": _settings_digest(cfg.result_settings())}
    return row


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _init_dist(device: str, local_rank: int):
    """torch.distributed from torchrun's environment: nccl when the ranks have GPUs, else gloo."""
    import torch
    import torch.distributed as dist
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda") or str(device).startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(hours=24),
                                **({"device_id": torch.device(device)} if use_cuda else {}))
    return dist, (device if use_cuda else "cpu")


def _check_out(out: Path) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create folder {folder} for {out.name}: {exc.strerror}; "
                              "choose another --out") from None
    if out.is_dir():
        raise OutputPathError(f"--out {out} is a folder; give a file name such as {out}/results.jsonl")
    try:                                   # open it for appending now, not after the first batch
        os.close(os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as exc:
        raise OutputPathError(f"{out} cannot be written ({exc.strerror}); choose another --out") from None


# --- the report: Table 1 -------------------------------------------------------------------------------

@dataclass
class ReportRow:
    """One (model, source, layout, protocol, n_mem): the paper's Table 1 columns, ours and theirs."""
    model: str
    source: str
    layout: str
    protocol: str
    n_mem: int
    n_texts: int
    lengths: list[int]
    max_tokens: int | None          # largest N with mean accuracy >= threshold
    n_not_fit: int                  # texts x lengths with accuracy <= threshold (the averages below)
    gain_tokens: float              # mean over those, (acc - acc_without_mem) * N
    info_gain_nats: float
    info_gain_bits: float
    capacity_tokens: float          # L_max = d * 16 * n_mem / log2|V|
    capacity_utilisation: float     # gain_tokens / L_max
    greedy_exact_at_max: float | None
    paper: dict = field(default_factory=dict)    # the published figures for this model (cramlab.paper)

    def to_dict(self) -> dict:
        return asdict(self)


REPORT_COLUMNS = ("model", "source", "layout", "protocol", "n_mem", "n_texts", "max_tokens", "gain_tokens",
                  "info_gain_nats", "info_gain_bits", "capacity_tokens", "capacity_utilisation",
                  "greedy_exact_at_max", "n_not_fit", "paper_max_tokens", "paper_gain_tokens",
                  "paper_info_gain_nats", "paper_capacity_utilisation", "paper_source")


def report(rows_or_path, threshold: float = 0.99) -> list[ReportRow]:
    """Table 1 from result lines. As the paper: Max from the per-length mean accuracy; gain, IG and
    utilisation averaged over the (text, length) results that did NOT fit (accuracy <= threshold),
    pooled over lengths (NaN when every text fit: then the vector was never full)."""
    from . import capacity as cap
    from . import paper
    rows = read_results(rows_or_path, repair=False) if isinstance(rows_or_path, (str, os.PathLike)) \
        else list(rows_or_path)
    if not rows:
        raise BadInputError("no result lines to report; run `cramlab sweep CONFIG --out results.jsonl` first")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["source"], r["layout"], r["protocol"], r["n_mem"]), []).append(r)
    out = []
    for (model, source, layout, protocol, n_mem), members in groups.items():
        by_len: dict[int, list[dict]] = {}
        for r in members:
            by_len.setdefault(r["n_tokens"], []).append(r)
        fits = [n for n, rs in by_len.items()
                if statistics.fmean(x["teacher_forced_accuracy"] for x in rs) >= threshold]
        max_tokens = max(fits) if fits else None
        unfit = [r for r in members if r["teacher_forced_accuracy"] <= threshold]
        gain = _mean([r["gain_tokens"] for r in unfit])
        ig = _mean([r["info_gain_nats"] for r in unfit])
        first = members[0]
        d, vocab = first.get("d"), first.get("vocab_size")
        if not d or not vocab:
            shape = cap.get_shape(model)
            d, vocab = shape.d, shape.vocab_size
        l_max = cap.capacity_tokens(int(d), int(vocab), n_mem=int(n_mem))
        greedy = None
        if max_tokens is not None:
            vals = [r["greedy_exact"] for r in by_len[max_tokens] if r.get("greedy_exact") is not None]
            greedy = sum(map(bool, vals)) / len(vals) if vals else None
        out.append(ReportRow(model=model, source=source, layout=layout, protocol=protocol, n_mem=n_mem,
                             n_texts=len({r["text_id"] for r in members}), lengths=sorted(by_len),
                             max_tokens=max_tokens, n_not_fit=len(unfit), gain_tokens=gain, info_gain_nats=ig,
                             info_gain_bits=ig / math.log(2), capacity_tokens=l_max,
                             capacity_utilisation=gain / l_max, greedy_exact_at_max=greedy,
                             paper=paper.published(model, source=source, n_mem=n_mem)))
    return out


def length_records(rows_or_path) -> dict[tuple, list[dict]]:
    """Per (model, source, layout, protocol, n_mem): one record per length with n_tokens, n_texts,
    mean_accuracy, std_accuracy, greedy_exact_fraction and the per-text lines (`results`), lengths
    ascending: the shape of `GridResult.records`, for plots and tables."""
    rows = read_results(rows_or_path, repair=False) if isinstance(rows_or_path, (str, os.PathLike)) \
        else list(rows_or_path)
    out: dict[tuple, dict[int, list[dict]]] = {}
    for r in rows:
        out.setdefault((r["model"], r["source"], r["layout"], r["protocol"], r["n_mem"]), {}) \
            .setdefault(r["n_tokens"], []).append(r)
    records = {}
    for key, by_len in out.items():
        records[key] = []
        for n in sorted(by_len):
            accs = [x["teacher_forced_accuracy"] for x in by_len[n]]
            greedy = [x["greedy_exact"] for x in by_len[n] if x.get("greedy_exact") is not None]
            records[key].append(dict(n_tokens=n, n_texts=len(accs), mean_accuracy=statistics.fmean(accs),
                                     std_accuracy=statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                                     greedy_exact_fraction=sum(map(bool, greedy)) / len(greedy) if greedy else None,
                                     results=by_len[n]))
    return records


def report_table(rows: list[ReportRow]) -> list[dict]:
    """Flat dicts with REPORT_COLUMNS (for CSV and printing)."""
    flat = []
    for r in rows:
        d = r.to_dict()
        p = d.pop("paper") or {}
        d.pop("lengths")
        d |= {"paper_max_tokens": p.get("max_tokens"), "paper_gain_tokens": p.get("gain_tokens"),
              "paper_info_gain_nats": p.get("info_gain_nats"),
              "paper_capacity_utilisation": p.get("capacity_utilisation"), "paper_source": p.get("source")}
        flat.append({k: d.get(k) for k in REPORT_COLUMNS})
    return flat


def format_report(rows: list[ReportRow], threshold: float = 0.99) -> str:
    """The table as text: ours, and the paper's figure in brackets where the model matches."""
    buf = io.StringIO()

    def num(v, fmt):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    def ours_theirs(v, p, fmt):
        return num(v, fmt) + (f" [{num(p, fmt)}]" if p is not None else "")
    buf.write(f"Table 1 (Max: largest N with mean accuracy >= {threshold}; gain, IG and utilisation averaged over "
              "the texts that did not fit; [paper])\n")
    head = (f"{'model':<16}{'source':<8}{'layout':<11}{'prot':<5}{'k':>2} {'texts':>5} {'Max':>12} "
            f"{'gain tok':>14} {'IG nats':>14} {'IG bits':>8} {'L_max':>7} {'util':>14} {'greedy@Max':>10}")
    buf.write(head + "\n")
    notes = []
    for r in rows:
        p = r.paper or {}
        buf.write(f"{r.model[:15]:<16}{r.source[:7]:<8}{r.layout:<11}{r.protocol:<5}{r.n_mem:>2} {r.n_texts:>5} "
                  f"{ours_theirs(r.max_tokens, p.get('max_tokens'), 'd'):>12} "
                  f"{ours_theirs(r.gain_tokens, p.get('gain_tokens'), '.1f'):>14} "
                  f"{ours_theirs(r.info_gain_nats, p.get('info_gain_nats'), '.0f'):>14} "
                  f"{num(r.info_gain_bits, '.0f'):>8} {r.capacity_tokens:>7.0f} "
                  f"{ours_theirs(r.capacity_utilisation, p.get('capacity_utilisation'), '.3f'):>14} "
                  f"{num(r.greedy_exact_at_max, '.2f'):>10}\n")
        if p.get("note"):
            notes.append(f"  {r.model}: {p['note']}")
    if notes:
        buf.write("paper figures:\n" + "\n".join(dict.fromkeys(notes)) + "\n")
    return buf.getvalue()


def write_csv(rows: list[ReportRow], path: str | os.PathLike) -> None:
    path = Path(path)
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=REPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(report_table(rows))
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror}; choose another --csv") from None


def _mean(values) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(vals) if vals else float("nan")


# --- command line --------------------------------------------------------------------------------------

def register_cli(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a resumable sweep; one JSON line per finished job",
                              description="Run models x sources x lengths x n_mem x texts; resumable; "
                                          "`torchrun --nproc-per-node=G -m cramlab sweep ...` splits it.")
    p.add_argument("config", nargs="?", help="YAML or JSON file (keys: see cramlab.sweep.SweepConfig)")
    p.add_argument("--out", required=True, help="results file (JSON lines), appended to and resumed")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--sources", help="comma-separated: unseen, random, pg19, fanfics")
    p.add_argument("--lengths", help="comma-separated lengths in tokens")
    p.add_argument("--n-mem", help="comma-separated numbers of vectors")
    p.add_argument("--layouts", help="comma-separated: sink-first, mem-first")
    p.add_argument("--protocols", help="comma-separated: pc, hc")
    p.add_argument("--n-texts", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patience", type=int)
    p.add_argument("--check-every", type=int)
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--engine", choices=["auto", "plain", "fast"])
    p.add_argument("--no-decode", action="store_true", help="skip greedy decoding")
    p.add_argument("--dry-run", action="store_true", help="print the plan and how much is done, run nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=_cmd_sweep)

    p = subparsers.add_parser("report", help="Table 1 from a results file (ours beside the paper's)")
    p.add_argument("results", help="a results file written by `cramlab sweep`")
    p.add_argument("--csv", help="also write the table as CSV")
    p.add_argument("--threshold", type=float, default=0.99)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_report)


def _split(text, kind):
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if kind is int:
        try:
            return [int(x) for x in items]
        except ValueError:
            raise ConfigError(f"expected comma-separated integers such as 8,16,32; got {text!r}") from None
    return items


def _cmd_sweep(args) -> int:
    cfg = load_config(args.config, models=_split(args.models, str), sources=_split(args.sources, str),
                      lengths=_split(args.lengths, int), n_mem=_split(args.n_mem, int),
                      layouts=_split(args.layouts, str), protocols=_split(args.protocols, str),
                      n_texts=args.n_texts, seed=args.seed, batch_size=args.batch_size, max_steps=args.max_steps,
                      lr=args.lr, patience=args.patience, check_every=args.check_every, device=args.device,
                      dtype=args.dtype, engine=args.engine, decode=False if args.no_decode else None)
    if args.dry_run:
        out = Path(args.out)
        have = {job_key(r) for r in read_results(out, repair=False)} if out.exists() else set()
        print(f"{n_jobs(cfg)} jobs in {len(plan(cfg))} groups; {len(have)} already in {out}")
        for g in plan(cfg):
            print(f"  {g.model} {g.source} {g.layout} {g.protocol} k={g.n_mem} N={g.n_tokens} x {cfg.n_texts}")
        return 0
    summary = run_sweep(cfg, args.out, log=lambda *a: print(*a, flush=True))
    if _dist_env()[0] == 0:
        if args.json:
            print(json.dumps(summary.to_dict()))
        else:
            print(f"done: {summary.n_crammed} job(s) crammed here, {summary.n_done_before} were already there; "
                  f"{summary.n_jobs} in all -> {summary.out} ({summary.seconds:.0f} s)")
    return 0


def _cmd_report(args) -> int:
    path = Path(args.results)
    if not path.is_file():
        raise BadInputError(f"results file {path} not found; run `cramlab sweep CONFIG --out {path}` first")
    rows = report(path, threshold=args.threshold)
    if args.csv:
        write_csv(rows, args.csv)
    if args.json:
        print(json.dumps(report_table(rows)))
    else:
        sys.stdout.write(format_report(rows, threshold=args.threshold))
        if args.csv:
            print(f"CSV written to {args.csv}")
    return 0
