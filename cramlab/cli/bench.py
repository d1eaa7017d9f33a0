"""`cramlab bench` (our engine against the authors' loop) and `cramlab bench-chart` (its reports as HTML).

Owns: their flags and files. Does not own: the measurement (cramlab.science.bench, imported when the command
runs: it loads torch) or the chart (cramlab.lab.plots.bench_chart).
"""
from __future__ import annotations

import json
import sys

from cramlab.cli.common import add_kernels_arg
from cramlab.errors import BadInputError


def register(sub) -> None:
    """bench and bench-chart."""
    p = sub.add_parser("bench", help="speed of our engine against the authors' loop, same process")
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--dtype", choices=["float32", "bfloat16"],
                   help="our engine's weights (default: bfloat16 on a GPU, float32 on a CPU); the baseline stays fp32")
    add_kernels_arg(p, note=" (our engine's; the baseline always runs transformers' own)")
    p.add_argument("--parts", nargs="+", default=["embedded", "llama1b"], choices=["embedded", "llama1b"])
    p.add_argument("--n-texts", type=int, default=64)
    p.add_argument("--n-tokens", type=int, default=64)
    p.add_argument("--steps", type=int, default=40, help="timed steps per configuration (after 3 warm-up steps)")
    p.add_argument("--race", action="store_true", help="also the all-converged race (CPU target)")
    p.add_argument("--race-texts", type=int, default=8)
    p.add_argument("--race-tokens", type=int, default=16)
    p.add_argument("--race-lr", type=float, default=1e-2)
    p.add_argument("--race-max-steps", type=int, default=2000)
    p.add_argument("--llama-tokens", type=int, default=512)
    p.add_argument("--llama-batches", type=int, nargs="+", default=[64, 48, 32, 16, 8])
    p.add_argument("--out", help="write the report as JSON here")
    p.set_defaults(func=_cmd)
    c = sub.add_parser("bench-chart", help="plotly chart (HTML) of one or more `cramlab bench --out` reports")
    c.add_argument("reports", nargs="+", help="JSON files written by `cramlab bench --out`")
    c.add_argument("--out", default="bench.html", help="HTML file to write")
    c.set_defaults(func=_chart_cmd)


def _chart_cmd(args) -> int:
    from cramlab.lab.plots import bench_chart
    reports = []
    for path in args.reports:
        try:
            with open(path) as f:
                reports.append(json.load(f))
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"cannot read bench report {path!r} ({exc}); give the JSON written by "
                                f"`cramlab bench --out`") from exc
    fig = bench_chart(reports)
    if not fig.data:
        raise BadInputError("no rows with a baseline in these reports; give JSON written by `cramlab bench --out`")
    fig.write_html(args.out, include_plotlyjs="cdn")
    print(f"wrote {args.out} ({len(fig.data)} report(s))")
    return 0


def _cmd(args) -> int:
    from cramlab.science.bench import run
    args.command_line = "cramlab " + " ".join(sys.argv[1:])
    report = run(args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0
