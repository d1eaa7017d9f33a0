"""Sweeps: models x sources x layouts x protocols x n_mem x lengths x texts, one JSON line per finished job.

Owns: the sweep's configuration (`SweepConfig`, `load_config`, `validate_config`: a YAML/JSON file or
CLI flags; its axes and run keys, and one `CramSettings` for every cram knob), the job plan (`plan`,
`n_jobs`: groups of texts of one model, source, layout, protocol, n_mem and length), and running it
(`run_sweep`: one process, or `torchrun` ranks).

Does not own: the results file (append, fsync, repair, merge, job key: cramlab.science.results_file), Table 1
and the per-length records (cramlab.science.report), the command line (cramlab.cli.sweep), the loop
(cramlab.engine.plain), the cram knobs' names, types, defaults and checks (cramlab.engine.settings).

A job is one text crammed at one length: its key is (model, source, layout, protocol, n_mem, n_tokens,
text_id). `run_sweep` appends a line to the results file as soon as a batch of jobs finishes and skips
the jobs already there, so a sweep killed at any moment (even SIGKILL) and started again loses nothing
and repeats nothing (see cramlab.science.results_file); the results of every job are deterministic per text
(cram seeds its init from the seed and the text), so a job redone after a kill gives the same numbers.

Multi-process (`torchrun --nproc-per-node=G -m cramlab sweep ...`): every rank builds the same job list,
takes every G-th pending text of each (model, source, layout, protocol, n_mem, length) group, loads the
model once, crams its share in batches and appends to its own part file `<out>.rank<R>.jsonl`. After a
barrier (gloo on CPU, nccl on GPU) rank 0 merges the part files into `<out>` (skipping keys already
there) and removes them. A kill during the merge is harmless: the next run merges the leftovers.
"""
from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import time
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from cramlab.engine.settings import FIELD_NAMES, PRESETS, CramSettings
from cramlab.errors import BadInputError, ConfigError, OutputPathError
from cramlab.kernels import KERNEL_CHOICES
from cramlab.science.results_file import (
    LINE_FIELDS,
    append_lines,
    check_same_settings,
    job_key,
    merge_parts,
    part_files,
    part_path,
    read_results,
    settings_digest,
)

#: The sweep's own keys are its axes (lists: every combination runs) and how it runs; every other key is a
#: `CramSettings` field (`preset`, `lr`, `lr_schedule`, ...), typed and checked there. The axes' fields:
AXES = {"n_mem": "n_mem", "layouts": "layout", "protocols": "protocol"}
#: Settings that change a job's result and are always in a results file's settings digest (the keys of the
#: files written before every CramSettings field became a sweep key); any other field the config changes
#: from its preset is added to the digest, so files of unchanged configs keep their digest.
RESULT_SETTINGS = ("preset", "max_steps", "lr", "patience", "target_accuracy", "check_every", "seed", "dtype",
                   "decode")
#: The keys of the learner's own text (one of them, instead of `sources`), and the source its jobs record.
OWN_TEXT_KEYS = ("text", "text_file", "text_dir")
OWN_SOURCE = "own"
#: Config keys whose meaning moved: a one-line error names the key to use.
RENAMED = {"layout": "layouts", "protocol": "protocols", "settings": "the CramSettings fields at the top level",
           "overrides": "the CramSettings fields themselves (preset + the keys you change)"}


# --- configuration -------------------------------------------------------------------------------------

@dataclass
class SweepConfig:
    """What a sweep runs. Every field may come from a YAML/JSON file or from CLI flags. The cram knobs are one
    `CramSettings` (`settings`: the preset and every field the config changes); `cfg.lr`, `cfg.preset`, ...
    read it. Its `n_mem`, `layout` and `protocol` are the defaults of the axes, which each group sets."""
    models: list[str] = field(default_factory=lambda: ["smollm2-135m"])
    sources: list[str] = field(default_factory=lambda: ["unseen"])
    lengths: list[int] = field(default_factory=lambda: [8, 16, 32])
    n_mem: list[int] = field(default_factory=lambda: [PRESETS["kit"].n_mem])
    layouts: list[str] = field(default_factory=lambda: [PRESETS["kit"].layout])
    protocols: list[str] = field(default_factory=lambda: [PRESETS["kit"].protocol])
    n_texts: int = 4
    batch_size: int = 16              # texts crammed together (same model, source, length, n_mem)
    device: str = "auto"
    decode: bool = True               # greedy decode every result ("back again")
    kernels: str = "auto"             # faster kernels (load_model's option); each line records which ran
    keep_history: bool = False        # keep the per-step loss/accuracy history on every line
    text: str | None = None           # your own text instead of `sources`: the text itself,
    text_file: str | None = None      # ... a UTF-8 file,
    text_dir: str | None = None       # ... or every *.txt file under a folder; its jobs' source is "own"
    settings: CramSettings = field(default_factory=CramSettings)

    def __getattr__(self, name):
        """`cfg.lr`, `cfg.preset`, ...: the settings' fields (only reached for names that are not the sweep's)."""
        if name != "settings" and name in FIELD_NAMES:
            value = getattr(self.settings, name)
            return value.split("+")[0] if name == "preset" else value
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def to_dict(self) -> dict:
        """The config as a file holds it: the sweep's keys, the preset and the fields changed from it."""
        out = {k: getattr(self, k) for k in SWEEP_KEYS}
        full = self.settings.to_dict()
        return out | {"preset": self.preset} | {k: full[k] for k in self.settings.overrides}

    def result_settings(self) -> dict:
        extra = sorted(k for k in self.settings.overrides if k not in RESULT_SETTINGS and k not in AXES.values())
        return {k: getattr(self, k) for k in RESULT_SETTINGS} | {k: getattr(self.settings, k) for k in extra}

    def cram_settings(self, group: Group) -> CramSettings:
        """The settings one group of jobs is crammed with: this config's, at the group's n_mem, layout, protocol."""
        return self.settings.replace(n_mem=group.n_mem, layout=group.layout, protocol=group.protocol)


SWEEP_KEYS = tuple(f.name for f in fields(SweepConfig) if f.name != "settings")
#: Config keys that are CramSettings fields (the axes' fields come in their list keys).
SETTINGS_KEYS = tuple(k for k in FIELD_NAMES if k not in ("overrides", *AXES.values()))
#: Examples for the error messages where a field's default says nothing (None).
_EXAMPLES = {"patience": "patience: 500", "dtype": "dtype: bfloat16", "device": "device: cuda",
             "max_total_steps": "max_total_steps: 10000", "sink_token_id": "sink_token_id: 0",
             "text": "text: Any text you like", "text_file": "text_file: my.txt", "text_dir": "text_dir: my-notes"}


def load_config(path: str | os.PathLike | None = None, *, given: dict | None = None, **overrides) -> SweepConfig:
    """Read a YAML or JSON config (or none), apply `overrides` (None values ignored) and `given` (settings
    given on the command line, None included: `--patience none`), validate."""
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
    data = dict(data) | {k: v for k, v in overrides.items() if v is not None} | dict(given or {})
    return validate_config(data, where)


def validate_config(data: dict, where: str = "the config") -> SweepConfig:
    """A SweepConfig from a plain dict; ConfigError names the key and the fix. The sweep's keys are typed by
    the dataclass's annotations; the settings keys are typed by CramSettings' and checked by it. What the
    config leaves out comes from its preset (`preset`, default kit), the axes included."""
    known = [*SWEEP_KEYS, *SETTINGS_KEYS]
    for key in data:
        if key in RENAMED:
            raise ConfigError(f"key {key!r} in {where} is now {RENAMED[key]!r}; rename it")
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(f"unknown key {key!r} in {where}; {hint}")
    preset = data.get("preset", "kit")
    if preset not in PRESETS:
        raise ConfigError(f"key 'preset' in {where}: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    hints = typing.get_type_hints(CramSettings) | typing.get_type_hints(SweepConfig)   # n_mem: the list axis
    values = {key: _coerce(key, value, hints[key], where) for key, value in data.items() if key != "preset"}
    for key, name in AXES.items():               # the axes the config leaves out: the preset's value
        values.setdefault(key, [getattr(base, name)])
    _own_text(values, data, where)
    changes = {k: v for k, v in values.items() if k in SETTINGS_KEYS}
    for key, value in changes.items():           # one knob at a time, so the error names its key
        _settings(base, {key: value}, f"key {key!r} in {where}")
    cfg = SweepConfig(**{k: v for k, v in values.items() if k in SWEEP_KEYS},
                      settings=_settings(base, changes, where))
    _check_values(cfg, where)
    return cfg


def _own_text(values: dict, data: dict, where: str) -> None:
    """The learner's own text: its jobs' source is "own", n_texts is how many texts it is (1, or the files)."""
    own = [k for k in OWN_TEXT_KEYS if values.get(k) is not None]
    if not own:
        return
    if len(own) > 1 or "sources" in data:
        raise ConfigError(f"{where}: give one of 'sources', 'text', 'text_file', 'text_dir', not "
                          f"{', '.join(repr(k) for k in ([*own, 'sources'] if 'sources' in data else own))}")
    from cramlab.models.texts import check_text_request, text_files
    try:
        check_text_request(2, **{own[0]: values[own[0]]})
        count = len(text_files(values["text_dir"])) if own[0] == "text_dir" else 1
    except BadInputError as exc:
        raise ConfigError(f"key {own[0]!r} in {where}: {exc}") from None
    if "n_texts" in data and values["n_texts"] != count:
        raise ConfigError(f"key 'n_texts' in {where} is {values['n_texts']} but your {own[0]} holds {count} "
                          f"text(s); leave n_texts out")
    values["sources"], values["n_texts"] = [OWN_SOURCE], count


def _settings(base: CramSettings, changes: dict, where: str) -> CramSettings:
    try:
        return base.replace(**changes)
    except BadInputError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _example(key: str) -> str:
    if key in _EXAMPLES:
        return _EXAMPLES[key]
    default = getattr(SweepConfig(), key)
    text = json.dumps(list(default) if isinstance(default, tuple) else default).replace('"', "")
    return f"{key}: {text}"


def _coerce(key, value, hint, where):
    """`value` as the annotated type `hint` (int, float, str, bool, list, tuple of floats, X | None)."""
    args = typing.get_args(hint)
    optional = type(None) in args and typing.get_origin(hint) is not list
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    fixed = typing.get_origin(hint) is tuple          # betas: a fixed number of numbers
    inner = typing.get_args(hint)[0] if typing.get_origin(hint) in (list, tuple) else None
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if fixed:
        what = f"a list of {len(typing.get_args(hint))} numbers"
    else:
        what = f"a list of {'integers' if inner is int else 'names'}" if inner else names[hint]

    def bad():
        return ConfigError(f"key {key!r} in {where} must be {what}{' or null' if optional else ''}, got {value!r}; "
                           f"e.g. '{_example(key)}'")

    def is_a(v, kind):
        if kind is float:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if kind is int:
            return isinstance(v, int) and not isinstance(v, bool)
        return isinstance(v, kind) and (kind is not str or bool(v.strip()) or inner is None)
    if fixed:
        if not isinstance(value, (list, tuple)) or len(value) != len(typing.get_args(hint)) \
                or not all(is_a(v, inner) for v in value):
            raise bad()
        return tuple(float(v) for v in value)
    if inner is not None:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]                      # a single value is a list of one
        if not isinstance(value, (list, tuple)) or not value or not all(is_a(v, inner) for v in value):
            raise bad()
        return list(value)
    if not is_a(value, hint):
        raise bad()
    return float(value) if hint is float else value


def _check_values(cfg: SweepConfig, where: str) -> None:
    from cramlab.models.texts import SOURCES
    for v in cfg.sources:
        if v not in SOURCES and not (v == OWN_SOURCE and any(getattr(cfg, k) for k in OWN_TEXT_KEYS)):
            raise ConfigError(f"key 'sources' in {where}: unknown value {v!r}; use one of {', '.join(SOURCES)}")
    if cfg.kernels not in KERNEL_CHOICES:
        raise ConfigError(f"key 'kernels' in {where}: unknown value {cfg.kernels!r}; use one of "
                          f"{', '.join(KERNEL_CHOICES)}")
    if min(cfg.lengths) < 2:
        raise ConfigError(f"key 'lengths' in {where}: every length must be >= 2 tokens, got {cfg.lengths}")
    for key in ("n_texts", "batch_size"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"key {key!r} in {where} must be >= 1, got {getattr(cfg, key)}")
    for key, name in AXES.items():               # one value at a time, so the error names its key
        for v in getattr(cfg, key):
            _settings(cfg.settings, {name: v}, f"key {key!r} in {where}")
    for g in plan(cfg):                          # and every combination the sweep will run
        _settings(cfg.settings, dict(n_mem=g.n_mem, layout=g.layout, protocol=g.protocol), where)


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



def plan(cfg: SweepConfig) -> list[Group]:
    """Groups in the order they run: model, source, layout, protocol, n_mem, then lengths ascending."""
    return [Group(m, s, lay, pro, k, n) for m in cfg.models for s in cfg.sources for lay in cfg.layouts
            for pro in cfg.protocols for k in cfg.n_mem for n in sorted(set(cfg.lengths))]


def n_jobs(cfg: SweepConfig) -> int:
    return len(plan(cfg)) * cfg.n_texts


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
    rank, world, local_rank = dist_env()
    dist = None
    device = cfg.device
    if world > 1:
        dist, device = _init_dist(cfg.device, local_rank)
    log = log if rank == 0 else (lambda *a, **k: None)
    try:
        # Every rank reads the same files before anyone writes: rank 0 repairs a cut line only after the
        # barrier below, so all ranks see the same set of finished jobs.
        if rank == 0:
            done_rows = read_results(out) + [r for p in part_files(out)
                                             for r in read_results(p, skip_broken=True)]
        if dist is not None:
            dist.barrier()
        if rank != 0:
            done_rows = read_results(out, repair=False) + [r for p in part_files(out)
                                                           for r in read_results(p, repair=False, skip_broken=True)]
        check_same_settings(done_rows, cfg.result_settings(), out)
        done = {job_key(r) for r in done_rows}
        target = out if world == 1 else part_path(out, rank)
        total = n_jobs(cfg)
        log(f"sweep: {total} jobs, {len(done)} already in {out}, {world} process(es)")
        crammed = 0
        for model_name in cfg.models:
            crammed += _run_model(cfg, model_name, device, done, target, rank, world, log)
        if dist is not None:
            dist.barrier()
        if rank == 0 and (world > 1 or part_files(out)):
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
    from cramlab.engine.plain import cram
    from cramlab.models.load import load_model
    from cramlab.models.texts import get_texts, user_texts
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
            lm = load_model(model_name, device=device, dtype=cfg.dtype, kernels=cfg.kernels)
        if g.source not in texts_of:
            texts_of[g.source] = (
                user_texts(lm.tokenizer, text=cfg.text, text_file=cfg.text_file, text_dir=cfg.text_dir,
                           n_tokens=max(cfg.lengths)) if g.source == OWN_SOURCE
                else get_texts(lm.tokenizer, g.source, max(cfg.lengths), n_texts=cfg.n_texts, seed=cfg.seed))
        todo = [t for t in texts_of[g.source]
                if (g.model, g.source, g.layout, g.protocol, g.n_mem, g.n_tokens, t.text_id) not in done]
        mine = todo[rank::world]
        for start in range(0, len(mine), cfg.batch_size):
            batch = mine[start:start + cfg.batch_size]
            t0 = time.perf_counter()
            results = cram(lm, [t.token_ids[:g.n_tokens] for t in batch], cfg.cram_settings(g), progress=False,
                           decode=cfg.decode, text_ids=[t.text_id for t in batch])
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
            "kernels": spec.kernels,
            "rank": rank, "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "sweep_settings": cfg.result_settings(), "settings_digest": settings_digest(cfg.result_settings())}
    return row


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) in a plain process."""
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

