"""docs/performance.md's tables, printed from the raw files under docs/data/ (nothing typed by hand).

    python experiments/performance_tables.py            # every table, in the page's order
    python experiments/performance_tables.py two_gpus   # one table (names: see TABLES)
    python experiments/performance_tables.py --check docs/performance.md   # exit 1 if a table there is stale

Each table names the files it reads; a ratio or a mean is computed here from the raw values, not copied.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "docs" / "data"
LADDER = ("gpu_ladder_h200_norm_bwd_rows_2026-11-29.jsonl", "gpu_ladder_h200_norm_bwd_rows_llama_2026-11-29.jsonl")
CATEGORIES = ("matmul", "elementwise/norm", "attention", "other", "loss", "copies")


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _json(name: str):
    return json.loads((DATA / name).read_text())


def _rows(name: str, row: str, shape: str) -> dict[str, dict]:
    return {r["config"]: r for r in _lines(name) if r["row"] == row and r["shape"] == shape}


def _table(head: list[str], body: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(map(str, b)) + " |" for b in body
    ]


def gpu_step() -> list[str]:
    runs = [_rows(f, "config", "smollm2 64x64") for f in LADDER]
    body = []
    for config, r in runs[0].items():
        cells = [
            f"{run[config]['step_ms']:.2f} ({run[config]['ratio_vs_baseline']:.0f}×)" if config in run else "—"
            for run in runs
        ]
        body.append([config, *cells, f"{r['mfu']:.1%}", f"{r['peak_mem_gib']:.1f}"])
    return _table(
        ["row (SmolLM2-135M, 64 texts × 64 tokens)", "run 1: ms (×)", "run 2: ms (×)", "MFU (run 1)", "peak GiB"], body
    )


def gpu_profile() -> list[str]:
    body = []
    for config, p in _rows(LADDER[0], "profile", "smollm2 64x64").items():
        body.append(
            [
                config,
                f"{p['busy_ms_per_step']:.2f}",
                f"{p['kernels_per_step']:.0f}",
                *(f"{p['shares'].get(c, 0):.0%}" for c in CATEGORIES),
            ]
        )
    return _table(["row", "busy ms", "kernels", *CATEGORIES], body)


def gpu_norm_backward() -> list[str]:
    body = []
    for config, p in _rows(LADDER[0], "profile", "smollm2 64x64").items():
        for top in p["top"]:
            if top["op"] == "_rms_norm_backward_kernel":
                body.append(
                    [
                        config,
                        f"{top['calls_per_step']:.0f}",
                        f"{top['ms_per_step']:.2f}",
                        f"{1000 * top['ms_per_step'] / top['calls_per_step']:.1f}",
                    ]
                )
    return _table(["row", "RMSNorm backward calls a step", "ms a step", "µs a call"], body)


def llama() -> list[str]:
    rows, profiles = _rows(LADDER[1], "config", "llama-1b 64x512"), _rows(LADDER[1], "profile", "llama-1b 64x512")
    body = []
    for config, r in rows.items():
        p = profiles.get(config)
        shares = (
            ", ".join(f"{c} {p['shares'][c]:.0%}" for c in ("matmul", "elementwise/norm", "attention", "copies"))
            if p
            else "not profiled"
        )
        body.append([config, f"{r['step_ms']:.1f}", f"{r['mfu']:.1%}", f"{r['peak_mem_gib']:.1f}", shares])
    return _table(
        ["row (Llama-3.2-1B shape, random weights, 64 × 512)", "ms / step", "MFU", "peak GiB", "kernel time"], body
    )


def progressive() -> list[str]:
    rows = _lines("grow_compaction_h200_2026-11-28.jsonl") + _lines(
        "grow_compaction_batched_decode_h200_2026-11-28.jsonl"
    )
    names = [
        "`search.progressive`, one decode a text",
        "`grow(compact=True)`, the engine alone",
        "`grow(compact=False)`, one batch at the cap",
        "`search.progressive`, one batched decode (now)",
    ]
    body = [
        [
            name,
            f"{r['seconds']:.1f}",
            f"{statistics.mean(r['per_text']):.1f}",
            f"{r['total_steps']:,}",
            str(r.get("greedy_exact", "—")),
            " ".join(f"({a}, {b})" for a, b in r.get("shapes", [])) or "—",
        ]
        for name, r in zip(names, (r for r in rows if r["row"] != "summary"))
    ]
    return _table(
        [
            "row (32 unseen texts, cap 128)",
            "seconds",
            "mean tokens",
            "steps",
            "greedy-exact",
            "steps built (texts, fed tokens)",
        ],
        body,
    )


def two_gpus() -> list[str]:
    first, second, whole_batches = _json("sweep_two_gpus_h200_2026-11-29.json")
    one_wall = first["wall_one_gpu_ms"]
    body = [
        [f"one GPU, GPU {g}", f"{w / 1000:.1f}", f"{s:.1f}", "", "", ""]
        for g, (w, s) in enumerate(zip(one_wall, first["seconds_one_gpu"]))
    ]
    for label, e in (
        ("two GPUs, first", first),
        ("two GPUs, second", second),
        ("two GPUs, ranks take whole batches (reverted; another machine)", whole_batches),
    ):
        pair = e["pairs"]["one_gpu_0 vs many_gpu"]
        body.append(
            [
                label,
                f"{e['wall_many_gpu_ms'] / 1000:.1f}",
                f"{e['seconds_many_gpu']:.1f}",
                f"{statistics.mean(one_wall) / e['wall_many_gpu_ms']:.2f}×",
                f"{statistics.mean(e['seconds_one_gpu']) / e['seconds_many_gpu']:.2f}×",
                f"{pair['steps']} / {pair['converged']} of {e['jobs_in_all']}; converged "
                f"{e['runs']['many_gpu']['converged']} against {e['runs']['one_gpu_0']['converged']}",
            ]
        )
    return _table(
        ["run", "wall s", "in-process s", "× wall", "× in-process", "same steps / same outcome as one GPU"], body
    )


def fixed_costs() -> list[str]:
    d = _json("sweep_fixed_costs_h200_2026-11-29.json")
    body = [[k, f"{d['cold'][k]}", f"{d['warm'][k]}"] for k in ("import_s", "first_load_s", "first_extra_s")]
    launch = d["launch_overhead"]
    body.append(
        [
            "`cramlab sweep --dry-run`: plain / under torchrun",
            f"{launch['plain_dry_run_s']}",
            f"{launch['torchrun_nproc1_dry_run_s']}",
        ]
    )
    return _table(["seconds", "empty caches", "filled caches"], body)


def sdpa() -> list[str]:
    body = [
        [
            r["case"],
            f"{r['ms_fwd_bwd']:.4f}" if "ms_fwd_bwd" in r else r["error"][:40],
            f"{r['x30_layers_ms']:.2f}" if "x30_layers_ms" in r else "—",
        ]
        for r in _json("sdpa_backends_h200_2026-11-29.json")["rows"]
    ]
    return _table(
        ["SDPA case (one layer, 64 × 65 positions, 9 query / 3 kv heads)", "ms fwd + bwd", "× 30 layers"], body
    )


def demo_kernels() -> list[str]:
    rows = _lines("cpu_packed_linear_2026-11-29.jsonl")
    gemm = next(r for r in rows if r["kind"] == "gemm")
    body = []
    for kernels in ("torch", "onednn"):
        crams = [r for r in rows if r["kind"] == "cram" and r["kernels"] == kernels]
        body.append(
            [
                f"`{kernels}`",
                ", ".join(str(r["steps"]) for r in crams),
                ", ".join(f"{r['cram_wall_s']:.1f}" for r in crams)
                + f" (mean {statistics.mean(r['cram_wall_s'] for r in crams):.1f})",
                f"{min(r['s_per_step'] for r in crams):.3f}–{max(r['s_per_step'] for r in crams):.3f}",
                f"{sum(r['greedy_exact'] for r in crams)} of {len(crams)}",
            ]
        )
    out = _table(["kernels", "steps to fit (the demo's text first)", "cram wall s", "s a step", "greedy-exact"], body)
    return out + [
        "",
        f"Product 18 × 576 by 576 × 1536, 120 weights in turn: `F.linear` {gemm['F.linear']['gflop_per_s']} "
        f"GFLOP/s, oneDNN packed {gemm['onednn_packed']['gflop_per_s']} GFLOP/s ({gemm['date']}, "
        f"{gemm['threads']} threads).",
    ]


def _by_config(rows: list[dict]) -> list[tuple[str, list[dict], str, str]]:
    """(config, its rows, "steps to fit" cell, mean steps with the cap counted) per config, in first-seen order."""
    out = []
    for config in dict.fromkeys(r["config"] for r in rows):
        rs = [r for r in rows if r["config"] == config]
        steps = ", ".join(str(r["steps"]) if r["converged"] else f"not in {r['steps']}" for r in rs)
        out.append((config, rs, steps, f"{statistics.mean(r['steps'] for r in rs):.0f}"))
    return out


def demo_settings() -> list[str]:
    rows = _lines("demo_settings_cpu_2026-11-29.jsonl") + _lines("demo_init_cpu_2026-11-29.jsonl")
    body = [
        [
            config,
            steps,
            mean,
            f"{sum(r['greedy_exact'] for r in rs)} of {len(rs)}",
            f"{min(r['s_per_step'] for r in rs):.2f}–{max(r['s_per_step'] for r in rs):.2f}",
        ]
        for config, rs, steps, mean in _by_config(rows)
    ]
    return _table(
        [
            "precision:lr[:start]",
            "steps to fit (the demo's text first)",
            "mean (cap counted)",
            "greedy-exact",
            "s a step (one thread)",
        ],
        body,
    )


def demo_lr_8_texts() -> list[str]:
    """Issue 30's fewer-steps lever on 8 unseen texts per rate: steps and decodes only (the two lr runs shared the
    CPU with a test run, so their seconds are not figures)."""
    rows = [r for r in _lines("demo_bf16_polish_cpu_2026-12-06.jsonl") if r["config"] == "fp32:0.1"]
    rows += _lines("demo_lr_8texts_cpu_2026-12-06.jsonl")
    body = [[config, steps, mean, f"{sum(r['steps'] for r in rs):,}",
             f"{sum(r['greedy_exact'] for r in rs)} of {len(rs)}"] for config, rs, steps, mean in _by_config(rows)]
    return _table(["precision:lr", "steps to fit (the demo's text first)", "mean (cap counted)", "steps in all",
                   "greedy-exact"], body)


def skinny_gemm() -> list[str]:
    d = _json("cpu_skinny_gemm_2026-11-29.json")["by_threads"]

    def fmt(v: dict) -> str:
        return f"{v['gflop_per_s']} GFLOP/s, {v['weight_gb_per_s']} GB/s of weights"

    body = [
        [label, fmt(d["1"][k]), fmt(d["2"][k])]
        for label, k in (
            ("one weight reused (in cache), fp32", "hot_fp32"),
            ("200 weights in turn, fp32", "cold_fp32"),
            ("200 weights in turn, bf16", "cold_bf16"),
        )
    ]
    body.append(
        [
            "memory copy, read + write",
            f"{d['1']['copy_gb_per_s_read_and_write']} GB/s",
            f"{d['2']['copy_gb_per_s_read_and_write']} GB/s",
        ]
    )
    return _table(["18 × 576 by 576 × 1536", "one thread", "two threads"], body)


def cpu_profile() -> list[str]:
    body = []
    for dtype in ("float32", "bfloat16"):
        for r in _json(f"profile_cpu_{dtype}_2026-11-28.json")["results"]:
            mm = next(t for t in r["top"] if t["op"] == "aten::mm")
            body.append(
                [dtype, r["batch"], f"{r['step_ms']:.1f}", f"{mm['ms_per_step']:.1f}", f"{r['shares']['matmul']:.0%}"]
            )
    return _table(["weights", "texts × 16 tokens", "ms / step", "`aten::mm` ms", "matmul share"], body)


def cpu_race() -> list[str]:
    body = []
    for name in ("bench_cpu_fp32_headfix_2026-11-28.json", "bench_cpu_bf16_2026-11-28.json"):
        race, rows = _json(name)["race"], {r["config"]: r for r in _json(name)["rows"]}
        body.append(
            [
                race["ours_dtype"].removeprefix("torch."),
                f"{race['baseline_seconds']:.1f}",
                f"{race['ours_seconds']:.1f}",
                f"{race['baseline_seconds'] / race['ours_seconds']:.2f}×",
                f"{race['baseline_seconds_with_reloads'] / race['ours_seconds']:.2f}×",
                f"{sum(race['ours_converged'])}/8 against {sum(race['baseline_converged'])}/8",
                f"{rows['plain']['step_ms']:.0f} ms for 8 against {rows['baseline']['step_ms']:.0f} ms for 1",
            ]
        )
    return _table(
        ["our weights", "baseline s", "ours s", "ratio", "with the authors' reloads", "converged", "steady step"], body
    )


def notebooks() -> list[str]:
    fast = _json("notebooks_fast_summary_2026-11-29.json")
    full = {
        **_json("notebooks_full_summary_2026-11-28.json")["notebooks"],
        **_json("notebook_03_full_cpu_2026-11-29.json")["notebooks"],
        **_json("notebook_08_full_summary_2026-11-28.json")["notebooks"],
        **_json("notebook_09_full_summary_2026-11-28.json")["notebooks"],
    }
    now = {}                   # 2026-12-06, each alone: Run All = duration minus the solutions the runner also ran
    for f in ("notebooks_full_cpu_00-02_2026-12-06.json", "notebooks_full_cpu_05-06_2026-12-06.json",
              "notebooks_full_cpu_03-09_2026-12-06.json", "notebooks_full_cpu_08-09_2026-12-06.json",
              "notebook_04_full_cpu_run_all_2026-12-06.json"):   # the later (alone) runs win
        now.update(_json(f)["notebooks"])
    gpu = _json("notebooks_gpu_h200_round5_2026-11-28.json")["notebooks"]
    body = []
    for name, r in fast["notebooks"].items():
        n = now.get(name)
        sol = (n or {}).get("solutions_s") or 0
        full_now = "not for a CPU" if n is None else (f"{n['duration_s'] - sol:.0f}" + (f" (+{sol:.0f} solutions)"
                                                                                         if sol >= 30 else ""))
        g = gpu.get(name[:2], {})
        on_gpu = (
            g["runner_line"].split()[2]
            if "runner_line" in g
            else f"{g['second_run']['duration_s']:.0f} (resumed after a first run stopped at its 540 s limit)"
            if "second_run" in g
            else "not recorded"
        )
        body.append(
            [
                name,
                f"{r['duration_s']:.0f}",
                full_now,
                f"{full[name]['duration_s']:.0f}" if name in full else "not recorded",
                on_gpu,
            ]
        )
    body.append([f"whole fast series, {fast['jobs']} at a time", f"{fast['total_duration_s']:.0f}", "", "", ""])
    return _table(["notebook", "CPU fast s", "CPU full s, Run All (2026-12-06)", "CPU full s (2026-11-28/29)",
                   "H200 full s"], body)


def make_test() -> list[str]:
    logs = (
        ("2026-12-06: fresh clone `.ci/run` at 5730691, AVX-512 host", "fresh_clone_ci_run_5730691_2026-12-06.log"),
        ("2026-12-06: fresh clone `.ci/run` at aa70d0f, AVX-512 host",
         "fresh_clone_ci_run_aa70d0f_2026-12-06.log"),
        ("2026-11-29: fresh clone `.ci/run`, AVX-512 host", "fresh_clone_ci_run_tenth_session_2026-11-29.log"),
        ("2026-11-29: installed venv, AVX-512 host", "make_test_tenth_session_2026-11-29.log"),
        ("2026-11-29: fresh clone `.ci/run`, AVX2 host", "fresh_clone_ci_run_2026-11-29.log"),
        ("2026-11-29: installed venv, AVX2 host in its slow state", "make_test_tiers_2026-11-29.log"),
        ("2026-11-29: `make test-slow`'s notebook tier (04, 07, 09 fast)", "make_test_slow_tier_2026-11-29.log"),
    )
    body = []
    for label, name in logs:
        m = re.search(r"(\d+) passed, \d+ deselected in ([\d.]+)s", (DATA / name).read_text())
        body.append([label, m.group(1), m.group(2), f"`{name}`"])
    return _table(["run (2-core AMD EPYC)", "passed", "seconds", "log"], body)


def gpu_checks() -> list[str]:
    checks = [
        json.loads(m)
        for m in re.findall(
            r'^\.?(\{"check".*\})\s*$', (DATA / "test_gpu_h200_norm_bwd_rows_2026-11-29.log").read_text(), flags=re.M
        )
    ]
    say = {
        "fast_equals_plain_fp32": lambda c: f"max \\|Δ vector\\| {c['max_abs_diff']:.1e} at scale {c['scale']:.2f}",
        "retirements_equal_plain_fp32": lambda c: (
            f"{c['texts_equal']} of {c['texts']} texts equal, max \\|Δ vector\\| {c['max_abs_diff']:.1e}"
        ),
        "liger_loss_matches_torch_bf16": lambda c: (
            f"max \\|Δ loss\\| {c['max_abs_loss_diff']:.1e} nats, argmax equal on {c['same_argmax']} of {c['rows']}"
        ),
        "fused_step_matches_unfused_bf16": lambda c: (
            f"against float32: Liger's step {c['fused_vs_fp32']['max_rel_loss_diff']:.4f}, "
            f"cosine {c['fused_vs_fp32']['min_grad_cosine']:.4f}; transformers' "
            f"{c['torch_bf16_vs_fp32']['max_rel_loss_diff']:.4f}, {c['torch_bf16_vs_fp32']['min_grad_cosine']:.4f}"
        ),
        "embedded_bf16_converges": lambda c: (
            f"fast engine {c['fast']['converged']} of {c['n_texts']} converged, "
            f"{c['fast']['greedy_exact']} greedy-exact, {c['fast']['seconds']:.1f} s"
        ),
        "compaction_matches_one_batch": lambda c: f"tiny model: longest lengths {c['tiny_longest']} in both engines",
    }
    return _table(
        ["check", "result"], [[c["check"], say[c["check"]](c) + ("" if c["ok"] else " — FAILED")] for c in checks]
    )


def rebuild_cost() -> list[str]:
    """What a step and a rebuild cost per batch shape, with the weights precast and cast at every matmul."""
    shapes = _json("reproduce_batched/rebuild_cost_h100_2026-12-07.json")["shapes"]
    body = [[f"{r['rows']} × {r['tokens']}", r["rows"] * r["tokens"], f"{r['step_ms']:.2f}",
             f"{r['build_seconds']:.2f}", f"{r['steps_per_rebuild']:.0f}", f"{r['cast_each_step_ms']:.2f}",
             f"{r['precast_speedup']:.3f}×"] for r in shapes]
    return _table(["rows × tokens", "row-tokens", "step ms (precast)", "build + capture s", "steps a rebuild costs",
                   "step ms (cast each matmul)", "precast speed-up"], body)


REPRODUCE_RUNS = (  # (column head, timing files under reproduce_batched/; a missing file leaves its cells empty)
    ("2026-12-06 (natural; random at c1bf21a)", ("timing_2025_natural_h100_2026-12-06.json",
                                                 "timing_2025_random_h100_2026-12-06.json")),
    ("2026-12-07, 89185a6", ("timing_2025_natural_rule64_h100_2026-12-07.json",
                             "timing_2025_random_length_groups_h100_2026-12-07.json")),
    # the engine as kept: natural at c3630ac, random at 1a6bd0a; cramlab/ differs between them only in comments,
    # a width computed once per loop instead of at every check, and a Counter (docs/performance.md says so)
    ("2026-12-07, engine of cc0a052", ("timing_2025_natural_h100_2026-12-07.json",
                                       "timing_2025_random_kept_h100_2026-12-07.json")),
)
TIMING_2026 = ("timing_2026_h100_2026-12-06.json", "timing_2026_sink-first-hc_h100_2026-12-06.json")


def _job_seconds(names) -> dict[str, float]:
    out = {}
    for name in names:
        if (DATA / "reproduce_batched" / name).exists():
            out |= {j["job"]: j["seconds"] for j in _json(f"reproduce_batched/{name}")["jobs"]}
    return out


def reproduce_2025_jobs() -> list[str]:
    """Issue 28: each 2025 job's engine seconds per run, and the three jobs with the 2026 batched run's."""
    runs = [_job_seconds(names) for _, names in REPRODUCE_RUNS]
    jobs = list(dict.fromkeys(job for run in runs for job in run))
    body = [[job, *(f"{run[job]:.1f}" if job in run else "—" for run in runs)] for job in jobs]
    seconds_2026 = sum(_job_seconds(TIMING_2026).values())
    body.append(["2026 batched (4 settings, H100, 2026-12-06)", *[f"{seconds_2026:.1f}"] * len(runs)])
    totals = [f"**{sum(run.values()) + seconds_2026:,.1f}**" if set(jobs) <= set(run) else "—" for run in runs]
    body.append(["together (target 1,200 s)", *totals])
    return _table(["job (seconds)", *(head for head, _ in REPRODUCE_RUNS)], body)


WHOLE_2026 = "reproduce_batched/whole_2026_call_h100_2026-12-07.json"


def reproduce_whole() -> list[str]:
    """Issue 28: the 2026 command timed whole (two invocations, one machine) and the sum with the 2025 jobs."""
    call = _json(WHOLE_2026)
    before = _job_seconds(TIMING_2026)
    body, sums = [], [0.0, 0.0, 0.0, 0.0]
    for part in call["parts"]:
        jobs, wall = sum(part["jobs"].values()), part["usr_bin_time"]["elapsed_s"]
        rest = wall - jobs - part["load_model_seconds"]
        named = ", ".join(f"{job.removeprefix('2026/')} {s:.1f} ({before[job]:.1f})" for job, s in part["jobs"].items())
        body.append([f"part {part['part']}", named, f"{jobs:.1f}", f"{part['load_model_seconds']:.1f}", f"{rest:.1f}",
                     f"{wall:.2f}"])
        sums = [a + b for a, b in zip(sums, (jobs, part["load_model_seconds"], rest, wall))]
    body.append(["**the 2026 command**", "", *(f"**{v:.1f}**" for v in sums[:3]), f"**{sums[3]:.2f}**"])
    jobs_2025 = sum(_job_seconds(REPRODUCE_RUNS[-1][1]).values())
    body.append(["2025 jobs (table above, last column)", "", f"{jobs_2025:.1f}", "—", "—", "—"])
    body.append(["**both**", "", f"**{sums[0] + jobs_2025:,.1f}**", "", "",
                 f"**{sums[3] + jobs_2025:,.2f}** (2025: jobs only)"])
    return _table(["", "jobs, seconds (2026-12-06's batched run)", "jobs s", "model load s", "the rest s",
                   "/usr/bin/time s"], body)


WHOLE_BOTH = "reproduce_batched/whole_both_call_h100_2026-12-07.json"


def reproduce_both() -> list[str]:
    """Issue 28: `reproduce --paper both` timed whole (three invocations, one machine), each job beside the same
    job's seconds in the run before (2025: the engine of cc0a052; 2026: the 2026 command timed whole)."""
    call = _json(WHOLE_BOTH)
    before = _job_seconds(REPRODUCE_RUNS[-1][1]) | {
        job: s for part in _json(WHOLE_2026)["parts"] for job, s in part["jobs"].items()}
    body, sums = [], [0.0, 0.0, 0.0, 0.0]
    for part in call["parts"]:
        jobs, wall = sum(part["jobs"].values()), part["usr_bin_time"]["elapsed_s"]
        loads = part["load_model_seconds"]
        rest = wall - jobs - sum(loads.values())
        named = ", ".join(f"{job.removeprefix('2025/').removeprefix('2026/').removesuffix('/r0')} {s:.1f} "
                          f"({before[job]:.1f})" for job, s in part["jobs"].items())
        body.append([f"part {part['part']}", named, f"{jobs:.1f}", " + ".join(f"{v:.1f}" for v in loads.values()),
                     f"{rest:.1f}", f"{wall:.2f}"])
        sums = [a + b for a, b in zip(sums, (jobs, sum(loads.values()), rest, wall))]
    body.append(["**the command**", "", *(f"**{v:,.1f}**" for v in sums[:3]), f"**{sums[3]:,.2f}**"])
    body.append(["target", "", "", "", "", "1,200"])
    return _table(["", "jobs, seconds (the run before)", "jobs s", "model loads s (2025 + 2026)", "the rest s",
                   "/usr/bin/time s"], body)


TABLES = {
    f.__name__: f
    for f in (
        gpu_step,
        gpu_profile,
        gpu_norm_backward,
        llama,
        progressive,
        two_gpus,
        fixed_costs,
        sdpa,
        gpu_checks,
        demo_kernels,
        demo_settings,
        demo_lr_8_texts,
        skinny_gemm,
        cpu_profile,
        cpu_race,
        notebooks,
        make_test,
        rebuild_cost,
        reproduce_2025_jobs,
        reproduce_whole,
        reproduce_both,
    )
}


def check(doc: Path) -> list[str]:
    """The tables of `doc` that differ from what their comment's command prints now (empty: all agree)."""
    lines, stale = doc.read_text().splitlines(), []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- python experiments/performance_tables.py (\w+) -->", line)
        if m:
            table = TABLES[m.group(1)]()
            if lines[i + 1 : i + 1 + len(table)] != table:
                stale.append(m.group(1))
    return stale


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        stale = check(Path(argv[1]))
        print(
            f"stale tables in {argv[1]}: {', '.join(stale)}; reprint them with this script"
            if stale
            else f"every table of {argv[1]} agrees with its raw files",
            file=sys.stderr if stale else sys.stdout,
        )
        return 1 if stale else 0
    unknown = [a for a in argv if a not in TABLES]
    if unknown:
        print(f"unknown table {unknown[0]!r}: choose from {', '.join(TABLES)}", file=sys.stderr)
        return 2
    for name in argv or TABLES:
        print(f"<!-- python experiments/performance_tables.py {name} -->", *TABLES[name](), "", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
