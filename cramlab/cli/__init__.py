"""Command line: `cramlab capacity | cram | decode | env | ...` (also `python -m cramlab`).

Every mistake the kit knows about ends as one line `error: ...` on stderr and a non-zero exit code.

Owns: the parser (`build_parser`, one `register(subparsers)` per command group, imported statically so a
broken module fails loudly instead of silently losing its command) and `main` (CramlabError -> exit 2,
Ctrl-C -> exit 130). Each group lives in its own module: basic (capacity, cram, decode, demo, env),
search, sweep (sweep, report), bench (bench, bench-chart), notebooks, poc (the proof of concept), reproduce
(both papers' protocols end to end). Does not own: anything the commands compute; the package modules never
import from here.
"""
from __future__ import annotations

import argparse
import sys

from cramlab.cli import basic, bench, notebooks, poc, reproduce, search, sweep
from cramlab.errors import CramlabError

#: The command groups, in the order `cramlab --help` lists them.
GROUPS = (basic, notebooks, search, sweep, bench, poc, reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cramlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CramlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; results written so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
