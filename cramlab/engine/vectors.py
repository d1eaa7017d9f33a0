"""Vector files: safetensors for the tensors, JSON metadata inside the same file. Nothing is unpickled.

A file remembers which weights it was trained against (the model's fingerprint) and refuses another
model unless `force=True`. Files are written atomically (temporary file, then rename).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cramlab.errors import FingerprintMismatchError, OutputPathError, VectorFileError

FORMAT = "cramlab-vectors/1"


@dataclass
class VectorFile:
    vectors: torch.Tensor      # (n_mem, d), float32
    meta: dict

    def to_dict(self) -> dict:
        return asdict(self) | {"vectors": self.vectors.tolist()}


def text_sha256(token_ids) -> str:
    return hashlib.sha256(json.dumps([int(t) for t in token_ids]).encode()).hexdigest()[:16]


def tensor_sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def save_vectors(path, result, spec=None, omit: tuple[str, ...] = ()) -> Path:
    """Write a CramResult's vectors and what is needed to decode and check them; `omit`: metadata keys left
    out (the PoC leaves out the text's token ids: cramlab.poc.privacy)."""
    from safetensors.torch import save_file
    path = Path(path)
    s = result.settings
    meta = {
        "format": FORMAT, "model": s.get("model", ""), "fingerprint": s.get("fingerprint", ""),
        "tokenizer": getattr(spec, "tokenizer_name", s.get("model", "")),
        "n_mem": result.n_mem, "d": int(result.vectors.shape[-1]), "n_tokens": result.n_tokens,
        "layout": s.get("layout"), "protocol": s.get("protocol"), "sink_token_id": s.get("sink_token_id"),
        "first_token_id": result.token_ids[0], "text_sha256": text_sha256(result.token_ids),
        "token_ids": result.token_ids, "teacher_forced_accuracy": result.teacher_forced_accuracy,
        "greedy_exact": result.greedy_exact, "seed": s.get("seed"),
    }
    meta = {k: v for k, v in meta.items() if k not in omit}
    tensors = {"vectors": result.vectors.detach().float().cpu().contiguous()}
    meta["vectors_sha256"] = tensor_sha256(tensors["vectors"])   # catches corrupt bytes in the tensor data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror}; choose a writable --out folder") from None
    try:
        save_file(tensors, tmp, metadata={"cramlab": json.dumps(meta)})
        os.replace(tmp, path)
    except OSError as exc:   # disk full, permissions, ...: the old file (if any) is untouched
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out folder") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_vectors(path, spec=None, force: bool = False) -> VectorFile:
    """Read a vector file; with `spec`, refuse one made for other weights (unless `force`)."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise VectorFileError(f"vector file {path} not found; check the path")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("cramlab")
            vectors = f.get_tensor("vectors")
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise VectorFileError(f"{path} is not a readable vector file ({type(exc).__name__}); "
                              "it may be truncated or corrupt: cram the text again") from None
    if raw is None:
        raise VectorFileError(f"{path} has no cramlab metadata; it was not written by cramlab.save_vectors")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise VectorFileError(f"{path} has corrupt metadata; cram the text again")
    if vectors.dim() != 2 or vectors.shape[0] != meta.get("n_mem") or vectors.shape[1] != meta.get("d"):
        raise VectorFileError(f"{path}: vectors of shape {tuple(vectors.shape)} do not match "
                              f"n_mem={meta.get('n_mem')}, d={meta.get('d')}; the file is damaged")
    if meta.get("vectors_sha256") not in (None, tensor_sha256(vectors)):
        raise VectorFileError(f"{path} is corrupt (its vectors do not match their checksum); cram the text again")
    if spec is not None:
        if vectors.shape[1] != spec.d:
            raise VectorFileError(f"{path} holds vectors of size {vectors.shape[1]} but model {spec.name} takes "
                                  f"{spec.d}; pass --model {meta.get('model')}")
        if meta.get("fingerprint") != spec.fingerprint and not force:
            raise FingerprintMismatchError(
                f"{path} was made for {meta.get('model')} (fingerprint {meta.get('fingerprint')}), not "
                f"{spec.name} ({spec.fingerprint}); pass --model {meta.get('model')}, or --force to try anyway")
    return VectorFile(vectors.float(), meta)


def decode_file(loaded_model, path, force: bool = False):
    """Load a vector file for `loaded_model` and decode it back (returns a `Decoded`)."""
    from cramlab.engine.decode import decode
    vf = load_vectors(path, loaded_model.spec, force=force)
    m = vf.meta
    return decode(loaded_model, vf.vectors, m["n_tokens"], layout=m["layout"], protocol=m["protocol"],
                  first_token_id=m.get("first_token_id"), sink_token_id=m.get("sink_token_id"))
