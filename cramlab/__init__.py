"""cramlab: cram a long text into one input vector of a frozen language model, and decode it back.

The front door: the names a notebook and a user reach for, importable from `cramlab` itself::

    from cramlab import load_model, cram, decode, CramSettings, capacity_tokens, get_texts, progressive

    lm = load_model("smollm2-135m")                       # the embedded model, no network
    texts = get_texts(lm.tokenizer, "unseen", 16)         # or user_texts(lm.tokenizer, text_file="my.txt", n_tokens=16)
    [r] = cram(lm, texts, CramSettings.from_preset("progressive-2026"))
    print(r.teacher_forced_accuracy, r.decoded_text, capacity_tokens(lm.spec.d, lm.spec.vocab_size))

The folders (docs/architecture.md draws them; tests/test_architecture.py checks who may import whom):

  engine/    settings + presets, the one step, its schedulers plain (the loop to read), fast and grow
             (GPUs), decoding back, vector files, kernels
  models/    loading frozen models, their cache, exact-N-token texts
  science/   searches, sweeps, reproduce, reports and Table 1, the papers' figures, surprisal, the benchmark
  poc/       `cramlab poc`: one's own records, the alternatives, the verdict and report
  lab/       the notebook side: widgets, plots, exercises, the papermill runner
  cli/       the `cramlab` command, one module per group of subcommands
  capacity.py, errors.py, env.py   the light leaves every folder may use (no torch)

The names (`EXPORTS`, name -> the module that defines it):

  models     load_model, LoadedModel, get_texts, user_texts, Text, SOURCES
  engine     CramSettings, PRESETS, cram, CramResult, decode, save_vectors, load_vectors, decode_file
  science    capacity_tokens, capacity_of, token_surprisal, grid_search, bisect_search, progressive,
             load_config, run_sweep
  errors     CramlabError, BadInputError

Owns: that list and nothing else. Each name loads its module on first use (PEP 562 `__getattr__`), so
`import cramlab` stays light (no torch) and `cramlab.capacity` stays instant. Does not own: anything the
names do.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from cramlab.errors import BadInputError, CramlabError  # noqa: E402  (light: no torch)

#: The front door: exported name -> the module (under cramlab) that defines it.
EXPORTS = {
    "load_model": "models.load", "LoadedModel": "models.load",
    "get_texts": "models.texts", "user_texts": "models.texts", "Text": "models.texts", "SOURCES": "models.texts",
    "CramSettings": "engine.settings", "PRESETS": "engine.settings",
    "cram": "engine.plain", "CramResult": "engine.plain",
    "decode": "engine.decode",
    "save_vectors": "engine.vectors", "load_vectors": "engine.vectors", "decode_file": "engine.vectors",
    "capacity_tokens": "capacity", "capacity_of": "capacity",
    "token_surprisal": "science.surprisal",
    "grid_search": "science.search", "bisect_search": "science.search", "progressive": "science.search",
    "load_config": "science.sweep", "run_sweep": "science.sweep",
}
__all__ = ["BadInputError", "CramlabError", "__version__", *EXPORTS]


def __getattr__(name: str):
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cramlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value            # loaded once
    return value


def __dir__():
    return sorted(set(globals()) | set(EXPORTS))
