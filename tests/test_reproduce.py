"""`cramlab reproduce` (cramlab.science.reproduce, cramlab.science.reproduce_tables): the papers' conventions, the
job plan, the stop rule, the budget guard, and resuming after a kill without redoing finished jobs
(tiny model: mechanics only, it cannot be steered)."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cramlab.engine.settings import CramSettings
from cramlab.science import reproduce as rp
from cramlab.science.results_file import job_key, read_results

ROOT = Path(__file__).resolve().parents[1]


def test_progressive_ig_leaves_t1_out_of_both_terms():
    """Tarasov et al.'s information_gain.py: bits, summed over t_2..t_N in both terms."""
    without, with_mem = [float("nan"), 2.0, 3.0], [5.0, 1.0, 1.0]     # t_1's 5 nats would count in `scored`
    assert rp.pc_information_gain_bits(without, with_mem) == pytest.approx(3.0 / math.log(2))


@pytest.mark.parametrize("layout,protocol", [("mem-first", "pc"), ("mem-first", "hc"), ("sink-first", "pc")])
def test_progressive_gains_match_transformers_own_loss(tiny, layout, protocol):
    """The paper's IG from the kit's forward equals the one from transformers' shifted-label loss: without
    = the text alone (mem-first) or after the sink, with = after the vector; t_2..t_N scored in both."""
    s = CramSettings.from_preset("progressive-2026", layout=layout, protocol=protocol,
                                 start_tokens=2 if protocol == "hc" else 1)
    ids = torch.tensor([[17, 402, 9, 3301, 55, 71]])
    n = ids.shape[1]
    vec = torch.randn(1, tiny.model.config.hidden_size) * 0.5
    model, embed = tiny.model, tiny.model.get_input_embeddings()
    sink = embed(torch.tensor([[tiny.spec.sink_token_id]]))
    head = [sink] if layout == "sink-first" else []

    def loss_total(prefix_parts):
        x = torch.cat(prefix_parts + [embed(ids)], 1)
        pad = torch.full((1, x.shape[1] - n + 1), -100)
        labels = torch.cat([pad, ids[:, 1:]], 1)                       # t_1 never a label
        with torch.no_grad():
            return float(model(inputs_embeds=x, labels=labels).loss) * (n - 1)
    without = loss_total(head)
    with_mem = loss_total(head + [vec.view(1, 1, -1)])
    (g,) = rp.progressive_gains(tiny, s, [ids[0].tolist()], [vec], [n])
    assert g["paper_info_gain_bits"] == pytest.approx((without - with_mem) / math.log(2), rel=1e-4, abs=1e-4)
    if protocol == "hc":      # the kit's `scored` for hc is the same sum, in nats
        assert g["scored_info_gain_nats"] == pytest.approx(without - with_mem, rel=1e-4, abs=1e-4)
    (none,) = rp.progressive_gains(tiny, s, [ids[0].tolist()], [None], [0])
    assert none["paper_info_gain_bits"] is None


def _texts(tiny, paper, n_texts=3, max_tokens=16):
    return rp.make_texts(tiny.tokenizer, paper, n_texts, max_tokens, seed=0)


def test_2025_plan_stop_rule_and_random_grouped_by_drawn_length(tiny, tmp_path):
    texts = _texts(tiny, "2025")
    drawn = sorted({t["n_tokens"] for rows in texts["random"].values() for t in rows})
    timing = rp.run(tiny, "2025", tmp_path, n_texts=3, max_tokens=16, max_steps=2, texts=texts, log=lambda m: None)
    rows = read_results(tmp_path / "raw_2025.jsonl")
    natural = [r for r in rows if r["source"] == "natural"]
    # the tiny model fits nothing, so the grid stops at its first length (every text failed there)
    assert {r["n_tokens"] for r in natural} == {8} and len(natural) == 3
    rnd = [r for r in rows if r["source"] == "random"]
    assert len(rnd) == 6 and sorted({r["n_tokens"] for r in rnd}) == drawn
    assert all(len(r["token_ids"]) == r["n_tokens"] <= r["grid_tokens"] for r in rnd)
    # one right-padded job for every grid length, each line at its text's own drawn length
    assert {r["job"] for r in rnd} == {"2025/random/r0"} and {r["grid_tokens"] for r in rnd} == {8, 16}
    assert all(r["n_scored"] == r["n_tokens"] - 1 for r in rnd)          # grid-2025 is hc: N - 1 scored
    assert len({job_key(r) for r in rows}) == len(rows)
    assert all(r["protocol_overrides"] == {"max_steps": 2, "max_tokens": 16, "n_texts": 3} for r in rows)
    assert natural[0]["settings"]["preset"] == "grid-2025+overrides" and natural[0]["min_ce_per_token_nats"] > 0
    assert len(timing["jobs"]) == 1 + 1
    from cramlab.science.reproduce_tables import write_tables
    table = write_tables(tmp_path, "2025", rows)
    assert table["random"]["replicates"][0]["paper"]["lengths"] == drawn
    section = (tmp_path / "results_section_2025.md").read_text()
    assert "NOT the paper's protocol" in section and "pythia-160m" in section


def test_2025_random_resumes_per_text_and_runs_the_rest_in_one_padded_job(tiny, tmp_path):
    """Lines already in the file (here: those an earlier plan wrote, one job per drawn length) are kept and not
    recomputed; the other texts of every grid length run in one job, and they get what the full run gave them."""
    texts = _texts(tiny, "2025", n_texts=4, max_tokens=16)
    kw = dict(n_texts=4, max_tokens=16, max_steps=3, texts=texts, sources_2025=("random",), log=lambda m: None)
    spent = rp.run(tiny, "2025", tmp_path / "spent", **kw, max_seconds=0.0)      # the budget guard still holds
    assert spent["jobs"] == [] and spent["stopped_by_budget"] == ["2025/random/r0"]
    rp.run(tiny, "2025", tmp_path / "full", **kw)
    full = read_results(tmp_path / "full" / "raw_2025.jsonl")
    jobs = {r["job"] for r in full}
    assert len(full) == 8 and jobs == {"2025/random/r0"} and len({r["n_tokens"] for r in full}) > 1
    # an earlier run's file: the texts of the two shortest drawn lengths, under that plan's job names
    short = sorted({r["n_tokens"] for r in full})[:2]
    kept = [r | {"job": f"2025/random/drawn{r['n_tokens']}/r0"} for r in full if r["n_tokens"] in short]
    run = tmp_path / "resumed"
    run.mkdir()
    (run / "raw_2025.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    timing = rp.run(tiny, "2025", run, **kw)
    rows = read_results(run / "raw_2025.jsonl")
    assert rows[:len(kept)] == kept                                      # kept as they were, not rewritten
    assert sorted(job_key(r) for r in rows) == sorted(job_key(r) for r in full)   # each text once, none lost
    new = rows[len(kept):]
    assert timing["skipped_lines"] == len(kept) and sum(j["texts"] for j in timing["jobs"]) == 8 - len(kept)
    assert {j["job"] for j in timing["jobs"]} == {r["job"] for r in new} == {"2025/random/r0"}
    assert all(r["n_tokens"] not in short for r in new)
    kept_keys = {job_key(r) for r in kept}
    assert any(job_key(r) in kept_keys for r in full if r["job"] in {j["job"] for j in timing["jobs"]}), \
        "the case must resume a job that is partly in the file"
    by_key = {job_key(r): r for r in full}
    for r in new:          # a smaller padded batch: the same outcome as in the full run's batch
        ref = by_key[job_key(r)]
        assert (r["n_tokens"], r["token_ids"], r["steps"], r["teacher_forced_accuracy"], r["grid_tokens"]) == \
            (ref["n_tokens"], ref["token_ids"], ref["steps"], ref["teacher_forced_accuracy"], ref["grid_tokens"])
        assert r["final_ce_nats"] == pytest.approx(ref["final_ce_nats"], rel=1e-5)
    again = rp.run(tiny, "2025", run, **kw)                              # nothing left: every job is skipped
    assert again["jobs"] == [] and again["skipped_done"] == 1 and len(read_results(run / "raw_2025.jsonl")) == 8


def test_2026_runs_each_setting_s_replicates_in_one_batch_each_under_its_own_seed(tiny, tmp_path):
    """One job per setting; a text's replicate r is its own line, started under seed r (search.progressive's
    `seeds`), as it would be alone; a resumed job runs only the replicates missing from the file."""
    texts = _texts(tiny, "2026", n_texts=2, max_tokens=8)
    kw = dict(n_texts=2, max_tokens=8, max_steps=3, replicates=2, texts=texts, settings_2026=("mem-first/pc",),
              log=lambda m: None)
    timing = rp.run(tiny, "2026", tmp_path / "a", **kw)
    rows = read_results(tmp_path / "a" / "raw_2026.jsonl")
    assert [j["job"] for j in timing["jobs"]] == ["2026/mem-first/pc"] and len(rows) == 4
    assert sorted((r["text_id"].rsplit("#r", 1)[1], r["replicate"], r["settings"]["seed"]) for r in rows) == \
        [("0", 0, 0), ("0", 0, 0), ("1", 1, 1), ("1", 1, 1)]
    kept = [r for r in rows if r["replicate"] == 0]                  # a file holding replicate 0 only
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "raw_2026.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    again = rp.run(tiny, "2026", tmp_path / "b", **kw)
    assert again["skipped_lines"] == 2 and [j["texts"] for j in again["jobs"]] == [2]
    redone = read_results(tmp_path / "b" / "raw_2026.jsonl")[2:]
    by_id = {r["text_id"]: r for r in rows}
    assert all(r["replicate"] == 1 and r["total_steps"] == by_id[r["text_id"]]["total_steps"] for r in redone)


def test_budget_guard_starts_no_job_past_the_budget(tiny, tmp_path):
    texts = _texts(tiny, "2026", n_texts=2, max_tokens=8)
    timing = rp.run(tiny, "2026", tmp_path, n_texts=2, max_tokens=8, max_steps=2, replicates=1, texts=texts,
                    max_seconds=0.0, log=lambda m: None)
    assert timing["jobs"] == [] and len(timing["stopped_by_budget"]) == 4
    assert read_results(tmp_path / "raw_2026.jsonl") == []


@pytest.mark.slow
def test_reproduce_resumes_after_a_kill_without_redoing_finished_jobs(tmp_path):
    """Kill the command once its first job's lines are on disk, run it again: every job's lines appear once,
    the finished jobs are skipped, and the final count is texts x settings x replicates."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cramlab", "reproduce", "--paper", "2026", "--out", str(out), "--model", "tiny-llama",
           "--device", "cpu", "--n-texts", "2", "--max-tokens", "8", "--max-steps", "20", "--replicates", "2",
           "--settings", "mem-first/pc,sink-first/pc,mem-first/hc"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    raw = out / "raw_2026.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not (raw.exists() and raw.stat().st_size):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = read_results(raw)
    assert 0 < len(first) < 12, "the kill must land mid-run for this test to mean anything"
    assert len(first) % 4 == 0, "a job (one setting, 2 texts x 2 replicates) writes its lines in one append"
    done_jobs = {r["job"] for r in first}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = read_results(raw)
    keys = [job_key(r) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 3 * 2
    assert rows[:len(first)] == first                       # the lines of the killed run are kept, not rewritten
    timing = json.loads((out / "timing_2026.json").read_text())
    assert timing["skipped_done"] == len(done_jobs) and len(timing["jobs"]) == 3 - len(done_jobs)
    assert (out / "results_section_2026.md").exists()


@pytest.mark.parametrize("paper", ["2025", "2026"])
def test_results_page_prints_the_sections_the_raw_lines_give(tmp_path, paper):
    """docs/results.md holds each paper's section verbatim, and that section is what the recorded raw lines and
    call timings of docs/data/reproduce/ regenerate today: nothing in it is typed by hand or stale."""
    import shutil

    from cramlab.science.reproduce_tables import write_tables
    src = ROOT / "docs" / "data" / "reproduce"
    for f in [src / f"raw_{paper}.jsonl", *src.glob(f"timing_{paper}*.json")]:
        shutil.copy(f, tmp_path / f.name)
    write_tables(tmp_path, paper, read_results(tmp_path / f"raw_{paper}.jsonl"))
    regenerated = (tmp_path / f"results_section_{paper}.md").read_text(encoding="utf-8")
    assert regenerated == (src / f"results_section_{paper}.md").read_text(encoding="utf-8")
    assert regenerated.strip() in (ROOT / "docs" / "results.md").read_text(encoding="utf-8")


def test_a_long_grid_job_logs_its_progress_and_the_same_lines(tiny, tmp_path):
    """A job of minutes says how far it got (step, texts done) while it runs; logging changes none of its lines."""
    texts = _texts(tiny, "2025", n_texts=2, max_tokens=16)
    kw = dict(n_texts=2, max_tokens=16, max_steps=20, texts=texts, sources_2025=("random",))
    job = rp.plan_2025(texts, tiny.spec.name, rp.paper_settings("2025", on_gpu=False, max_steps=20), 1, ("random",))[0]
    logged = []
    lines = rp.run_grid_job(tiny, job, {}, logged.append, every_seconds=0.0)
    steps = [int(m.split("step ")[1].split("/")[0]) for m in logged]
    assert logged and all(m.startswith("  2025/random/r0: step ") and m.endswith(" s") for m in logged)
    assert steps == sorted(steps) and steps[0] == job.settings.check_every and all(s <= 20 for s in steps)
    assert all(f"/{len(job.texts)} texts done" in m for m in logged)
    quiet = rp.run_grid_job(tiny, job, {})
    assert [(r["steps"], r["token_ids"]) for r in quiet] == [(r["steps"], r["token_ids"]) for r in lines]
    assert rp.run(tiny, "2025", tmp_path / "r", **kw, log=lambda m: None)["jobs"][0]["texts"] == len(job.texts)


def test_one_budget_over_both_papers_prices_the_second_papers_first_job_by_the_first_papers(tiny, tmp_path):
    """`--paper both` hands one seconds-by-kind record to both papers: a 2026 job, a kind not yet run, is priced
    at the longest 2025 job, so a budget that the 2025 jobs nearly spent starts no 2026 job."""
    texts = _texts(tiny, "2026", n_texts=2, max_tokens=8)
    kw = dict(n_texts=2, max_tokens=8, max_steps=2, replicates=1, texts=texts, log=lambda m: None)
    spent = rp.run(tiny, "2026", tmp_path / "a", max_seconds=600.0, seconds_by_kind={"2025/random": 900.0}, **kw)
    assert spent["jobs"] == [] and len(spent["stopped_by_budget"]) == 4
    seen: dict = {}
    ran = rp.run(tiny, "2026", tmp_path / "b", max_seconds=600.0, seconds_by_kind=seen, **kw)
    assert len(ran["jobs"]) == 4 and set(seen) == {"/".join(j["job"].split("/")[:2]) for j in ran["jobs"]}


def test_paper_both_runs_2025_then_2026_in_one_process_into_one_folder(tmp_path, capsys):
    from cramlab.cli import main
    out = tmp_path / "run"
    argv = ["reproduce", "--paper", "both", "--out", str(out), "--model", "tiny-llama", "--device", "cpu",
            "--n-texts", "2", "--max-tokens", "8", "--max-steps", "2", "--replicates", "1",
            "--settings", "mem-first/pc", "--sources", "natural"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.index("2025 phases:") < printed.index("2026 phases:") < printed.index("both papers:")
    raw_2025, raw_2026 = read_results(out / "raw_2025.jsonl"), read_results(out / "raw_2026.jsonl")
    assert {r["paper"] for r in raw_2025} == {"2025"} and {r["paper"] for r in raw_2026} == {"2026"}
    assert len(raw_2026) == 2 and {r["model_dtype"] for r in raw_2025 + raw_2026} == {"float32"}   # CPU: fp32 both
    both = json.loads((out / "timing_both.json").read_text())
    assert [p["paper"] for p in both["papers"]] == ["2025", "2026"]
    assert sum(p["jobs_seconds"] for p in both["papers"]) <= both["seconds_since_command_start"]
    for paper in ("2025", "2026"):
        assert (out / f"tables_{paper}.md").exists() and (out / f"timing_{paper}.json").exists()
    assert main(argv) == 0                                                  # a rerun resumes: nothing is redone
    assert read_results(out / "raw_2025.jsonl") == raw_2025 and read_results(out / "raw_2026.jsonl") == raw_2026
    assert all(p["n_jobs_run"] == 0 for p in json.loads((out / "timing_both.json").read_text())["papers"])
