"""The `kernels` option: Liger only where asked for and possible, per model instance, named in the spec."""
import pytest
import torch

from cramlab import kernels
from cramlab.errors import BadInputError, CramlabError, DeviceError
from cramlab.kernels import liger, onednn, sdpa
from cramlab.models.load import load_model


def test_liger_asked_for_on_this_machine_fails_in_one_line_before_loading():
    """Without liger-kernel (CPU machines, CI) the error names the package and the extra; with it on a
    CPU the error names the device. Either way one line, and no model is loaded first."""
    with pytest.raises(CramlabError) as err:
        load_model("tiny-llama", device="cpu", kernels="liger", use_cache=False)
    msg = str(err.value)
    assert "\n" not in msg and "--kernels torch" in msg
    if liger.liger_import_error() is not None:
        assert isinstance(err.value, BadInputError) and "pip install 'cramlab[gpu]'" in msg
    else:
        assert isinstance(err.value, DeviceError) and "CUDA" in msg


def test_auto_on_cpu_applies_nothing():
    from transformers.models.llama import modeling_llama
    lm = load_model("tiny-llama", device="cpu", kernels="auto", use_cache=False)
    assert lm.spec.kernels == "torch" and lm.spec.to_dict()["kernels"] == "torch"
    norm = lm.model.model.layers[0].input_layernorm
    assert type(norm) is modeling_llama.LlamaRMSNorm and "forward" not in vars(norm)
    assert not any(getattr(m, "_cramlab_fused_rope", False) for m in lm.model.modules())


def test_unknown_option_and_choices():
    with pytest.raises(BadInputError, match="use auto, liger, onednn or torch"):
        load_model("tiny-llama", device="cpu", kernels="triton")
    assert kernels.resolve_kernels("torch", "cuda", "llama") == "torch"
    assert kernels.resolve_kernels("auto", "cpu", "llama") == "torch"
    assert kernels.resolve_kernels(None, "cpu", "gpt_neox") == "torch"


def _x86() -> bool:
    import platform
    return platform.machine().lower() in ("x86_64", "amd64")


def test_onednn_linears_match_torch_per_instance():
    """--kernels onednn (CPU): every linear of this model instance runs oneDNN's packed linear, with logits and
    the input's gradient equal to transformers' own to float32 rounding; a model loaded after it is untouched.
    On x86 (CI, this kit's machines) torch's CPU wheel has oneDNN, so the option must be available there;
    elsewhere asking for it must be refused in one line."""
    if onednn.onednn_unavailable() is not None:
        assert not _x86(), onednn.onednn_unavailable()
        with pytest.raises(BadInputError, match="--kernels onednn is not available here"):
            load_model("tiny-llama", device="cpu", kernels="onednn", use_cache=False)
        return
    packed = load_model("tiny-llama", device="cpu", kernels="onednn", use_cache=False)
    plain = load_model("tiny-llama", device="cpu", kernels="torch", use_cache=False)
    assert packed.spec.kernels == "onednn" and plain.spec.kernels == "torch"
    linears = [m for m in packed.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all("forward" in vars(m) for m in linears)
    assert not any("forward" in vars(m) for m in plain.model.modules() if isinstance(m, torch.nn.Linear))
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(3, 10, packed.spec.d, generator=gen)
    out = []
    for lm in (packed, plain):
        x = emb.clone().requires_grad_(True)
        logits = lm.model(inputs_embeds=x).logits
        logits.logsumexp(-1).mean().backward()
        out.append((logits.detach(), x.grad))
    (lp, gp), (lt, gt) = out
    assert torch.allclose(lp, lt, rtol=1e-4, atol=1e-5) and not torch.equal(gp, torch.zeros_like(gp))
    rel = ((gp - gt).norm() / gt.norm()).item()
    assert rel < 1e-4, rel                                   # float32 rounding, not a different gradient
    with torch.autocast("cpu", dtype=torch.bfloat16):           # bf16 inputs fall back to torch's linear
        assert packed.model(inputs_embeds=emb).logits.isfinite().all()


def test_onednn_refused_off_cpu_and_for_bf16_weights():
    with pytest.raises(DeviceError, match="not for cuda"):
        kernels.check_kernels_option("onednn", "cuda")
    assert kernels.resolve_kernels("onednn", "cpu", "gpt_neox") == "onednn"   # any family: it is the linears
    if onednn.onednn_unavailable() is None:
        with pytest.raises(BadInputError, match="float32") as err:
            load_model("tiny-llama", device="cpu", dtype="bfloat16", kernels="onednn", use_cache=False)
        assert "\n" not in str(err.value)


def test_fused_rope_is_routed_per_model_instance():
    """RoPE is swapped by a module-level name in transformers; the kit routes it per attention module so
    that a fused model and an unfused one can live in one process (a side-by-side bench)."""
    from transformers.models.llama import modeling_llama
    original = modeling_llama.apply_rotary_pos_emb
    original = liger._ROPE_STATE.get("original", original)
    calls = []

    def counting_rope(q, k, cos, sin, *args, **kwargs):
        calls.append(q.shape)
        return original(q, k, cos, sin, *args, **kwargs)

    plain = load_model("tiny-llama", device="cpu", use_cache=False)
    fused = load_model("tiny-llama", device="cpu", use_cache=False)
    assert liger.fuse_rope(fused.model, counting_rope) == fused.spec.n_layers
    assert liger.fuse_rope(fused.model, counting_rope) == 0        # already routed: no second hook
    ids = torch.tensor([[5, 6, 7, 8]])
    out_plain = plain.model(ids).logits
    assert calls == []                                               # the other instance is untouched
    out_fused = fused.model(ids).logits
    assert len(calls) == fused.spec.n_layers
    assert torch.equal(out_plain, out_fused)                         # same weights, same function here
    plain.model(ids)
    assert len(calls) == fused.spec.n_layers                         # the flag does not leak past a forward


def test_causal_sdpa_equals_transformers_sdpa_and_leaves_generation_alone():
    # The captured step's attention (GraphedStep.capture): SDPA with is_causal and enable_gqa, no mask. The
    # tiny model has 4 query heads over 2 key/value heads, so GQA is exercised; outside the context (the
    # plain loop, decoding with a KV cache) the model must run transformers' own path, bit for bit.
    lm = load_model("tiny-llama", device="cpu", use_cache=False)
    model = lm.model
    assert model.config.num_key_value_heads < model.config.num_attention_heads
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (3, 9), generator=gen)
    emb = model.get_input_embeddings()(ids)
    prompt = dict(input_ids=ids[:, :4], attention_mask=torch.ones(3, 4, dtype=torch.long), max_new_tokens=5,
                  do_sample=False)
    with torch.no_grad():
        ref, ref_gen = model(inputs_embeds=emb).logits, model.generate(**prompt)
        assert sdpa.use_causal_sdpa(model.model) and model.config._attn_implementation == sdpa.CAUSAL_SDPA
        with sdpa.causal_unpadded():
            fused = model(inputs_embeds=emb).logits
        outside, outside_gen = model(inputs_embeds=emb).logits, model.generate(**prompt)
    assert torch.allclose(fused, ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(outside, ref) and torch.equal(outside_gen, ref_gen)
    assert sdpa.use_causal_sdpa(model)                         # idempotent
    eager = load_model("tiny-llama", device="cpu", use_cache=False).model
    eager.set_attn_implementation("eager")
    assert not sdpa.use_causal_sdpa(eager) and eager.config._attn_implementation == "eager"


@pytest.mark.gpu
def test_liger_on_cuda_matches_torch_and_stays_per_instance():
    """On a GPU with liger-kernel: logits and input-vector gradients match the unfused model to bf16
    tolerance, the spec names Liger, and a model loaded afterwards runs transformers' own kernels."""
    if not torch.cuda.is_available() or liger.liger_import_error() is not None:
        pytest.fail("this GPU test needs a CUDA device and liger-kernel (pip install 'cramlab[gpu]')")
    from transformers.models.llama import modeling_llama
    fused = load_model("tiny-llama", device="cuda", dtype="bfloat16", kernels="liger", use_cache=False)
    plain = load_model("tiny-llama", device="cuda", dtype="bfloat16", kernels="torch", use_cache=False)
    assert fused.spec.kernels == "liger" and plain.spec.kernels == "torch"
    assert type(plain.model.model.layers[0].mlp) is modeling_llama.LlamaMLP
    assert "forward" not in vars(plain.model.model.layers[0].input_layernorm)
    torch.manual_seed(0)
    emb = torch.randn(4, 24, fused.spec.d, device="cuda", dtype=torch.bfloat16)
    results = []
    for lm in (fused, plain):
        x = emb.clone().requires_grad_(True)
        logits = lm.model(inputs_embeds=x).logits.float()
        logits.logsumexp(-1).mean().backward()
        results.append((logits.detach(), x.grad.float()))
    (lf, gf), (lp, gp) = results
    assert torch.allclose(lf, lp, atol=5e-2, rtol=5e-2)
    assert torch.allclose(gf, gp, atol=5e-2 * gp.abs().max().item(), rtol=5e-2)


@pytest.mark.gpu
def test_row_grid_norm_backward_is_liger_bit_for_bit():
    """Liger's RMSNorm backward launched one program per row (liger.row_grid_rms_norm) gives Liger's own
    launch's output and input gradient bit for bit, for a frozen weight, in place or not, at the engine's
    shape and an odd one; a trainable weight falls back to Liger's launch and gets its gradient; a model
    loaded with kernels="liger" runs it in every RMSNorm."""
    if not torch.cuda.is_available() or liger.liger_import_error() is not None:
        pytest.fail("this GPU test needs a CUDA device and liger-kernel (pip install 'cramlab[gpu]')")
    from liger_kernel.ops.rms_norm import LigerRMSNormFunction
    row_grid = liger.row_grid_rms_norm()
    assert row_grid is not None, "this liger-kernel's RMSNorm backward kernel takes other arguments"
    gen = torch.Generator(device="cuda").manual_seed(0)
    for rows, d in ((64 * 66, 576), (37, 2048)):
        x = torch.randn(rows, d, device="cuda", generator=gen).mul(3).to(torch.bfloat16)
        dy = torch.randn(rows, d, device="cuda", generator=gen).to(torch.bfloat16)
        for trainable in (False, True):
            w_ref = torch.randn(d, device="cuda", generator=gen).to(torch.bfloat16)
            for in_place in (True, False):
                out = []
                for fn in (LigerRMSNormFunction, row_grid):
                    xi = x.clone().requires_grad_(True)
                    w = w_ref.clone().requires_grad_(trainable)
                    y = fn.apply(xi, w, 1e-5, 0.0, "llama", in_place, None)
                    y.backward(dy.clone())
                    out.append((y.detach(), xi.grad, w.grad))
                (y0, dx0, dw0), (y1, dx1, dw1) = out
                assert torch.equal(y0, y1) and torch.equal(dx0, dx1), (rows, d, trainable, in_place)
                assert (dw1 is not None) == trainable and (not trainable or torch.equal(dw0, dw1))
    lm = load_model("tiny-llama", device="cuda", dtype="bfloat16", kernels="liger", use_cache=False)
    norms = [m for m in lm.model.modules() if m._get_name() == "LigerRMSNorm"]
    assert len(norms) == 2 * lm.model.config.num_hidden_layers + 1
    assert all(vars(m)["forward"].__func__ is liger._row_grid_norm_forward for m in norms)
