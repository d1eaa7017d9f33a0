"""One row a measurement, printed and appended to a JSON-lines file at once, stamped with torch's version, its
thread count and the time: what the CPU bench scripts (demo_restarts, cpu_packed_linear) write."""
from __future__ import annotations

import json
import time


def row_writer(path):
    """A function that stamps, prints and appends one row (a dict) to `path`."""
    import torch

    def emit(row: dict) -> None:
        row = row | {"torch": torch.__version__, "threads": torch.get_num_threads(),
                     "date": time.strftime("%Y-%m-%d %H:%M")}
        print(json.dumps(row), flush=True)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")

    return emit
