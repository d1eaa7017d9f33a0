"""Loading one of the repository's scripts (experiments/, tools/) as a module, for the tests that check it.

Owns: `load_script`, the one place tests turn a script path into a module. Does not: run the script's main.
"""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path: str):
    """The module of the script at REPO/`relative_path` (e.g. "experiments/gpu_check.py"), executed once."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
