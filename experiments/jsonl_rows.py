"""One row a measurement, printed and appended to a JSON-lines file at once: `append_row` (the GPU ladder's rows
as they are), and `row_writer`, which also stamps each row with torch's version, its thread count and the time
(the CPU scripts: demo_settings, cpu_packed_linear), and `write_result` for a script's one JSON object."""
from __future__ import annotations

import json
import time


def append_row(path, row: dict) -> None:
    """Print `row` as JSON and append it as one line to `path`."""
    print(json.dumps(row), flush=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def row_writer(path):
    """A function that stamps one row (a dict) and appends it to `path` with `append_row`."""
    import torch

    def emit(row: dict) -> None:
        append_row(path, row | {"torch": torch.__version__, "threads": torch.get_num_threads(),
                                "date": time.strftime("%Y-%m-%d %H:%M")})

    return emit


def write_result(path, result: dict) -> None:
    """Write a script's one result object to `path` (indented JSON) and print it on one line."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
