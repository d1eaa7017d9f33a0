"""On-disk cache of what transformers builds from a GGUF file: safetensors weights, config, tokenizer files.

Reading the embedded GGUF cost ~30 s of CPU per process on the 2-core machine (cProfile: the `gguf` reader
walking the 49k-entry vocabulary and merge lists, once for the config and once for the weights; the
tensor-name map, built 397 times; de-quantisation itself ~5 s; the tokenizer parses the file once more,
~5 s). The first load writes the result as one cache entry; later processes read the entry (~1 s of CPU,
plus importing torch and transformers, which every process pays anyway).

Owns: where the cache lives ($CRAMLAB_CACHE_DIR, else platformdirs' user cache folder), the key of an entry
(kind, the GGUF file's fingerprint, the transformers and gguf versions that converted it), writing an entry
atomically (a temporary folder renamed into place, its manifest written last), checking an entry before it
is used (manifest, sizes of all files, sha256 of the small ones, a safetensors header that parses) and the
one-line warning when an entry is rebuilt. Does not own: parsing GGUF files, fingerprints, freezing or
placing the model (models.py). No pickle: weights are safetensors, everything else JSON.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
import warnings
from importlib import metadata
from pathlib import Path

CACHE_ENV = "CRAMLAB_CACHE_DIR"
MANIFEST = "cramlab-cache.json"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
KINDS = ("model", "tokenizer")          # a model entry holds the tokenizer too; tokenizer entries serve
                                        # the tiny test models, which borrow the embedded tokenizer
_FULL_CHECKSUM_MAX_BYTES = 16 << 20     # files up to this size are checked byte for byte on every load


class ModelCacheWarning(UserWarning):
    """A cache entry was unusable (rebuilt) or could not be written (the GGUF file is read directly)."""


def warn(message: str) -> None:
    warnings.warn(message, ModelCacheWarning, stacklevel=3)


def cache_root() -> Path:
    """$CRAMLAB_CACHE_DIR if set, else the user cache folder (~/.cache/cramlab on Linux)."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs
    return Path(platformdirs.user_cache_dir("cramlab"))


def converter_versions() -> dict:
    """The versions that turn a GGUF file into a model; a new one may convert differently, so they key the entry."""
    out = {}
    for pkg in ("transformers", "gguf"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "none"
    return out


def entry_dir(gguf_path: Path, fingerprint: str, kind: str = "model") -> Path:
    """The folder of this GGUF file's entry (by content fingerprint) as the installed versions convert it."""
    if kind not in KINDS:
        raise ValueError(f"cache entry kind must be one of {KINDS}, not {kind!r}")
    v = converter_versions()
    tag = f"{Path(gguf_path).stem}-{fingerprint}-tf{v['transformers']}-gguf{v['gguf']}-c{FORMAT_VERSION}"
    return cache_root() / kind / tag


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def check_entry(folder: Path, fingerprint: str) -> str | None:
    """None if the entry at `folder` is sound, else why not, in a few words ('missing' if there is none).
    Files above 16 MiB (the weights) are checked by size and by parsing their safetensors header; smaller
    files byte for byte against the manifest's sha256."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"manifest unreadable ({type(exc).__name__})"
    if manifest.get("gguf_fingerprint") != fingerprint or manifest.get("format") != FORMAT_VERSION:
        return "manifest names another GGUF file or format"
    if manifest.get("kind") == "model" and WEIGHTS_FILE not in files:
        return f"manifest lists no {WEIGHTS_FILE}"
    for name, info in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != info.get("size"):
            return f"{name} has {size} bytes, the manifest says {info.get('size')}"
        if size <= _FULL_CHECKSUM_MAX_BYTES and _sha256(path) != info.get("sha256"):
            return f"{name} does not match its checksum"
    if WEIGHTS_FILE in files:
        try:
            from safetensors import safe_open
            with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as f:
                f.keys()
        except Exception as exc:  # noqa: BLE001 - any parse failure means the file is unusable
            return f"{WEIGHTS_FILE} does not parse ({type(exc).__name__})"
    return None


def write_entry(folder: Path, fingerprint: str, gguf_path: Path, tokenizer, model=None) -> Path:
    """Save `tokenizer` (and `model`, as float32 safetensors) as the entry `folder`, atomically: all files
    go into a temporary sibling folder, the manifest last, then the folder is renamed into place. If
    another process got there first with a sound entry, that one is kept. Older entries of the same file
    name and kind (another fingerprint or converter) are removed."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        tokenizer.save_pretrained(tmp)
        if model is not None:
            # transformers refuses save_pretrained on a model read from a GGUF file (it counts as quantised,
            # though it holds plain de-quantised tensors): safetensors writes the weights (tied ones once)
            # and the config is written without its GGUF quantisation entry, which is all from_pretrained reads.
            from safetensors.torch import save_model
            save_model(model, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
            config = model.config.to_dict()
            config.pop("quantization_config", None)
            (tmp / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
        files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"format": FORMAT_VERSION, "kind": "model" if model is not None else "tokenizer",
                    "gguf_fingerprint": fingerprint, "gguf_file": str(gguf_path),
                    "converter": converter_versions(), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if folder.exists():
            if check_entry(folder, fingerprint) is None:   # another process (a torchrun rank) finished first
                return folder
            shutil.rmtree(folder, ignore_errors=True)      # the unsound entry being rebuilt
        try:
            os.replace(tmp, folder)
        except OSError:
            if check_entry(folder, fingerprint) is not None:   # not a sound entry another process wrote
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _drop_stale_entries(folder, Path(gguf_path).stem)
    return folder


def _drop_stale_entries(keep: Path, stem: str) -> None:
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{16}-tf")
    for other in keep.parent.iterdir():
        if other != keep and other.is_dir() and pattern.match(other.name):
            shutil.rmtree(other, ignore_errors=True)


def load_tokenizer_entry(folder: Path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(folder))


def load_model_entry(folder: Path, torch_dtype):
    """(model, tokenizer) from a sound model entry; the float32 weights are cast to `torch_dtype`."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = load_tokenizer_entry(folder)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model, tokenizer
