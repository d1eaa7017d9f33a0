import json
import math

import pytest

from cramlab import capacity as cap
from cramlab.cli import main
from cramlab.errors import BadInputError, UnknownModelError

# The paper's theoretical column (Table 1), rounded as the paper rounds.
PAPER_L_MAX = {"pythia-160m": 787, "pythia-410m": 1049, "pythia-1.4b": 2098,
               "llama-3.2-1b": 1931, "llama-3.2-3b": 2897, "llama-3.1-8b": 3862}


@pytest.mark.parametrize("name,expected", PAPER_L_MAX.items())
def test_paper_theoretical_capacity(name, expected):
    assert cap.capacity_of(name).capacity_tokens == expected


def test_embedded_model_capacity_is_591():
    c = cap.capacity_of("smollm2-135m")
    assert c.capacity_tokens == 591 and c.capacity_bits == 576 * 16
    assert c.capacity_tokens_exact == pytest.approx(576 * 16 / math.log2(49152))


def test_bits_per_value_by_dtype():
    assert [cap.bits_per_value(d) for d in ("float32", "float16", "bfloat16", "float8")] == [32, 16, 16, 8]
    assert cap.bits_per_value("torch.bfloat16") == 16
    assert cap.bits_per_value(bits=12) == 12
    with pytest.raises(BadInputError):
        cap.bits_per_value("int3")


def test_k_vectors_scale_linearly():
    one = cap.capacity_tokens(768, 50304)
    assert cap.capacity_tokens(768, 50304, n_mem=16) == pytest.approx(16 * one)


def test_info_gain_and_utilisation_as_the_paper():
    # Pythia-160M: mean gain 70.9 tokens over L_max 786.8 -> 0.090
    assert cap.capacity_utilisation(70.9, cap.capacity_tokens(768, 50304)) == pytest.approx(0.090, abs=5e-4)
    assert cap.info_gain_nats(100.0, 40.0) == 60.0
    assert cap.info_gain_bits(100.0, 100.0 - math.log(2)) == pytest.approx(1.0)
    assert cap.gain_tokens(1.0, 0.25, 16) == 12.0
    assert cap.compression_ratio(1568, 1) == 1568


def test_registry_covers_the_issue_list():
    for name in ["pythia-160m", "pythia-410m", "pythia-1.4b", "pythia-2.8b", "pythia-6.9b", "opt-1.3b", "olmo-1b",
                 "sheared-llama-1.3b", "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "smollm2-135m",
                 "smollm2-360m", "smollm2-1.7b", "mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b"]:
        assert cap.get_shape(name).d > 0
    assert cap.get_shape("EleutherAI/pythia-160m").name == "pythia-160m"


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="pythia-160m"):
        cap.get_shape("pythia-16m")


def test_capacity_module_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, cramlab.capacity; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_cli_capacity_json(capsys):
    assert main(["capacity", "--model", "llama-3.1-8b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["capacity_tokens"] == 3862
    assert main(["capacity", "--d", "768", "--vocab", "50304", "--bits", "16", "--n-mem", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"d", "vocab_size", "bits_per_value", "n_mem", "capacity_bits", "capacity_tokens"}
    assert (out["d"], out["vocab_size"], out["capacity_bits"], out["capacity_tokens"]) == (768, 50304, 12288, 787)


def test_cli_capacity_table(capsys):
    assert main(["capacity", "--model", "pythia-160m"]) == 0
    assert "787" in capsys.readouterr().out
