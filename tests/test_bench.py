"""The speed tools run end to end on the CPU with the tiny model (no timing is asserted, only their output)."""
import json
from pathlib import Path

import pytest
from repo_scripts import load_script

from cramlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_bench_cli_on_cpu_writes_ratios_and_the_race(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--device", "cpu", "--model", "tiny-llama", "--parts", "embedded", "--n-texts", "3",
               "--n-tokens", "8", "--steps", "2", "--race", "--race-texts", "2", "--race-tokens", "6",
               "--race-max-steps", "4", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    rows = {r["config"]: r for r in report["rows"]}
    assert set(rows) == {"baseline", "plain", "fast-eager"}          # no CUDA graph on a CPU
    assert rows["baseline"]["n_texts"] == 1 and rows["baseline"]["ratio_vs_baseline"] == 1.0
    for r in rows.values():
        assert r["step_ms"] > 0 and r["flops_per_step"] > 0
    plain = rows["plain"]
    assert plain["n_texts"] == 3
    assert abs(plain["ratio_vs_baseline"] - plain["texts_steps_per_s"] / rows["baseline"]["texts_steps_per_s"]) < 1e-9
    race = report["race"]
    assert race["n_texts"] == 2 and len(race["baseline_steps"]) == 2 and len(race["ours_steps"]) == 2
    assert race["ratio"] == race["baseline_seconds"] / race["ours_seconds"]
    assert max(race["baseline_steps"]) <= 4
    assert report["ours_dtype"] == "float32"                           # the CPU default, recorded
    assert report["ours_kernels"] == report["baseline_kernels"] == "torch"   # no Liger off CUDA, and named
    out = capsys.readouterr().out
    assert "x base" in out and "kernels: ours torch, baseline torch" in out


def test_bench_kernels_liger_off_cuda_is_one_line_error(tmp_path, capsys):
    """`--kernels` reaches our engine's model: asking for Liger on a CPU is refused in one line, exit 2."""
    rc = main(["bench", "--device", "cpu", "--model", "tiny-llama", "--parts", "embedded", "--n-texts", "2",
               "--n-tokens", "6", "--steps", "1", "--kernels", "liger", "--out", str(tmp_path / "b.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "--kernels" in err
    assert not (tmp_path / "b.json").exists()


def _profile_module():
    return load_script("experiments/profile_step.py")


def test_profile_step_groups_the_ops_of_a_step(tmp_path):
    prof = _profile_module()
    assert prof.category("aten::mm") == "matmul" and prof.category("aten::_log_softmax") == "loss"
    assert prof.category("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    # inductor's fused kernels are elementwise work, not the optimizer or copies their names mention
    assert prof.category("triton_poi_fused__unsafe_view_mul_silu_silu_backward_view_0") == "elementwise/norm"
    assert prof.category("triton_per_fused__to_copy_add_mean_mul_pow_rsqrt_0") == "elementwise/norm"
    out = tmp_path / "profile.json"
    assert prof.main(["--model", "tiny-llama", "--batches", "1", "2", "--n-tokens", "8", "--steps", "2",
                      "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["batch"] for r in report["results"]] == [1, 2]
    for r in report["results"]:
        assert abs(sum(r["shares"].values()) - 1.0) < 1e-3
        assert r["shares"].get("matmul", 0) > 0 and r["top"] and r["step_ms"] > 0


def test_bench_chart_from_reports(tmp_path, capsys):
    report = {"device": "cpu (2 threads)", "date": "2026-11-28", "torch": "2.13.0+cpu", "ours_dtype": "float32",
              "rows": [dict(config="baseline", device="cpu (2 threads)", n_texts=1, n_tokens=16, step_ms=130.0,
                            texts_steps_per_s=7.7, ratio_vs_baseline=1.0),
                       dict(config="plain", device="cpu (2 threads)", n_texts=8, n_tokens=16, step_ms=520.0,
                            texts_steps_per_s=15.4, ratio_vs_baseline=2.0),
                       dict(config="fast-graph", device="cpu (2 threads) llama-1b-shaped", n_texts=8, n_tokens=16,
                            step_ms=1.0, texts_steps_per_s=8000.0, ratio_vs_baseline=None)]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "chart.html"
    assert main(["bench-chart", str(path), "--out", str(out)]) == 0
    html = out.read_text()
    assert "2.00×" in html or "2.00\\u00d7" in html                  # the ratio label (JSON may escape the ×)
    assert "ours float32" in html and "llama-1b-shaped" not in html   # no-baseline rows left out
    assert "wrote" in capsys.readouterr().out
    assert main(["bench-chart", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert "cannot read bench report" in capsys.readouterr().err


def test_the_baseline_solves_the_same_problem_as_cram(tiny):
    """k steps of the authors'-style baseline loop and cram(max_steps=k) from the same start: the same loss
    at every step (rel 1e-5) and the same AdamW moments afterwards (abs 1e-6; fp32, different reduction
    order), so the bench's ratios compare two ways of computing one optimisation."""
    import torch

    from cramlab.engine.plain import cram
    from cramlab.models.texts import get_texts
    from cramlab.science.bench import BaselineLoop
    row = get_texts(tiny.tokenizer, "unseen", 8, n_texts=1, seed=1)[0].token_ids
    k, lr = 12, 0.05
    loop = BaselineLoop(tiny.model, row, lr=lr, sink_token_id=tiny.spec.sink_token_id, seed=3)
    losses = []
    for _ in range(k):
        loop.step()
        losses.append(loop.last_loss)
    ours = cram(tiny, [row], max_steps=k, lr=lr, seed=3, check_every=1, progress=False, decode=False,
                engine="plain")[0]
    assert [h[0] for h in ours.history] == list(range(1, k + 1))
    assert [h[1] for h in ours.history] == pytest.approx(losses, rel=1e-5)
    assert losses[-1] < losses[0]                                   # both moved, the same way
    state = loop.opt.state[loop.mem]
    assert torch.allclose(ours.optimizer.exp_avg.reshape(-1), state["exp_avg"].reshape(-1), atol=1e-6)
    assert torch.allclose(ours.optimizer.exp_avg_sq.reshape(-1), state["exp_avg_sq"].reshape(-1), atol=1e-6)
