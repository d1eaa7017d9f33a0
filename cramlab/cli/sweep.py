"""`cramlab sweep` (run a resumable sweep) and `cramlab report` (Table 1 from its results file).

Owns: their flags and what they print. Does not own: the sweep (cramlab.science.sweep), the results file
(cramlab.science.results_file) or Table 1 (cramlab.science.report).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from cramlab.cli.common import add_kernels_arg, add_settings_args, add_text_args, settings_given
from cramlab.engine.settings import LAYOUTS, PROTOCOLS
from cramlab.errors import BadInputError, ConfigError
from cramlab.models.texts import SOURCES
from cramlab.science.report import PAPER_THRESHOLD, format_report, report, report_table, write_csv
from cramlab.science.results_file import job_key, read_results
from cramlab.science.sweep import AXES, dist_env, load_config, n_jobs, plan, run_sweep


def register(subparsers) -> None:
    """sweep and report."""
    p = subparsers.add_parser("sweep", help="run a resumable sweep; one JSON line per finished job",
                              description="Run models x sources x lengths x n_mem x texts; resumable; "
                                          "`torchrun --nproc-per-node=G -m cramlab sweep ...` splits it.")
    p.add_argument("config", nargs="?", help="YAML or JSON file (keys: see cramlab.science.sweep.SweepConfig)")
    p.add_argument("--out", required=True, help="results file (JSON lines), appended to and resumed")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--sources", help=f"comma-separated: {', '.join(SOURCES)}")
    add_text_args(p, source=False)         # or your own text: its jobs' source is "own"
    p.add_argument("--lengths", help="comma-separated lengths in tokens")
    # the axes: the settings' n_mem, layout and protocol, several values each (a config's list keys)
    p.add_argument("--n-mem", help="comma-separated numbers of vectors (default: the preset's)")
    p.add_argument("--layouts", "--layout", help=f"comma-separated: {', '.join(LAYOUTS)} (default: the preset's)")
    p.add_argument("--protocols", "--protocol", help=f"comma-separated: {', '.join(PROTOCOLS)} (default: the preset's)")
    p.add_argument("--n-texts", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device")
    # every other CramSettings field, one flag each; a flag given beats the config file, which beats the preset
    add_settings_args(p, skip=tuple(AXES.values()))
    add_kernels_arg(p, default=None, note=" (default: the config's, else auto)")
    p.add_argument("--no-decode", action="store_true", help="skip greedy decoding")
    p.add_argument("--dry-run", action="store_true", help="print the plan and how much is done, run nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=_cmd_sweep)

    p = subparsers.add_parser("report", help="Table 1 from a results file (ours beside the paper's)")
    p.add_argument("results", help="a results file written by `cramlab sweep`")
    p.add_argument("--csv", help="also write the table as CSV")
    p.add_argument("--threshold", type=float, default=PAPER_THRESHOLD)
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


def config_from_args(args):
    """The SweepConfig of a command line: the config file, the flags given over it, the preset under both."""
    return load_config(args.config, models=_split(args.models, str), sources=_split(args.sources, str),
                       lengths=_split(args.lengths, int), n_mem=_split(args.n_mem, int),
                       layouts=_split(args.layouts, str), protocols=_split(args.protocols, str),
                       n_texts=args.n_texts, batch_size=args.batch_size, device=args.device, kernels=args.kernels,
                       text=args.text, text_file=args.text_file, text_dir=args.text_dir,
                       decode=False if args.no_decode else None, preset=args.preset, given=settings_given(args))


def _cmd_sweep(args) -> int:
    cfg = config_from_args(args)
    if args.dry_run:
        out = Path(args.out)
        have = {job_key(r) for r in read_results(out, repair=False)} if out.exists() else set()
        print(f"{n_jobs(cfg)} jobs in {len(plan(cfg))} groups; {len(have)} already in {out}")
        for g in plan(cfg):
            print(f"  {g.model} {g.source} {g.layout} {g.protocol} k={g.n_mem} N={g.n_tokens} x {cfg.n_texts}")
        return 0
    summary = run_sweep(cfg, args.out, log=lambda *a: print(*a, flush=True))
    if dist_env()[0] == 0:
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
