"""`cramlab reproduce`: run one paper's protocol end to end, one job at a time, resumable after a kill.

Owns: the two papers' job plans (`plan_2025`: Kuratov et al.'s grid, natural and random text;
`plan_2026`: Tarasov et al.'s progressive cramming in the four layout x protocol settings), the texts of a
run (made once, kept in `DIR/texts.json` so a resumed or GPU run uses exactly the same token ids), the
per-job raw lines (appended and fsynced at once with cramlab.science.results_file), the progressive paper's
information gain as its code computes it (`pc_information_gain_bits`, from a forward of the final
vectors), the `timing_<paper>.json` record and the budget guard. Does not own: the cramming loop
(cramlab.engine.plain / cramlab.science.search: only `cram` and `progressive` are called), the settings or presets
(cramlab.engine.settings), the tables (cramlab.science.reproduce_tables), the command line (cramlab.cli.reproduce).

A job is one batched engine call: 2025 natural = all texts at one grid length; 2025 random = the random texts
of one grid length L (their code draws each text's length uniformly in [2, L]; the Max is grouped by that drawn
length in the tables), crammed in right-padded batches of neighbouring drawn lengths (`cram(mixed_lengths=True)`,
split by engine.plain.length_groups: three batches for 300 texts of 2 to 128 tokens instead of one per drawn length,
each text scored over its own tokens); 2026 = one (layout, protocol, replicate) progressive run
over all texts. A job counts as done when every one of its line keys (`results_file.job_key`, one per text) is in
the file, so a rerun skips it; a random-text job with some of its texts already there (e.g. lines of an earlier
plan that ran one job per drawn length) runs only the others.
"""
from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cramlab.engine.settings import CramSettings
from cramlab.errors import BadInputError, ConfigError
from cramlab.science.results_file import (
    LINE_FIELDS,
    append_lines,
    check_same_settings,
    job_key,
    read_results,
    settings_digest,
)

PAPERS = ("2025", "2026")
#: Kuratov et al.'s grid (their scripts), capped at 128 tokens on the embedded model.
GRID_LENGTHS = (8, 16, 32, 64, 96, 128)
MAX_TOKENS = 128
#: The four layout x protocol settings of the 2026 rows (the preset's own is mem-first/pc).
SETTINGS_2026 = ("mem-first/pc", "mem-first/hc", "sink-first/pc", "sink-first/hc")
NATURAL_SOURCE = "passages"
EXTRA_LINE_FIELDS = ("train_accuracy", "min_ce_per_token_nats")


@dataclass
class Job:
    """One batched engine call and the line keys it writes."""
    name: str
    kind: str                      # grid | progressive
    source: str
    keys: list[tuple] = field(default_factory=list)
    texts: list = field(default_factory=list)       # Text objects (grid) or full-length rows (progressive)
    settings: CramSettings | None = None
    replicate: int = 0
    grid_tokens: dict = field(default_factory=dict)  # text_id -> nominal grid length (random text)
    mixed: bool = False            # texts of different lengths in right-padded batches (random text)
    replicates: dict = field(default_factory=dict)   # text_id -> replicate (= seed), when a job batches several

    @property
    def per_text(self) -> bool:
        """Its lines are keyed per text and its batch can run any subset of them (resume runs only the rest)."""
        return self.mixed or bool(self.replicates)

    def without(self, have: set) -> Job:
        """This job with only the texts whose line keys are not in `have`."""
        todo = [i for i, k in enumerate(self.keys) if k not in have]
        return dataclasses.replace(self, keys=[self.keys[i] for i in todo], texts=[self.texts[i] for i in todo])


def paper_settings(paper: str, *, on_gpu: bool, max_steps: int | None = None, setting: str = "mem-first/pc",
                   seed: int = 0) -> CramSettings:
    """The preset of `paper` with the run's seed; `max_steps` (a test budget) is an override the record keeps.
    2025 on a GPU: fp32 weights with bf16 autocast, as Kuratov et al.'s Llama runs (the model is loaded
    in float32 and `dtype="bfloat16"` asks the engine for autocast); 2026: the model's own dtype."""
    if paper == "2025":
        s = CramSettings.from_preset("grid-2025", seed=seed, dtype="bfloat16" if on_gpu else None)
        if max_steps is not None:
            s = s.replace(max_steps=max_steps, patience=min(s.patience or max_steps, max_steps))
        return s
    layout, protocol = setting.split("/")
    s = CramSettings.from_preset("progressive-2026", layout=layout, protocol=protocol, seed=seed,
                                 start_tokens=2 if protocol == "hc" else 1)
    if max_steps is not None:
        s = s.replace(max_steps=max_steps, max_total_steps=max_steps * MAX_TOKENS)
    return s


def model_dtype_for(paper: str, device: str) -> str:
    """Weights: float32 on a CPU; on a GPU float32 for 2025 (autocast does bf16), bfloat16 for 2026."""
    return "float32" if device == "cpu" or paper == "2025" else "bfloat16"


# --- texts -------------------------------------------------------------------------------------------------

def make_texts(tokenizer, paper: str, n_texts: int, max_tokens: int, seed: int = 0) -> dict:
    """The run's texts as plain data: natural text (one window per independent passage) at `max_tokens`,
    and for 2025 the random texts of every grid length (drawn lengths, as Kuratov et al.'s code)."""
    from cramlab.models.texts import get_texts, random_texts
    out = {"tokenizer": getattr(tokenizer, "name_or_path", ""), "seed": seed, "max_tokens": max_tokens,
           "natural": [t.to_dict() for t in get_texts(tokenizer, NATURAL_SOURCE, max_tokens, n_texts, seed)]}
    if paper == "2025":
        out["random"] = {str(n): [t.to_dict() for t in random_texts(tokenizer, n, n_texts, seed=seed * 1000 + n,
                                                                     random_lengths=True)]
                         for n in grid_lengths(max_tokens)}
    return out


def grid_lengths(max_tokens: int) -> list[int]:
    return [n for n in GRID_LENGTHS if n <= max_tokens] or [max_tokens]


def load_or_make_texts(out: Path, tokenizer, paper: str, n_texts: int, max_tokens: int, seed: int) -> dict:
    path = out / f"texts_{paper}.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        if len(data["natural"]) != n_texts or data["max_tokens"] != max_tokens or data["seed"] != seed:
            raise ConfigError(f"{path} holds {len(data['natural'])} texts of {data['max_tokens']} tokens (seed "
                              f"{data['seed']}), not {n_texts} of {max_tokens} (seed {seed}); use the same "
                              "--n-texts/--max-tokens/--seed to resume, or another --out")
        return data
    data = make_texts(tokenizer, paper, n_texts, max_tokens, seed)
    path.write_text(json.dumps(data), encoding="utf-8")
    return data


# --- plans -------------------------------------------------------------------------------------------------

def _key(model, source, s, n_tokens, text_id):
    return job_key(dict(model=model, source=source, layout=s.layout, protocol=s.protocol, n_mem=s.n_mem,
                        n_tokens=n_tokens, text_id=text_id))


def plan_2025(texts: dict, model: str, s0: CramSettings, replicates: int, sources=("natural", "random")) -> list[Job]:
    """Natural text: one job per (replicate, grid length), lengths ascending (the stop rule is applied while
    running). Random text: one job per replicate, the texts of every grid length L at their own drawn lengths,
    right-padded in the few batches `cram(mixed_lengths=True)` splits them into (`Job.mixed`) instead of one batch
    per L after another."""
    from cramlab.models.texts import Text
    jobs = []
    natural = [Text(**t) for t in texts["natural"]]
    for r in range(replicates):
        s = s0.replace(seed=r)
        tag = f"#r{r}"
        if "natural" in sources:
            for n in grid_lengths(texts["max_tokens"]):
                cut = [Text(t.source, t.text_id + tag, n, t.token_ids[:n], "") for t in natural]
                jobs.append(Job(f"2025/natural/L{n}/r{r}", "grid", "natural",
                                [_key(model, "natural", s, n, t.text_id) for t in cut], cut, s, r))
        if "random" in sources and "random" in texts:
            group, grid = [], {}
            for grid_n in sorted(texts["random"], key=int):
                for t in (Text(**d) for d in texts["random"][grid_n]):
                    group.append(Text(t.source, f"{t.text_id}@L{grid_n}{tag}", t.n_tokens, t.token_ids, t.text))
                    grid[group[-1].text_id] = int(grid_n)
            jobs.append(Job(f"2025/random/r{r}", "grid", "random",
                            [_key(model, "random", s, t.n_tokens, t.text_id) for t in group], group, s, r, grid,
                            mixed=True))
    return jobs


def plan_2026(texts: dict, model: str, on_gpu: bool, replicates: int, settings=SETTINGS_2026,
              max_steps: int | None = None) -> list[Job]:
    """One job per setting, its replicates in one batch (each text's start vectors drawn under its replicate's
    seed, as alone: search.progressive's `seeds`): a progressive job's time is set by its slowest text, not by
    the batch, so three replicates together take little more than one."""
    from cramlab.models.texts import Text
    natural = [Text(**t) for t in texts["natural"]]
    jobs = []
    for setting in settings:
        s = paper_settings("2026", on_gpu=on_gpu, max_steps=max_steps, setting=setting, seed=0)
        rows, replicate_of = [], {}
        for r in range(replicates):
            for t in natural:
                rows.append(Text(t.source, f"{t.text_id}#r{r}", t.n_tokens, t.token_ids, t.text))
                replicate_of[rows[-1].text_id] = r
        jobs.append(Job(f"2026/{setting}", "progressive", "natural",
                        [_key(model, "natural", s, texts["max_tokens"], t.text_id) for t in rows], rows, s, 0,
                        replicates=replicate_of))
    return jobs


# --- running -----------------------------------------------------------------------------------------------

def run_grid_job(lm, job: Job, common: dict, log=None, every_seconds: float = 30.0) -> list[dict]:
    """One grid job; with `log`, a line at most every `every_seconds` (step, texts done, seconds), so a job of
    minutes shows how far it got even if the call is killed before it ends."""
    from cramlab.engine.plain import cram
    t0 = last = time.perf_counter()

    def note(p):
        nonlocal last
        now = time.perf_counter()
        if now - last >= every_seconds:
            last = now
            log(f"  {job.name}: step {p.step}/{job.settings.max_steps}, {p.n_done}/{p.n_texts} texts done, "
                f"{now - t0:.0f} s")

    results = cram(lm, job.texts, job.settings, progress=False, mixed_lengths=job.mixed,
                   callback=None if log is None else note)
    lines = []
    for res in results:
        d = res.to_dict()
        line = {k: d[k] for k in LINE_FIELDS + EXTRA_LINE_FIELDS}
        line |= common | dict(source=job.source, layout=job.settings.layout, protocol=job.settings.protocol,
                              text_id=res.text_id, replicate=job.replicate, job=job.name,
                              grid_tokens=job.grid_tokens.get(res.text_id, res.n_tokens))
        lines.append(line)
    return lines


def run_progressive_job(lm, job: Job, common: dict, max_tokens: int) -> list[dict]:
    from cramlab.science.search import progressive
    seeds = [job.replicates[t.text_id] for t in job.texts] if job.replicates else None
    summary = progressive(lm, job.texts, job.settings, max_tokens=max_tokens, seeds=seeds)
    gains = progressive_gains(lm, job.settings, [t.token_ids for t in job.texts],
                              [t.vectors for t in summary.texts], summary.longest_tokens)
    lines = []
    for t, g in zip(summary.texts, gains):
        line = t.to_dict() | g
        seed = job.replicates.get(t.text_id, job.replicate)        # replicate r runs under seed r
        line |= common | dict(source=job.source, layout=job.settings.layout, protocol=job.settings.protocol,
                              n_tokens=max_tokens, replicate=seed, job=job.name,
                              settings=summary.settings | {"seed": seed})
        lines.append(line)
    return lines


def pc_information_gain_bits(ce_without_nats, ce_with_nats) -> float:
    """Tarasov et al.'s IG (information_gain.py): total cross-entropy without minus with the vectors, in bits,
    over t_2..t_N: t_1 is unscored in BOTH terms. Inputs: per-token CE in nats for t_1..t_N (entry 0 unused)."""
    if len(ce_without_nats) != len(ce_with_nats):
        raise BadInputError("ce_without_nats and ce_with_nats must cover the same tokens")
    return (sum(ce_without_nats[1:]) - sum(ce_with_nats[1:])) / math.log(2)


def progressive_gains(lm, s: CramSettings, rows, vectors, longest) -> list[dict]:
    """Per text, at its longest converged length: the paper's IG (bits, t_1 unscored in both terms) and the
    kit's `scored` IG (nats, over the tokens the protocol scores; t_1's baseline comes from the sink token)."""
    import torch

    from cramlab.engine.step import sink_token_id
    model, spec = lm.model, lm.spec
    embed = model.get_input_embeddings()
    dev = embed.weight.device
    sink_id = sink_token_id(s, spec)
    out = []
    for row, vec, n in zip(rows, vectors, longest):
        if n < 1 or vec is None:
            out.append(dict(paper_info_gain_bits=None, scored_info_gain_nats=None, ce_tokens=n))
            continue
        ids = torch.tensor([row[:n]], device=dev)
        sink = embed(torch.tensor([[sink_id]], device=dev))
        mem = vec.to(dev).view(1, s.n_mem, -1)
        prefix_with = torch.cat([sink, mem.to(sink.dtype)], 1) if s.layout == "sink-first" else mem
        alone = _token_ce_nats(model, None, ids, s)
        after_sink = _token_ce_nats(model, sink, ids, s)
        with_mem = _token_ce_nats(model, prefix_with, ids, s)
        without = after_sink if s.layout == "sink-first" else alone
        first = 0 if s.protocol == "pc" else 1
        scored = sum(after_sink[first:]) - sum(with_mem[first:]) if first == 0 else \
            sum(without[1:]) - sum(with_mem[1:])
        out.append(dict(paper_info_gain_bits=pc_information_gain_bits(without, with_mem),
                        scored_info_gain_nats=scored, ce_tokens=n))
    return out


def _token_ce_nats(model, prefix, ids, s: CramSettings) -> list[float]:
    """Per-token CE (nats) of t_1..t_N after `prefix` (t_1 predicted by the last prefix position; nan
    without a prefix). Autocast as the engine does when the settings ask for a dtype unlike the weights."""
    import torch
    import torch.nn.functional as F

    from cramlab.engine.step import autocast_for
    with torch.no_grad():
        emb = model.get_input_embeddings()(ids)
        x = emb if prefix is None else torch.cat([prefix.to(emb.dtype), emb], 1)
        with autocast_for(model, s.dtype, ids.device):
            logits = model(inputs_embeds=x, use_cache=False).logits.float()
        p = 0 if prefix is None else prefix.shape[1]
        n = ids.shape[1]
        if p:
            ce = F.cross_entropy(logits[0, p - 1:p - 1 + n], ids[0], reduction="none").tolist()
        else:
            ce = [float("nan")] + F.cross_entropy(logits[0, :n - 1], ids[0, 1:], reduction="none").tolist()
    return ce


def _device_name(lm) -> str:
    import torch
    dev = lm.spec.device
    return torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda") else f"cpu ({platform.machine()})"


def run(lm, paper: str, out: Path, *, n_texts: int = 50, replicates: int | None = None, seed: int = 0,
        max_tokens: int = MAX_TOKENS, max_steps: int | None = None, settings_2026=SETTINGS_2026,
        sources_2025=("natural", "random"), max_seconds: float | None = None, texts: dict | None = None,
        log=print, seconds_by_kind: dict | None = None) -> dict:
    """Run (or resume) one paper's jobs into `out/raw_<paper>.jsonl`; returns the timing record.
    `seconds_by_kind`: the last job's seconds of each kind, read and updated here; `--paper both` passes one
    dict to both papers so the budget guard prices the second paper's first job by the first paper's jobs."""
    if paper not in PAPERS:
        raise BadInputError(f"unknown paper {paper!r}; use --paper 2025 or --paper 2026")
    replicates = replicates if replicates is not None else (3 if paper == "2026" else 1)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    on_gpu = lm.spec.device.startswith("cuda")
    texts = texts or load_or_make_texts(out, lm.tokenizer, paper, n_texts, max_tokens, seed)
    t_texts = time.perf_counter() - t_start
    model = lm.spec.name
    if paper == "2025":
        base = paper_settings("2025", on_gpu=on_gpu, max_steps=max_steps)
        jobs = plan_2025(texts, model, base, replicates, sources_2025)
    else:
        jobs = plan_2026(texts, model, on_gpu, replicates, settings_2026, max_steps)
    overrides = {k: v for k, v in dict(max_steps=max_steps, max_tokens=max_tokens if max_tokens != MAX_TOKENS else None,
                                       n_texts=n_texts if n_texts < 50 else None).items() if v is not None}
    run_settings = dict(paper=paper, model=model, fingerprint=lm.spec.fingerprint, model_dtype=lm.spec.dtype,
                        n_texts=n_texts, seed=seed, max_tokens=max_tokens, protocol_overrides=overrides)
    digest = settings_digest(run_settings)
    raw = out / f"raw_{paper}.jsonl"
    raw.touch()                       # exists from the start, so the tables step finds it even if no job ran
    rows = read_results(raw)
    check_same_settings(rows, run_settings, raw)
    have = {job_key(r) for r in rows}
    device = _device_name(lm)
    common = dict(model=model, n_mem=1, paper=paper, card=device, d=lm.spec.d, vocab_size=lm.spec.vocab_size,
                  model_dtype=lm.spec.dtype,
                  date=time.strftime("%Y-%m-%d"), protocol_overrides=overrides, settings_digest=digest,
                  sweep_settings=run_settings)
    timing = dict(paper=paper, device=device, date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  command="cramlab " + " ".join(sys.argv[1:]), model=model, model_dtype=lm.spec.dtype, n_jobs=len(jobs),
                  texts_seconds=t_texts, jobs=[], skipped_done=0, skipped_lines=0, stopped_by_budget=[],
                  protocol_overrides=overrides)
    stopped_sources: set = set()      # (source, replicate) whose grid hit a length where every text failed
    last_seconds: dict[str, float] = {} if seconds_by_kind is None else seconds_by_kind
    for i, job in enumerate(jobs, 1):
        if all(k in have for k in job.keys):
            timing["skipped_done"] += 1
            _note_stop(job, [r for r in rows if r.get("job") == job.name], stopped_sources)
            continue
        if (job.source, job.replicate) in stopped_sources and job.kind == "grid" and job.source == "natural":
            continue
        if job.per_text:              # keys are per text: run only the texts not in the file yet
            n_all, job = len(job.keys), job.without(have)
            timing["skipped_lines"] += n_all - len(job.keys)
        elapsed = time.perf_counter() - t_start
        kind = "/".join(job.name.split("/")[:2])
        estimate = last_seconds.get(kind, max(last_seconds.values(), default=0.0))   # a new kind: the longest so far
        if max_seconds is not None and elapsed + estimate > max_seconds:
            timing["stopped_by_budget"].append(job.name)
            log(f"[{i}/{len(jobs)}] {job.name}: skipped, budget of {max_seconds:.0f} s would be exceeded "
                f"(elapsed {elapsed:.0f} s)")
            continue
        t0 = time.perf_counter()
        if job.kind == "grid":
            lines = run_grid_job(lm, job, common, log)
        else:
            lines = run_progressive_job(lm, job, common, texts["max_tokens"])
        seconds = time.perf_counter() - t0
        for line in lines:
            line["job_seconds"] = seconds
        append_lines(raw, lines)
        rows.extend(lines)
        have.update(job_key(r) for r in lines)
        last_seconds[kind] = seconds
        _note_stop(job, lines, stopped_sources)
        timing["jobs"].append(dict(job=job.name, texts=len(lines), seconds=round(seconds, 3)))
        timing["total_seconds"] = time.perf_counter() - t_start
        (out / f"timing_{paper}.json").write_text(json.dumps(timing, indent=1), encoding="utf-8")
        log(f"[{i}/{len(jobs)}] {job.name}: {len(lines)} lines, {seconds:.1f} s ({_summary(job, lines)})")
    timing["total_seconds"] = time.perf_counter() - t_start
    (out / f"timing_{paper}.json").write_text(json.dumps(timing, indent=1), encoding="utf-8")
    return timing


def _note_stop(job: Job, lines: list[dict], stopped: set) -> None:
    """Kuratov et al.'s grid goes on to the first length where every text fails (natural text only: the
    random grid's drawn lengths always include short texts)."""
    if job.kind == "grid" and job.source == "natural" and lines and not any(r["converged"] for r in lines):
        stopped.add((job.source, job.replicate))


def _summary(job: Job, lines: list[dict]) -> str:
    if job.kind == "grid":
        acc = sum(r["teacher_forced_accuracy"] for r in lines) / len(lines)
        return f"mean accuracy {acc:.3f}, {sum(r['converged'] for r in lines)} converged"
    longest = [r["longest_tokens"] for r in lines]
    return f"longest mean {sum(longest) / len(longest):.1f} tokens"


def read_raw(out: Path, paper: str) -> list[dict]:
    path = Path(out) / f"raw_{paper}.jsonl"
    if not path.exists():
        raise BadInputError(f"{path} not found; run `cramlab reproduce --paper {paper} --out {out}` first")
    return read_results(path, repair=False)
