"""cramlab: cram a long text into one input vector of a frozen language model, and decode it back.

The front door: the names a notebook and a user reach for, importable from `cramlab` itself::

    from cramlab import load_model, cram, decode, CramSettings, capacity_tokens, get_texts, progressive

    lm = load_model("smollm2-135m")                       # the embedded model, no network
    texts = get_texts(lm.tokenizer, "unseen", 16)         # or user_texts(lm.tokenizer, text_file="my.txt", n_tokens=16)
    [r] = cram(lm, texts, CramSettings.from_preset("progressive-2026"))
    print(r.teacher_forced_accuracy, r.decoded_text, capacity_tokens(lm.spec.d, lm.spec.vocab_size))

  models     load_model, LoadedModel
  texts      get_texts, user_texts, Text, SOURCES
  settings   CramSettings, PRESETS
  engine     cram, CramResult, decode, save_vectors, load_vectors, decode_file
  science    capacity_tokens, capacity_of, token_surprisal, grid_search, bisect_search, progressive,
             load_config, run_sweep
  errors     CramlabError, BadInputError

Owns: that list (`EXPORTS`: name -> the module that defines it) and nothing else. Each name loads its module
on first use (PEP 562 `__getattr__`), so `import cramlab` stays light (no torch) and `cramlab.capacity`
stays instant. Does not own: anything the names do.

Two names, `cram` and `decode`, are also the names of the modules that define them (cramlab/cram.py,
cramlab/decode.py). Python binds a submodule as an attribute of its package when it is imported, which
would make `from cramlab import cram` a module or a function depending on what ran before; the package's
`__setattr__` below keeps those two attributes the functions. The modules stay `cramlab.cram` and
`cramlab.decode` in `sys.modules`: `from cramlab.cram import CramResult` and
`importlib.import_module("cramlab.cram")` reach them; `import cramlab.cram as m` gives the function.
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

from .errors import BadInputError, CramlabError  # noqa: E402  (light: no torch)

#: The front door: exported name -> the module (under cramlab) that defines it.
EXPORTS = {
    "load_model": "models", "LoadedModel": "models",
    "get_texts": "texts", "user_texts": "texts", "Text": "texts", "SOURCES": "texts",
    "CramSettings": "settings", "PRESETS": "settings",
    "cram": "cram", "CramResult": "cram",
    "decode": "decode",
    "save_vectors": "vectors", "load_vectors": "vectors", "decode_file": "vectors",
    "capacity_tokens": "capacity", "capacity_of": "capacity",
    "token_surprisal": "surprisal",
    "grid_search": "search", "bisect_search": "search", "progressive": "search",
    "load_config": "sweep", "run_sweep": "sweep",
}
#: Exported functions that share their name with the module that defines them.
_SHADOWED = frozenset(name for name, module in EXPORTS.items() if name == module)

__all__ = ["BadInputError", "CramlabError", "__version__", *EXPORTS]


def __getattr__(name: str):
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cramlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value            # loaded once; the module dict bypasses __setattr__ below
    return value


def __dir__():
    return sorted(set(globals()) | set(EXPORTS))


class _FrontDoor(types.ModuleType):
    """The package, whose `cram` and `decode` stay the functions when their modules are imported."""

    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return                     # the import system binding the submodule: it stays in sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _FrontDoor
