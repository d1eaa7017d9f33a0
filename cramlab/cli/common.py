"""Flags and helpers that several command groups of the command line share.

Owns: the model flags (`add_model_args`, `add_kernels_arg`), the output-folder
check (`check_writable`). Does not own: any command.
"""
from __future__ import annotations

from ..errors import writable_folder
from ..kernels import KERNEL_CHOICES


def add_model_args(p) -> None:
    """--model, --device, --dtype, --trust-remote-code, --kernels (as `load_model` takes them)."""
    p.add_argument("--model", default="smollm2-135m", help="registry name, hub id, local folder or .gguf file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16 (GPU default) or float16")
    p.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo (off by default)")
    add_kernels_arg(p)


def add_kernels_arg(p, default: str | None = "auto", note: str = "") -> None:
    """--kernels, as `load_model` takes it. `default` None: a sweep's config file may set it instead."""
    p.add_argument("--kernels", choices=KERNEL_CHOICES, default=default,
                   help="faster kernels: auto = Liger on CUDA when installed, torch = off, liger = required, "
                        "onednn = oneDNN's packed linears on a CPU (opt-in)" + note)


def check_writable(folder) -> None:
    """Create `folder` if needed; OutputPathError when it cannot be created or written (errors.writable_folder)."""
    writable_folder(folder)
