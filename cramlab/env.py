"""Environment check (notebook 00, `cramlab env`): versions, device, and whether the embedded model is there.

Owns: the report (`environment_report`), the packages the notebooks need (NEEDED_PACKAGES) and the verdict
(`missing_packages`, `check_environment`). Does not own: loading models (cramlab.models.load) or installing.
"""
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

    from cramlab.models.load import embedded_model_file, hub_reachable
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


#: What the notebooks need installed (besides cramlab itself).
NEEDED_PACKAGES = ("torch", "transformers", "accelerate", "gguf", "safetensors", "plotly", "ipywidgets")


def missing_packages(report: dict | None = None) -> list[str]:
    """The NEEDED_PACKAGES that `report` (an `environment_report()`, made now when None) lacks."""
    r = environment_report() if report is None else report
    return [p for p in NEEDED_PACKAGES if r.get(p, "missing") == "missing"]


def check_environment(report: dict | None = None) -> bool:
    """True when everything the notebooks need is installed and the embedded model is found
    (from `report`, an `environment_report()` already made, or a new one)."""
    r = environment_report() if report is None else report
    return not missing_packages(r) and not str(r["embedded_model"]).startswith("missing")
