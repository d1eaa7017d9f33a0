"""Environment check (notebook 00, `cramlab env`): versions, device, and whether the embedded model is there."""
from __future__ import annotations

import importlib.metadata as md
import platform


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "missing"


def environment_report() -> dict:
    import torch

    from .models import embedded_model_file, hub_reachable
    try:
        embedded = str(embedded_model_file())
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        embedded = f"missing ({exc})"
    report = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for pkg in ("cramlab", "torch", "transformers", "accelerate", "gguf", "safetensors", "plotly", "ipywidgets"):
        report[pkg] = _version(pkg)
    report["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    report["cpu_threads"] = torch.get_num_threads()
    report["embedded_model"] = embedded
    report["hub_reachable"] = hub_reachable(timeout_s=2.0)
    return report


def check_environment() -> bool:
    """True when everything the notebooks need is installed and the embedded model is found."""
    r = environment_report()
    needed = ("torch", "transformers", "accelerate", "gguf", "safetensors", "plotly", "ipywidgets")
    return all(r[p] != "missing" for p in needed) and not r["embedded_model"].startswith("missing")
