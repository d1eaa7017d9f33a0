"""The on-disk cache of GGUF-built models: miss, hit, corrupt entries rebuilt, a changed file rebuilt.

The tests write their own tiny llama GGUF file (gguf.GGUFWriter: 2 layers, d=64, a 262-token byte-level BPE
vocabulary, Q8_0 and F32 tensors) so that the same code path as the embedded model runs in about a second.
"""
import json

import numpy as np
import pytest
import torch

from cramlab.models import cache as model_cache
from cramlab.models import load as models
from cramlab.models.cache import MANIFEST, WEIGHTS_FILE, ModelCacheWarning
from cramlab.models.load import file_fingerprint, load_model

SAMPLE = "the theme of the thesis"


def _byte_chars():
    """GPT-2's byte-to-unicode table, as the byte-level BPE vocabulary lists its 256 base tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tiny_gguf(path, seed=0, d=64, n_layers=2, ff=128, heads=4, kv_heads=2):
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + _byte_chars() + ["Ġt", "he", "Ġthe"]
    w = GGUFWriter(str(path), "llama")
    w.add_name("tiny")
    w.add_block_count(n_layers)
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_rope_dimension_count(d // heads)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_token_merges(["Ġ t", "h e", "Ġt he"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    rng = np.random.default_rng(seed)

    def tensor(name, shape, q8=False):
        a = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        if q8:
            w.add_tensor(name, quantize(a, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, a)

    tensor("token_embd.weight", (len(tokens), d))
    tensor("output_norm.weight", (d,))
    head_dim = d // heads
    for i in range(n_layers):
        tensor(f"blk.{i}.attn_norm.weight", (d,))
        tensor(f"blk.{i}.ffn_norm.weight", (d,))
        for part, rows, cols in (("attn_q", d, d), ("attn_k", kv_heads * head_dim, d),
                                 ("attn_v", kv_heads * head_dim, d), ("attn_output", d, d),
                                 ("ffn_gate", ff, d), ("ffn_up", ff, d), ("ffn_down", d, ff)):
            tensor(f"blk.{i}.{part}.weight", (rows, cols), q8=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(model_cache.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def gguf_file(tmp_path):
    return write_tiny_gguf(tmp_path / "tiny.gguf")


def _entry(path):
    return model_cache.entry_dir(path, file_fingerprint(path), "model")


def _load(path, dtype="float32"):
    return load_model(str(path), device="cpu", dtype=dtype, use_cache=False)


def _no_gguf_parsing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the GGUF file was parsed although a sound cache entry exists")
    monkeypatch.setattr(models, "_parse_gguf", refuse)
    monkeypatch.setattr(models, "_parse_gguf_tokenizer", refuse)


def _rewrite(path, data: bytes):
    """Damage a cache file the way a crash or a bad disk would, as a new file: the loaded models of earlier
    steps map the old file into memory, and shrinking a mapped file in place would crash this process."""
    path.unlink()
    path.write_bytes(data)


def _same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_miss_writes_an_entry_equal_to_the_gguf_file(cache_dir, gguf_file):
    direct_model, direct_tok = models._parse_gguf(gguf_file, torch.float32)
    lm = _load(gguf_file)
    folder = _entry(gguf_file)
    assert folder.parent.parent == cache_dir and (folder / WEIGHTS_FILE).is_file()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["gguf_fingerprint"] == lm.spec.fingerprint == file_fingerprint(gguf_file)
    assert manifest["converter"]["transformers"] in folder.name
    direct = direct_model.state_dict()
    for key, value in lm.model.state_dict().items():
        assert torch.equal(value, direct[key]), key
    assert lm.tokenizer(SAMPLE).input_ids == direct_tok(SAMPLE).input_ids
    assert lm.spec.sink_token_id == 0 and lm.spec.source == "gguf" and lm.spec.kernels == "torch"
    assert not any(p.requires_grad for p in lm.model.parameters())


def test_hit_reads_the_entry_without_parsing_the_gguf(cache_dir, gguf_file, monkeypatch):
    first = _load(gguf_file)
    _no_gguf_parsing(monkeypatch)
    second = _load(gguf_file)
    assert second.spec == first.spec and _same_weights(first, second)
    assert first.spec.tokenizer_name == first.spec.path == str(gguf_file)   # the GGUF file, not the cache
    assert second.tokenizer(SAMPLE).input_ids == first.tokenizer(SAMPLE).input_ids


def test_bfloat16_from_the_entry_equals_bfloat16_from_the_file(cache_dir, gguf_file):
    direct_model, _ = models._parse_gguf(gguf_file, torch.bfloat16)
    lm = _load(gguf_file, dtype="bfloat16")
    assert lm.spec.dtype == "bfloat16"
    direct = direct_model.state_dict()
    assert all(torch.equal(v, direct[k]) for k, v in lm.model.state_dict().items())


@pytest.mark.parametrize("damage", ["truncate weights", "flip a tokenizer byte", "garble manifest",
                                    "delete config"])
def test_corrupt_entry_is_rebuilt_with_one_line_warning(cache_dir, gguf_file, damage):
    good = _load(gguf_file)
    folder = _entry(gguf_file)
    if damage == "truncate weights":
        weights = folder / WEIGHTS_FILE
        _rewrite(weights, weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "flip a tokenizer byte":
        tok = folder / "tokenizer.json"
        data = bytearray(tok.read_bytes())
        data[len(data) // 2] ^= 0x01
        _rewrite(tok, bytes(data))
    elif damage == "garble manifest":
        (folder / MANIFEST).write_text("{not json")
    else:
        (folder / "config.json").unlink()
    assert model_cache.check_entry(folder, good.spec.fingerprint) is not None
    with pytest.warns(ModelCacheWarning) as caught:
        rebuilt = _load(gguf_file)
    message = str(caught[0].message)
    assert "\n" not in message and "rebuilding" in message and str(folder) in message
    assert model_cache.check_entry(folder, good.spec.fingerprint) is None
    assert rebuilt.spec == good.spec and _same_weights(good, rebuilt)


def test_safetensors_header_that_does_not_parse_is_caught(cache_dir, gguf_file, monkeypatch):
    """Big weight files are checked by size and header, not byte for byte: make the tiny one count as big."""
    monkeypatch.setattr(model_cache, "_FULL_CHECKSUM_MAX_BYTES", 1 << 16)
    lm = _load(gguf_file)
    folder = _entry(gguf_file)
    weights = folder / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[8:16] = b"\x00" * 8            # same size, the JSON header is now garbage
    _rewrite(weights, bytes(data))
    assert "does not parse" in model_cache.check_entry(folder, lm.spec.fingerprint)


def test_changed_gguf_file_gets_a_new_entry_and_the_old_one_goes(cache_dir, gguf_file):
    old = _load(gguf_file)
    old_folder = _entry(gguf_file)
    write_tiny_gguf(gguf_file, seed=1)          # same path, same size, other weights
    models._FP_CACHE.clear()                    # the per-process fingerprint memo keys on size and mtime
    new = _load(gguf_file)
    new_folder = _entry(gguf_file)
    assert new.spec.fingerprint != old.spec.fingerprint and new_folder != old_folder
    assert new_folder.is_dir() and not old_folder.exists()
    assert not _same_weights(old, new)
    direct, _ = models._parse_gguf(gguf_file, torch.float32)
    assert torch.equal(new.model.model.layers[0].mlp.up_proj.weight, direct.model.layers[0].mlp.up_proj.weight)


def test_unwritable_cache_warns_and_loads_from_the_file(tmp_path, gguf_file, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(model_cache.CACHE_ENV, str(blocker / "cache"))
    with pytest.warns(ModelCacheWarning, match="could not write the model cache"):
        lm = _load(gguf_file)
    assert lm.spec.fingerprint == file_fingerprint(gguf_file)
    assert lm.tokenizer(SAMPLE).input_ids


def test_write_is_atomic_no_partial_entry_after_a_failure(cache_dir, gguf_file, monkeypatch):
    model, tok = models._parse_gguf(gguf_file, None)
    folder = _entry(gguf_file)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr("safetensors.torch.save_model", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model_cache.write_entry(folder, file_fingerprint(gguf_file), gguf_file, tok, model)
    assert not folder.exists() and list(folder.parent.iterdir()) == []   # no temporary folder left either


def test_cache_root_default_is_the_user_cache_folder(monkeypatch):
    import platformdirs
    monkeypatch.delenv(model_cache.CACHE_ENV, raising=False)
    assert model_cache.cache_root() == model_cache.Path(platformdirs.user_cache_dir("cramlab"))


def test_embedded_tokenizer_comes_from_the_cache(cache_dir, monkeypatch):
    """The tiny test models borrow the embedded tokenizer: after one parse it is read from a cache entry."""
    monkeypatch.setattr(models, "_CACHE", {})
    first = models.load_tokenizer()
    path = models.embedded_model_file()
    assert model_cache.check_entry(model_cache.entry_dir(path, file_fingerprint(path), "tokenizer"),
                                   file_fingerprint(path)) is None
    monkeypatch.setattr(models, "_CACHE", {})
    _no_gguf_parsing(monkeypatch)
    second = models.load_tokenizer()
    assert second(SAMPLE).input_ids == first(SAMPLE).input_ids and len(second) == len(first) == 49152


@pytest.mark.slow
def test_embedded_model_has_a_sound_entry_and_the_files_fingerprint(embedded):
    path = models.embedded_model_file()
    folder = model_cache.entry_dir(path, embedded.spec.fingerprint, "model")
    assert embedded.spec.fingerprint == file_fingerprint(path)
    assert model_cache.check_entry(folder, embedded.spec.fingerprint) is None


def test_a_sound_entry_written_meanwhile_is_kept(cache_dir, gguf_file):
    """Two processes (torchrun ranks) that both missed: the second writer keeps the first one's entry, which
    the first may be reading, instead of deleting it."""
    model, tok = models._parse_gguf(gguf_file, None)
    fingerprint = file_fingerprint(gguf_file)
    folder = _entry(gguf_file)
    model_cache.write_entry(folder, fingerprint, gguf_file, tok, model)
    inode = (folder / WEIGHTS_FILE).stat().st_ino
    assert model_cache.write_entry(folder, fingerprint, gguf_file, tok, model) == folder
    assert (folder / WEIGHTS_FILE).stat().st_ino == inode
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]       # no temporary folder left
