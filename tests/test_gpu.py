"""GPU-only checks (`make test-gpu` on a CUDA machine; CI has no GPU). The same functions run as
`python bench/gpu_check.py`; their output on an H200 is recorded in docs/performance.md."""
import importlib.util
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu

_spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).parents[1] / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.fail("the gpu tests need a CUDA GPU: run `make test-gpu` on a GPU machine")


def test_fast_engine_with_cuda_graph_equals_plain():
    assert gpu_check.check_fast_equals_plain()["ok"]


def test_graphed_engine_with_retirements_equals_plain_text_by_text():
    assert gpu_check.check_retirements_equal_plain()["ok"]


def test_embedded_model_converges_with_the_fast_engine():
    assert gpu_check.check_converges()["ok"]
