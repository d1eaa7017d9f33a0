"""GPU-only checks (`make test-gpu` on a CUDA machine; CI has no GPU). The same functions run as
`python experiments/gpu_check.py`; their output on an H200 is recorded in docs/performance.md."""
import json

import pytest
import torch
from repo_scripts import load_script

pytestmark = pytest.mark.gpu

gpu_check = load_script("experiments/gpu_check.py")


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.fail("the gpu tests need a CUDA GPU: run `make test-gpu` on a GPU machine")


def _ok(result: dict):
    print(json.dumps(result))          # `make test-gpu` shows the measured figures with -s / in the -ra summary
    assert result["ok"], result


def test_fast_engine_with_cuda_graph_equals_plain():
    _ok(gpu_check.check_fast_equals_plain())


def test_precast_weights_equal_autocast_casts_on_cuda():
    _ok(gpu_check.check_precast_equals_autocast())


def test_graphed_engine_with_retirements_equals_plain_text_by_text():
    _ok(gpu_check.check_retirements_equal_plain())


def _needs_liger():
    from cramlab.kernels.liger import GPU_EXTRA_HINT, liger_import_error
    if liger_import_error() is not None:
        pytest.fail(f"this check compares Liger's kernels with transformers': run `{GPU_EXTRA_HINT}` first "
                    f"({liger_import_error()})")


def test_liger_cross_entropy_kernel_equals_the_torch_chunked_loss():
    _needs_liger()
    _ok(gpu_check.check_liger_loss_matches_torch())


def test_fused_kernels_follow_transformers_kernels():
    _needs_liger()
    _ok(gpu_check.check_fused_matches_unfused())


def test_embedded_model_converges_with_the_fast_engine():
    _ok(gpu_check.check_converges())


def test_compacted_progressive_growth_equals_one_batch_through_graph_recaptures():
    _ok(gpu_check.check_compaction_matches_one_batch())
