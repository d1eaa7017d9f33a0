"""Sweeps: resumable JSON lines, config errors, the Table-1 report, SIGKILL/resume and torchrun (2 CPU ranks)."""
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cramlab.cli import main
from cramlab.errors import ConfigError, OutputPathError
from cramlab.science.report import REPORT_COLUMNS, format_report, report, write_csv
from cramlab.science.results_file import ResultsFileError, job_key, read_results
from cramlab.science.sweep import load_config, n_jobs, plan, run_sweep, validate_config

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TINY_CFG = dict(models=["tiny-llama"], sources=["unseen", "random"], lengths=[4, 6], n_texts=3, batch_size=2,
                max_steps=6, lr=0.5, check_every=2, device="cpu")
FLOAT_FIELDS = ("teacher_forced_accuracy", "baseline_accuracy", "baseline_ce_nats", "final_ce_nats",
                "info_gain_nats", "info_gain_bits", "gain_tokens")
EXACT_FIELDS = ("token_ids", "steps", "converged", "greedy_exact", "first_mismatch", "decoded_text", "stop_reason",
                "n_scored")


def assert_same_results(a_rows, b_rows):
    """Same jobs, one line each, equal results (floats to rounding: batches and threads differ)."""
    a = {job_key(r): r for r in a_rows}
    b = {job_key(r): r for r in b_rows}
    assert len(a) == len(a_rows) and len(b) == len(b_rows)          # no duplicates
    assert a.keys() == b.keys()
    for k in a:
        for f in EXACT_FIELDS:
            assert a[k][f] == b[k][f], (k, f)
        for f in FLOAT_FIELDS:
            assert a[k][f] == pytest.approx(b[k][f], rel=1e-4, abs=1e-4), (k, f)


def write_config(path, **cfg):
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    """The tiny sweep run once in-process, to compare every other way of running it against."""
    out = tmp_path_factory.mktemp("ref") / "results.jsonl"
    summary = run_sweep(validate_config(dict(TINY_CFG)), out, log=lambda *a: None)
    assert summary.n_crammed == n_jobs(validate_config(dict(TINY_CFG))) == 12
    return read_results(out)


# --- config errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, pattern", [
    ({"lenghts": [8]}, r"unknown key 'lenghts'.*did you mean 'lengths'"),
    ({"colour": "blue"}, r"unknown key 'colour'.*known keys: models"),
    ({"lengths": "abc"}, r"key 'lengths'.*list of integers.*lengths: \[8, 16, 32\]"),
    ({"lengths": [8, "16"]}, r"key 'lengths'.*list of integers"),
    ({"n_texts": "4"}, r"key 'n_texts'.*an integer"),
    ({"n_texts": True}, r"key 'n_texts'.*an integer"),
    ({"lr": "fast"}, r"key 'lr'.*a number"),
    ({"decode": "yes"}, r"key 'decode'.*true or false"),
    ({"sources": ["books"]}, r"key 'sources'.*unknown value 'books'.*unseen"),
    ({"layouts": ["middle"]}, r"key 'layouts'.*sink-first"),
    ({"lengths": [1, 8]}, r"key 'lengths'.*>= 2"),
    ({"lr": -1}, r"key 'lr'.*> 0"),
    ({"n_mem": [0]}, r"key 'n_mem'.*>= 1"),
    ({"kernels": "triton"}, r"key 'kernels'.*unknown value 'triton'.*auto, liger, onednn, torch"),
])
def test_config_errors_name_the_key_and_the_fix(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate_config(data, "sweep.yaml")


def test_config_files_yaml_json_and_overrides(tmp_path):
    y = tmp_path / "s.yaml"
    y.write_text("models: tiny-llama\nlengths: [8, 16]\nn_mem: 2\nlr: 1\n")
    cfg = load_config(y, n_texts=5, lengths=None)
    assert cfg.models == ["tiny-llama"] and cfg.lengths == [8, 16] and cfg.n_mem == [2] and cfg.lr == 1.0
    assert cfg.n_texts == 5                                        # a flag overrides the file
    assert len(plan(cfg)) == 2 and n_jobs(cfg) == 10
    j = write_config(tmp_path / "s.json", lengths=[4], protocols=["pc", "hc"])
    assert load_config(j).protocols == ["pc", "hc"]
    (tmp_path / "bad.yaml").write_text("lengths: [8, 16\n")
    with pytest.raises(ConfigError, match="does not parse"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 8\n- 16\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_cli_config_error_is_one_line_and_exit_2(tmp_path, capsys):
    cfg = write_config(tmp_path / "s.json", lenghts=[8])
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown key 'lenghts'") and "\n" not in err
    assert main(["sweep", "--lengths", "8,x", "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_output_path_that_cannot_be_written(tmp_path):
    with pytest.raises(OutputPathError, match="is a folder"):
        run_sweep(validate_config(dict(TINY_CFG)), tmp_path, log=lambda *a: None)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="cannot create folder"):
        run_sweep(validate_config(dict(TINY_CFG)), blocker / "sub" / "r.jsonl", log=lambda *a: None)
    if Path("/proc/self").is_dir():                       # Linux: nobody, root included, may create files in /proc
        with pytest.raises(OutputPathError, match="cannot be written"):
            run_sweep(validate_config(dict(TINY_CFG)), Path("/proc/r.jsonl"), log=lambda *a: None)


# --- resuming ----------------------------------------------------------------------------------------------

def test_one_line_per_job_and_a_rerun_crams_nothing(reference, tmp_path):
    assert len(reference) == 12 and len({job_key(r) for r in reference}) == 12
    assert {r["kernels"] for r in reference} == {"torch"}       # which kernels ran: on a CPU, transformers' own
    assert {(r["source"], r["n_tokens"]) for r in reference} == {(s, n) for s in ("unseen", "random") for n in (4, 6)}
    out = tmp_path / "r.jsonl"
    for r in reference:
        out.open("a").write(json.dumps(r) + "\n")
    again = run_sweep(validate_config(dict(TINY_CFG)), out, log=lambda *a: None)
    assert again.n_crammed == 0 and again.n_done_before == 12
    assert len(read_results(out)) == 12


def test_half_written_last_line_is_truncated_and_redone(reference, tmp_path):
    out = tmp_path / "r.jsonl"
    lines = [json.dumps(r) for r in reference[:7]]
    cut = json.dumps(reference[7])[: len(json.dumps(reference[7])) // 2]     # a kill in the middle of a write
    out.write_text("\n".join(lines) + "\n" + cut)
    summary = run_sweep(validate_config(dict(TINY_CFG)), out, log=lambda *a: None)
    assert summary.n_done_before == 7 and summary.n_crammed == 5
    raw = out.read_text()
    assert raw.endswith("\n") and cut not in raw
    assert_same_results(reference, [json.loads(x) for x in raw.splitlines()])


def test_broken_middle_line_and_other_settings_are_refused(reference, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps(reference[0]) + "\n{not json\n" + json.dumps(reference[1]) + "\n")
    with pytest.raises(ResultsFileError, match="line 2"):
        read_results(out)
    out.write_text(json.dumps(reference[0]) + "\n")
    with pytest.raises(ConfigError, match="other settings.*lr 0.5 there, 0.1 now"):
        run_sweep(validate_config(dict(TINY_CFG, lr=0.1)), out, log=lambda *a: None)
    assert out.read_text() == json.dumps(reference[0]) + "\n"           # nothing lost


def test_leftover_part_files_of_a_killed_torchrun_are_merged(reference, tmp_path):
    out = tmp_path / "r.jsonl"
    (tmp_path / "r.jsonl.rank0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reference[:5]))
    (tmp_path / "r.jsonl.rank1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reference[3:8]) + '{"cut')
    summary = run_sweep(validate_config(dict(TINY_CFG)), out, log=lambda *a: None)
    assert summary.n_done_before == 8 and summary.n_crammed == 4
    assert not list(tmp_path.glob("*.rank*.jsonl"))
    assert_same_results(reference, read_results(out))


def test_corrupt_last_line_that_ends_with_a_newline_is_dropped_and_its_job_redone_once(reference, tmp_path):
    out = tmp_path / "r.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in reference[:7])
    out.write_text(good + '{"model": "tiny-llama", "n_tok\n')        # broken, yet newline-terminated
    summary = run_sweep(validate_config(dict(TINY_CFG)), out, log=lambda *a: None)
    assert summary.n_done_before == 7 and summary.n_crammed == 5
    raw = out.read_text()
    assert raw.startswith(good) and "n_tok\n" not in raw
    assert_same_results(reference, read_results(out))


def test_broken_lines_in_a_rank_part_file_are_dropped_and_their_jobs_redone_once(reference, tmp_path):
    """A part file is a rank's scratch: a broken line anywhere in it (a cut write followed by a later
    append) loses only that line's job, which the resumed sweep crams once; the merged file has no
    duplicates."""
    out = tmp_path / "r.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in reference[:2]))
    (tmp_path / "r.jsonl.rank0.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in reference[1:4])                  # [1] is already in out
        + json.dumps(reference[4])[:40] + "\n"                                 # cut, then more lines
        + "".join(json.dumps(r) + "\n" for r in reference[5:7]))
    summary = run_sweep(validate_config(dict(TINY_CFG)), out, log=lambda *a: None)
    assert summary.n_done_before == 6 and summary.n_crammed == 6             # reference[4] and [7:] redone
    assert not list(tmp_path.glob("*.rank*.jsonl"))
    assert_same_results(reference, read_results(out))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(reference, tmp_path):
    """Kill -9 the sweep (a subprocess) at least 3 times mid-run, then run it to the end."""
    cfg = write_config(tmp_path / "s.json", **TINY_CFG)
    out = tmp_path / "r.jsonl"
    cmd = [PY, "-m", "cramlab", "sweep", str(cfg), "--out", str(out), "--batch-size", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    rng = random.Random(7)
    kills, mid_run = 0, 0
    for attempt in range(10):
        before = len(read_results(out, repair=False)) if out.exists() else 0
        size = out.stat().st_size if out.exists() else 0
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt % 3 == 2:                      # a random moment: loading, cramming or writing
            time.sleep(rng.uniform(0.5, 6.0))
        else:                                     # soon after it wrote a line: mid-sweep for sure
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                if out.exists() and out.stat().st_size > size:
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            after = len(read_results(out, repair=False)) if out.exists() else 0
            mid_run += before < after < 12
        else:
            proc.wait()
        if kills >= 3 and mid_run >= 2:
            break
    assert kills >= 3 and mid_run >= 2
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    raw = out.read_text()
    assert raw.endswith("\n")
    rows = [json.loads(line) for line in raw.splitlines()]            # every line parses
    assert len(rows) == 12
    assert_same_results(reference, rows)


# --- multi-process -----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_two_cpu_ranks_equal_one_process(reference, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(PY).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    cfg = write_config(tmp_path / "s.json", **TINY_CFG)
    out = tmp_path / "r.jsonl"
    port = str(29500 + random.Random(os.getpid()).randrange(400))
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([torchrun, "--nproc-per-node=2", "--master-port", port, "-m", "cramlab", "sweep",
                           str(cfg), "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_results(out)
    assert {r["rank"] for r in rows} == {0, 1}                        # both ranks did work
    assert not list(tmp_path.glob("*.rank*.jsonl"))                  # rank 0 merged and removed the parts
    assert_same_results(reference, rows)


# --- the report --------------------------------------------------------------------------------------------

def _row(model, n, acc, base_acc, ce0, ce1, text, source="unseen", d=768, vocab=50304, greedy=None):
    return dict(model=model, source=source, layout="sink-first", protocol="pc", n_mem=1, n_tokens=n, text_id=text,
                teacher_forced_accuracy=acc, baseline_accuracy=base_acc, baseline_ce_nats=ce0, final_ce_nats=ce1,
                info_gain_nats=ce0 - ce1, info_gain_bits=(ce0 - ce1) / math.log(2),
                gain_tokens=(acc - base_acc) * n, greedy_exact=greedy, d=d, vocab_size=vocab)


def test_report_follows_the_paper_definitions(tmp_path):
    rows = [
        _row("pythia-160m", 8, 1.0, 0.5, 30, 1, "a", greedy=True), _row("pythia-160m", 8, 1.0, 0.4, 28, 2, "b",
                                                                         greedy=False),
        _row("pythia-160m", 16, 1.0, 0.5, 60, 3, "a"), _row("pythia-160m", 16, 0.985, 0.5, 64, 9, "b"),  # mean .9925
        _row("pythia-160m", 32, 0.5, 0.25, 120, 40, "a"), _row("pythia-160m", 32, 1.0, 0.3, 110, 5, "b"),
    ]
    (r,) = report(rows)
    assert r.max_tokens == 16                        # mean accuracy >= 0.99 at 16 (0.9925), not at 32 (0.75)
    assert r.n_not_fit == 2                           # accuracy <= 0.99: (16, b) and (32, a), pooled over lengths
    assert r.gain_tokens == pytest.approx(((0.985 - 0.5) * 16 + (0.5 - 0.25) * 32) / 2)
    assert r.info_gain_nats == pytest.approx(((64 - 9) + (120 - 40)) / 2)
    assert r.info_gain_bits == pytest.approx(r.info_gain_nats / math.log(2))
    assert r.capacity_tokens == pytest.approx(768 * 16 / math.log2(50304))
    assert r.capacity_utilisation == pytest.approx(r.gain_tokens / r.capacity_tokens)
    assert r.paper["max_tokens"] == 80 and r.paper["capacity_utilisation"] == 0.090
    text = format_report([r])
    for column in ("Max", "gain tok", "IG nats", "IG bits", "L_max", "util"):
        assert column in text
    assert "[80]" in text and "progressive: 10.7" in text
    write_csv([r], tmp_path / "t.csv")
    header, line = (tmp_path / "t.csv").read_text().splitlines()
    assert header.split(",") == list(REPORT_COLUMNS)
    assert line.startswith("pythia-160m,unseen,sink-first,pc,1,2,16,")


def test_report_random_source_and_a_model_the_paper_lacks():
    rows = [_row("pythia-160m", 8, 1.0, 0.0, 50, 1, "r", source="random"),
            _row("tiny-llama", 8, 0.3, 0.0, 70, 60, "t", d=64, vocab=49152)]
    a, b = report(rows)
    assert a.paper["max_tokens"] == 65 and "gain_tokens" not in a.paper      # the random-text column only
    assert a.gain_tokens is None and a.capacity_utilisation is None and a.n_not_fit == 0   # every text fit:
    assert "every text fit" in a.averages_note                                               # nothing to average
    assert "every text fit" in format_report([a])
    assert b.paper == {} and b.max_tokens is None


def test_report_cli_prints_the_table_and_writes_csv(reference, tmp_path, capsys):
    res = tmp_path / "r.jsonl"
    res.write_text("".join(json.dumps(r) + "\n" for r in reference))
    assert main(["report", str(res), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and "tiny-llama" in out and "IG nats" in out
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 3           # header + unseen + random
    assert main(["report", str(tmp_path / "none.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_and_report_on_the_embedded_model(embedded, tmp_path, capsys):
    """The paper's grid through the sweep on the embedded model: 2 unseen texts at 6 tokens, then Table 1."""
    cfg = write_config(tmp_path / "s.json", models=["smollm2-135m"], lengths=[6], n_texts=2, max_steps=150,
                       lr=0.1, device="cpu")
    out = tmp_path / "r.jsonl"
    assert main(["sweep", str(cfg), "--out", str(out)]) == 0
    rows = read_results(out)
    assert len(rows) == 2 and all(r["teacher_forced_accuracy"] == 1.0 for r in rows)
    assert main(["report", str(out), "--csv", str(tmp_path / "t.csv")]) == 0
    text = capsys.readouterr().out
    assert "smollm2-135m" in text and "progressive: 38.5 +- 14.1" in text
    (row,) = report(out)
    assert row.max_tokens == 6 and row.capacity_tokens == pytest.approx(576 * 16 / math.log2(49152))


def test_sweep_preset_fills_what_the_config_leaves_out():
    from cramlab.science.sweep import load_config, plan
    cfg = load_config(None, preset="grid-2025", lengths=[4], max_steps=7)
    assert (cfg.layouts, cfg.protocols, cfg.lr, cfg.patience, cfg.max_steps) == (["mem-first"], ["hc"], 1e-2, 2000, 7)
    s = cfg.cram_settings(plan(cfg)[0])
    assert s.preset == "grid-2025+overrides" and s.overrides == ("max_steps",) and s.init == "randn"
    assert load_config(None).cram_settings(plan(load_config(None))[0]).preset == "kit"
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(None, preset="nope")


def test_sweep_cli_runs_the_2025_preset(tmp_path, capsys):
    """#11: `cramlab sweep --preset grid-2025` works from the command line; every line records the preset and
    the settings it filled in (mem-first, hc, randn init, lr 1e-2, patience 2000), flags overriding it."""
    out = tmp_path / "r.jsonl"
    assert main(["sweep", "--preset", "grid-2025", "--models", "tiny-llama", "--sources", "unseen",
                 "--lengths", "4", "--n-texts", "2", "--max-steps", "5", "--device", "cpu", "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = read_results(out)
    assert summary["n_crammed"] == 2 and len(rows) == 2
    for r in rows:
        assert (r["layout"], r["protocol"], r["n_scored"], r["steps"]) == ("mem-first", "hc", 3, 5)
        s = r["settings"]
        assert s["preset"] == "grid-2025+overrides" and s["overrides"] == ["max_steps"]
        assert (s["lr"], s["patience"], s["init"], s["lr_schedule"]) == (1e-2, 2000, "randn", "constant")
