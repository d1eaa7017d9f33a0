"""Shared fixtures: each model is loaded once per test run (load_model caches per process)."""
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny():
    """A tiny random-weight Llama (test fixture: mechanics only, it cannot be steered)."""
    from cramlab.models import load_model
    return load_model("tiny-llama", device="cpu")


@pytest.fixture(scope="session")
def embedded():
    """The embedded SmolLM2-135M, fp32 on CPU (loaded once per session)."""
    from cramlab.models import load_model
    return load_model("smollm2-135m", device="cpu")
