"""Faster kernels for a loaded model: the `kernels` option (auto | liger | onednn | torch) and where each lives.

Owns: choosing which kernels a model runs (`check_kernels_option`, `resolve_kernels`) and applying the choice to
ONE loaded model instance (`apply_kernels`). The mechanisms are unrelated and each has its own file:
  liger.py    Liger Kernel's Triton kernels (RMSNorm, RoPE, SwiGLU; cross-entropy via fast.py) on CUDA, Llama family
  onednn.py   oneDNN's pre-packed linears on CPUs (opt-in `--kernels onednn`)
  sdpa.py     the maskless causal attention of a captured step (engine/step.py's GraphedStep)
  precast.py  the body's linear weights cast once to the autocast dtype (engine/fast.py's loop)
Does not own: loading models (cramlab.models.load), timing them (cramlab.science.bench), or what the loss is
(cramlab.engine.fast).

Liger (`pip install 'cramlab[gpu]'`) is optional: CPU machines and CI never need it. "auto" uses it on a
CUDA device when it imports and the model is Llama-family, "liger" requires it (one-line error otherwise),
"torch" leaves the model as transformers built it. "onednn" is not "auto"'s choice yet: it rounds differently
from torch's in the last bits, which moves fp32 trajectories, and keeps two packed copies of each weight.
"""
from __future__ import annotations

from cramlab.errors import BadInputError, DeviceError
from cramlab.kernels.liger import GPU_EXTRA_HINT, LIGER_FAMILIES, apply_liger, liger_import_error
from cramlab.kernels.onednn import onednn_linears, onednn_unavailable

KERNEL_CHOICES = ("auto", "liger", "onednn", "torch")


def check_kernels_option(kernels: str | None, device: str) -> str:
    """The option normalised ('auto' | 'liger' | 'onednn' | 'torch'), refused in one line before any model is
    loaded if it cannot be honoured here: 'liger' needs the liger-kernel package and a CUDA device, 'onednn' a CPU
    whose torch runs oneDNN's packed linear."""
    choice = "auto" if kernels is None else str(kernels).strip().lower()
    if choice not in KERNEL_CHOICES:
        raise BadInputError(f"unknown kernels option {kernels!r}; use auto, liger, onednn or torch")
    if choice == "onednn":
        if str(device) != "cpu":
            raise DeviceError(f"--kernels onednn packs weights for oneDNN's CPU kernels, not for {device}; "
                              "use --kernels auto or torch")
        reason = onednn_unavailable()
        if reason is not None:
            raise BadInputError(f"--kernels onednn is not available here ({reason}); use --kernels torch")
    if choice == "liger":
        reason = liger_import_error()
        if reason is not None:
            raise BadInputError(f"--kernels liger needs the liger-kernel package ({reason}); run "
                                f"`{GPU_EXTRA_HINT}` or use --kernels torch")
        if not str(device).startswith("cuda"):
            raise DeviceError(f"--kernels liger runs Triton kernels on a CUDA GPU, not on {device}; "
                              "use --kernels auto or torch")
    return choice


def resolve_kernels(kernels: str | None, device: str, family: str) -> str:
    """'liger', 'onednn' or 'torch': what a model of `family` (config.model_type) on `device` runs for `kernels`."""
    choice = check_kernels_option(kernels, device)
    if choice in ("torch", "onednn"):
        return choice
    if family not in LIGER_FAMILIES:
        if choice == "liger":
            raise BadInputError(f"--kernels liger is wired for Llama-family models here, not {family!r}; "
                                "use --kernels auto or torch")
        return "torch"
    if choice == "auto":
        return "liger" if str(device).startswith("cuda") and liger_import_error() is None else "torch"
    return "liger"


def apply_kernels(model, kernels: str) -> str:
    """Patch `model` in place for the resolved choice ('liger' | 'onednn' | 'torch'); returns the choice."""
    if kernels == "torch":
        return "torch"
    if kernels == "onednn":
        if onednn_linears(model) == 0:
            raise BadInputError("--kernels onednn packs frozen float32 linear weights and this model has none; "
                                "use --dtype float32 or --kernels torch")
        return "onednn"
    if kernels != "liger":
        raise BadInputError(f"apply_kernels takes a resolved choice (liger, onednn or torch), not {kernels!r}")
    return apply_liger(model)
