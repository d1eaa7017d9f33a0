"""`cramlab notebooks run [--fast|--smoke] [--out DIR] [--only NN] [--jobs N] [-p KEY=VALUE]`: the series as a check;
`cramlab notebooks book --from RUN_DIR --out SITE_DIR`: the executed series as a static site (`make book`).

Owns: the flags, `--param` parsing and the printed summary table. Does not own: running the notebooks
(cramlab.lab.notebook_runner.run_series) or building the site (cramlab.lab.book.build_book).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cramlab.errors import BadInputError
from cramlab.lab.notebook_runner import run_series


def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise BadInputError(f"--param takes KEY=VALUE (the value as JSON or a plain string), got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def register(subparsers) -> None:
    """notebooks run."""
    p = subparsers.add_parser("notebooks", help="run the notebook series with papermill (regression check)")
    sub = p.add_subparsers(dest="notebooks_command", required=True)
    q = sub.add_parser("run", help="execute the numbered notebooks and write summary.json")
    q.add_argument("--fast", action="store_true", help="each notebook's small regression budget (minutes on a CPU)")
    q.add_argument("--smoke", action="store_true", help="tiny random model, a few steps: checks mechanics only")
    q.add_argument("--out", default="runs/notebooks", help="folder for executed notebooks and summary.json")
    q.add_argument("--only", action="append", help="notebook number or name (repeat or comma-separate)")
    q.add_argument("--notebooks", help="folder of the notebooks (default: ./notebooks)")
    q.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter in every notebook that declares it (value parsed as JSON)")
    q.add_argument("--jobs", type=int, default=1,
                   help="notebooks run at once, each kernel with its share of the CPU threads (default 1)")
    q.set_defaults(func=_cmd_run)
    b = sub.add_parser("book", help="turn an executed series (notebooks run --out DIR) into HTML pages + index.html")
    b.add_argument("--from", dest="executed", required=True, help="the --out folder of `cramlab notebooks run`")
    b.add_argument("--out", default="runs/book", help="folder for index.html, the pages and plotly.min.js")
    b.set_defaults(func=_cmd_book)


def _cmd_run(args) -> int:
    if args.fast and args.smoke:
        raise BadInputError("choose one of --fast and --smoke")
    mode = "smoke" if args.smoke else "fast" if args.fast else "full"
    params = dict(_parse_param(p) for p in args.param)
    summary = run_series(args.notebooks, args.out, mode=mode, only=args.only, parameters=params,
                         jobs=args.jobs)
    print(f"\n{'notebook':<28}{'ok':>4}{'seconds':>9}  figures")
    for name, e in summary["notebooks"].items():
        figs = ", ".join(f"{k}={_short(v)}" for k, v in list(e["figures"].items())[:4])
        print(f"{name:<28}{'yes' if e['ok'] else 'NO':>4}{e['duration_s']:>9.1f}  {figs}")
    print(f"total {summary['total_duration_s']:.0f} s; summary written to {Path(args.out) / 'summary.json'}")
    return 0 if summary["ok"] else 1


def _cmd_book(args) -> int:
    from cramlab.lab.book import build_book
    book = build_book(args.executed, args.out)
    for p in book["pages"]:
        print(f"{p['page']:<32}{p['figures']:>3} figure(s)  {p['title']}")
    print(f"open {book['index']}")
    return 0


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    text = json.dumps(v)
    return text if len(text) <= 24 else text[:21] + "..."
