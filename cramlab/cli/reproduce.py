"""`cramlab reproduce --paper 2025|2026|both --out DIR`: a paper's protocol end to end, resumable, then its tables.

Owns: the flags and what the command prints. Does not own: the jobs, texts and raw lines
(cramlab.science.reproduce) or the tables (cramlab.science.reproduce_tables).

    cramlab reproduce --paper 2025 --out runs/repro            # Kuratov et al.'s grid, natural + random text
    cramlab reproduce --paper 2026 --out runs/repro            # progressive, 4 settings x 3 replicates
    cramlab reproduce --paper both --out runs/repro            # the two above in one process, one folder
    cramlab reproduce --paper 2025 --out runs/repro --prepare-only   # texts only (a CPU with wordfreq)
    cramlab reproduce --paper 2026 --out runs/repro --tables-only    # tables from the raw lines
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from cramlab.cli.common import add_kernels_arg, check_writable
from cramlab.errors import BadInputError


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="run a paper's protocol end to end (resumable) and write its tables",
                              description=__doc__.splitlines()[0])
    p.add_argument("--paper", required=True, choices=["2025", "2026", "both"],
                   help="2025: Kuratov et al.'s grid (grid-2025); 2026: Tarasov et al.'s progressive cramming; "
                        "both: 2025 then 2026 in one process under one --max-seconds")
    p.add_argument("--out", required=True, help="folder: texts, raw lines, timing and tables go here")
    p.add_argument("--n-texts", type=int, default=50, help="independent texts (default 50; fewer is an override)")
    p.add_argument("--replicates", type=int, default=None,
                   help="seeds 0..R-1 (default 3 for 2026, 1 for 2025; with both, a given R is both papers')")
    p.add_argument("--settings", default=None,
                   help="2026: comma-separated layout/protocol (default all four: "
                        "mem-first/pc,mem-first/hc,sink-first/pc,sink-first/hc)")
    p.add_argument("--sources", default="natural,random", help="2025: natural, random or both (default both)")
    p.add_argument("--model", default="smollm2-135m", help="registry name, .gguf file, or tiny-llama for tests")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_kernels_arg(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the texts (replicates use seeds 0..R-1)")
    p.add_argument("--max-tokens", type=int, default=128,
                   help="longest length (2025 grid cap, 2026 progressive cap); other than 128 is an override")
    p.add_argument("--max-steps", type=int, default=None,
                   help="TEST BUDGET: steps per length instead of the preset's (recorded as an override)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="budget from the start, model loading included: start no job that would end past it (the "
                        "last job of its kind sets the estimate); what finished is kept, a rerun resumes")
    p.add_argument("--prepare-only", action="store_true", help="write the texts file and stop (no model)")
    p.add_argument("--tables-only", action="store_true", help="write the tables from the raw lines and stop")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    from cramlab.science import reproduce as rp
    from cramlab.science.reproduce_tables import write_tables
    t_command = time.perf_counter()
    out = Path(args.out)
    check_writable(out)
    if args.n_texts < 1 or (args.replicates is not None and args.replicates < 1):
        raise BadInputError("--n-texts and --replicates must be >= 1")
    if args.max_tokens < 8:
        raise BadInputError(f"--max-tokens must be >= 8 (the first grid length), got {args.max_tokens}")
    settings = tuple(args.settings.split(",")) if args.settings else rp.SETTINGS_2026
    bad = [s for s in settings if s not in rp.SETTINGS_2026]
    sources = tuple(args.sources.split(","))
    bad += [s for s in sources if s not in ("natural", "random")]
    if bad:
        raise BadInputError(f"unknown setting/source {', '.join(bad)}; settings: {', '.join(rp.SETTINGS_2026)}; "
                            "sources: natural, random")
    # --paper both: rp.PAPERS in its order (2025 first), one process, one budget; the 2026 model loads in-process
    papers = rp.PAPERS if args.paper == "both" else (args.paper,)
    if args.tables_only:
        return max(_tables(rp, write_tables, out, paper) for paper in papers)
    if args.prepare_only:
        from cramlab.models.load import load_tokenizer
        tok = load_tokenizer()
        for paper in papers:
            rp.load_or_make_texts(out, tok, paper, args.n_texts, args.max_tokens, args.seed)
            print(f"texts written to {out / f'texts_{paper}.json'}")
        return 0
    from cramlab.models.load import load_model, resolve_device
    device = resolve_device(args.device)
    seconds_by_kind: dict = {}      # one budget guard over both papers: the first paper's jobs price the second's
    rc, record = 0, []
    for paper in papers:
        t0 = time.perf_counter()
        lm = load_model(args.model, device=device, dtype=rp.model_dtype_for(paper, device), kernels=args.kernels)
        load_s = time.perf_counter() - t0
        print(f"model {lm.spec.name} on {lm.spec.device} ({lm.spec.dtype}), loaded in {load_s:.1f} s", flush=True)
        left_s = None if args.max_seconds is None else args.max_seconds - (time.perf_counter() - t_command)
        timing = rp.run(lm, paper, out, n_texts=args.n_texts, replicates=args.replicates, seed=args.seed,
                        max_tokens=args.max_tokens, max_steps=args.max_steps, settings_2026=settings,
                        sources_2025=sources, max_seconds=left_s, log=lambda m: print(m, flush=True),
                        seconds_by_kind=seconds_by_kind)
        timing["load_model_seconds"] = load_s
        t1 = time.perf_counter()
        if rp.read_raw(out, paper):
            rc = max(rc, _tables(rp, write_tables, out, paper))
        timing["tables_seconds"] = time.perf_counter() - t1
        (out / f"timing_{paper}.json").write_text(json.dumps(timing, indent=1), encoding="utf-8")
        jobs_s = sum(j["seconds"] for j in timing["jobs"])
        print(f"{paper} phases: load {load_s:.1f} s, texts {timing['texts_seconds']:.1f} s, jobs {jobs_s:.1f} s, "
              f"tables {timing['tables_seconds']:.1f} s; timing in {out / f'timing_{paper}.json'}", flush=True)
        record.append(dict(paper=paper, load_model_seconds=load_s, jobs_seconds=jobs_s, n_jobs_run=len(timing["jobs"]),
                           stopped_by_budget=len(timing["stopped_by_budget"])))
    if len(papers) > 1:
        total_s = time.perf_counter() - t_command
        both = dict(command="cramlab " + " ".join(sys.argv[1:]), device=timing["device"],
                    date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), papers=record,
                    seconds_since_command_start=total_s)
        (out / "timing_both.json").write_text(json.dumps(both, indent=1), encoding="utf-8")
        print(f"both papers: {total_s:.1f} s from the command's start (imports before it not counted: time the "
              f"process for those); {sum(r['jobs_seconds'] for r in record):.1f} s of jobs", flush=True)
    return rc


def _tables(rp, write_tables, out: Path, paper: str) -> int:
    rows = rp.read_raw(out, paper)
    if not rows:
        raise BadInputError(f"{out}/raw_{paper}.jsonl has no lines yet; run the command without --tables-only")
    write_tables(out, paper, rows)
    print((out / f"tables_{paper}.md").read_text(encoding="utf-8"))
    print(f"tables: {out}/tables_{paper}.json, tables_{paper}.md; "
          f"results-page section: {out}/results_section_{paper}.md")
    return 0
